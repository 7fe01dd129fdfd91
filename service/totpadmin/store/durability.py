"""Making a SQLite commit survive a power loss when it must: syncing the write-ahead log.

SQLite commits with synchronous=NORMAL (engine.py): a commit survives a crash of the process, not
necessarily a power loss. A transaction that changes secrets or recovery codes asks for more
(Transaction.make_durable); after it commits, :func:`sync_wal` does what synchronous=FULL would have done
at that commit. SQLite cannot change its safety level inside a transaction, and a checkpoint skips the
sync when a reader pins the log, hence the fsync here.
"""

from __future__ import annotations

import os
from pathlib import Path


def sync_wal(database: Path) -> None:
    """The write-ahead log of the SQLite file ``database``, holding the last commit, to disk (and with it
    everything committed before)."""
    try:
        fd = os.open(f"{database}-wal", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # no log: the commit went to the database file itself
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
