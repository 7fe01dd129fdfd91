"""A reader that stops early (``totp-admin qr USER --format png | head``) ends the command quietly.

The recipe of the Python documentation (library/signal, "Note on SIGPIPE"): on ``BrokenPipeError``,
point standard output at ``/dev/null``, so that Python's own flush at exit cannot fail again and print
a traceback, and exit with a non-zero status, since the output was cut short.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable

EXIT_BROKEN_PIPE = 1


def quiet_on_broken_pipe(main: Callable[..., int]) -> Callable[..., int]:
    @functools.wraps(main)
    def run(*args, **kwargs) -> int:
        try:
            try:
                return main(*args, **kwargs)
            finally:
                sys.stdout.flush()  # what is still buffered meets the closed pipe here, not at exit
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_BROKEN_PIPE

    return run
