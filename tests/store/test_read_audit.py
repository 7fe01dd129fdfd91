"""On SQLite, each serving process keeps the audit rows of its read-only calls in a file of its own
(store/audit_files.py), so that those calls change nothing the workers share; `totp-admin audit` lists
them with the rest of the trail."""

from __future__ import annotations

import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest


def sqlite_only(database):
    if database.schema is not None:
        pytest.skip("SQLite only: on PostgreSQL every row is in audit_events")


def audit_cli(srv, *args: str) -> list[list[str]]:
    """The rows `totp-admin audit` prints, as columns (time, request, source, caller, operation, target,
    outcome, detail), after its header."""
    out = srv.cli("audit", *args).stdout.splitlines()
    assert out[0].split("\t")[:2] == ["time", "request"]
    return [line.split("\t") for line in out[1:]]


def test_read_only_calls_leave_the_database_file_unchanged(make_server, database):
    sqlite_only(database)
    srv = make_server()
    srv.cli("user", "add", "alice", input="alice-password-4711\n")
    session = srv.session()
    assert session.post(srv.url + "/initTOTP", data={"username": "alice"}).status_code == 200  # enrols

    probe = sqlite3.connect(srv.data_dir / "totp-admin.db")
    try:
        # data_version changes when another connection commits to the file: what empties the page cache
        # of every other process that reads it.
        before = probe.execute("PRAGMA data_version").fetchone()
        ids = []
        for operation in ["initTOTP", "isTOTPEnabled"] * 6:
            r = session.post(f"{srv.url}/{operation}", data={"username": "alice"})
            assert r.status_code == 200, r.text
            ids.append(r.headers["X-Request-ID"])
        assert probe.execute("PRAGMA data_version").fetchone() == before, "a read-only call changed the database"

        assert session.post(srv.url + "/resetTOTP", data={"username": "alice"}).status_code == 200
        assert probe.execute("PRAGMA data_version").fetchone() != before, "the probe sees a change"
    finally:
        probe.close()

    assert [p.name for p in database.audit_files()] == ["totp-admin-audit-0.db"]
    in_file = sqlite3.connect(database.audit_files()[0])
    try:
        stored = {row[0] for row in in_file.execute("SELECT request_id FROM audit_events")}
    finally:
        in_file.close()
    assert set(ids) <= stored
    assert not database.query("SELECT count(*) FROM audit_events WHERE request_id IN ('" + "','".join(ids) + "')")[0][0]
    assert {row[1] for row in audit_cli(srv, "--limit", "1000")} >= set(ids), "totp-admin audit lists them"


def test_the_cli_lists_the_whole_trail_newest_first(make_server):
    """Rows of calls that change state (audit_events) and of read-only calls (on SQLite, the server's
    file) in one list, in the order of the calls, with filters and the limit applied to the whole."""
    srv = make_server()
    srv.cli("user", "add", "alice", input="alice-password-4711\n")
    session = srv.session()
    calls = []
    for operation in ["initTOTP", "initTOTP", "isTOTPEnabled", "resetTOTP", "isTOTPEnabled", "initTOTP"]:
        r = session.post(f"{srv.url}/{operation}", data={"username": "alice"})
        assert r.status_code == 200, r.text
        calls.append((r.headers["X-Request-ID"], operation))

    rows = audit_cli(srv, "--user", "alice")
    assert [(row[1], row[4]) for row in rows] == calls[::-1]
    assert [row[1] for row in audit_cli(srv, "--user", "alice", "--limit", "2")] == [c[0] for c in calls[:-3:-1]]
    assert [row[1] for row in audit_cli(srv, "--operation", "initTOTP")] == [c[0] for c in calls[::-1]
                                                                           if c[1] == "initTOTP"]


