"""Hostile request bodies for scripts/bench.py: every costly shape we could think of, as large as it can be.

Each body calls ``isTOTPEnabled`` for ``admin`` (SOAP 1.1 unless the shape says otherwise) with one
construct repeated or grown until the next step would pass the size it aims at:

- 1 MiB (``TOTP_MAX_BODY_BYTES``, what the transport buffers): the cost of receiving a body at all (TLS,
  Twisted, the copy), and of refusing it by size; and a body in as many chunks as ``server/site.py``
  allows (wrk cannot send tiny TLS records, the other per-read cost it bounds);
- the largest XML or form body the bindings parse (``protocols/soap/body_limits.py``), one shape per cost:
  attributes (spyne's handling of them through lxml is quadratic), namespaces, elements, depth, references,
  CDATA, comments, processing instructions, long names, long texts (ASCII, 2- and 3-byte UTF-8), attribute
  values, whitespace in a tag, the DTD check's regex, the form decoding; most are refused by a limit;
- shapes that stay just within every limit at once, which spyne reads in full.

``bench.py`` sends each and reads the server's CPU per request, as a ratio to a normal call (b).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from totpadmin.protocols.soap import body_limits as limits
from totpadmin.server.site import MAX_BODY_PIECES

TNS = "http://services.totp.authenticator.application.identity.carbon.wso2.org"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_TYPE, SOAP12_TYPE = "text/xml; charset=UTF-8", "application/soap+xml; charset=UTF-8"
XML_TYPE, FORM_TYPE = "application/xml; charset=UTF-8", "application/x-www-form-urlencoded"

OPEN = f'<ns:isTOTPEnabled xmlns:ns="{TNS}">'.encode()
CLOSE = b"</ns:isTOTPEnabled>"
USER = b"<ns:username>admin</ns:username>"

TOO_LONG = f"The request body is longer than {limits.MAX_XML_BYTES} bytes"
MARKUP = f"more than {limits.MAX_MARKUP} tags"
REFERENCES = f"more than {limits.MAX_REFERENCES} character or entity references"
ATTRIBUTES = f"more than {limits.MAX_ATTRIBUTES} attributes and namespace declarations"
NAMESPACES = f"more than {limits.MAX_NAMESPACES} namespaces"
HREFS = f"more than {limits.MAX_HREFS} SOAP-encoding references"
TEXT = f"longer than {limits.MAX_TEXT} characters"
FORM_TOO_LONG = f"The form body is longer than {limits.MAX_FORM_BYTES} bytes"
FIELDS = f"more than {limits.MAX_FORM_FIELDS} fields"
ESCAPES = f"more than {limits.MAX_FORM_ESCAPES} %-escapes"
ANSWERED = "isTOTPEnabledResponse"


@dataclass(frozen=True)
class Hostile:
    key: str
    label: str
    content_type: str
    body: bytes
    expect: int = 500  # the HTTP status of its answer
    reason: str = ""  # text the answer (body or X-Fault-Reason) must contain
    operation_in_path: bool = False  # the HTTP binding (form, application/xml): POST .../isTOTPEnabled
    chunk_bytes: int = 0  # sent with Transfer-Encoding: chunked, in chunks of this many bytes


def grow(size: int, pre: bytes, piece: Callable[[int], bytes], post: bytes, close: bytes = b"",
         most: int | None = None) -> bytes:
    """``pre`` + piece(0) + piece(1) + ... (+ ``close`` once per piece, after them all) + ``post``: as many
    pieces as fit in ``size`` bytes (at most ``most``)."""
    room = size - len(pre) - len(post)
    parts, used = [], 0
    while most is None or len(parts) < most:
        p = piece(len(parts))
        if used + len(p) + len(close) > room:
            break
        parts.append(p)
        used += len(p) + len(close)
    return pre + b"".join(parts) + close * len(parts) + post


def repeat(unit: bytes) -> Callable[[int], bytes]:
    return lambda i: unit


def soap(inner: bytes, version: str = SOAP11, user: bytes = USER) -> tuple[bytes, bytes]:
    """(pre, post) of an envelope whose operation element holds ``user``, then the filling."""
    pre = f'<e:Envelope xmlns:e="{version}"><e:Body>'.encode() + OPEN + user + inner
    return pre, CLOSE + b"</e:Body></e:Envelope>"


def filled(key: str, label: str, size: int, piece: Callable[[int], bytes], *, before: bytes = b"",
           after: bytes = b"", close: bytes = b"", user: bytes = USER, most: int | None = None, **answer) -> Hostile:
    """SOAP 1.1: the operation element holds ``user``, ``before``, the pieces, ``after``."""
    pre, post = soap(before, user=user)
    return Hostile(key, label, SOAP11_TYPE, grow(size, pre, piece, after + post, close, most), **answer)


def on_operation(key: str, label: str, size: int, piece: Callable[[int], bytes], *, version: str = SOAP11,
                 xml_binding: bool = False, **answer) -> Hostile:
    """The pieces inside the operation element's start tag (attributes, namespace declarations)."""
    head = f'<ns:isTOTPEnabled xmlns:ns="{TNS}"'.encode()
    pre, post = (head, b">" + USER + CLOSE) if xml_binding else \
        (f'<e:Envelope xmlns:e="{version}"><e:Body>'.encode() + head, b">" + USER + CLOSE + b"</e:Body></e:Envelope>")
    content_type = XML_TYPE if xml_binding else SOAP11_TYPE if version == SOAP11 else SOAP12_TYPE
    return Hostile(key, label, content_type, grow(size, pre, piece, post), operation_in_path=xml_binding, **answer)


