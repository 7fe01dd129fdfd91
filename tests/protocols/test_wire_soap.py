"""SOAP 1.1 and 1.2 as Axis2 writes them: exact envelopes, content types, faults, endpoint aliases."""

from __future__ import annotations

import re

import pytest

from conftest import TNS
from wire import SOAP11, SOAP12, decode_qr, post_soap11, post_soap12, soap11

DECL = "<?xml version='1.0' encoding='UTF-8'?>"
TOTP_EXCEPTION_DETAIL = (
    f'<ns:TOTPAdminServiceTOTPException xmlns:ns="{TNS}">'
    '<ns:TOTPException xmlns:ax2121="http://exception.totp.authenticator.application.identity.carbon.wso2.org/xsd"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ax2121:TOTPException"/>'
    "</ns:TOTPAdminServiceTOTPException>"
)

ALIASES = [
    "",
    "/",
    ".TOTPAdminServiceHttpsSoap11Endpoint/",
    ".TOTPAdminServiceHttpsSoap12Endpoint/",
    ".TOTPAdminServiceHttpsEndpoint/",
    ".TOTPAdminServiceHttpSoap11Endpoint",
    "/resetTOTP",
]


def soap11_envelope(body: str) -> str:
    return f'{DECL}<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>'


def soap12_envelope(body: str) -> str:
    return f'{DECL}<soapenv:Envelope xmlns:soapenv="{SOAP12}"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>'


def test_soap11_response_bytes(shared_server):
    r = post_soap11(shared_server.session(), shared_server.url, "resetTOTP", "admin")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/xml; charset=UTF-8"
    assert r.text == soap11_envelope(
        f'<ns:resetTOTPResponse xmlns:ns="{TNS}"><ns:return>true</ns:return></ns:resetTOTPResponse>')


def test_soap12_response_bytes(shared_server):
    r = post_soap12(shared_server.session(), shared_server.url, "resetTOTP", "admin")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == 'application/soap+xml; charset=UTF-8; action="urn:resetTOTPResponse"'
    assert r.text == soap12_envelope(
        f'<ns:resetTOTPResponse xmlns:ns="{TNS}"><ns:return>true</ns:return></ns:resetTOTPResponse>')


def test_init_return_is_chunked_base64_escaped_like_axis2(shared_server):
    r = post_soap11(shared_server.session(), shared_server.url, "initTOTP", "admin")
    before, after = soap11_envelope(f'<ns:initTOTPResponse xmlns:ns="{TNS}"><ns:return>VALUE'
                                    "</ns:return></ns:initTOTPResponse>").split("VALUE")
    match = re.fullmatch(re.escape(before) + "(?P<value>.*)" + re.escape(after), r.text, re.S)
    assert match, r.text
    value = match["value"]
    lines = value.split("&#xd;\n")
    assert lines[-1] == "", "the last line ends in CRLF too"
    assert all(len(line) == 76 for line in lines[:-2]) and 0 < len(lines[-2]) <= 76
    assert decode_qr("".join(lines)).startswith("otpauth://totp/carbon.super:admin?secret=")


@pytest.mark.parametrize("suffix", ALIASES)
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_every_axis2_endpoint_alias_takes_soap(shared_server, suffix, version):
    post = post_soap11 if version == "1.1" else post_soap12
    r = post(shared_server.session(), shared_server.url + suffix, "resetTOTP", "admin")
    assert r.status_code == 200, r.text
    assert "<ns:return>true</ns:return>" in r.text


def test_declared_fault_soap11(shared_server):
    r = post_soap11(shared_server.session(), shared_server.url, "initTOTP", "nobody")
    assert r.status_code == 500
    assert r.headers["Content-Type"] == "text/xml; charset=UTF-8"
    assert r.text == soap11_envelope(
        "<soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>TOTPAdminService failed to generateTOTP"
        " key for the user : nobody. User nobody does not exist</faultstring>"
        f"<detail>{TOTP_EXCEPTION_DETAIL}</detail></soapenv:Fault>")


def test_declared_fault_soap12(shared_server):
    r = post_soap12(shared_server.session(), shared_server.url, "resetTOTP", "nobody")
    assert r.status_code == 500
    assert r.headers["Content-Type"] == "application/soap+xml; charset=UTF-8"
    assert r.text == soap12_envelope(
        "<soapenv:Fault><soapenv:Code><soapenv:Value>soapenv:Receiver</soapenv:Value></soapenv:Code>"
        '<soapenv:Reason><soapenv:Text xml:lang="en-US">Can not find the user realm for the user : nobody.'
        " User nobody does not exist</soapenv:Text></soapenv:Reason>"
        f"<soapenv:Detail>{TOTP_EXCEPTION_DETAIL}</soapenv:Detail></soapenv:Fault>")


def test_unknown_tenant_is_an_undeclared_fault(shared_server):
    r = post_soap11(shared_server.session(), shared_server.url, "initTOTP", "bob@nowhere.example")
    assert r.status_code == 500
    assert r.text == soap11_envelope(
        "<soapenv:Fault><faultcode>soapenv:Server</faultcode>"
        "<faultstring>Invalid tenant domain nowhere.example</faultstring><detail/></soapenv:Fault>")


@pytest.mark.parametrize("username", [None, "", "   "])
@pytest.mark.parametrize("operation", ["initTOTP", "resetTOTP", "refreshSecretKey"])
def test_missing_or_empty_username(shared_server, operation, username):
    r = post_soap11(shared_server.session(), shared_server.url, operation, username)
    assert r.status_code == 500
    assert "<faultcode>soapenv:Server</faultcode>" in r.text
    assert "The username is missing or empty" in r.text
    assert TOTP_EXCEPTION_DETAIL in r.text


@pytest.mark.parametrize("body, reason", [
    (b"not xml at all", "The request body is not well-formed XML"),
    (b"<soapenv:Envelope xmlns:soapenv='" + SOAP11.encode() + b"'><soapenv:Body>", "not well-formed XML"),
    (b"<a/>", "not a SOAP envelope"),
])
def test_malformed_soap11_is_a_client_fault(shared_server, body, reason):
    r = shared_server.session().post(shared_server.url, data=body, headers={"Content-Type": "text/xml"})
    assert r.status_code == 500
    assert "<faultcode>soapenv:Client</faultcode>" in r.text
    assert reason in r.text
    assert "Traceback" not in r.text and "spyne" not in r.text and "lxml" not in r.text


def test_soap12_envelope_sent_as_soap11_is_refused(shared_server):
    body = post_soap12.__globals__["soap12"]("resetTOTP", "admin")
    r = shared_server.session().post(shared_server.url, data=body, headers={"Content-Type": "text/xml"})
    assert r.status_code == 500
    assert "<faultcode>soapenv:Client</faultcode>" in r.text


def test_unknown_operation(shared_server):
    r = shared_server.session().post(shared_server.url, data=soap11("deleteEverything", "admin"),
                                     headers={"Content-Type": "text/xml"})
    assert r.status_code == 500
    assert "<faultcode>soapenv:Client</faultcode>" in r.text
    assert "is not provided by TOTPAdminService" in r.text


def test_unqualified_username_is_accepted_as_axis2_does(shared_server):
    body = (f'<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Body><ns:resetTOTP xmlns:ns="{TNS}">'
            "<username>admin</username></ns:resetTOTP></soapenv:Body></soapenv:Envelope>")
    r = shared_server.session().post(shared_server.url, data=body, headers={"Content-Type": "text/xml"})
    assert r.status_code == 200 and "<ns:return>true</ns:return>" in r.text
