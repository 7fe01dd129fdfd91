"""`totp-admin keys rotate` (and scripts/bench_seed.py, which seeds the store here: thousands of enrolled
users in a second) show a progress bar on a terminal, and nothing but their result lines when their
output goes to pipes. The terminal is a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from conftest import ROOT, TOTP_ADMIN

USERS = 3000
VALUES = USERS * 2  # bench_seed seals each user's secretkey and qrcodeurl
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but tab and newline


def frame(description: str, unit: str) -> re.Pattern:
    """One tqdm frame, e.g. ``re-encrypting:  45%|████▌     | 2700/6000 [00:01<00:01, 2400.52 values/s]``:
    groups done, total, time left, rate."""
    return re.compile(rf"{description}: +\d+%\|[^|]*\| (\d+)/(\d+) \[\d\d:\d\d<(\d\d:\d\d|\?), ([\d.]+|\?) {unit}/s\]")


FRAME = frame("re-encrypting", "values")


def seed_args(tmp_path, database) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "bench_seed.py"), "--data-dir", str(tmp_path / "data"),
            "--database-url", database.url, "--users", str(USERS)]


@pytest.fixture
def seeded(tmp_path, database):
    """The store options of a data dir and database with USERS enrolled users."""
    r = subprocess.run(seed_args(tmp_path, database), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return ["--data-dir", str(tmp_path / "data"), "--database-url", database.url]


def rotate_args(store: list[str], *extra: str) -> list[str]:
    return [str(TOTP_ADMIN), "keys", "rotate", "--settle-seconds", "0", *extra, *store]


def on_terminal(args: list[str], *, stdout_too: bool = True, columns: int = 120) -> tuple[int, str, str]:
    """Run ``args`` with stderr (and stdout, if ``stdout_too``) on a pseudo-terminal of ``columns``
    columns: (exit status, what the terminal showed, what went to the stdout pipe)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave if stdout_too else subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    shown = bytearray()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal's last writer
                break
            if not chunk:
                break
            shown += chunk
        else:
            proc.kill()
            pytest.fail(f"{args} did not finish:\n{shown.decode(errors='replace')}")
    finally:
        os.close(master)
    piped = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout=30), shown.decode(errors="replace"), piped


def assert_bar(shown: str, total: int, pattern: re.Pattern = FRAME) -> None:
    drawn = [(int(m[1]), int(m[2]), m[3], m[4]) for m in pattern.finditer(shown)]  # done, total, time left, rate
    assert drawn, f"no progress bar on the terminal:\n{shown}"
    assert {t for _, t, _, _ in drawn} == {total}, drawn
    assert drawn[0][0] == 0 and drawn[-1][0] == total, drawn  # from nothing to all of it
    done = [d for d, _, _, _ in drawn]
    assert done == sorted(done), drawn
    last = drawn[-1]
    assert last[2] == "00:00" and float(last[3]) > 0, last  # time left, and a rate
    assert "\r" in shown  # redrawn in place


def test_rotate_on_a_terminal_shows_a_bar_then_the_summary(seeded):
    status, shown, _ = on_terminal(rotate_args(seeded, "--batch-size", "100"))
    assert status == 0, shown
    assert_bar(shown, VALUES)
    lines = shown.replace("\r\n", "\n").split("\n")
    summary = next(i for i, line in enumerate(lines) if line.startswith("re-encrypted "))
    assert re.fullmatch(rf"re-encrypted {VALUES} stored values to k[0-9a-f]{{8}} in {VALUES // 100} batches "
                        r"\(\d+\.\d s\)", lines[summary]), lines[summary]
    assert lines[summary + 1].startswith("retired keys: k"), lines
    assert FRAME.search(lines[summary - 1]), "the bar ends before the summary"
    assert "Traceback" not in shown


def test_rotate_into_pipes_writes_no_bar_and_no_control_characters(seeded):
    r = subprocess.run(rotate_args(seeded, "--batch-size", "100"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stderr == ""
    assert not CONTROL.search(r.stdout) and "values/s" not in r.stdout, repr(r.stdout)
    lines = r.stdout.splitlines()
    assert len(lines) == 3, lines
    assert re.fullmatch(r"added key k[0-9a-f]{8}, now active \(was k[0-9a-f]{8}\)", lines[0]), lines
    assert re.fullmatch(rf"re-encrypted {VALUES} stored values to k[0-9a-f]{{8}} in {VALUES // 100} batches "
                        r"\(\d+\.\d s\)", lines[1]), lines
    assert lines[2].startswith("retired keys: k"), lines


def test_resume_shows_the_rest_on_the_terminal_and_only_results_on_stdout(seeded):
    """An interrupted rotation, resumed with stdout piped (e.g. into tee) and stderr on the terminal:
    the bar counts the values left and goes to the terminal; stdout gets the result lines only."""
    crashed = subprocess.run(rotate_args(seeded, "--batch-size", "500", "--crash-after-batches", "3"),
                             capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -9, (crashed.stdout, crashed.stderr)
    left = VALUES - 3 * 500
    status, shown, piped = on_terminal(rotate_args(seeded, "--resume", "--batch-size", "500"), stdout_too=False)
    assert status == 0, (shown, piped)
    assert_bar(shown, left)
    assert not CONTROL.search(piped) and "values/s" not in piped, repr(piped)
    lines = piped.splitlines()
    assert lines[0].startswith("resuming: re-encrypting to the active key k"), lines
    assert re.fullmatch(rf"re-encrypted {left} stored values to k[0-9a-f]{{8}} in {-(-left // 500)} batches "
                        r"\(\d+\.\d s\)", lines[1]), lines
    assert lines[2].startswith("retired keys: k"), lines


def test_bench_seed_shows_a_bar_on_a_terminal_only(tmp_path, database):
    status, shown, _ = on_terminal(seed_args(tmp_path, database))
    assert status == 0, shown
    assert_bar(shown, USERS, frame("seeding", "users"))
    assert f"seeded {USERS:,} users" in shown

    r = subprocess.run([*seed_args(tmp_path, database), "--start", str(USERS + 1)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", (r.stdout, r.stderr)
    assert not CONTROL.search(r.stdout) and r.stdout.startswith(f"seeded {USERS:,} users"), repr(r.stdout)
