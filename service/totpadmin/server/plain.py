"""The answers around the service (probes, metrics, unknown paths and methods) in the service's own
voice: its ``Server`` header and plain-text bodies, never Twisted's name, version or HTML error pages."""

from __future__ import annotations

from twisted.web import resource, server

SERVER_HEADER = b"WSO2 Carbon Server"
PLAIN_TEXT = b"text/plain; charset=UTF-8"


def answer(request: server.Request, status: int, body: bytes) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", PLAIN_TEXT)
    return body


class NotFound(resource.Resource):
    isLeaf = True

    def render(self, request):
        return answer(request, 404, b"Not found\n")


NOT_FOUND = NotFound()


class Directory(resource.Resource):
    """Its children by name; any other path is a plain 404 (Twisted's would be an HTML page)."""

    def __init__(self, children: dict[bytes, resource.Resource]):
        super().__init__()
        for name, child in children.items():
            self.putChild(name, child)

    def getChild(self, path, request):
        return NOT_FOUND


class GetOnly(resource.Resource):
    """A leaf that answers ``render_GET`` (HEAD too, without the body); a path below it is 404, another
    method 405 with ``Allow`` (Twisted's would be HTML pages, and 501 for methods it does not know)."""

    isLeaf = True

    def render(self, request):
        if any(request.postpath):
            return NOT_FOUND.render(request)
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return answer(request, 405, b"Method not allowed\n")
        return super().render(request)  # HEAD: Twisted runs render_GET and drops the body


class NamedSite(server.Site):
    """A site whose every answer carries the service's ``Server`` header instead of Twisted's version."""

    def getResourceFor(self, request):
        request.setHeader(b"server", SERVER_HEADER)
        return super().getResourceFor(request)
