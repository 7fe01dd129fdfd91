"""The Twisted site: request bodies bounded while they arrive, idle connections closed.

What receiving a request costs is bounded too. Twisted spends a few µs of Python on every network read
(a TLS record, its HTTP parsing) and on every chunk of a chunked body, whatever their size: a client
sending a body in 1-byte TLS records or 1-byte chunks made one request cost seconds of CPU. A connection
whose request arrives in more than MAX_READS_PER_REQUEST reads, or whose body in more than
MAX_BODY_PIECES pieces, is dropped; so is one that sends more than twice TOTP_MAX_BODY_BYTES (up to the
limit again is read and discarded, so that a client that sent a little too much still reads its 413).
A real request arrives in a few reads; the largest body the bindings read (64 KiB) in under 50.
"""

from __future__ import annotations

import io

from twisted.web import server

from .. import upstream_fixes
from .plain import NamedSite

IDLE_TIMEOUT_SECONDS = 30
MAX_READS_PER_REQUEST = 256
MAX_BODY_PIECES = 256


class BoundedBody(io.BytesIO):
    """A request body buffer that stops keeping bytes past ``limit`` and remembers that it overflowed,
    so an oversized body costs no memory and is answered 413 without being parsed."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.overflowed = False
        self.received = 0

    def write(self, data) -> int:
        self.received += len(data)
        if not self.overflowed and self.received > self.limit:
            self.overflowed = True
            self.seek(0)
            self.truncate()
        if self.overflowed:
            return len(data)
        return super().write(data)


class BoundedRequest(server.Request):
    _pieces = 0

    def gotLength(self, length):
        self.content = BoundedBody(self.channel.site.max_body_bytes)
        if length is not None and length > self.content.limit:
            self.content.overflowed = True

    def handleContentChunk(self, data):
        self._pieces += 1
        if self._pieces > MAX_BODY_PIECES or self.content.received > 2 * self.content.limit:
            self.channel.drop()
            return
        self.content.write(data)


class BoundedChannel(upstream_fixes.http_channel()):  # HTTP/1.1 only: legacy SOAP clients do not speak HTTP/2
    _reads = 0

    def dataReceived(self, data):
        self._reads += 1
        if self._reads > MAX_READS_PER_REQUEST:
            self.drop()
            return
        super().dataReceived(data)

    def requestDone(self, request):
        self._reads = 0
        super().requestDone(request)

    def drop(self) -> None:
        """Read nothing more of this connection (not even the rest of the data at hand) and close it."""
        if self.transport.disconnecting:
            return
        self.dataReceived = lambda data: None
        upstream_fixes.stop_decoding_body(self)
        self.transport.abortConnection()


class ServiceSite(NamedSite):
    protocol = BoundedChannel
    requestFactory = BoundedRequest
    displayTracebacks = False
    noisy = False

    def __init__(self, root, *, max_body_bytes: int):
        upstream_fixes.memoize_content_type_parsing()
        upstream_fixes.send_tcp_writes_at_once()
        # Twisted parses every form (and multipart) POST into request.args before any resource sees it,
        # unbounded: ~0.1 s of CPU for a 1 MiB body of %-escapes. The bindings read bodies themselves,
        # within api/body_limits.py's limits (twisted/twisted#12412, the option since Twisted 25.5).
        super().__init__(root, timeout=IDLE_TIMEOUT_SECONDS, parsePOSTFormSubmission=False)
        self.max_body_bytes = max_body_bytes

    def log(self, request):
        """Nothing: ServicesResource writes the access log line. Twisted's own combined-log line was
        formatted for every request (~4 % of the CPU) and then dropped by the twisted logger's level."""
