"""What the core needs of one user's stored TOTP data; ``totpadmin.store`` implements it inside one
transaction, holding the user's row lock."""

from __future__ import annotations

from typing import Protocol

from .device import Device
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

    # --- devices (core/devices.py): rare, except the read validateTOTP makes after a wrong code ---

    def devices(self, *, dated: bool = False) -> list[Device]:
        """The user's device rows, the primary one first, then by age; ``dated``: with their dates
        (else None: the request path needs none)."""

    def device_secret(self, device_id: int) -> str:
        """A non-primary device's secret, opened."""

    def add_device(self, name: str, *, primary: bool, secret: str | None, pending_expires_at: float | None,
                   active: bool = False) -> int:
        """Store a device (``secret`` sealed); its id."""

    def update_device(self, device_id: int, **changes) -> None:
        """Write some of: active, primary, secret (None only), last_step, pending_expires_at, last_used_at."""

    def rename_device(self, device_id: int, name: str, secret: str | None) -> None:
        """A new name; ``secret``: a non-primary device's own secret, sealed again for the new name."""

    def claim_device_step(self, device_id: int, step: int) -> bool:
        """Atomically record ``step`` as the device's newest used one if it is newer; False if not."""

    def remove_device(self, device_id: int) -> None: ...

    def end_sessions(self) -> None:
        """End every sign-in session of the user (core/sessions.py)."""

    def remove_devices(self) -> None:
        """Every device of the user, and their authIds."""

    def forget_primary_challenges(self) -> None:
        """The authIds of the primary device that has no row."""
