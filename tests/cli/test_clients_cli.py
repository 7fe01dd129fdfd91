"""``totp-admin client add/list/remove/rotate-secret`` against a real database and a running server: the
secret it prints is the one the token endpoint accepts; no command prints a stored secret again."""

from __future__ import annotations

import pytest

from conftest import Server

from test_cli import cli_ok


@pytest.fixture
def srv(make_server) -> Server:
    return make_server()


def token(srv: Server, client_id: str, secret: str) -> int:
    return srv.session(None).post(f"{srv.base}/oauth2/token", data={"grant_type": "client_credentials"},
                                  auth=(client_id, secret)).status_code


def parse(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_add_list_rotate_remove(srv):
    out = cli_ok(srv, "client", "add", "shop", "--tenant", "Carbon.Super", "--scope", "mfa:devices", "--totp", "off")
    assert out.startswith("added client shop in carbon.super\n") and "shown only this once" in out
    client_id, secret = parse(out)["client_id"], parse(out)["client_secret"]
    assert token(srv, client_id, secret) == 200

    listing = cli_ok(srv, "client", "list")
    assert listing == f"carbon.super\tshop\t{client_id}\tmfa:devices\ttotp=off\n"
    assert secret not in listing
    assert cli_ok(srv, "client", "list", "--tenant", "abc.com") == ""

    rotated = cli_ok(srv, "client", "rotate-secret", "shop", "--tenant", "carbon.super")
    new_secret = rotated.splitlines()[0].rsplit(" ", 1)[1]
    assert new_secret != secret
    assert token(srv, client_id, secret) == 401 and token(srv, client_id, new_secret) == 200

    assert cli_ok(srv, "client", "remove", "shop", "--tenant", "carbon.super") == "removed client shop of carbon.super\n"
    assert token(srv, client_id, new_secret) == 401
    assert cli_ok(srv, "client", "list") == ""


def test_refusals_are_one_clear_line(srv):
    cli_ok(srv, "client", "add", "shop", "--tenant", "carbon.super")
    for args, words in [(("client", "add", "shop", "--tenant", "carbon.super"), "already exists"),
                        (("client", "add", "shop", "--tenant", "nowhere.org"), "Invalid tenant domain"),
                        (("client", "remove", "nobody", "--tenant", "carbon.super"), "does not exist"),
                        (("client", "rotate-secret", "nobody", "--tenant", "carbon.super"), "does not exist"),
                        (("client", "add", "a b", "--tenant", "carbon.super"), "not a valid client name")]:
        r = srv.cli(*args, check=False)
        assert r.returncode == 1 and words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    r = srv.cli("client", "add", "x", "--tenant", "carbon.super", "--scope", "openid", check=False)
    assert r.returncode == 2 and "invalid choice" in r.stderr  # argparse
    r = srv.cli("client", "add", "x", check=False)
    assert r.returncode == 2 and "--tenant" in r.stderr
