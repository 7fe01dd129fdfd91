"""protocols/soap/plain_requests.py against spyne: every request of a corpus answered by the real endpoint (real store,
real key ring, real core) once with plain requests read by the fast path and once with everything read
by spyne, and the replies compared byte for byte. Plain shapes must take the fast path; odd ones must not.
"""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import replace
from urllib.parse import quote

import pytest
from sqlalchemy import text

from conftest import TNS, make_conf
from totpadmin.protocols.soap.body_limits import MAX_TEXT
from totpadmin.operations.services import Services
from totpadmin.protocols.soap.endpoint import Endpoint
from totpadmin.protocols.messages import ApiRequest
from totpadmin.config.loader import load_settings
from totpadmin.core.authentication import Authenticator, CacheState
from totpadmin.core.credential_cache import CredentialCache
from totpadmin.core.enrollment import Enrollment
from totpadmin.core.passwords import PasswordHasher
from totpadmin.core.principal import ADMIN, USER
from totpadmin.core.usernames import SUPER_TENANT, UserRef
from totpadmin.core.validation import Validation
from totpadmin.wiring import open_database

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
FORM = "application/x-www-form-urlencoded"
FIXED_SECRET = bytes(range(1, 21))  # deterministic secrets: both paths must publish the same QR URL


@pytest.fixture
def endpoints(tmp_path, database):
    conf = make_conf(tmp_path, properties={"allowSecretKeyRetrieval": "true", "maxFailedAttempts": "100"})
    settings = load_settings(data_dir=tmp_path / "data", conf_dir=conf, database_url=database.url)
    db = open_database(settings, with_keys=True)
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with db.transaction() as unit:
        unit.users.add_user(UserRef(SUPER_TENANT, "admin"), hasher.hash("pw"), ADMIN)
        unit.users.add_user(UserRef(SUPER_TENANT, "plain"), hasher.hash("pw"), USER)
        for name in ("alice", "bob", "carol", "dave", "bjørn"):
            unit.users.add_user(UserRef(SUPER_TENANT, name), hasher.hash("pw"), USER)
        # As an older version stored it: PRECIS refuses the space in new names, not in stored ones.
        unit.connection.execute(text("INSERT INTO users (uuid, tenant_id, username, password_hash, role, created_at) "
                                     "SELECT :uuid, id, 'x y', :hash, 'user', CURRENT_TIMESTAMP FROM tenants "
                                     "WHERE domain = 'carbon.super'"),
                                {"hash": hasher.hash("pw"), "uuid": str(uuid.uuid4())})
    services = Services(
        settings=settings, db=db,
        enrollment=Enrollment(settings.totp, new_secret=lambda n: FIXED_SECRET[:n]),
        validation=Validation(settings.totp),
        authenticator=Authenticator(hasher, CredentialCache(ttl=60)),
    )
    yield Endpoint(services), Endpoint(services, read_plain=False)
    db.dispose()


def soap(version: str, inner: str, *, header: str = "", prefix: str = "soapenv") -> tuple[str, bytes]:
    ns = SOAP11 if version == "1.1" else SOAP12
    ctype = "text/xml" if version == "1.1" else "application/soap+xml"
    body = f'<{prefix}:Envelope xmlns:{prefix}="{ns}">{header}<{prefix}:Body>{inner}</{prefix}:Body></{prefix}:Envelope>'
    return ctype, body.encode("utf-8")


def op(name: str, **params: str) -> str:
    children = "".join(f"<ns:{k}>{html.escape(v, quote=False)}</ns:{k}>" for k, v in params.items())
    return f'<ns:{name} xmlns:ns="{TNS}">{children}</ns:{name}>'


def form(**params: str) -> bytes:
    return "&".join(f"{k}={quote(v)}" for k, v in params.items()).encode()


def request(ctype: str, body: bytes, operation: str | None = None, *, user: str = "admin",
            method: str = "POST", query: dict | None = None) -> ApiRequest:
    return ApiRequest(method=method, operation=operation, content_type=ctype, body=body, query=query or {},
                      credentials=(user, "pw"), peer="127.0.0.1", request_id="r1")


