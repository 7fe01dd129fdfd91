"""The common request shapes, read and answered without spyne's per-request machinery.

spyne stays the definition of the service (operations, the WSDL, every unusual request), but reading one
small envelope costs it ~0.2 ms of CPU (a new XML parser, id resolution, its object model, events),
more than the database work behind the call. Nearly every real request has one plain shape: an envelope
of the binding's SOAP version, at most an empty Header, a Body holding one operation element in our
namespace whose children are our parameters, each once, as plain text; or a form with each parameter once.
Those are read here; anything else (attributes such as ``xsi:nil`` or ``href``, header blocks, comments,
unqualified or unknown children, missing parameters, empty values, repeated fields, texts over
:data:`.body_limits.MAX_TEXT`) returns None and goes to spyne. So a plain request is within every limit
:func:`.body_limits.check_tree` checks, and anything else meets that check before spyne reads it. The
operation itself runs through the service's own ``call_wrapper`` and its answer is written as
:mod:`.axis2_xml` writes spyne's, so both paths give the same bytes; ``tests/protocols/test_plain_requests.py`` sends
each request of a corpus through both and compares the replies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lxml import etree

from . import axis2_xml
from .body_limits import too_long
from .names import TNS
from .service import TOTPAdminService

_TEXT, _BOOLEAN, _TEXTS = "text", "boolean", "texts"


@dataclass(frozen=True)
class Operation:
    name: str
    params: tuple[str, ...]
    returns: str  # _TEXT, _BOOLEAN or _TEXTS
    descriptor: object  # spyne's MethodDescriptor


def _operations() -> dict[str, Operation]:
    table = {}
    for descriptor in TOTPAdminService.public_methods.values():
        result = descriptor.out_message._type_info["return"]
        if getattr(result.Attributes, "max_occurs", 1) > 1:
            returns = _TEXTS
        elif result.__name__ == "Boolean":
            returns = _BOOLEAN
        else:
            returns = _TEXT
        table[descriptor.operation_name] = Operation(descriptor.operation_name,
                                                     tuple(descriptor.in_message._type_info), returns, descriptor)
    return table


OPERATIONS = _operations()
_BY_TAG = {f"{{{TNS}}}{name}": op for name, op in OPERATIONS.items()}
_PARAM_TAGS = {f"{{{TNS}}}{p}": p for op in OPERATIONS.values() for p in op.params}

# The options spyne's SOAP protocol parses with (XmlDocument's defaults); one parser per thread, as an
# lxml parser must not be used by two threads at once.
_PARSER_OPTIONS = dict(remove_blank_text=False, remove_pis=True, strip_cdata=True, resolve_entities=False,
                       huge_tree=False, no_network=True, load_dtd=False, dtd_validation=False)
_parsers = threading.local()


def _parser() -> etree.XMLParser:
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = etree.XMLParser(**_PARSER_OPTIONS)
    return parser


def _blank(text: str | None) -> bool:
    return text is None or (not too_long(text) and not text.strip())


def soap_arguments(body: bytes, envelope_ns: str) -> tuple[Operation, list[str]] | None:
    """The operation and its arguments, in declared order, of a plain SOAP request; None if it is not one
    (including when it is not XML at all: spyne then says why)."""
    try:
        envelope = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError:
        return None
    if envelope.tag != f"{{{envelope_ns}}}Envelope" or envelope.attrib or not _blank(envelope.text):
        return None
    parts = list(envelope)
    if len(parts) == 2:
        header = parts[0]
        if (header.tag != f"{{{envelope_ns}}}Header" or header.attrib or len(header) or not _blank(header.text)
                or not _blank(header.tail)):
            return None
    elif len(parts) != 1:
        return None
    body_el = parts[-1]
    if body_el.tag != f"{{{envelope_ns}}}Body" or body_el.attrib or not _blank(body_el.text) or not _blank(body_el.tail):
        return None
    if len(body_el) != 1:
        return None
    call = body_el[0]
    operation = _BY_TAG.get(call.tag) if isinstance(call.tag, str) else None
    if operation is None or call.attrib or not _blank(call.text) or not _blank(call.tail):
        return None
    values: dict[str, str] = {}
    for child in call:
        name = _PARAM_TAGS.get(child.tag) if isinstance(child.tag, str) else None
        if (name is None or name not in operation.params or name in values or child.attrib or len(child)
                or not child.text or too_long(child.text) or not _blank(child.tail)):
            return None
        values[name] = child.text
    return _in_order(operation, values)


def form_arguments(operation_name: str | None, fields: dict[str, list[str]]) -> tuple[Operation, list[str]] | None:
    """The operation and arguments of a plain form request (each parameter once, not empty); else None."""
    operation = OPERATIONS.get(operation_name or "")
    if operation is None:
        return None
    values = {}
    for name, given in fields.items():
        if name not in operation.params or len(given) != 1 or not given[0]:
            return None
        values[name] = given[0]
    return _in_order(operation, values)


def _in_order(operation: Operation, values: dict[str, str]) -> tuple[Operation, list[str]] | None:
    if len(values) != len(operation.params):
        return None
    return operation, [values[p] for p in operation.params]


class _Call:
    """The part of spyne's MethodContext that ``TOTPAdminService.call_wrapper`` and the methods read."""

    __slots__ = ("udc", "descriptor", "function", "in_object")

    def __init__(self, soap_call, operation: Operation, args: list[str]):
        self.udc = soap_call  # spyne's name for the user-defined context: a SoapCall
        self.descriptor = operation.descriptor
        self.function = operation.descriptor.function
        self.in_object = _Arguments(dict(zip(operation.params, args)))


class _Arguments:
    __slots__ = ("_values",)

    def __init__(self, values: dict[str, str]):
        self._values = values

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None


def invoke(operation: Operation, args: list[str], soap_call):
    """Run the operation as spyne would (faults: :class:`~.faults.ServiceFault` is raised)."""
    call = _Call(soap_call, operation, args)
    return TOTPAdminService.call_wrapper(call, (call, *args))


def response_element(operation: Operation, value) -> bytes | None:
    """``<ns:{operation}Response>`` for ``value``, as :func:`axis2_xml.element` writes spyne's; None for
    a value whose spelling is left to spyne (None, empty, or characters XML cannot carry)."""
    if operation.returns == _BOOLEAN:
        if not isinstance(value, bool):
            return None
        items = ["true" if value else "false"]
    elif operation.returns == _TEXT:
        items = [value]
    else:
        if not isinstance(value, list) or not value:
            return None
        items = value
    for item in items:
        if not isinstance(item, str) or not item or axis2_xml.has_non_xml(item):
            return None
    inner = "".join(f"<ns:return>{axis2_xml.text(item)}</ns:return>" for item in items)
    name = f"{operation.name}Response"
    return f'<ns:{name} xmlns:ns="{TNS}">{inner}</ns:{name}>'.encode("utf-8")
