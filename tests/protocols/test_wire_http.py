"""The HTTP binding as admins use it: WSO2's documented curl commands, form POST and GET, Basic auth, the WSDL."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
import requests
from lxml import etree

from conftest import ADMIN_PASSWORD, TNS
from wire import decode_qr, secret_of, soap11

CURL = shutil.which("curl")


def curl(server, operation: str, username: str, auth: str | None = None) -> tuple[int, dict, str]:
    """WSO2's "Using the TOTP API" command, verbatim but for the port: -k, Basic header, form body."""
    auth = auth or base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    out = subprocess.run(
        [CURL, "-i", "-s", "-X", "POST", "-H", "Content-Type: application/x-www-form-urlencoded",
         "-H", f"Authorization:Basic {auth}", f"https://localhost:{server.port}/services/TOTPAdminService/{operation}",
         "-k", "-d", f"username={username}"],
        capture_output=True, text=True, check=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    head, _, body = out.stdout.replace("\r\n", "\n").partition("\n\n")
    status = int(head.split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in head.splitlines()[1:])}
    return status, headers, body


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_the_three_documented_curl_commands(shared_server):
    status, headers, body = curl(shared_server, "initTOTP", "admin")
    assert status == 200
    assert headers["content-type"] == "application/xml; charset=UTF-8"
    assert body.startswith(f'<ns:initTOTPResponse xmlns:ns="{TNS}"><ns:return>')
    assert body.endswith("</ns:return></ns:initTOTPResponse>")
    value = body[len(f'<ns:initTOTPResponse xmlns:ns="{TNS}"><ns:return>'):-len("</ns:return></ns:initTOTPResponse>")]
    url = decode_qr(value.replace("&#xd;", ""))
    assert url.startswith("otpauth://totp/carbon.super:admin?secret=") and url.endswith("&issuer=carbon.super")

    status, headers, body = curl(shared_server, "refreshSecretKey", "admin")
    assert status == 200
    assert body.startswith(f'<ns:refreshSecretKeyResponse xmlns:ns="{TNS}"><ns:return>')
    assert secret_of(url) not in body

    status, headers, body = curl(shared_server, "resetTOTP", "admin")
    assert (status, body) == (200, f'<ns:resetTOTPResponse xmlns:ns="{TNS}"><ns:return>true</ns:return></ns:resetTOTPResponse>')


def test_get_works_like_post(shared_server):
    s = shared_server.session()
    r = s.get(shared_server.url + "/resetTOTP", params={"username": "admin"})
    assert r.status_code == 200
    assert r.text == f'<ns:resetTOTPResponse xmlns:ns="{TNS}"><ns:return>true</ns:return></ns:resetTOTPResponse>'
    first = s.get(shared_server.url + "/initTOTP", params={"username": "admin"}).text
    second = s.post(shared_server.url + "/initTOTP", data={"username": "admin"}).text
    assert first == second


def test_unknown_form_fields_are_ignored_as_axis2_does(shared_server):
    r = shared_server.session().post(shared_server.url + "/resetTOTP", data={"username": "admin", "tenant": "x"})
    assert r.status_code == 200


def test_rest_declared_fault_is_the_detail_element(shared_server):
    r = shared_server.session().post(shared_server.url + "/initTOTP", data={"username": "ghost"})
    assert r.status_code == 500
    assert r.headers["Content-Type"] == "application/xml; charset=UTF-8"
    assert r.text.startswith(f'<ns:TOTPAdminServiceTOTPException xmlns:ns="{TNS}"><ns:TOTPException ')
    assert r.headers["X-Fault-Reason"] == "TOTPAdminService failed to generateTOTP key for the user : ghost. User ghost does not exist"


def test_rest_undeclared_fault_is_the_faultstring(shared_server):
    r = shared_server.session().post(shared_server.url + "/resetTOTP", data={"username": "x@nowhere.example"})
    assert (r.status_code, r.text) == (500, "<faultstring>Invalid tenant domain nowhere.example</faultstring>")


