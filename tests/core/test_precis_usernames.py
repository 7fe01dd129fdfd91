"""New usernames follow PRECIS UsernameCaseMapped (RFC 8265): `user add` refuses invisible, bidi-control,
space and other disallowed code points with a clear message, stores the width-mapped NFC name with its
case, and refuses a name that differs from a user of the tenant only in case or width. Names an older
version stored, whatever they are, keep logging in and being managed over SOAP and by the CLI; the
schema upgrade that adds the key leaves them working."""

from __future__ import annotations

import string
import unicodedata
import uuid
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa
from alembic import command

from conftest import ADMIN_PASSWORD, TNS, Server
from totpadmin.core.errors import InvalidUsername
from totpadmin.core.passwords import PasswordHasher
from totpadmin.core.precis_usernames import _profile, name_key, new_username
from totpadmin.store import schema
from wire import decode_qr, post_soap11

PW = "a-password-of-theirs-4711"

REFUSED = [
    pytest.param("bo\u200bb", "U+200B ZERO WIDTH SPACE at position 3", id="zero-width-space"),
    pytest.param("\u202ebob", "U+202E RIGHT-TO-LEFT OVERRIDE at position 1", id="rtl-override"),
    pytest.param("bob\u200e", "U+200E LEFT-TO-RIGHT MARK", id="ltr-mark"),
    pytest.param("bo\u200db", "an invisible joining character: U+200D ZERO WIDTH JOINER", id="zero-width-joiner"),
    pytest.param("\ufeffbob", "U+FEFF ZERO WIDTH NO-BREAK SPACE", id="bom"),
    pytest.param("bob\u00adx", "U+00AD SOFT HYPHEN", id="soft-hyphen"),
    pytest.param("bob smith", "a space: U+0020", id="space"),
    pytest.param("bob\u00a0smith", "a compatibility character (such as a no-break space or a ligature): U+00A0",
                 id="no-break-space"),
    pytest.param("\ufb01ona", "U+FB01 LATIN SMALL LIGATURE FI", id="ligature"),
    pytest.param("bob\U0001f338", "a symbol: U+1F338 CHERRY BLOSSOM", id="emoji"),
    pytest.param("\u05e9\u05dc\u05d5\u05ddabc", "mixes right-to-left and left-to-right", id="bidi-rule"),
]


