"""Checking codes in the core, with the clock passed in: matching a code (totpadmin.core.otp), lockout and recovery,
and Enrollment + Validation against the real store (SQLite) with a fake clock, so lockouts and pending
secrets expire without sleeping."""

from __future__ import annotations

import base64
import re

import pyotp
import pytest

from totpadmin.config.settings import TotpSettings
from totpadmin.core import keyring, recovery, secret_codec
from totpadmin.core.enrollment import Enrollment
from totpadmin.core.errors import NoPendingSecret, TotpNotEnabled, UserLocked
from totpadmin.core.lockout import GuardState, LockoutPolicy, after_failure, after_success
from totpadmin.core.passwords import PasswordHasher
from totpadmin.core.principal import ADMIN
from totpadmin.core.secretbox import SecretBox
from totpadmin.core.usernames import UserRef
from totpadmin.core.validation import Validation
from totpadmin.core.otp import OtpPolicy, matching_step, normalize_code
from totpadmin.store.database import Database

from rfc_vectors import RFC6238_CODES, SEEDS, TIMES

CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
RFC_KEY = b"12345678901234567890"
ZERO_COUNTER = 349495  # HOTP(RFC_KEY, 349495) == "000000"

VECTORS = [(alg, t, code) for alg, codes in RFC6238_CODES.items() for t, code in zip(TIMES, codes)]
SHOWN = re.compile(r"^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$")


def theirs(key: bytes, **kw) -> pyotp.TOTP:
    """pyotp's TOTP for ``key``: the independent reference."""
    return pyotp.TOTP(base64.b32encode(key).decode(), **kw)


# --- matching_step ---


@pytest.mark.parametrize("algorithm,unix_time,code", VECTORS)
def test_rfc6238_vectors_match_their_step(algorithm, unix_time, code):
    policy = OtpPolicy(algorithm=algorithm, digits=8)
    assert matching_step(SEEDS[algorithm], code, unix_time, policy) == unix_time // 30


@pytest.mark.parametrize("algorithm,unix_time,code", VECTORS)
def test_rfc6238_vectors_fail_under_another_algorithm_or_far_away(algorithm, unix_time, code):
    other = next(a for a in SEEDS if a != algorithm)
    assert matching_step(SEEDS[algorithm], code, unix_time, OtpPolicy(algorithm=other, digits=8)) is None
    assert matching_step(SEEDS[algorithm], code, unix_time + 3600, OtpPolicy(algorithm=algorithm, digits=8)) is None


