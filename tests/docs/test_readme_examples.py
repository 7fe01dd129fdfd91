"""The README's example commands, run as written (with bash and curl) against a real server: section
"Verifying codes and enrolling safely", top to bottom. Only the address, the admin password and the
placeholder codes are replaced: each placeholder by the code it stands for."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pyotp
import pytest
from lxml import etree

from conftest import ADMIN_PASSWORD, ROOT, TNS, TOTP_ADMIN
from wire import decode_qr, secret_of

SECTION = "### Verifying codes and enrolling safely"
CODE, LATER_CODE, RECOVERY_CODE = "123456", "654321", "abcd-efgh-ijkl-mnop"  # the README's placeholders
RECOVERY = re.compile(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}")

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


def section_commands() -> tuple[list[str], set[str]]:
    """The section's first shell block, line by line, and the operations its table documents."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n### ", 1)] if "\n### " in section[1:] else section
    start = section.index("```sh\n") + len("```sh\n")
    block = section[start:section.index("\n```", start)]
    documented = set(re.findall(r"^\| `(\w+)\(", section, re.M))
    return [line for line in block.splitlines() if line.strip()], documented


def returns(xml: str) -> list[str]:
    return [el.text or "" for el in etree.fromstring(xml.encode()).iter(f"{{{TNS}}}return")]


def test_verifying_and_enrolling_examples_work_as_written(make_server):
    srv = make_server(properties={"allowSecretKeyRetrieval": "true"})
    lines, documented = section_commands()
    env = {**os.environ, "TOTP_DATA_DIR": str(srv.data_dir), "TOTP_DATABASE_URL": srv.database.url}

    def sh(script: str) -> str:
        r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (script, r.stdout, r.stderr)
        return r.stdout

    setup = []  # lines that set variables, run again before each command
    pending = active = None
    recovery: list[str] = []
    ran = set()
    for line in lines:
        line = line.replace(".venv/bin/totp-admin", str(TOTP_ADMIN)).replace("localhost:9443", f"localhost:{srv.port}")
        line = re.sub(r"-u admin:[^' ]+", f"-u admin:{ADMIN_PASSWORD}", line)  # whatever example password
        if " user add " in line:
            assert sh(line) == "added user alice (user)\n"
            continue
        if not line.startswith("curl "):
            setup.append(line)
            continue
        operation = re.search(r"\$U/(\w+)", line)[1]
        ran.add(operation)
        if CODE in line:
            line = line.replace(CODE, pyotp.TOTP(pending).now())
        if LATER_CODE in line:
            line = line.replace(LATER_CODE, pyotp.TOTP(active).at(time.time() + 30))  # a newer time step
        if RECOVERY_CODE in line:
            line = line.replace(RECOVERY_CODE, recovery.pop())
        output = sh("\n".join(setup + [line]))
        answer = returns(output)
        if operation == "generateSecret":
            assert len(answer) == 1, (line, output)
            url = decode_qr(answer[0])
            assert url.startswith("otpauth://totp/carbon.super:alice?"), url
            pending = secret_of(url)
        elif operation == "enableTOTP":
            assert answer == ["true"], line
            active = pending
        elif operation in ("enableTOTPWithRecoveryCodes", "regenerateRecoveryCodes"):
            assert len(answer) == 10 and all(RECOVERY.fullmatch(c) for c in answer), (line, answer)
            recovery = answer
            active = pending if operation == "enableTOTPWithRecoveryCodes" else active
        elif operation == "retrieveSecretKey":
            assert answer == [active], line
        else:  # validateTOTP, isTOTPEnabled, unlockTOTP
            assert answer == ["true"], (line, answer)
    assert ran == documented, "every operation of the section's table has its example"


DEVICE_SECTION = "### Applications: the CIAM device API"
FIRST_OTP, LATER_OTP = "523471", "654321"  # the section's placeholders
OTP_IN_QUOTES = "'\"$(code {})\"'"  # the placeholders stand inside '...': end the quote, expand, reopen


def test_the_device_api_examples_work_as_written(make_server):
    """The section's block as one bash script, with only the address, the client's credentials and the
    two placeholder codes replaced (each by the code the app would show, computed from the registration
    URI the script printed)."""
    srv = make_server()
    text = (ROOT / "README.md").read_text()
    section = text[text.index(DEVICE_SECTION):]
    start = section.index("```sh\n") + len("```sh\n")
    block = section[start:section.index("\n```", start)]
    client = dict(line.split(": ", 1) for line in srv.cli("client", "add", "shop", "--tenant", "carbon.super")
                  .stdout.splitlines() if ": " in line)
    prelude = (f'PY={sys.executable}\n'
               'code() { "$PY" -c "import pyotp, sys, time; from urllib.parse import urlsplit, parse_qs; '
               "s = parse_qs(urlsplit(sys.argv[1]).query)['secret'][0]; "
               'print(pyotp.TOTP(s).at(time.time() + int(sys.argv[2])))" '
               '"$(echo "$DEVICE" | json registrationUri)" "$1"; }\n')
    script = prelude + block.replace(".venv/bin/totp-admin", str(TOTP_ADMIN)) \
        .replace("localhost:9443", f"localhost:{srv.port}") \
        .replace(FIRST_OTP, OTP_IN_QUOTES.format(0)).replace(LATER_OTP, OTP_IN_QUOTES.format(30))
    env = {**os.environ, "TOTP_DATA_DIR": str(srv.data_dir), "TOTP_DATABASE_URL": srv.database.url,
           "CLIENT_ID": client["client_id"], "CLIENT_SECRET": client["client_secret"]}
    r = subprocess.run(["bash", "-e", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = r.stdout  # JSON answers end without a newline: they run together
    assert "\notpauth://totp/carbon.super:demouser?secret=" in out, out
    assert out.count('{"status":"SUCCESS","message":"OTP has been validated successfully"') == 2, out
    listing = out[out.index('{"userName":"demouser","devices":'):]
    listing = listing[:listing.index("]}") + 2]
    assert '"deviceName":"Mydevice"' in listing and '"status":"ACTIVE"' in listing and "secret" not in listing
    assert srv.database.query("SELECT count(*) FROM totp_devices") == [(0,)], "the DELETE removed it"
