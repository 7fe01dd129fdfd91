"""Every workaround for an upstream bug or incompatibility, in one place. Import before spyne.

Each fix names its upstream issue; delete it once a fixed release is pinned.

Not needed because of how we use spyne (we drive spyne's protocols from our own Twisted resource and
never import ``spyne.server.twisted``):
- arskom/spyne#699, #709, PR #685: TwistedWebResource compares ``b"POST"`` with ``"POST"`` (405 on every
  SOAP call) and ``_reconstruct_url`` mixes str and bytes (500 on ``?wsdl``).
- twisted/twisted#12361: ``twisted.python.constants`` removed in 24.11, imported by spyne's Twisted transport.
- arskom/spyne#712: Python 3.13 removed ``cgi``; spyne's SOAP protocol imports it. pyproject.toml installs
  ``legacy-cgi`` there, which provides the module, so no code is needed.

Bounded instead of patched:
- lxml's ``_Element.items()`` / ``attrib.items()`` / ``values()`` look every attribute up again by name
  (``_attributeValue`` calls libxml2's ``xmlGetNsProp``, which walks the element's attribute list), so
  they are quadratic in one element's attributes: 10,000 take 0.16 s, 40,000 about 8 s. spyne reads every
  element of a request that way (``XmlDocument.complex_from_element``, ``soap11.resolve_hrefs``). No
  upstream report found (lxml's tracker is bugs.launchpad.net/lxml). ``api/body_limits.py`` refuses an
  element with more than 32 attributes (and a request with more than 256) before spyne reads it.
- spyne's ``soap11.resolve_hrefs`` follows SOAP-encoding references recursively with no cycle check: a
  cycle recursed to Python's limit (~1 ms, then a RecursionError), and each reference copies the referenced
  element's attributes. No upstream report found; ``api/body_limits.py`` allows 16 references and none
  inside a referenced element.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path


def _patch_spyne_six() -> None:
    """arskom/spyne#700, #708, #711 (fixed on master by PR #704, never released): spyne 2.14 vendors six
    1.14 (with two spyne additions), whose meta-path importer has no ``find_spec``; Python 3.12 dropped
    the ``find_module`` fallback, so ``import spyne`` fails with "No module named 'spyne.util.six.moves'".

    Load spyne's own six under its name before spyne does, and give its importer the three methods six
    1.16 added (``find_spec``, ``create_module``, ``exec_module``).
    """
    if "spyne.util.six" in sys.modules:
        return
    spyne_spec = importlib.util.find_spec("spyne")
    if spyne_spec is None or not spyne_spec.submodule_search_locations:
        return  # spyne is not installed; importing it will say so
    path = Path(spyne_spec.submodule_search_locations[0]) / "util" / "six.py"
    spec = importlib.util.spec_from_file_location("spyne.util.six", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["spyne.util.six"] = module
    spec.loader.exec_module(module)
    importer = module._SixMetaPathImporter
    if not hasattr(importer, "find_spec"):
        importer.find_spec = lambda self, fullname, path=None, target=None: (
            importlib.util.spec_from_loader(fullname, self) if fullname in self.known_modules else None
        )
        importer.create_module = lambda self, spec: self.load_module(spec.name)
        importer.exec_module = lambda self, module: None


def _quiet_spyne_logging() -> None:
    """spyne logs every Fault, expected ones included, with a full traceback (spyne.application and
    spyne.application.client), every unparseable request body at ERROR with the body in the message
    (spyne.server._base, spyne.protocol.soap.soap11.invalid), and at DEBUG the decoded form fields,
    verification codes included (spyne.protocol.http, spyne.protocol.dictdoc). Our api layer logs each
    outcome itself, without request data: spyne's own logging is limited to warnings, and the fault and
    invalid-body loggers are off."""
    logging.getLogger("spyne").setLevel(logging.WARNING)
    for name in ("spyne.application", "spyne.application.client", "spyne.application.server",
                 "spyne.server._base", "spyne.protocol.soap.soap11.invalid", "spyne.protocol.xml"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def http_channel():
    """twisted/twisted#4892, #4229: when a request header line exceeds LineReceiver.MAX_LENGTH,
    HTTPChannel drops the connection while its producer is registered, so over TLS the client gets no
    answer until the idle timeout. This HTTPChannel answers 431 and closes at once. Twisted is imported
    here, not at module level: the api layer imports this module and stays free of Twisted."""
    from twisted.web import http

    class AnsweringHTTPChannel(http.HTTPChannel):
        def lineLengthExceeded(self, line):
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                 b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            self.loseConnection()

    return AnsweringHTTPChannel


def missing_reason_phrases() -> dict[int, bytes]:
    """Reason phrases for the statuses Twisted's table lacks, to pass to ``Request.setResponseCode``.
    Twisted (26.10) has no 429 (RFC 6585) in ``twisted.web.http.RESPONSES`` and sends "429 Unknown
    Status"; no upstream issue found. The phrases come from the standard library's table."""
    from http import HTTPStatus

    from twisted.web import http

    return {int(s): s.phrase.encode("ascii") for s in HTTPStatus if int(s) not in http.RESPONSES}