def test_window_of_three_accepts_one_step_either_side_only():
    now = 1_700_000_015.0
    current = int(now // 30)
    ref = theirs(RFC_KEY)
    policy = OtpPolicy(window_size=3)
    for offset in (-1, 0, 1):
        code = ref.at(now + 30 * offset)
        assert matching_step(RFC_KEY, code, now, policy) == current + offset
    for offset in (-2, 2):
        code = ref.at(now + 30 * offset)
        if code in {ref.at(now + 30 * o) for o in (-1, 0, 1)}:
            pytest.skip("codes collide (one in a million)")
        assert matching_step(RFC_KEY, code, now, policy) is None


def test_window_of_one_is_the_current_step_only():
    now = 1_700_000_015.0
    ref = theirs(RFC_KEY)
    assert matching_step(RFC_KEY, ref.at(now), now, OtpPolicy(window_size=1)) == int(now // 30)
    assert matching_step(RFC_KEY, ref.at(now + 30), now, OtpPolicy(window_size=1)) is None
    assert matching_step(RFC_KEY, ref.at(now - 30), now, OtpPolicy(window_size=1)) is None


def test_after_refuses_that_step_and_earlier_ones():
    now = 1_700_000_015.0
    current = int(now // 30)
    ref = theirs(RFC_KEY)
    policy = OtpPolicy()
    code_now, code_prev, code_next = ref.at(now), ref.at(now - 30), ref.at(now + 30)
    assert matching_step(RFC_KEY, code_now, now, policy, after=current - 1) == current
    assert matching_step(RFC_KEY, code_now, now, policy, after=current) is None
    assert matching_step(RFC_KEY, code_now, now, policy, after=current + 1) is None
    assert matching_step(RFC_KEY, code_prev, now, policy, after=current - 1) is None
    assert matching_step(RFC_KEY, code_next, now, policy, after=current) == current + 1


def test_all_zero_code_is_accepted():
    assert pyotp.HOTP(base64.b32encode(RFC_KEY).decode()).at(ZERO_COUNTER) == "000000"
    now = ZERO_COUNTER * 30 + 1
    assert theirs(RFC_KEY).at(now) == "000000"
    assert matching_step(RFC_KEY, "000000", now, OtpPolicy()) == ZERO_COUNTER


def test_code_given_as_an_int_without_leading_zeros_is_accepted():
    now = ZERO_COUNTER * 30 + 1
    assert matching_step(RFC_KEY, "0", now, OtpPolicy()) == ZERO_COUNTER
    assert matching_step(RFC_KEY, str(int("000000")), now, OtpPolicy()) == ZERO_COUNTER
    # A code with exactly one leading zero, found with pyotp.
    hotp = pyotp.HOTP(base64.b32encode(RFC_KEY).decode())
    counter = next(c for c in range(100_000) if hotp.at(c)[0] == "0" and hotp.at(c)[1] != "0")
    code = hotp.at(counter)
    assert matching_step(RFC_KEY, str(int(code)), counter * 30 + 5, OtpPolicy()) == counter
    assert len(str(int(code))) == 5


def test_wrong_and_malformed_codes_match_nothing():
    now = 1_700_000_015.0
    right = theirs(RFC_KEY).at(now)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for code in (wrong, None, "", "abcdef", right + "0", "1234567", right[:3] + "x" + right[4:]):
        assert matching_step(RFC_KEY, code, now, OtpPolicy()) is None, code


# --- normalize_code ---


@pytest.mark.parametrize("given,expected", [
    ("12345", "012345"),
    ("0", "000000"),
    ("123456", "123456"),
    (" 123 456 ", "123456"),
    ("123\t456\n", "123456"),
    ("12a456", None),
    ("1234567", None),
    ("", None),
    ("   ", None),
    (None, None),
    ("-12345", None),
    ("+12345", None),
    ("１２３４５６", None),  # full-width digits are digits to str.isdigit, not to a client
    ("12.456", None),
])
def test_normalize_code(given, expected):
    assert normalize_code(given, 6) == expected


def test_normalize_code_eight_digits():
    assert normalize_code("1234567", 8) == "01234567"
    assert normalize_code("123456789", 8) is None


# --- lockout ---


def test_failures_count_up_to_a_lockout():
    policy = LockoutPolicy(max_failures=3, base_seconds=10, max_seconds=35)
    state = GuardState()
    state = after_failure(state, policy, 100.0)
    assert (state.failures, state.lockouts, state.locked_until) == (1, 0, None)
    state = after_failure(state, policy, 101.0)
    assert (state.failures, state.lockouts, state.locked_until) == (2, 0, None)
    assert not state.locked(101.0)
    state = after_failure(state, policy, 102.0)
    assert (state.failures, state.lockouts, state.locked_until) == (0, 1, 112.0)
    assert state.locked(102.0) and state.locked(111.999) and not state.locked(112.0)


def test_each_further_lockout_doubles_up_to_the_cap():
    policy = LockoutPolicy(max_failures=1, base_seconds=10, max_seconds=35)
    assert [policy.duration(n) for n in range(5)] == [10, 20, 35, 35, 35]
    assert policy.duration(10_000) == 35  # no overflow, no huge float
    state, now, durations = GuardState(), 0.0, []
    for _ in range(4):
        state = after_failure(state, policy, now)
        durations.append(state.locked_until - now)
        now = state.locked_until
    assert durations == [10, 20, 35, 35]
    assert state.lockouts == 4


def test_success_resets_failures_and_lockouts():
    policy = LockoutPolicy(max_failures=3, base_seconds=10, max_seconds=1000)
    state = GuardState(last_step=7, failures=2, lockouts=3, locked_until=50.0)
    reset = after_success(state)
    assert (reset.failures, reset.lockouts, reset.locked_until, reset.last_step) == (0, 0, None, 7)
    assert after_failure(after_failure(after_failure(reset, policy, 0), policy, 0), policy, 0).locked_until == 10


# --- recovery codes ---


def test_issue_makes_distinct_well_formed_hashed_codes():
    issued = recovery.issue(10, CHEAP)
    assert len(issued) == 10
    assert len({c.shown for c in issued}) == 10
    assert len({c.lookup for c in issued}) == 10, "lookup ids are distinct"
    for code in issued:
        assert SHOWN.match(code.shown), code.shown
        raw = code.shown.replace("-", "")
        assert code.lookup == raw[:4]
        assert code.code_hash.startswith("$argon2id$")
        assert raw not in code.code_hash and code.shown not in code.code_hash and raw[4:] not in code.code_hash
        assert recovery.matches(code.code_hash, raw, CHEAP)


def test_parse_accepts_case_hyphens_and_spaces():
    code = recovery.issue(1, CHEAP)[0]
    raw = code.shown.replace("-", "")
    expected = (raw[:4], raw)
    assert recovery.parse(code.shown) == expected
    assert recovery.parse(code.shown.upper()) == expected
    assert recovery.parse(raw) == expected
    assert recovery.parse(raw.upper()) == expected
    assert recovery.parse(" " + code.shown.replace("-", " ") + " ") == expected


@pytest.mark.parametrize("text", [None, "", "123456", "abcd-efgh-ijkl-mno", "abcd-efgh-ijkl-mnopq",
                                  "abcd-efgh-ijkl-mn01", "abcd-efgh-ijkl-mn8p", "abcd_efgh_ijkl_mnop"])
def test_parse_refuses_what_is_not_a_recovery_code(text):
    assert recovery.parse(text) is None


def test_matches_only_the_right_code():
    first, second = recovery.issue(2, CHEAP)
    raw1, raw2 = first.shown.replace("-", ""), second.shown.replace("-", "")
    assert recovery.matches(first.code_hash, raw1, CHEAP)
    assert not recovery.matches(first.code_hash, raw2, CHEAP)
    assert not recovery.matches(first.code_hash, raw1[:-1] + ("a" if raw1[-1] != "a" else "b"), CHEAP)
    assert not recovery.matches("not a hash", raw1, CHEAP)


# --- Enrollment + Validation on the real store, with a fake clock ---

ADMIN_REF = UserRef("carbon.super", "admin")
T0 = 1_800_000_000.0  # a step boundary: 1_800_000_000 / 30 = 60_000_000


class FakeClock:
    """A list-backed clock: ``clock.times[0]`` is now."""

    def __init__(self, start: float):
        self.times = [start]

    def __call__(self) -> float:
        return self.times[0]

    def set(self, value: float) -> None:
        self.times[0] = value

    def advance(self, seconds: float) -> None:
        self.times[0] += seconds


@pytest.fixture
def store(tmp_path):
    box = SecretBox(keyring.load_or_create(tmp_path / "keys.json"))
    db = Database(f"sqlite:///{tmp_path / 'core.db'}", box=box)
    db.create_schema()
    with db.transaction() as unit:
        unit.users.add_user(ADMIN_REF, CHEAP.hash("pw"), ADMIN)
    yield db
    db.dispose()


@pytest.fixture
def clock():
    return FakeClock(T0)


def services(clock, *, key: bytes | None = None, **settings):
    cfg = TotpSettings(**settings)
    new_secret = (lambda n: key) if key is not None else secret_codec.new_secret
    return (Enrollment(cfg, clock=clock, new_secret=new_secret, recovery_hasher=CHEAP),
            Validation(cfg, clock=clock, recovery_hasher=CHEAP))


def call(db, action, *args):
    """One operation in one transaction, as the service runs it."""
    with db.transaction() as unit:
        return action(unit.accounts.find(ADMIN_REF), *args)


def enroll(db, enrollment, clock) -> tuple[pyotp.TOTP, list[str]]:
    url = base64.b64decode("".join(call(db, enrollment.generate_secret).split())).decode()
    ref = pyotp.parse_uri(url)
    codes = call(db, enrollment.enable_totp, ref.at(clock()))
    assert codes is not None
    return ref, codes


def state(db):
    with db.transaction() as unit:
        return unit.accounts.find(ADMIN_REF).state()


def test_generate_then_enable_activates_and_issues_codes(store, clock):
    enrollment, validation = services(clock)
    assert call(store, validation.is_enabled) is False
    url = base64.b64decode("".join(call(store, enrollment.generate_secret).split())).decode()
    ref = pyotp.parse_uri(url)
    assert call(store, validation.is_enabled) is False, "a pending secret is not active"
    assert call(store, enrollment.enable_totp, "000000" if ref.at(T0) != "000000" else "111111") is None
    codes = call(store, enrollment.enable_totp, ref.at(T0))
    assert len(codes) == 10 and len(set(codes)) == 10 and all(SHOWN.match(c) for c in codes)
    assert call(store, validation.is_enabled) is True
    assert state(store).last_step == int(T0 // 30), "the enabling code's step counts as used"
    assert call(store, validation.validate_totp, ref.at(T0)) is False, "enableTOTP's code is not reusable"
    assert call(store, validation.validate_totp, ref.at(T0 + 30)) is True


def test_replay_and_earlier_steps_are_refused(store, clock):
    enrollment, validation = services(clock)
    ref, _ = enroll(store, enrollment, clock)
    clock.advance(30)
    code = ref.at(clock())
    assert call(store, validation.validate_totp, code) is True
    assert call(store, validation.validate_totp, code) is False
    assert call(store, validation.validate_totp, ref.at(clock() + 30)) is True
    assert call(store, validation.validate_totp, ref.at(clock())) is False, "earlier than an accepted step"
    clock.advance(60)
    assert call(store, validation.validate_totp, ref.at(clock())) is True


def test_int_code_without_leading_zeros_validates(store):
    clock = FakeClock(ZERO_COUNTER * 30 + 1)
    enrollment, validation = services(clock, key=RFC_KEY)
    call(store, enrollment.init_totp)  # legacy: active at once, no step used
    assert call(store, validation.validate_totp, "0") is True
    hotp = pyotp.HOTP(base64.b32encode(RFC_KEY).decode())
    counter = next(c for c in range(ZERO_COUNTER + 1, ZERO_COUNTER + 100_000) if hotp.at(c)[0] == "0")
    clock.set(counter * 30 + 2)
    assert call(store, validation.validate_totp, hotp.at(counter).lstrip("0") or "0") is True


def test_lockout_expires_and_doubles(store, clock):
    enrollment, validation = services(clock, max_failed_attempts=3, lockout_seconds=100, max_lockout_seconds=1000)
    ref, recovery_codes = enroll(store, enrollment, clock)
    wrong = next(c for c in ("123456", "654321", "111111") if c not in {ref.at(T0 + 30 * o) for o in range(-3, 60)})

    for _ in range(3):
        assert call(store, validation.validate_totp, wrong) is False
    locked_at = clock()
    with pytest.raises(UserLocked) as caught:
        call(store, validation.validate_totp, ref.at(clock() + 30))
    assert caught.value.until == locked_at + 100
    assert "locked" in str(caught.value)
    clock.set(locked_at + 99.9)
    with pytest.raises(UserLocked):
        call(store, validation.validate_totp, ref.at(clock()))
    with pytest.raises(UserLocked):  # recovery codes are not looked at either
        call(store, validation.validate_totp, recovery_codes[0])
    with pytest.raises(UserLocked):
        call(store, enrollment.enable_totp, ref.at(clock()))

    # The first lockout is over; no success yet, so the next one lasts twice as long.
    clock.set(locked_at + 100)
    for _ in range(3):
        assert call(store, validation.validate_totp, wrong) is False
    second_at = clock()
    clock.set(second_at + 199.9)
    with pytest.raises(UserLocked):
        call(store, validation.validate_totp, ref.at(clock()))
    clock.set(second_at + 200)
    assert call(store, validation.validate_totp, ref.at(clock())) is True
    after = state(store)
    assert (after.failures, after.lockouts) == (0, 0), "a success resets the count and the doubling"

    # Back to the base duration after the success.
    for _ in range(3):
        assert call(store, validation.validate_totp, wrong) is False
    third_at = clock()
    assert state(store).locked_until == third_at + 100
    clock.set(third_at + 100)
    assert call(store, validation.validate_totp, recovery_codes[0]) is True


def test_lockout_duration_is_capped(store, clock):
    enrollment, validation = services(clock, max_failed_attempts=1, lockout_seconds=100, max_lockout_seconds=250)
    ref, _ = enroll(store, enrollment, clock)
    wrong = next(c for c in ("123456", "654321", "111111") if c not in {ref.at(T0 + 30 * o) for o in range(-3, 200)})
    durations = []
    for _ in range(4):
        assert call(store, validation.validate_totp, wrong) is False
        locked_until = state(store).locked_until
        durations.append(locked_until - clock())
        clock.set(locked_until)
    assert durations == [100, 200, 250, 250]


def test_success_between_failures_resets_the_count(store, clock):
    enrollment, validation = services(clock, max_failed_attempts=3, lockout_seconds=100)
    ref, _ = enroll(store, enrollment, clock)
    wrong = next(c for c in ("123456", "654321", "111111") if c not in {ref.at(T0 + 30 * o) for o in range(-3, 5)})
    assert call(store, validation.validate_totp, wrong) is False
    assert call(store, validation.validate_totp, wrong) is False
    assert call(store, validation.validate_totp, ref.at(clock() + 30)) is True
    assert call(store, validation.validate_totp, wrong) is False
    assert call(store, validation.validate_totp, wrong) is False
    assert state(store).locked_until is None
    assert state(store).failures == 2


def test_admin_unlock_ends_a_lockout(store, clock):
    enrollment, validation = services(clock, max_failed_attempts=2, lockout_seconds=1000)
    ref, _ = enroll(store, enrollment, clock)
    wrong = next(c for c in ("123456", "654321", "111111") if c not in {ref.at(T0 + 30 * o) for o in range(-3, 5)})
    for _ in range(2):
        call(store, validation.validate_totp, wrong)
    with pytest.raises(UserLocked):
        call(store, validation.validate_totp, ref.at(clock() + 30))
    assert call(store, validation.unlock) is True
    assert call(store, validation.validate_totp, ref.at(clock() + 30)) is True


def test_wrong_enable_codes_count_toward_the_lockout(store, clock):
    enrollment, validation = services(clock, max_failed_attempts=3, lockout_seconds=100)
    url = base64.b64decode("".join(call(store, enrollment.generate_secret).split())).decode()
    ref = pyotp.parse_uri(url)
    wrong = next(c for c in ("123456", "654321", "111111") if c not in {ref.at(T0 + 30 * o) for o in range(-3, 5)})
    for _ in range(3):
        assert call(store, enrollment.enable_totp, wrong) is None
    with pytest.raises(UserLocked):
        call(store, enrollment.enable_totp, ref.at(clock()))
    clock.advance(100)
    assert call(store, enrollment.enable_totp, ref.at(clock())) is not None


def test_pending_secret_expires(store, clock):
    enrollment, validation = services(clock, pending_secret_seconds=60)
    url = base64.b64decode("".join(call(store, enrollment.generate_secret).split())).decode()
    ref = pyotp.parse_uri(url)
    clock.advance(60)
    with pytest.raises(NoPendingSecret) as caught:
        call(store, enrollment.enable_totp, ref.at(clock()))
    assert "expired" in str(caught.value)
    assert call(store, validation.is_enabled) is False

    url = base64.b64decode("".join(call(store, enrollment.generate_secret).split())).decode()
    ref = pyotp.parse_uri(url)
    clock.advance(59.9)
    assert call(store, enrollment.enable_totp, ref.at(clock())) is not None
    assert call(store, validation.is_enabled) is True


def test_enable_without_a_pending_secret(store, clock):
    enrollment, _ = services(clock)
    with pytest.raises(NoPendingSecret) as caught:
        call(store, enrollment.enable_totp, "123456")
    assert "call generateSecret first" in str(caught.value)


def test_generate_secret_leaves_the_active_secret_alone(store, clock):
    enrollment, validation = services(clock)
    old = pyotp.parse_uri(base64.b64decode("".join(call(store, enrollment.init_totp).split())).decode())
    new = pyotp.parse_uri(base64.b64decode("".join(call(store, enrollment.generate_secret).split())).decode())
    assert new.secret != old.secret
    assert call(store, validation.validate_totp, old.at(clock())) is True
    assert call(store, enrollment.enable_totp, new.at(clock())) is not None
    clock.advance(30)
    assert call(store, validation.validate_totp, old.at(clock())) is False
    assert call(store, validation.validate_totp, new.at(clock())) is True


def test_recovery_codes_are_single_use_and_replaced(store, clock):
    enrollment, validation = services(clock)
    _, codes = enroll(store, enrollment, clock)
    assert call(store, validation.validate_totp, codes[0]) is True
    assert call(store, validation.validate_totp, codes[0]) is False
    assert call(store, validation.validate_totp, codes[1].upper().replace("-", "")) is True
    fresh = call(store, enrollment.regenerate_recovery_codes)
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    assert call(store, validation.validate_totp, codes[2]) is False
    assert call(store, validation.validate_totp, fresh[0]) is True
    with store.transaction() as unit:
        assert unit.accounts.find(ADMIN_REF).recovery_codes_left() == 9


def test_reset_erases_recovery_codes_and_secret(store, clock):
    enrollment, validation = services(clock)
    _, codes = enroll(store, enrollment, clock)
    assert call(store, enrollment.reset_totp) is True
    with store.transaction() as unit:
        assert unit.accounts.find(ADMIN_REF).recovery_codes_left() == 0
    assert call(store, validation.is_enabled) is False
    call(store, enrollment.init_totp)
    assert call(store, validation.validate_totp, codes[0]) is False


def test_user_without_totp_optional_is_false_and_not_counted(store, clock):
    _, validation = services(clock, max_failed_attempts=2)
    for _ in range(5):
        assert call(store, validation.validate_totp, "123456") is False
    assert state(store).failures == 0 and state(store).locked_until is None


def test_user_without_totp_mandatory_is_refused(store, clock):
    _, validation = services(clock, mandatory=True)
    with pytest.raises(TotpNotEnabled) as caught:
        call(store, validation.validate_totp, "123456")
    assert "mandatory" in str(caught.value)


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
def test_configured_algorithm_and_digits_reach_the_url_and_the_check(store, clock, algorithm):
    enrollment, validation = services(clock, algorithm=algorithm, digits=8)
    url = base64.b64decode("".join(call(store, enrollment.generate_secret).split())).decode()
    ref = pyotp.parse_uri(url)
    assert ref.digits == 8
    assert ref.digest().name == algorithm.lower()
    assert call(store, enrollment.enable_totp, ref.at(clock())) is not None
    assert call(store, validation.validate_totp, ref.at(clock() + 30)) is True
