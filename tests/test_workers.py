"""serve --workers N: several processes on one port, one store, a clean stop."""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import ssl
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import ADMIN_PASSWORD, TOTP_ADMIN


def test_two_workers_share_the_port_and_stop_cleanly(make_server):
    srv = make_server(extra=("--workers", "2"))

    def call(_):
        s = srv.session()
        s.headers["Connection"] = "close"  # a new connection each time, for the kernel to hand out
        r = s.post(srv.url + "/isTOTPEnabled", data={"username": "admin"})
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, range(48)))
    assert statuses == [200] * 48

    log = srv.log()
    pids = set(re.findall(r"\[(\d+)\] totpadmin\.access", log))
    assert len(pids) == 2, f"requests served by {pids}"
    assert srv.proc.pid not in {int(p) for p in pids}, "the supervisor only supervises"

    assert srv.stop() == 0
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert log.count("Created user 'admin'") == 1, "the first admin is made once, by the supervisor"


def test_one_enrolment_across_workers(make_server):
    """initTOTP answers the same secret whichever worker serves it."""
    srv = make_server(extra=("--workers", "2"))

    def init(_):
        s = requests.Session()
        s.trust_env, s.verify, s.auth = False, srv.ca, ("admin", srv.session().auth[1])
        s.headers["Connection"] = "close"
        return s.post(srv.url + "/initTOTP", data={"username": "admin"}).text

    with ThreadPoolExecutor(6) as pool:
        answers = set(pool.map(init, range(24)))
    assert len(answers) == 1


def test_connections_opened_at_once_are_spread_over_the_workers(make_server):
    """Keep-alive connections opened together as soon as the port answers (as scripts/bench's wrk does)
    reach every worker.

    With one accept socket shared by all workers, the worker that wakes (or starts) first accepts every
    pending connection and keeps it, and the others idle; with a socket per worker (SO_REUSEPORT) the
    kernel spreads the connections over the workers' queues."""
    srv = make_server(extra=("--workers", "2"))
    context = ssl.create_default_context(cafile=srv.ca)
    auth = base64.b64encode(b"admin:" + srv.session().auth[1].encode()).decode()
    body = "username=admin"

    # Every TCP connection is made first (the kernel completes them without the workers), then used.
    raw = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(24)]
    conns = []
    for sock in raw:
        conn = http.client.HTTPSConnection("localhost", srv.port, context=context, timeout=10)
        conn.sock = context.wrap_socket(sock, server_hostname="localhost")
        conns.append(conn)

    def call(conn):
        try:
            statuses = []
            for _ in range(2):  # the same connection twice: keep-alive
                conn.request("POST", "/services/TOTPAdminService/isTOTPEnabled", body=body, headers={
                    "Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"})
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
            return statuses
        finally:
            conn.close()

    with ThreadPoolExecutor(len(conns)) as pool:
        statuses = [s for pair in pool.map(call, conns) for s in pair]
    assert statuses == [200] * 48

    served = Counter(re.findall(r"\[(\d+)\] totpadmin\.access", srv.log()))
    assert len(served) == 2, f"requests per worker: {dict(served)}"
    assert srv.stop() == 0


def test_a_port_held_by_another_supervisor_is_not_shared(make_server):
    """SO_REUSEPORT would let a second supervisor of the same user join the port: it refuses instead."""
    first = make_server(extra=("--workers", "2"))
    env = {**os.environ, "TOTP_ADMIN_PASSWORD": ADMIN_PASSWORD}
    try:
        second = subprocess.run(
            [str(TOTP_ADMIN), "serve", "--workers", "2", "--data-dir", str(first.data_dir), "--conf-dir",
             str(first.conf_dir), "--database-url", first.database.url, "--host", "127.0.0.1",
             "--port", str(first.port)], capture_output=True, text=True, env=env, timeout=30)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"the second supervisor did not exit although the port is taken:\n{err.output}{err.stderr}")
    log = second.stdout + second.stderr
    assert second.returncode != 0, log
    assert "Address already in use" in log and str(first.port) in log
    assert "Traceback" not in log
    assert "TOTPAdminService listening" not in log, "no worker starts"
    assert first.session().post(first.url + "/isTOTPEnabled", data={"username": "admin"}).status_code == 200
    assert first.stop() == 0


def test_listening_sockets_one_per_worker_on_one_port(monkeypatch):
    from totpadmin.server import workers

    socks = workers.listening_sockets("127.0.0.1", 0, 3)
    try:
        ports = {s.getsockname() for s in socks}
        expected = 3 if hasattr(socket, "SO_REUSEPORT") else 1
        assert len(socks) == expected and len(ports) == 1, "one address, port 0 resolved once"
        assert all(s.get_inheritable() and not s.getblocking() for s in socks)
    finally:
        for s in socks:
            s.close()

    monkeypatch.setattr(workers, "_reuse_port_works", lambda: False)  # an OS without SO_REUSEPORT
    socks = workers.listening_sockets("127.0.0.1", 0, 3)
    try:
        assert len(socks) == 1 and socks[0].get_inheritable() and not socks[0].getblocking()
    finally:
        socks[0].close()
