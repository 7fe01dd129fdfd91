"""Re-encrypting stored secrets to the active key, online, in batches.

Each batch is one transaction: up to ``batch_size`` claims still sealed with another key are locked
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so rows a server is writing right now are left for a later
batch instead of waited for; SQLite's ``BEGIN IMMEDIATE`` serialises anyway), opened with their key,
sealed with the active one, checked to open again to the same text as stored in the database, and
committed together. There is no progress record to keep: the rows still on other keys *are* the work
left, so a crash between batches loses nothing and one inside a batch rolls that batch back; running
again continues.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func, select

from ..core.errors import SecretUnreadable, TotpAdminError
from ..core.secretbox import SecretBox, associated_data
from ..core.usernames import UserRef
from .database import Database
from .models import Claim, Tenant, User

# A batch that finds nothing while rows remain (all locked by concurrent writers) is retried this many
# times, this many seconds apart, before giving up and reporting them as remaining.
LOCKED_RETRIES = 10
LOCKED_RETRY_SECONDS = 0.2


@dataclass
class RekeyReport:
    rewritten: int = 0  # values re-encrypted to the active key
    remaining_old: int = 0  # values still on other keys when the run ended
    batches: int = 0  # batches committed


class RekeyError(TotpAdminError):
    """A stored value could not be re-encrypted. Names the row, never the value; ``report`` tells what
    was done before (those batches are committed)."""

    def __init__(self, message: str, report: RekeyReport):
        super().__init__(message)
        self.report = report


class InjectedCrash(RuntimeError):
    """Raised by the ``fail_after`` test hook inside a batch, before it commits."""


def _injected_crash() -> None:
    raise InjectedCrash("rekey interrupted by the fail_after hook")


def _old_rows(target: str):
    return Claim.key_id.is_not(None), Claim.key_id != target


def count_old(db: Database, target: str) -> int:
    """How many stored values are sealed with a key other than ``target`` (one scan of ``claims``)."""
    with db.transaction(read_only=True) as transaction:
        return transaction.session.scalar(select(func.count()).select_from(Claim).where(*_old_rows(target)))


def values_per_key(db: Database) -> dict[str, int]:
    """How many stored values each key sealed, by key id."""
    with db.transaction() as transaction:
        return dict(transaction.session.execute(
            select(Claim.key_id, func.count()).where(Claim.key_id.is_not(None)).group_by(Claim.key_id)).all())


def rekey(db: Database, box: SecretBox, *, batch_size: int = 100, verify: bool = True,
          progress: Callable[[int, int], None] | None = None, fail_after: int | None = None,
          crash: Callable[[], None] | None = None) -> RekeyReport:
    """Re-encrypt every value not sealed with ``box``'s active key to it; see the module docstring.

    Raises :class:`RekeyError` (naming the user and claim) at the first value that does not open with
    its key or does not verify; that batch is rolled back, earlier ones stay committed.
    ``progress(done, total)`` is called with the values re-encrypted so far and the values to do: once
    they are counted (before the first batch) and after each commit; ``total`` is that count, raised to
    ``done`` if values sealed with an old key turned up meanwhile. ``fail_after`` is a test hook: after
    that many committed batches, the next one calls ``crash()`` (default: raise :class:`InjectedCrash`)
    after rewriting its rows, before committing.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    target = box.active_key_id
    report = RekeyReport()
    total = 0
    if progress is not None:
        total = count_old(db, target)  # a cheap count up front, for the progress shown
        progress(0, total)
    retries = 0
    while True:
        with db.transaction() as transaction:
            session = transaction.session
            rows = session.execute(
                select(Claim, User.tenant_id, User.username, Tenant.domain)
                .join(User, User.id == Claim.user_id)
                .join(Tenant, Tenant.id == User.tenant_id)
                .where(*_old_rows(target))
                .order_by(Claim.user_id, Claim.uri)
                .limit(batch_size)
                .with_for_update(of=Claim, skip_locked=True)
            ).all()
            if rows:
                done = []
                for claim, tenant_id, username, domain in rows:
                    where = f"claim {claim.uri} of user {UserRef(domain, username).qualified}"
                    aad = associated_data(tenant_id, claim.user_id, claim.uri)
                    try:
                        plain = box.open(claim.key_id, claim.value, aad)
                    except SecretUnreadable:
                        raise RekeyError(f"cannot re-encrypt the {where}: its value does not decrypt with key "
                                         f"{claim.key_id} (tampered, or the key is not in the key file); "
                                         f"it stays on key {claim.key_id}", report) from None
                    new_id, sealed = box.seal(plain, aad)
                    if new_id != target:
                        raise RekeyError(f"the active key changed from {target} to {new_id} during "
                                         f"re-encryption; run it again", report)
                    if verify and box.open(new_id, sealed, aad) != plain:
                        raise RekeyError(f"re-encrypting the {where} did not verify; it stays on key "
                                         f"{claim.key_id}", report)
                    claim.value, claim.key_id = sealed, new_id
                    done.append((claim.user_id, claim.uri, aad, plain, where))
                session.flush()
                if verify:
                    # What the database now holds (not what we meant to write) must open to the same text.
                    for user_id, uri, aad, plain, where in done:
                        stored = session.execute(select(Claim.key_id, Claim.value)
                                                 .where(Claim.user_id == user_id, Claim.uri == uri)).one()
                        try:
                            ok = stored.key_id == target and box.open(stored.key_id, stored.value, aad) == plain
                        except SecretUnreadable:
                            ok = False
                        if not ok:
                            raise RekeyError(f"the re-encrypted {where} read back from the database does "
                                             f"not verify; its batch is rolled back", report)
                if fail_after is not None and report.batches >= fail_after:
                    (crash or _injected_crash)()
        if not rows:
            report.remaining_old = count_old(db, target)
            if report.remaining_old and retries < LOCKED_RETRIES:
                # Rows locked by concurrent writers (SKIP LOCKED passed them over): wait for them.
                retries += 1
                time.sleep(LOCKED_RETRY_SECONDS)
                continue
            return report
        retries = 0
        report.rewritten += len(rows)
        report.batches += 1
        if progress is not None:
            total = max(total, report.rewritten)
            progress(report.rewritten, total)
