"""The JSON APIs' contract: ``openapi.json`` beside this module (OpenAPI 3.1), served at
``/api/openapi.json`` and checked by the tests against the route table and the real server."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

PATH = "/api/openapi.json"  # where the server serves it (documented in the document too)


@lru_cache(maxsize=1)
def openapi_document() -> bytes:
    """The document's bytes, as shipped (read once; checked to be JSON)."""
    text = resources.files(__package__).joinpath("openapi.json").read_bytes()
    json.loads(text)  # a broken document fails at start, not on the first request
    return text
