"""Observability of a running server: /health and /ready on the service port, Prometheus metrics on a
listener of their own (loopback unless named otherwise, never on the service port), and JSON logs whose
lines carry the request id the reply's X-Request-Id header names."""

from __future__ import annotations

import json
import socket

import requests

from conftest import free_port

ALICE_PW = "alice-password-4711"


def metric(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if want else name):
            return float(value)
    return None


def test_health_and_ready_on_the_service_port(server):
    s = server.session(user=None)
    health, ready = s.get(server.base + "/health"), s.get(server.base + "/ready")
    assert (health.status_code, health.text) == (200, "ok\n")
    assert (ready.status_code, ready.text) == (200, "ready\n")


def test_metrics_count_requests_operations_and_lockouts(make_server):
    port = free_port()
    srv = make_server(properties={"maxFailedAttempts": "2"}, extra=("--metrics-port", str(port)))
    srv.cli("user", "add", "alice", input=f"{ALICE_PW}\n")
    admin = srv.session()
    assert admin.post(srv.url + "/initTOTP", data={"username": "alice"}).status_code == 200
    assert admin.post(srv.url + "/isTOTPEnabled", data={"username": "alice"}).status_code == 200
    assert admin.post(srv.url + "/initTOTP", data={"username": "nobody"}).status_code == 500
    for _ in range(3):
        admin.post(srv.url + "/validateTOTP", data={"username": "alice", "verificationCode": "000000"})
    assert srv.session("alice", "Wr0ng-pass-Z").post(srv.url + "/isTOTPEnabled", data={"username": "alice"}).status_code == 500

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert metric(text, "totp_operations_total", operation="initTOTP", outcome="success") == 1
    assert metric(text, "totp_operations_total", operation="initTOTP", outcome="fault") == 1
    assert metric(text, "totp_operations_total", operation="isTOTPEnabled", outcome="success") == 1
    assert metric(text, "totp_operations_total", operation="validateTOTP", outcome="failure") >= 2
    assert metric(text, "totp_lockouts_total") == 1
    assert metric(text, "totp_http_requests_total", status="200") >= 4
    assert metric(text, "totp_http_requests_total", status="500") >= 2
    assert metric(text, "totp_http_request_seconds_count") == sum(
        metric(text, "totp_http_requests_total", status=s) or 0 for s in ("200", "500"))
    batches = metric(text, "totp_audit_batch_rows_count")  # isTOTPEnabled only read: on SQLite its row was batched
    assert batches >= 1 if srv.database.schema is None else batches == 0
    assert ALICE_PW not in text and "Wr0ng-pass-Z" not in text


def test_metrics_are_not_served_on_the_service_port_nor_beyond_loopback(make_server):
    port = free_port()
    srv = make_server(extra=("--metrics-port", str(port)))
    assert srv.session().get(srv.base + "/metrics").status_code == 404
    listening = [line.split() for line in open("/proc/net/tcp").read().splitlines()[1:]]
    local = {entry[1] for entry in listening if entry[3] == "0A"}  # state LISTEN
    assert f"0100007F:{port:04X}" in local, "metrics listen on 127.0.0.1"
    assert f"00000000:{port:04X}" not in local, "and not on every address"
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_json_logs_carry_the_request_id(make_server):
    srv = make_server(extra=("--log-format", "json"))
    srv.cli("user", "add", "alice", input=f"{ALICE_PW}\n")
    r = srv.session().post(srv.url + "/initTOTP", data={"username": "alice"})
    assert r.status_code == 200
    request_id = r.headers["x-request-id"]
    srv.stop()
    lines = [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]
    mine = [doc for doc in lines if doc.get("request_id") == request_id]
    assert {doc["logger"] for doc in mine} == {"totpadmin.audit", "totpadmin.access"}, mine
    access = next(doc for doc in mine if doc["logger"] == "totpadmin.access")
    assert access["status"] == 200 and access["level"] == "INFO" and "duration_ms" in access
    audit = next(doc for doc in mine if doc["logger"] == "totpadmin.audit")
    assert (audit["operation"], audit["outcome"], audit["target"]) == ("initTOTP", "success", "alice")
    assert ALICE_PW not in srv.log() and "secret=" not in srv.log()


def assert_our_plain_answer(r, status: int) -> None:
    where = (r.request.method, r.request.url)
    assert r.status_code == status, (where, r.status_code, r.text[:200])
    assert r.headers.get("Server") == "WSO2 Carbon Server", (where, r.headers)
    assert r.headers["Content-Type"].startswith("text/plain"), (where, r.headers)
    assert "<" not in r.text and "twisted" not in r.text.lower(), (where, r.text[:200])
    if status == 405:
        assert r.headers["Allow"], (where, r.headers)


