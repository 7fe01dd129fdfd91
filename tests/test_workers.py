"""serve --workers N: several processes on one port, one store, a clean stop."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import requests


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
