"""One transaction (a unit of work): its connection, its repositories, committed or rolled back whole."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Callable, Iterator

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..core.secretbox import SecretBox
from .accounts import AccountRepository
from .audit import AuditRepository
from .device_challenges import ChallengeRepository
from .engine import READ_ONLY, UNREACHABLE, unavailable, write_refused
from .oauth import OAuthRepository
from .sessions import SessionRepository
from .statements import CompiledStatements
from .users import UserRepository
from .writer_lock import WriterLock


class WriteNeeded(Exception):
    """A read-only transaction tried to write; it was rolled back with nothing written."""


class Transaction:
    """The repositories of one transaction.

    The request path (accounts, logins, audit records) runs statements built with SQLAlchemy Core on the
    transaction's driver connection (:meth:`fetch`, :meth:`change`, see statements.py); management
    commands also use an ORM session joined to the same transaction, made on first use.
    """

    def __init__(self, connection: Connection, box: SecretBox | None, statements: CompiledStatements):
        self._connection = connection
        self._statements = statements
        self._session: Session | None = None
        self._box = box
        self.durable = False
        self.users = UserRepository(self)
        self.audit = AuditRepository(self)

    @property
    def connection(self) -> Connection:
        """The transaction's connection, with the session's pending changes written first."""
        if self._session is not None:
            self._session.flush()
        return self._connection

    def fetch(self, statement, params: dict) -> list[tuple]:
        """Rows of a request-path SELECT, run on the driver's cursor (see statements.py)."""
        return self._statements.fetch(self.connection, statement, params)

    def change(self, statement, params: dict) -> int:
        """Run a request-path INSERT, UPDATE or DELETE on the driver's cursor; rows matched."""
        return self._statements.change(self.connection, statement, params)

    @property
    def session(self) -> Session:
        if self._session is None:
            # Joins the transaction and never commits it (SQLAlchemy's default for a connection that is
            # already in one): begin() does.
            self._session = Session(bind=self._connection, expire_on_commit=False)
        return self._session

    def make_durable(self) -> None:
        """Have this transaction on disk before it returns: for changes that must survive a power loss
        (secrets, recovery codes). SQLite otherwise commits with synchronous=NORMAL (its safety level
        cannot change inside a transaction); other databases sync every commit anyway."""
        self.durable = True

    @property
    def oauth(self) -> OAuthRepository:
        """OAuth2 clients and access tokens."""
        return OAuthRepository(self)

    @property
    def accounts(self) -> AccountRepository:
        """Accounts; without a key ring (management commands) their encrypted claims cannot be read."""
        return AccountRepository(self, self._box)

    @property
    def sessions(self) -> SessionRepository:
        """Sign-in sessions of the self-service APIs."""
        return SessionRepository(self)

    @property
    def challenges(self) -> ChallengeRepository:
        """The device API's authIds."""
        return ChallengeRepository(self)

    def _finish(self, committing: bool) -> None:
        if self._session is not None:
            try:
                if committing:
                    self._session.flush()
            finally:
                self._session.close()


@contextmanager
def begin(engine: Engine, statements: CompiledStatements, *, box: SecretBox | None = None, read_only: bool = False,
          lock: WriterLock | None = None,
          after_durable_commit: Callable[[], None] | None = None) -> Iterator[Transaction]:
    """A transaction on a connection of ``engine``: committed if the block returns, rolled back if it
    raises (see Database.transaction), with ``lock`` held throughout. ``after_durable_commit`` runs after
    the commit of a transaction that asked to be durable, before its connection goes back to the pool."""
    try:
        # The lock before the connection: with one pooled connection per process, a writer holding it
        # while waiting for another process's lock would stall this process's reads (logins, /ready).
        with lock.held() if lock is not None else nullcontext(), engine.connect() as conn:
            if read_only:
                conn.execution_options(**{READ_ONLY: True, "postgresql_readonly": True})
            transaction = Transaction(conn, box, statements)
            with conn.begin():
                committed = False
                try:
                    yield transaction
                    committed = True
                finally:
                    transaction._finish(committed)
            if transaction.durable and after_durable_commit is not None:
                after_durable_commit()
    except DBAPIError as exc:
        if read_only and write_refused(exc):
            raise WriteNeeded() from exc
        if isinstance(exc, UNREACHABLE):
            raise unavailable(exc) from exc
        raise
