"""The parts of Carbon's conf/carbon.xml this service honours, into :class:`CarbonSettings`."""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from .errors import ConfigError
from .settings import CarbonSettings
from .values import parse_bool, parse_int

_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")


def load_carbon_xml(path: Path) -> CarbonSettings:
    src = str(path)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.parse(str(path), parser).getroot()
    except OSError:
        raise ConfigError(src, "(file)", None, "carbon.xml file not found or unreadable") from None
    except etree.XMLSyntaxError as exc:
        raise ConfigError(src, "(file)", None, f"not well-formed XML: {exc.msg}") from None

    def text(*names: str) -> str | None:
        node = root
        for name in names:
            node = next((c for c in node if isinstance(c.tag, str) and etree.QName(c).localname == name), None)
            if node is None:
                return None
        return (node.text or "").strip()

    defaults = CarbonSettings()
    host = text("HostName") or None
    if host is not None and not _HOST.match(host):
        raise ConfigError(src, "HostName", host, "must be a host name or IP address")
    return CarbonSettings(
        server_name=text("Name") or defaults.server_name,
        host_name=host,
        port_offset=parse_int(src, "Ports/Offset", text("Ports", "Offset"), defaults.port_offset, low=0, high=50000),
        hide_wsdl=parse_bool(src, "HideAdminServiceWSDLs", text("HideAdminServiceWSDLs"), defaults.hide_wsdl),
        email_usernames=parse_bool(src, "EnableEmailUserName", text("EnableEmailUserName"), defaults.email_usernames),
    )
