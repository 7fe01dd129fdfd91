"""Assemble :class:`Settings` from the conf directory, the environment and command-line overrides."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .carbon import load_carbon_xml
from .errors import ConfigError
from .properties import load_totp_properties
from .settings import Settings
from .values import parse_int

ENV_DATA_DIR = "TOTP_DATA_DIR"
ENV_CONF_DIR = "TOTP_CONF_DIR"
ENV_DATABASE_URL = "TOTP_DATABASE_URL"
ENV_MAX_BODY = "TOTP_MAX_BODY_BYTES"
ENV_CREDENTIAL_CACHE = "TOTP_CREDENTIAL_CACHE_SECONDS"


def default_data_dir() -> Path:
    return Path(os.environ.get(ENV_DATA_DIR) or "data")


def default_conf_dir() -> Path:
    return Path(os.environ.get(ENV_CONF_DIR) or "conf")


def store_settings(*, data_dir: Path | None = None, database_url: str | None = None) -> Settings:
    """Just enough settings to open the store (for the user and tenant commands): no conf files."""
    return Settings(
        data_dir=(data_dir or default_data_dir()).resolve(),
        conf_dir=default_conf_dir().resolve(),
        database_url=database_url or os.environ.get(ENV_DATABASE_URL) or None,
    )


def load_settings(
    *,
    data_dir: Path | None = None,
    conf_dir: Path | None = None,
    database_url: str | None = None,
    **overrides,
) -> Settings:
    """Read conf/totp.properties and conf/carbon.xml; explicit arguments beat the environment."""
    conf_dir = conf_dir or default_conf_dir()
    if not conf_dir.is_dir():
        raise ConfigError(str(conf_dir), "(directory)", None, "configuration directory not found")
    carbon = load_carbon_xml(conf_dir / "carbon.xml")
    settings = Settings(
        data_dir=(data_dir or default_data_dir()).resolve(),
        conf_dir=conf_dir.resolve(),
        totp=load_totp_properties(conf_dir / "totp.properties"),
        carbon=carbon,
        database_url=database_url or os.environ.get(ENV_DATABASE_URL) or None,
        port=carbon.https_port,
        max_body_bytes=parse_int(
            f"environment {ENV_MAX_BODY}", ENV_MAX_BODY, os.environ.get(ENV_MAX_BODY), 1 << 20, low=1024, high=1 << 30
        ),
        credential_cache_seconds=parse_int(
            f"environment {ENV_CREDENTIAL_CACHE}", ENV_CREDENTIAL_CACHE, os.environ.get(ENV_CREDENTIAL_CACHE), 60,
            low=1, high=3600,
        ),
    )
    for path_key in ("tls_cert", "tls_key"):
        value = overrides.get(path_key)
        if value is not None and not Path(value).is_file():
            raise ConfigError("command line", path_key.replace("_", "-"), str(value), "file not found")
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
