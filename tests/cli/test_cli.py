"""End-to-end tests of the ``totp-admin`` management commands (tenant/user), checked against the real
database and a running server: a password set by the CLI is the one the service accepts."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import ADMIN_PASSWORD, TNS, TOTP_ADMIN, Server
from wire import decode_qr, secret_of

BOB_PW = "bob-first-Passw0rd"
BOB_PW2 = "bob-second-Passw0rd"
ALICE_PW = "alice-Passw0rd-4711"


@pytest.fixture
def srv(make_server) -> Server:
    """A running server: its first start created carbon.super and the admin user."""
    return make_server()


def cli_ok(srv: Server, *args: str, input: str | None = None) -> str:
    r = srv.cli(*args, input=input, check=False)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert r.stderr == ""
    return r.stdout


def cli_fails(srv: Server, *args: str, input: str | None = None) -> str:
    """Run a command that must be refused: non-zero exit, one clear line on stderr, no traceback."""
    r = srv.cli(*args, input=input, check=False)
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("totp-admin: "), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stdout == ""
    return r.stderr


def tenants(srv: Server) -> dict[str, int]:
    out = {}
    for line in cli_ok(srv, "tenant", "list").splitlines():
        domain, count = line.split("\t")
        number, noun = count.split(" ")
        assert noun == ("user" if number == "1" else "users"), line
        out[domain] = int(number)
    return out


def users(srv: Server, tenant: str | None = None) -> dict[str, str]:
    args = ("user", "list") + (("--tenant", tenant) if tenant else ())
    return dict(line.split("\t")[:2] for line in cli_ok(srv, *args).splitlines())


def init_totp(srv: Server, user: str, password: str, target: str = "bob"):
    return srv.session(user, password).post(f"{srv.url}/initTOTP", data={"username": target})


def assert_access_denied(r) -> None:
    """Authentication failed."""
    assert r.status_code == 500, r.text
    assert "Access Denied" in r.text


def assert_authenticated_user(r) -> None:
    """Authentication succeeded; a plain user then gets the declared 'not authorized' TOTPException."""
    assert r.status_code == 500, r.text
    assert "Access Denied" not in r.text
    assert "TOTPAdminServiceTOTPException" in r.text


def returned_secret(r) -> str:
    assert r.status_code == 200, r.text
    ret = ET.fromstring(r.content).find(f"{{{TNS}}}return").text
    return secret_of(decode_qr(ret))


# --- tenants ---


def test_tenant_add_then_list_with_user_counts(srv):
    assert cli_ok(srv, "tenant", "add", "abc.com") == "added tenant abc.com\n"
    assert tenants(srv) == {"abc.com": 0, "carbon.super": 1}
    cli_ok(srv, "user", "add", "alice@abc.com", "--role", "admin", input=ALICE_PW + "\n")
    cli_ok(srv, "user", "add", "bob", input=BOB_PW + "\n")
    assert tenants(srv) == {"abc.com": 1, "carbon.super": 2}
    assert cli_ok(srv, "tenant", "list") == "abc.com\t1 user\ncarbon.super\t2 users\n"
    assert srv.database.query("SELECT domain FROM tenants ORDER BY domain") == [("abc.com",), ("carbon.super",)]


def test_tenant_domain_is_lower_cased_and_duplicates_refused(srv):
    assert cli_ok(srv, "tenant", "add", "XYZ.org") == "added tenant xyz.org\n"
    err = cli_fails(srv, "tenant", "add", "xyz.ORG")
    assert "Tenant xyz.org already exists" in err
    assert tenants(srv) == {"carbon.super": 1, "xyz.org": 0}


@pytest.mark.parametrize("domain", ["", "   ", "x@y.com", "a b!", "abc.com/x"])
def test_tenant_add_refuses_invalid_domain(srv, domain):
    assert "tenant domain" in cli_fails(srv, "tenant", "add", domain)
    assert tenants(srv) == {"carbon.super": 1}


# --- users ---


def test_user_add_and_list_with_roles(srv):
    cli_ok(srv, "tenant", "add", "abc.com")
    assert cli_ok(srv, "user", "add", "bob", input=BOB_PW + "\n") == "added user bob (user)\n"
    assert (cli_ok(srv, "user", "add", "alice@abc.com", "--role", "admin", input=ALICE_PW + "\n")
            == "added user alice@abc.com (admin)\n")
    assert users(srv) == {"admin": "admin", "bob": "user", "alice@abc.com": "admin"}
    assert users(srv, "abc.com") == {"alice@abc.com": "admin"}
    assert users(srv, "ABC.COM") == {"alice@abc.com": "admin"}
    assert users(srv, "carbon.super") == {"admin": "admin", "bob": "user"}
    # Only a slow salted hash is stored, never the password.
    hashes = dict(srv.database.query("SELECT username, password_hash FROM users"))
    assert BOB_PW not in hashes["bob"] and hashes["bob"].startswith("$argon2")
    assert ALICE_PW not in hashes["alice"]
    # The passwords given on stdin are the ones the service accepts, with the roles given.
    assert_authenticated_user(init_totp(srv, "bob", BOB_PW))  # role user: refused after authenticating
    cli_ok(srv, "user", "add", "carol@abc.com", input="carol-Passw0rd-4711\n")
    returned_secret(init_totp(srv, "alice@abc.com", ALICE_PW, target="carol@abc.com"))  # admin of abc.com: 200
    assert_authenticated_user(init_totp(srv, "alice@abc.com", ALICE_PW, target="bob"))  # not of carbon.super


def test_password_is_never_taken_from_the_command_line(srv):
    for args in (("user", "add", "bob", BOB_PW), ("user", "add", "bob", "--password", BOB_PW),
                 ("user", "passwd", "admin", BOB_PW)):
        r = srv.cli(*args, input=BOB_PW + "\n", check=False)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "unrecognized arguments" in r.stderr
    assert users(srv) == {"admin": "admin"}
    assert "--password" not in srv.cli("user", "add", "--help").stdout
    assert "--password" not in srv.cli("user", "passwd", "--help").stdout
    assert "read from stdin" in srv.cli("user", "--help").stdout


def test_duplicate_user_refused_and_original_kept(srv):
    cli_ok(srv, "user", "add", "bob", input=BOB_PW + "\n")
    for name in ("bob", "bob@carbon.super", "bob@CARBON.SUPER"):
        err = cli_fails(srv, "user", "add", name, "--role", "admin", input="other-password\n")
        assert "User bob already exists" in err
    assert users(srv) == {"admin": "admin", "bob": "user"}
    assert_authenticated_user(init_totp(srv, "bob", BOB_PW))
    assert_access_denied(init_totp(srv, "bob", "other-password"))


def test_user_in_unknown_tenant_refused(srv):
    err = cli_fails(srv, "user", "add", "carol@nope.com", input="carol-Passw0rd-4711\n")
    assert "Invalid tenant domain nope.com" in err
    assert "nope.com" not in tenants(srv)  # not created on the fly
    assert users(srv) == {"admin": "admin"}
    assert users(srv, "nope.com") == {}


def test_malformed_username_refused(srv):
    assert "empty name" in cli_fails(srv, "user", "add", "@abc.com", input="x-Passw0rd\n")
    assert "missing or empty" in cli_fails(srv, "user", "add", "   ", input="x-Passw0rd\n")
    assert users(srv) == {"admin": "admin"}


@pytest.mark.parametrize("stdin", ["\n", "", "\r\n"])
def test_empty_password_refused(srv, stdin):
    err = cli_fails(srv, "user", "add", "dave", input=stdin)
    assert "the password is empty" in err
    assert users(srv) == {"admin": "admin"}


def test_passwd_changes_the_password_the_service_accepts(srv):
    cli_ok(srv, "user", "add", "bob", input=BOB_PW + "\n")
    # Right and wrong password differ: right authenticates (then 'not authorized'), wrong is Access Denied.
    assert_authenticated_user(init_totp(srv, "bob", BOB_PW))  # also puts bob into the credential cache
    assert_access_denied(init_totp(srv, "bob", BOB_PW2))

    assert cli_ok(srv, "user", "passwd", "bob", input=BOB_PW2 + "\n") == "changed the password of bob\n"

    assert_access_denied(init_totp(srv, "bob", BOB_PW))  # the cached old password is no longer good
    assert_authenticated_user(init_totp(srv, "bob", BOB_PW2))
    assert users(srv) == {"admin": "admin", "bob": "user"}  # role unchanged


def test_passwd_of_admin_takes_effect_for_operations(srv):
    r = srv.session().get(f"{srv.url}/resetTOTP", params={"username": "admin"})
    assert r.status_code == 200, r.text
    cli_ok(srv, "user", "passwd", "admin", input="new-admin-Passw0rd\n")
    assert_access_denied(srv.session().get(f"{srv.url}/resetTOTP", params={"username": "admin"}))
    r = srv.session("admin", "new-admin-Passw0rd").get(f"{srv.url}/resetTOTP", params={"username": "admin"})
    assert r.status_code == 200 and ">true<" in r.text, r.text


def test_passwd_refuses_empty_password_and_keeps_the_old_one(srv):
    cli_ok(srv, "user", "add", "bob", input=BOB_PW + "\n")
    assert "the password is empty" in cli_fails(srv, "user", "passwd", "bob", input="\n")
    assert_authenticated_user(init_totp(srv, "bob", BOB_PW))


def test_passwd_of_unknown_user_refused(srv):
    assert "User nobody does not exist" in cli_fails(srv, "user", "passwd", "nobody", input="x-Passw0rd\n")
    assert "Invalid tenant domain nope.com" in cli_fails(srv, "user", "passwd", "x@nope.com", input="x-Passw0rd\n")


def test_remove_user_removes_login_and_totp_data(srv):
    cli_ok(srv, "user", "add", "bob", input=BOB_PW + "\n")
    assert_authenticated_user(init_totp(srv, "bob", BOB_PW))
    first_secret = returned_secret(init_totp(srv, "admin", ADMIN_PASSWORD, target="bob"))
    assert srv.database.query("SELECT COUNT(*) FROM claims")[0][0] > 0

    assert cli_ok(srv, "user", "remove", "bob") == "removed user bob\n"
    assert users(srv) == {"admin": "admin"}
    assert srv.database.query("SELECT COUNT(*) FROM claims")[0][0] == 0
    assert_access_denied(init_totp(srv, "bob", BOB_PW))  # even though bob's login was cached
    assert "User bob does not exist" in cli_fails(srv, "user", "remove", "bob")

    # A new bob starts from scratch: no TOTP secret of the old one.
    cli_ok(srv, "user", "add", "bob", input=BOB_PW2 + "\n")
    assert returned_secret(init_totp(srv, "admin", ADMIN_PASSWORD, target="bob")) != first_secret


def test_cli_on_a_fresh_store(make_server):
    """Before the first `serve`: the built-in carbon.super exists, so super-tenant users can be added."""
    srv = make_server(start=False)
    assert cli_ok(srv, "tenant", "add", "abc.com") == "added tenant abc.com\n"
    assert tenants(srv) == {"abc.com": 0, "carbon.super": 0}
    assert cli_ok(srv, "user", "add", "bob", input=BOB_PW + "\n") == "added user bob (user)\n"
    cli_ok(srv, "user", "add", "alice@abc.com", "--role", "admin", input=ALICE_PW + "\n")
    assert tenants(srv) == {"abc.com": 1, "carbon.super": 1}
    assert users(srv) == {"alice@abc.com": "admin", "bob": "user"}
    # The server then starts on this store, and bob's password is the one it accepts.
    srv.start()
    assert_authenticated_user(init_totp(srv, "bob", BOB_PW))
    assert_access_denied(init_totp(srv, "bob", BOB_PW2))


def test_top_help_line_is_plain_text():
    r = subprocess.run([str(TOTP_ADMIN), "--help"], capture_output=True, text=True, timeout=60, check=True)
    assert "\ntotp-admin: serve the service and manage its users and tenants.\n" in r.stdout, r.stdout
    assert "``" not in r.stdout


def test_output_into_a_closed_pipe_ends_quietly(srv):
    """`totp-admin ... | head` where head has gone: no traceback, a non-zero status, for every command
    that writes to stdout."""
    assert srv.session().post(f"{srv.url}/initTOTP", data={"username": "admin"}).status_code == 200
    commands = [("qr", "admin", "--format", "png"), ("qr", "admin", "--format", "svg"), ("qr", "admin"),
                ("user", "list"), ("tenant", "list"), ("tenant", "add", "abc.com"), ("audit",), ("keys", "list"),
                ("db", "status"), ("--help",)]
    for args in commands:
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before the first byte
        store = () if args == ("--help",) else ("--data-dir", str(srv.data_dir), "--database-url", srv.database.url)
        try:
            r = subprocess.run([str(TOTP_ADMIN), *args, *store], stdout=write_end, stderr=subprocess.PIPE,
                               text=True, timeout=60)
        finally:
            os.close(write_end)
        assert r.stderr == "", (args, r.stderr)
        assert r.returncode != 0 or args == ("--help",), args  # argparse ignores its own write errors
    # Its line is written inside the transaction: exit 1 and nothing added, as for any refused command.
    assert tenants(srv) == {"carbon.super": 1}


def run_cli(tmp_path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """`totp-admin` with a database URL of the test's choosing (Server.cli always appends its own)."""
    return subprocess.run([str(TOTP_ADMIN), *args, "--data-dir", str(tmp_path / "data")], input=input,
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


@pytest.mark.parametrize("args, stdin", [(("user", "list"), None), (("tenant", "add", "abc.com"), None),
                                         (("user", "add", "bob"), BOB_PW + "\n")])
def test_unreachable_database_gives_a_clear_message(tmp_path, args, stdin):
    r = run_cli(tmp_path, *args, "--database-url", "postgresql+psycopg://root:Hunter2-db@127.0.0.1:1/nothing",
                input=stdin)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("totp-admin: ") and "database" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Hunter2-db" not in r.stderr and BOB_PW not in r.stderr


def test_unusable_database_url_is_a_configuration_error(tmp_path):
    r = run_cli(tmp_path, "user", "list", "--database-url", "nosuchdb://root:Hunter2-db@host/db")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("totp-admin: configuration error") and "nosuchdb" in r.stderr, r.stderr
    assert "Hunter2-db" not in r.stderr
