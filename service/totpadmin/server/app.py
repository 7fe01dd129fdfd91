"""Start the service: keys, database, first admin, TLS, the site, and a clean stop on SIGTERM."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
from pathlib import Path

from twisted.internet import defer, endpoints, task
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.threadpool import ThreadPool
from twisted.web import resource
from ..protocols.soap.endpoint import Endpoint
from ..protocols.soap.wsdl import WsdlDocument
from ..config.settings import Settings
from ..core.authentication import Authenticator
from ..core.client_address import ClientAddresses
from ..core.credential_cache import CredentialCache
from ..core.devices import Devices
from ..core.enrollment import Enrollment
from ..core.passwords import PasswordHasher
from ..core.throttle import LoginThrottle, ThrottlePolicy
from ..core.validation import Validation
from ..operations.audit_trail import AuditTrail, BatchedAuditTrail, ImmediateAuditTrail
from ..operations.application_logins import BearerCredentials, ClientCredentials
from ..operations.login import PasswordCredentials
from ..operations.sessions import SessionCredentials
from ..operations.services import Services
from ..protocols.json import ciam, identity, me_totp, session
from ..protocols.json.oauth_token import TokenEndpoint
from ..protocols.json.routes import Route, RouteTable
from ..protocols.pages import account, assets, sign_in
from ..store.database import Database
from ..wiring import bootstrap_admin, open_database
from . import cpu_affinity, supervisor_pipe, tls
from .cpu_affinity import UnpinnedThreadPool
from .database_calls import DatabaseCalls, DatabaseRounds, ThreadPoolCalls
from .observability import HealthResource, Metrics, ReadyResource, metrics_site
from .api_docs import ApiDocs
from .api_resource import InFlight
from .login_pipeline import LoginPipeline
from .plain import Directory
from .rest_resource import RestResource
from .services_resource import ServicesResource
from .site import ServiceSite

log = logging.getLogger(__name__)

DRAIN_SECONDS = 10.0


class _Root(Directory):
    """/services/... goes to TOTPAdminService, /oauth2/... and /ciam-mfa/... to the JSON APIs, /api/openapi.json
    is their contract, /health and /ready are the probes; everything else is 404 without Twisted's HTML page."""

    def __init__(self, services_resource: ServicesResource, rest_resource: RestResource, rest_prefixes: set[str],
                 ready: ReadyResource):
        super().__init__({b"services": services_resource, b"health": HealthResource(), b"ready": ready,
                          **{prefix.encode("ascii"): rest_resource for prefix in sorted(rest_prefixes)},
                          b"api": _Api(ApiDocs(), rest_resource)})


class _Api(resource.Resource):
    """/api/openapi.json is the contract (ApiDocs); everything else below /api is the JSON APIs' (the
    route table answers 404 for what it does not know)."""

    def __init__(self, docs: ApiDocs, rest: RestResource):
        super().__init__()
        self._docs = docs
        self._rest = rest

    def getChild(self, path: bytes, request):
        return self._docs if path == b"openapi.json" else self._rest

    def render(self, request):
        return self._rest.render(request)


def json_routes(services: Services) -> RouteTable:
    """The JSON APIs: (method, path) -> handler (protocols/json/routes.py); their contract is openapi.json."""
    return RouteTable([Route("POST", "/oauth2/token", TokenEndpoint(services.tokens)),
                       *ciam.routes(services.device_operations),
                       *session.routes(services.session_operations),
                       *me_totp.routes(services.me_totp_operations),
                       *identity.routes(services.identity_operations)])


def page_routes(services: Services) -> list[Route]:
    """The self-service pages (protocols/pages), served by the same route table."""
    return [*sign_in.routes(services.session_operations), *account.routes(services.account_operations),
            *assets.routes()]


