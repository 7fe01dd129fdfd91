"""``serve --workers N``: one supervisor prepares the store and binds the port, then runs N worker
processes, starts again any that dies (worker_restarts.py: back-off, crash-loop limit) and stops them
on SIGTERM. Workers stop by themselves when the supervisor is gone (supervisor_pipe.py).

Where the OS has ``SO_REUSEPORT`` (Linux), the supervisor binds one listening socket per worker, all on
the same address, and hands each worker only its own: the kernel spreads new connections over the
sockets. Elsewhere all workers share one socket. A shared accept socket starves all workers but one:
whichever wakes (or starts) first accepts every pending connection, so a client's keep-alive
connections opened at once all land, and stay, on one worker while the others idle.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time

from ..config.settings import Settings
from ..core.passwords import PasswordHasher
from ..wiring import bootstrap_admin, open_database
from . import cpu_affinity
from .app import reach, tls_files
from .worker_restarts import CRASH_LOOP_DEATHS, CRASH_LOOP_SECONDS, RestartPolicy

log = logging.getLogger(__name__)
STOP_SECONDS = 20.0
BACKLOG = 1024
POLL_SECONDS = 0.2


def supervise(settings: Settings, argv: list[str]) -> int:
    """Prepare once (schema, keys, first admin, certificate), bind, run the workers until a signal (exit
    status 0) or a crash loop (1)."""
    db = open_database(settings, with_keys=True)
    bootstrap_admin(db, PasswordHasher())
    db.dispose()
    if settings.https:
        tls_files(settings)  # generated here, not raced by the workers

    # Bound here, before any worker starts, so that "address in use" is reported once, by us.
    try:
        socks = listening_sockets(settings.host, settings.port, settings.workers)
    except OSError as err:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, err.strerror or err)
        return 1
    log.info("supervisor listening on %s:%d with %d workers (%s)%s", settings.host, socks[0].getsockname()[1],
             settings.workers, "a socket each, SO_REUSEPORT" if len(socks) > 1 else "one shared socket",
             reach(settings.host))

    cpus = cpu_affinity.plan(settings.cpu_affinity, settings.workers)
    # Each worker watches the read end and stops when it closes: when this process is gone, however it
    # went (supervisor_pipe.py). The write end, not inheritable, stays ours alone.
    watch_fd, held_fd = os.pipe()
    workers = [_Worker(index, socks[index % len(socks)].fileno(), cpus[index]) for index in range(settings.workers)]
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    status = 0
    restarts = RestartPolicy(len(workers))
    while not stopping and status == 0:
        now = time.monotonic()
        for w in workers:
            if w.proc is None:
                if now < w.restart_at or w.start(argv, watch_fd, settings):
                    continue
                delay = restarts.died(w.index, 0.0, now)  # could not even be started (e.g. no fds left)
            elif w.proc.poll() is not None:
                # Its socket stays open here: connections queued on it wait for the next worker.
                log.error("worker %d (pid %d) %s", w.index, w.proc.pid, _exit_reason(w.proc.returncode))
                delay = restarts.died(w.index, now - w.started, now)
            else:
                continue
            if delay is None:
                log.error("crash loop: workers died %d times within %g s; giving up, stopping all workers",
                          CRASH_LOOP_DEATHS, CRASH_LOOP_SECONDS)
                status = 1
                break
            log.warning("restarting worker %d in %g s", w.index, delay)
            w.proc, w.restart_at = None, now + delay
        time.sleep(POLL_SECONDS)
    for sock in socks:
        sock.close()
    _stop_all([w.proc for w in workers if w.proc is not None])
    os.close(watch_fd)
    os.close(held_fd)
    return status


class _Worker:
    """Worker ``index``: its socket, its CPU, its process (None while it waits to be started again)."""

    def __init__(self, index: int, fd: int, cpu: int | None):
        self.index, self.fd, self.cpu = index, fd, cpu
        self.proc: subprocess.Popen | None = None  # None: dead, to be started again at restart_at
        self.started = self.restart_at = 0.0  # time.monotonic()

    def start(self, argv: list[str], watch_fd: int, settings: Settings) -> bool:
        """Start the process; False (logged) if the OS refused, e.g. out of processes or descriptors."""
        try:
            self.proc = _spawn(argv, self.fd, watch_fd, self.index, self.cpu, settings)
        except OSError as err:
            log.error("worker %d could not be started: %s", self.index, err.strerror or err)
            return False
        self.started = time.monotonic()
        log.info("worker %d started (pid %d)", self.index, self.proc.pid)
        return True


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """Listening sockets on (host, port) for ``count`` workers: one each where SO_REUSEPORT works, else
    one to share. Raises OSError (e.g. address in use) with none left open."""
    if count < 2 or not _reuse_port_works():
        return [_for_workers(socket.create_server((host, port), backlog=BACKLOG))]
    # SO_REUSEPORT lets any later socket of the same user that also sets it bind this port as well: two
    # supervisors started by one user on one port would share it. So a plain bind comes first, which
    # fails if anything listens here already (a stale server of ours included); only a process binding
    # in the instant between that check and ours could still join. A port of 0 is free by definition.
    if port != 0:
        socket.create_server((host, port), backlog=1).close()
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            # create_server sets SO_REUSEPORT before bind, as every socket of the group must. After the
            # first, bind to its port (the one the kernel chose, if asked for port 0).
            socks.append(_for_workers(socket.create_server((host, port), backlog=BACKLOG, reuse_port=True)))
            port = socks[0].getsockname()[1]
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def _reuse_port_works() -> bool:
    if not hasattr(socket, "SO_REUSEPORT"):
        return False
    with socket.socket() as probe:  # the constant can exist where the kernel refuses the option
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except OSError:
            return False
    return True


def _for_workers(sock: socket.socket) -> socket.socket:
    sock.setblocking(False)  # the workers' reactors accept without blocking
    sock.set_inheritable(True)
    return sock


def _spawn(argv: list[str], fd: int, watch_fd: int, index: int, cpu: int | None,
           settings: Settings) -> subprocess.Popen:
    # The same command line, as a single worker on the inherited socket (argparse: the last value wins).
    # Only that socket and the pipe's read end are passed (Popen closes every other descriptor).
    args = [sys.executable, "-m", "totpadmin.cli.main", *argv, "--workers", "1", "--listen-fd", str(fd),
            "--supervisor-fd", str(watch_fd), "--cpu-affinity", cpu_affinity.OFF if cpu is None else str(cpu)]
    if settings.metrics_port is not None:
        args += ["--metrics-port", str(settings.metrics_port + index)]
    return subprocess.Popen(args, pass_fds=(fd, watch_fd))


def _stop_all(workers: list[subprocess.Popen]) -> None:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for w in workers:
        try:
            w.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("worker %d did not stop in time; killing it", w.pid)
            w.kill()
            w.wait()
