"""Log output: readable lines, or one JSON object per line for log shippers (``--log-format json``).

Fields passed with ``extra=`` (``request_id``, ``status``…) become JSON keys. Nothing here adds
request data: callers log no secrets, codes or passwords in the first place.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from twisted.logger import STDLibLogObserver, globalLogBeginner

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every schema check and Twisted every start and stop at INFO.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("twisted").setLevel(logging.WARNING)
    # Twisted's own messages (e.g. errors inside a protocol) go to the same place.
    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")], redirectStandardIO=False)
