"""Reading a JSON API's request: the body's string fields, the query, the path's parameters, each within
bounds; what is malformed raises :class:`BadRequest` with its 4xx answer, what is missing :class:`Missing`."""

from __future__ import annotations

from urllib.parse import unquote

from ...core import errors
from ..messages import ApiReply, ApiRequest
from .body import BadJson, parse_object
from .replies import JSON, failure

MAX_FIELD = 255  # userName and friends; the use cases check names and codes themselves


class BadRequest(Exception):
    def __init__(self, reply: ApiReply):
        self.reply = reply


def body_fields(request: ApiRequest, names: tuple[str, ...]) -> dict:
    if request.content_type != JSON:
        raise BadRequest(failure(415, "UNSUPPORTED_MEDIA_TYPE", f"The body must be {JSON}"))
    try:
        document = parse_object(request.body)
    except BadJson as err:
        raise BadRequest(failure(400, "INVALID_REQUEST", str(err))) from None
    data = {}
    for name in names:
        value = document.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD):
            raise BadRequest(failure(400, "INVALID_REQUEST", f"{name} must be a string of at most {MAX_FIELD} "
                                                             "characters"))
        data[name] = value
    return data


def query_value(request: ApiRequest, name: str) -> str | None:
    values = request.query.get(name) or []
    if len(values) > 1:
        raise BadRequest(failure(400, "INVALID_REQUEST", f"{name} is given more than once"))
    if values and len(values[0]) > MAX_FIELD:
        raise BadRequest(failure(400, "INVALID_REQUEST", f"{name} is longer than {MAX_FIELD} characters"))
    return values[0] if values else None


def path_param(request: ApiRequest, name: str) -> str:
    try:
        value = unquote(request.path_params[name], errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(failure(400, "INVALID_REQUEST", f"{name} is not UTF-8")) from None
    if len(value) > MAX_FIELD:
        raise BadRequest(failure(400, "INVALID_REQUEST", f"{name} is longer than {MAX_FIELD} characters"))
    return value


def required(data: dict, name: str) -> str:
    value = data.get(name)
    if value is None or value == "":
        raise Missing(name)
    return value


class Missing(errors.TotpAdminError):
    """A field the call needs is absent or empty: 400."""

    def __init__(self, name: str):
        super().__init__(f"{name} is missing")
