"""The typed settings the rest of the program reads. Built once at start by :mod:`.loader`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

SECRET_ENCODINGS = ("Base32", "Base64")
HASH_ALGORITHMS = ("SHA1", "SHA256", "SHA512")
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded")  # what trusted proxies may write (core/client_address.py)
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class TotpSettings:
    """conf/totp.properties."""

    encoding: str = "Base32"  # encodingMethod
    time_step: int = 30  # timeStepSize, seconds
    window_size: int = 3  # windowSize: 3 accepts one step either side
    mandatory: bool = False  # enableTOTP: TOTP required for every user
    issuer: str | None = None  # Issuer
    use_common_issuer: bool = False  # UseCommonIssuer
    secret_bytes: int = 20  # secretKeyLength
    chunked_base64: bool = True  # chunkedBase64: 76-column CRLF lines, as commons-codec 1.4
    algorithm: str = "SHA1"  # hashAlgorithm: HMAC of RFC 6238
    digits: int = 6  # digits: 6 or 8
    max_failed_attempts: int = 5  # maxFailedAttempts: wrong codes before a lockout
    lockout_seconds: int = 300  # lockoutSeconds: first lockout; each further one doubles
    max_lockout_seconds: int = 86400  # maxLockoutSeconds: the doubling stops here
    pending_secret_seconds: int = 600  # pendingSecretLifetime: generateSecret's secret expires after
    recovery_codes: int = 10  # recoveryCodeCount
    max_devices: int = 5  # maxDevicesPerUser: named TOTP devices a user may hold (core/devices.py)
    device_auth_seconds: int = 300  # deviceAuthenticationLifetime: an authId of the device API expires after
    allow_secret_retrieval: bool = False  # allowSecretKeyRetrieval: retrieveSecretKey answers at all
    self_operations: bool = False  # SelfOperationsEnabled: users may manage their own TOTP
    # Password guessing (HTTP Basic): see core/throttle.py.
    login_window_seconds: int = 600  # loginFailureWindowSeconds
    login_delay_after: int = 3  # loginFailuresBeforeDelay: per username
    login_max_delay: int = 8  # loginMaxDelaySeconds
    login_block_after: int = 20  # loginFailuresBeforeBlock: per client address
    login_block_seconds: int = 300  # loginBlockSeconds
    login_account_failures_per_day: int = 100  # loginAccountFailuresPerDay: per username (NIST SP 800-63B 5.2.2)
    login_known_good_seconds: int = 7 * 86400  # loginKnownGoodSeconds: verified credentials skip the throttle
    # Reverse proxies whose forwarding header names the client (core/client_address.py).
    trusted_proxies: tuple[Network, ...] = ()  # trustedProxies
    trusted_proxy_header: str = FORWARDING_HEADERS[0]  # trustedProxyHeader
    # OAuth2 client credentials (docs/oauth2.md).
    access_token_seconds: int = 3600  # accessTokenSeconds: lifetime of an access token
    # Sign-in sessions of the self-service APIs and pages (core/sessions.py).
    session_idle_seconds: int = 1800  # sessionIdleSeconds: a session ends after this long unused
    session_max_seconds: int = 43200  # sessionMaxSeconds: and after this long whatever happens


@dataclass(frozen=True)
class CarbonSettings:
    """conf/carbon.xml."""

    server_name: str = "WSO2 Identity Server"  # Name: the Basic-auth realm
    host_name: str | None = None  # HostName: the host put into the WSDL; None = the request's Host
    port_offset: int = 0  # Ports/Offset: added to 9443 as Carbon does
    hide_wsdl: bool = True  # HideAdminServiceWSDLs
    email_usernames: bool = False  # EnableEmailUserName

    @property
    def https_port(self) -> int:
        return 9443 + self.port_offset


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    conf_dir: Path
    totp: TotpSettings = field(default_factory=TotpSettings)
    carbon: CarbonSettings = field(default_factory=CarbonSettings)
    database_url: str | None = None  # None: SQLite file in the data directory
    host: str = "127.0.0.1"  # this machine only; serving other hosts is an explicit --host
    port: int = 9443
    https: bool = True
    tls_cert: Path | None = None  # PEM certificate chain; None: generated in the data directory
    tls_key: Path | None = None
    max_body_bytes: int = 1 << 20
    credential_cache_seconds: float = 60.0
    db_pool_size: int = 8
    metrics_port: int | None = None  # Prometheus /metrics listener; None: none
    workers: int = 1  # processes sharing the listening socket
    listen_fd: int | None = None  # a worker's inherited listening socket (set by the supervisor)
    supervisor_fd: int | None = None  # a worker's end of its supervisor's pipe (server/supervisor_pipe.py)
    metrics_host: str = "127.0.0.1"
    # "auto", "off" or CPUs: where each worker's reactor and database threads run (server/cpu_affinity.py)
    cpu_affinity: str | tuple[int, ...] = "auto"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "totp-admin.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"
