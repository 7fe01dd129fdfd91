"""``serve --workers N``: one supervisor binds the port and prepares the store, then runs N worker
processes that accept on that same socket (the kernel spreads connections), and stops them on SIGTERM."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time

from ..config.settings import Settings
from ..core.passwords import PasswordHasher
from .app import bootstrap_admin, open_database, tls_files

log = logging.getLogger(__name__)
STOP_SECONDS = 20.0


def supervise(settings: Settings, argv: list[str]) -> int:
    """Prepare once (schema, keys, first admin, certificate), bind, run the workers until a signal."""
    db = open_database(settings, with_keys=True)
    bootstrap_admin(db, PasswordHasher())
    db.dispose()
    if settings.https:
        tls_files(settings)  # generated here, not raced by the workers

    sock = socket.create_server((settings.host, settings.port), backlog=1024)
    sock.setblocking(False)  # the workers' reactors accept without blocking (shared by the inherited fd)
    sock.set_inheritable(True)
    log.info("supervisor listening on %s:%d with %d workers", settings.host, settings.port, settings.workers)

    workers = [_spawn(argv, sock.fileno(), index, settings) for index in range(settings.workers)]
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    status = 0
    while not stopping:
        dead = [w for w in workers if w.poll() is not None]
        if dead:
            log.error("worker %d exited with %d; stopping the others", dead[0].pid, dead[0].returncode)
            status = 1
            break
        time.sleep(0.2)
    sock.close()
    _stop_all(workers)
    return status


def _spawn(argv: list[str], fd: int, index: int, settings: Settings) -> subprocess.Popen:
    # The same command line, as a single worker on the inherited socket (argparse: the last value wins).
    args = [sys.executable, "-m", "totpadmin.cli.main", *argv, "--workers", "1", "--listen-fd", str(fd)]
    if settings.metrics_port is not None:
        args += ["--metrics-port", str(settings.metrics_port + index)]
    return subprocess.Popen(args, pass_fds=(fd,))


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