def stop_decoding_body(channel) -> None:
    """twisted/twisted#4898, #10191 (open): twisted.web has no way to stop reading a request body. A
    chunked body is decoded chunk by chunk from all the data received at once (one TLS record, up to
    16 KiB: ~2,700 one-byte chunks at ~3 µs each), even after the transport was aborted. Emptying the
    decoder's buffer ends its loop after the chunk being delivered."""
    decoder = getattr(channel, "_transferDecoder", None)
    buffer = getattr(decoder, "_buffer", None)
    if isinstance(buffer, bytearray):
        del buffer[:]


def memoize_content_type_parsing() -> None:
    """Twisted parses a POST's Content-Type in ``Request.requestReceived`` with ``twisted.web.http.
    _parseContentType``, which builds an ``email.message.EmailMessage`` per request (its replacement
    for ``cgi.parse_header``, removed by PEP 594): 8 % of the server's CPU per SOAP call in our profile,
    to learn whether the body is a form. No upstream issue yet. The function is pure and clients send a
    handful of distinct values, so a small bounded cache gives the same answers without the cost."""
    import functools

    from twisted.web import http

    if not hasattr(http._parseContentType, "cache_info"):
        http._parseContentType = functools.lru_cache(maxsize=64)(http._parseContentType)


def send_tcp_writes_at_once() -> None:
    """twisted/twisted#5303 (open since 2011): a TCP transport's ``write`` only buffers. The bytes leave
    on a later loop iteration, once epoll reports the socket writable, which costs that iteration and
    two ``epoll_ctl`` calls (watch for writable, stop watching) per answer. Over TLS it comes on top of
    Twisted's own deferral (``BufferingTLSTransport`` gathers an answer's writes and hands them to TCP
    at the start of the next iteration), so an answer took two iterations to leave instead of one:
    ~0.2 reactor iterations and ~1-3 % of the CPU per SOAP call.

    When nothing is waiting in the buffer, send at once and buffer only what the kernel did not take, so
    order is kept. Everything else takes Twisted's own path: a connection that is closing or half-closed,
    one with a pull producer (which only ``doWrite`` asks for more), and a send that fails (``doWrite``
    meets the error again and closes the connection as usual). ``writeSequence`` keeps buffering: plain
    HTTP writes an answer's headers with it and then its body with ``write``, which so leave in one send
    instead of two (HTTPChannel sets TCP_NODELAY, so nothing would hold the second back; over TLS both
    reach TCP as one write anyway). Twisted is imported here, not at module level: the api layer imports
    this module and stays free of Twisted."""
    from twisted.internet import tcp

    if getattr(tcp.Connection.write, "sends_at_once", False):
        return
    buffered_write = tcp.Connection.write  # abstract.FileDescriptor's

    def may_send_now(connection) -> bool:
        return (connection.connected and not connection.disconnecting and not connection._writeDisconnecting
                and not connection._writeDisconnected and not connection.dataBuffer
                and not connection._tempDataBuffer
                and (connection.producer is None or connection.streamingProducer))

    def write(self, data):
        if type(data) is bytes and data and may_send_now(self):
            sent = self.writeSomeData(data)  # at most SEND_LIMIT bytes; 0 if the socket would block
            if not isinstance(sent, int):
                buffered_write(self, data)  # the connection is lost: doWrite reports it
                return
            if sent == len(data):
                return
            data = data[sent:]
        buffered_write(self, data)

    write.sends_at_once = True
    tcp.Connection.write = write


def apply() -> None:
    _patch_spyne_six()
    _quiet_spyne_logging()


apply()
