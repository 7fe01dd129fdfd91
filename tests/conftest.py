"""Fixtures that run the real thing: a `totp-admin serve` process over HTTPS on a free port, on SQLite
or (with TOTP_TEST_DATABASE_URL) on PostgreSQL in a schema of its own."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
TOTP_ADMIN = Path(sys.executable).with_name("totp-admin")
ADMIN_PASSWORD = "admin-test-password"
TNS = "http://services.totp.authenticator.application.identity.carbon.wso2.org"


_PORTS_GIVEN: set[int] = set()
# Below Linux's ephemeral range (32768-60999), so neither the kernel's bind(0) nor an outgoing
# connection (to PostgreSQL, say) takes a port between the test choosing it and the server binding it.
_PORT_RANGE = (20000, 32000)


def free_port() -> int:
    """A port nothing listens on, never the same twice in this test process: two `bind(0)` calls in a
    row can return the same port, and a test that asked for a metrics port and then a server port got
    "Address already in use" (CI, 2026-12-07)."""
    low, high = _PORT_RANGE
    start = low + (os.getpid() * 7919) % (high - low)
    for offset in range(high - low):
        port = low + (start - low + offset) % (high - low)
        if port in _PORTS_GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
    raise RuntimeError(f"no free port in {low}-{high}")


@dataclass
class TestDatabase:
    """A database of the test's own: a SQLite file, or a fresh PostgreSQL schema."""

    url: str
    schema: str | None = None

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url)

    def query(self, sql: str, **params) -> list[tuple]:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()

    def audit_files(self) -> list[Path]:
        """SQLite: the files where serving processes keep the audit rows of read-only calls."""
        if self.schema is not None:
            return []
        main = Path(sa.make_url(self.url).database)
        return sorted(main.parent.glob(main.stem + "-audit-[0-9]*.db"))

    def query_audit(self, sql: str, **params) -> list[tuple]:
        """``sql`` over the whole audit trail, as the view ``audit_trail``: ``audit_events`` and, on
        SQLite, the audit files of read-only calls (``id`` is unique within a file only)."""
        engine = self.engine()
        try:
            with engine.connect() as conn:
                parts = ["SELECT * FROM audit_events"]
                for n, path in enumerate(self.audit_files()):
                    conn.exec_driver_sql(f"ATTACH DATABASE '{path}' AS audit{n}")
                    parts.append(f"SELECT * FROM audit{n}.audit_events")
                conn.exec_driver_sql(f"CREATE TEMP VIEW audit_trail AS {' UNION ALL '.join(parts)}")
                return [tuple(r) for r in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()


@contextmanager
def new_database(tmp_path: Path):
    base = os.environ.get("TOTP_TEST_DATABASE_URL")
    if not base:
        yield TestDatabase(url=f"sqlite:///{tmp_path / 'data' / 'totp-admin.db'}")
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield TestDatabase(url=f"{base}{sep}options=-csearch_path%3D{schema}", schema=schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def database(tmp_path) -> TestDatabase:
    with new_database(tmp_path) as db:
        yield db


@pytest.fixture
def store(tmp_path, database):
    """The test's database opened in this process (totpadmin.store.database.Database), schema created."""
    from totpadmin.store.database import Database

    (tmp_path / "data").mkdir(exist_ok=True)
    db = Database(database.url)
    db.create_schema()
    yield db
    db.dispose()


@dataclass
class Server:
    """A running `totp-admin serve` process."""

    data_dir: Path
    conf_dir: Path
    database: TestDatabase
    port: int
    https: bool = True
    env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    output: Path | None = None

    @property
    def base(self) -> str:
        return f"{'https' if self.https else 'http'}://localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/services/TOTPAdminService"

    @property
    def ca(self) -> str:
        return str(self.data_dir / "tls" / "ca.crt")

    def session(self, user: str | None = "admin", password: str | None = ADMIN_PASSWORD) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (psf/requests#3829)
        s.verify = self.ca if self.https else False
        if user is not None:
            s.auth = (user, password)
        return s

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env}
        return subprocess.run([str(TOTP_ADMIN), *args, "--data-dir", str(self.data_dir), "--database-url",
                               self.database.url], input=input, capture_output=True, text=True, env=env,
                              check=check, timeout=60)

    def start(self, *extra: str, wait: bool = True) -> "Server":
        self.output = self.data_dir.parent / f"server-{self.port}.log"
        env = {**os.environ, "TOTP_ADMIN_PASSWORD": ADMIN_PASSWORD, **self.env}
        args = [str(TOTP_ADMIN), "serve", "--data-dir", str(self.data_dir), "--conf-dir", str(self.conf_dir),
                "--database-url", self.database.url, "--host", "127.0.0.1", "--port", str(self.port), *extra]
        if not self.https:
            args.append("--http")
        with open(self.output, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output and self.output.exists() else ""


class Clock:
    """A clock the test moves (for the core and operations, which take ``clock=``): early in a TOTP step,
    so that a code stays valid while the test looks at it."""

    def __init__(self):
        self.now = float(int(time.time()) // 30 * 30 + 5)

    def __call__(self) -> float:
        return self.now

    def step(self, n: int = 1) -> None:
        self.now += 30 * n


def make_conf(tmp_path: Path, *, properties: dict[str, str] | None = None, hide_wsdl: bool = False,
              carbon_xml: str | None = None) -> Path:
    """A copy of conf/ with some totp.properties keys replaced and HideAdminServiceWSDLs set."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf, dirs_exist_ok=True)
    if properties:
        lines = [ln for ln in (conf / "totp.properties").read_text().splitlines()
                 if ln.split("=", 1)[0].strip() not in properties]
        lines += [f"{k}={v}" for k, v in properties.items()]
        (conf / "totp.properties").write_text("\n".join(lines) + "\n")
    xml = carbon_xml if carbon_xml is not None else (conf / "carbon.xml").read_text().replace(
        "<HideAdminServiceWSDLs>true</HideAdminServiceWSDLs>",
        f"<HideAdminServiceWSDLs>{str(hide_wsdl).lower()}</HideAdminServiceWSDLs>")
    (conf / "carbon.xml").write_text(xml)
    return conf


@contextmanager
def server_factory(tmp_path: Path, database: TestDatabase):
    servers: list[Server] = []

    def factory(*, properties=None, hide_wsdl=False, https=True, start=True, extra=()) -> Server:
        conf = make_conf(tmp_path, properties=properties, hide_wsdl=hide_wsdl)
        srv = Server(data_dir=tmp_path / "data", conf_dir=conf, database=database, port=free_port(), https=https)
        servers.append(srv)
        return srv.start(*extra) if start else srv

    try:
        yield factory
    finally:
        for srv in servers:
            srv.stop()


@pytest.fixture
def make_server(tmp_path, database):
    """Factory: ``make_server(properties=..., hide_wsdl=...)`` returns a started :class:`Server`."""
    with server_factory(tmp_path, database) as factory:
        yield factory


@pytest.fixture
def server(make_server) -> Server:
    """A fresh server of this test's own (WSDL published)."""
    return make_server()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory) -> Server:
    """One server for a whole module, for tests that do not depend on each other's state."""
    tmp = tmp_path_factory.mktemp("shared")
    with new_database(tmp) as db, server_factory(tmp, db) as factory:
        yield factory()
