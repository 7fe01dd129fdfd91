"""Progress bars for long commands (``keys rotate``, ``scripts/bench_seed.py``), drawn by tqdm.

The bar goes to standard error and only when that is a terminal: piped or redirected into a log, a
command writes no bar and no control characters, just its result lines. The store layer knows nothing
of it: it calls a plain ``progress(done, total)``, which :class:`ProgressBar` is.
"""

from __future__ import annotations

import os
import sys

from tqdm import tqdm

# The size to draw in on a terminal that reports none (a pseudo-terminal nobody sized, as under
# `script`): tqdm would draw nothing there.
FALLBACK_SIZE = {"ncols": 80, "nrows": 24}


class ProgressBar:
    """``bar(done, total)`` shows rows done of total, the rate and the time left; the bar appears at the
    first call (when the total is known). Use it as a context manager, so the bar ends before the
    summary line is printed."""

    def __init__(self, description: str, unit: str, *, enabled: bool = True):
        self._description, self._unit = description, unit
        self._stream = sys.stderr
        self._enabled = enabled
        self._bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            sized = _columns(self._stream) > 0  # follow the terminal's width as it changes, if it has one
            # disable=None: tqdm draws nothing unless the stream is a terminal.
            self._bar = tqdm(total=total, desc=self._description, unit=f" {self._unit}", file=self._stream,
                             disable=None if self._enabled else True, leave=True, dynamic_ncols=sized,
                             **({} if sized else FALLBACK_SIZE))
        if total != self._bar.total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0
