"""Helpers for talking to the service as legacy clients do: raw envelopes, zeep clients from our WSDL."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import requests
import zeep
import zeep.transports

from conftest import TNS, Server

WSDL = Path(__file__).resolve().parent.parent / "wsdl" / "TOTPAdminService.wsdl"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"


class _FromAddress(requests.adapters.HTTPAdapter):
    def __init__(self, address: str):
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, source_address=(self._address, 0), **kwargs)


def from_address(session: requests.Session, address: str) -> requests.Session:
    """``session``, connecting from ``address``: another loopback address (127.0.0.2, ...) is another
    client as far as the server can tell."""
    for scheme in ("http://", "https://"):
        session.mount(scheme, _FromAddress(address))
    return session


def soap11(operation: str, username: str | None) -> bytes:
    child = f"<ns:username>{username}</ns:username>" if username is not None else ""
    return (f'<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Header/><soapenv:Body>'
            f'<ns:{operation} xmlns:ns="{TNS}">{child}</ns:{operation}></soapenv:Body></soapenv:Envelope>').encode()


def soap12(operation: str, username: str | None) -> bytes:
    child = f"<ns:username>{username}</ns:username>" if username is not None else ""
    return (f'<soap:Envelope xmlns:soap="{SOAP12}"><soap:Body>'
            f'<ns:{operation} xmlns:ns="{TNS}">{child}</ns:{operation}></soap:Body></soap:Envelope>').encode()


def post_soap11(session: requests.Session, url: str, operation: str, username: str | None) -> requests.Response:
    return session.post(url, data=soap11(operation, username),
                        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": f'"urn:{operation}"'})


def post_soap12(session: requests.Session, url: str, operation: str, username: str | None) -> requests.Response:
    return session.post(url, data=soap12(operation, username),
                        headers={"Content-Type": f'application/soap+xml; charset=UTF-8; action="urn:{operation}"'})


def zeep_client(server: Server, port: str = "TOTPAdminServiceHttpsSoap11Endpoint", wsdl: str | None = None):
    """A zeep client built from a WSDL (ours by default), bound to ``port`` of the running server."""
    session = server.session()
    client = zeep.Client(wsdl or str(WSDL), transport=zeep.transports.Transport(session=session),
                         settings=zeep.Settings(strict=True))
    service = client.bind("TOTPAdminService", port)
    address = service._binding_options["address"]
    service._binding_options["address"] = server.base + urlsplit(address).path
    return client, service


def decode_qr(returned: str) -> str:
    """The otpauth URL inside initTOTP's Base64 answer (clients strip the CRLF line breaks first)."""
    return base64.b64decode("".join(returned.split())).decode("utf-8")


def secret_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["secret"][0]


def label_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))