def test_every_answer_of_the_service_port_is_the_services_own(make_server):
    """Probes, unknown paths and methods: the service's Server header and plain text, never Twisted's
    name and version or its HTML pages (404, 405, 501)."""
    port = free_port()
    srv = make_server(extra=("--metrics-port", str(port)))
    s = srv.session(user=None)
    for method, path, status in [
        ("GET", "/health", 200), ("HEAD", "/health", 200), ("GET", "/ready", 200), ("HEAD", "/ready", 200),
        ("GET", "/", 404), ("POST", "/", 404), ("DELETE", "/", 404), ("GET", "/nope", 404),
        ("GET", "/health/x", 404), ("GET", "/ready/x/y", 404), ("GET", "/metrics", 404),
        ("GET", "/services", 404), ("GET", "/services/Other", 404),
        ("POST", "/health", 405), ("PUT", "/health", 405), ("DELETE", "/ready", 405), ("OPTIONS", "/ready", 405),
        ("PATCH", "/services/TOTPAdminService", 405),
    ]:
        assert_our_plain_answer(s.request(method, srv.base + path), status)

    # The metrics listener, a site of its own: no Twisted name, version or HTML page either.
    metrics = f"http://127.0.0.1:{port}"
    ok = requests.get(metrics + "/metrics", timeout=10)
    assert ok.status_code == 200 and ok.headers["Server"] == "WSO2 Carbon Server", ok.headers
    for method, path, status in [("GET", "/", 404), ("GET", "/nope", 404), ("POST", "/metrics", 405),
                                 ("DELETE", "/health", 405)]:
        assert_our_plain_answer(requests.request(method, metrics + path, timeout=10), status)


AUDIT_KEYS = {"request_id", "source", "caller", "operation", "target", "outcome"}


def test_json_audit_lines_carry_the_same_keys_for_every_outcome(make_server):
    """Every line of the audit logger names request_id, source, caller, operation, target and outcome
    (and detail where there is one), failed logins included."""
    srv = make_server(extra=("--log-format", "json"))
    srv.cli("user", "add", "alice", input=f"{ALICE_PW}\n")
    admin, alice = srv.session(), srv.session("alice", ALICE_PW)
    calls = {  # request id -> (caller, operation, target, outcome, detail)
        admin.post(srv.url + "/initTOTP", data={"username": "alice"}).headers["x-request-id"]:
            ("admin", "initTOTP", "alice", "success", None),
        admin.post(srv.url + "/validateTOTP", data={"username": "alice", "verificationCode": "12345x"})
            .headers["x-request-id"]: ("admin", "validateTOTP", "alice", "failure", None),
        alice.post(srv.url + "/resetTOTP", data={"username": "admin"}).headers["x-request-id"]:
            ("alice", "resetTOTP", "admin", "denied", "NotAuthorized"),
        admin.post(srv.url + "/resetTOTP", data={"username": "ghost"}).headers["x-request-id"]:
            ("admin", "resetTOTP", "ghost", "fault", "UnknownUser"),
        srv.session("admin", "Wr0ng-pass-Z").post(srv.url + "/isTOTPEnabled", data={"username": "alice"})
            .headers["x-request-id"]: ("admin", "isTOTPEnabled", "-", "auth-failed", None),
        srv.session("alice", "Wr0ng-pass-Y").post(
            srv.url, data=b"<x/>", headers={"Content-Type": "text/xml; charset=UTF-8"}).headers["x-request-id"]:
            ("alice", "(soap)", "-", "auth-failed", None),
    }
    srv.stop()
    lines = [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]
    audit = [doc for doc in lines if doc["logger"] == "totpadmin.audit"]
    assert {doc["request_id"] for doc in audit} == set(calls), audit
    for doc in audit:
        caller, operation, target, outcome, detail = calls[doc["request_id"]]
        assert AUDIT_KEYS <= set(doc), doc
        assert ("detail" in doc) == (detail is not None), doc
        assert (doc["caller"], doc["operation"], doc["target"], doc["outcome"], doc.get("detail")) == \
            (caller, operation, target, outcome, detail), doc
        assert doc["source"] == "127.0.0.1", doc
    assert "Wr0ng-pass" not in srv.log() and ALICE_PW not in srv.log()
