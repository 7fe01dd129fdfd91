"""The service contract: wsdl/TOTPAdminService.wsdl with the server's address in every port."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from urllib.parse import urlsplit

from lxml import etree

_ADDRESS_NAMESPACES = (
    "http://schemas.xmlsoap.org/wsdl/soap/",
    "http://schemas.xmlsoap.org/wsdl/soap12/",
    "http://schemas.xmlsoap.org/wsdl/http/",
)


class WsdlDocument:
    def __init__(self, text: bytes | None = None):
        if text is None:
            text = resources.files(__package__).joinpath("TOTPAdminService.wsdl").read_bytes()
        self._tree = etree.fromstring(text, etree.XMLParser(resolve_entities=False, no_network=True))
        self.for_base = lru_cache(maxsize=32)(self._render)

    def _render(self, base_url: str) -> bytes:
        """The WSDL with ``scheme://host:port`` of every port address replaced by ``base_url``."""
        tree = etree.fromstring(etree.tostring(self._tree))
        for ns in _ADDRESS_NAMESPACES:
            for address in tree.iter(f"{{{ns}}}address"):
                path = urlsplit(address.get("location")).path
                address.set("location", base_url.rstrip("/") + path)
        return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
