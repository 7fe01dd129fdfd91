"""A user's claims as the core sees them (:class:`totpadmin.core.enrollment.Account`).

Sensitive claims are sealed with the :class:`SecretBox` on write and opened on read, with the tenant,
user and claim URI bound in as associated data.
"""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, func, insert, or_, select, update

from ..core import claims
from ..core.device import Device
from ..core.errors import SecretUnreadable, UnknownTenant, UnknownUser
from ..core.lockout import GuardState
from ..core.recovery import IssuedCode
from ..core.secretbox import SecretBox, associated_data
from ..core.usernames import UserRef
from .models import Claim, DeviceChallenge, RecoveryCode, Tenant, TotpDevice, TotpState, User, _now
from .sessions import SessionRepository

if TYPE_CHECKING:
    from .statements import InTransaction

_GUARD_FIELDS = tuple(f.name for f in fields(GuardState))
_CLAIMS = Claim.__table__
_STATE = TotpState.__table__
_USERS = User.__table__
_TENANTS = Tenant.__table__
_CODES = RecoveryCode.__table__
_DEVICES = TotpDevice.__table__
_CHALLENGES = DeviceChallenge.__table__
_DEVICE_ID = bindparam("b_device_id")
_DEVICES_OF = (select(_DEVICES.c.id, _DEVICES.c.name, _DEVICES.c.is_primary, _DEVICES.c.active,
                      _DEVICES.c.pending_expires_at, _DEVICES.c.last_step)
               .where(_DEVICES.c.user_id == bindparam("b_user_id"))
               .order_by(_DEVICES.c.is_primary.desc(), _DEVICES.c.created_at, _DEVICES.c.id))
_ONE_DEVICE = (_DEVICES.c.id == _DEVICE_ID, _DEVICES.c.user_id == bindparam("b_user_id"))
_DEVICE_SECRET = select(_DEVICES.c.name, _DEVICES.c.secret, _DEVICES.c.key_id).where(*_ONE_DEVICE)
_DEVICE_USED = update(_DEVICES).where(*_ONE_DEVICE).values(last_used_at=bindparam("b_now"))
_CLAIM_DEVICE_STEP = update(_DEVICES).where(
    *_ONE_DEVICE, or_(_DEVICES.c.last_step.is_(None), _DEVICES.c.last_step < bindparam("b_step"))
).values(last_step=bindparam("b_step"))
_DEVICE_COLUMNS = {"active": "active", "primary": "is_primary", "secret": "secret", "last_step": "last_step",
                   "pending_expires_at": "pending_expires_at", "last_used_at": "last_used_at"}

# Built once (building one costs more CPU than running it on SQLite) and run on the driver's cursor
# (store/statements.py): every column is named, since no SQLAlchemy default is applied. Bind parameters
# are named b_*.
_USER_ID = bindparam("b_user_id")
_NOW = bindparam("b_now")
_CLAIMS_OF = select(_CLAIMS.c.uri, _CLAIMS.c.value, _CLAIMS.c.key_id).where(_CLAIMS.c.user_id == _USER_ID)
_ONE_CLAIM = (_CLAIMS.c.user_id == _USER_ID, _CLAIMS.c.uri == bindparam("b_uri"))
_DELETE_CLAIM = delete(_CLAIMS).where(*_ONE_CLAIM)
_UPDATE_CLAIM = update(_CLAIMS).where(*_ONE_CLAIM).values(
    value=bindparam("b_value"), key_id=bindparam("b_key_id"), updated_at=_NOW)
_INSERT_CLAIM = insert(_CLAIMS).values(
    user_id=_USER_ID, uri=bindparam("b_uri"), value=bindparam("b_value"), key_id=bindparam("b_key_id"),
    updated_at=_NOW)
_STATE_OF = select(*(_STATE.c[name] for name in _GUARD_FIELDS)).where(_STATE.c.user_id == _USER_ID)
_INSERT_STATE = insert(_STATE).values(user_id=_USER_ID, **{name: bindparam(f"b_{name}") for name in _GUARD_FIELDS})
_CLAIM_STEP = update(_STATE).where(
    _STATE.c.user_id == _USER_ID,
    or_(_STATE.c.last_step.is_(None), _STATE.c.last_step < bindparam("b_step")),
).values(last_step=bindparam("b_step"))
_ACCOUNT = (select(_USERS.c.id, _USERS.c.tenant_id).join(_TENANTS, _TENANTS.c.id == _USERS.c.tenant_id)
            .where(_TENANTS.c.domain == bindparam("b_tenant"), _USERS.c.username == bindparam("b_name")))