# Operation calls whose answers do not depend on earlier calls once the user is enrolled (see setup).
CALLS = [
    ("initTOTP", dict(username="alice")),
    ("initTOTP", dict(username="bjørn")),
    ("initTOTP", dict(username="alice@carbon.super")),
    ("initTOTP", dict(username="nobody")),  # unknown user: declared fault
    ("initTOTP", dict(username="alice@no.such.tenant")),  # undeclared fault
    ("initTOTP", dict(username="a" * 300)),  # invalid username, echoed shortened
    ("initTOTP", dict(username=" alice ")),
    ("initTOTP", dict(username="x y")),
    ("initTOTP", dict(username="<&>\"'")),
    ("retrieveSecretKey", dict(username="alice")),
    ("isTOTPEnabled", dict(username="alice")),
    ("isTOTPEnabled", dict(username="carol")),
    ("validateTOTP", dict(username="alice", verificationCode="000000")),
    ("validateTOTP", dict(verificationCode="12 34 56", username="alice")),
    ("validateTOTP", dict(username="carol", verificationCode="123456")),
    ("unlockTOTP", dict(username="alice")),
    ("resetTOTP", dict(username="dave")),
    ("generateSecret", dict(username="bob")),
    ("enableTOTP", dict(username="bob", verificationCode="000000")),
    ("enableTOTPWithRecoveryCodes", dict(username="bob", verificationCode="000000")),
    ("regenerateRecoveryCodes", dict(username="carol")),  # not enabled: fault
]


def setup(fast: Endpoint) -> None:
    """The same starting state before each call: alice and bjørn enrolled, carol not, bob pending."""
    for name, user in (("initTOTP", "alice"), ("initTOTP", "bjørn"), ("resetTOTP", "carol"),
                       ("generateSecret", "bob")):
        assert fast.handle(request(*soap("1.1", op(name, username=user)))).status == 200


def both(endpoints, req: ApiRequest):
    fast, spyne_only = endpoints
    setup(fast)
    a = spyne_only.handle(req)
    setup(fast)
    b = fast.handle(req)
    return a, b


def same(a, b) -> None:
    assert (a.status, a.content_type, a.headers, a.authenticated) == (b.status, b.content_type, b.headers,
                                                                         b.authenticated)
    assert a.body.decode() == b.body.decode()


def plain_taken(fast: Endpoint, req: ApiRequest) -> bool:
    return fast.bindings.select(req).plain_arguments(req) is not None


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("name,params", CALLS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CALLS)])
def test_plain_soap_answers_as_spyne(endpoints, version, name, params):
    req = request(*soap(version, op(name, **params)))
    assert plain_taken(endpoints[0], req)
    same(*both(endpoints, req))


@pytest.mark.parametrize("name,params", CALLS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CALLS)])
def test_plain_form_answers_as_spyne(endpoints, name, params):
    req = request(FORM, form(**params), name)
    assert plain_taken(endpoints[0], req)
    same(*both(endpoints, req))


def test_refresh_secret_key_answers_as_spyne(endpoints):
    """Its answer is the sealed secret (a fresh nonce each time): compare all but the value."""
    req = request(*soap("1.1", op("refreshSecretKey", username="alice")))
    assert plain_taken(endpoints[0], req)
    a, b = both(endpoints, req)
    hide = re.compile(rb"<ns:return>[A-Za-z0-9+/=]+</ns:return>")
    assert hide.subn(b"V", a.body)[1] == 1
    assert hide.sub(b"V", a.body) == hide.sub(b"V", b.body)


def test_not_authorized_and_bad_login_answer_as_spyne(endpoints):
    for req in (request(*soap("1.1", op("initTOTP", username="alice")), user="plain"),
                request(FORM, form(username="alice"), "resetTOTP", user="plain"),
                request(*soap("1.2", op("initTOTP", username="alice")), user="nobody")):
        same(*both(endpoints, req))


