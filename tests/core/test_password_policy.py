"""The password policy (NIST SP 800-63B) where passwords are set: `totp-admin user add` / `user passwd`
(refused: exit 1, a message saying why, never the password, nothing stored) and TOTP_ADMIN_PASSWORD
(refused: `serve` stops at start with exit 2, naming the variable, not its value). Passwords stored
before keep working: the policy applies when a password is set, never at login."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from conftest import ADMIN_PASSWORD, Server
from totpadmin.core.errors import PasswordRefused
from totpadmin.core.password_policy import MAX_LENGTH, check_new_password, common_passwords
from totpadmin.core.passwords import PasswordHasher

TOO_SHORT = "The password is too short: it needs at least 8 characters, and 15 or more are recommended"
COMMON = "The password is on the list of commonly used passwords"
PATTERN = "The password is a repeated or sequential string"
CONTEXT = "The password is built on the username or the service's name (totp, totp-admin, wso2, carbon)"
LONG_64 = "Vq3-tZr8.kLm2#Hx9pWn4&Ys7@Bd5!Gf6Jc1^Kv0Qe8*Ua3(Ri2)To9_Pl4+Mz7-"
UNICODE = "Grüße aus Köln, 東京 🌸"

# (password, for user bob, the message's start)
REFUSED = [
    pytest.param("Sh0rt!x", TOO_SHORT, id="7-characters"),
    pytest.param("  ab  ", TOO_SHORT, id="6-with-spaces"),
    pytest.param("x" * (MAX_LENGTH + 1), "The password is too long: at most 256 characters", id="257-characters"),
    pytest.param("iloveyou", COMMON, id="common"),
    pytest.param("SunShine1", COMMON, id="common-any-case"),
    pytest.param("ｓｕｎｓｈｉｎｅ１", COMMON, id="common-full-width"),
    pytest.param("change-me", COMMON, id="common-with-a-separator"),  # the README's old example
    pytest.param("abcdefghij", COMMON, id="common-sequence"),
    pytest.param("aaaaaaaaaaaa", PATTERN, id="repeated-letter"),
    pytest.param("abcabcabcabc", PATTERN, id="repeated-piece"),
    pytest.param("7890123456", PATTERN, id="digits-up"),
    pytest.param("zyxwvutsrq", PATTERN, id="letters-down"),
    pytest.param("bob-2024!", CONTEXT, id="username"),
    pytest.param("BobBobBob-1", CONTEXT, id="username-repeated"),
    pytest.param("bob-12345678", CONTEXT, id="username-and-sequence"),
    pytest.param("bob-iloveyou", CONTEXT, id="username-and-common"),
    pytest.param("totp-admin-1", CONTEXT, id="totp-admin"),
    pytest.param("TotpAdmin2024", CONTEXT, id="totpadmin"),
    pytest.param("Carbon.Super1", CONTEXT, id="carbon"),
    pytest.param("wso2-wso2-42", CONTEXT, id="wso2"),
]
ACCEPTED = [
    pytest.param("Kq7-bzLw", id="8-characters"),
    pytest.param(LONG_64, id="64-characters"),
    pytest.param("x7-" + "abcdefghijklmnopqrstuvwxyz0123456789-" * 6 + "q" * 31, id="256-characters"),
    pytest.param(UNICODE, id="unicode-and-spaces"),
    pytest.param("correct horse battery staple", id="passphrase"),
    pytest.param("bobsled racing team", id="username-inside-a-phrase"),
    pytest.param("lantern-orbit-walnut", id="readme-example"),
]


def cli_refused(srv: Server, *args: str, password: str) -> str:
    r = srv.cli(*args, input=password + "\n", check=False)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.startswith("totp-admin: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    if len(password.strip()) >= 6:
        assert password.strip() not in r.stderr
    return r.stderr


def users(srv: Server) -> dict[str, str]:
    return dict(line.split("\t")[:2] for line in srv.cli("user", "list").stdout.splitlines())


def session(srv: Server, user: str, password: str):
    """A session whose Basic credentials are UTF-8 (requests would encode str as Latin-1)."""
    return srv.session(user.encode("utf-8"), password.encode("utf-8"))  # type: ignore[arg-type]


def assert_logs_in(srv: Server, user: str, password: str) -> None:
    """Authenticated: a plain user then gets the declared 'not authorized' fault, never Access Denied."""
    r = session(srv, user, password).post(f"{srv.url}/initTOTP", data={"username": "admin"})
    assert r.status_code == 500 and "Access Denied" not in r.text and "TOTPAdminServiceTOTPException" in r.text, r.text


def assert_refused_login(srv: Server, user: str, password: str) -> None:
    r = session(srv, user, password).post(f"{srv.url}/initTOTP", data={"username": "admin"})
    assert r.status_code == 500 and "Access Denied" in r.text, r.text


# --- user add / user passwd ---


@pytest.mark.parametrize("password, message", REFUSED)
def test_user_add_refuses(shared_server, password, message):
    err = cli_refused(shared_server, "user", "add", "bob", password=password)
    assert err.startswith(f"totp-admin: {message}"), err
    assert "bob" not in users(shared_server)


def test_too_short_message_recommends_15(shared_server):
    err = cli_refused(shared_server, "user", "add", "bob", password="Sh0rt!x")
    assert "at least 8 characters" in err and "15 or more are recommended" in err


@pytest.mark.parametrize("password", ACCEPTED)
def test_user_add_accepts_and_the_password_logs_in(make_server, password):
    srv = make_server()
    r = srv.cli("user", "add", "bob", input=password + "\n", check=False)
    assert r.returncode == 0 and r.stdout == "added user bob (user)\n", (r.stdout, r.stderr)
    assert_logs_in(srv, "bob", password)
    assert_refused_login(srv, "bob", password + "x")


def test_passwd_refused_keeps_the_old_password(make_server):
    srv = make_server()
    srv.cli("user", "add", "bob", input=LONG_64 + "\n")
    for password, message in (("Sh0rt!x", TOO_SHORT), ("iloveyou", COMMON), ("bob-2024!", CONTEXT),
                              ("12121212121", PATTERN)):
        assert cli_refused(srv, "user", "passwd", "bob", password=password).startswith(f"totp-admin: {message}")
        assert_refused_login(srv, "bob", password)
    assert_logs_in(srv, "bob", LONG_64)
    assert srv.cli("user", "passwd", "bob", input=UNICODE + "\n").stdout == "changed the password of bob\n"
    assert_logs_in(srv, "bob", UNICODE)
    assert_refused_login(srv, "bob", LONG_64)


def test_the_username_counts_for_tenant_and_store_prefixed_users(make_server):
    srv = make_server()
    srv.cli("tenant", "add", "abc.com")
    assert cli_refused(srv, "user", "add", "carol@abc.com", password="Carol_2024").startswith(f"totp-admin: {CONTEXT}")
    assert cli_refused(srv, "user", "add", "SECONDARY/dave", password="dave-12345").startswith(f"totp-admin: {CONTEXT}")
    assert cli_refused(srv, "user", "passwd", "admin", password="admin-admin!").startswith(f"totp-admin: {CONTEXT}")


# --- TOTP_ADMIN_PASSWORD ---


@pytest.mark.parametrize("password, message", [("change-me", COMMON), ("Sh0rt!x", TOO_SHORT),
                                               ("admin-2024", CONTEXT), ("totp-admin-totp", CONTEXT)])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_refused_admin_password_stops_serve(make_server, password, message, workers):
    srv = make_server(start=False)
    srv.env = {"TOTP_ADMIN_PASSWORD": password}
    srv.start("--workers", workers, wait=False)
    assert srv.proc.wait(timeout=60) == 2
    srv.proc = None
    log = srv.log()
    assert "Traceback" not in log and "listening on" not in log, log
    assert "totp-admin: configuration error: environment: TOTP_ADMIN_PASSWORD=(not shown): " + message in log, log
    assert "leave it unset for a generated password" in log
    assert password not in log
    assert srv.database.query("SELECT COUNT(*) FROM users") == [(0,)]  # no admin half-made


def test_admin_password_is_checked_only_when_used(make_server):
    """A store that has users ignores TOTP_ADMIN_PASSWORD: servers started with an old weak value in
    their environment keep starting."""
    srv = make_server()
    assert srv.stop() == 0
    srv.env = {"TOTP_ADMIN_PASSWORD": "change-me"}
    srv.start()
    r = srv.session("admin", ADMIN_PASSWORD).get(f"{srv.url}/resetTOTP", params={"username": "admin"})
    assert r.status_code == 200, r.text


def test_accepted_admin_password_logs_in(make_server):
    srv = make_server(start=False)
    srv.env = {"TOTP_ADMIN_PASSWORD": UNICODE}
    srv.start()
    r = session(srv, "admin", UNICODE).get(f"{srv.url}/resetTOTP", params={"username": "admin"})
    assert r.status_code == 200, r.text


def test_a_password_stored_before_the_policy_keeps_working(make_server):
    """Stored hashes are verified as before: a password the policy now refuses, set by an older version
    (its hash written straight into the store), still logs in."""
    srv = make_server()
    srv.cli("user", "add", "bob", input=LONG_64 + "\n")
    engine = srv.database.engine()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET password_hash = :hash WHERE username = 'bob'"),
                     {"hash": PasswordHasher().hash("bob")})
    engine.dispose()
    assert_logs_in(srv, "bob", "bob")


# --- the rules, in core ---


def test_the_shipped_list_is_loaded():
    common = common_passwords()
    assert len(common) > 19_000
    assert {"password", "iloveyou", "changeme", "qwertyuiop"} <= common


@pytest.mark.parametrize("password, message", REFUSED)
def test_policy_refuses(password, message):
    with pytest.raises(PasswordRefused) as refused:
        check_new_password(password, "bob")
    assert str(refused.value).startswith(message)
    if len(password.strip()) >= 6:
        assert password.strip() not in str(refused.value)


@pytest.mark.parametrize("password", ACCEPTED)
def test_policy_accepts(password):
    check_new_password(password, "bob")


def test_short_usernames_do_not_eat_every_password():
    check_new_password("a-long-passphrase", "a")  # 'a' is too short to count as a context word
    check_new_password("bob-likes-jazz", "bo")
