"""Legacy SOAP clients: zeep built from our WSDL calls every operation over SOAP 1.1 and SOAP 1.2."""

from __future__ import annotations

import base64
import time

import pyotp
import pytest
import zeep
import zeep.exceptions

from totpadmin.core import otp, secret_codec
from wire import decode_qr, label_of, secret_of, zeep_client

PORTS = ["TOTPAdminServiceHttpsSoap11Endpoint", "TOTPAdminServiceHttpsSoap12Endpoint"]


@pytest.mark.parametrize("port", PORTS)
def test_every_operation(shared_server, port):
    _, svc = zeep_client(shared_server, port)
    user = "admin"

    first = svc.initTOTP(username=user)
    assert "\r\n" in first, "initTOTP answers MIME-chunked Base64 by default"
    url = decode_qr(first)
    assert url.startswith("otpauth://totp/carbon.super:admin?secret=")
    assert url.endswith("&issuer=carbon.super")
    assert label_of(url) == "carbon.super:admin"
    assert svc.initTOTP(username=user) == first, "initTOTP is idempotent"

    encrypted = svc.refreshSecretKey(username=user)
    assert encrypted and "\n" not in encrypted and "\r" not in encrypted
    base64.b64decode(encrypted, validate=True)
    assert secret_of(url) not in encrypted
    rotated = decode_qr(svc.initTOTP(username=user))
    assert secret_of(rotated) != secret_of(url), "refreshSecretKey rotates the secret"

    assert svc.resetTOTP(username=user) is True
    after_reset = decode_qr(svc.initTOTP(username=user))
    assert secret_of(after_reset) not in (secret_of(url), secret_of(rotated))


@pytest.mark.parametrize("port", PORTS)
def test_codes_agree_with_an_independent_implementation(shared_server, port):
    _, svc = zeep_client(shared_server, port)
    url = decode_qr(svc.initTOTP(username="admin"))
    theirs = pyotp.parse_uri(url)
    assert theirs.issuer == "carbon.super" and theirs.name == "admin"
    key = secret_codec.decode_secret(secret_of(url), "Base32")
    assert len(key) == 20, "160-bit secrets by default"
    now = time.time()
    for offset in (-3600, -30, 0, 30, 86400 * 365):
        assert otp.totp(key, now + offset) == theirs.at(now + offset)


@pytest.mark.parametrize("port", PORTS)
def test_faults_reach_zeep_with_message_and_detail(shared_server, port):
    _, svc = zeep_client(shared_server, port)
    with pytest.raises(zeep.exceptions.Fault) as caught:
        svc.initTOTP(username="nobody")
    assert "nobody" in caught.value.message and "does not exist" in caught.value.message
    assert caught.value.detail is not None
    assert caught.value.detail[0].tag.endswith("}TOTPAdminServiceTOTPException")

    with pytest.raises(zeep.exceptions.Fault) as caught:
        svc.resetTOTP(username="bob@no-such-tenant.org")
    assert caught.value.message == "Invalid tenant domain no-such-tenant.org"
    assert caught.value.detail is None or len(caught.value.detail) == 0


def test_client_from_the_served_wsdl(shared_server):
    """A client generated from ?wsdl reaches this server through the addresses in it."""
    wsdl_url = shared_server.url + "?wsdl"
    session = shared_server.session()
    client = zeep.Client(wsdl_url, transport=zeep.transports.Transport(session=session),
                         settings=zeep.Settings(strict=True))
    for port in ("TOTPAdminServiceHttpsSoap11Endpoint", "TOTPAdminServiceHttpsSoap12Endpoint"):
        svc = client.bind("TOTPAdminService", port)
        assert svc._binding_options["address"].startswith(f"https://localhost:{shared_server.port}/services/")
        assert svc.resetTOTP(username="admin") is True
