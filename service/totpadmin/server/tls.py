"""TLS: a self-signed certificate made on first start, or the operator's; TLS 1.2 or newer only."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import ssl

log = logging.getLogger(__name__)

# TLS 1.2: forward-secret AEAD suites only (TLS 1.3's suites are all of that kind already).
MODERN_CIPHERS = ssl.AcceptableCiphers.fromOpenSSLCipherString("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20")

CERT_FILE = "server.crt"
KEY_FILE = "server.key"
CA_FILE = "ca.crt"


def ensure_self_signed(tls_dir: Path) -> tuple[Path, Path]:
    """A CA and a server certificate for localhost and 127.0.0.1 in ``tls_dir``, made if missing.

    Clients can trust ``ca.crt`` (e.g. ``curl --cacert data/tls/ca.crt``) instead of skipping checks.
    """
    cert_path, key_path = tls_dir / CERT_FILE, tls_dir / KEY_FILE
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    tls_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "totp-admin local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.IPAddress(ipaddress.ip_address("::1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        # Python 3.13's default VERIFY_X509_STRICT requires the key identifiers.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM))
    (tls_dir / CA_FILE).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    log.info("generated a self-signed TLS certificate in %s", tls_dir)
    return cert_path, key_path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def context_factory(cert_path: Path, key_path: Path) -> ssl.CertificateOptions:
    """Server TLS options: the certificate chain and key, TLS 1.2+ with Twisted's modern cipher list."""
    try:
        chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise TlsConfigError(f"{cert_path} / {key_path}: cannot load certificate or key ({exc})") from None
    if chain[0].public_key().public_numbers() != key.public_key().public_numbers():
        raise TlsConfigError(f"{key_path}: the private key does not match the certificate {cert_path}")
    not_after = chain[0].not_valid_after_utc
    remaining = not_after - datetime.datetime.now(datetime.timezone.utc)
    if remaining.total_seconds() <= 0:
        raise TlsConfigError(f"{cert_path}: the certificate expired on {not_after:%Y-%m-%d}")
    if remaining.days < 30:
        log.warning("%s: the certificate expires in %d days (%s)", cert_path, remaining.days, f"{not_after:%Y-%m-%d}")

    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain[:1])
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    leaf = ssl.PrivateCertificate.loadPEM(key_pem + pem)
    extra = [ssl.Certificate.loadPEM(c.public_bytes(serialization.Encoding.PEM)).original for c in chain[1:]]
    return ssl.CertificateOptions(
        privateKey=leaf.privateKey.original,
        certificate=leaf.original,
        extraCertChain=extra,
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        acceptableCiphers=MODERN_CIPHERS,
    )


class TlsConfigError(Exception):
    pass
