"""A real nginx, configured with docs/nginx.conf as shipped (only ports and paths replaced), in front of
`totp-admin serve --http`: the client's address reaches the audit through X-Forwarded-For, a guessing
client is throttled and others behind the same nginx still sign in.

Clients connect from other loopback addresses (127.0.0.2, 127.0.0.3) than nginx does (127.0.0.1), so
that the three can be told apart. nginx runs unprivileged-port, in the foreground, with its prefix, logs
and temporary files under the test's directory.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from conftest import ADMIN_PASSWORD, ROOT, free_port
from test_login_throttle import assert_auth_failed, assert_ok
from wire import from_address

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/test installs the Debian "
                                                      "package when it runs as root; apt-get install nginx)")
SHIPPED = ROOT / "docs" / "nginx.conf"
GUESSER, OTHER = "127.0.0.2", "127.0.0.3"


@dataclass
class Nginx:
    proc: subprocess.Popen
    port: int
    prefix: Path

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/services/TOTPAdminService"

    def log(self) -> str:
        return (self.prefix / "error.log").read_text(errors="replace") if (self.prefix / "error.log").exists() else ""


def shipped_config(port: int, backend: int, cert: Path, key: Path) -> str:
    """docs/nginx.conf with its ports and certificate paths replaced, and nothing else."""
    text = SHIPPED.read_text()
    for old, new in {"listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
                     "server 127.0.0.1:9763;": f"server 127.0.0.1:{backend};",
                     "/etc/ssl/totp-admin/fullchain.pem": str(cert),
                     "/etc/ssl/totp-admin/privkey.pem": str(key)}.items():
        assert text.count(old) == 1, f"docs/nginx.conf no longer has {old!r}: update this test with it"
        text = text.replace(old, new)
    return text


@pytest.fixture
def nginx(tmp_path):
    started: list[Nginx] = []

    def start(backend: int) -> Nginx:
        from totpadmin.server.tls import ensure_self_signed

        prefix = tmp_path / "nginx"
        (prefix / "tmp").mkdir(parents=True)
        cert, key = ensure_self_signed(prefix / "tls")
        port = free_port()
        (prefix / "totp-admin.conf").write_text(shipped_config(port, backend, cert, key))
        # What /etc/nginx/nginx.conf would hold, pointed at the test's directory.
        (prefix / "nginx.conf").write_text(f"""
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/totp-admin.conf;
}}
""")
        with open(prefix / "stderr.log", "wb") as err:
            proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
                                     str(prefix / "error.log"), "-g", f"daemon off; pid {prefix}/nginx.pid;"],
                                    stdout=err, stderr=subprocess.STDOUT)
        server = Nginx(proc, port, prefix)
        started.append(server)
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {proc.returncode}:\n{(prefix / 'stderr.log').read_text()}"
                                   f"\n{server.log()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return server
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start:\n{server.log()}") from None
                time.sleep(0.05)

    yield start
    for server in started:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def call(proxy: Nginx, source: str, password: str, user: str = "admin", forwarded_for: str | None = None):
    """One form call through nginx, connecting from ``source``; the response."""
    with from_address(requests.Session(), source) as s:
        s.trust_env = False
        s.verify = str(proxy.prefix / "tls" / "ca.crt")
        s.auth = (user, password)
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        return s.post(f"{proxy.url}/isTOTPEnabled", data={"username": "admin"}, headers=headers, timeout=30)


def test_nginx_as_shipped_names_the_client_and_throttles_only_the_guesser(make_server, nginx):
    srv = make_server(https=False, properties={"trustedProxies": "127.0.0.1", "loginFailuresBeforeDelay": "100",
                                               "loginFailuresBeforeBlock": "3", "loginBlockSeconds": "60"})
    proxy = nginx(srv.port)

    # The guesser claims another address in its own X-Forwarded-For; nginx appends the real one.
    for _ in range(3):
        assert_auth_failed(call(proxy, GUESSER, "wrong-password", forwarded_for="198.51.100.1"))
    r = call(proxy, GUESSER, "wrong-password", forwarded_for="198.51.100.1")
    assert r.status_code == 429 and r.reason == "Too Many Requests", (r.status_code, r.reason, r.text)
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.text == "Too many failed logins from this address; try again later\n"
    r = call(proxy, GUESSER, ADMIN_PASSWORD)  # the right password, never signed in: refused unchecked
    assert r.status_code == 429

    # Another client behind the same nginx signs in; once it has, its credentials pass even at the
    # guesser's blocked address.
    assert_ok(call(proxy, OTHER, ADMIN_PASSWORD))
    assert_ok(call(proxy, GUESSER, ADMIN_PASSWORD))

    rows = srv.database.query_audit("SELECT source, caller, outcome FROM audit_trail ORDER BY at, id")
    assert rows == [(GUESSER, "admin", "auth-failed")] * 3 + [(OTHER, "admin", "success"),
                                                               (GUESSER, "admin", "success")]
    assert f'{GUESSER} "POST' in srv.log() and "198.51.100.1" not in srv.log()
