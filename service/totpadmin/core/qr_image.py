"""QR codes of enrollment URLs, for people to scan (the device API's ``qrCode``, ``totp-admin qr``).

PNG through qrcode's pure-Python writer (pypng): no Pillow, no native code.
"""

from __future__ import annotations

import io

import qrcode
import qrcode.image.pure


def qr_code(url: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(url)
    code.make(fit=True)
    return code


def png(url: str) -> bytes:
    out = io.BytesIO()
    qr_code(url).make_image(image_factory=qrcode.image.pure.PyPNGImage).save(out)
    return out.getvalue()
