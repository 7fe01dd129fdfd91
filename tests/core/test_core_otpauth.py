"""totpadmin.core.otpauth: the otpauth:// URL and the Base64 form WSO2's TOTPAdminService returned."""

from __future__ import annotations

import base64
import time

import pyotp
import pytest

from totpadmin.core.otp import totp
from totpadmin.core.otpauth import legacy_base64, otpauth_url
from totpadmin.core.secret_codec import BASE32, decode_secret

WSO2_URL = "otpauth://totp/carbon.super:dushani?secret=BFGDERYOSVRGK7LM&issuer=carbon.super"
# The initTOTP response documented by WSO2 for WSO2_URL (commons-codec 1.4 encodeBase64String).
WSO2_RESPONSE = (
    "b3RwYXV0aDovL3RvdHAvY2FyYm9uLnN1cGVyOmR1c2hhbmk/c2VjcmV0PUJGR0RFUllPU1ZSR0s3\r\n"
    "TE0maXNzdWVyPWNhcmJvbi5zdXBlcg==\r\n"
)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_legacy_base64_matches_wso2_documented_response():
    assert legacy_base64(WSO2_URL) == WSO2_RESPONSE


def test_legacy_base64_lines_are_76_columns_crlf_terminated():
    encoded = legacy_base64("x" * 200)  # 268 Base64 characters
    assert [len(line) for line in encoded.split("\r\n")] == [76, 76, 76, 40, 0]  # last line ends in CRLF too
    assert "\n" not in encoded.replace("\r\n", "")
    assert base64.b64decode(encoded) == b"x" * 200


def test_legacy_base64_unchunked_is_one_line():
    encoded = legacy_base64(WSO2_URL, chunked=False)
    assert encoded == WSO2_RESPONSE.replace("\r\n", "")
    assert "\r" not in encoded and "\n" not in encoded
    assert base64.b64decode(encoded).decode() == WSO2_URL


def test_legacy_base64_encodes_utf8():
    assert base64.b64decode(legacy_base64("jürgen", chunked=False)) == "jürgen".encode("utf-8")


def test_url_for_plain_username_is_the_legacy_string():
    assert otpauth_url("carbon.super", "dushani", "BFGDERYOSVRGK7LM") == WSO2_URL


def test_url_for_user_store_prefixed_username_is_the_legacy_string():
    assert (
        otpauth_url("abc.com", "SECONDARY/bob", SECRET)
        == f"otpauth://totp/abc.com:SECONDARY/bob?secret={SECRET}&issuer=abc.com"
    )


def test_url_keeps_at_sign_of_email_usernames():
    assert (
        otpauth_url("carbon.super", "bob@gmail.com", SECRET)
        == f"otpauth://totp/carbon.super:bob@gmail.com?secret={SECRET}&issuer=carbon.super"
    )


def test_period_30_is_not_written():
    assert "period" not in otpauth_url("carbon.super", "bob", SECRET, period=30)


def test_other_period_is_appended():
    url = otpauth_url("carbon.super", "bob", SECRET, period=60)
    assert url == f"otpauth://totp/carbon.super:bob?secret={SECRET}&issuer=carbon.super&period=60"


@pytest.mark.parametrize(
    "account, encoded",
    [
        ("bob smith", "bob%20smith"),
        ("bo:b", "bo%3Ab"),
        ("bob?x", "bob%3Fx"),
        ("bob&x", "bob%26x"),
        ("bob#x", "bob%23x"),
        ("bob%41", "bob%2541"),
        ("jürgen", "j%C3%BCrgen"),
    ],
)
def test_special_characters_are_percent_encoded_in_label(account, encoded):
    url = otpauth_url("carbon.super", account, SECRET)
    assert url == f"otpauth://totp/carbon.super:{encoded}?secret={SECRET}&issuer=carbon.super"


ACCOUNTS = ["bob smith", "bo:b", "bob?secret=AAAA", "bob&issuer=evil", "bob#frag", "100%", "jürgen", "名前", "a+b"]
ISSUERS = ["carbon.super", "abc.com", "My Co: Ltd & Sons", "Ünï #1", "a/b"]


@pytest.mark.parametrize("account", ACCOUNTS)
@pytest.mark.parametrize("issuer", ISSUERS)
@pytest.mark.parametrize("period", [30, 60])
def test_pyotp_parses_what_we_write(issuer, account, period):
    url = otpauth_url(issuer, account, SECRET, period=period)
    parsed = pyotp.parse_uri(url)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.name == account
    assert parsed.issuer == issuer
    assert parsed.secret == SECRET
    assert parsed.interval == period
    key = decode_secret(SECRET, BASE32)
    for unix_time in (59, 1111111109, int(time.time())):
        assert parsed.at(unix_time) == totp(key, unix_time, period=period)