@pytest.mark.parametrize("form", [{}, {"username": ""}])
def test_rest_missing_username(shared_server, form):
    r = shared_server.session().post(shared_server.url + "/refreshSecretKey", data=form)
    assert r.status_code == 500
    assert "TOTPAdminServiceTOTPException" in r.text
    assert "The username is missing or empty" in r.headers["X-Fault-Reason"]


def test_rest_unknown_operation(shared_server):
    r = shared_server.session().post(shared_server.url + "/dropTables", data={"username": "admin"})
    assert r.status_code == 500
    assert r.text == "<faultstring>The operation dropTables is not provided by TOTPAdminService</faultstring>"


def test_repeated_username_is_refused_without_library_detail(shared_server):
    r = shared_server.session().post(shared_server.url + "/resetTOTP", data="username=a&username=b",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 500
    assert r.text == "<faultstring>The request has a repeated, unknown or malformed parameter</faultstring>"


# --- authentication ---

@pytest.mark.parametrize("header", [None, "Bearer abc", "Basic", "Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(),
                                    "Basic " + base64.b64encode(b"admin:").decode()])
def test_missing_or_malformed_authorization_is_401(shared_server, header):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if header is not None:
        headers["Authorization"] = header
    s = shared_server.session(user=None)
    r = s.post(shared_server.url + "/initTOTP", data="username=admin", headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="WSO2 Identity Server"'
    assert r.headers["Content-Type"] == "text/html"
    assert r.content == b""


@pytest.mark.parametrize("user, password", [("admin", "wrong"), ("nobody", "whatever"), ("admin@no.such", "x")])
def test_wrong_credentials_are_access_denied(shared_server, user, password):
    s = shared_server.session(user, password)
    soap = s.post(shared_server.url, data=soap11("resetTOTP", "admin"), headers={"Content-Type": "text/xml"})
    assert soap.status_code == 500
    assert ("<faultstring>Access Denied. Authentication failed - Invalid credentials provided.</faultstring>"
            "<detail/>") in soap.text
    rest = s.post(shared_server.url + "/resetTOTP", data={"username": "admin"})
    assert (rest.status_code, rest.text) == (
        500, "<faultstring>Access Denied. Authentication failed - Invalid credentials provided.</faultstring>")


def test_unsupported_content_type_is_415(shared_server):
    r = shared_server.session().post(shared_server.url + "/initTOTP", data=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 415


def test_unknown_paths_are_404(shared_server):
    s = shared_server.session()
    for path in ("/", "/services/Other", "/services/TOTPAdminService/initTOTP/extra", "/services/TOTPAdminService.Bogus"):
        assert s.get(shared_server.base + path).status_code == 404, path


# --- WSDL ---

@pytest.mark.parametrize("query", ["wsdl", "WSDL", "Wsdl"])
def test_wsdl_is_served_with_this_servers_address(shared_server, query):
    r = requests.get(f"{shared_server.url}?{query}", verify=shared_server.ca)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/xml; charset=UTF-8"
    doc = etree.fromstring(r.content)
    locations = sorted(el.get("location") for el in doc.iter() if etree.QName(el).localname == "address")
    base = f"https://localhost:{shared_server.port}/services/TOTPAdminService"
    assert locations == [f"{base}.TOTPAdminServiceHttpsEndpoint/", f"{base}.TOTPAdminServiceHttpsSoap11Endpoint/",
                         f"{base}.TOTPAdminServiceHttpsSoap12Endpoint/"]
    assert doc.get("targetNamespace") == TNS


def test_wsdl_hidden_by_default_as_carbon_ships(make_server):
    srv = make_server(hide_wsdl=True)
    for query in ("wsdl", "WSDL", "xsd"):
        r = requests.get(f"{srv.url}?{query}", verify=srv.ca)
        assert r.status_code == 403
        assert r.text == "Access to service metadata for service: TOTPAdminService has been forbidden"
    assert srv.session().get(srv.url + "/resetTOTP", params={"username": "admin"}).status_code == 200
