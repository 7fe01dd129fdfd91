"""``totp-admin qr USER``: the user's enrollment QR code as PNG, SVG or text for the terminal."""

from __future__ import annotations

import base64
import sys

import qrcode.image.pure
import qrcode.image.svg

from ..core import claims
from ..core.errors import TotpNotEnabled
from ..core.qr_image import qr_code

FORMATS = ("text", "png", "svg")


def register(commands, add_store_options) -> None:
    parser = commands.add_parser("qr", help="show a user's enrollment QR code (PNG, SVG or in the terminal)")
    parser.add_argument("username", help="name, or name@tenant.domain")
    parser.add_argument("--format", choices=FORMATS, default="text", help="text (default: draw in the terminal), png or svg")
    parser.add_argument("--output", "-o", help="file to write (default: standard output)")
    add_store_options(parser)


def otpauth_url(account) -> str:
    """The otpauth URL the user was given (initTOTP, refreshSecretKey or enableTOTP), from its stored claim."""
    stored = account.get(claims.QR_CODE_URL)
    if not stored:
        raise TotpNotEnabled(mandatory=False)
    return base64.b64decode("".join(stored.split())).decode("utf-8")


def render(url: str, fmt: str, out) -> None:
    code = qr_code(url)
    if fmt == "text":
        code.print_ascii(out=out, invert=True)
        return
    factory = qrcode.image.pure.PyPNGImage if fmt == "png" else qrcode.image.svg.SvgPathImage
    code.make_image(image_factory=factory).save(out)


def run(args, url: str) -> int:
    if args.output:
        mode = "w" if args.format == "text" else "wb"
        with open(args.output, mode) as out:
            render(url, args.format, out)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        render(url, args.format, sys.stdout if args.format == "text" else sys.stdout.buffer)
    return 0
