"""One writer at a time on a SQLite file, across threads and processes, queued in the kernel.

SQLite lets one connection write; others wait in its busy handler, which polls with naps of 1, 2, 5 …
100 ms. With two worker processes that nap cost a third of the throughput (the workers sat at
65 % CPU each). A blocking ``flock`` on a file next to the database wakes the next writer as soon as
the lock is free. Processes that do not take it (an older totp-admin, the sqlite3 shell) still meet
SQLite's own locking: this lock only orders our writers, it is not what keeps the data safe.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class WriterLock:
    def __init__(self, path: Path):
        self.path = path
        self._thread_lock = threading.Lock()  # flock is per open file: threads sharing the fd would not wait
        self._fd: int | None = None
        self._fd_pid: int | None = None

    def _file(self) -> int:
        # Opened lazily and again after fork: a child must not share the parent's open file (and lock).
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            try:
                fd = self._file()
            except OSError:  # e.g. a read-only directory: SQLite's own locking still applies
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def beside(database: Path) -> WriterLock:
    """The lock of the SQLite database file ``database``."""
    return WriterLock(database.with_name(database.name + "-writer.lock"))
