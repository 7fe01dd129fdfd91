"""How much a request body may hold before the bindings parse it: limits that a real TOTPAdminService call
never comes near (its envelope is under 2 KB, about ten elements; a WS-Addressing header adds a few), so
that no request costs the server more than a small multiple of a normal call. Each breach is a client
fault naming the limit. Two stages:

- :func:`check_xml` and :func:`check_form` look at the raw bytes before any parser does. The size first:
  libxml2 alone spends up to ~13 ns a byte on legal content (long names, 2-byte UTF-8 text, tabs in
  attribute values), ~13 ms for 1 MiB, some 30 normal calls, before any check could see the tree; so
  the bindings read XML and form bodies up to 64 KiB (TOTP_MAX_BODY_BYTES, 1 MiB, stays what the
  transport accepts). Then ``bytes.count`` of what every costly construct needs (C speed: ~20 µs each
  for 64 KiB, well under 1 µs for a normal envelope): ``<`` for each tag, comment, CDATA section or
  processing instruction, ``&`` for each reference, ``xmlns`` for each namespace declaration, ``=`` for
  each attribute or declaration, ``href`` for each SOAP-encoding reference (spyne copies the referenced
  element's attributes into each referrer); in a form, ``&`` for each field and ``%`` for each escape
  (``urllib.parse.unquote`` takes ~0.3 µs for each, in Python). The alternative measured, lxml's
  XMLPullParser fed in chunks with an early abort, took 24 µs for a normal envelope against 6 µs for
  the one parse the fast path does anyway, and cannot abort inside one large construct (87,000
  attributes in one tag: 65 ms).
- :func:`check_tree` checks the document spyne parsed (depth, attributes per element, text length,
  references inside referenced elements) before spyne reads any of it: spyne's attribute handling goes through lxml's ``attrib.items()``,
  quadratic in one element's attributes (see ``upstream_fixes.py``), and the core checks a username
  character by character in Python (~0.1 ms per 1,000). Requests of the plain shape :mod:`.plain_requests`
  reads are within these limits by construction (it leaves anything else to spyne), so they pay only
  for the counts. spyne's parser drops comments, so their text is bounded by the size alone.
"""

from __future__ import annotations

from lxml import etree

from .faults import ServiceFault

MAX_XML_BYTES = 64 * 1024
MAX_MARKUP = 512  # '<': tags (start, end, empty), comments, CDATA sections, processing instructions
MAX_REFERENCES = 1024  # '&': character and entity references (a 255-character username written as &#..; each)
MAX_ATTRIBUTES = 256  # '=': attributes and namespace declarations, in the whole request
MAX_NAMESPACES = 64  # namespace declarations ('xmlns'), in the whole request
MAX_HREFS = 16  # SOAP-encoding references ('href')
MAX_DEPTH = 32
MAX_ELEMENT_ATTRIBUTES = 32
MAX_TEXT = 4096  # characters in one element's text or one form value (a username has at most 255)

MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 64
MAX_FORM_ESCAPES = 2048  # '%': a 255-character username of 4-byte UTF-8 characters has 1020


def _refuse(reason: str) -> ServiceFault:
    return ServiceFault(reason, declared=False, client=True)


def check_size(body: bytes, *, xml: bool) -> None:
    """Raise a client :class:`ServiceFault` if the XML (or form) ``body`` is larger than the bindings read:
    its length alone, cheap enough to answer before any other work on the request."""
    if xml and len(body) > MAX_XML_BYTES:
        raise _refuse(f"The request body is longer than {MAX_XML_BYTES} bytes")
    if not xml and len(body) > MAX_FORM_BYTES:
        raise _refuse(f"The form body is longer than {MAX_FORM_BYTES} bytes")


def check_xml(body: bytes) -> None:
    """Raise a client :class:`ServiceFault` if the XML ``body`` is too large for the bindings to parse."""
    check_size(body, xml=True)
    if body.count(b"<") > MAX_MARKUP:
        raise _refuse(f"The request has more than {MAX_MARKUP} tags, comments or processing instructions")
    if body.count(b"&") > MAX_REFERENCES:
        raise _refuse(f"The request has more than {MAX_REFERENCES} character or entity references")
    if body.count(b"xmlns") > MAX_NAMESPACES:
        raise _refuse(f"The request declares more than {MAX_NAMESPACES} namespaces")
    if body.count(b"=") > MAX_ATTRIBUTES:
        raise _refuse(f"The request has more than {MAX_ATTRIBUTES} attributes and namespace declarations")
    if body.count(b"href") > MAX_HREFS:
        raise _refuse(f"The request has more than {MAX_HREFS} SOAP-encoding references (href)")


def check_tree(root: etree._Element) -> None:
    """Raise a client :class:`ServiceFault` if the parsed request breaks a limit spyne must not meet.
    ``root`` passed :func:`check_xml`, so it has at most ``MAX_MARKUP`` nodes."""
    nodes = 0
    for node in root.iter():
        nodes += 1
        if len(node.attrib) > MAX_ELEMENT_ATTRIBUTES:  # len() walks the list; it looks up no values
            raise _refuse(f"An element of the request has more than {MAX_ELEMENT_ATTRIBUTES} attributes")
        if too_long(node.text) or too_long(node.tail):
            raise _refuse(f"A text in the request is longer than {MAX_TEXT} characters")
    if nodes > MAX_DEPTH and _TOO_DEEP(root):
        raise _refuse(f"The request nests elements more than {MAX_DEPTH} deep")
    if _NESTED_REFERENCE(root):
        raise _refuse("The request has a SOAP-encoding reference (href) inside a referenced element (id)")


_TOO_DEEP = etree.XPath("boolean(" + "/*" * (MAX_DEPTH + 1) + ")")  # an element MAX_DEPTH + 1 levels down
# spyne resolves the references inside a referenced element recursively: a cycle recursed until Python's
# recursion limit (~1 ms, and a RecursionError). No client of this service nests them.
_NESTED_REFERENCE = etree.XPath("boolean(//*[@id]//*[@href])")


def too_long(text: str | None) -> bool:
    return text is not None and len(text) > MAX_TEXT


def check_form(body: bytes) -> None:
    """Raise a client :class:`ServiceFault` if the form ``body`` is too large to decode."""
    check_size(body, xml=False)
    if body.count(b"&") + 1 > MAX_FORM_FIELDS:  # as parse_qs counts them
        raise _refuse(f"The form has more than {MAX_FORM_FIELDS} fields")
    if body.count(b"%") > MAX_FORM_ESCAPES:
        raise _refuse(f"The form has more than {MAX_FORM_ESCAPES} %-escapes")


def check_fields(fields: dict[str, list[str]]) -> None:
    """Raise a client :class:`ServiceFault` if a decoded form or query field is too long."""
    for name, values in fields.items():
        if len(name) > MAX_TEXT or any(len(value) > MAX_TEXT for value in values):
            raise _refuse(f"A form field is longer than {MAX_TEXT} characters")
