"""totpadmin.core.throttle with a clock of the test's own: what an attacker gets, and that a client whose
credentials verified keeps getting in (the server-side behaviour: test_login_throttle.py)."""

from __future__ import annotations

import pytest

from totpadmin.core.throttle import ADDRESS, DAY, USERNAME, LoginThrottle, ThrottlePolicy

POLICY = ThrottlePolicy(window_seconds=600, delay_after=3, max_delay=8, block_after=20, block_seconds=300,
                        account_failures_per_day=100, known_good_seconds=DAY)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def throttle(clock, **changes) -> LoginThrottle:
    return LoginThrottle(ThrottlePolicy(**{**POLICY.__dict__, **changes}), clock=clock)


def guess(t: LoginThrottle, user="admin", source="198.51.100.7", n: int = 0):
    """One wrong password, let through or not; the verdict."""
    v = t.verdict(user, source, f"{user}:{n}".encode())
    if not v.refuse_for:
        t.settle(v.attempt, False)
    return v


def test_a_serial_guesser_waits_one_two_four_then_eight_seconds(clock):
    t = throttle(clock)
    delays = []
    for n in range(8):
        v = guess(t, n=n)
        assert not v.refuse_for
        delays.append(v.delay)
        clock.now += v.delay  # the client asks again as soon as it is answered
    assert delays == [0, 0, 0, 1, 2, 4, 8, 8]


def test_parallel_guesses_are_spaced_like_serial_ones(clock):
    """Ten guesses at the same moment: three at once, then each check a delay after the one before, and
    those that would wait more than two delays (16 s) refused. (Before, all ten waited the same delay
    and then ran together.)"""
    t = throttle(clock)
    verdicts = [t.verdict("admin", "198.51.100.7", b"guess-%d" % n) for n in range(10)]
    assert [v.delay for v in verdicts[:7]] == [0, 0, 0, 1, 3, 7, 15]
    assert all(not v.refuse_for for v in verdicts[:7])
    assert [(v.refused, v.refuse_for) for v in verdicts[7:]] == [(USERNAME, 7)] * 3  # 23 s away, 16 allowed


def test_guessing_one_username_from_many_addresses_is_bounded(clock):
    """One check per max_delay at most (a serial client or a parallel one), and no more than
    account_failures_per_day a day, however many addresses."""
    t = throttle(clock)
    let_through = 0
    for second in range(2 * 3600):  # two hours, a new guess from a new address every second
        v = guess(t, source=f"10.{second // 65536}.{second // 256 % 256}.{second % 256}", n=second)
        let_through += not v.refuse_for
        clock.now += 1
    assert let_through == 100
    v = guess(t, source="192.0.2.1", n=-1)
    assert v.refused == USERNAME and v.refuse_for == DAY - 2 * 3600  # until the first guess is a day old


def test_at_the_days_cap_attempts_come_back_as_the_oldest_ages(clock):
    t = throttle(clock, account_failures_per_day=5, delay_after=100)
    for n in range(5):
        assert not guess(t, n=n, source=f"192.0.2.{n}").refuse_for
        clock.now += 60
    v = guess(t, n=5, source="192.0.2.99")
    assert v.refused == USERNAME and v.refuse_for == DAY - 5 * 60
    clock.now += v.refuse_for + 0.1
    assert not guess(t, n=6, source="192.0.2.99").refuse_for
    assert guess(t, n=7, source="192.0.2.99").refused == USERNAME  # one came back, one was used


def test_an_address_is_blocked_after_block_after_failures(clock):
    t = throttle(clock)
    for n in range(20):
        assert not guess(t, user=f"user{n}", n=n).refuse_for
    v = guess(t, user="someone", n=99)
    assert (v.refused, v.refuse_for) == (ADDRESS, 300)
    assert not guess(t, user="someone", source="198.51.100.8", n=99).refuse_for  # another address
    clock.now += 300
    assert not guess(t, user="someone", n=100).refuse_for  # the block is over, its count too