T = f'xmlns:ns="{TNS}"'
# Shapes the fast path reads: spelled differently, meaning the same.
PLAIN_SOAP = [
    f'<initTOTP xmlns="{TNS}"><username>alice</username></initTOTP>',
    f'<t:initTOTP xmlns:t="{TNS}"><t:username>alice</t:username></t:initTOTP>',
    f'\n  <ns:initTOTP {T}>\n    <ns:username>alice</ns:username>\n  </ns:initTOTP>\n',
    f'<ns:initTOTP {T}><ns:username>al&#105;ce</ns:username></ns:initTOTP>',
    f'<ns:initTOTP {T}><ns:username><![CDATA[alice]]></ns:username></ns:initTOTP>',
    f'<ns:initTOTP {T}><ns:username>\talice\n</ns:username></ns:initTOTP>',
    f'<ns:validateTOTP {T}><ns:verificationCode>1</ns:verificationCode><ns:username>alice</ns:username></ns:validateTOTP>',
]
# Shapes left to spyne.
ODD_SOAP = [
    f'<ns:initTOTP {T}><ns:username xmlns:xsi="{XSI}" xsi:nil="true"/></ns:initTOTP>',
    f'<ns:initTOTP {T}><ns:username/></ns:initTOTP>',
    f'<ns:initTOTP {T}><username>alice</username></ns:initTOTP>',
    f'<ns:initTOTP {T}><ns:username>alice</ns:username><ns:username>bob</ns:username></ns:initTOTP>',
    f'<ns:initTOTP {T}><ns:user>alice</ns:user></ns:initTOTP>',
    f'<ns:initTOTP {T}><ns:verificationCode>1</ns:verificationCode></ns:initTOTP>',
    f'<ns:initTOTP {T}></ns:initTOTP>',
    f'<ns:validateTOTP {T}><ns:username>alice</ns:username></ns:validateTOTP>',
    f'<ns:initTOTP {T}><!-- c --><ns:username>alice</ns:username></ns:initTOTP>',
    f'<ns:initTOTP {T}><ns:username>al<!-- c -->ice</ns:username></ns:initTOTP>',
    f'<ns:initTOTP {T}><ns:username><b>alice</b></ns:username></ns:initTOTP>',
    f'<ns:initTOTP {T} id="x"><ns:username>alice</ns:username></ns:initTOTP>',
    f'<ns:initTOTP {T}>text<ns:username>alice</ns:username></ns:initTOTP>',
    f'<ns:initTOTP {T}><ns:username>alice</ns:username></ns:initTOTP><ns:initTOTP {T}/>',
    f'<ns:noSuchOperation {T}><ns:username>alice</ns:username></ns:noSuchOperation>',
    '<initTOTP><username>alice</username></initTOTP>',
    f'<ns:initTOTP xmlns:ns="urn:other"><ns:username>alice</ns:username></ns:initTOTP>',
    "",
]
PLAIN_HEADERS = ["<soapenv:Header/>", "<soapenv:Header>  </soapenv:Header>"]
ODD_HEADERS = [
    '<soapenv:Header><wsa:Action xmlns:wsa="http://www.w3.org/2005/08/addressing">urn:initTOTP</wsa:Action>'
    '</soapenv:Header>',
    '<soapenv:Header><x:Must xmlns:x="urn:x" soapenv:mustUnderstand="1"/></soapenv:Header>',
]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("inner", PLAIN_SOAP)
def test_plain_spellings_take_the_fast_path(endpoints, version, inner):
    req = request(*soap(version, inner))
    assert plain_taken(endpoints[0], req)
    same(*both(endpoints, req))


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("inner", ODD_SOAP)
def test_odd_shapes_go_to_spyne(endpoints, version, inner):
    req = request(*soap(version, inner))
    assert not plain_taken(endpoints[0], req)
    same(*both(endpoints, req))


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("where", ["argument", "blank"])
def test_texts_at_the_limit_are_plain_and_over_it_are_refused_alike(endpoints, version, where):
    """A plain request is within body_limits' text limit: one over it goes to spyne, which refuses it, so
    both paths answer alike."""
    def inner(length: int) -> str:
        if where == "argument":
            return op("initTOTP", username="a" * length)
        return f'<ns:initTOTP {T}>{" " * length}<ns:username>alice</ns:username></ns:initTOTP>'

    at = request(*soap(version, inner(MAX_TEXT)))
    assert plain_taken(endpoints[0], at)
    same(*both(endpoints, at))
    over = request(*soap(version, inner(MAX_TEXT + 1)))
    assert not plain_taken(endpoints[0], over)
    a, b = both(endpoints, over)
    same(a, b)
    assert f"A text in the request is longer than {MAX_TEXT} characters".encode() in a.body


