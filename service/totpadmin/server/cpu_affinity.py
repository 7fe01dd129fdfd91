"""``serve --cpu-affinity``: each worker's reactor and database threads share one CPU.

Why: those two threads take turns on the GIL about twenty times per call (SQLite, flock and the
reactor's wake-up pipe each release it). When the threads run on different CPUs, every turn is a wake-up
across CPUs, and the thread that wants the GIL back waits for it while holding SQLite's write lock.
On one CPU the handovers are cheap, and cheaper still when neither thread preempts the other on waking
(SCHED_BATCH). On the two-CPU bench machine, one worker served about 1.45 times as many SOAP calls per
second when pinned, with 505 instead of 795 µs of CPU per call, and SCHED_BATCH took off another ~10 %
of the CPU per call.

Password hashing (Argon2, tens of milliseconds without the GIL) runs on :class:`UnpinnedThreadPool`,
whose threads may use every CPU the process was allowed at start.

Settings: ``auto`` (the default) gives worker *i* the *i*-th CPU the process may use, counting from the
one the kernel started the supervisor (or the lone process) on, so that instances started apart tend
to land apart; ``off`` leaves placement to the kernel; a list such as ``0-3,6`` gives worker *i* CPU
``list[i mod len]``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from twisted.python.threadpool import ThreadPool

from ..config.errors import ConfigError

log = logging.getLogger(__name__)

AUTO = "auto"
OFF = "off"
SOURCE, KEY = "command line", "cpu-affinity"


def supported() -> bool:
    return all(hasattr(os, name) for name in ("sched_setaffinity", "sched_getaffinity", "sched_setscheduler",
                                               "SCHED_BATCH"))


def parse(text: str) -> str | tuple[int, ...]:
    """``auto``, ``off`` or a CPU list (``0-3,6``) as given to ``--cpu-affinity``."""
    lowered = text.strip().lower()
    if lowered in (AUTO, OFF):
        return lowered
    cpus: list[int] = []
    for part in lowered.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise ConfigError(SOURCE, KEY, text, "must be auto, off or a CPU list such as 0-3,6") from None
        if first < 0 or last < first:
            raise ConfigError(SOURCE, KEY, text, f"{part.strip()!r} is not a CPU range")
        cpus.extend(cpu for cpu in range(first, last + 1) if cpu not in cpus)
    return tuple(cpus)


def allowed() -> list[int]:
    """The CPUs this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


def check(setting: str | tuple[int, ...]) -> None:
    """Refuse a CPU list this process cannot use (ConfigError naming the CPU)."""
    if not isinstance(setting, tuple):
        return
    if not supported():
        raise ConfigError(SOURCE, KEY, _text(setting), "CPU affinity is not supported on this system")
    usable = set(allowed())
    unknown = [cpu for cpu in setting if cpu not in usable]
    if unknown:
        raise ConfigError(SOURCE, KEY, _text(setting),
                          f"CPU {unknown[0]} is not available to this process (it may use {_text(tuple(allowed()))})")


def plan(setting: str | tuple[int, ...], workers: int) -> list[int | None]:
    """The CPU of each worker (None: not pinned)."""
    if setting == OFF or not supported():
        return [None] * workers
    if setting == AUTO:
        cpus = allowed()
        start = current_cpu()
        if start in cpus:  # the kernel's own choice first: independent instances then tend to spread
            cpus = cpus[cpus.index(start):] + cpus[:cpus.index(start)]
    else:
        cpus = list(setting)
    return [cpus[index % len(cpus)] for index in range(workers)]


def current_cpu() -> int | None:
    """The CPU this thread last ran on (field 39 of /proc/thread-self/stat), or None where unknown."""
    try:
        stat = Path("/proc/thread-self/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces
    try:
        return int(fields[36])  # field 39 of the whole line: fields 1 and 2 are left of ")"
    except (IndexError, ValueError):
        return None


def pin_this_thread(cpu: int | None) -> frozenset[int] | None:
    """Run this thread, and the threads it starts from now on, on ``cpu`` only, under SCHED_BATCH.
    Returns the CPUs it was allowed before (for :class:`UnpinnedThreadPool`); None if it stays unpinned
    (``cpu`` None, or pinning unsupported or refused)."""
    if cpu is None or not supported():
        return None
    before = frozenset(os.sched_getaffinity(0))
    try:
        os.sched_setaffinity(0, {cpu})  # Linux: pid 0 is the calling thread, not the whole process
        # SCHED_BATCH: no preempting on wake-up. Two threads on one CPU that share the GIL gain nothing
        # by preempting each other: the one woken by a GIL release would only find the GIL taken again.
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError as err:  # e.g. a sandbox that refuses the calls: slower, not broken
        log.warning("cannot pin the reactor and database threads to CPU %d (%s); running unpinned", cpu, err)
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, before)
        return None
    return before


class UnpinnedThreadPool(ThreadPool):
    """A thread pool whose threads may run on ``cpus`` (all the process had before pinning), though
    started by a pinned thread: for work that runs without the GIL, such as Argon2."""

    def __init__(self, cpus: frozenset[int] | None, **kwargs):
        self._cpus = cpus
        super().__init__(**kwargs)

    def threadFactory(self, *args, target, **kwargs) -> threading.Thread:  # noqa: N802 (Twisted's name)
        cpus = self._cpus

        def run():
            if cpus is not None:
                with contextlib.suppress(OSError):  # at worst the thread stays where its starter was
                    os.sched_setaffinity(0, cpus)
                    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))  # SCHED_BATCH was inherited
            target()

        return threading.Thread(*args, target=run, **kwargs)


def _text(cpus: tuple[int, ...]) -> str:
    return ",".join(str(cpu) for cpu in cpus)
