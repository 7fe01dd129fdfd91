"""The request path's statements, run on the driver's cursor.

SQLAlchemy writes the SQL (each statement is built once in its repository and compiled here once per
dialect); only its execution layer is skipped. That layer (execution context, result wrapping, events)
cost ~30 µs of CPU per statement, a third of the server's SQL time, and on SQLite most of it ran inside
the database-wide write lock, which is what limits ``--workers``.

What the execution layer did and this module does instead: bind processors (e.g. SQLite's text form of
a datetime) are applied; driver errors become SQLAlchemy's (``OperationalError`` and so on, parameters
hidden: they can hold secrets). Column defaults are not applied: the statements name every column.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement


class InTransaction(Protocol):
    """What a repository (users.py, accounts.py, audit.py) sees of the transaction it works in:
    transaction.Transaction, typed here so that the repositories do not import the module that holds them."""

    @property
    def connection(self) -> Connection: ...

    @property
    def session(self) -> Session: ...

    def fetch(self, statement: ClauseElement, params: dict) -> list[tuple]: ...

    def change(self, statement: ClauseElement, params: dict) -> int: ...

    def make_durable(self) -> None: ...


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # bind names in order, for positional paramstyles (SQLite's "?")
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]

    def arguments(self, params: dict) -> tuple | dict:
        if self.processors:
            params = dict(params)
            for name, process in self.processors:
                params[name] = process(params[name])
        if self.positions is not None:
            return tuple(params[name] for name in self.positions)
        return params


class CompiledStatements:
    """The statements of one engine's dialect, compiled once each and run on the driver's cursor (the
    statements live as long as the process: module constants)."""

    def __init__(self, dialect: Dialect):
        self._dialect = dialect
        self._compiled: dict[int, tuple[ClauseElement, _Compiled]] = {}
        self._lock = threading.Lock()

    def _compile(self, statement: ClauseElement) -> _Compiled:
        entry = self._compiled.get(id(statement))
        if entry is not None and entry[0] is statement:
            return entry[1]
        dialect = self._dialect
        compiled = statement.compile(dialect=dialect)
        processors = []
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((name, process))
        result = _Compiled(compiled.string, tuple(compiled.positiontup) if dialect.positional else None,
                           tuple(processors))
        with self._lock:
            self._compiled[id(statement)] = (statement, result)  # the statement kept: its id stays unique
        return result

    def fetch(self, conn: Connection, statement: ClauseElement, params: dict) -> list[tuple]:
        """All rows of a SELECT."""
        return self._run(conn, statement, params, lambda cursor: cursor.fetchall())

    def change(self, conn: Connection, statement: ClauseElement, params: dict) -> int:
        """Run an INSERT, UPDATE or DELETE; the number of rows it matched."""
        return self._run(conn, statement, params, lambda cursor: cursor.rowcount)

    def change_many(self, dbapi_connection, statement: ClauseElement, params: list[dict]) -> None:
        """Run an INSERT, UPDATE or DELETE once per parameter set (the driver's executemany), on a driver
        connection."""
        compiled = self._compile(statement)
        self._on_cursor(dbapi_connection, compiled,
                        lambda cursor: cursor.executemany(compiled.sql, [compiled.arguments(p) for p in params]))

    def _run(self, conn: Connection, statement: ClauseElement, params: dict, result):
        compiled = self._compile(statement)

        def execute(cursor):
            cursor.execute(compiled.sql, compiled.arguments(params))
            return result(cursor)

        return self._on_cursor(conn.connection.dbapi_connection, compiled, execute)

    def _on_cursor(self, dbapi_connection, compiled: _Compiled, work):
        cursor = dbapi_connection.cursor()
        try:
            return work(cursor)
        except self._dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(compiled.sql, None, exc, self._dialect.loaded_dbapi.Error,
                                      hide_parameters=True, dialect=self._dialect) from exc
        finally:
            cursor.close()