_LOCKED_ACCOUNT = _ACCOUNT.with_for_update(of=_USERS)
_ACCOUNT_BY_ID = (select(_USERS.c.tenant_id, _TENANTS.c.domain, _USERS.c.username)
                  .join(_TENANTS, _TENANTS.c.id == _USERS.c.tenant_id).where(_USERS.c.id == _USER_ID))
_LOCKED_ACCOUNT_BY_ID = _ACCOUNT_BY_ID.with_for_update(of=_USERS)
_TENANT_ID = select(_TENANTS.c.id).where(_TENANTS.c.domain == bindparam("b_tenant"))


@functools.cache
def _update_state(names: frozenset[str]):
    """UPDATE of some state fields (one statement object per set of fields)."""
    return update(_STATE).where(_STATE.c.user_id == _USER_ID).values(
        **{name: bindparam(f"b_{name}") for name in sorted(names)})


class StoredAccount:
    """One user's claims, verification state and recovery codes, read and written inside the caller's
    transaction (the request path: statements run on the driver's cursor, see store/statements.py)."""

    def __init__(self, transaction: InTransaction, box: SecretBox | None, user_id: int, tenant_id: int, ref: UserRef):
        self.ref = ref
        self.user_id = user_id
        self._transaction = transaction
        self._box = box
        self._tenant_id = tenant_id
        rows = transaction.fetch(_CLAIMS_OF, {"b_user_id": user_id})
        # uri -> (value as stored, id of the key that sealed it or None)
        self._claims: dict[str, tuple[str, str | None]] = {uri: (value, key_id) for uri, value, key_id in rows}
        self._state: GuardState | None = None
        self._has_state_row = False

    def _aad(self, uri: str) -> bytes:
        return associated_data(self._tenant_id, self.user_id, uri)

    @property
    def _secrets(self) -> SecretBox:
        if self._box is None:
            raise RuntimeError("encrypted claims need the key ring; this store was opened without it")
        return self._box

    def get(self, uri: str) -> str | None:
        row = self._claims.get(uri)
        if row is None:
            return None
        value, key_id = row
        if key_id is None:
            return value
        return self._secrets.open(key_id, value, self._aad(uri))

    def stored(self, uri: str) -> str | None:
        row = self._claims.get(uri)
        return None if row is None else row[0]

    def set(self, uri: str, value: str | None) -> None:
        """Write the claim unless it already holds ``value`` (an idempotent call writes nothing)."""
        if self._holds(uri, value):
            return
        self._transaction.make_durable()  # secrets and enrollment must survive a power loss
        if value is None:
            self._transaction.change(_DELETE_CLAIM, {"b_user_id": self.user_id, "b_uri": uri})
            del self._claims[uri]
            return
        key_id = None
        if uri in claims.SENSITIVE:
            key_id, value = self._secrets.seal(value, self._aad(uri))
        self._transaction.change(_UPDATE_CLAIM if uri in self._claims else _INSERT_CLAIM,
                          {"b_user_id": self.user_id, "b_uri": uri, "b_value": value, "b_key_id": key_id,
                           "b_now": _now()})
        self._claims[uri] = (value, key_id)

    def _holds(self, uri: str, value: str | None) -> bool:
        if value is None or uri not in self._claims:
            return value is None and uri not in self._claims
        try:
            return self.get(uri) == value
        except SecretUnreadable:  # a damaged value is overwritten, not compared
            return False

    # --- verification bookkeeping (core.lockout.GuardState) ---
    # Read once per transaction, after the user's row lock was taken (so no concurrent change is
    # missed), and kept in step with this object's own writes.

    def state(self) -> GuardState:
        if self._state is None:
            rows = self._transaction.fetch(_STATE_OF, {"b_user_id": self.user_id})
            self._has_state_row = bool(rows)
            self._state = GuardState(*rows[0]) if rows else GuardState()
        return self._state

    def save_state(self, **changes) -> None:
        """Write some fields of the state (the caller holds the user's row lock)."""
        unknown = set(changes) - set(_GUARD_FIELDS)
        if unknown:
            raise ValueError(f"unknown state fields {sorted(unknown)}")
        state = self.state()
        if self._has_state_row:
            if changes:
                self._transaction.change(_update_state(frozenset(changes)),
                                  {"b_user_id": self.user_id, **{f"b_{k}": v for k, v in changes.items()}})
        else:
            values = {**_fields(GuardState()), **changes}
            self._transaction.change(_INSERT_STATE,
                                     {"b_user_id": self.user_id, **{f"b_{k}": v for k, v in values.items()}})
            self._has_state_row = True
        self._state = GuardState(**{**_fields(state), **changes})

    def claim_step(self, step: int) -> bool:
        """Record ``step`` as used if it is newer than every used one: one conditional UPDATE, so two
        processes racing with the same code cannot both succeed."""
        state = self.state()
        if not self._has_state_row:
            self.save_state()
        if self._transaction.change(_CLAIM_STEP, {"b_user_id": self.user_id, "b_step": step}) != 1:
            return False
        self._state = GuardState(**{**_fields(state), "last_step": step})
        return True

    # --- recovery codes ---
    # Rare (enrolment, a lost device), so through SQLAlchemy's execution layer, whose column defaults
    # fill created_at; the hot statements above run on the driver's cursor.

    def replace_recovery_codes(self, codes: list[IssuedCode]) -> None:
        conn = self._transaction.connection
        result = conn.execute(delete(_CODES).where(_CODES.c.user_id == self.user_id))
        if codes:
            conn.execute(insert(_CODES), [{"user_id": self.user_id, "lookup": code.lookup,
                                           "code_hash": code.code_hash} for code in codes])
        if codes or result.rowcount:
            self._transaction.make_durable()

    def recovery_code_hash(self, lookup: str) -> tuple[int, str] | None:
        row = self._transaction.connection.execute(
            select(_CODES.c.id, _CODES.c.code_hash).where(_CODES.c.user_id == self.user_id, _CODES.c.lookup == lookup)
        ).first()
        return None if row is None else (row.id, row.code_hash)

    def spend_recovery_code(self, code_id: int) -> bool:
        """Delete the code; False if it was already gone (spent by a concurrent call)."""
        result = self._transaction.connection.execute(delete(_CODES).where(_CODES.c.id == code_id))
        self._transaction.make_durable()  # a spent code must stay spent
        return result.rowcount == 1

    def recovery_codes_left(self) -> int:
        return self._transaction.connection.scalar(
            select(func.count(_CODES.c.id)).where(_CODES.c.user_id == self.user_id))


    # --- devices (core/devices.py) ---
    # A sign-in reads the device rows and may write one (the hot statements below run on the driver's
    # cursor); adding and listing devices are rare and go through SQLAlchemy's execution layer.

    def devices(self, *, dated: bool = False) -> list[Device]:
        if dated:
            d = _DEVICES.c
            rows = self._transaction.connection.execute(
                select(d.id, d.name, d.is_primary, d.active, d.created_at, d.last_used_at, d.pending_expires_at,
                       d.last_step).where(d.user_id == self.user_id).order_by(d.is_primary.desc(), d.created_at, d.id))
            return [Device(*row) for row in rows]
        rows = self._transaction.fetch(_DEVICES_OF, {"b_user_id": self.user_id})
        return [Device(id=id_, name=name, primary=bool(primary), active=bool(active), pending_expires_at=pending,
                       last_step=last_step) for id_, name, primary, active, pending, last_step in rows]

    def device_secret(self, device_id: int) -> str:
        name, secret, key_id = self._transaction.fetch(_DEVICE_SECRET, {"b_user_id": self.user_id,
                                                                        "b_device_id": device_id})[0]
        return self._secrets.open(key_id, secret, self._aad(_device_uri(name)))

    def add_device(self, name: str, *, primary: bool, secret: str | None, pending_expires_at: float | None,
                   active: bool = False) -> int:
        key_id = None
        if secret is not None:
            key_id, secret = self._secrets.seal(secret, self._aad(_device_uri(name)))
        self._transaction.make_durable()
        result = self._transaction.connection.execute(insert(_DEVICES).values(
            user_id=self.user_id, name=name, is_primary=primary, active=active, secret=secret, key_id=key_id,
            pending_expires_at=pending_expires_at, created_at=_now()))
        return result.inserted_primary_key[0]

    def update_device(self, device_id: int, **changes) -> None:
        unknown = set(changes) - set(_DEVICE_COLUMNS)
        if unknown:
            raise ValueError(f"unknown device fields {sorted(unknown)}")
        if changes.get("secret", None) is not None:
            raise ValueError("a device's secret is only ever cleared")
        if set(changes) == {"last_used_at"}:  # every sign-in
            self._transaction.change(_DEVICE_USED, {"b_user_id": self.user_id, "b_device_id": device_id,
                                                    "b_now": changes["last_used_at"]})
            return
        values = {_DEVICE_COLUMNS[name]: value for name, value in changes.items()}
        if "secret" in changes:
            values["key_id"] = None
        self._transaction.make_durable()
        self._transaction.connection.execute(
            update(_DEVICES).where(_DEVICES.c.id == device_id, _DEVICES.c.user_id == self.user_id).values(**values))

    def rename_device(self, device_id: int, name: str, secret: str | None) -> None:
        """A new name; ``secret``: the device's own secret, sealed again (its seal names the device)."""
        values = {"name": name}
        if secret is not None:
            values["key_id"], values["secret"] = self._secrets.seal(secret, self._aad(_device_uri(name)))
        self._transaction.make_durable()
        self._transaction.connection.execute(
            update(_DEVICES).where(_DEVICES.c.id == device_id, _DEVICES.c.user_id == self.user_id).values(**values))

    def claim_device_step(self, device_id: int, step: int) -> bool:
        claimed = self._transaction.change(_CLAIM_DEVICE_STEP, {"b_user_id": self.user_id, "b_device_id": device_id,
                                                                "b_step": step}) == 1
        if claimed:
            self._transaction.make_durable()  # a used code must stay used
        return claimed

    def remove_device(self, device_id: int) -> None:
        self._transaction.make_durable()
        self._transaction.connection.execute(
            delete(_DEVICES).where(_DEVICES.c.id == device_id, _DEVICES.c.user_id == self.user_id))

    def end_sessions(self) -> None:
        SessionRepository(self._transaction).end_all(self.user_id)

    def remove_devices(self) -> None:
        conn = self._transaction.connection
        removed = conn.execute(delete(_DEVICES).where(_DEVICES.c.user_id == self.user_id)).rowcount
        removed += conn.execute(delete(_CHALLENGES).where(_CHALLENGES.c.user_id == self.user_id)).rowcount
        if removed:
            self._transaction.make_durable()

    def forget_primary_challenges(self) -> None:
        self._transaction.connection.execute(delete(_CHALLENGES).where(_CHALLENGES.c.user_id == self.user_id,
                                                                       _CHALLENGES.c.device_id.is_(None)))


