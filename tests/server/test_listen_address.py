"""Where `totp-admin serve` listens: this machine only (127.0.0.1) unless `--host` says otherwise.

Reached from another address of this machine (its non-loopback IP, found with `ip`), a default server
must refuse the connection, and one started with `--host 0.0.0.0` must answer."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess

import pytest

from conftest import ADMIN_PASSWORD, TOTP_ADMIN, Server


def local_non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine's own interfaces other than loopback, or None."""
    candidates: list[str] = []
    if shutil.which("ip"):
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
        candidates += [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]
    try:
        candidates += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    except OSError:
        pass
    for address in candidates:
        if not ipaddress.ip_address(address).is_loopback:
            return address
    return None


def start_without_host(srv: Server, *extra: str) -> None:
    """As Server.start, but with no --host at all: the default is what is tested."""
    srv.output = srv.data_dir.parent / f"server-{srv.port}.log"
    args = [str(TOTP_ADMIN), "serve", "--data-dir", str(srv.data_dir), "--conf-dir", str(srv.conf_dir),
            "--database-url", srv.database.url, "--port", str(srv.port), *extra]
    with open(srv.output, "ab") as log:
        srv.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, "TOTP_ADMIN_PASSWORD": ADMIN_PASSWORD})
    srv.wait_ready()


def connects(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2).close()
        return True
    except OSError:
        return False


def health(srv: Server, address: str) -> str:
    """/health's answer; the generated certificate names localhost and 127.0.0.1, not other addresses."""
    session = srv.session(None)
    session.verify = srv.ca if address in ("localhost", "127.0.0.1") else False
    return session.get(f"https://{address}:{srv.port}/health", timeout=5).text


@pytest.fixture
def other_address() -> str:
    address = local_non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to test from")
    return address


def test_default_listens_on_loopback_only(make_server, other_address):
    srv = make_server(start=False)
    start_without_host(srv)
    assert health(srv, "127.0.0.1") == "ok\n"
    assert health(srv, "localhost") == "ok\n"  # the README's https://localhost:9443 (::1 first, then 127.0.0.1)
    assert not connects(other_address, srv.port), f"the default server answers on {other_address}"
    log = srv.log()
    assert f"listening on https://127.0.0.1:{srv.port}/services/TOTPAdminService" in log, log
    assert "this machine only; --host 0.0.0.0 serves other hosts" in log, log


def test_default_with_workers_listens_on_loopback_only(make_server, other_address):
    srv = make_server(start=False)
    start_without_host(srv, "--workers", "2")
    assert health(srv, "localhost") == "ok\n"
    assert not connects(other_address, srv.port)
    assert "supervisor listening on 127.0.0.1" in srv.log() and "this machine only" in srv.log()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # other_address: not in the cert
def test_host_0_0_0_0_serves_other_addresses(make_server, other_address):
    srv = make_server(extra=("--host", "0.0.0.0"))  # after Server.start's own --host: the last one counts
    assert health(srv, other_address) == "ok\n"
    assert health(srv, "127.0.0.1") == "ok\n"
    assert "listening on https://0.0.0.0:" in srv.log()
    assert "this machine only" not in srv.log()


def test_help_names_the_default_and_the_option():
    out = subprocess.run([str(TOTP_ADMIN), "serve", "--help"], capture_output=True, text=True, check=True).stdout
    assert "default 127.0.0.1: this machine only; 0.0.0.0 serves other hosts" in " ".join(out.split())
