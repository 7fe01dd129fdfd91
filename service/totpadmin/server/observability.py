"""Health, readiness and Prometheus metrics.

``/health`` (liveness: the process answers) and ``/ready`` (the database answers) are served on the
service port for load balancers. Metrics are served only on their own listener (``--metrics-port``),
bound to 127.0.0.1 unless an address is named on purpose, so they are never public by accident.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from twisted.internet.threads import deferToThreadPool
from twisted.web import server

from ..core.audit import AuditEvent
from .plain import Directory, GetOnly, NamedSite

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("totp_http_requests", "HTTP requests to the service, by status code",
                                ["status"], registry=self.registry)
        self.latency = Histogram("totp_http_request_seconds", "Time from request to response",
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self.operations = Counter("totp_operations", "Operations by name and outcome (as audited)",
                                  ["operation", "outcome"], registry=self.registry)
        self.password_checks = Counter("totp_password_checks",
                                       "Passwords checked with Argon2: for a login not in the credential cache "
                                       "(reason=login), or to renew a cached one before it expires (reason=renewal)",
                                       ["reason"], registry=self.registry)
        self.lockouts = Counter("totp_lockouts", "Users locked out after too many wrong codes", registry=self.registry)
        self.audit_batches = Histogram("totp_audit_batch_rows",
                                       "Audit rows of read-only calls stored per transaction (group commit)",
                                       buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)

    def request_done(self, status: int, seconds: float) -> None:
        self.requests.labels(str(status)).inc()
        self.latency.observe(seconds)

    def audited(self, event: AuditEvent) -> None:
        self.operations.labels(event.operation, event.outcome).inc()

    def audit_batch_stored(self, events: list[AuditEvent]) -> None:
        self.audit_batches.observe(len(events))
        for event in events:
            self.audited(event)

    def locked_out(self, _ref) -> None:
        self.lockouts.inc()


class MetricsResource(GetOnly):
    def __init__(self, metrics: Metrics):
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request):
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self._metrics.registry)


class HealthResource(GetOnly):
    """Liveness: answering at all is the proof."""

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=UTF-8")
        return b"ok\n"


class ReadyResource(GetOnly):
    """Readiness: 200 when a query reaches the database (from a worker thread), else 503."""

    def __init__(self, reactor, pool, db):
        super().__init__()
        self._reactor, self._pool, self._db = reactor, pool, db

    def render_GET(self, request):
        d = deferToThreadPool(self._reactor, self._pool, self._db.ping)
        d.addCallbacks(lambda _: (200, b"ready\n"), self._not_ready)
        d.addCallback(self._answer, request)
        return server.NOT_DONE_YET

    @staticmethod
    def _not_ready(failure):
        log.warning("not ready: %s", failure.getErrorMessage())
        return 503, b"database unavailable\n"

    @staticmethod
    def _answer(result, request):
        status, body = result
        if request.finished or request._disconnected:
            return
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/plain; charset=UTF-8")
        request.write(body)
        request.finish()


def metrics_site(metrics: Metrics) -> server.Site:
    site = NamedSite(Directory({b"metrics": MetricsResource(metrics), b"health": HealthResource()}))
    site.displayTracebacks = False
    site.noisy = False
    return site
