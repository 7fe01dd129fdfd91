"""One TOTP device of a user as stored (core/devices.py says what devices are)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Device:
    """One device as stored. ``id`` None: the primary device of an older enrolment, not stored yet."""

    id: int | None
    name: str
    primary: bool
    active: bool
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    pending_expires_at: float | None = None  # non-primary devices only
    last_step: int | None = None  # non-primary devices only