def form(key: str, label: str, size: int, pre: bytes, piece: Callable[[int], bytes], *, most: int | None = None,
         **answer) -> Hostile:
    return Hostile(key, label, FORM_TYPE, grow(size, pre, piece, b"", most=most), operation_in_path=True, **answer)


def within_limits() -> bytes:
    """One envelope at every limit at once: as many tags, attributes, namespaces, references and levels
    as allowed, texts of MAX_TEXT 2-byte characters, and the rest of the bytes in long element names."""
    pre, post = soap(b"")
    used_lt, used_eq, used_ns = (pre + post).count(b"<"), (pre + post).count(b"="), (pre + post).count(b"xmlns")
    # Namespaces: elements declaring one each (each also takes an '=' and two '<').
    parts = [b'<p%d:n xmlns:p%d="u"/>' % (i, i) for i in range(limits.MAX_NAMESPACES - used_ns)]
    used_eq += len(parts)
    # Attributes: elements with MAX_ELEMENT_ATTRIBUTES each, until the '=' are spent.
    while used_eq < limits.MAX_ATTRIBUTES:
        n = min(limits.MAX_ELEMENT_ATTRIBUTES, limits.MAX_ATTRIBUTES - used_eq)
        parts.append(b"<a " + b" ".join(b'a%d="v"' % j for j in range(n)) + b"/>")
        used_eq += n
    # Depth: nested elements down to MAX_DEPTH (the operation element is at 3), the innermost holding the
    # references.
    nest = limits.MAX_DEPTH - 3
    parts.append(b"<d>" * nest + b"&#233;" * limits.MAX_REFERENCES + b"</d>" * nest)
    used_lt += sum(p.count(b"<") for p in parts)
    texts_and_names = []
    size = len(pre + post) + sum(map(len, parts))
    text = "\u00e9".encode() * limits.MAX_TEXT
    while used_lt + 2 <= limits.MAX_MARKUP and size + len(text) + 7 <= limits.MAX_XML_BYTES:
        texts_and_names.append(b"<t>" + text + b"</t>")
        used_lt, size = used_lt + 2, size + len(text) + 7
    while used_lt + 1 <= limits.MAX_MARKUP and size + 4 <= limits.MAX_XML_BYTES:
        name = min(40_000, limits.MAX_XML_BYTES - size - 3)
        texts_and_names.append(b"<" + b"n" * name + b"/>")
        used_lt, size = used_lt + 1, size + name + 3
    return pre + b"".join(parts + texts_and_names) + post


