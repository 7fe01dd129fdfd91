"""The service's three Axis2 bindings (SOAP 1.1, SOAP 1.2, HTTP), each a spyne Application driven
by a minimal spyne server, answering in Axis2's bytes.

spyne reads the request (envelope or form), finds the operation, checks and converts the argument, and
builds the response element (its XmlDocument protocol); :mod:`.axis2_xml` writes that element, the
envelope and faults the way Axis2 does. Requests of the plain shapes nearly every client sends are read
by :mod:`.plain_requests` instead, to the same effect at a fraction of the CPU. No body is parsed before
:mod:`.body_limits` has checked it.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, quote

from spyne import Application, MethodContext
from spyne.protocol import ProtocolBase
from spyne.protocol.http import HttpRpc
from spyne.protocol.soap import Soap11, Soap12
from spyne.protocol.xml import XmlDocument
from spyne.server._base import ServerBase
from spyne.server.http import HttpTransportContext

from ..messages import ApiReply, ApiRequest
from . import axis2_xml, body_limits, faults, plain_requests
from .names import SERVICE_NAME, SOAP11_ENV, SOAP12_ENV, TNS
from .service import SoapCall, TOTPAdminService

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
MAX_REASON_HEADER = 512
# A SOAP message must not contain a DTD (SOAP 1.1 section 3, SOAP 1.2 part 1 section 5); refusing any
# declaration outright rules out external entities and entity expansion whatever the parser does.
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class _Transport(HttpTransportContext):
    """What spyne's protocols ask of the transport, answered from an :class:`ApiRequest`."""

    def __init__(self, ctx, server, request: ApiRequest):
        super().__init__(ctx, server, request, request.content_type)
        self._request = request

    def get_request_method(self):
        return self._request.method

    def get_request_content_type(self):
        return self._request.content_type


