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