def test_each_worker_keeps_a_file_and_a_restart_reuses_them(make_server, database):
    sqlite_only(database)
    srv = make_server(extra=("--workers", "2"))

    def call(_):
        s = srv.session()
        s.headers["Connection"] = "close"  # a new connection each time, for the kernel to hand out
        r = s.post(srv.url + "/isTOTPEnabled", data={"username": "admin"})
        assert r.status_code == 200, r.text
        return r.headers["X-Request-ID"]

    def served_by_both(first_line: int = 0) -> set[str]:
        with ThreadPoolExecutor(8) as pool:
            ids = set(pool.map(call, range(48)))
        pids = set(re.findall(r"\[(\d+)\] totpadmin\.access", "\n".join(srv.log().splitlines()[first_line:])))
        assert len(pids) == 2, f"requests served by {pids}"
        return ids

    ids = served_by_both()
    assert [p.name for p in database.audit_files()] == ["totp-admin-audit-0.db", "totp-admin-audit-1.db"]
    for path in database.audit_files():
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM audit_events").fetchone()[0] > 0, f"{path.name} is unused"
    assert srv.stop() == 0

    lines = len(srv.log().splitlines())
    srv.start("--workers", "2")
    ids |= served_by_both(lines)
    assert [p.name for p in database.audit_files()] == ["totp-admin-audit-0.db", "totp-admin-audit-1.db"], \
        "the slots of the stopped workers are used again"
    listed = {row[1] for row in audit_cli(srv, "--operation", "isTOTPEnabled", "--limit", "1000")}
    assert listed == ids


def test_an_audit_file_of_a_newer_totp_admin_stops_the_server(make_server, database):
    sqlite_only(database)
    srv = make_server(start=False)
    srv.data_dir.mkdir(parents=True, exist_ok=True)
    newer = srv.data_dir / "totp-admin-audit-0.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    srv.start(wait=False)
    assert srv.proc.wait(timeout=60) == 2
    assert f"{newer} was written by a newer totp-admin" in srv.log()
    assert "Traceback" not in srv.log()

    refused = srv.cli("audit", check=False)
    assert refused.returncode == 2
    assert f"{newer} was written by a newer totp-admin" in refused.stderr


def test_an_audit_file_is_indexed_by_time_only(make_server, database):
    """Each index is another page every round writes: an audit file keeps the one on time (newest first)
    and goes without those on caller, target and tenant, also when it was made with them (before)."""
    sqlite_only(database)
    srv = make_server(start=False)
    srv.data_dir.mkdir(parents=True, exist_ok=True)
    made_before = srv.data_dir / "totp-admin-audit-0.db"
    conn = sqlite3.connect(made_before)
    with conn:
        conn.execute("CREATE TABLE audit_events (id INTEGER PRIMARY KEY, at DATETIME NOT NULL,"
                     " request_id VARCHAR(64) NOT NULL, source VARCHAR(64) NOT NULL, caller VARCHAR(255) NOT NULL,"
                     " operation VARCHAR(64) NOT NULL, target VARCHAR(255), tenant VARCHAR(255),"
                     " outcome VARCHAR(16) NOT NULL, detail VARCHAR(255) NOT NULL)")
        for column in ("at", "caller", "target", "tenant"):
            conn.execute(f"CREATE INDEX ix_audit_events_{column} ON audit_events ({column})")
        conn.execute("INSERT INTO audit_events VALUES (1, '2026-01-01 00:00:00.000000', 'made-before',"
                     " '127.0.0.1', 'admin', 'isTOTPEnabled', 'alice', 'carbon.super', 'success', '')")
        conn.execute("PRAGMA user_version = 1")
    conn.close()

    def indexes(path) -> set[str]:
        conn = sqlite3.connect(path)
        try:
            return {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events'")}
        finally:
            conn.close()

    srv.start()
    srv.cli("user", "add", "alice", input="alice-password-4711\n")
    r = srv.session().post(srv.url + "/isTOTPEnabled", data={"username": "alice"})
    assert r.status_code == 200
    assert indexes(made_before) == {"ix_audit_events_at"}
    listed = {row[1] for row in audit_cli(srv, "--user", "alice")}
    assert {"made-before", r.headers["X-Request-ID"]} <= listed, "rows before and after are listed"
    assert srv.stop() == 0

    srv.start("--workers", "2")
    session = srv.session()
    for _ in range(8):
        assert session.post(srv.url + "/isTOTPEnabled", data={"username": "alice"}).status_code == 200
    assert len(database.audit_files()) == 2
    assert [indexes(path) for path in database.audit_files()] == [{"ix_audit_events_at"}] * 2
