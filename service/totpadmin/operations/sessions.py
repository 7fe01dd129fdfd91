"""Sign-in sessions (core/sessions.py) as use cases: sign in with a password (the login pipeline checks
it, as for HTTP Basic), raise the session with a TOTP or recovery code, describe it, sign out. A session
is also a credential kind of the login pipeline (:class:`SessionLogins`): the self-service APIs and
pages call as the session's user, at the session's assurance level.

Each call is one transaction, audited (``session.signIn``, ``session.secondFactor``, ``session.signOut``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from ..core import audit
from ..core.authentication import CacheState
from ..core.errors import NotAuthorized, SessionEnded, TotpAdminError
from ..core.principal import Principal
from ..core.sessions import (ACR_PASSWORD, ACR_SECOND_FACTOR, TOTP, Session, SessionPolicy, new_token,
                             token_hash)
from ..core.validation import Validation
from ..store.database import Database
from .audit_log import log_event
from .audit_trail import AuditTrail, ImmediateAuditTrail
from .caller import Caller
from .login import Request
from .totp import caller_event

PURGE_EVERY = 256  # sessions started by this process between two deletions of expired ones


@dataclass(frozen=True)
class SessionCredentials:
    """A session token: the ``accesstoken`` cookie (``from_cookie``) or ``Authorization: Bearer``."""

    token: str = field(repr=False)
    from_cookie: bool = False

    @property
    def claimed(self) -> str:
        """For the throttle and the audit: a short prefix of the token's SHA-256, never the token."""
        return "session:" + hashlib.sha256(self.token.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class SessionUser:
    """The principal of a call made in a session: the user, and the session as the call found it."""

    user: Principal
    session: Session

    @property
    def audit_name(self) -> str:
        return self.user.audit_name


@dataclass(frozen=True)
class SessionView:
    """What ``GET /api/session`` tells (the CSRF token is the protocol's: it derives from the token)."""

    id: str  # the user's stable UUID
    user_name: str
    tenant: str
    acr: int
    totp_enabled: bool


@dataclass(frozen=True)
class WrongCode:
    """A second factor refused: a wrong code, or (``replayed``) the current code used already;
    ``locked_until``: this failure began a lockout (epoch seconds)."""

    replayed: bool = False
    locked_until: float | None = None


@dataclass(frozen=True)
class NewSession:
    token: str = field(repr=False)  # shown once, to the client
    view: SessionView


class SessionOperations:
    def __init__(self, db: Database, validation: Validation, policy: SessionPolicy,
                 audit_trail: AuditTrail | None = None, observe: Callable[[audit.AuditEvent], None] = lambda e: None,
                 *, clock=time.time):
        self._db = db
        self._validation = validation
        self._policy = policy
        self._trail = audit_trail if audit_trail is not None else ImmediateAuditTrail(db)
        self._observe = observe
        self._clock = clock
        self._started = 0

    def sign_in(self, caller: Caller) -> NewSession:
        """A new session at ACR 1 for the user whose password the login pipeline just checked."""
        user = _password_user(caller)
        now = self._clock()
        token = new_token()
        session = Session(token_hash(token), user.user_id, ACR_PASSWORD, now, now)
        self._started += 1
        purge = self._started % PURGE_EVERY == 1

        def action(transaction):
            if purge:
                transaction.sessions.purge(now - self._policy.idle_seconds)
            transaction.sessions.add(session)
            return NewSession(token, self._view(transaction, user, session, now))
        return self.run(caller, "session.signIn", user, action)

    def describe(self, caller: Caller) -> SessionView:
        me = _session_user(caller)
        return self.run(caller, "session.get", me.user,
                         lambda transaction: self._view(transaction, me.user, me.session, self._clock()),
                         read_only=True)

    def second_factor(self, caller: Caller, code: str | None) -> NewSession | WrongCode:
        """Raise the session with ``code`` (a TOTP code, or a recovery code): the session under a new
        token; :class:`WrongCode` for a wrong or replayed code (counted toward the lockout, as by
        validateTOTP)."""
        me = _session_user(caller)

        def action(transaction):
            account = transaction.accounts.find_by_id(me.user.user_id)
            proof = self._validation.second_factor(account, code)
            if proof is None:
                return WrongCode(replayed=self._validation.replayed(account, code),
                                 locked_until=account.state().locked_until)
            return self.raised(transaction, me, proof)
        return self.run(caller, "session.secondFactor", me.user, action,
                        verdict=lambda raised: isinstance(raised, NewSession))

    def raised(self, transaction, me: SessionUser, proof: str) -> NewSession:
        """Inside a call's transaction: ``me``'s session at ACR 2 under a new token, after a second factor
        (``proof``: TOTP or RECOVERY; a TOTP code also counts as step-up for a while)."""
        now = self._clock()
        token = new_token()
        session = replace(me.session, token_hash=token_hash(token), level=ACR_SECOND_FACTOR, last_seen_at=now,
                          totp_at=now if proof == TOTP else me.session.totp_at)
        if not transaction.sessions.rotate(me.session, session):
            raise NotAuthorized()  # the session ended or was rotated meanwhile
        return NewSession(token, self._view(transaction, me.user, session, now))

    def sign_out(self, caller: Caller) -> None:
        me = _session_user(caller)
        self.run(caller, "session.signOut", me.user,
                 lambda transaction: transaction.sessions.end(me.session.token_hash))

    # --- the login pipeline's side: find and check a session ---

    def find(self, credentials: SessionCredentials) -> SessionUser | None:
        """Blocking (database, one read-only transaction): the live session the token names and its user."""
        now = self._clock()
        with self._db.transaction(read_only=True) as transaction:
            session = transaction.sessions.find(token_hash(credentials.token))
            if session is None or not session.alive(self._policy, now):
                return None
            login = transaction.users.get_login(session.user_id)
            if login is None:
                return None
            return SessionUser(Principal(login.user_id, login.ref, login.role), session)

    def confirm(self, transaction, me: SessionUser, *, touch: bool) -> bool:
        """Inside the call's transaction: the session is still the one found (not ended, rotated or
        expired meanwhile). ``touch``: write its last use now (the idle timeout; see :meth:`run`)."""
        now = self._clock()
        session = transaction.sessions.find(me.session.token_hash)
        if session is None or not session.same_level(me.session) or not session.alive(self._policy, now):
            return False
        if touch:
            transaction.sessions.touch(session.token_hash, now)
        return True

    # --- steps ---

    def _view(self, transaction, user: Principal, session: Session, now: float) -> SessionView:
        account = transaction.accounts.find_by_id(user.user_id, for_update=False)
        return SessionView(id=transaction.sessions.user_uuid(user.user_id), user_name=user.ref.name,
                           tenant=user.ref.tenant, acr=session.acr(now),
                           totp_enabled=self._validation.is_enabled(account))

    def run(self, caller: Caller, operation: str, user: Principal, action, *, read_only: bool = False,
            verdict: Callable[[object], bool] | None = None):
        """``action(transaction)`` in one transaction, audited, for ``caller`` acting on ``user``: a session's
        caller is confirmed first (the session still alive and at its level; its last use written now and
        then). A refusal (a domain error) is audited on its own and raised; ``verdict(result)`` false audits
        the call as a failure (a wrong code). Other self-service use cases (operations/me_totp.py) run
        through here too."""
        me = caller.principal if isinstance(caller.principal, SessionUser) else None
        # A session's last use is written at most every TOUCH_SECONDS: then even a read is a writer. A
        # read leaves its audit row to the batched trail (SQLite); elsewhere the row goes in its transaction.
        touch = me is not None and me.session.touch_due(self._clock())
        read_only = read_only and self._trail.reads_first and not touch
        try:
            with self._db.transaction(read_only=read_only) as transaction:
                if caller.confirm is not None and not caller.confirm(transaction):
                    raise NotAuthorized()
                if me is not None and not self.confirm(transaction, me, touch=touch):
                    raise SessionEnded()
                result = action(transaction)
                outcome = audit.FAILURE if verdict is not None and not verdict(result) else audit.SUCCESS
                event = caller_event(caller, operation, user.ref, outcome)
                if not read_only:
                    self._trail.add(transaction, event)
        except TotpAdminError as err:
            outcome = audit.DENIED if isinstance(err, NotAuthorized) else audit.FAULT
            self._trail.audit_alone(caller_event(caller, operation, user.ref, outcome, type(err).__name__),
                                    self._observe)
            raise
        log_event(event)
        if read_only:
            self._trail.leave(event)
        else:
            self._observe(event)
        return result


class SessionLogins:
    """:class:`~.login.Verifier` of :class:`SessionCredentials`: the session row (and its user) read on
    the database threads; each call confirms it again inside its own transaction
    (:meth:`SessionOperations.confirm`). Nothing is cached: a session's level and life change with every
    sign-in step."""

    hashes = False

    def __init__(self, sessions: SessionOperations, record: Callable[[audit.AuditEvent], None]):
        self._sessions = sessions
        self._record = record

    def key(self, credentials: SessionCredentials) -> bytes:
        return hashlib.sha256(credentials.token.encode("utf-8")).digest()

    def state(self, credentials: SessionCredentials) -> CacheState:
        return CacheState.MISSING

    def cached(self, credentials: SessionCredentials, request: Request) -> Caller | None:
        return None

    def find(self, credentials: SessionCredentials) -> SessionUser | None:
        return self._sessions.find(credentials)

    def check(self, credentials: SessionCredentials, found: SessionUser | None) -> SessionUser | None:
        return found

    def refuse(self, credentials: SessionCredentials, request: Request) -> None:
        self._record(audit.AuditEvent(request_id=request.request_id, source=request.source,
                                      caller=credentials.claimed, operation=request.operation, target=None,
                                      tenant=None, outcome=audit.AUTH_FAILED))

    def forget(self, credentials: SessionCredentials) -> None:
        pass


def _password_user(caller: Caller) -> Principal:
    if not isinstance(caller.principal, Principal):
        raise NotAuthorized()
    return caller.principal


def _session_user(caller: Caller) -> SessionUser:
    if not isinstance(caller.principal, SessionUser):
        raise NotAuthorized()
    return caller.principal
