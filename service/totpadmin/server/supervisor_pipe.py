"""How a worker of ``serve --workers N`` notices that its supervisor is gone, however it went.

The supervisor makes one pipe and keeps its write end, which no other process holds: the end is not
inheritable and a worker is handed only the read end (``--supervisor-fd``, Popen ``pass_fds``). Nothing
is ever written. When the supervisor exits, by SIGKILL, a crash or the OOM killer as well as normally,
the kernel closes its write end and every worker's read end reaches end-of-file; the worker's reactor,
which watches it, then stops as on SIGTERM: it stops accepting, finishes its calls in flight and exits,
which frees the port for the next supervisor.

Linux's ``PR_SET_PDEATHSIG`` would not do: it fires when the *thread* that forked the worker ends, not
the process, and a supervisor that dies before the worker has set it goes unnoticed. The pipe has no
such window: a worker that starts after its supervisor died sees end-of-file at once.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

from twisted.internet import error, main
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from ..config.errors import ConfigError

log = logging.getLogger(__name__)


@implementer(IReadDescriptor)
class SupervisorWatch:
    """A reader for the reactor: calls ``on_gone`` once, when the supervisor's end of the pipe closes."""

    def __init__(self, fd: int, on_gone: Callable[[], None]):
        try:
            os.set_blocking(fd, False)  # shared with the other workers: none may block reading it
        except OSError as err:
            raise ConfigError("command line", "supervisor-fd", fd, f"not an open pipe: {err.strerror}") from err
        self._fd: int | None = fd
        self._on_gone = on_gone

    def fileno(self) -> int:
        return -1 if self._fd is None else self._fd

    def logPrefix(self) -> str:
        return "supervisor-pipe"

    def doRead(self):
        # epoll reports the end of a pipe as a hang-up, without calling doRead: connectionLost decides.
        return None if self._open() else main.CONNECTION_DONE

    def connectionLost(self, reason) -> None:
        """The pipe ended, or the reactor shuts down and drops every reader: only the first is the
        supervisor's exit."""
        if self._fd is None:
            return
        gone = not self._open()
        os.close(self._fd)
        self._fd = None
        if gone:
            self._on_gone()

    def _open(self) -> bool:
        """False once the pipe has reached end-of-file (or broke)."""
        try:
            # b"": end-of-file. The supervisor writes nothing; whatever someone else wrote is dropped.
            return os.read(self._fd, 512) != b""
        except BlockingIOError:  # nothing to read, the write end still open
            return True
        except OSError:
            return False


def stop_when_gone(reactor, fd: int) -> SupervisorWatch:
    """Stop ``reactor`` (which drains the calls in flight) once the supervisor that handed down the
    read end ``fd`` has exited. :class:`ConfigError` if ``fd`` is not open."""

    def gone() -> None:
        log.warning("the supervisor is gone; stopping")
        try:
            reactor.stop()
        except error.ReactorNotRunning:  # stopping already (SIGTERM)
            pass

    watcher = SupervisorWatch(fd, gone)
    reactor.addReader(watcher)
    return watcher