def hrefs(referrers: int) -> bytes:
    """SOAP-encoding references (spyne copies the referenced element's attributes into each referrer) to an
    element with MAX_ELEMENT_ATTRIBUTES attributes."""
    pre, post = soap(b"")
    target = b'<x id="t" ' + b" ".join(b'a%d="v"' % j for j in range(limits.MAX_ELEMENT_ATTRIBUTES - 1)) + b"/>"
    return pre + b'<r href="#t"/>' * referrers + target + post


def href_cycle() -> bytes:
    """The username refers to an element that refers, through another, back to itself."""
    return (f'<e:Envelope xmlns:e="{SOAP11}"><e:Body>'.encode() + OPEN + b'<ns:username href="#a"/>' + CLOSE
            + b'<m id="a"><k href="#b"/></m><m id="b"><k href="#a"/></m></e:Body></e:Envelope>')


def bodies(transport_limit: int) -> list[Hostile]:
    """Every hostile shape, for a server whose body limit (TOTP_MAX_BODY_BYTES) is ``transport_limit``."""
    big, xml, form_size = transport_limit, limits.MAX_XML_BYTES, limits.MAX_FORM_BYTES
    fields = limits.MAX_FORM_FIELDS
    escaped = limits.MAX_FORM_ESCAPES // 2 // (fields - 1)  # characters (2 escapes each) per field of xmaxform
    boundary = b"b0undary"
    part = b"--" + boundary + b'\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n'
    return [
        # What receiving a body costs at all.
        Hostile("x415", "1 MiB of an unserved type (415): transport only", "text/plain", b"x" * big, expect=415,
                reason="Unsupported Content-Type"),
        Hostile("x413", "1 MiB + 1 byte (413)", SOAP11_TYPE, b"x" * (big + 1), expect=413, reason="too large"),
        filled("xbig", "1 MiB envelope (one text)", big, repeat(b"a"), before=b"<ns:x>", after=b"</ns:x>",
               reason=TOO_LONG),
        form("xbigform", "1 MiB form of %-escapes", big, b"username=", repeat(b"%41"), reason=FORM_TOO_LONG),
        Hostile("xmultipart", "1 MiB multipart/form-data (415)", f"multipart/form-data; boundary={boundary.decode()}",
                grow(big, b"", lambda i: part % i, b"--" + boundary + b"--\r\n"), expect=415,
                reason="Unsupported Content-Type", operation_in_path=True),
        Hostile("xchunks", f"form in {MAX_BODY_PIECES - 1} one-byte chunks (more: the connection is dropped)",
                FORM_TYPE, b"username=admin&p=" + b"x" * (MAX_BODY_PIECES - 1 - 17), expect=200, reason=ANSWERED,
                operation_in_path=True, chunk_bytes=1),
        # As large as the bindings read: one costly construct each.
        on_operation("xattrs", "attributes on the operation element", xml, lambda i: b' a%d="v"' % i,
                     reason=ATTRIBUTES),
        on_operation("xattrs12", "attributes on the operation element, SOAP 1.2", xml, lambda i: b' a%d="v"' % i,
                     version=SOAP12, reason=ATTRIBUTES),
        on_operation("xattrsxml", "attributes on the operation element, XML HTTP binding", xml,
                     lambda i: b' a%d="v"' % i, xml_binding=True, reason=ATTRIBUTES),
        on_operation("xns", "namespace declarations on the operation element", xml,
                     lambda i: b' xmlns:p%d="u"' % i, reason=NAMESPACES),
        filled("xnsel", "elements declaring a namespace each", xml, lambda i: b'<p:a xmlns:p="u%d"/>' % i,
               reason=MARKUP),
        filled("xelems", "empty elements", xml, repeat(b"<a/>"), reason=MARKUP),
        filled("xdeep", "nested elements", xml, repeat(b"<a>"), close=b"</a>", reason=MARKUP),
        filled("xcharref", "character references", xml, repeat(b"&#65;"), before=b"<x>", after=b"</x>",
               reason=REFERENCES),
        filled("xentref", "entity references", xml, repeat(b"&lt;"), before=b"<x>", after=b"</x>",
               reason=REFERENCES),
        filled("xattrref", "entity references in an attribute value", xml, repeat(b"&lt;"), before=b'<x a="',
               after=b'"/>', reason=REFERENCES),
        filled("xcdatas", "empty CDATA sections", xml, repeat(b"<![CDATA[]]>"), reason=MARKUP),
        filled("xcomments", "empty comments", xml, repeat(b"<!---->"), reason=MARKUP),
        filled("xpis", "processing instructions", xml, repeat(b"<?a?>"), reason=MARKUP),
        filled("xbang", "'<!' repeated (the DTD check's regex)", xml, repeat(b"<!"), reason=MARKUP),
        filled("xtext", "one text", xml, repeat(b"a"), before=b"<x>", after=b"</x>", reason=TEXT),
        filled("xutf8", "one text of 2-byte UTF-8 characters", xml, repeat("\u00e9".encode()), before=b"<x>",
               after=b"</x>", reason=TEXT),
        filled("xutf8x3", "one text of 3-byte UTF-8 characters", xml, repeat("\u4e00".encode()), before=b"<x>",
               after=b"</x>", reason=TEXT),
        filled("xusername", "one username", xml, repeat(b"a"), user=b"", before=b"<ns:username>",
               after=b"</ns:username>", reason=TEXT),
        filled("xcdata", "one CDATA section", xml, repeat(b"a"), before=b"<x><![CDATA[", after=b"]]></x>",
               reason=TEXT),
        filled("xcomment", "one comment (spyne's parser drops comments)", xml, repeat(b"a"), before=b"<!--",
               after=b"-->", expect=200, reason=ANSWERED),
        filled("xpi", "one processing instruction", xml, repeat(b"a"), before=b"<?pi ", after=b"?>", expect=200,
               reason=ANSWERED),
        filled("xattrval", "one attribute value", xml, repeat(b"v"), before=b'<x a="', after=b'"/>', expect=200,
               reason=ANSWERED),
        filled("xattrtabs", "one attribute value of tabs (normalized)", xml, repeat(b"\t"), before=b'<x a="',
               after=b'"/>', expect=200, reason=ANSWERED),
        filled("xspace", "whitespace inside a tag", xml, repeat(b" "), before=b"<x", after=b"/>", expect=200,
               reason=ANSWERED),
        filled("xnames", "elements with 30,000-character names", xml, lambda i: b"<" + b"n" * 30_000 + b"/>",
               expect=200, reason=ANSWERED),
        form("xescapes", "form: %-escapes in one field", form_size, b"username=", repeat(b"%41"), reason=ESCAPES),
        form("xfields", "form: empty fields", form_size, b"", lambda i: b"f%d=&" % i, reason=FIELDS),
        form("xform", "form: one long field", form_size, b"username=", repeat(b"a"), reason=TEXT),
        form("xplus", "form: '+' in one field", form_size, b"username=", repeat(b"+"), reason=TEXT),
        # Just within every limit: spyne reads these in full.
        Hostile("xmax", "at every XML limit at once (tags, '=', namespaces, references, depth, texts, names)",
                SOAP11_TYPE, within_limits(), expect=200, reason=ANSWERED),
        filled("xmaxtags", "as many tags and attributes as allowed (elements of one attribute)", xml,
               lambda i: b'<a b="v">t</a>', reason=ANSWERED, expect=200,
               most=min(limits.MAX_MARKUP // 2, limits.MAX_ATTRIBUTES) - 5),
        Hostile("xhrefs", "as many href references as '=' allow, to an element with the most attributes",
                SOAP11_TYPE, hrefs(limits.MAX_ATTRIBUTES - limits.MAX_ELEMENT_ATTRIBUTES - 2), reason=HREFS),
        Hostile("xmaxhrefs", "as many href references as allowed, to an element with the most attributes",
                SOAP11_TYPE, hrefs(limits.MAX_HREFS), expect=200, reason=ANSWERED),
        Hostile("xhrefcycle", "an href cycle (spyne would recurse to Python's recursion limit)", SOAP11_TYPE,
                href_cycle(), reason="inside a referenced element"),
        form("xmaxform", "form at every limit (fields, %-escapes, size)", form_size, b"username=admin",
             lambda i: b"&f%d=" % i + b"%C3%A9" * escaped + b"e" * (form_size // fields - 6 - 6 * escaped),
             most=fields - 1, expect=200, reason=ANSWERED),
    ]
