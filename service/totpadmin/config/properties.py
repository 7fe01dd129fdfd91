"""conf/totp.properties, in Java properties syntax (parsed by jproperties), into :class:`TotpSettings`."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from jproperties import Properties

from .errors import ConfigError
from .settings import FORWARDING_HEADERS, HASH_ALGORITHMS, SECRET_ENCODINGS, Network, TotpSettings
from .values import parse_bool, parse_int

KNOWN_KEYS = {
    "encodingMethod",
    "timeStepSize",
    "windowSize",
    "enableTOTP",
    "Issuer",
    "UseCommonIssuer",
    "secretKeyLength",
    "chunkedBase64",
    "hashAlgorithm",
    "digits",
    "maxFailedAttempts",
    "lockoutSeconds",
    "maxLockoutSeconds",
    "pendingSecretLifetime",
    "recoveryCodeCount",
    "maxDevicesPerUser",
    "deviceAuthenticationLifetime",
    "allowSecretKeyRetrieval",
    "SelfOperationsEnabled",
    "loginFailureWindowSeconds",
    "loginFailuresBeforeDelay",
    "loginMaxDelaySeconds",
    "loginFailuresBeforeBlock",
    "loginBlockSeconds",
    "loginAccountFailuresPerDay",
    "loginKnownGoodSeconds",
    "trustedProxies",
    "trustedProxyHeader",
    "accessTokenSeconds",
    "sessionIdleSeconds",
    "sessionMaxSeconds",
}


def load_totp_properties(path: Path) -> TotpSettings:
    """Read ``path``; a missing file, unknown key or bad value raises :class:`ConfigError`."""
    src = str(path)
    props = Properties()
    try:
        with open(path, "rb") as fh:
            props.load(fh, "utf-8")
    except FileNotFoundError:
        raise ConfigError(src, "(file)", None, "totp.properties file not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(src, "(file)", None, f"cannot be read: {type(exc).__name__}") from None
    values = {key: props[key].data.strip() for key in props.keys()}

    unknown = sorted(set(values) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(src, unknown[0], values[unknown[0]], f"unknown key; known keys: {', '.join(sorted(KNOWN_KEYS))}")

    defaults = TotpSettings()
    encoding = values.get("encodingMethod", defaults.encoding)
    if encoding not in SECRET_ENCODINGS:
        raise ConfigError(src, "encodingMethod", encoding, "must be Base32 or Base64")
    issuer = values.get("Issuer") or None
    use_common = parse_bool(src, "UseCommonIssuer", values.get("UseCommonIssuer"), defaults.use_common_issuer)
    if use_common and not issuer:
        raise ConfigError(src, "Issuer", issuer, "must be set when UseCommonIssuer=true")
    algorithm = values.get("hashAlgorithm", defaults.algorithm).upper()
    if algorithm not in HASH_ALGORITHMS:
        raise ConfigError(src, "hashAlgorithm", values["hashAlgorithm"], f"must be one of {', '.join(HASH_ALGORITHMS)}")
    digits = parse_int(src, "digits", values.get("digits"), defaults.digits, low=6, high=8)
    if digits == 7:
        raise ConfigError(src, "digits", values["digits"], "must be 6 or 8")
    lockout = parse_int(src, "lockoutSeconds", values.get("lockoutSeconds"), defaults.lockout_seconds, low=1, high=86400)
    max_lockout = parse_int(src, "maxLockoutSeconds", values.get("maxLockoutSeconds"), defaults.max_lockout_seconds,
                            low=1, high=30 * 86400)
    if max_lockout < lockout:
        raise ConfigError(src, "maxLockoutSeconds", values.get("maxLockoutSeconds"), "must not be less than lockoutSeconds")
    header = values.get("trustedProxyHeader", defaults.trusted_proxy_header)
    header = next((name for name in FORWARDING_HEADERS if name.lower() == header.lower()), None)
    if header is None:
        raise ConfigError(src, "trustedProxyHeader", values["trustedProxyHeader"],
                          f"must be one of {', '.join(FORWARDING_HEADERS)}")
    return TotpSettings(
        encoding=encoding,
        time_step=parse_int(src, "timeStepSize", values.get("timeStepSize"), defaults.time_step, low=1, high=3600),
        window_size=parse_int(src, "windowSize", values.get("windowSize"), defaults.window_size, low=1, high=21),
        mandatory=parse_bool(src, "enableTOTP", values.get("enableTOTP"), defaults.mandatory),
        issuer=issuer,
        use_common_issuer=use_common,
        secret_bytes=parse_int(src, "secretKeyLength", values.get("secretKeyLength"), defaults.secret_bytes, low=16, high=64),
        chunked_base64=parse_bool(src, "chunkedBase64", values.get("chunkedBase64"), defaults.chunked_base64),
        algorithm=algorithm,
        digits=digits,
        # NIST SP 800-63B 5.2.2: no more than 100 consecutive failures.
        max_failed_attempts=parse_int(src, "maxFailedAttempts", values.get("maxFailedAttempts"),
                                      defaults.max_failed_attempts, low=1, high=100),
        lockout_seconds=lockout,
        max_lockout_seconds=max_lockout,
        pending_secret_seconds=parse_int(src, "pendingSecretLifetime", values.get("pendingSecretLifetime"),
                                         defaults.pending_secret_seconds, low=1, high=7 * 86400),
        recovery_codes=parse_int(src, "recoveryCodeCount", values.get("recoveryCodeCount"), defaults.recovery_codes,
                                 low=1, high=50),
        max_devices=parse_int(src, "maxDevicesPerUser", values.get("maxDevicesPerUser"), defaults.max_devices,
                              low=1, high=100),
        device_auth_seconds=parse_int(src, "deviceAuthenticationLifetime",
                                      values.get("deviceAuthenticationLifetime"), defaults.device_auth_seconds,
                                      low=10, high=3600),
        allow_secret_retrieval=parse_bool(src, "allowSecretKeyRetrieval", values.get("allowSecretKeyRetrieval"),
                                          defaults.allow_secret_retrieval),
        self_operations=parse_bool(src, "SelfOperationsEnabled", values.get("SelfOperationsEnabled"),
                                   defaults.self_operations),
        login_window_seconds=parse_int(src, "loginFailureWindowSeconds", values.get("loginFailureWindowSeconds"),
                                       defaults.login_window_seconds, low=1, high=86400),
        login_delay_after=parse_int(src, "loginFailuresBeforeDelay", values.get("loginFailuresBeforeDelay"),
                                    defaults.login_delay_after, low=1, high=1000),
        login_max_delay=parse_int(src, "loginMaxDelaySeconds", values.get("loginMaxDelaySeconds"),
                                  defaults.login_max_delay, low=0, high=60),
        login_block_after=parse_int(src, "loginFailuresBeforeBlock", values.get("loginFailuresBeforeBlock"),
                                    defaults.login_block_after, low=1, high=100000),
        login_block_seconds=parse_int(src, "loginBlockSeconds", values.get("loginBlockSeconds"),
                                      defaults.login_block_seconds, low=1, high=86400),
        # NIST SP 800-63B 5.2.2: no more than 100 consecutive failures on one account.
        login_account_failures_per_day=parse_int(src, "loginAccountFailuresPerDay",
                                                 values.get("loginAccountFailuresPerDay"),
                                                 defaults.login_account_failures_per_day, low=1, high=100),
        login_known_good_seconds=parse_int(src, "loginKnownGoodSeconds", values.get("loginKnownGoodSeconds"),
                                           defaults.login_known_good_seconds, low=0, high=30 * 86400),
        trusted_proxies=_networks(src, "trustedProxies", values.get("trustedProxies", "")),
        trusted_proxy_header=header,
        access_token_seconds=parse_int(src, "accessTokenSeconds", values.get("accessTokenSeconds"),
                                       defaults.access_token_seconds, low=1, high=86400),
        session_idle_seconds=parse_int(src, "sessionIdleSeconds", values.get("sessionIdleSeconds"),
                                       defaults.session_idle_seconds, low=60, high=7 * 86400),
        session_max_seconds=parse_int(src, "sessionMaxSeconds", values.get("sessionMaxSeconds"),
                                      defaults.session_max_seconds, low=60, high=90 * 86400),
    )


def _networks(src: str, key: str, text: str) -> tuple[Network, ...]:
    """Comma-separated IPv4/IPv6 addresses or CIDR networks (host bits must be zero)."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry))
            except ValueError as exc:
                raise ConfigError(src, key, text, f"{entry!r} is not an IP address or network: {exc}") from None
    return tuple(networks)
