"""The Twisted site: request bodies bounded while they arrive, idle connections closed."""

from __future__ import annotations

import io

from twisted.web import server

from .. import upstream_fixes
from .plain import NamedSite

IDLE_TIMEOUT_SECONDS = 30


class BoundedBody(io.BytesIO):
    """A request body buffer that stops keeping bytes past ``limit`` and remembers that it overflowed,
    so an oversized body costs no memory and is answered 413 without being parsed."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.overflowed = False

    def write(self, data) -> int:
        if not self.overflowed and self.tell() + len(data) > self.limit:
            self.overflowed = True
            self.seek(0)
            self.truncate()
        if self.overflowed:
            return len(data)
        return super().write(data)


class BoundedRequest(server.Request):
    def gotLength(self, length):
        self.content = BoundedBody(self.channel.site.max_body_bytes)
        if length is not None and length > self.content.limit:
            self.content.overflowed = True


class ServiceSite(NamedSite):
    protocol = upstream_fixes.http_channel()  # HTTP/1.1 only: legacy SOAP clients do not speak HTTP/2
    requestFactory = BoundedRequest
    displayTracebacks = False
    noisy = False

    def __init__(self, root, *, max_body_bytes: int):
        upstream_fixes.memoize_content_type_parsing()
        upstream_fixes.send_tcp_writes_at_once()
        super().__init__(root, timeout=IDLE_TIMEOUT_SECONDS)
        self.max_body_bytes = max_body_bytes

    def log(self, request):
        """Nothing: ServicesResource writes the access log line. Twisted's own combined-log line was
        formatted for every request (~4 % of the CPU) and then dropped by the twisted logger's level."""
