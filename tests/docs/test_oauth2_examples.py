"""docs/oauth2.md's token requests, run as written with bash and curl against a real server (the address
replaced, the client's id and secret in the environment, as the text says)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


def token_block() -> list[str]:
    text = (ROOT / "docs" / "oauth2.md").read_text()
    section = text[text.index("## The token request"):]
    start = section.index("```sh\n") + len("```sh\n")
    block = section[start:section.index("\n```", start)]
    return block.replace("\\\n", "").splitlines()


def test_the_token_requests_work_as_written(make_server):
    srv = make_server()
    out = srv.cli("client", "add", "shop", "--tenant", "carbon.super").stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    env = {**os.environ, "CLIENT_ID": fields["client_id"], "CLIENT_SECRET": fields["client_secret"]}
    lines = [line for line in token_block() if line.strip() and not line.startswith("#")]
    assert lines[0] == "U=https://localhost:9443"
    answers = []
    for line in lines[1:]:
        script = f"U={srv.base}\n{line}"
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, (line, r.stderr)
        answers.append(json.loads(r.stdout))
    assert [a["token_type"] for a in answers] == ["Bearer", "Bearer"]
    assert answers[1]["scope"] == "mfa:authenticate"
