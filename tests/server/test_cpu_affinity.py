"""serve --cpu-affinity: each worker's reactor and database threads on one CPU, password hashing free."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import TOTP_ADMIN
from totpadmin.config.errors import ConfigError
from totpadmin.server import cpu_affinity

ALLOWED = sorted(os.sched_getaffinity(0)) if cpu_affinity.supported() else []
needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs Linux CPU affinity and two CPUs")


def thread_cpus(pid: int) -> dict[int, set[int]]:
    """Each thread of ``pid``: the CPUs it may run on."""
    result = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            line = next(ln for ln in (task / "status").read_text().splitlines() if ln.startswith("Cpus_allowed_list"))
        except (FileNotFoundError, StopIteration):
            continue  # the thread ended meanwhile
        result[int(task.name)] = parse_list(line.split(":", 1)[1].strip())
    return result


def parse_list(text: str) -> set[int]:
    cpus = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


@pytest.mark.parametrize("text, expected", [
    ("auto", "auto"), (" OFF ", "off"), ("3", (3,)), ("0-2,5", (0, 1, 2, 5)), ("1,1,0", (1, 0)),
])
def test_parse(text, expected):
    assert cpu_affinity.parse(text) == expected


@pytest.mark.parametrize("text", ["", "on", "1-", "-1", "3-1", "0,,1", "1.5"])
def test_parse_refuses_what_is_not_a_cpu_list(text):
    with pytest.raises(ConfigError) as caught:
        cpu_affinity.parse(text)
    message = str(caught.value)
    assert "cpu-affinity" in message and "command line" in message


def test_plan_off_and_lists():
    assert cpu_affinity.plan("off", 3) == [None, None, None]
    if cpu_affinity.supported():
        assert cpu_affinity.plan((4, 6), 3) == [4, 6, 4]


@pytest.mark.skipif(not ALLOWED, reason="needs Linux CPU affinity")
def test_auto_gives_workers_different_cpus_starting_where_the_kernel_put_us():
    workers = cpu_affinity.plan("auto", len(ALLOWED))
    assert sorted(workers) == ALLOWED
    assert cpu_affinity.plan("auto", len(ALLOWED) + 1)[-1] == workers[0]
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {ALLOWED[-1]})  # moves this thread there at once
        assert cpu_affinity.current_cpu() == ALLOWED[-1]
        assert cpu_affinity.plan("auto", 1) == [ALLOWED[-1]]
    finally:
        os.sched_setaffinity(0, before)


@pytest.mark.skipif(not ALLOWED, reason="needs Linux CPU affinity")
def test_where_the_system_refuses_to_pin_the_threads_run_unpinned(monkeypatch, caplog):
    def refuse(*_):
        raise PermissionError(1, "Operation not permitted")

    before = os.sched_getaffinity(0)
    monkeypatch.setattr(os, "sched_setscheduler", refuse)  # as a sandbox's seccomp filter would
    try:
        assert cpu_affinity.pin_this_thread(ALLOWED[-1]) is None
        assert os.sched_getaffinity(0) == before
        assert "running unpinned" in caplog.text
    finally:
        os.sched_setaffinity(0, before)


@pytest.mark.skipif(not ALLOWED, reason="needs Linux CPU affinity")
def test_a_cpu_the_process_cannot_use_stops_the_server_at_start(tmp_path):
    absent = max(ALLOWED) + 1
    r = subprocess.run([str(TOTP_ADMIN), "serve", "--data-dir", str(tmp_path / "data"), "--port", "1",
                        "--cpu-affinity", f"{ALLOWED[0]},{absent}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "cpu-affinity" in r.stderr and f"{ALLOWED[0]},{absent}" in r.stderr
    assert f"CPU {absent} is not available" in r.stderr
    assert "Traceback" not in r.stderr


@needs_two_cpus
def test_the_reactor_and_database_threads_share_one_cpu_and_hashing_may_use_all(server):
    pid = server.proc.pid
    threads = thread_cpus(pid)
    assert threads[pid] in ({cpu} for cpu in ALLOWED), f"the reactor thread may run on {threads[pid]}"
    assert all(cpus == threads[pid] for cpus in threads.values()), threads  # the database thread(s) too
    assert {os.sched_getscheduler(tid) for tid in threads} == {os.SCHED_BATCH}
    assert f"reactor and database threads on CPU {next(iter(threads[pid]))}" in server.log()

    # An uncached password is hashed on the password pool, whose threads may run anywhere.
    r = server.session().post(server.url + "/isTOTPEnabled", data={"username": "admin"})
    assert r.status_code == 200
    after = thread_cpus(pid)
    assert after[pid] == threads[pid]
    free = [tid for tid, cpus in after.items() if tid not in threads]
    assert free and all(after[tid] == set(ALLOWED) for tid in free), after
    assert {os.sched_getscheduler(tid) for tid in free} == {os.SCHED_OTHER}


@needs_two_cpus
def test_an_explicit_cpu_and_off(make_server):
    chosen = ALLOWED[-1]
    srv = make_server(extra=("--cpu-affinity", str(chosen)))
    threads = thread_cpus(srv.proc.pid)
    assert all(cpus == {chosen} for cpus in threads.values()), threads
    assert srv.stop() == 0
    logged = len(srv.log())
    srv.start("--cpu-affinity", "off")
    threads = thread_cpus(srv.proc.pid)
    assert all(cpus == set(ALLOWED) for cpus in threads.values()), threads
    assert {os.sched_getscheduler(tid) for tid in threads} == {os.SCHED_OTHER}
    assert srv.session().post(srv.url + "/isTOTPEnabled", data={"username": "admin"}).status_code == 200
    assert "threads on CPU" not in srv.log()[logged:]


@needs_two_cpus
def test_two_workers_run_on_two_cpus(make_server):
    srv = make_server(extra=("--workers", "2"))
    deadline = time.monotonic() + 30
    while True:
        children = [int(p) for p in Path(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children").read_text().split()]
        if len(children) == 2 and srv.log().count("reactor and database threads on CPU") == 2:
            break
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.1)
    cpus = []
    for child in children:
        threads = thread_cpus(child)
        assert len({frozenset(c) for c in threads.values()}) == 1, threads
        (cpu,) = threads[child]
        cpus.append(cpu)
    assert len(set(cpus)) == 2, f"both workers on CPU {cpus[0]}"
    assert thread_cpus(srv.proc.pid)[srv.proc.pid] == set(ALLOWED), "the supervisor itself is not pinned"
