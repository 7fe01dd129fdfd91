"""Axis2's output bytes: response elements, SOAP 1.1/1.2 envelopes and faults.

Axis2 (through Axiom/StAX) writes the service namespace with the prefix ``ns`` declared on the body's
first element, escapes a carriage return as ``&#xd;``, and puts an XML declaration before envelopes but
not before the bare elements of its HTTP (REST) binding. Clients parse XML, yet scripts grep for
``ns:return``, so we write the same bytes.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from lxml import etree

from .names import EXCEPTION_NS, SOAP11_ENV, SOAP12_ENV, TNS, XSI

XML_DECLARATION = b"<?xml version='1.0' encoding='UTF-8'?>"
_XSI_NIL = f"{{{XSI}}}nil"


# Characters XML 1.0 cannot carry at all, even escaped: echoed input containing them becomes '?'.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def has_non_xml(value: str) -> bool:
    return _NOT_XML.search(value) is not None


def text(value: str) -> str:
    return escape(_NOT_XML.sub("?", value)).replace("\r", "&#xd;")


def element(el: etree._Element) -> bytes:
    """``el`` (a response wrapper built by spyne) written the Axis2 way."""
    parts: list[str] = []
    _write(el, parts, root=True)
    return "".join(parts).encode("utf-8")


def _write(el: etree._Element, out: list[str], root: bool) -> None:
    qname = etree.QName(el)
    name = f"ns:{qname.localname}" if qname.namespace == TNS else qname.localname
    attrs = f' xmlns:ns="{TNS}"' if root else ""
    if el.get(_XSI_NIL) == "true":
        out.append(f'<{name}{attrs} xmlns:xsi="{XSI}" xsi:nil="true"/>')
        return
    children = [c for c in el if isinstance(c.tag, str)]
    if not children and not el.text:
        out.append(f"<{name}{attrs}/>" if root or el.text is None else f"<{name}{attrs}></{name}>")
        return
    out.append(f"<{name}{attrs}>")
    if el.text:
        out.append(text(el.text))
    for child in children:
        _write(child, out, root=False)
    out.append(f"</{name}>")


def _envelope(namespace: str, body: bytes) -> bytes:
    return (XML_DECLARATION + f'<soapenv:Envelope xmlns:soapenv="{namespace}"><soapenv:Body>'.encode()
            + body + b"</soapenv:Body></soapenv:Envelope>")


def soap11_envelope(body: bytes) -> bytes:
    return _envelope(SOAP11_ENV, body)


def soap12_envelope(body: bytes) -> bytes:
    return _envelope(SOAP12_ENV, body)


def totp_exception_detail() -> str:
    """The detail of a declared TOTPException: the Java exception has no bean properties, so it is empty."""
    return (
        f'<ns:TOTPAdminServiceTOTPException xmlns:ns="{TNS}">'
        f'<ns:TOTPException xmlns:ax2121="{EXCEPTION_NS}" xmlns:xsi="{XSI}" xsi:type="ax2121:TOTPException"/>'
        f"</ns:TOTPAdminServiceTOTPException>"
    )


def soap11_fault(code: str, reason: str, detail: str) -> bytes:
    """``code`` is ``Server`` or ``Client``; ``detail`` the inner XML of <detail> ("" for an empty one)."""
    detail_xml = f"<detail>{detail}</detail>" if detail else "<detail/>"
    fault = (
        f"<soapenv:Fault><faultcode>soapenv:{code}</faultcode>"
        f"<faultstring>{text(reason)}</faultstring>{detail_xml}</soapenv:Fault>"
    )
    return soap11_envelope(fault.encode("utf-8"))


def soap12_fault(code: str, reason: str, detail: str) -> bytes:
    """``code`` is ``Receiver`` or ``Sender``."""
    detail_xml = f"<soapenv:Detail>{detail}</soapenv:Detail>" if detail else "<soapenv:Detail/>"
    fault = (
        f"<soapenv:Fault><soapenv:Code><soapenv:Value>soapenv:{code}</soapenv:Value></soapenv:Code>"
        f'<soapenv:Reason><soapenv:Text xml:lang="en-US">{text(reason)}</soapenv:Text></soapenv:Reason>'
        f"{detail_xml}</soapenv:Fault>"
    )
    return soap12_envelope(fault.encode("utf-8"))


def rest_fault(reason: str, detail: str) -> bytes:
    """Axis2's HTTP binding writes only the detail's first element, or the reason when there is none."""
    return (detail or f"<faultstring>{text(reason)}</faultstring>").encode("utf-8")
