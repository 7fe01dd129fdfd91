"""Concurrent calls: each operation is one transaction with the user's row locked."""

from __future__ import annotations

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
    server.cli("user", "add", "dave", input="dave-password\n")
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
