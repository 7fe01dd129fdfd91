"""The TOTPAdminService on the wire: the spyne service, its bindings (SOAP 1.1, SOAP 1.2, HTTP) in
Axis2's exact output format, faults, and the WSDL. Knows nothing of Twisted: it takes an
:class:`~totpadmin.protocols.messages.ApiRequest` and returns an :class:`~totpadmin.protocols.messages.ApiReply`."""

from ... import upstream_fixes  # noqa: F401  (must run before spyne is imported)