class _Bounded:
    """Mixed into spyne's XML protocols: the document spyne just parsed meets :func:`.body_limits.check_tree`
    before spyne reads anything of it (ids and hrefs, headers, arguments). Soft validation: spyne then
    refuses a repeated parameter (as the form binding does) instead of keeping the last one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, validator="soft", **kwargs)

    def create_in_document(self, ctx, charset=None):
        super().create_in_document(ctx, charset)
        document = ctx.in_document  # SOAP: (root, ids)
        body_limits.check_tree(document[0] if isinstance(document, tuple) else document)


class _Soap11(_Bounded, Soap11):
    pass


class _Soap12(_Bounded, Soap12):
    pass


class _XmlDocument(_Bounded, XmlDocument):
    pass


class _Server(ServerBase):
    transport = "http://schemas.xmlsoap.org/soap/http"

    def decompose_incoming_envelope(self, prot, ctx, message):
        """Called by HttpRpc: the operation is the last path segment, arguments the form fields."""
        request: ApiRequest = ctx.transport.req
        ctx.in_header_doc = {}
        ctx.in_body_doc = _form_fields(request)
        ctx.method_request_string = f"{{{TNS}}}{request.operation or ''}"


def _form_fields(request: ApiRequest) -> dict[str, list[str]]:
    fields = {k: list(v) for k, v in request.query.items()}
    if request.method == "POST" and request.content_type == FORM and request.body:
        body_limits.check_form(request.body)
        try:
            body = request.body.decode("utf-8")
            parsed = parse_qs(body, keep_blank_values=True, strict_parsing=False,
                              max_num_fields=body_limits.MAX_FORM_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise faults.ServiceFault("The form body is not valid UTF-8 URL-encoded data",
                                      declared=False, client=True) from None
        for key, values in parsed.items():
            fields.setdefault(key, []).extend(values)
    body_limits.check_fields(fields)
    return fields


def _response_element(ctx: MethodContext) -> bytes:
    """The response element of ``ctx.out_object`` as spyne builds it, written the Axis2 way."""
    ctx.out_protocol.serialize(ctx, message=ProtocolBase.RESPONSE)
    return axis2_xml.element(ctx.out_document)


class Binding:
    """One way of calling the service. Subclasses say how replies and faults are framed."""

    content_type = ""
    reads_xml = True

    def __init__(self, in_protocol: ProtocolBase, *, read_plain: bool = True):
        self._read_plain = read_plain
        app = Application([TOTPAdminService], tns=TNS, name=SERVICE_NAME,
                          in_protocol=in_protocol, out_protocol=XmlDocument())
        self._server = _Server(app)

    def call(self, request: ApiRequest, call: SoapCall) -> ApiReply:
        if self.reads_xml:
            try:
                body_limits.check_xml(request.body)
            except faults.ServiceFault as fault:
                return self.fault(fault, request.operation)
            try:
                request.body.decode("utf-8")
            except UnicodeDecodeError:
                return self.fault(faults.ServiceFault("The request body is not valid UTF-8", declared=False,
                                                      client=True), request.operation)
            if _DTD.search(request.body):
                return self.fault(faults.ServiceFault("DTDs and entity declarations are not allowed", declared=False,
                                                      client=True), request.operation)
        plain = self.plain_arguments(request) if self._read_plain else None
        if plain is not None:
            return self._call_plain(*plain, call)
        ctx = MethodContext(self._server, MethodContext.SERVER)
        ctx.udc = call
        ctx.in_string = [request.body]
        ctx.transport = _Transport(ctx, self._server, request)
        try:
            (ctx, *_aux) = self._server.generate_contexts(ctx, "utf-8")
            if ctx.in_error is None:
                self._check_headers(ctx)
                self._server.get_in_object(ctx)
        except faults.ServiceFault as fault:
            return self.fault(fault, request.operation)
        except Exception:  # spyne choking on a malformed message (no Body, dangling href, ...): the client's fault
            log.info("unreadable %s request", type(self).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
            return self.fault(faults.ServiceFault("The request could not be read", declared=False, client=True),
                              request.operation)
        if ctx.in_error is not None:
            return self.fault(faults.from_spyne(ctx.in_error, request.operation), request.operation)
        if ctx.in_object is None:
            return self.fault(faults.ServiceFault("The request has no operation element with arguments",
                                                  declared=False, client=True), request.operation)
        self._server.get_out_object(ctx)
        operation = ctx.descriptor.operation_name
        if ctx.out_error is not None:
            return self.fault(faults.from_spyne(ctx.out_error, operation), operation)
        return self.reply(operation, _response_element(ctx))

    def oversized(self, request: ApiRequest) -> ApiReply | None:
        """The fault answering a body larger than this binding reads (its length only: cheap enough for the
        reactor thread, before the login and the database thread); None if it is not."""
        if not self.reads_xml and (request.method != "POST" or request.content_type != FORM):
            return None
        try:
            body_limits.check_size(request.body, xml=self.reads_xml)
        except faults.ServiceFault as fault:
            return self.fault(fault, request.operation)
        return None

    def plain_arguments(self, request: ApiRequest) -> tuple[plain_requests.Operation, list[str]] | None:
        """The operation and arguments if the request has the plain shape :mod:`.plain_requests` reads; None
        sends it through spyne."""
        return None

    def _call_plain(self, operation: plain_requests.Operation, args: list[str], call: SoapCall) -> ApiReply:
        try:
            value = plain_requests.invoke(operation, args, call)
        except faults.ServiceFault as fault:
            return self.fault(fault, operation.name)
        element = plain_requests.response_element(operation, value)
        if element is None:  # a value spyne spells (None, empty): let it
            ctx = MethodContext(self._server, MethodContext.SERVER)
            ctx.descriptor = operation.descriptor
            ctx.out_object = [value]
            element = _response_element(ctx)
        return self.reply(operation.name, element)

    def _check_headers(self, ctx) -> None:
        """SOAP: a header the receiver must understand, and does not, is a MustUnderstand fault. We
        understand no header blocks (WS-Addressing's are advisory for a request-response exchange)."""
        for block in list(ctx.in_header_doc) if ctx.in_header_doc is not None else []:
            if not isinstance(getattr(block, "tag", None), str):
                continue
            flag = next((v for k, v in block.attrib.items() if k.endswith("}mustUnderstand")), None)
            if flag in ("1", "true"):
                raise faults.ServiceFault(f"Header {block.tag} was not understood", declared=False, client=True,
                                          code="MustUnderstand")

    def reply(self, operation: str, element: bytes) -> ApiReply:
        raise NotImplementedError

    def fault(self, fault: faults.ServiceFault, operation: str | None) -> ApiReply:
        raise NotImplementedError

    @staticmethod
    def _detail(fault: faults.ServiceFault) -> str:
        return axis2_xml.totp_exception_detail() if fault.declared else ""


class Soap11Binding(Binding):
    content_type = "text/xml; charset=UTF-8"

    def __init__(self, **options):
        super().__init__(_Soap11(), **options)

    def plain_arguments(self, request):
        return plain_requests.soap_arguments(request.body, SOAP11_ENV)

    def reply(self, operation, element):
        return ApiReply(200, self.content_type, axis2_xml.soap11_envelope(element))

    def fault(self, fault, operation):
        code = fault.code or ("Client" if fault.client else "Server")
        return ApiReply(500, self.content_type, axis2_xml.soap11_fault(code, fault.reason, self._detail(fault)))


class Soap12Binding(Binding):

    def __init__(self, **options):
        super().__init__(_Soap12(), **options)

    def plain_arguments(self, request):
        return plain_requests.soap_arguments(request.body, SOAP12_ENV)

    def reply(self, operation, element):
        content_type = f'application/soap+xml; charset=UTF-8; action="urn:{operation}Response"'
        return ApiReply(200, content_type, axis2_xml.soap12_envelope(element))

    def fault(self, fault, operation):
        code = fault.code or ("Sender" if fault.client else "Receiver")
        body = axis2_xml.soap12_fault(code, fault.reason, self._detail(fault))
        return ApiReply(500, "application/soap+xml; charset=UTF-8", body)


class HttpBinding(Binding):
    """Axis2's REST binding: form POST or GET to ``.../TOTPAdminService/<operation>``; the reply is the
    bare response element. Axis2 switches a form request's reply to application/xml."""

    content_type = "application/xml; charset=UTF-8"
    reads_xml = False

    def __init__(self, in_protocol: ProtocolBase | None = None, **options):
        super().__init__(in_protocol or HttpRpc(validator="soft"), **options)

    def plain_arguments(self, request):
        try:
            fields = _form_fields(request)
        except faults.ServiceFault:
            return None  # spyne's path raises it again, as its fault
        return plain_requests.form_arguments(request.operation, fields)

    def reply(self, operation, element):
        return ApiReply(200, self.content_type, element)

    def fault(self, fault, operation):
        # Axis2 writes only the detail's first element, so a declared fault's reason would be lost;
        # the header keeps it visible to admins using curl -i without changing the body.
        reason_header = ("X-Fault-Reason", reason_header_value(fault.reason))
        return ApiReply(500, self.content_type, axis2_xml.rest_fault(fault.reason, self._detail(fault)),
                        headers=(reason_header,))


# RFC 8187 attr-char: what an extended value carries unescaped (quote() adds ALPHA, DIGIT and "_.-~").
_ATTR_CHAR_PUNCTUATION = "!#$&+^`|"


def reason_header_value(reason: str) -> str:
    """``reason`` as the X-Fault-Reason value: printable ASCII as it is (as always); anything else as an
    RFC 8187 extended value, ``UTF-8''`` and the UTF-8 bytes percent-encoded (no reason of ours starts
    with that). At most MAX_REASON_HEADER characters of the reason, whole characters only."""
    reason = reason[:MAX_REASON_HEADER]
    if all(" " <= ch <= "~" for ch in reason):
        return reason
    return "UTF-8''" + quote(reason, safe=_ATTR_CHAR_PUNCTUATION, encoding="utf-8", errors="replace")


class XmlHttpBinding(HttpBinding):
    """The same HTTP binding with the request element as an XML body (POST application/xml)."""

    reads_xml = True


    def __init__(self, **options):
        super().__init__(_XmlDocument(), **options)

    def plain_arguments(self, request):
        return None  # rare: spyne reads it


class UnsupportedMediaType(Exception):
    pass


class Bindings:
    """All bindings, and which one a request is for. ``read_plain=False``: spyne reads every request
    (the fast path's reference in tests/protocols/test_plain_requests.py)."""

    def __init__(self, *, read_plain: bool = True):
        self.soap11 = Soap11Binding(read_plain=read_plain)
        self.soap12 = Soap12Binding(read_plain=read_plain)
        self.http = HttpBinding(read_plain=read_plain)
        self.http_xml = XmlHttpBinding(read_plain=read_plain)

    def select(self, request: ApiRequest) -> Binding:
        """SOAP by Content-Type whatever the path (as Axis2 does); otherwise the HTTP binding."""
        ctype = request.content_type
        if request.method == "POST":
            if ctype == "application/soap+xml":
                return self.soap12
            if ctype == "text/xml":
                return self.soap11
            if ctype == "application/xml" and request.operation:
                return self.http_xml
            if ctype in (FORM, "") and request.operation:
                return self.http
            raise UnsupportedMediaType(ctype)
        return self.http