def refused(srv: Server, *args: str, stdin: str | None = PW + "\n") -> str:
    r = srv.cli(*args, input=stdin, check=False)
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("totp-admin: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


def users(srv: Server) -> dict[str, str]:
    return dict(line.split("\t")[:2] for line in srv.cli("user", "list").stdout.splitlines())


def authenticated(srv: Server, user: str, password: str = PW) -> bool:
    """Whether ``user`` signs in (UTF-8 Basic credentials): any answer but Access Denied."""
    s = srv.session(user.encode("utf-8"), password.encode("utf-8"))  # type: ignore[arg-type]
    r = s.post(f"{srv.url}/isTOTPEnabled", data={"username": user})
    return "Access Denied" not in r.text


def insert_as_older_version(srv: Server, name: str, role: str = "user", password: str = PW) -> None:
    """A user row as an older version wrote it: any name, no key."""
    engine = srv.database.engine()
    with engine.begin() as conn:
        has_uuid = any(c["name"] == "uuid" for c in sa.inspect(conn).get_columns("users"))  # schema 0005 on
        conn.execute(sa.text(f"INSERT INTO users ({'uuid, ' if has_uuid else ''}tenant_id, username, password_hash, "
                             f"role, created_at) SELECT {':uuid, ' if has_uuid else ''}id, :name, :hash, :role, "
                             "CURRENT_TIMESTAMP FROM tenants WHERE domain = 'carbon.super'"),
                     {"name": name, "hash": PasswordHasher().hash(password), "role": role, "uuid": str(uuid.uuid4())})
    engine.dispose()


# --- user add ---


@pytest.mark.parametrize("name, words", REFUSED)
def test_user_add_refuses_disallowed_code_points(shared_server, name, words):
    err = refused(shared_server, "user", "add", name, stdin=None)  # refused before asking the password
    assert words in err, err
    assert "usernames follow RFC 8265 (PRECIS)" in err or "RFC 8265" in err
    assert name not in err  # the message names the code point, not the (invisible) name
    assert name not in users(shared_server)


@pytest.mark.parametrize("name", ["bjørn", "名前", "Ünïcødé", "SECONDARY/bob.smith", "bob_o'neil+tag"])
def test_user_add_accepts_names_of_every_script(make_server, name):
    srv = make_server()
    assert srv.cli("user", "add", name, input=PW + "\n").stdout == f"added user {name} (user)\n"
    assert users(srv)[name] == "user"
    assert authenticated(srv, name)


def test_full_width_names_are_width_mapped(make_server):
    srv = make_server()
    assert srv.cli("user", "add", "ＢＯＢ", input=PW + "\n").stdout == "added user BOB (user)\n"
    assert srv.database.query("SELECT username, username_key FROM users WHERE role = 'user'") == [("BOB", "bob")]
    assert authenticated(srv, "BOB")


def test_decomposed_names_are_stored_composed(make_server):
    srv = make_server()
    decomposed = unicodedata.normalize("NFD", "José")
    assert srv.cli("user", "add", decomposed, input=PW + "\n").stdout == "added user José (user)\n"
    assert srv.database.query("SELECT username FROM users WHERE role = 'user'") == [("José",)]


def test_names_differing_only_in_case_or_width_are_one_user(make_server):
    srv = make_server()
    srv.cli("tenant", "add", "abc.com")
    srv.cli("user", "add", "Bob", input=PW + "\n")
    srv.cli("user", "add", "SECONDARY/Carol", input=PW + "\n")
    same = " (usernames that differ only in case or width name the same user)\n"
    for name in ("bob", "BOB", "ｂｏｂ", "bob@carbon.super"):
        assert refused(srv, "user", "add", name) == "totp-admin: User Bob already exists" + same
    assert refused(srv, "user", "add", "secondary/carol") == "totp-admin: User SECONDARY/Carol already exists" + same
    assert refused(srv, "user", "add", "Bob") == "totp-admin: User Bob already exists\n"
    assert srv.cli("user", "add", "bob@abc.com", input=PW + "\n").returncode == 0  # another tenant
    assert users(srv) == {"admin": "admin", "Bob": "user", "SECONDARY/Carol": "user", "bob@abc.com": "user"}
    # The name keeps its case, and logins send it as stored (exact, as before).
    assert authenticated(srv, "Bob")
    assert not authenticated(srv, "bob")


# --- names stored by an older version ---


@pytest.mark.parametrize("name", ["Legacy User", "bo\u200bb", "ｆｕｌｌ", "\u202eevil"])
def test_a_name_precis_refuses_keeps_working(make_server, name):
    srv = make_server()
    insert_as_older_version(srv, name)
    assert users(srv)[name] == "user"
    assert authenticated(srv, name)
    # Managed over SOAP by the admin, and by the CLI.
    r = post_soap11(srv.session(), srv.url, "initTOTP", name)
    assert r.status_code == 200, r.text
    returned = ET.fromstring(r.content).find(f".//{{{TNS}}}return").text
    assert decode_qr(returned).startswith("otpauth://totp/carbon.super:")
    assert srv.cli("user", "passwd", name, input="another-passphrase-4711\n").returncode == 0
    assert authenticated(srv, name, "another-passphrase-4711") and not authenticated(srv, name)
    assert srv.cli("user", "role", name, "admin").returncode == 0
    assert users(srv)[name] == "admin"
    assert srv.cli("user", "remove", name).returncode == 0
    assert name not in users(srv)


def test_upgrade_keys_existing_names_and_keeps_them_working(make_server):
    """A store of schema 0001 with names that clash in case or width, or that PRECIS refuses: `db upgrade`
    succeeds, everyone still logs in, and a new name that clashes with any keyed one is refused."""
    srv = make_server(start=False)
    engine = srv.database.engine()
    srv.data_dir.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        cfg = schema._config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(sa.text("INSERT INTO tenants (domain, created_at) VALUES ('carbon.super', CURRENT_TIMESTAMP)"))
    engine.dispose()
    old = ["admin", "Bob", "bob", "ＢＯＢ", "x y", "Zoë"]
    for name in old:
        insert_as_older_version(srv, name, role="admin" if name == "admin" else "user",
                                password=ADMIN_PASSWORD if name == "admin" else PW)
    r = srv.cli("db", "upgrade", check=False)
    assert r.returncode == 0 and r.stdout.startswith(f"schema at revision {schema.head_revision()} (was 0001)"), (r.stdout, r.stderr)
    assert srv.database.query("SELECT username, username_key FROM users ORDER BY id") == [
        ("admin", "admin"), ("Bob", "bob"), ("bob", None), ("ＢＯＢ", None), ("x y", None), ("Zoë", "zoë")]
    srv.start()
    for name in old[1:]:
        assert authenticated(srv, name), name
    assert "already exists" in refused(srv, "user", "add", "BoB")
    assert "already exists" in refused(srv, "user", "add", "ZOË")
    assert srv.cli("user", "add", "alice", input=PW + "\n").returncode == 0


# --- core ---


@pytest.mark.parametrize("name", [*string.printable.strip(), "bob", "SECONDARY/Bob@x", "A~!#$%^&*()_+{}|:<>?"])
def test_the_ascii_shortcut_gives_precis_answer(name):
    """new_username skips the library for printable ASCII: it must answer exactly as PRECIS would."""
    if not name.isprintable() or " " in name:
        return
    assert new_username(name).stored == _profile("UsernameCasePreserved").enforce(name)
    assert new_username(name).key == _profile("UsernameCaseMapped").enforce(name)


@pytest.mark.parametrize("name, _words", REFUSED)
def test_refused_names_have_no_key(name, _words):
    with pytest.raises(InvalidUsername):
        new_username(name)
    assert name_key(name) is None
