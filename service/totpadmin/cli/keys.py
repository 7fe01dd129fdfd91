"""``totp-admin keys``: rotate and list the keys that encrypt stored secrets, while servers run.

``keys rotate`` adds a key and makes it active (running servers notice the changed key file before
their next seal, and on meeting a value sealed with a key they do not know), waits a moment for writes
that began under the old key, re-encrypts every stored value to the new key in batches, then retires
the keys no stored value uses any more. Interrupted, it is finished by ``keys rotate --resume``, which
re-encrypts to the active key without adding one. Output: key ids and counts, never values.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from ..config.loader import store_settings
from ..core import keyring
from ..core.secretbox import SecretBox
from ..store.rekey import RekeyError, rekey, values_per_key
from ..wiring import KEY_FILE, open_database
from .progress import ProgressBar

DEFAULT_BATCH_SIZE = 100
DEFAULT_SETTLE_SECONDS = 2.0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600")
    return value


def register(commands, add_store_options) -> None:
    """Add ``keys rotate`` and ``keys list`` to the ``totp-admin`` sub-commands."""
    keys = commands.add_parser("keys", help="rotate and list the keys that encrypt stored secrets")
    actions = keys.add_subparsers(dest="action", required=True)
    rotate = actions.add_parser(
        "rotate", help="add a new active key, re-encrypt every stored secret to it, retire unused keys "
                       "(servers keep running)")
    rotate.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE,
                        help=f"values re-encrypted per transaction (default: {DEFAULT_BATCH_SIZE})")
    rotate.add_argument("--resume", action="store_true",
                        help="add no key: finish re-encrypting to the active key (after an interrupted rotation)")
    rotate.add_argument("--settle-seconds", type=_seconds, default=DEFAULT_SETTLE_SECONDS,
                        help="after adding the key, wait this long for writes begun under the old key to "
                             f"commit (default: {DEFAULT_SETTLE_SECONDS:g})")
    # Test hook: die by SIGKILL inside the batch after N committed ones, before it commits.
    rotate.add_argument("--crash-after-batches", type=int, help=argparse.SUPPRESS)
    listing = actions.add_parser("list", help="list the keys, the active one, and how many stored values use each")
    for sub in (rotate, listing):
        add_store_options(sub)


def run(args) -> int:
    settings = store_settings(data_dir=args.data_dir, database_url=args.database_url)
    db = open_database(settings, with_keys=False)
    key_file = settings.data_dir / KEY_FILE
    try:
        if args.action == "list":
            return _list(db, key_file)
        try:
            with keyring.locked(key_file):
                return _rotate(db, key_file, args)
        except keyring.KeyFileBusy as err:
            print(f"totp-admin: {err}", file=sys.stderr)
            return 1
    finally:
        db.dispose()


def _list(db, key_file) -> int:
    usage = values_per_key(db)
    if not key_file.exists():
        print(f"no key file at {key_file} (the server creates it when it first starts)")
        ring = keyring.KeyRing(active_id="", keys={})
    else:
        ring = keyring.load(key_file)
    for key_id in sorted(ring.keys, key=lambda k: (k != ring.active_id, k)):
        state = "active" if key_id == ring.active_id else "old"
        print(f"{key_id}\t{state}\t{usage.get(key_id, 0)} values")
    for key_id in sorted(set(usage) - set(ring.keys)):
        print(f"{key_id}\tMISSING from {key_file.name}\t{usage[key_id]} values")
    return 0


def _rotate(db, key_file, args) -> int:
    ring = keyring.load_or_create(key_file, needed=db.key_ids_in_use())
    if args.resume:
        print(f"resuming: re-encrypting to the active key {ring.active_id}")
    else:
        previous = ring.active_id
        ring = keyring.add_key(key_file)
        print(f"added key {ring.active_id}, now active (was {previous})")
        # A server that sealed a value with the old key just before it noticed the new file may not
        # have committed yet; give it time, so that the count of values on old keys below sees it.
        time.sleep(args.settle_seconds)
    started = time.monotonic()
    try:
        with ProgressBar("re-encrypting", "values") as progress:
            report = rekey(db, SecretBox(ring), batch_size=args.batch_size, progress=progress,
                           fail_after=args.crash_after_batches, crash=lambda: os.kill(os.getpid(), signal.SIGKILL))
    except RekeyError as err:
        print(f"totp-admin: {err}", file=sys.stderr)
        print(f"totp-admin: {err.report.rewritten} values were re-encrypted to {ring.active_id} before "
              f"stopping; no key was retired. Fix or reset that user's TOTP, then run "
              f"`totp-admin keys rotate --resume`.", file=sys.stderr)
        return 1
    print(f"re-encrypted {report.rewritten} stored values to {ring.active_id} in {report.batches} batches "
          f"({time.monotonic() - started:.1f} s)")
    if report.remaining_old:
        print(f"totp-admin: {report.remaining_old} values are still on old keys (locked by concurrent "
              f"writes); no key was retired. Run `totp-admin keys rotate --resume` again.", file=sys.stderr)
        return 1
    retired = keyring.retire_unused(key_file, db.key_ids_in_use())
    print(f"retired keys: {', '.join(retired)}" if retired else "retired keys: none")
    return 0