def login_throttle(settings: Settings) -> LoginThrottle:
    t = settings.totp
    return LoginThrottle(ThrottlePolicy(window_seconds=t.login_window_seconds, delay_after=t.login_delay_after,
                                        max_delay=t.login_max_delay, block_after=t.login_block_after,
                                        block_seconds=t.login_block_seconds,
                                        account_failures_per_day=t.login_account_failures_per_day,
                                        known_good_seconds=t.login_known_good_seconds))


def audit_trail_and_calls(reactor, db: Database, db_pool: ThreadPool,
                          metrics: Metrics) -> tuple[AuditTrail, DatabaseCalls]:
    """Where audit rows go and where database calls run, decided together. SQLite: its one database
    thread takes calls in rounds and stores the audit rows of a round's read-only calls together, in
    this process's own file (store/audit_files.py). PostgreSQL commits side by side on many threads:
    each row in its call's transaction, each call a job of its own (docs/performance.md)."""
    if db.single_writer:
        audit_file = db.claim_audit_file()
        trail = BatchedAuditTrail(db, store=audit_file.add_events if audit_file else db.add_audit_events)
        return trail, DatabaseRounds(reactor, db_pool, trail, metrics.audit_batch_stored)
    return ImmediateAuditTrail(db), ThreadPoolCalls(reactor, db_pool)


def build_site(reactor, settings: Settings, db: Database, metrics: Metrics,
               all_cpus: frozenset[int] | None = None) -> tuple[ServiceSite, ServicesResource]:
    """The site; ``all_cpus``: where password hashing may run when this thread was pinned (see
    cpu_affinity.py)."""
    hasher = PasswordHasher()
    db_pool = ThreadPool(minthreads=db.threads, maxthreads=db.threads, name="totp-admin database")
    trail, calls = audit_trail_and_calls(reactor, db, db_pool, metrics)
    enrollment = Enrollment(settings.totp, on_lockout=metrics.locked_out)
    services = Services(
        hasher=hasher,
        settings=settings,
        db=db,
        enrollment=enrollment,
        devices=Devices(settings.totp, enrollment, on_lockout=metrics.locked_out),
        validation=Validation(settings.totp, on_lockout=metrics.locked_out),
        authenticator=Authenticator(hasher, CredentialCache(ttl=settings.credential_cache_seconds),
                                    email_usernames=settings.carbon.email_usernames),
        observe=metrics.audited,
        audit_trail=trail,
    )
    pool = UnpinnedThreadPool(all_cpus, minthreads=0, maxthreads=settings.db_pool_size,
                              name="totp-admin passwords")  # password hashing and /ready
    # Started with the reactor: their threads must not keep a process that failed to start alive.
    for each in (pool, db_pool):
        reactor.callWhenRunning(each.start)
        reactor.addSystemEventTrigger("during", "shutdown", each.stop)
    # One login pipeline for every protocol: one throttle, one check at a time per credentials.
    logins = LoginPipeline(reactor, {PasswordCredentials: services.logins, ClientCredentials: services.client_logins,
                                     BearerCredentials: services.bearer_logins,
                                     SessionCredentials: services.session_logins},
                           calls.run, pool, login_throttle(settings), metrics)
    clients = ClientAddresses(settings.totp.trusted_proxies, settings.totp.trusted_proxy_header)
    in_flight = InFlight()
    services_resource = ServicesResource(
        calls, logins, Endpoint(services), WsdlDocument(), metrics,
        hide_wsdl=settings.carbon.hide_wsdl, public_host=settings.carbon.host_name, https=settings.https,
        clients=clients, in_flight=in_flight,
    )
    routes = json_routes(services).including(page_routes(services))
    rest_resource = RestResource(calls, logins, routes, metrics,
                                 max_body_bytes=settings.max_body_bytes, clients=clients, in_flight=in_flight)
    root = _Root(services_resource, rest_resource, routes.prefixes, ReadyResource(reactor, pool, db))
    return ServiceSite(root, max_body_bytes=settings.max_body_bytes), services_resource


