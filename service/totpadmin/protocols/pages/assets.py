"""The pages' own style sheet and script (``static/``), read once at start and served under ``/static/``
with a long cache life: nothing is fetched from elsewhere."""

from __future__ import annotations

from importlib import resources

from ..json.routes import Route
from ..messages import ApiReply, ApiRequest
from .render import SECURITY_HEADERS, message

_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def routes() -> list[Route]:
    return [Route("GET", "/static/{name}", _Assets())]


class _Assets:
    def __init__(self):
        folder = resources.files(__package__) / "static"
        self._files = {entry.name: entry.read_bytes() for entry in folder.iterdir()
                       if entry.is_file() and entry.name[entry.name.rfind("."):] in _TYPES}

    def prepare(self, request: ApiRequest) -> ApiReply:
        name = request.path_params["name"]
        body = self._files.get(name)
        if body is None:
            return message(404, "Not found", "There is no such page.", back="/account")
        headers = tuple(h for h in SECURITY_HEADERS if h[0] != "Cache-Control") + \
            (("Cache-Control", "public, max-age=3600"),)
        return ApiReply(200, _TYPES[name[name.rfind("."):]], body, headers=headers)
