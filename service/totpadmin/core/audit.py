"""Audit events: who did what to whom, from where, and how it ended. Never secrets, codes or passwords."""

from __future__ import annotations

from dataclasses import dataclass

SUCCESS = "success"  # the operation did what was asked (validateTOTP: the code was right)
FAILURE = "failure"  # answered false: a wrong code, a refused activation
DENIED = "denied"  # the caller may not do this to this user
FAULT = "fault"  # refused with a fault (unknown user, locked, ...); ``detail`` says which
AUTH_FAILED = "auth-failed"  # wrong Basic-auth credentials


@dataclass(frozen=True)
class AuditEvent:
    request_id: str
    source: str  # client address
    caller: str  # qualified username of the caller (as given, when authentication failed)
    operation: str
    target: str | None  # qualified username acted on
    tenant: str | None  # the target's tenant
    outcome: str
    detail: str = ""  # e.g. the error class of a fault; never request data
