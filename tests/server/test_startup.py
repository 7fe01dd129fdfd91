"""End-to-end tests of `totp-admin serve` at start and stop: the first admin, configuration errors that
stop the server with a message naming the culprit, the key file's permissions, TLS options, secrets kept
out of the log, and a clean exit on SIGTERM."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from conftest import ADMIN_PASSWORD, CONF, ROOT, TNS, Server, free_port
from wire import decode_qr, post_soap11, secret_of

GENERATED = re.compile(r"Created user 'admin' in carbon\.super with password: (\S+)")


def reset_totp(srv: Server, password: str, user: str = "admin"):
    return srv.session(user, password).get(f"{srv.url}/resetTOTP", params={"username": "admin"})


def assert_reset_ok(r) -> None:
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)
    assert root.tag == f"{{{TNS}}}resetTOTPResponse"
    assert root.find(f"{{{TNS}}}return").text == "true"


def assert_access_denied(r) -> None:
    assert r.status_code == 500, r.text
    assert "Access Denied" in r.text


def exits_with(srv: Server, *extra: str, timeout: float = 30) -> int:
    srv.start(*extra, wait=False)
    code = srv.proc.wait(timeout=timeout)
    srv.proc = None
    return code


def assert_clean_error(log: str, *fragments: str) -> None:
    assert "Traceback" not in log, log
    for fragment in fragments:
        assert fragment in log, (fragment, log)
    assert "listening on" not in log, log


# --- the first admin ---


def test_generated_admin_password_printed_once_and_works(make_server):
    srv = make_server(start=False)
    srv.env = {"TOTP_ADMIN_PASSWORD": ""}
    srv.start()
    found = GENERATED.findall(srv.log())
    assert len(found) == 1, srv.log()
    password = found[0]
    assert len(password) >= 16 and password != ADMIN_PASSWORD
    assert_reset_ok(reset_totp(srv, password))
    assert_access_denied(reset_totp(srv, password + "x"))
    assert srv.stop() == 0

    before = len(srv.log())
    srv.start()
    assert_reset_ok(reset_totp(srv, password))
    assert srv.stop() == 0
    restarted = srv.log()[before:]
    assert "listening on" in restarted
    assert "Created user" not in restarted
    assert password not in restarted
    assert srv.log().count(password) == 1


def test_admin_password_from_environment_not_printed(make_server):
    srv = make_server()
    log = srv.log()
    assert "Created user 'admin' in carbon.super with the password from TOTP_ADMIN_PASSWORD" in log
    assert ADMIN_PASSWORD not in log
    assert not GENERATED.search(log)
    assert_reset_ok(reset_totp(srv, ADMIN_PASSWORD))
    assert srv.stop() == 0
    assert ADMIN_PASSWORD not in srv.log()


def test_existing_admin_password_kept_on_restart_with_another_env_password(make_server):
    srv = make_server(start=False)
    srv.env = {"TOTP_ADMIN_PASSWORD": ""}
    srv.start()
    password = GENERATED.findall(srv.log())[0]
    assert srv.stop() == 0
    srv.env = {"TOTP_ADMIN_PASSWORD": "another-env-Passw0rd"}
    before = len(srv.log())
    srv.start()
    assert "Created user" not in srv.log()[before:]
    assert_reset_ok(reset_totp(srv, password))
    assert_access_denied(reset_totp(srv, "another-env-Passw0rd"))


# --- configuration errors ---


def names_key_and_value(log: str, key: str, value: str) -> bool:
    """The message names ``key`` with ``value`` next to it (key=value, key='value', key: "value", ...)."""
    return re.search(rf"\b{re.escape(key)}\W{{1,3}}{re.escape(value)}(\W|$)", log) is not None


# (the properties written, the key and value the message must name, other words it must hold)
BAD_PROPERTIES = [
    ({"timeStepSize": "abc"}, "timeStepSize", "abc", ["whole number"]),
    ({"timeStepSize": "0"}, "timeStepSize", "0", []),
    ({"encodingMethod": "Base16"}, "encodingMethod", "Base16", ["Base32"]),
    ({"windowSize": "0"}, "windowSize", "0", []),
    ({"windowSize": "22"}, "windowSize", "22", []),
    ({"secretKeyLength": "8"}, "secretKeyLength", "8", []),
    ({"enableTOTP": "maybe"}, "enableTOTP", "maybe", ["true or false"]),
    ({"chunkedBase64": "1"}, "chunkedBase64", "1", []),
    ({"UseCommonIssuer": "yes"}, "UseCommonIssuer", "yes", []),
    ({"UseCommonIssuer": "true"}, "UseCommonIssuer", "true", ["Issuer"]),  # ... but no Issuer
    ({"noSuchKey": "42"}, "noSuchKey", "42", ["unknown key"]),
    ({"trustedProxies": "127.0.0.1, nginx"}, "trustedProxies", "127.0.0.1, nginx", ["'nginx'", "not an IP address"]),
    ({"timestepsize": "30"}, "timestepsize", "30", ["unknown key"]),  # keys are case-sensitive
]


@pytest.mark.parametrize("properties, key, value, words", [
    pytest.param(*case, id="-".join(f"{k}={v}" for k, v in case[0].items())) for case in BAD_PROPERTIES
])
def test_bad_totp_property_stops_the_server(make_server, properties, key, value, words):
    srv = make_server(properties=properties, start=False)
    assert exits_with(srv) == 2
    log = srv.log()
    assert_clean_error(log, str(srv.conf_dir / "totp.properties"), "configuration error", *words)
    assert names_key_and_value(log, key, value), log


def test_missing_totp_properties_stops_the_server(make_server):
    srv = make_server(start=False)
    (srv.conf_dir / "totp.properties").unlink()
    assert exits_with(srv) == 2
    assert_clean_error(srv.log(), str(srv.conf_dir / "totp.properties"), "not found")


@pytest.mark.parametrize("name, value, words", [
    ("TOTP_CREDENTIAL_CACHE_SECONDS", "0", ["between 1 and 3600"]),
    ("TOTP_CREDENTIAL_CACHE_SECONDS", "a minute", ["whole number"]),
    ("TOTP_MAX_BODY_BYTES", "12", ["between 1024"]),
])
def test_bad_environment_value_stops_the_server(make_server, name, value, words):
    srv = make_server(start=False)
    srv.env[name] = value
    assert exits_with(srv) == 2
    log = srv.log()
    assert_clean_error(log, f"environment {name}", "configuration error", *words)
    assert names_key_and_value(log, name, value), log


CARBON_NS = "http://wso2.org/projects/carbon/carbon.xml"


def carbon(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Server xmlns="{CARBON_NS}">{body}</Server>\n'


@pytest.mark.parametrize("xml", ["<Server><Ports>", "this is not xml", "", "<Server></Srv>"],
                         ids=["truncated", "text", "empty", "mismatched"])
def test_malformed_carbon_xml_stops_the_server(make_server, xml):
    srv = make_server(start=False)
    (srv.conf_dir / "carbon.xml").write_text(xml)
    assert exits_with(srv) == 2
    assert_clean_error(srv.log(), str(srv.conf_dir / "carbon.xml"), "configuration error", "not well-formed XML")


@pytest.mark.parametrize("body, key, value", [
    ("<Ports><Offset>-1</Offset></Ports>", "Ports/Offset", "-1"),
    ("<Ports><Offset>ten</Offset></Ports>", "Ports/Offset", "ten"),
    ("<HideAdminServiceWSDLs>yes</HideAdminServiceWSDLs>", "HideAdminServiceWSDLs", "yes"),
    ("<EnableEmailUserName>1</EnableEmailUserName>", "EnableEmailUserName", "1"),
    ("<HostName>bad host/name</HostName>", "HostName", "bad host/name"),
], ids=["offset-negative", "offset-word", "hide-wsdl", "email", "hostname"])
def test_bad_carbon_xml_value_stops_the_server(make_server, body, key, value):
    srv = make_server(start=False)
    (srv.conf_dir / "carbon.xml").write_text(carbon(body))
    assert exits_with(srv) == 2
    log = srv.log()
    assert_clean_error(log, str(srv.conf_dir / "carbon.xml"), "configuration error")
    assert names_key_and_value(log, key, value), log


def test_missing_carbon_xml_stops_the_server(make_server):
    srv = make_server(start=False)
    (srv.conf_dir / "carbon.xml").unlink()
    assert exits_with(srv) == 2
    assert_clean_error(srv.log(), str(srv.conf_dir / "carbon.xml"), "not found")


def test_config_error_leaves_nothing_behind(make_server):
    """A refused configuration is checked before the store is touched: no data dir, no admin."""
    srv = make_server(properties={"windowSize": "abc"}, start=False)
    assert exits_with(srv) == 2
    assert not (srv.data_dir / "secret-keys.json").exists()
    assert "Created user" not in srv.log()


# --- the key file ---


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_readable_by_others_stops_the_server(make_server, mode):
    srv = make_server()
    r = srv.session().post(f"{srv.url}/initTOTP", data={"username": "admin"})
    assert r.status_code == 200, r.text
    secret = secret_of(decode_qr(ET.fromstring(r.content).find(f"{{{TNS}}}return").text))
    assert srv.stop() == 0
    key_file = srv.data_dir / "secret-keys.json"
    assert key_file.stat().st_mode & 0o777 == 0o600  # as created

    key_file.chmod(mode)
    before = len(srv.log())
    assert exits_with(srv) == 2
    log = srv.log()[before:]
    assert_clean_error(log, str(key_file), f"{mode:04o}", "chmod 600")

    # Fixed, the server starts again with its keys intact: initTOTP keeps and decrypts the old secret.
    key_file.chmod(0o600)
    srv.start()
    r = srv.session().post(f"{srv.url}/initTOTP", data={"username": "admin"})
    assert r.status_code == 200, r.text
    assert secret_of(decode_qr(ET.fromstring(r.content).find(f"{{{TNS}}}return").text)) == secret


def test_missing_key_file_with_sealed_secrets_refuses_to_start(make_server):
    srv = make_server()
    r = srv.session().post(f"{srv.url}/initTOTP", data={"username": "admin"})
    assert r.status_code == 200, r.text
    assert srv.stop() == 0
    assert srv.database.query("SELECT COUNT(*) FROM claims WHERE key_id IS NOT NULL")[0][0] > 0
    key_file = srv.data_dir / "secret-keys.json"
    key_file.unlink()
    before = len(srv.log())
    srv.start(wait=False)
    try:
        code = srv.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        code = None
    assert code == 2, f"the server started without the keys of its stored secrets:\n{srv.log()[before:]}"
    assert_clean_error(srv.log()[before:], str(key_file))
    assert not key_file.exists()  # no new key ring in place of the one to restore


def test_corrupt_key_file_stops_the_server(make_server):
    srv = make_server()
    assert srv.stop() == 0
    key_file = srv.data_dir / "secret-keys.json"
    key_file.write_text("{not json")
    before = len(srv.log())
    assert exits_with(srv) == 2
    assert_clean_error(srv.log()[before:], str(key_file), "not a valid key file")


# --- TLS options ---


def test_missing_tls_cert_stops_the_server(make_server, tmp_path):
    srv = make_server(start=False)
    missing = tmp_path / "no-such-cert.pem"
    key = tmp_path / "key.pem"
    key.write_text("unused")
    assert exits_with(srv, "--tls-cert", str(missing), "--tls-key", str(key)) == 2
    assert_clean_error(srv.log(), "tls-cert", str(missing), "file not found")


def test_missing_tls_key_stops_the_server(make_server, tmp_path):
    srv = make_server()
    assert srv.stop() == 0
    missing = tmp_path / "no-such-key.pem"
    before = len(srv.log())
    assert exits_with(srv, "--tls-cert", str(srv.data_dir / "tls" / "server.crt"), "--tls-key", str(missing)) == 2
    assert_clean_error(srv.log()[before:], "tls-key", str(missing), "file not found")


def test_tls_cert_without_key_stops_the_server(make_server):
    srv = make_server()
    assert srv.stop() == 0
    before = len(srv.log())
    assert exits_with(srv, "--tls-cert", str(srv.data_dir / "tls" / "server.crt")) == 2
    assert_clean_error(srv.log()[before:], "tls-cert", "tls-key", "both or neither")


def test_unreadable_tls_cert_stops_the_server(make_server, tmp_path):
    srv = make_server(start=False)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    assert exits_with(srv, "--tls-cert", str(bad), "--tls-key", str(bad)) == 2
    assert_clean_error(srv.log(), "TLS configuration error", str(bad))


def test_tls_key_not_matching_cert_stops_the_server(make_server, tmp_path):
    # Two data dirs, two generated certificates: cert of one, key of the other.
    other = make_server()
    assert other.stop() == 0
    cert = tmp_path / "a.crt"
    shutil.copy(other.data_dir / "tls" / "server.crt", cert)
    shutil.rmtree(other.data_dir / "tls")
    other.start()
    assert other.stop() == 0
    before = len(other.log())
    assert exits_with(other, "--tls-cert", str(cert), "--tls-key", str(other.data_dir / "tls" / "server.key")) == 2
    assert_clean_error(other.log()[before:], "TLS configuration error", "does not match", str(cert))


def test_operator_tls_cert_is_served(make_server, tmp_path):
    srv = make_server()
    assert srv.stop() == 0
    tls_dir = srv.data_dir / "tls"
    cert, key = tmp_path / "op.crt", tmp_path / "op.key"
    shutil.copy(tls_dir / "server.crt", cert)
    shutil.copy(tls_dir / "server.key", key)
    shutil.copy(tls_dir / "ca.crt", tmp_path / "ca.crt")
    shutil.rmtree(tls_dir)
    srv.start("--tls-cert", str(cert), "--tls-key", str(key))
    assert not (tls_dir / "server.crt").exists()  # nothing generated
    session = srv.session()
    session.verify = str(tmp_path / "ca.crt")
    assert_reset_ok(session.get(f"{srv.url}/resetTOTP", params={"username": "admin"}))


# --- secrets stay out of the log ---


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_secrets_never_in_the_log(make_server, level):
    srv = make_server(start=False)
    srv.start("--log-level", level)
    session = srv.session()
    r = session.post(f"{srv.url}/initTOTP", data={"username": "admin"})
    assert r.status_code == 200, r.text
    returned = ET.fromstring(r.content).find(f"{{{TNS}}}return").text
    secret = secret_of(decode_qr(returned))
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret

    r = post_soap11(session, srv.url, "refreshSecretKey", "admin")
    assert r.status_code == 200, r.text
    sealed = re.search(r"<ns:return>([^<]+)</ns:return>", r.text).group(1)
    r = session.post(f"{srv.url}/initTOTP", data={"username": "admin"})
    new_secret = secret_of(decode_qr(ET.fromstring(r.content).find(f"{{{TNS}}}return").text))
    assert new_secret != secret

    wrong = "wrong-Guess-4711"
    assert_access_denied(reset_totp(srv, wrong))
    assert srv.stop() == 0

    log = srv.log()
    assert "listening on" in log and 'POST /services/TOTPAdminService/initTOTP" 200' in log
    for value in (secret, new_secret, secret.lower(), "".join(returned.split())[:40], sealed[:40],
                  ADMIN_PASSWORD, wrong):
        assert value not in log, value
    assert base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode() not in log


# --- stopping ---


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_cleanly(make_server, signum):
    srv = make_server()
    assert_reset_ok(reset_totp(srv, ADMIN_PASSWORD))
    proc = srv.proc
    proc.send_signal(signum)
    assert proc.wait(timeout=20) == 0
    srv.proc = None
    log = srv.log()
    assert "stopped (0 calls still in flight)" in log
    assert "Traceback" not in log
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


def test_stop_returns_zero(make_server):
    srv = make_server()
    assert srv.stop() == 0
    srv.start()  # and a restart on the same data works
    assert_reset_ok(reset_totp(srv, ADMIN_PASSWORD))
    assert srv.stop() == 0


def test_port_in_use_exits_with_an_error(make_server):
    srv = make_server(start=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", srv.port))
        taken.listen()
        srv.start(wait=False)
        try:
            code = srv.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not exit although it cannot listen:\n{srv.log()}")
    assert code != 0
    assert_clean_error(srv.log(), str(srv.port), "Address already in use")


def test_bad_database_url_stops_the_server(make_server):
    srv = make_server(start=False)
    assert exits_with(srv, "--database-url", "nosuchdb://user:Hunter2-db@host/db") == 2
    log = srv.log()
    assert_clean_error(log, "configuration error", "database", "nosuchdb")
    assert "Hunter2-db" not in log
    assert "Created user" not in log


def test_unreachable_database_stops_the_server_with_a_message(make_server):
    srv = make_server(start=False)
    code = exits_with(srv, "--database-url", "postgresql+psycopg://root:Hunter2-db@127.0.0.1:1/nothing")
    assert code != 0
    log = srv.log()
    assert_clean_error(log, "database", "Connection refused")
    assert "Hunter2-db" not in log


def test_scripts_serve_hands_its_arguments_to_serve(tmp_path):
    """The README's `scripts/serve --port 9444`: the arguments reach `totp-admin serve` (they once reached
    the venv set-up, which tried to install the extra "--port")."""
    venv = Path(sys.prefix)
    (venv / ".installed").touch()  # scripts/serve's mark that the project is installed: this venv has it
    port = free_port()
    env = {**os.environ, "VENV": str(venv), "TOTP_ADMIN_PASSWORD": ADMIN_PASSWORD}
    env.pop("TOTP_DATABASE_URL", None)
    proc = subprocess.Popen([str(ROOT / "scripts" / "serve"), "--port", str(port), "--http", "--host", "127.0.0.1",
                             "--data-dir", str(tmp_path / "data"), "--conf-dir", str(CONF)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            try:
                r = requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "scripts/serve did not start"
                time.sleep(0.1)
        assert r.status_code == 200 and r.text == "ok\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
