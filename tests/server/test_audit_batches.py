"""On SQLite, audit rows of calls that only read are stored many per transaction, at the end of each round of
the database thread (server/database_calls.py), in the serving process's own audit file (store/audit_files.py),
and a call is answered only once its row is stored; read-only transactions refuse writes (store/transaction.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from conftest import free_port
from totpadmin.core.audit import SUCCESS, AuditEvent
from totpadmin.core.errors import StoreUnavailable
from totpadmin.store.database import Database
from totpadmin.store.transaction import WriteNeeded
from totpadmin.store.models import AuditRecord

EVENT = AuditEvent(request_id="r1", source="127.0.0.1", caller="admin@carbon.super", operation="initTOTP",
                   target="alice@carbon.super", tenant="carbon.super", outcome=SUCCESS)


def audit_rows(db: Database) -> int:
    with db.transaction(read_only=True) as unit:
        return len(unit.audit.find(limit=1000))


def test_a_read_only_transaction_refuses_a_write_and_writers_still_write(store):
    with pytest.raises(WriteNeeded):
        with store.transaction(read_only=True) as unit:
            unit.audit.add(EVENT)
    assert audit_rows(store) == 0
    store.add_audit_events([EVENT, EVENT])  # the connection is a writer again
    assert audit_rows(store) == 2
    with pytest.raises(WriteNeeded):  # and read-only again
        with store.transaction(read_only=True) as unit:
            unit.audit.add(EVENT)
    assert audit_rows(store) == 2


def test_a_batch_is_stored_whole_or_not_at_all(store):
    too_long = AuditEvent(**{**EVENT.__dict__, "outcome": "x" * 5000})  # beyond the outcome column
    if store.engine.dialect.name == "sqlite":
        pytest.skip("SQLite does not enforce column lengths")
    with pytest.raises(StoreUnavailable):
        store.add_audit_events([EVENT, too_long])
    assert audit_rows(store) == 0


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if want else name):
            return float(value)
    return 0.0


def test_read_calls_are_answered_after_their_rows_are_stored_in_batches(make_server, database):
    if database.schema is not None:
        pytest.skip("SQLite only: on PostgreSQL each row is stored in its call's transaction")
    metrics_port = free_port()
    srv = make_server(extra=("--metrics-port", str(metrics_port)))
    srv.cli("user", "add", "alice", input="alice-password-4711\n")
    sessions = [srv.session() for _ in range(16)]
    assert sessions[0].post(srv.url + "/initTOTP", data={"username": "alice"}).status_code == 200  # enrols: writes

    for _ in range(5):
        r = sessions[0].post(srv.url + "/initTOTP", data={"username": "alice"})  # enrolled: only reads
        assert r.status_code == 200, r.text
        rows = srv.database.query_audit("SELECT count(*) FROM audit_trail WHERE request_id = :r", r=r.headers["x-request-id"])
        assert rows == [(1,)], "answered, so its row is stored already"

    def calls(session):
        ids = []
        for _ in range(25):
            r = session.post(srv.url + "/initTOTP", data={"username": "alice"})
            assert r.status_code == 200, r.text
            ids.append(r.headers["x-request-id"])
        return ids

    with ThreadPoolExecutor(len(sessions)) as pool:
        ids = [i for each in pool.map(calls, sessions) for i in each]
    assert len(set(ids)) == 400
    rows = srv.database.query_audit(
        "SELECT outcome, count(*) FROM audit_trail WHERE operation = 'initTOTP' GROUP BY outcome")
    assert rows == [("success", 406)]

    text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    batched = metric(text, "totp_audit_batch_rows_sum")
    batches = metric(text, "totp_audit_batch_rows_count")
    assert batched == 405, "every read call's row went through a batch; the enrolment's was in its own transaction"
    assert batches < batched / 2, f"{batches:g} transactions for {batched:g} rows: not batched"
    assert metric(text, "totp_operations_total", operation="initTOTP", outcome="success") == 406


def test_a_read_call_whose_row_cannot_be_stored_is_refused(make_server):
    """In a batch (SQLite) or in the call's own transaction (PostgreSQL), alike."""
    srv = make_server()
    srv.cli("user", "add", "alice", input="alice-password-4711\n")
    session = srv.session()
    assert session.post(srv.url + "/initTOTP", data={"username": "alice"}).status_code == 200
    assert session.post(srv.url + "/isTOTPEnabled", data={"username": "alice"}).text.count("true") == 1
    # The reads still work; storing the audit row fails (SQLite: in the server's audit file of read calls).
    files = srv.database.audit_files()
    assert len(files) == (0 if srv.database.schema else 1)
    for url in [f"sqlite:///{path}" for path in files] or [srv.database.url]:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE audit_events")
        engine.dispose()
    r = session.post(srv.url + "/isTOTPEnabled", data={"username": "alice"})
    assert r.status_code == 500, r.text
    assert "true" not in r.text, "the answer of a call that could not be audited was withheld"
    assert "Traceback" not in r.text
    # Once the table is back, the next call is answered and audited: the failed round left nothing open.
    for url in [f"sqlite:///{path}" for path in files] or [srv.database.url]:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            AuditRecord.__table__.create(conn)
        engine.dispose()
    r = session.post(srv.url + "/isTOTPEnabled", data={"username": "alice"})
    assert r.status_code == 200 and r.text.count("true") == 1, r.text
    # The first isTOTPEnabled's row went with the table, the refused one's was never written.
    assert srv.database.query_audit("SELECT outcome FROM audit_trail WHERE operation = 'isTOTPEnabled'") == [
        (SUCCESS,)]