def tls_files(settings: Settings) -> tuple[Path, Path]:
    if settings.tls_cert is not None and settings.tls_key is not None:
        return settings.tls_cert, settings.tls_key
    return tls.ensure_self_signed(settings.data_dir / "tls")


def reach(host: str) -> str:
    """For the "listening on" lines: who can connect, when that is this machine only."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    return " (this machine only; --host 0.0.0.0 serves other hosts)" if loopback else ""


def listener(reactor, settings: Settings, site):
    """A function that starts accepting: on ``settings.port``, or on the socket a supervisor handed
    down (``listen_fd``). Certificate problems raise here, before the reactor runs."""
    context = tls.context_factory(*tls_files(settings)) if settings.https else None
    if settings.listen_fd is not None:
        factory = TLSMemoryBIOFactory(context, False, site) if context is not None else site
        return lambda: defer.maybeDeferred(reactor.adoptStreamPort, settings.listen_fd, socket.AF_INET, factory)
    if context is not None:
        endpoint = endpoints.SSL4ServerEndpoint(reactor, settings.port, context, interface=settings.host)
    else:
        endpoint = endpoints.TCP4ServerEndpoint(reactor, settings.port, interface=settings.host)
    return lambda: endpoint.listen(site)


def run(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT. Returns the process exit status."""
    from twisted.internet import reactor

    # Before any thread starts: the database threads inherit this thread's CPU.
    cpu = cpu_affinity.plan(settings.cpu_affinity, 1)[0]
    all_cpus = cpu_affinity.pin_this_thread(cpu)
    db = open_database(settings, with_keys=True)
    if settings.listen_fd is None:  # a worker's supervisor did this already
        bootstrap_admin(db, PasswordHasher())
    metrics = Metrics()
    site, services_resource = build_site(reactor, settings, db, metrics, all_cpus)
    start_listening = listener(reactor, settings, site)
    state = {}

    def started(port):
        state["port"] = port
        scheme = "https" if settings.https else "http"
        log.info("TOTPAdminService listening on %s://%s:%d/services/TOTPAdminService%s%s",
                 scheme, settings.host, port.getHost().port,
                 "" if all_cpus is None else f" (reactor and database threads on CPU {cpu})",
                 "" if settings.listen_fd is not None else reach(settings.host))

    def failed(failure):
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, failure.getErrorMessage())
        state["failed"] = True
        reactor.stop()

    @defer.inlineCallbacks
    def drain():
        """Stop accepting, let in-flight calls finish (bounded), then let the reactor stop."""
        port = state.get("port")
        if port is not None:
            yield port.stopListening()
        waited = 0.0
        while services_resource.in_flight and waited < DRAIN_SECONDS:
            yield task.deferLater(reactor, 0.05, lambda: None)
            waited += 0.05
        log.info("stopped (%d calls still in flight)", services_resource.in_flight)

    reactor.addSystemEventTrigger("before", "shutdown", drain)
    if settings.supervisor_fd is not None:  # a worker: it ends with its supervisor
        supervisor_pipe.stop_when_gone(reactor, settings.supervisor_fd)
    reactor.addSystemEventTrigger("after", "shutdown", db.dispose)
    # Listen once the reactor runs, so that a failure can stop it.
    reactor.callWhenRunning(lambda: start_listening().addCallbacks(started, failed))
    if settings.metrics_port is not None:
        metrics_endpoint = endpoints.TCP4ServerEndpoint(reactor, settings.metrics_port, interface=settings.metrics_host)
        reactor.callWhenRunning(lambda: metrics_endpoint.listen(metrics_site(metrics)).addCallbacks(
            lambda port: log.info("metrics on http://%s:%d/metrics", settings.metrics_host, port.getHost().port),
            failed))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: reactor.callFromThread(reactor.stop))
    reactor.run(installSignalHandlers=False)
    return 1 if state.get("failed") else 0
