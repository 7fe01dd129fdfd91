"""upstream_fixes.send_tcp_writes_at_once (twisted/twisted#5303) on a real reactor and real sockets, over
plain TCP and over TLS as the server uses it: bytes handed to TCP leave without waiting for the reactor
to see the socket writable, a send the kernel takes only part of keeps the rest in order, and nothing is
lost when the connection is closed right after writing (or written to after loseConnection).

Each test runs a small Twisted server in a process of its own (a reactor runs once per process), with or
without the fix, and talks to it with the standard library's sockets."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SERVER = textwrap.dedent(r"""
    import select, socket, sys
    from pathlib import Path
    from twisted.internet import protocol, reactor
    from twisted.protocols.tls import TLSMemoryBIOFactory
    from totpadmin import upstream_fixes
    from totpadmin.server import tls

    mode, fix, tls_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if fix == "fix":
        upstream_fixes.send_tcp_writes_at_once()
    CHUNK = 64 * 1024

    def chunk(i):
        return i.to_bytes(4, "big") * (CHUNK // 4)

    class Commands(protocol.Protocol):
        def connectionMade(self):
            self.raw = self.transport.getHandle() if mode == "plain" else self.transport.transport.getHandle()
            self.tcp = self.transport if mode == "plain" else self.transport.transport
            self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # partial sends, surely
            self.pending = b""

        def dataReceived(self, data):
            self.pending += data
            while b"\n" in self.pending:
                line, self.pending = self.pending.split(b"\n", 1)
                getattr(self, "do_" + line.split()[0].decode())(*line.split()[1:])

        def do_now(self):
            # Write, then hold the reactor: only a write sent at once reaches the client, whose answer
            # makes the raw socket readable while we wait.
            self.transport.write(b"first\n")
            if mode == "tls":
                # Twisted's TLS transport gathers small writes and hands them to TCP with callLater(0),
                # at the start of the next iteration: do that now, then hold the reactor.
                self.transport._aggregator.flush()
            readable, _, _ = select.select([self.raw], [], [], 3.0)
            self.transport.write(b"acked\n" if readable else b"timeout\n")

        def do_ack(self):
            pass  # the answer do_now waited for

        def do_bulk(self, count, close):
            for i in range(int(count)):
                self.transport.write(chunk(i))
            tcp = self.tcp
            print("buffered" if tcp.dataBuffer or tcp._tempDataBuffer else "all sent", flush=True)
            if close == b"close":
                self.transport.loseConnection()
            elif close == b"close-then-write":
                self.transport.loseConnection()
                self.transport.write(b"after close")

    factory = protocol.Factory.forProtocol(Commands)
    if mode == "tls":
        factory = TLSMemoryBIOFactory(tls.context_factory(*tls.ensure_self_signed(tls_dir)), False, factory)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    reactor.run()
""")


class Server:
    def __init__(self, tmp_path: Path, mode: str, fix: bool):
        self.mode, self.tls_dir = mode, tmp_path / "tls"
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, mode, "fix" if fix else "no-fix",
                                      str(self.tls_dir)], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def connect(self) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", self.port))
        sock.settimeout(20)
        if self.mode == "plain":
            return sock
        context = ssl.create_default_context(cafile=str(self.tls_dir / "ca.crt"))
        return context.wrap_socket(sock, server_hostname="localhost")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture(params=["plain", "tls"])
def server(request, tmp_path):
    started = Server(tmp_path, request.param, fix=True)
    yield started
    started.stop()


def chunk(i: int) -> bytes:
    return i.to_bytes(4, "big") * (64 * 1024 // 4)


def read_line(sock) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            break
        line += data
    return line


def read_to_end(sock) -> bytes:
    parts = []
    while data := sock.recv(65536):
        parts.append(data)
    return b"".join(parts)


def test_a_write_leaves_before_the_reactor_runs_again(server):
    with server.connect() as sock:
        sock.sendall(b"now\n")
        assert read_line(sock) == b"first\n"
        sock.sendall(b"ack\n")
        assert read_line(sock) == b"acked\n"


def test_without_the_fix_a_write_waits_for_the_reactor(tmp_path):
    """What the fix changes (and that the test above can fail): unpatched, "first" is still in Twisted's
    buffer while the reactor is held, so the client cannot answer in time."""
    unpatched = Server(tmp_path, "plain", fix=False)
    try:
        with unpatched.connect() as sock:
            sock.sendall(b"now\n")
            assert read_line(sock) == b"first\n"
            sock.sendall(b"ack\n")
            assert read_line(sock) == b"timeout\n"
    finally:
        unpatched.stop()


@pytest.mark.parametrize("ending", ["open", "close", "close-then-write"])
def test_what_the_kernel_does_not_take_at_once_follows_in_order(server, ending):
    count = 48  # 3 MiB in 64 KiB writes, against 4 KiB socket buffers: most of it is buffered
    with server.connect() as sock:
        sock.sendall(f"bulk {count} {ending}\n".encode())
        time.sleep(0.5)  # the buffers fill up before anything is read
        assert server.proc.stdout.readline() == "buffered\n", "the server sent everything at once"
        expected = b"".join(chunk(i) for i in range(count))
        if ending == "open":
            got = b""
            while len(got) < len(expected):
                got += sock.recv(65536)
            assert got == expected
        else:
            # Plain TCP still sends what is written after loseConnection; Twisted's TLS drops it.
            late = b"after close" if ending == "close-then-write" and server.mode == "plain" else b""
            assert read_to_end(sock) == expected + late
