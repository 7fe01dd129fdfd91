"""One code, many callers, two servers: two `totp-admin serve` processes share one database and one data
directory (one key file); ~40 parallel validateTOTP calls with the same valid code, split across both,
accept it exactly once. Replay protection must hold across processes, not just threads.

The time step is 10 s (written into the QR URL as &period=10, which pyotp reads) so that three rounds,
each on a fresh step, take seconds rather than a minute. Replays count as failures, so maxFailedAttempts
is set to its maximum (100) to keep the 39 refusals per round from locking the user.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pyotp

from conftest import TNS, Server, free_port, make_conf
from wire import decode_qr

PERIOD = 10
CALLS = 40
ROUNDS = 3
TRUE = f'<ns:validateTOTPResponse xmlns:ns="{TNS}"><ns:return>true</ns:return></ns:validateTOTPResponse>'
FALSE = TRUE.replace(">true<", ">false<")


def form(server: Server, session, operation: str, **data):
    return session.post(f"{server.url}/{operation}", data=data, timeout=60)


def wait_for_step(totp: pyotp.TOTP, step: int) -> None:
    """Sleep until the clock is in ``step`` or later."""
    while totp.timecode(time.time()) < step:
        time.sleep(max(0.05, step * totp.interval - time.time()))


def test_one_code_is_accepted_once_across_two_servers(tmp_path, database):
    conf = make_conf(tmp_path, properties={"timeStepSize": str(PERIOD), "maxFailedAttempts": "100"})
    data = tmp_path / "data"
    first = Server(data_dir=data, conf_dir=conf, database=database, port=free_port())
    second = Server(data_dir=data, conf_dir=conf, database=database, port=free_port())
    try:
        first.start()
        second.start()
        servers = (first, second)

        admin = first.session()
        url = decode_qr(form(first, admin, "generateSecret", username="admin").text
                        .split("<ns:return>")[1].split("</ns:return>")[0].replace("&#xd;", ""))
        assert f"&period={PERIOD}" in url
        totp = pyotp.parse_uri(url)
        step = totp.timecode(time.time())
        r = form(first, admin, "enableTOTP", username="admin", verificationCode=totp.generate_otp(step))
        assert "<ns:return>true</ns:return>" in r.text, r.text
        # The second server reads what the first wrote (same key file, same database).
        r = form(second, second.session(), "isTOTPEnabled", username="admin")
        assert "<ns:return>true</ns:return>" in r.text, r.text

        sessions = [(servers[i % 2], servers[i % 2].session()) for i in range(CALLS)]
        last = step
        for round_ in range(ROUNDS):
            # A fresh step for this round: the next one after the clock's, and after the last one used.
            wait_for_step(totp, last)
            target = totp.timecode(time.time()) + 1
            code = totp.generate_otp(target)

            def validate(pair, code=code):
                server, session = pair
                r = form(server, session, "validateTOTP", username="admin", verificationCode=code)
                return server.port, r.status_code, r.text

            with ThreadPoolExecutor(CALLS) as pool:
                answers = list(pool.map(validate, sessions))
            statuses = [status for _, status, _ in answers]
            assert statuses == [200] * CALLS, f"round {round_}: {[a for a in answers if a[1] != 200][:3]}"
            bodies = [body for _, _, body in answers]
            assert set(bodies) <= {TRUE, FALSE}, set(bodies)
            assert bodies.count(TRUE) == 1, f"round {round_}: {bodies.count(TRUE)} callers had the code accepted"
            assert {port for port, _, _ in answers} == {first.port, second.port}
            last = target

        assert "validateTOTP" in first.log() and "validateTOTP" in second.log()
        rows = database.query("SELECT s.last_step, s.failures, s.locked_until FROM totp_state s "
                              "JOIN users u ON u.id = s.user_id WHERE u.username = 'admin'")
        assert rows[0][0] == last and rows[0][2] is None
    finally:
        second.stop()
        first.stop()
