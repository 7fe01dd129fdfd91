"""Hostile input against one running server: a corpus of known attacks, then property-based fuzzing.

Every answer must be a clear client fault or HTTP status, with nothing of the implementation in it (no
traceback, file path or library name), and afterwards the server must still answer a normal call and
a sentinel user's rows (claims, totp_state, recovery_codes) must be exactly as they were.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import ssl
import time
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from conftest import ADMIN_PASSWORD, TNS, new_database, server_factory
from totpadmin.protocols.soap import body_limits as limits
from wire import SOAP11, SOAP12

SENTINEL = "sentinel"  # a user with TOTP active, a pending secret and recovery codes: never to change
VICTIM = "victim@abc.com"  # for tests of bugs that do change a user
PASSWORD = "a-password-of-theirs"
OPERATIONS = (
    "initTOTP", "resetTOTP", "refreshSecretKey", "generateSecret", "enableTOTP", "validateTOTP",
    "retrieveSecretKey", "isTOTPEnabled", "unlockTOTP", "regenerateRecoveryCodes", "enableTOTPWithRecoveryCodes",
)
FORM = "application/x-www-form-urlencoded"
CONTENT_TYPES = {"soap11": "text/xml; charset=UTF-8", "soap12": "application/soap+xml; charset=UTF-8",
                 "xml": "application/xml; charset=UTF-8", "form": FORM}
XML_BINDINGS = ("soap11", "soap12", "xml")
LEAKS = ("traceback", "site-packages", 'file "/', "/work/", ".py\"", "spyne", "lxml", "sqlalchemy", "psycopg",
         "twisted", "root:x:0:0", "/bin/bash", "/usr/sbin/nologin")
CLIENT_REASONS = (
    "DTDs and entity declarations are not allowed",
    "The request body is not valid UTF-8",
    "The request body is not well-formed XML",
    "The request body is not a SOAP envelope of the version its Content-Type names",
    "The request has a repeated, unknown or malformed parameter",
    "The request could not be read",
    "The form body is not valid UTF-8 URL-encoded data",
)
# The limits of protocols/soap/body_limits.py, as their faults name them.
XML_LIMITS = {
    "size": f"The request body is longer than {limits.MAX_XML_BYTES} bytes",
    "markup": f"The request has more than {limits.MAX_MARKUP} tags, comments or processing instructions",
    "references": f"The request has more than {limits.MAX_REFERENCES} character or entity references",
    "namespaces": f"The request declares more than {limits.MAX_NAMESPACES} namespaces",
    "attributes": f"The request has more than {limits.MAX_ATTRIBUTES} attributes and namespace declarations",
    "hrefs": f"The request has more than {limits.MAX_HREFS} SOAP-encoding references (href)",
    "depth": f"The request nests elements more than {limits.MAX_DEPTH} deep",
    "element-attributes": f"An element of the request has more than {limits.MAX_ELEMENT_ATTRIBUTES} attributes",
    "text": f"A text in the request is longer than {limits.MAX_TEXT} characters",
}
NESTED_REFERENCE = "The request has a SOAP-encoding reference (href) inside a referenced element (id)"
FORM_LIMITS = {
    "size": f"The form body is longer than {limits.MAX_FORM_BYTES} bytes",
    "fields": f"The form has more than {limits.MAX_FORM_FIELDS} fields",
    "escapes": f"The form has more than {limits.MAX_FORM_ESCAPES} %-escapes",
    "field-length": f"A form field is longer than {limits.MAX_TEXT} characters",
}
CLIENT_REASONS += (*XML_LIMITS.values(), NESTED_REFERENCE, *FORM_LIMITS.values())
DTD_REFUSED = "DTDs and entity declarations are not allowed"


# --- the server and the sentinel ---


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    with new_database(tmp) as db, server_factory(tmp, db) as factory:
        server = factory()
        server.cli("tenant", "add", "abc.com")
        server.cli("user", "add", SENTINEL, input=PASSWORD + "\n")
        server.cli("user", "add", VICTIM, input=PASSWORD + "\n")
        with server.session() as s:
            for operation in ("initTOTP", "generateSecret", "regenerateRecoveryCodes"):
                r = s.post(f"{server.url}/{operation}", data={"username": SENTINEL})
                assert r.status_code == 200, r.headers.get("X-Fault-Reason")
        yield server


def rows_of(server, qualified: str) -> dict:
    name, _, tenant = qualified.rpartition("@") if "@" in qualified else (qualified, "", "carbon.super")
    (uid,), = server.database.query("SELECT u.id FROM users u JOIN tenants t ON t.id = u.tenant_id "
                                    "WHERE u.username = :n AND t.domain = :d", n=name, d=tenant)
    return {
        "claims": server.database.query("SELECT uri, value, key_id, updated_at FROM claims WHERE user_id = :u "
                                        "ORDER BY uri", u=uid),
        "totp_state": server.database.query("SELECT * FROM totp_state WHERE user_id = :u", u=uid),
        "recovery_codes": server.database.query("SELECT * FROM recovery_codes WHERE user_id = :u ORDER BY id", u=uid),
    }


def assert_answers_normally(server):
    with server.session() as s:
        r = s.post(f"{server.url}/isTOTPEnabled", data={"username": SENTINEL}, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    assert "<ns:return>true</ns:return>" in r.text


@pytest.fixture(autouse=True)
def sentinel_unchanged(srv):
    """Around every test: the sentinel's rows and the users table are untouched, and the server still
    answers a normal call."""
    before = rows_of(srv, SENTINEL)
    users = srv.database.query("SELECT id, tenant_id, username, password_hash, role FROM users ORDER BY id")
    assert before["claims"] and before["recovery_codes"]
    yield
    assert_answers_normally(srv)
    assert rows_of(srv, SENTINEL) == before, "the sentinel user's TOTP rows changed"
    assert srv.database.query("SELECT id, tenant_id, username, password_hash, role FROM users ORDER BY id") == users


# --- building requests, reading answers ---


def element(operation: str, inner: bytes) -> bytes:
    return f'<ns:{operation} xmlns:ns="{TNS}">'.encode() + inner + f"</ns:{operation}>".encode()


def document(binding: str, body: bytes, *, header: bytes | None = None, prolog: bytes = b"") -> bytes:
    """``body`` as the binding carries it: inside a SOAP 1.1/1.2 envelope, or bare (HTTP binding, XML)."""
    if binding == "xml":
        return prolog + body
    env = SOAP11 if binding == "soap11" else SOAP12
    head = b"" if header is None else b"<e:Header>" + header + b"</e:Header>"
    return prolog + f'<e:Envelope xmlns:e="{env}">'.encode() + head + b"<e:Body>" + body + b"</e:Body></e:Envelope>"


def post(server, binding: str, data: bytes, operation: str = "isTOTPEnabled", *, session=None, path: str | None = None,
         content_type: str | None = None, timeout: float = 30):
    url = server.url + (path if path is not None else ("" if binding in ("soap11", "soap12") else f"/{operation}"))
    headers = {"Content-Type": content_type or CONTENT_TYPES[binding]}
    if binding == "soap11":
        headers["SOAPAction"] = f'"urn:{operation}"'
    s = session or server.session()
    try:
        r = s.post(url, data=data, headers=headers, timeout=timeout)
    finally:
        if session is None:
            s.close()
    assert_clean(r)
    return r


def call(server, binding: str, operation: str, username: str | None, *, code: str | None = None):
    """A well-formed call with text arguments, escaped as each binding needs."""
    if binding == "form":
        fields = {} if username is None else {"username": username}
        if code is not None:
            fields["verificationCode"] = code
        with server.session() as s:
            r = s.post(f"{server.url}/{operation}", data=fields, timeout=30)
        assert_clean(r)
        return r
    inner = b"" if username is None else f"<ns:username>{xml_text(username)}</ns:username>".encode()
    if code is not None:
        inner += f"<ns:verificationCode>{xml_text(code)}</ns:verificationCode>".encode()
    return post(server, binding, document(binding, element(operation, inner)), operation)


def xml_text(value: str) -> str:
    return escape(value).replace("\r", "&#13;")


def assert_clean(r) -> None:
    """Nothing of the implementation in the answer: no traceback, path, library name or file content."""
    text = r.content.decode("utf-8", "replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
    low = text.lower()
    for leak in LEAKS:
        assert leak not in low, f"{leak!r} in the answer: {text[:2000]!r}"


class Fault:
    def __init__(self, client: bool | None, reason: str, code: str):
        self.client, self.reason, self.code = client, reason, code

    def __repr__(self):
        return f"Fault(client={self.client}, code={self.code!r}, reason={self.reason[:300]!r})"


def fault_of(r, binding: str) -> Fault:
    """The fault in ``r``, which must be a well-formed one of the binding's kind (HTTP 500)."""
    assert r.status_code == 500, (r.status_code, r.text[:500])
    root = etree.fromstring(r.content)  # well-formed, or this raises
    if binding in ("xml", "form"):
        assert r.headers["Content-Type"] == "application/xml; charset=UTF-8"
        reason = header_reason(r.headers["X-Fault-Reason"])
        if root.tag == "faultstring":  # an undeclared fault: the reason is the body (as far as XML can carry it)
            assert root.text == NOT_XML.sub("?", reason), (root.text, reason)
        else:
            assert root.tag == f"{{{TNS}}}TOTPAdminServiceTOTPException", root.tag
        return Fault(None, reason, "")
    env = SOAP11 if binding == "soap11" else SOAP12
    assert root.tag == f"{{{env}}}Envelope"
    fault = root.find(f"{{{env}}}Body/{{{env}}}Fault")
    assert fault is not None, r.text
    if binding == "soap11":
        code, reason = fault.findtext("faultcode"), fault.findtext("faultstring")
        return Fault(code == "soapenv:Client", reason, code)
    code = fault.findtext(f"{{{env}}}Code/{{{env}}}Value")
    reason = fault.findtext(f"{{{env}}}Reason/{{{env}}}Text")
    return Fault(code == "soapenv:Sender", reason, code)


NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def header_reason(value: str) -> str:
    """The X-Fault-Reason header decoded: printable ASCII as it is, anything else an RFC 8187 extended
    value (UTF-8'' and the percent-encoded UTF-8)."""
    if value.startswith("UTF-8''"):
        return unquote(value[len("UTF-8''"):], encoding="utf-8", errors="strict")
    assert all(" " <= ch <= "~" for ch in value), value
    return value


def client_fault(r, binding: str, *reasons: str) -> Fault:
    """A fault that blames the request, with one of ``reasons`` (default: any of our client reasons)."""
    fault = fault_of(r, binding)
    assert fault.client in (True, None), fault
    assert fault.reason in (reasons or CLIENT_REASONS) or \
        (not reasons and fault.reason.startswith("The operation ") and fault.reason.endswith(" is not provided by TOTPAdminService")), fault
    return fault


def returns(r, binding: str) -> list[str]:
    assert r.status_code == 200, (r.status_code, r.text[:500])
    root = etree.fromstring(r.content)
    return [el.text or "" for el in root.iter(f"{{{TNS}}}return")]


# --- DTDs and entities ---

PASSWD_ENTITY = b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
PARAMETER_ENTITY = b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
EXTERNAL_DTD = b'<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">'
LAUGHS = (b'<!DOCTYPE lolz [<!ENTITY lol0 "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1)) * 10) for i in range(1, 10)) + b"]>")
DTDS = {"external-entity": (PASSWD_ENTITY, b"&xxe;"), "parameter-entity": (PARAMETER_ENTITY, b"admin"),
        "external-dtd": (EXTERNAL_DTD, b"admin"), "billion-laughs": (LAUGHS, b"&lol9;")}


@pytest.mark.parametrize("binding", XML_BINDINGS)
@pytest.mark.parametrize("kind", DTDS)
def test_dtds_and_entities_are_refused(srv, binding, kind):
    dtd, username = DTDS[kind]
    body = element("initTOTP", b"<ns:username>" + username + b"</ns:username>")
    r = post(srv, binding, document(binding, body, prolog=b'<?xml version="1.0"?>' + dtd), "initTOTP")
    client_fault(r, binding, DTD_REFUSED)
    assert b"root:" not in r.content and b"lollol" not in r.content


@pytest.mark.parametrize("binding", [
    "soap11", "soap12",
    "xml",
])
def test_a_dtd_in_utf16_is_refused_too(srv, binding):
    body = element("initTOTP", b"<ns:username>&xxe;</ns:username>")
    text = document(binding, body, prolog=b'<?xml version="1.0" encoding="UTF-16"?>' + PASSWD_ENTITY).decode()
    r = post(srv, binding, text.encode("utf-16"), "initTOTP")
    client_fault(r, binding, DTD_REFUSED, "The request body is not valid UTF-8")
    assert b"root:" not in r.content


@pytest.mark.parametrize("binding", XML_BINDINGS)
def test_entities_are_never_expanded_whatever_the_encoding(srv, binding):
    """Whether or not the DTD is refused, an entity never becomes part of an argument: were &who; expanded
    to the sentinel's name, resetTOTP would wipe the sentinel (checked after every test)."""
    for encoding, declared in (("utf-8", "UTF-8"), ("utf-16", "UTF-16"), ("utf-16-be", "UTF-16BE")):
        prolog = f'<?xml version="1.0" encoding="{declared}"?><!DOCTYPE x [<!ENTITY who "{SENTINEL}">]>'
        body = element("resetTOTP", b"<ns:username>&who;</ns:username>")
        r = post(srv, binding, document(binding, body, prolog=prolog.encode()).decode().encode(encoding), "resetTOTP")
        assert r.status_code == 500, (encoding, r.text)
        fault_of(r, binding)


# --- sizes and shapes ---


def test_bodies_over_the_limit_get_413(make_server):
    small = make_server(start=False)
    small.env["TOTP_MAX_BODY_BYTES"] = "65536"
    small.start()
    with small.session() as s:
        big_form = b"username=admin&padding=" + b"x" * 70_000
        r = s.post(f"{small.url}/isTOTPEnabled", data=big_form, headers={"Content-Type": FORM})
        assert r.status_code == 413
        assert_clean(r)

        big_soap = document("soap11", element("isTOTPEnabled", b"<ns:username>admin</ns:username>"
                                                               + b"<!--" + b"x" * 70_000 + b"-->"))
        r = s.post(small.url, data=big_soap, headers={"Content-Type": CONTENT_TYPES["soap11"]})
        assert r.status_code == 413

        def chunks():  # no Content-Length: Transfer-Encoding: chunked, 100 KB in all
            yield b"username=admin&padding="
            for _ in range(100):
                yield b"x" * 1000

        r = s.post(f"{small.url}/isTOTPEnabled", data=chunks(), headers={"Content-Type": FORM})
        assert r.request.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in r.request.headers
        assert r.status_code == 413
        assert_clean(r)

        # Just under the limit is read and answered, chunked or not; and the server goes on answering.
        # (Fields of at most MAX_TEXT characters: a longer one is a fault of its own.)
        fits = b"username=admin" + b"".join(b"&padding%d=" % i + b"x" * 4000 for i in range(15))
        r = s.post(f"{small.url}/isTOTPEnabled", data=fits, headers={"Content-Type": FORM})
        assert r.status_code == 200, r.text
        r = s.post(f"{small.url}/isTOTPEnabled", data=iter([fits[:30_000], fits[30_000:]]),
                   headers={"Content-Type": FORM})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("binding", XML_BINDINGS)
def test_deeply_nested_elements_are_a_client_fault(srv, binding):
    nested = b"<a>" * 100_000 + b"</a>" * 100_000
    started = time.monotonic()
    r = post(srv, binding, document(binding, element("isTOTPEnabled", b"<ns:username>" + nested + b"</ns:username>")))
    client_fault(r, binding)
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("binding", XML_BINDINGS)
@pytest.mark.parametrize("where", ["operation", "argument", "namespaces"])
def test_ten_thousand_attributes_on_one_element(srv, binding, where):
    if where == "namespaces":
        attrs = b" ".join(b'xmlns:p%d="urn:p%d"' % (i, i) for i in range(10_000))
    else:
        attrs = b" ".join(b'a%d="v"' % i for i in range(10_000))
    if where == "argument":
        body = element("isTOTPEnabled", b"<ns:username " + attrs + b">" + SENTINEL.encode() + b"</ns:username>")
    else:
        body = f'<ns:isTOTPEnabled xmlns:ns="{TNS}" '.encode() + attrs + \
            f"><ns:username>{SENTINEL}</ns:username></ns:isTOTPEnabled>".encode()
    r = post(srv, binding, document(binding, body))
    if r.status_code == 200:  # attributes are not arguments: ignoring them is a fine answer too
        assert returns(r, binding) == ["true"]
    else:
        client_fault(r, binding)


@pytest.mark.parametrize("binding", [*XML_BINDINGS, "form"])
@pytest.mark.parametrize("bad", [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"])
def test_invalid_utf8_is_a_client_fault(srv, binding, bad):
    if binding == "form":
        data = b"username=adm" + bad + b"in"
    else:
        data = document(binding, element("isTOTPEnabled", b"<ns:username>adm" + bad + b"in</ns:username>"))
    r = post(srv, binding, data)
    client_fault(r, binding, "The request body is not valid UTF-8", "The request body is not well-formed XML",
                 "The form body is not valid UTF-8 URL-encoded data")


@pytest.mark.parametrize("path, content_type", [
    ("", "application/json"), ("/isTOTPEnabled", "application/json"), ("/isTOTPEnabled", "text/plain"),
    ("", "text/plain"), ("", "text/html"), ("/isTOTPEnabled", "application/octet-stream"), ("", None),
    ("", "text/xmlx"), ("/isTOTPEnabled", "application/x-www-form-urlencodedx"),
])
def test_wrong_content_types_get_415(srv, path, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    with srv.session() as s:
        r = s.post(srv.url + path, data=b'{"username": "admin"}', headers=headers)
    assert "Content-Type" in r.request.headers or content_type is None
    assert r.status_code == 415, (r.status_code, r.text)
    assert "Unsupported Content-Type" in r.text
    assert_clean(r)


# --- limits on what a body may hold (protocols/soap/body_limits.py) ---


def sentinel_call(binding: str, extra: bytes = b"") -> bytes:
    """isTOTPEnabled of the sentinel (answered true), with ``extra`` inside the operation element."""
    return document(binding, element("isTOTPEnabled", f"<ns:username>{SENTINEL}</ns:username>".encode() + extra))


def comments(size: int) -> bytes:
    """Exactly ``size`` bytes (0, or at least 7) of comments, none longer than MAX_TEXT characters."""
    out = b""
    while size:
        take = min(size, limits.MAX_TEXT)
        if 0 < size - take < 7:
            take -= 7
        out += b"<!--" + b"c" * (take - 7) + b"-->"
        size -= take
    return out


def with_attributes(count: int) -> bytes:
    """Elements carrying ``count`` attributes in all, at most MAX_ELEMENT_ATTRIBUTES each."""
    out = b""
    while count > 0:
        n = min(count, limits.MAX_ELEMENT_ATTRIBUTES)
        out += b"<x " + b" ".join(b'a%d="v"' % i for i in range(n)) + b"/>"
        count -= n
    return out


def at_the_limit(binding: str, limit: str, over: int) -> bytes:
    """The sentinel call grown to exactly ``limit`` (``over`` = 0), or one past it (``over`` = 1)."""
    base = sentinel_call(binding)
    if limit == "size":
        return sentinel_call(binding, comments(limits.MAX_XML_BYTES + over - len(base)))
    if limit == "markup":
        return sentinel_call(binding, b"<!---->" * (limits.MAX_MARKUP + over - base.count(b"<")))
    if limit == "references":
        return sentinel_call(binding, b"<x>" + b"&amp;" * (limits.MAX_REFERENCES + over) + b"</x>")
    if limit == "namespaces":
        missing = limits.MAX_NAMESPACES + over - base.count(b"xmlns")
        return sentinel_call(binding, b"".join(b'<p%d:x xmlns:p%d="urn:p%d"/>' % (i, i, i) for i in range(missing)))
    if limit == "attributes":
        return sentinel_call(binding, with_attributes(limits.MAX_ATTRIBUTES + over - base.count(b"=")))
    if limit == "hrefs":  # references that resolve (on SOAP; the XML binding ignores them)
        return sentinel_call(binding, b'<r href="#t"/>' * (limits.MAX_HREFS + over) + b'<t id="t"/>')
    if limit == "depth":  # the operation element is at depth 3 in an envelope, 1 on the XML binding
        levels = limits.MAX_DEPTH + over - (1 if binding == "xml" else 3)
        return sentinel_call(binding, b"<x>" * levels + b"</x>" * levels)
    if limit == "element-attributes":
        return sentinel_call(binding, b"<x " + b" ".join(b'a%d="v"' % i for i in range(limits.MAX_ELEMENT_ATTRIBUTES + over))
                             + b"/>")
    assert limit == "text"
    return sentinel_call(binding, b"<x>" + b"t" * (limits.MAX_TEXT + over) + b"</x>")


@pytest.mark.parametrize("binding", XML_BINDINGS)
@pytest.mark.parametrize("limit", XML_LIMITS)
def test_each_xml_limit_is_a_client_fault_naming_it(srv, binding, limit):
    over = at_the_limit(binding, limit, 1)
    fault = client_fault(post(srv, binding, over), binding, XML_LIMITS[limit])
    assert fault.client is not False and (binding == "xml" or fault.code in ("soapenv:Client", "soapenv:Sender"))
    at = at_the_limit(binding, limit, 0)
    assert returns(post(srv, binding, at), binding) == ["true"]


def sentinel_form(padding: list[tuple[str, str]]) -> bytes:
    return "&".join([f"username={SENTINEL}"] + [f"{k}={v}" for k, v in padding]).encode()


def form_at_the_limit(limit: str, over: int) -> bytes:
    if limit == "size":  # fields of at most MAX_TEXT characters, filled to exactly MAX_FORM_BYTES
        body = sentinel_form([(f"p{i}", "x" * 4000) for i in range(16)])
        return body + b"&q=" + b"x" * (limits.MAX_FORM_BYTES + over - len(body) - 3)
    if limit == "fields":
        return sentinel_form([(f"p{i}", "") for i in range(limits.MAX_FORM_FIELDS + over - 1)])
    if limit == "escapes":
        return sentinel_form([("p", "%41" * (limits.MAX_FORM_ESCAPES + over))])
    assert limit == "field-length"
    return sentinel_form([("p", "x" * (limits.MAX_TEXT + over))])


@pytest.mark.parametrize("limit", FORM_LIMITS)
def test_each_form_limit_is_a_client_fault_naming_it(srv, limit):
    with srv.session() as s:
        over = s.post(f"{srv.url}/isTOTPEnabled", data=form_at_the_limit(limit, 1), headers={"Content-Type": FORM})
        at = s.post(f"{srv.url}/isTOTPEnabled", data=form_at_the_limit(limit, 0), headers={"Content-Type": FORM})
    assert_clean(over)
    client_fault(over, "form", FORM_LIMITS[limit])
    assert returns(at, "form") == ["true"]


def test_a_form_with_a_thousand_fields_is_told_so(srv):
    body = "&".join([f"username={SENTINEL}"] + [f"f{i}=v" for i in range(1000)])
    with srv.session() as s:
        r = s.post(f"{srv.url}/isTOTPEnabled", data=body, headers={"Content-Type": FORM})
    client_fault(r, "form", FORM_LIMITS["fields"])


@pytest.mark.parametrize("binding", XML_BINDINGS)
def test_the_largest_hostile_envelopes_are_refused_and_the_server_goes_on(srv, binding):
    """The shape of issue 17 (40,000 attributes on the operation element) and others as large as the body
    limit allows: each refused by a limit (the CPU they cost is scripts/bench's business)."""
    opening = f'<ns:isTOTPEnabled xmlns:ns="{TNS}" '.encode()
    shapes = {
        XML_LIMITS["size"]: opening + b" ".join(b'a%d="v"' % i for i in range(40_000))
                            + f"><ns:username>{SENTINEL}</ns:username></ns:isTOTPEnabled>".encode(),
        XML_LIMITS["markup"]: element("isTOTPEnabled", b"<a/>" * 10_000),
        XML_LIMITS["attributes"]: opening + b" ".join(b'a%d="v"' % i for i in range(5_000))
                                  + f"><ns:username>{SENTINEL}</ns:username></ns:isTOTPEnabled>".encode(),
        XML_LIMITS["references"]: element("isTOTPEnabled", b"<x>" + b"&#65;" * 10_000 + b"</x>"),
        XML_LIMITS["text"]: element("isTOTPEnabled", b"<x><![CDATA[" + b"c" * 60_000 + b"]]></x>"),
    }
    for reason, body in shapes.items():
        client_fault(post(srv, binding, document(binding, body)), binding, reason)
        assert_answers_normally(srv)



# --- HTTP framing, over raw TLS ---


def raw_tls(server, timeout: float = 10):
    ctx = ssl.create_default_context(cafile=server.ca)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return ctx.wrap_socket(sock, server_hostname="localhost")


def exchange(server, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request``; everything the server answers until it closes (or ``timeout`` passes)."""
    with raw_tls(server, timeout) as tls:
        tls.sendall(request)
        out = b""
        try:
            while chunk := tls.recv(65536):
                out += chunk
        except (TimeoutError, socket.timeout):
            pass
        except (ConnectionResetError, ssl.SSLError):
            pass
        return out


def raw_request(extra_headers: bytes = b"", body: bytes = b"username=admin") -> bytes:
    auth = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode())
    return (b"POST /services/TOTPAdminService/isTOTPEnabled HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Authorization: Basic " + auth + b"\r\nContent-Type: " + FORM.encode() + b"\r\n" + extra_headers
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def test_raw_requests_work_at_all(srv):
    answer = exchange(srv, raw_request())
    assert status_of(answer) == 200 and b"isTOTPEnabledResponse" in answer


@pytest.mark.parametrize("headers", [
    pytest.param(b"".join(b"X-H%d: v\r\n" % i for i in range(1000)), id="1000-headers"),
    pytest.param(b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(100)), id="100KB-in-100-headers"),
    pytest.param(b"X-Nul: a\x00b\r\n", id="NUL-in-value"),
    pytest.param(b"X-N\x00ul: ab\r\n", id="NUL-in-name"),
    pytest.param(b"X-Bad Name: v\r\n", id="space-in-name"),
    pytest.param(b"Content-Length: 5\r\n", id="two-content-lengths"),
])
def test_absurd_headers_get_a_4xx(srv, headers):
    answer = exchange(srv, raw_request(headers))
    assert 400 <= status_of(answer) < 500, answer[:300]
    assert not any(leak.encode() in answer.lower() for leak in LEAKS)


def test_a_100kb_header_gets_a_4xx(srv):
    answer = exchange(srv, raw_request(b"X-Big: " + b"a" * 100_000 + b"\r\n"), timeout=5)
    assert answer, "no answer (and the connection was still open) after 5 s"
    assert 400 <= status_of(answer) < 500


def auth_header(user: str = "admin", password: str = ADMIN_PASSWORD) -> bytes:
    return b"Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()) + b"\r\n"


@pytest.mark.parametrize("second", ["same", "wrong-password-first", "wrong-password-second"])
def test_two_authorization_headers_get_the_challenge(srv, second):
    """Which of two Authorization headers counts is ambiguous (a proxy may have checked the other one):
    neither does, and the answer is the Basic challenge, as for a malformed header."""
    admin, wrong = auth_header(), auth_header("admin", "not-the-password")
    first, extra = {"same": (admin, admin), "wrong-password-first": (wrong, admin),
                    "wrong-password-second": (admin, wrong)}[second]
    request = raw_request(extra).replace(admin, first, 1)
    assert request.count(b"Authorization:") == 2
    answer = exchange(srv, request)
    assert status_of(answer) == 401, answer[:300]
    assert b"\r\nWWW-Authenticate: Basic realm=" in answer
    with raw_tls(srv) as tls:  # and over http.client, which sends headers as given
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port)
        conn.sock = tls
        conn.putrequest("POST", "/services/TOTPAdminService/isTOTPEnabled")
        for header in (first, extra):
            name, _, value = header.decode().strip().partition(": ")
            conn.putheader(name, value)
        conn.putheader("Content-Type", FORM)
        conn.putheader("Content-Length", str(len(f"username={SENTINEL}")))
        conn.endheaders(f"username={SENTINEL}".encode())
        assert conn.getresponse().status == 401


def sent_until_dropped(server, pieces, head: bytes) -> bytes:
    """Send ``head``, then each piece as a TLS record of its own; whatever is answered (b"" if the server
    dropped the connection)."""
    with raw_tls(server, timeout=30) as tls:
        try:
            tls.sendall(head)
            for piece in pieces:
                tls.sendall(piece)
            out = b""
            while chunk := tls.recv(65536):
                out += chunk
            return out
        except (OSError, ssl.SSLError):
            return b""


def form_head(extra: bytes) -> bytes:
    return (b"POST /services/TOTPAdminService/isTOTPEnabled HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            + auth_header() + b"Content-Type: " + FORM.encode() + b"\r\n" + extra + b"\r\n")


def test_a_request_in_too_many_pieces_is_dropped(srv):
    """Each network read and each chunk costs Python a few µs whatever its size: a body in 1-byte TLS records
    or 1-byte chunks is cut off (server/site.py), and the server goes on answering."""
    body = f"username={SENTINEL}&pad=".encode() + b"x" * 600
    in_records = sent_until_dropped(srv, [body[i:i + 1] for i in range(len(body))],
                                    form_head(b"Content-Length: %d\r\n" % len(body)))
    assert b"isTOTPEnabledResponse" not in in_records and not in_records.startswith(b"HTTP/1.1 200")
    assert_answers_normally(srv)
    chunks = b"".join(b"1\r\n" + body[i:i + 1] + b"\r\n" for i in range(len(body))) + b"0\r\n\r\n"
    in_chunks = sent_until_dropped(srv, [chunks], form_head(b"Transfer-Encoding: chunked\r\n"))
    assert b"isTOTPEnabledResponse" not in in_chunks and not in_chunks.startswith(b"HTTP/1.1 200")
    # The same body in a few pieces is answered.
    few = sent_until_dropped(srv, [body[:300], body[300:]], form_head(b"Content-Length: %d\r\n" % len(body)))
    assert status_of(few) == 200 and b"<ns:return>true</ns:return>" in few


def test_a_body_far_over_the_limit_is_not_read_to_its_end(make_server):
    small = make_server(start=False)
    small.env["TOTP_MAX_BODY_BYTES"] = "65536"
    small.start()
    megabyte = b"x" * (1 << 20)
    answer = sent_until_dropped(small, [megabyte] * 16, form_head(b"Content-Length: %d\r\n" % (16 << 20)))
    assert not answer.startswith(b"HTTP/1.1 413"), "the whole 16 MiB was read before the answer"
    assert_answers_normally_as_admin(small)


def assert_answers_normally_as_admin(server):
    with server.session() as s:
        assert s.post(f"{server.url}/isTOTPEnabled", data={"username": "admin"}, timeout=10).status_code == 200


def test_slow_clients_do_not_block_others(srv):
    """Clients that send half a request and stall (in the headers, or in the body) hold only their own
    connection: a normal call made meanwhile is answered."""
    full = raw_request(body=b"username=admin&" + b"x" * 200)
    stalled = []
    try:
        for i in range(20):
            tls = raw_tls(srv, timeout=30)
            tls.sendall(full[: len(full) // 3] if i % 2 else full[:-100])
            stalled.append(tls)
        assert_answers_normally(srv)
        for tls in stalled[:2]:  # and they are still waiting, not answered or dropped
            tls.settimeout(0.2)
            with pytest.raises((TimeoutError, socket.timeout, ssl.SSLWantReadError)):
                tls.recv(1)
    finally:
        for tls in stalled:
            tls.close()


# --- hostile usernames ---

BINDINGS = (*XML_BINDINGS, "form")


@pytest.mark.parametrize("binding", BINDINGS)
def test_a_4kb_username(srv, binding):
    r = call(srv, binding, "resetTOTP", "u" * limits.MAX_TEXT)
    fault = fault_of(r, binding)
    assert fault.reason.endswith("The username is longer than 255 characters"), fault


@pytest.mark.parametrize("binding", BINDINGS)
def test_a_10kb_username_is_over_the_text_limit(srv, binding):
    r = call(srv, binding, "resetTOTP", "u" * 10_240)
    client_fault(r, binding, XML_LIMITS["text"], FORM_LIMITS["field-length"])


@pytest.mark.parametrize("binding", ["form", "xml"])
def test_a_100kb_username_gets_a_fault_the_client_can_read(srv, binding):
    r = call(srv, binding, "resetTOTP", "u" * 100_000)
    client_fault(r, binding, XML_LIMITS["size"], FORM_LIMITS["size"])


def _control_cases():
    for username in ("bob\x01", "bob\x7f", "bob\ttab", "bob\r\nX-Injected: yes", "\x00admin"):
        for binding in BINDINGS:
            yield pytest.param(binding, username, id=f"{binding}-{username!r}")


@pytest.mark.parametrize("binding, username", _control_cases())
def test_usernames_with_control_characters(srv, binding, username):
    if binding != "form" and any(ch in username for ch in "\x00\x01"):
        # Not even expressible in XML 1.0: the document is not well-formed.
        data = document(binding, element("resetTOTP", f"<ns:username>{username}</ns:username>".encode()))
        client_fault(post(srv, binding, data, "resetTOTP"), binding, "The request body is not well-formed XML")
        return
    r = call(srv, binding, "resetTOTP", username)
    fault = fault_of(r, binding)
    assert fault.reason.endswith("The username contains control characters"), fault
    assert "X-Injected" not in r.headers


@pytest.mark.parametrize("username", ["jürgen", "用户", "emoji\U0001F600", "tab\there"])
def test_a_non_ascii_fault_reason_reaches_the_header_intact(srv, username):
    with srv.session() as s:
        r = s.post(f"{srv.url}/isTOTPEnabled", data={"username": f"{username}@abc.com"})
    raw = r.raw.headers.get("X-Fault-Reason")  # as sent: ASCII only
    assert raw.startswith("UTF-8''") and raw.isascii(), raw
    assert header_reason(raw) == (f"TOTPAdminService failed to read the TOTP status of the user : {username}@abc.com. "
                                  + ("The username contains control characters" if "\t" in username
                                     else f"User {username}@abc.com does not exist"))


def test_an_ascii_fault_reason_is_sent_as_it_always_was(srv):
    """Byte for byte, '%' included: only reasons with other characters are encoded."""
    with srv.session() as s:
        r = s.post(f"{srv.url}/isTOTPEnabled", data={"username": "ghost%41@abc.com"})
    assert r.raw.headers.get("X-Fault-Reason") == ("TOTPAdminService failed to read the TOTP status of the user : "
                                                   "ghost%41@abc.com. User ghost%41@abc.com does not exist")


SQL = ("'; DROP TABLE users; --", "admin' OR '1'='1", "x@abc.com' OR 1=1 --", "\\'; DELETE FROM claims; --",
       "sentinel'--", "sentinel\" OR \"\"=\"", "%' OR username LIKE '%")


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("username", SQL)
def test_sql_in_usernames_is_just_a_name(srv, binding, username):
    tables = srv.database.query("SELECT COUNT(*) FROM users")
    for operation in ("resetTOTP", "isTOTPEnabled"):
        r = call(srv, binding, operation, username)
        fault = fault_of(r, binding)
        assert "does not exist" in fault.reason or "Invalid tenant domain" in fault.reason, fault
    assert srv.database.query("SELECT COUNT(*) FROM users") == tables


def test_sql_in_the_basic_auth_username_fails_to_log_in(srv):
    for user in ("admin' --", "admin' OR '1'='1", "' OR 1=1 --"):
        with srv.session(user, "x' OR '1'='1") as s:
            r = s.post(f"{srv.url}/isTOTPEnabled", data={"username": SENTINEL})
        assert r.status_code == 500
        assert r.headers["X-Fault-Reason"] == "Access Denied. Authentication failed - Invalid credentials provided."


METACHARACTERS = ('<a href="x">&amp;\'"</a>', "]]>&lt;<![CDATA[x]]>", "&#x41;&amp;&", "a'b\"c<d>e&f")


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("username", METACHARACTERS)
def test_xml_metacharacters_in_usernames_are_escaped_in_faults(srv, binding, username):
    r = call(srv, binding, "initTOTP", username)
    fault = fault_of(r, binding)  # parses as XML
    expected = (f"TOTPAdminService failed to generateTOTP key for the user : {username}. "
                f"User {username} does not exist")
    assert fault.reason == expected, fault


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("tenant", ["<b>.com", "a&b'c\"d", "]]>"])
def test_xml_metacharacters_in_tenants_are_escaped_in_faults(srv, binding, tenant):
    r = call(srv, binding, "isTOTPEnabled", f"x@{tenant}")
    fault = fault_of(r, binding)
    assert fault.reason == f"Invalid tenant domain {tenant}", fault
    if binding in ("xml", "form"):  # undeclared: the body is the reason, escaped
        assert etree.fromstring(r.content).text == fault.reason


@pytest.mark.parametrize("binding, path, username", [
    ("form", "/%01", "admin"),
    ("form", "/a%EF%BF%BEb", "admin"),
    ("form", "/isTOTPEnabled", "x@\ufffe"),
    ("form", "/isTOTPEnabled", "x@a\uffffb"),
    ("soap11", "/%1b", "admin"),
    ("soap12", "/a%EF%BF%BF", "admin"),
])
def test_faults_echoing_non_xml_characters_are_still_well_formed(srv, binding, path, username):
    with srv.session() as s:
        if binding == "form":
            r = s.post(srv.url + path, data={"username": username})
        else:  # an operation the service lacks: the fault names the one in the path
            r = s.post(srv.url + path, data=document(binding, element("noSuchOperation", b"")),
                       headers={"Content-Type": CONTENT_TYPES[binding]})
    fault_of(r, binding)  # the body parses as XML
    for name, value in r.headers.items():
        assert all(ch == "\t" or 0x20 <= ord(ch) < 0x7F or ord(ch) >= 0xA0 for ch in value), (name, value)


# --- SOAP oddities ---


def soap_envelope(binding: str, body: str, header: str | None = None) -> bytes:
    return document(binding, body.encode(), header=None if header is None else header.encode())


def op_xml(operation: str, username: str, extra: str = "") -> str:
    return f'<ns:{operation} xmlns:ns="{TNS}"><ns:username>{username}</ns:username>{extra}</ns:{operation}>'


@pytest.mark.parametrize("binding", ["soap11", "soap12"])
def test_a_header_without_must_understand_is_ignored(srv, binding):
    env = SOAP11 if binding == "soap11" else SOAP12
    for flag in ("", f' e:mustUnderstand="{"0" if binding == "soap11" else "false"}"'):
        header = f'<x:Trace xmlns:x="urn:x" xmlns:e="{env}"{flag}>t</x:Trace>'
        r = post(srv, binding, soap_envelope(binding, op_xml("isTOTPEnabled", SENTINEL), header))
        assert returns(r, binding) == ["true"]


@pytest.mark.parametrize("binding", ["soap11", "soap12"])
def test_a_must_understand_header_is_not_ignored(srv, binding):
    with srv.session() as s:
        assert s.post(f"{srv.url}/initTOTP", data={"username": VICTIM}).status_code == 200
    before = rows_of(srv, VICTIM)
    env = SOAP11 if binding == "soap11" else SOAP12
    flag = "1" if binding == "soap11" else "true"
    header = (f'<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-'
              f'secext-1.0.xsd" xmlns:e="{env}" e:mustUnderstand="{flag}"><wsse:Policy>only-if-you-check-me'
              f"</wsse:Policy></wsse:Security>")
    r = post(srv, binding, soap_envelope(binding, op_xml("resetTOTP", VICTIM), header), "resetTOTP")
    unchanged = rows_of(srv, VICTIM) == before
    fault = fault_of(r, binding)
    assert fault.code == "soapenv:MustUnderstand", fault
    assert unchanged


@pytest.mark.parametrize("binding", ["soap11", "soap12"])
@pytest.mark.parametrize("shape", ["extra-argument", "unknown-child-of-argument", "unknown-envelope-child",
                                   "unnamespaced-operation", "operation-in-other-namespace"])
def test_unknown_elements(srv, binding, shape):
    env = SOAP11 if binding == "soap11" else SOAP12
    if shape == "extra-argument":
        data = soap_envelope(binding, op_xml("isTOTPEnabled", SENTINEL, "<ns:evil>resetTOTP</ns:evil>"))
    elif shape == "unknown-child-of-argument":
        data = soap_envelope(binding, op_xml("isTOTPEnabled", f"<ns:x>{SENTINEL}</ns:x>"))
    elif shape == "unknown-envelope-child":
        data = (f'<e:Envelope xmlns:e="{env}"><e:Body>{op_xml("isTOTPEnabled", SENTINEL)}</e:Body>'
                f'<e:Trailer>{op_xml("resetTOTP", SENTINEL)}</e:Trailer></e:Envelope>').encode()
    elif shape == "unnamespaced-operation":
        data = soap_envelope(binding, f"<isTOTPEnabled><username>{SENTINEL}</username></isTOTPEnabled>")
    else:
        data = soap_envelope(binding, f'<o:resetTOTP xmlns:o="urn:other"><o:username>{SENTINEL}</o:username>'
                                      f"</o:resetTOTP>")
    r = post(srv, binding, data)
    if r.status_code == 200:
        assert returns(r, binding) in (["true"], ["false"])
        assert etree.fromstring(r.content).find(f".//{{{TNS}}}isTOTPEnabledResponse") is not None
    else:
        fault_of(r, binding)


@pytest.mark.parametrize("binding, shape", [("soap11", "plain"), ("soap11", "with-header"), ("soap12", "plain"),
                                            ("soap12", "with-header"), ("xml", "plain")])
def test_a_repeated_parameter_is_refused(srv, binding, shape):
    """As on the form binding: neither the first nor the last of two usernames (or codes) is taken. A plain
    envelope is one the fast path would read; a header block sends it to spyne (as every XML-binding request)."""
    with srv.session() as s:
        assert s.post(f"{srv.url}/initTOTP", data={"username": VICTIM}).status_code == 200
    before = rows_of(srv, VICTIM)
    header = b'<x:Trace xmlns:x="urn:x">t</x:Trace>' if shape == "with-header" else None
    for operation, inner in (
            ("resetTOTP", f"<ns:username>ghost</ns:username><ns:username>{VICTIM}</ns:username>"),
            ("resetTOTP", f"<ns:username>{VICTIM}</ns:username><ns:username>ghost</ns:username>"),
            ("validateTOTP", f"<ns:username>{VICTIM}</ns:username><ns:verificationCode>000000</ns:verificationCode>"
                             f"<ns:verificationCode>111111</ns:verificationCode>"),
    ):
        body = element(operation, inner.encode())
        data = document(binding, body, header=header)
        r = post(srv, binding, data, operation)
        client_fault(r, binding, "The request has a repeated, unknown or malformed parameter")
    assert rows_of(srv, VICTIM) == before


@pytest.mark.parametrize("binding", ["soap11", "soap12"])
@pytest.mark.parametrize("shape", ["two-operations", "two-bodies"])
def test_only_the_first_body_child_is_called(srv, binding, shape):
    """A second operation in the Body (or a second Body) is never run: it would reset the sentinel."""
    env = SOAP11 if binding == "soap11" else SOAP12
    first, second = op_xml("isTOTPEnabled", SENTINEL), op_xml("resetTOTP", SENTINEL)
    if shape == "two-operations":
        data = soap_envelope(binding, first + second)
    else:
        data = f'<e:Envelope xmlns:e="{env}"><e:Body>{first}</e:Body><e:Body>{second}</e:Body></e:Envelope>'.encode()
    r = post(srv, binding, data)
    if r.status_code == 200:
        assert returns(r, binding) == ["true"]
    else:
        client_fault(r, binding)


@pytest.mark.parametrize("binding", ["soap11", "soap12"])
@pytest.mark.parametrize("shape", ["empty-body", "text-only-body", "header-only", "fault-as-request"])
def test_an_envelope_without_an_operation_is_a_client_fault(srv, binding, shape):
    env = SOAP11 if binding == "soap11" else SOAP12
    inner = {
        "empty-body": "<e:Body/>",
        "text-only-body": "<e:Body>resetTOTP sentinel</e:Body>",
        "header-only": "<e:Header/>",
        "fault-as-request": "<e:Body><e:Fault><faultcode>e:Server</faultcode><faultstring>x</faultstring>"
                            "</e:Fault></e:Body>",
    }[shape]
    r = post(srv, binding, f'<e:Envelope xmlns:e="{env}">{inner}</e:Envelope>'.encode())
    client_fault(r, binding)


@pytest.mark.parametrize("binding", ["soap11", "soap12"])
@pytest.mark.parametrize("refs", [
    pytest.param('<ns:username href="#nowhere"/></ns:isTOTPEnabled><m id="somewhere">x</m>', id="unknown-id"),
    pytest.param('<ns:username href="#x"/></ns:isTOTPEnabled><m id="x"><k href="#x"/></m>', id="self-cycle"),
    pytest.param('<ns:username href="#x"/></ns:isTOTPEnabled><m id="x"><k href="#y"/></m><m id="y"><k href="#x"/></m>',
                 id="two-cycle"),
])
def test_soap_href_references_are_a_client_fault(srv, binding, refs):
    body = f'<ns:isTOTPEnabled xmlns:ns="{TNS}">{refs}'.replace("<m ", f'<m xmlns:ns="{TNS}" ')
    r = post(srv, binding, soap_envelope(binding, body))
    fault = client_fault(r, binding)
    if "<k href" in refs:  # a cycle: spyne would recurse to Python's limit; refused before it reads them
        assert fault.reason == NESTED_REFERENCE, fault


@pytest.mark.parametrize("binding", XML_BINDINGS)
def test_a_nil_operation_element_is_a_client_fault(srv, binding):
    body = (f'<ns:isTOTPEnabled xmlns:ns="{TNS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:nil="true"/>').encode()
    r = post(srv, binding, document(binding, body))
    fault = fault_of(r, binding)
    assert fault.client is not False and "Exception occurred" not in fault.reason, fault


# --- property-based fuzzing ---

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])

# Text a client may send, control characters included. U+FFFE and U+FFFF are left out of echoed text
# (usernames, operation names): they make faults ill-formed, a known bug pinned by
# test_faults_echoing_non_xml_characters_are_still_well_formed; C0/C1 controls are left out of operation
# names for the same reason (usernames with controls are refused before they are echoed in a body).
ANY_CHAR = st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff")
NAME_CHAR = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
texts = st.one_of(st.text(ANY_CHAR, max_size=40), st.text(ANY_CHAR, min_size=256, max_size=4000),
                  st.sampled_from(["", " ", "@", "admin", "nobody", "ghost@abc.com", "x@nowhere.example", "a@",
                                   "@abc.com", "000000", "abcd-efgh-ijkl-mnop", "\x00", "\r\n"]))
operations = st.one_of(st.sampled_from(OPERATIONS), st.text(NAME_CHAR, min_size=1, max_size=30))
field_names = st.one_of(st.sampled_from(["username", "verificationCode"]), st.text(ANY_CHAR, max_size=20))


def check(r, binding: str | None) -> None:
    """The fuzzing property: a known status; any 200 or 500 is well-formed XML of the binding's kind (a
    SOAP fault for SOAP); nothing of the implementation leaks."""
    assert_clean(r)
    assert r.status_code in (200, 400, 404, 405, 413, 415, 500), (r.status_code, r.text[:300])
    if r.status_code not in (200, 500):
        return
    assert binding is not None, (r.status_code, r.text[:300])
    if r.status_code == 500:
        fault_of(r, binding)
        return
    root = etree.fromstring(r.content)
    if binding in ("soap11", "soap12"):
        env = SOAP11 if binding == "soap11" else SOAP12
        assert root.tag == f"{{{env}}}Envelope"
        (answer,) = root.find(f"{{{env}}}Body")
        assert answer.tag.startswith(f"{{{TNS}}}") and answer.tag.endswith("Response")
    else:
        assert root.tag.startswith(f"{{{TNS}}}") and root.tag.endswith("Response"), root.tag


@pytest.fixture(scope="module")
def admin_session(srv):
    with srv.session() as s:
        yield s


short_texts = st.one_of(st.text(ANY_CHAR, max_size=30), st.sampled_from(["", "admin", "nobody", "\x00"]))
form_cases = st.one_of(
    st.tuples(st.just("POST"), st.lists(st.tuples(field_names, texts), max_size=8)),
    st.tuples(st.just("POST"), st.lists(st.tuples(field_names, st.text(ANY_CHAR, max_size=4)), min_size=60,
                                        max_size=80)),
    # GET: the whole query is on the request line; one over 16 KiB meets the known line-length bug
    # (test_a_100kb_header_gets_a_4xx), so queries stay short.
    st.tuples(st.just("GET"), st.lists(st.tuples(field_names, short_texts), max_size=6)),
)


@FUZZ
@given(operation=operations, case=form_cases)
def test_fuzz_form_and_query(srv, admin_session, operation, case):
    method, fields = case
    url = f"{srv.url}/{quote(operation, safe='')}"
    if method == "POST":
        r = admin_session.post(url, data=fields, timeout=30)
    else:
        r = admin_session.get(url, params=fields, timeout=30)
    check(r, "form")


def _xml_tree(namespaces):
    names = st.sampled_from([*OPERATIONS, "username", "verificationCode", "return", "Envelope", "Body", "Header",
                             "x", "a-b", "_"])
    # No href: SOAP-encoding references crash spyne, a known bug pinned by
    # test_soap_href_references_are_a_client_fault.
    attrs = st.dictionaries(st.sampled_from(["a", "b", "id", "xsi:nil", "xsi:type", "e:mustUnderstand", "xml:lang"]),
                            st.text(ANY_CHAR, max_size=10), max_size=3)
    text = st.one_of(st.just(""), texts)

    def render(name, ns, attributes, content):
        prefix = {TNS: "ns:", "": "", "urn:other": "o:", SOAP11: "e11:", SOAP12: "e12:"}[ns]
        decl = {TNS: f' xmlns:ns="{TNS}"', "": "", "urn:other": ' xmlns:o="urn:other"',
                SOAP11: f' xmlns:e11="{SOAP11}"', SOAP12: f' xmlns:e12="{SOAP12}"'}[ns]
        extra = ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        attr_text = "".join(f" {k}={quoteattr(v)}" for k, v in attributes.items() if not k.startswith("e:"))
        inner = content if isinstance(content, str) else "".join(content)
        return f"<{prefix}{name}{decl}{extra}{attr_text}>{inner}</{prefix}{name}>"

    leaf = st.builds(render, names, namespaces, attrs, text.map(xml_text))
    return st.recursive(leaf, lambda kids: st.builds(render, names, namespaces, attrs, st.lists(kids, max_size=4)),
                        max_leaves=12)


ANY_NS = st.sampled_from([TNS, TNS, "", "urn:other", SOAP11, SOAP12])
OPERATION_NS = st.sampled_from([TNS, TNS, TNS, "", "urn:other"])


@FUZZ
@given(binding=st.sampled_from(["soap11", "soap12"]),
       first=_xml_tree(OPERATION_NS),
       rest=st.lists(_xml_tree(ANY_NS), max_size=2),
       header=st.one_of(st.none(), st.lists(_xml_tree(ANY_NS), max_size=2)))
def test_fuzz_soap_envelopes(srv, admin_session, binding, first, rest, header):
    # The Body always holds an element of the service's (or no, or another) namespace first: envelopes
    # without one are a known bug, pinned by test_an_envelope_without_an_operation_is_a_client_fault.
    body = first + "".join(rest)
    data = soap_envelope(binding, body, None if header is None else "".join(header))
    r = admin_session.post(srv.url, data=data, headers={"Content-Type": CONTENT_TYPES[binding]}, timeout=30)
    check(r, binding)


PREFIXES = {
    "soap11": [b"", b"<?xml version='1.0' encoding='UTF-8'?>", f'<e:Envelope xmlns:e="{SOAP11}"><e:Body>'.encode()],
    "soap12": [b"", f'<e:Envelope xmlns:e="{SOAP12}"><e:Body>'.encode()],
    "xml": [b"", f'<ns:isTOTPEnabled xmlns:ns="{TNS}"><ns:username>'.encode()],
    "form": [b"", b"username=", b"username=admin&verificationCode="],
    None: [b""],
}
RANDOM_CONTENT_TYPES = {"soap11": CONTENT_TYPES["soap11"], "soap12": CONTENT_TYPES["soap12"],
                        "xml": CONTENT_TYPES["xml"], "form": FORM, None: "application/json"}


@st.composite
def raw_bodies(draw):
    binding = draw(st.sampled_from(list(PREFIXES)))
    prefix = draw(st.sampled_from(PREFIXES[binding]))
    tail = draw(st.binary(max_size=3000))
    # Known bug (non-XML characters echoed in faults): U+FFFE/U+FFFF in UTF-8, pinned elsewhere.
    body = (prefix + tail).replace(b"\xef\xbf\xbe", b"").replace(b"\xef\xbf\xbf", b"")
    path = draw(st.sampled_from(["", "/isTOTPEnabled", "/validateTOTP", "/noSuchOperation"]))
    return binding, path, body


@FUZZ
@given(raw_bodies())
def test_fuzz_random_bytes(srv, admin_session, case):
    binding, path, body = case
    r = admin_session.post(srv.url + path, data=body, headers={"Content-Type": RANDOM_CONTENT_TYPES[binding]},
                           timeout=30)
    if binding is None or (binding in ("xml", "form") and not path):
        assert r.status_code == 415, (binding, path, r.status_code)
    # A form or XML body sent to the SOAP endpoint path-less is 415; SOAP content types go to SOAP whatever
    # the path.
    check(r, binding if r.status_code != 415 else None)
