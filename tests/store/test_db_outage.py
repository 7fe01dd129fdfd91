"""Losing the database while serving: clear faults, readiness 503, and recovery by itself."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from conftest import Server, free_port, make_conf
from wire import post_soap11

pytestmark = pytest.mark.skipif(not os.environ.get("TOTP_TEST_DATABASE_URL"),
                                reason="needs PostgreSQL (TOTP_TEST_DATABASE_URL)")


class CuttableProxy:
    """A TCP relay to PostgreSQL that can drop every connection and refuse new ones, then come back."""

    def __init__(self, target=("127.0.0.1", 5432)):
        self.target = target
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = None
        self.restore()

    def restore(self):
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self):
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._conns.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


def test_outage_gives_clear_faults_and_recovers(tmp_path, database):
    proxy = CuttableProxy()
    url = database.url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    assert url != database.url
    srv = Server(data_dir=tmp_path / "data", conf_dir=make_conf(tmp_path), database=type(database)(url, database.schema),
                 port=free_port())
    try:
        srv.start()
        s = srv.session()
        assert post_soap11(s, srv.url, "resetTOTP", "admin").status_code == 200
        assert s.get(srv.base + "/ready").status_code == 200

        proxy.cut()
        r = post_soap11(s, srv.url, "resetTOTP", "admin")
        assert r.status_code == 500
        assert "The TOTP store is unavailable; try again later" in r.text
        assert "Traceback" not in r.text and "psycopg" not in r.text
        assert s.get(srv.base + "/ready").status_code == 503
        assert s.get(srv.base + "/health").status_code == 200, "alive, just not ready"

        proxy.restore()
        deadline = time.monotonic() + 20
        while True:
            r = post_soap11(s, srv.url, "resetTOTP", "admin")
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        assert s.get(srv.base + "/ready").status_code == 200
        assert "Traceback" not in srv.log()
    finally:
        srv.stop()
        proxy.cut()
