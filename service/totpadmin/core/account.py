"""What the core needs of one user's stored TOTP data; ``totpadmin.store`` implements it inside one
transaction, holding the user's row lock."""

from __future__ import annotations

from typing import Protocol

from .lockout import GuardState
from .recovery import IssuedCode
from .usernames import UserRef


class Account(Protocol):
    ref: UserRef

    # --- claims (sensitive ones encrypted by the store; values here are plaintext) ---

    def get(self, uri: str) -> str | None:
        """The claim's value, or None when unset."""

    def set(self, uri: str, value: str | None) -> None:
        """Store ``value``; None clears the claim."""

    def stored(self, uri: str) -> str | None:
        """The claim exactly as stored: the sealed Base64 form for sensitive claims."""

    # --- verification bookkeeping ---

    def state(self) -> GuardState: ...

    def save_state(self, **changes) -> None:
        """Write the given :class:`GuardState` fields."""

    def claim_step(self, step: int) -> bool:
        """Atomically record ``step`` as used if it is newer than any used one; False if not."""

    # --- recovery codes ---

    def replace_recovery_codes(self, codes: list[IssuedCode]) -> None: ...

    def recovery_code_hash(self, lookup: str) -> tuple[int, str] | None:
        """(id, hash) of the unspent code with this lookup id."""

    def spend_recovery_code(self, code_id: int) -> bool:
        """Atomically spend the code; False if it was already spent."""

    def recovery_codes_left(self) -> int: ...
