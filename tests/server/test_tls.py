"""TLS as served: 1.2 with forward-secret AEAD suites or 1.3 only, and an operator's certificate checked
at start (a key that does not match, an expired or soon expiring certificate)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import time
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_CANNOT = {"NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "UNSUPPORTED_PROTOCOL", "NO_CIPHER_MATCH"}


def handshake(server, configure, *, cafile: str | None = None):
    """Connect with a client context shaped by ``configure``; the TLS object's (version, cipher, peer DER)."""
    ctx = ssl.create_default_context(cafile=cafile or server.ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl.TLSVersion.TLSv1 / TLSv1_1
        configure(ctx)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            return tls.version(), tls.cipher()[0], tls.getpeercert(binary_form=True)


def refused(server, configure) -> ssl.SSLError:
    with pytest.raises(ssl.SSLError) as info:
        handshake(server, configure)
    if info.value.reason in CLIENT_CANNOT:
        pytest.skip(f"this client's OpenSSL cannot even offer it ({info.value.reason})")
    return info.value


def _old(maximum):
    def configure(ctx):
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = maximum
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer what the server must refuse
    return configure


@pytest.mark.parametrize("maximum", ["TLSv1", "TLSv1_1"])
def test_tls_1_0_and_1_1_are_refused(shared_server, maximum):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        version = getattr(ssl.TLSVersion, maximum)
    err = refused(shared_server, _old(version))
    assert err.reason == "TLSV1_ALERT_PROTOCOL_VERSION", err  # the server's alert, not a client limitation


@pytest.mark.parametrize("cipher", [
    "AES128-SHA",  # RSA key exchange, CBC: neither forward-secret nor AEAD
    "AES128-GCM-SHA256",  # AEAD, but RSA key exchange: not forward-secret
    "ECDHE-ECDSA-AES128-SHA",  # forward-secret, but CBC
])
def test_tls_1_2_without_forward_secret_aead_suite_is_refused(shared_server, cipher):
    def configure(ctx):
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(f"{cipher}:@SECLEVEL=0")
    err = refused(shared_server, configure)
    assert err.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE", err


def test_tls_1_2_with_ecdhe_gcm_is_accepted(shared_server):
    def configure(ctx):
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE+AESGCM")
    version, cipher, _ = handshake(shared_server, configure)
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE-") and "GCM" in cipher


def test_tls_1_3_is_accepted(shared_server):
    def configure(ctx):
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    version, cipher, _ = handshake(shared_server, configure)
    assert version == "TLSv1.3"
    assert cipher.startswith("TLS_")


def test_a_call_over_tls_1_3_works(shared_server):
    r = shared_server.session().post(f"{shared_server.url}/isTOTPEnabled", data={"username": "admin"})
    assert r.status_code == 200


# --- an operator's certificate ---


def self_signed(directory: Path, name: str, *, days: float, key=None) -> tuple[Path, Path]:
    """A self-signed certificate for localhost valid ``days`` from now (negative: already expired)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=400))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def start_failing(make_server, *extra: str, markers=("configuration error",)) -> tuple[int | None, str]:
    """Start a server that must refuse to start: (exit status, log). None if it was still running 3 s after
    logging one of ``markers`` (or after 30 s): it had to be stopped."""
    srv = make_server(start=False)
    srv.start(*extra, wait=False)
    deadline, seen = time.monotonic() + 30, None
    while srv.proc.poll() is None and time.monotonic() < deadline:
        if seen is None and any(m in srv.log() for m in markers):
            seen = time.monotonic()
        if seen is not None and time.monotonic() - seen > 3:
            break
        time.sleep(0.1)
    code = srv.proc.poll()
    if code is None:
        srv.stop()
    srv.proc = None
    return code, srv.log()


def test_a_key_that_does_not_match_the_certificate_exits_2(make_server, tmp_path):
    cert, _ = self_signed(tmp_path / "tls", "server", days=365)
    _, other_key = self_signed(tmp_path / "tls", "other", days=365)
    code, log = start_failing(make_server, "--tls-cert", str(cert), "--tls-key", str(other_key),
                              markers=("does not match",))
    assert code == 2, log
    assert "does not match" in log and str(other_key) in log, log
    assert "Traceback" not in log


def test_an_expired_certificate_exits_2(make_server, tmp_path):
    cert, key = self_signed(tmp_path / "tls", "expired", days=-1)
    code, log = start_failing(make_server, "--tls-cert", str(cert), "--tls-key", str(key), markers=("expired",))
    assert code == 2, log
    assert "expired" in log and str(cert) in log, log


def test_a_certificate_without_its_key_exits_2(make_server, tmp_path):
    cert, _ = self_signed(tmp_path / "tls", "server", days=365)
    code, log = start_failing(make_server, "--tls-cert", str(cert))
    assert code == 2, log
    assert "tls-key" in log, log


def test_a_certificate_expiring_within_30_days_starts_with_a_warning(make_server, tmp_path):
    cert, key = self_signed(tmp_path / "tls", "soon", days=10)
    srv = make_server(extra=("--tls-cert", str(cert), "--tls-key", str(key)))
    warning = [line for line in srv.log().splitlines() if "expires in" in line]
    assert warning, srv.log()
    assert "WARNING" in warning[0] and str(cert) in warning[0]
    assert "expires in 9 days" in warning[0] or "expires in 10 days" in warning[0], warning[0]

    # It is the certificate served, and it verifies as the trust anchor it is.
    version, _, der = handshake(srv, lambda ctx: None, cafile=str(cert))
    assert der == x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(serialization.Encoding.DER)
    r = srv.session().post(f"{srv.url}/isTOTPEnabled", data={"username": "admin"}, verify=str(cert))
    assert r.status_code == 200


def test_a_certificate_valid_for_long_gives_no_warning(make_server, tmp_path):
    cert, key = self_signed(tmp_path / "tls", "long", days=365)
    srv = make_server(extra=("--tls-cert", str(cert), "--tls-key", str(key)))
    assert "expires in" not in srv.log()
    _, _, der = handshake(srv, lambda ctx: None, cafile=str(cert))
    assert der == x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(serialization.Encoding.DER)