def test_parallel_guesses_from_one_address_count_as_they_start(clock):
    """Twenty attempts in progress from one address: the next waits for their outcome (429, retry in a
    second); when they fail, the address is blocked."""
    t = throttle(clock)
    pending = [t.verdict(f"user{n}", "198.51.100.7", b"%d" % n) for n in range(20)]
    assert all(not v.refuse_for for v in pending)
    v = t.verdict("user99", "198.51.100.7", b"99")
    assert (v.refused, v.refuse_for) == (ADDRESS, 1)
    for v in pending:
        t.settle(v.attempt, False)
    assert t.verdict("user99", "198.51.100.7", b"99").refuse_for == 300


def test_known_good_credentials_pass_a_blocked_address_and_a_hammered_username(clock):
    t = throttle(clock)
    v = t.verdict("admin", "198.51.100.7", b"right")
    t.settle(v.attempt, True)
    for n in range(20):
        guess(t, user=f"user{n}", n=n)
    assert guess(t, n=99).refused == ADDRESS
    for n in range(200):  # the username at its day's cap, from elsewhere
        guess(t, source=f"10.0.{n // 256}.{n % 256}", n=1000 + n)
        clock.now += 8
    assert guess(t, source="192.0.2.1", n=5000).refused == USERNAME
    v = t.verdict("admin", "198.51.100.7", b"right")
    assert (v.refuse_for, v.delay) == (0, 0)
    t.settle(v.attempt, True)
    clock.now += DAY - 1  # a day after its last success: still known
    assert t.verdict("admin", "198.51.100.7", b"right").refuse_for == 0
    clock.now += 2
    assert not t.verdict("admin", "198.51.100.7", b"right").attempt.known_good  # forgotten


def test_known_good_credentials_that_fail_are_guesses_again(clock):
    """After a password change the old credentials fail once unthrottled, then count as guesses."""
    t = throttle(clock, delay_after=1)
    t.settle(t.verdict("admin", "198.51.100.7", b"old").attempt, True)
    v = t.verdict("admin", "198.51.100.7", b"old")
    assert v.delay == 0 and v.attempt.known_good
    t.settle(v.attempt, False)
    v = t.verdict("admin", "198.51.100.7", b"old")
    assert not v.attempt.known_good and v.delay == 1  # its failure counted


def test_a_success_forgets_the_usernames_failures_from_its_address_only(clock):
    t = throttle(clock)
    for n in range(3):
        guess(t, source="198.51.100.7", n=n)  # the owner mistyping
        guess(t, source="203.0.113.9", n=10 + n)  # someone else
    v = t.verdict("admin", "198.51.100.7", b"right")
    clock.now += v.delay
    t.settle(v.attempt, True)
    assert t.verdict("admin", "192.0.2.1", b"another").delay == 1  # the other three still count


def test_the_same_credentials_in_progress_share_a_place_and_count_once(clock):
    t = throttle(clock, delay_after=1)
    first = t.verdict("admin", "198.51.100.7", b"same")
    others = [t.verdict("admin", "198.51.100.7", b"same") for _ in range(30)]
    assert all(o.delay == first.delay and not o.refuse_for for o in others)
    for v in [first, *others]:
        t.settle(v.attempt, False)
    assert t.verdict("admin", "198.51.100.7", b"next").delay == 1  # one failure, not 31


def test_an_attempt_without_an_outcome_is_taken_back(clock):
    t = throttle(clock, delay_after=1)
    v = t.verdict("admin", "198.51.100.7", b"x")
    t.settle(v.attempt, None)  # e.g. the store was unavailable
    assert t.verdict("admin", "198.51.100.7", b"y").delay == 0


def test_known_good_can_be_switched_off(clock):
    t = throttle(clock, known_good_seconds=0, delay_after=1)
    t.settle(t.verdict("admin", "198.51.100.7", b"right").attempt, True)
    guess(t)
    assert t.verdict("admin", "198.51.100.7", b"right").delay == 1


def test_memory_is_bounded(clock):
    t = LoginThrottle(POLICY, clock=clock, max_keys=100, max_known_good=10)
    for n in range(1000):
        guess(t, user=f"user{n}", source=f"10.0.{n // 256}.{n % 256}", n=n)
        t.settle(t.verdict(f"user{n}", "192.0.2.1", b"good%d" % n).attempt, True)
    assert len(t._accounts) <= 100 and len(t._addresses) <= 100 and len(t._known_good) <= 10
    assert not t._in_progress
