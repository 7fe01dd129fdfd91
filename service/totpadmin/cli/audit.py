"""``totp-admin audit``: list and filter the audit trail."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from ..core import audit


def register(commands, add_store_options) -> None:
    parser = commands.add_parser("audit", help="list audit events, newest first")
    parser.add_argument("--user", help="events where this qualified username is the caller or the target")
    parser.add_argument("--tenant", help="events on users of this tenant")
    parser.add_argument("--operation", help="e.g. validateTOTP")
    parser.add_argument("--outcome", choices=[audit.SUCCESS, audit.FAILURE, audit.DENIED, audit.FAULT, audit.AUTH_FAILED])
    parser.add_argument("--since", type=_timestamp, help="ISO 8601 time, e.g. 2026-11-23T10:00:00Z")
    parser.add_argument("--limit", type=int, default=100, help="at most this many events (default 100)")
    add_store_options(parser)


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    # Stored as naive UTC.
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def run(args, db) -> int:
    events = db.find_audit(tenant=args.tenant.lower() if args.tenant else None, user=args.user,
                             operation=args.operation, outcome=args.outcome, since=args.since, limit=args.limit)
    print("time\trequest\tsource\tcaller\toperation\ttarget\toutcome\tdetail")
    for e in events:
        print("\t".join([e.at.strftime("%Y-%m-%dT%H:%M:%SZ"), e.request_id, e.source, e.caller, e.operation,
                         e.target or "-", e.outcome, e.detail or "-"]))
    return 0
