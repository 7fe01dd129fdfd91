"""totp-admin qr: the enrollment QR code decodes to the URL initTOTP handed out."""

from __future__ import annotations

import shutil
import subprocess

import png
import pytest
from lxml import etree

from wire import decode_qr

ZBARIMG = shutil.which("zbarimg")


def enrolled_url(server) -> str:
    r = server.session().post(server.url + "/initTOTP", data={"username": "admin"})
    assert r.status_code == 200
    return decode_qr(etree.fromstring(r.content)[0].text)


@pytest.mark.skipif(ZBARIMG is None, reason="zbarimg (Debian zbar-tools) not installed")
def test_png_decodes_to_the_enrollment_url(server, tmp_path):
    url = enrolled_url(server)
    out = tmp_path / "qr.png"
    server.cli("qr", "admin", "--format", "png", "--output", str(out))
    width, height, _, info = png.Reader(filename=str(out)).read()
    assert width == height > 100
    decoded = subprocess.run([ZBARIMG, "-q", "--raw", str(out)], capture_output=True, text=True, check=True)
    assert decoded.stdout.strip() == url


def test_svg_and_text(server):
    url = enrolled_url(server)
    svg = server.cli("qr", "admin", "--format", "svg").stdout
    root = etree.fromstring(svg.encode())
    assert etree.QName(root).localname == "svg" and root.find("{http://www.w3.org/2000/svg}path") is not None
    text = server.cli("qr", "admin").stdout
    rows = text.splitlines()
    assert len(rows) > 20 and all(len(r) == len(rows[0]) for r in rows) and "█" in text
    assert url not in svg and url not in text


def test_user_without_totp(server):
    server.cli("user", "add", "nobody-enrolled", input="pw-123456\n")
    r = server.cli("qr", "nobody-enrolled", check=False)
    assert r.returncode == 1
    assert "TOTP is not enabled" in r.stderr and "Traceback" not in r.stderr
