"""``/api/openapi.json``: the JSON APIs' contract (protocols/json/contract.py), without authentication: it
holds no secret. A path below it is 404 and any other method 405, in the JSON APIs' failure body (the rest
of ``/api`` is the JSON APIs', server/app.py)."""

from __future__ import annotations

from twisted.web import resource, server

from ..protocols.json import replies
from ..protocols.json.contract import openapi_document
from ..protocols.messages import ApiReply

CACHE_SECONDS = 300


class ApiDocs(resource.Resource):
    isLeaf = True

    def __init__(self):
        super().__init__()
        self._document = openapi_document()

    def render(self, request: server.Request) -> bytes:
        if request.path != b"/api/openapi.json":
            return _write(request, replies.not_found())
        if request.method not in (b"GET", b"HEAD"):
            return _write(request, replies.method_not_allowed(["GET", "HEAD"]))
        request.setHeader(b"cache-control", f"public, max-age={CACHE_SECONDS}".encode("ascii"))
        return _write(request, ApiReply(200, replies.JSON, self._document))  # HEAD: Twisted drops the body


def _write(request: server.Request, reply: ApiReply) -> bytes:
    request.setResponseCode(reply.status)
    request.setHeader(b"content-type", reply.content_type.encode("latin-1"))
    for name, value in reply.headers:
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
    return reply.body
