#!/usr/bin/env python3
"""Bench only: the ceiling for scripts/bench. A bare twisted.web resource that answers every GET or
POST with one fixed ~300-byte XML body, over the same TLS setup as ``totp-admin serve`` (the certificate
of ``totpadmin.server.tls.ensure_self_signed``, the options of ``tls.context_factory``, Twisted's
``ssl:`` endpoint). No routing, authentication, SOAP, threads or database.

    .venv/bin/python scripts/bench_bare.py --port 19000 --tls-dir /tmp/bare-tls

Listens on 127.0.0.1 only; SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from twisted.internet import endpoints, reactor
from twisted.web import resource, server

from totpadmin.server import tls

TNS = "http://services.totp.authenticator.application.identity.carbon.wso2.org"
# The shape of a SOAP 1.1 initTOTP answer (a Base64 QR URL), padded to 300 bytes.
_BODY = (f'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
         f'<soapenv:Body><ns:initTOTPResponse xmlns:ns="{TNS}"><ns:return>{{}}</ns:return></ns:initTOTPResponse>'
         f'</soapenv:Body></soapenv:Envelope>')
BODY = _BODY.format("A" * (300 - len(_BODY.format("")))).encode("ascii")
assert len(BODY) == 300


class Bare(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/xml; charset=UTF-8")
        return BODY

    render_POST = render_GET


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls-dir", type=Path, required=True, help="where the self-signed certificate is made (or found)")
    args = p.parse_args()
    context = tls.context_factory(*tls.ensure_self_signed(args.tls_dir))
    site = server.Site(Bare())
    site.noisy = False
    endpoint = endpoints.SSL4ServerEndpoint(reactor, args.port, context, interface="127.0.0.1")
    endpoint.listen(site).addErrback(lambda f: (print(f"cannot listen: {f.getErrorMessage()}"), reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main()