def _device_uri(name: str) -> str:
    """What a device's sealed secret is bound to (with the tenant and user), as a claim's is to its URI."""
    return f"urn:totp-admin:device:{name}"


def _fields(state: GuardState) -> dict:
    return {name: getattr(state, name) for name in _GUARD_FIELDS}


class AccountRepository:
    def __init__(self, transaction: InTransaction, box: SecretBox | None):
        self._transaction = transaction
        self._box = box

    def find(self, ref: UserRef, *, for_update: bool = True) -> StoredAccount:
        """The account of ``ref``, its user row locked for the rest of the transaction."""
        transaction = self._transaction
        rows = transaction.fetch(_LOCKED_ACCOUNT if for_update else _ACCOUNT,
                                 {"b_tenant": ref.tenant, "b_name": ref.name})
        if not rows:
            if not transaction.fetch(_TENANT_ID, {"b_tenant": ref.tenant}):
                raise UnknownTenant(ref.tenant)
            raise UnknownUser(ref.qualified)
        user_id, tenant_id = rows[0]
        return StoredAccount(transaction, self._box, user_id, tenant_id, ref)

    def find_by_id(self, user_id: int, *, for_update: bool = True) -> StoredAccount:
        """The account of the user with this id (an authId names its user so); :class:`UnknownUser` if
        the user is gone."""
        rows = self._transaction.fetch(_LOCKED_ACCOUNT_BY_ID if for_update else _ACCOUNT_BY_ID,
                                       {"b_user_id": user_id})
        if not rows:
            raise UnknownUser(str(user_id))
        tenant_id, tenant, name = rows[0]
        return StoredAccount(self._transaction, self._box, user_id, tenant_id, UserRef(tenant, name))
