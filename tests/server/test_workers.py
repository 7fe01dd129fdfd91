"""serve --workers N: several processes on one port, one store, a clean stop; a dead worker is
replaced, and workers do not outlive their supervisor."""

from __future__ import annotations

import base64
import fcntl
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from conftest import ADMIN_PASSWORD, CONF, TOTP_ADMIN, free_port


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



# --- a worker's life: restarted when it dies, ended when its supervisor dies ---

def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def live_children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``, zombies left out (no /proc/PID/task/*/children here)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == pid and stat[0] != "Z":
                found.add(int(entry))
    return found


def wait_for(predicate, what: str, timeout: float = 60.0):
    """Poll ``predicate`` until it returns something true (returned); a generous bound, not a timing check."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting {timeout:g} s for {what}")
        time.sleep(0.1)


def listening_pids(srv) -> set[int]:
    return {int(p) for p in re.findall(r"\[(\d+)\] totpadmin\.server\.app: TOTPAdminService listening", srv.log())}


def calls_served(srv) -> Counter:
    """Calls answered, by worker pid."""
    return Counter(int(p) for p in re.findall(r"\[(\d+)\] totpadmin\.access", srv.log()))


def serving_workers(srv, count: int, *, besides: set[int] = frozenset()) -> set[int]:
    """The supervisor's ``count`` workers, once each has said it listens; ``besides``: workers that must
    no longer be among them."""
    def ready():
        pids = live_children(srv.proc.pid)
        return pids if len(pids) == count and not pids & besides and pids <= listening_pids(srv) else None
    return wait_for(ready, f"{count} workers listening")


def worker_index(srv, pid: int) -> int:
    return int(re.search(rf"worker (\d+) started \(pid {pid}\)", srv.log()).group(1))


@pytest.fixture
def stray_workers():
    """Pids of workers a test saw; any still alive at its end (a failed test) are killed."""
    pids: set[int] = set()
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def is_enabled(srv, session=None) -> requests.Response:
    session = session or srv.session()
    session.headers["Connection"] = "close"  # a new connection each time, for the kernel to hand out
    return session.post(srv.url + "/isTOTPEnabled", data={"username": "admin"}, timeout=60)


def test_workers_exit_when_their_supervisor_is_killed(make_server, stray_workers):
    """SIGKILL of the supervisor leaves no worker serving, and a new supervisor gets the port at once."""
    srv = make_server(extra=("--workers", "2"))
    workers = serving_workers(srv, 2)
    stray_workers.update(workers)
    assert is_enabled(srv).status_code == 200

    srv.proc.kill()
    srv.proc.wait()
    wait_for(lambda: not any(alive(pid) for pid in workers), "the workers to exit after their supervisor")
    assert srv.log().count("the supervisor is gone; stopping") == 2

    srv.start("--workers", "2")  # the same port: nothing holds it any more
    serving_workers(srv, 2)
    assert is_enabled(srv).status_code == 200
    assert srv.stop() == 0


@contextmanager
def writers_held(srv, database):
    """Calls that change the store wait while this is open (SQLite: its writer lock file; PostgreSQL:
    the admin's row lock). Yields a function that tells whether one waits now."""
    if database.schema is None:
        fd = os.open(srv.data_dir / "totp-admin.db-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        inode = os.fstat(fd).st_ino

        def waiting() -> bool:
            with open("/proc/locks") as locks:  # a waiter: "2: -> FLOCK  ADVISORY  WRITE pid maj:min:inode 0 EOF"
                return any("->" in line and f":{inode} " in line for line in locks)
        try:
            yield waiting
        finally:
            os.close(fd)
        return
    engine = database.engine()
    try:
        with engine.connect() as holder, engine.connect() as probe:
            holder.exec_driver_sql("SELECT id FROM users WHERE username = 'admin' FOR UPDATE")
            pid = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            yield lambda: probe.exec_driver_sql(
                f"SELECT count(*) FROM pg_stat_activity WHERE {pid} = ANY(pg_blocking_pids(pid))").scalar()
            holder.rollback()
    finally:
        engine.dispose()


def test_workers_finish_their_calls_in_flight_when_their_supervisor_dies(make_server, database, stray_workers):
    srv = make_server(extra=("--workers", "2"))
    workers = serving_workers(srv, 2)
    stray_workers.update(workers)
    with ThreadPoolExecutor(1) as pool:
        with writers_held(srv, database) as waiting:
            call = pool.submit(lambda: srv.session().post(srv.url + "/resetTOTP", data={"username": "admin"},
                                                          timeout=60))
            wait_for(waiting, "the call to wait for the store")
            srv.proc.kill()
            srv.proc.wait()
            wait_for(lambda: srv.log().count("the supervisor is gone; stopping") == 2, "the workers to notice")
            assert not call.done()
        assert call.result().status_code == 200, "answered once the store was free again"
    wait_for(lambda: not any(alive(pid) for pid in workers), "the workers to exit after their supervisor")
    assert srv.log().count("stopped (0 calls still in flight)") == 2


def test_a_killed_worker_is_replaced_while_the_other_serves(make_server, database, stray_workers):
    """The other worker keeps answering, a new worker takes the dead one's socket (connections queued on
    it wait) and its audit file, and the supervisor carries on."""
    srv = make_server(extra=("--workers", "2"))
    before = serving_workers(srv, 2)
    stray_workers.update(before)
    victim = min(before)
    answered = []

    os.kill(victim, signal.SIGKILL)
    # New connections from the first moment on: those the kernel queues on the dead worker's socket are
    # answered by its successor.
    deadline = time.monotonic() + 120
    while True:
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda _: is_enabled(srv), range(8)))
        assert [r.status_code for r in responses] == [200] * 8
        answered += [r.headers["X-Request-ID"] for r in responses]
        workers = live_children(srv.proc.pid)
        stray_workers.update(workers)
        if workers - before and (workers - before) <= set(calls_served(srv)):
            break
        assert time.monotonic() < deadline, f"no new worker served:\n{srv.log()}"

    assert srv.proc.poll() is None, "the supervisor still runs"
    assert not alive(victim)
    log = srv.log()
    index = worker_index(srv, victim)
    assert f"worker {index} (pid {victim}) was killed by signal SIGKILL" in log
    assert f"restarting worker {index} in 1 s" in log
    replacement, = workers - before
    assert worker_index(srv, replacement) == index
    # Every answered call is in the audit trail; on SQLite the new worker took the dead one's file.
    trail = {row[0] for row in database.query_audit("SELECT request_id FROM audit_trail")}
    assert set(answered) <= trail
    if database.schema is None:
        assert [p.name for p in database.audit_files()] == ["totp-admin-audit-0.db", "totp-admin-audit-1.db"]
    assert srv.stop() == 0


@contextmanager
def held_ports(count: int):
    """``count`` consecutive ports on 127.0.0.1 that something else listens on; yields the first."""
    for _ in range(50):
        first, socks = free_port(), []
        try:
            for port in range(first, first + count):
                socks.append(socket.create_server(("127.0.0.1", port)))
            break
        except OSError:
            for sock in socks:
                sock.close()
    else:
        pytest.fail(f"no {count} free consecutive ports")
    try:
        yield first
    finally:
        for sock in socks:
            sock.close()


def test_workers_that_cannot_start_make_the_supervisor_give_up(make_server, stray_workers):
    """Each worker serves metrics on a port of its own, which the supervisor never opens: with those
    ports taken, every worker exits as soon as it starts. The supervisor restarts them with a back-off,
    then gives up: it does not loop forever."""
    with held_ports(2) as metrics_port:
        srv = make_server(extra=("--workers", "2", "--metrics-port", str(metrics_port)))
        try:
            status = srv.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the supervisor still restarts its workers:\n{srv.log()}")
    log = srv.log()
    started = [int(pid) for pid in re.findall(r"worker \d+ started \(pid (\d+)\)", log)]
    stray_workers.update(started)
    assert status == 1, log
    assert "crash loop: workers died 6 times within 60 s; giving up, stopping all workers" in log
    assert "worker 0 (pid %d) exited with status 1" % started[0] in log
    assert "restarting worker 0 in 1 s" in log and "restarting worker 1 in 1 s" in log
    assert re.search(r"restarting worker \d in 2 s", log), "the back-off doubles"
    assert "Traceback" not in log
    assert not any(alive(pid) for pid in started)



def test_a_worker_the_os_refuses_to_start_counts_as_a_death(make_server, stray_workers):
    """With no file descriptor left to the supervisor (its limit lowered while it runs), starting a
    replacement fails in the OS: logged and retried under the same back-off and crash-loop limit, never
    a traceback."""
    import resource

    srv = make_server(extra=("--workers", "2"))
    workers = serving_workers(srv, 2)
    stray_workers.update(workers)
    resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (0, 0))  # no new descriptor: no pipe for Popen
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: "could not be started" in srv.log(), "the failed start to be logged")
    try:
        status = srv.proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the supervisor retries forever:\n{srv.log()}")
    log = srv.log()
    assert status == 1, log
    assert re.search(r"worker \d could not be started: Too many open files", log), log
    assert "crash loop: workers died 6 times within 60 s" in log
    assert "Traceback" not in log
    assert not any(alive(pid) for pid in workers)


def test_restart_back_off_doubles_up_to_a_ceiling_and_starts_over_after_a_long_run():
    from totpadmin.server.worker_restarts import RestartPolicy

    policy = RestartPolicy(1)
    # Deaths 100 s apart: never a crash loop.
    assert [policy.died(0, ran_seconds=0.5, now=n * 100.0) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.died(0, ran_seconds=60.0, now=700.0) == 1
    assert policy.died(0, ran_seconds=0.5, now=800.0) == 2


def test_six_deaths_within_a_minute_are_a_crash_loop():
    from totpadmin.server.worker_restarts import RestartPolicy

    policy = RestartPolicy(2)
    assert [policy.died(n % 2, ran_seconds=0.5, now=n * 10.0) for n in range(5)] == [1, 1, 2, 2, 4]
    assert policy.died(1, ran_seconds=0.5, now=50.0) is None
    spread = RestartPolicy(1)
    assert all(spread.died(0, ran_seconds=0.5, now=n * 12.1) is not None for n in range(20))

# A user's calls go round these; each changes state (initTOTP once after resetTOTP).
CYCLE = ("initTOTP", "regenerateRecoveryCodes", "refreshSecretKey", "generateSecret", "resetTOTP")
CHANGES_SECRET = {"initTOTP", "refreshSecretKey", "resetTOTP"}


def test_a_worker_killed_amid_changes_leaves_the_store_consistent(make_server, database, stray_workers):
    """Calls that change state are under way when a worker is killed: the calls it had in flight are
    lost, but each either committed whole, with its audit row, or not at all."""
    srv = make_server(extra=("--workers", "2"))
    users = [f"worker-user-{n}" for n in range(6)]
    for user in users:
        srv.cli("user", "add", user, input="a-long-user-password\n")
    before = serving_workers(srv, 2)
    stray_workers.update(before)

    calls: list[tuple[str, str, requests.Response | Exception]] = []
    stop = threading.Event()

    def load(user: str) -> None:
        session = srv.session()  # keep-alive: the connection stays with the worker that accepted it
        for n in range(10_000):
            if stop.is_set():
                return
            operation = CYCLE[n % len(CYCLE)]
            try:
                result = session.post(f"{srv.url}/{operation}", data={"username": user}, timeout=60)
            except requests.RequestException as err:
                result = err
                session = srv.session()
            calls.append((user, operation, result))

    threads = [threading.Thread(target=load, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    try:
        # Calls under way (Argon2-hashed recovery codes take a while), then the worker that holds most of
        # the connections dies.
        wait_for(lambda: len(calls) >= 3 * len(users), "calls under way")
        victim, _ = calls_served(srv).most_common(1)[0]
        os.kill(victim, signal.SIGKILL)
        replacement = serving_workers(srv, 2, besides={victim}) - before
        stray_workers.update(replacement)
        # The load's connections may all stay with the other worker: new ones reach the new worker too.
        wait_for(lambda: is_enabled(srv).ok and replacement <= set(calls_served(srv)), "the new worker to serve")
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    lost = [c for c in calls if isinstance(c[2], Exception)]
    answered = [c for c in calls if not isinstance(c[2], Exception)]
    assert lost, "no call was in flight on the killed worker: the test proved nothing"
    assert all(isinstance(err, requests.ConnectionError) for _, _, err in lost), lost
    assert srv.proc.poll() is None

    # Nothing answered is missing from the audit trail.
    trail = {row[0] for row in database.query_audit("SELECT request_id FROM audit_trail")}
    assert {r.headers["X-Request-ID"] for _, _, r in answered} <= trail
    for user in users:
        assert_consistent(srv, database, user)
    assert srv.stop() == 0


def assert_consistent(srv, database, user: str) -> None:
    """The user's claims, state and recovery codes are whole, and agree with the last change the audit
    trail (written in each change's transaction) records."""
    from totpadmin.core import claims, keyring
    from totpadmin.core.secretbox import SecretBox
    from totpadmin.core.usernames import UserRef
    from totpadmin.store.database import Database

    db = Database(database.url, box=SecretBox(keyring.load_or_create(srv.data_dir / "secret-keys.json")))
    try:
        with db.transaction(read_only=True) as unit:
            account = unit.accounts.find(UserRef("carbon.super", user), for_update=False)
            secret, encoding, qr_code, enabled, pending = (account.get(uri) for uri in (
                claims.SECRET_KEY, claims.ENCODING, claims.QR_CODE_URL, claims.TOTP_ENABLED,
                claims.VERIFY_SECRET_KEY))
            state = account.state()
            codes = account.recovery_codes_left()
    finally:
        db.dispose()
    where = f"{user}: secret {secret!r}, encoding {encoding!r}, enabled {enabled!r}, {codes} codes"
    assert (secret is None) == (encoding is None) == (qr_code is None), where
    assert (enabled == "true") == (secret is not None), where
    if qr_code is not None:
        url = base64.b64decode("".join(qr_code.split())).decode()
        assert parse_qs(urlsplit(url).query)["secret"] == [secret], f"{user}: the QR code shows another secret"
    assert codes in (0, 10), where
    assert codes == 0 or secret is not None, where
    assert (pending is None) == (state.pending_expires_at is None), where

    changes = [operation for operation, in database.query(
        "SELECT operation FROM audit_events WHERE target = :t AND outcome = 'success' ORDER BY id", t=user)]
    since_secret = [op for op in changes if op in CHANGES_SECRET]
    assert (secret is not None) == bool(since_secret and since_secret[-1] != "resetTOTP"), (where, changes)
    since_reset = changes[len(changes) - changes[::-1].index("resetTOTP"):] if "resetTOTP" in changes else changes
    assert (codes == 10) == ("regenerateRecoveryCodes" in since_reset), (where, changes)


# --- a worker started by hand ---

def start_worker(tmp_path, database, *extra: str, pass_fds=()) -> tuple[subprocess.Popen, socket.socket]:
    """``serve --listen-fd`` on a socket of ours, as a supervisor would start it."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    args = [sys.executable, "-m", "totpadmin.cli.main", "serve", "--data-dir", str(tmp_path / "data"),
            "--conf-dir", str(CONF), "--database-url", database.url, "--http", "--listen-fd", str(sock.fileno()),
            *extra]
    proc = subprocess.Popen(args, pass_fds=(sock.fileno(), *pass_fds), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/health"
    wait_for(lambda: proc.poll() is not None or requests.get(url, timeout=30).status_code == 200, "the worker")
    assert proc.poll() is None, proc.stdout.read()
    return proc, sock


def test_a_worker_started_by_hand_without_the_pipe_serves_until_signalled(tmp_path, database):
    proc, sock = start_worker(tmp_path, database)
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        sock.close()


def test_a_worker_stops_when_the_write_end_of_its_pipe_closes(tmp_path, database):
    read_end, write_end = os.pipe()
    proc, sock = start_worker(tmp_path, database, "--supervisor-fd", str(read_end), pass_fds=(read_end,))
    try:
        os.close(read_end)  # the worker's copy is what matters
        assert requests.get(f"http://127.0.0.1:{sock.getsockname()[1]}/health", timeout=30).status_code == 200
        os.close(write_end)
        assert proc.wait(timeout=60) == 0
        assert "the supervisor is gone; stopping" in proc.stdout.read()
    finally:
        proc.kill()
        sock.close()
