"""Parsing single configuration values, with errors that name where they came from."""

from __future__ import annotations

from .errors import ConfigError


def parse_bool(source: str, key: str, text: str | None, default: bool) -> bool:
    if text is None or text == "":
        return default
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ConfigError(source, key, text, "must be true or false")


def parse_int(source: str, key: str, text: str | None, default: int, *, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(source, key, text, "must be a whole number") from None
    if not low <= value <= high:
        raise ConfigError(source, key, text, f"must be between {low} and {high}")
    return value