@pytest.mark.parametrize("header,plain", [(h, True) for h in PLAIN_HEADERS] + [(h, False) for h in ODD_HEADERS])
def test_headers(endpoints, header, plain):
    req = request(*soap("1.1", op("initTOTP", username="alice"), header=header))
    assert plain_taken(endpoints[0], req) is plain
    same(*both(endpoints, req))


@pytest.mark.parametrize("ctype,body", [
    ("text/xml", soap("1.2", op("initTOTP", username="alice"))[1]),  # the other version's envelope
    ("application/soap+xml", soap("1.1", op("initTOTP", username="alice"))[1]),
    ("text/xml", b"<?xml version='1.0' encoding='ISO-8859-1'?>" + soap("1.1", op("initTOTP", username="alice"))[1]),
    ("text/xml", b"not xml"),
    ("text/xml", soap("1.1", op("initTOTP", username="alice"))[1].replace(b"soapenv:Envelope ",
                                                                        b'soapenv:Envelope a="1" ', 1)),
])
def test_other_envelopes(endpoints, ctype, body):
    req = request(ctype, body)
    same(*both(endpoints, req))


@pytest.mark.parametrize("operation,body,query,plain", [
    ("initTOTP", b"username=alice", None, True),
    ("initTOTP", b"username=al%69ce", None, True),
    ("initTOTP", b"username=alice+x", None, True),
    ("validateTOTP", b"verificationCode=1&username=alice", None, True),
    ("initTOTP", b"", {"username": ["alice"]}, True),
    ("initTOTP", b"username=alice&username=bob", None, False),
    ("initTOTP", b"username=", None, False),
    ("initTOTP", b"username", None, False),
    ("initTOTP", b"username=alice&extra=1", None, False),
    ("initTOTP", b"", None, False),
    ("validateTOTP", b"username=alice", None, False),
    ("initTOTP", b"username=alice", {"username": ["bob"]}, False),
    ("noSuchOperation", b"username=alice", None, False),
    ("initTOTP", b"username=%ff", None, True),
    ("initTOTP", b"username=" + b"a" * (MAX_TEXT + 1), None, False),
    ("initTOTP", b"username=alice" + b"".join(b"&f%d=" % i for i in range(70)), None, False),
])
def test_forms(endpoints, operation, body, query, plain):
    req = request(FORM, body, operation, query=query)
    assert plain_taken(endpoints[0], req) is plain
    same(*both(endpoints, req))


def test_get_with_query(endpoints):
    req = request("", b"", "isTOTPEnabled", method="GET", query={"username": ["alice"]})
    assert plain_taken(endpoints[0], req)
    same(*both(endpoints, req))


@pytest.mark.parametrize("inner", [op("isTOTPEnabled", username="alice"), ODD_SOAP[2]],
                         ids=["fast path", "spyne"])
def test_a_cached_login_is_confirmed_in_the_call_and_checked_again_when_it_changed(endpoints, inner):
    """A call with a cached login confirms it in the call's transaction; when the password changed since,
    the call is rolled back and answered as a failed login (as the throttle needs), on either path."""
    fast, _ = endpoints
    req = request(*soap("1.1", inner))
    assert fast.handle(req).authenticated is True  # verified, now cached
    assert fast.login_state(req) is CacheState.CACHED
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with fast.services.db.transaction() as unit:
        unit.users.set_password(UserRef(SUPER_TENANT, "admin"), hasher.hash("new-pw"))
        audited = unit.connection.execute(text("SELECT count(*) FROM audit_events")).scalar()
    reply = fast.handle(req)
    assert (reply.status, reply.authenticated) == (500, False)
    assert "Authentication failed" in reply.body.decode()
    assert fast.login_state(req) is CacheState.MISSING
    with fast.services.db.transaction(read_only=True) as unit:
        outcomes = unit.connection.execute(text(
            "SELECT outcome FROM audit_events ORDER BY id")).scalars().all()[audited:]
    assert outcomes == ["auth-failed"], "the rolled-back call left no audit row of its own"
    ok = fast.handle(replace(req, credentials=("admin", "new-pw")))
    assert (ok.status, ok.authenticated) == (200, True)
