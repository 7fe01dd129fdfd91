"""Concurrent calls: each operation is one transaction with the user's row locked."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from wire import decode_qr


def test_parallel_init_of_a_new_user_hands_out_one_secret(server):
    users = [f"carol{i}" for i in range(8)]
    for user in users:
        server.cli("user", "add", user, input="carol-password\n")
    sessions = [server.session() for _ in range(8)]
    for s in sessions:  # authenticate once each, so the calls below race on initTOTP itself
        assert s.get(server.url + "/resetTOTP", params={"username": "admin"}).status_code == 200

    with ThreadPoolExecutor(len(sessions)) as pool:
        for user in users:
            def init(session, user=user):
                r = session.post(server.url + "/initTOTP", data={"username": user})
                assert r.status_code == 200, r.text
                return r.text

            answers = list(pool.map(init, sessions))
            assert len(set(answers)) == 1, f"every caller got the same QR URL for {user}"
            assert sessions[0].post(server.url + "/initTOTP", data={"username": user}).text == answers[0]


def test_parallel_refresh_leaves_a_consistent_secret(server):
    server.cli("user", "add", "dave", input="dave-password-4711\n")
    session = server.session()

    def refresh(_):
        r = session.post(server.url + "/refreshSecretKey", data={"username": "dave"})
        assert r.status_code == 200, r.text
        return r.text

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(refresh, range(12)))
    assert len(set(answers)) == 12, "every refresh made a new secret"
    stored = server.database.query(
        "SELECT c.value FROM claims c JOIN users u ON u.id = c.user_id WHERE u.username = 'dave' "
        "AND c.uri = 'http://wso2.org/claims/identity/secretkey'")[0][0]
    assert any(stored in a for a in answers), "the stored secret is one a caller was given"
    url = decode_qr(session.get(server.url + "/initTOTP", params={"username": "dave"}).text
                    .split("<ns:return>")[1].split("</ns:return>")[0].replace("&#xd;", ""))
    assert url.startswith("otpauth://totp/carbon.super:dave?secret=")


def test_password_hashing_does_not_hold_up_calls_with_a_cached_login(make_server):
    """Argon2 runs on a pool of its own, not on the database threads (SQLite has one): while many logins
    are being hashed, a call whose login is cached is answered, not queued behind them.

    40 wrong passwords for unknown users (each a full Argon2 check of the decoy) go in
    first; the cached call follows once they are in flight. Checked by order, not by time: it must be
    answered while most of them are still pending (had SQLite's database thread hashed them, it would
    be answered after all 40)."""
    srv = make_server(properties={"loginFailuresBeforeDelay": "100", "loginFailuresBeforeBlock": "100"})
    cached = srv.session()
    assert cached.post(srv.url + "/isTOTPEnabled", data={"username": "admin"}).status_code == 200
    answered: list[str] = []
    lock = threading.Lock()
    started = threading.Barrier(41)

    def bad_login(i):
        with srv.session(f"nobody{i}", "wrong-password") as s:
            started.wait()
            r = s.post(srv.url + "/isTOTPEnabled", data={"username": "admin"}, timeout=60)
        with lock:
            answered.append("bad")
        return r.status_code

    with ThreadPoolExecutor(40) as pool:
        futures = [pool.submit(bad_login, i) for i in range(40)]
        started.wait()
        time.sleep(0.2)  # let the 40 requests reach the server
        r = cached.post(srv.url + "/isTOTPEnabled", data={"username": "admin"}, timeout=60)
        with lock:
            done_before = len(answered)
        assert r.status_code == 200, r.text
        assert [f.result() for f in futures] == [500] * 40
    assert done_before < 20, f"{done_before} of 40 password checks finished before the cached call was answered"
