#!/usr/bin/env python3
"""Throughput and latency of totp-admin against a bare Twisted TLS resource, in one run.

Run it through ``scripts/bench`` (venv, wrk). Everything listens on 127.0.0.1 only, every load run is
bounded (``--warmup`` + ``--duration`` seconds), and every server and temporary directory it makes is
removed at the end (also on Ctrl-C or SIGTERM), unless ``--keep``.

Scenarios (see BENCHMARKS.md):
  a  bare twisted.web resource, fixed 300-byte XML, same TLS setup (scripts/bench_bare.py): the ceiling
  b  SOAP 1.1 initTOTP (text/xml, Basic auth), totp-admin serve, 1 worker
  c  form-POST initTOTP
  d  form-POST validateTOTP, 10^3 enrolled users, wrong codes (mostly "false"; see BENCHMARKS.md)
  v  as d in a SOAP 1.1 envelope (text/xml): what the same call costs a SOAP client
  e  SOAP 1.1 initTOTP with serve --workers 2 (against b)
  g  SOAP 1.1 initTOTP on two separate 1-worker servers, a store and a CPU each, half the connections each:
     what this machine allows two processes that share nothing (the ceiling for e)
  h  as b with half the connections: what one worker does with the load each worker of e and g gets
  bs, es  b and e with 4 times the connections, enough to saturate both: the 2-worker target compares
     these (a throughput target is about capacity; at 10 connections neither is saturated)
  f  form-POST validateTOTP with --users (10^6) enrolled users (against d)
  d1, f1  d and f with 1 connection: service time without queueing
  x...  hostile requests (scripts/bench_hostile.py) on the server of (b): 1 MiB bodies, the largest body of
     each costly shape, and shapes at every limit; their CPU per request as a ratio to (b)'s (--only 'b,x*')
  t  POST /oauth2/token, client credentials by HTTP Basic: access tokens issued per second
  k  CIAM sign-ins (scripts/bench_ciam.py): POST /ciam-mfa/v2/deviceAuthentications, then its authId with a
     wrong code, bearer token; server CPU per sign-in (two requests) against (d)'s one validateTOTP
  k1, m1  k with 1 connection on 10^3 users (k1) and --users users (m1): p50 against each other
  s  WSO2's me/totp VALIDATE (a wrong code) by 200 signed-in users, their sessions' bearer tokens: server CPU
     per call against (d)'s validateTOTP
Each: wrk -t1 -cC -dDs after a W s warm-up (--repeat N: N measured runs, the median kept); req/s,
p50/p99, server CPU (utime+stime of the server and its child processes, from /proc) per request, and the
ratio to (a). Stores are SQLite in the temporary directory, or schemas of --database-url (PostgreSQL on
127.0.0.1), seeded by scripts/bench_seed.py.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import bench_ciam
import bench_hostile
import bench_lua

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
BIN = Path(sys.executable).parent
TOTP_ADMIN = BIN / "totp-admin"
HOST = "127.0.0.1"  # the only address anything here listens on or connects to
ADMIN_PASSWORD = "bench-admin-password"
TNS = "http://services.totp.authenticator.application.identity.carbon.wso2.org"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SERVICE = "/services/TOTPAdminService"
BODY_LIMIT = 1 << 20  # TOTP_MAX_BODY_BYTES's default (the servers run without TOTP_ variables)
PREFIX = "bench"  # bench_seed.py's usernames: bench0000001 ...
HOSTILE_MAX_RATIO = 10  # server CPU of any hostile request against a normal SOAP call (b)
SATURATING = 4  # bs, es: this many times --connections (one worker levels off at ~2x, two at ~4x; BENCHMARKS.md)
PREPARED_MAX = 100_000  # up to this many users, wrk makes each request once (in init), not per request
WRONG_CODE = "000001"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The policy under which validateTOTP with wrong codes keeps answering "false" instead of lockout faults.
BENCH_PROPERTIES = {"maxFailedAttempts": "100", "lockoutSeconds": "1", "maxLockoutSeconds": "1"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from "state" on (field 3 of proc(5))


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (by /proc/*/stat ppid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat_fields(int(entry))
            if f is not None:
                children.setdefault(int(f[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores, from the first line of /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """utime+stime (clock ticks) of each live pid."""
    out = {}
    for pid in pids:
        f = _stat_fields(pid)
        if f is not None:
            out[pid] = int(f[11]) + int(f[12])  # utime, stime: fields 14 and 15
    return out


class Server:
    """A server process we started (in its own session, so that its workers can be found and stopped)."""

    def __init__(self, name: str, args: list[str], *, env: dict, log_path: Path, port: int, ca: Path):
        self.name, self.port, self.ca, self.log_path = name, port, ca, log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=ROOT, start_new_session=True)

    def wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen within {timeout:.0f} s:\n{self.log_tail()}")

    def tree(self) -> list[int]:
        return process_tree(self.proc.pid) if self.proc.poll() is None else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop in 30 s; killing its process group")
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group of the process we started, nothing else
                self.proc.wait()
        # Workers left behind by a supervisor that died: same session/process group as the one we made.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log.close()

    def members(self) -> list[Server]:
        return [self]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ServerPair:
    """Two independent servers measured as one: a wrk for each, their requests and CPU summed."""

    def __init__(self, servers: list[Server]):
        self.name = "pair"
        self.servers = servers

    def members(self) -> list[Server]:
        return self.servers

    def tree(self) -> list[int]:
        return [pid for server in self.servers for pid in server.tree()]


def run(args: list[str], *, input: str | None = None, timeout: float = 120, env: dict | None = None) -> str:
    r = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited with {r.returncode}:\n{r.stdout}{r.stderr}")
    return r.stdout


# --------------------------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    key: str
    label: str
    server: str  # "bare", "one", "two", "big", "pair"
    path: str
    content_type: str
    body_pre: str  # the body is body_pre + username + body_post
    body_post: str
    soap_action: str | None = None
    users: tuple[int, int] | None = None  # random username among bench<first>..bench<last>; None: fixed body
    fixed_user: str = "admin"
    auth: bool = True
    count_bool: bool = False  # count <ns:return>true / false answers
    connections: int = 10
    body: bytes | None = None  # hostile scenarios: this exact body (sent from a file), not body_pre/user/post
    expect: int = 200  # the status every answer must have
    expect_text: str = ""  # preflight: the answer must contain this (a hostile request's fault reason)
    chunk_bytes: int = 0  # send body as chunks of this many bytes (Transfer-Encoding: chunked); 0: not chunked
    flow: str = ""  # "signin": a CIAM sign-in, two requests (scripts/bench_ciam.py); "token": POST /oauth2/token
    authorization: str | None = None  # the Authorization header, when not the admin's Basic credentials


def soap11_init() -> tuple[str, str]:
    pre = (f'<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Header/><soapenv:Body>'
           f'<ns:initTOTP xmlns:ns="{TNS}"><ns:username>')
    return pre, "</ns:username></ns:initTOTP></soapenv:Body></soapenv:Envelope>"


def soap11_validate() -> tuple[str, str]:
    pre = (f'<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Header/><soapenv:Body>'
           f'<ns:validateTOTP xmlns:ns="{TNS}"><ns:username>')
    return pre, (f"</ns:username><ns:verificationCode>{WRONG_CODE}</ns:verificationCode>"
                 "</ns:validateTOTP></soapenv:Body></soapenv:Envelope>")


def hostile_scenarios(connections: int) -> list[Scenario]:
    """The bodies of scripts/bench_hostile.py (keys x...), on the server of (b), each checked for its answer."""
    return [Scenario(h.key, f"hostile: {h.label}", "one", SERVICE + ("/isTOTPEnabled" if h.operation_in_path else ""),
                     h.content_type, "", "", body=h.body, expect=h.expect, expect_text=h.reason,
                     chunk_bytes=h.chunk_bytes,
                     soap_action='"urn:isTOTPEnabled"' if h.content_type.startswith("text/xml") else None,
                     connections=connections)
            for h in bench_hostile.bodies(BODY_LIMIT)]


def scenarios(small: int, big: int, connections: int) -> list[Scenario]:
    pre, post = soap11_init()
    soap = dict(path=SERVICE, content_type="text/xml; charset=UTF-8", soap_action='"urn:initTOTP"',
                body_pre=pre, body_post=post)
    form = "application/x-www-form-urlencoded"
    validate = dict(path=SERVICE + "/validateTOTP", content_type=form, body_pre="username=",
                    body_post=f"&verificationCode={WRONG_CODE}", count_bool=True)
    signin = dict(path=f"{bench_ciam.CIAM}/deviceAuthentications", content_type="application/json", body_pre="",
                  body_post="", flow="signin")
    c = connections
    return [
        Scenario("a", "bare twisted.web resource, TLS (ceiling)", "bare", auth=False, connections=c, **soap),
        Scenario("b", "SOAP 1.1 initTOTP, 1 worker", "one", users=(1, small), connections=c, **soap),
        Scenario("c", "form-POST initTOTP", "one", path=SERVICE + "/initTOTP", content_type=form,
                 body_pre="username=", body_post="", users=(1, small), connections=c),
        Scenario("d", f"form-POST validateTOTP, {small:,} users", "one", users=(1, small), connections=c, **validate),
        Scenario("v", f"SOAP 1.1 validateTOTP, {small:,} users", "one", users=(1, small), connections=c,
                 path=SERVICE, content_type="text/xml; charset=UTF-8", soap_action='"urn:validateTOTP"',
                 body_pre=soap11_validate()[0], body_post=soap11_validate()[1], count_bool=True),
        Scenario("e", "SOAP 1.1 initTOTP, --workers 2", "two", users=(1, small), connections=c, **soap),
        Scenario("g", "SOAP 1.1 initTOTP, 2 separate servers", "pair", users=(1, small), connections=c, **soap),
        Scenario("h", f"SOAP 1.1 initTOTP, 1 worker, {c // 2} connections", "one", users=(1, small),
                 connections=c // 2, **soap),
        Scenario("bs", f"SOAP 1.1 initTOTP, 1 worker, {c * SATURATING} connections", "one", users=(1, small),
                 connections=c * SATURATING, **soap),
        Scenario("es", f"SOAP 1.1 initTOTP, --workers 2, {c * SATURATING} connections", "two", users=(1, small),
                 connections=c * SATURATING, **soap),
        Scenario("f", f"form-POST validateTOTP, {big:,} users", "big", users=(1, big), connections=c, **validate),
        Scenario("d1", f"validateTOTP, {small:,} users, 1 connection", "one", users=(1, small), connections=1,
                 **validate),
        Scenario("f1", f"validateTOTP, {big:,} users, 1 connection", "big", users=(1, big), connections=1,
                 **validate),
        Scenario("t", "OAuth2 token requests (client credentials, Basic)", "one", path=bench_ciam.TOKEN_PATH,
                 content_type=form, body_pre="grant_type=client_credentials", body_post="", fixed_user="",
                 flow="token", connections=c),
        Scenario("k", f"CIAM sign-in (start + validate), {small:,} users", "one", users=(1, small), connections=c,
                 **signin),
        Scenario("k1", f"CIAM sign-in, {small:,} users, 1 connection", "one", users=(1, small), connections=1,
                 **signin),
        Scenario("m1", f"CIAM sign-in, {big:,} users, 1 connection", "big", users=(1, big), connections=1, **signin),
        Scenario("s", "me/totp VALIDATE, 200 signed-in users (sessions)", "one", path=bench_ciam.ME_TOTP,
                 content_type="application/json", body_pre="", body_post="", users=(1, min(200, small)),
                 flow="me-totp", connections=c),
        Scenario("p", "enrollment page (GET /account/enroll), 200 signed-in users", "one", path=bench_ciam.ACCOUNT_PAGE,
                 content_type="text/html", body_pre="", body_post="", users=(min(201, small), min(400, small)),
                 flow="account-page", connections=c),
        *hostile_scenarios(c),
    ]


def _lua_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for these ASCII bodies


def lua_script(sc: Scenario, body_file: Path | None = None) -> str:
    headers = {"Content-Type": sc.content_type}
    if sc.chunk_bytes:
        headers["Transfer-Encoding"] = "chunked"
    if sc.soap_action:
        headers["SOAPAction"] = sc.soap_action
    if sc.authorization:
        headers["Authorization"] = sc.authorization
    elif sc.auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    header_lua = ", ".join(f"[{_lua_str(k)}] = {_lua_str(v)}" for k, v in headers.items())
    first, last = sc.users or (0, 0)
    return f"""-- generated by scripts/bench.py for scenario {sc.key}
local path = {_lua_str(sc.path)}
local headers = {{ {header_lua} }}
local pre, post = {_lua_str(sc.body_pre)}, {_lua_str(sc.body_post)}
local first, last = {first}, {last}
local fixed_user = {_lua_str(sc.fixed_user)}
local count_bool = {"true" if sc.count_bool else "false"}
local count_status = {"true" if sc.count_bool or sc.expect != 200 else "false"}
local body_file = {_lua_str(str(body_file)) if body_file else "nil"}
local chunk_bytes = {sc.chunk_bytes}
local fixed, prepared = nil, nil
local threads = {{}}

function setup(thread) table.insert(threads, thread) end

local function format(name) return wrk.format("POST", path, headers, pre .. name .. post) end

function init(args)
  n200, n500, nother, ntrue, nfalse = 0, 0, 0, 0, 0
  math.randomseed(os.time() + os.clock() * 1000000)
  if body_file then
    local f = assert(io.open(body_file, "rb"))
    local body = f:read("*a")
    f:close()
    if chunk_bytes > 0 then  -- wrk.format would add a Content-Length: the head alone, then the chunks
      local parts = {{}}
      for i = 1, #body, chunk_bytes do
        local piece = body:sub(i, i + chunk_bytes - 1)
        parts[#parts + 1] = string.format("%x\\r\\n", #piece) .. piece .. "\\r\\n"
      end
      fixed = wrk.format("POST", path, headers, nil) .. table.concat(parts) .. "0\\r\\n\\r\\n"
    else
      fixed = wrk.format("POST", path, headers, body)
    end
  elseif last == 0 then fixed = format(fixed_user)
  elseif last - first < {PREPARED_MAX} then
    prepared = {{}}  -- every request made once: wrk's CPU comes out of the server's in (e) and (g)
    for i = first, last do prepared[i] = format(string.format("{PREFIX}%07d", i)) end
  end
end

function request()
  if fixed then return fixed end
  local i = math.random(first, last)
  if prepared then return prepared[i] end
  return format(string.format("{PREFIX}%07d", i))
end

-- Only where the body must be read, or answers other than 200 are expected: with a response() wrk hands
-- every answer to Lua. Elsewhere wrk's own count of non-2xx answers (summary.errors.status) is the check.
if count_status then
  function response(status, hdrs, body)
    if status == 200 then n200 = n200 + 1 elseif status == 500 then n500 = n500 + 1 else nother = nother + 1 end
    if not count_bool then return end
    if string.find(body, ">true<", 1, true) then ntrue = ntrue + 1
    elseif string.find(body, ">false<", 1, true) then nfalse = nfalse + 1 end
  end
end

{bench_lua.REPORT}
function done(summary, latency, requests)
  local c = thread_counts()
  if not count_status then c.n200, c.nother = summary.requests - summary.errors.status, summary.errors.status end
  report(summary, latency, c)
end
"""


def preflight(sc: Scenario, server: Server) -> str:
    """One request exactly as the Lua script sends it, checked: 200 (and true/false for validate), or the
    expected status and text of a hostile request."""
    user = f"{PREFIX}{sc.users[0]:07d}" if sc.users else sc.fixed_user
    body = sc.body if sc.body is not None else (sc.body_pre + user + sc.body_post).encode()
    headers = {"Content-Type": sc.content_type}
    if sc.soap_action:
        headers["SOAPAction"] = sc.soap_action
    if sc.authorization:
        headers["Authorization"] = sc.authorization
    elif sc.auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    if sc.flow == "signin":
        return preflight_signin(sc, server, headers, user)
    if sc.flow in ("me-totp", "account-page"):
        return  # its users signed in just before (bench_ciam.session_tokens): they answered 201
    if sc.chunk_bytes:  # encoded here, so that it goes in one write as wrk sends it
        headers["Transfer-Encoding"] = "chunked"
        body = b"".join(b"%x\r\n" % len(body[i:i + sc.chunk_bytes]) + body[i:i + sc.chunk_bytes] + b"\r\n"
                        for i in range(0, len(body), sc.chunk_bytes)) + b"0\r\n\r\n"
    ctx = ssl.create_default_context(cafile=str(server.ca))
    conn = http.client.HTTPSConnection(HOST, server.port, context=ctx, timeout=30)
    try:
        conn.request("POST", sc.path, body=body, headers=headers)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
    finally:
        conn.close()
    if r.status != sc.expect or (sc.count_bool and "true<" not in text and "false<" not in text) \
            or sc.expect_text not in text + "\n" + (r.getheader("X-Fault-Reason") or ""):
        raise RuntimeError(f"preflight of {sc.key} ({sc.label}): HTTP {r.status}: {text[:300]}")
    return text


def preflight_signin(sc: Scenario, server: Server, headers: dict, user: str) -> str:
    """One sign-in as the Lua script makes it: 201 with an authId, then 401 for the wrong code."""
    ctx = ssl.create_default_context(cafile=str(server.ca))
    answers = []
    for path, body in ((sc.path, {"userName": user, "deviceType": "TOTP"}), (None, None)):
        if path is None:
            path, body = f"{sc.path}/{json.loads(answers[0])['authId']}", {"deviceType": "TOTP", "otp": WRONG_CODE}
        conn = http.client.HTTPSConnection(HOST, server.port, context=ctx, timeout=30)
        try:
            conn.request("POST", path, body=json.dumps(body), headers=headers)
            r = conn.getresponse()
            answers.append(r.read().decode("utf-8", "replace"))
        finally:
            conn.close()
        if r.status != (201 if len(answers) == 1 else 401):
            raise RuntimeError(f"preflight of {sc.key} ({sc.label}): HTTP {r.status}: {answers[-1][:300]}")
    return answers[-1]


# --------------------------------------------------------------------------------------------- measuring


@dataclass
class Result:
    key: str
    label: str
    ok: bool = False
    note: str = ""
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_us_per_req: float = 0.0
    server_cpu_pct: float = 0.0  # of one core, over the measured run
    wrk_cpu_pct: float = 0.0
    machine_busy_pct: float = 0.0  # all cores (100 = every core busy), everything on the machine
    other_cpu_pct: float = 0.0  # of one core: the machine's busy time minus the server's and wrk's
    per_process_cpu_s: list = field(default_factory=list)
    ratio_to_bare: float | None = None
    cpu_us_per_signin: float = 0.0  # (k...): server CPU over the validations answered
    profile_files: list = field(default_factory=list)
    answer: str = ""  # hostile scenarios: the status (and reason) every answer had
    body_bytes: int = 0
    wrk: dict = field(default_factory=dict)
    profile: str | None = None


def wrk_run(loads: list[tuple[str, int]], script: Path, seconds: float) -> tuple[dict, float, float]:
    """Run one wrk per (url, connections) at once; (their BENCHJSON, summed, wall seconds, wrk's CPU
    seconds). With several: latency is the request-weighted mean of their p50s and the larger p99."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    procs = [subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
                               "--latency", "-s", str(script), url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for url, connections in loads]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=seconds + 60)
            line = next((ln for ln in out.splitlines() if ln.startswith("BENCHJSON ")), None)
            if proc.returncode != 0 or line is None:
                raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{err}")
            outputs.append(json.loads(line[len("BENCHJSON "):]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if len(outputs) == 1:
        return outputs[0], wall, cpu
    data = {key: sum(o[key] for o in outputs) for key in outputs[0] if key not in ("duration_us", "p50_us", "p99_us")}
    data["duration_us"] = max(o["duration_us"] for o in outputs)
    data["p50_us"] = sum(o["p50_us"] * o["requests"] for o in outputs) / max(1, data["requests"])
    data["p99_us"] = max(o["p99_us"] for o in outputs)
    return data, wall, cpu


def median_run(runs: list[Result]) -> Result:
    """The run with the median req/s; the spread of all runs goes into its note."""
    res = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
    if len(runs) > 1:
        spread = f"{len(runs)} runs, req/s {min(r.rps for r in runs):,.0f}..{max(r.rps for r in runs):,.0f}"
        res.note = "; ".join(filter(None, [spread, res.note]))
    return res


def measure_once(sc: Scenario, server: Server | ServerPair, loads: list[tuple[str, int]], script: Path,
                 opts) -> Result:
    res = Result(sc.key, sc.label)
    pids = server.tree()
    before, machine_before = cpu_ticks(pids), machine_ticks()
    data, wall, wrk_cpu = wrk_run(loads, script, opts.duration)
    after, machine_after = cpu_ticks(pids), machine_ticks()
    busy, total = (a - b for a, b in zip(machine_after, machine_before))
    res.machine_busy_pct = 100 * busy / total if total else 0.0
    per_pid = {pid: (after.get(pid, before[pid]) - before[pid]) / CLK_TCK for pid in before}
    server_cpu = sum(per_pid.values())
    seconds = data["duration_us"] / 1e6
    n = data["requests"]
    res.wrk = data
    res.rps = n / seconds if seconds else 0.0
    res.p50_ms = data["p50_us"] / 1000
    res.p99_ms = data["p99_us"] / 1000
    res.cpu_us_per_req = server_cpu / n * 1e6 if n else 0.0
    res.server_cpu_pct = 100 * server_cpu / seconds if seconds else 0.0
    res.wrk_cpu_pct = 100 * wrk_cpu / wall if wall else 0.0
    cores = os.cpu_count() or 1
    res.other_cpu_pct = max(0.0, res.machine_busy_pct * cores - res.server_cpu_pct - res.wrk_cpu_pct)
    roots = [member.proc.pid for member in server.members()]
    children = [pid for pid in per_pid if pid not in roots]
    res.per_process_cpu_s = [round(per_pid.get(pid, 0.0), 2) for pid in (sorted(children) or roots)]
    errors = sum(data[k] for k in ("err_connect", "err_read", "err_write", "err_timeout"))
    problems = []
    if errors:
        problems.append(f"{errors} socket errors")
    if sc.expect != 200:
        expected = data["n500" if sc.expect == 500 else "nother"]
        if expected != n:
            problems.append(f"{n - expected} answers other than {sc.expect}")
    elif sc.flow == "signin":
        if data["n500"] or data["nother"]:
            problems.append(f"{data['n500']} HTTP 500, {data['nother']} answers other than 201/401/423")
    elif sc.flow == "me-totp":
        if data["n500"] or data["nother"]:
            problems.append(f"{data['n500']} HTTP 500, {data['nother']} answers other than 200/423")
        problems.append(f"answers: {data['ntrue']} valid, {data['nfalse']} not (or locked)")
    elif sc.flow == "account-page":
        if data["n500"] or data["nother"] or data["nfalse"]:
            problems.append(f"{data['n500']} HTTP 500, {data['nother'] + data['nfalse']} answers other than the page")
    elif data["n500"] or data["nother"]:
        problems.append(f"{data['n500']} HTTP 500, {data['nother']} other non-200" if sc.count_bool
                        else f"{data['nother']} non-2xx answers")
    if sc.count_bool:
        problems.append(f"answers: {data['ntrue']} true, {data['nfalse']} false")
    if sc.flow == "signin":
        res.cpu_us_per_signin = server_cpu / data["nfalse"] * 1e6 if data["nfalse"] else 0.0
        problems.append(f"{data['ntrue']} starts, {data['nfalse']} validations, "
                        f"{res.cpu_us_per_signin:,.0f} µs CPU/sign-in")
    res.note = "; ".join(problems)
    res.ok = n > 0
    if sc.body is not None:
        res.body_bytes = len(sc.body)
        res.answer = f"{sc.expect} {sc.expect_text}".strip()
    return res


sc_profile_files: dict[str, list[Path]] = {}  # scenario -> py-spy's collapsed stacks (--profile)


def find_py_spy() -> str | None:
    for candidate in (os.environ.get("PY_SPY"), shutil.which("py-spy"), str(BIN / "py-spy")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def profile(sc: Scenario, server: Server, loads: list[tuple[str, int]], script: Path, opts) -> str | None:
    """An extra, unmeasured load run with py-spy sampling the server's Python CPU (``--gil``): collapsed
    stacks in --profile DIR, and a summary (by component, and the heaviest functions) returned."""
    py_spy = find_py_spy()
    if py_spy is None:
        log("--profile: py-spy not found (pip install py-spy, or set PY_SPY=/path/to/py-spy); no profile")
        return None
    opts.profile_dir.mkdir(parents=True, exist_ok=True)
    children = [p for p in server.tree() if p != server.proc.pid]
    pids = children or [server.proc.pid]
    outputs, spies = [], []
    for pid in pids:
        out = opts.profile_dir / f"{sc.key}-{pid}.txt"
        spies.append(subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(round(opts.duration)),
                                       "--rate", "250", "--format", "raw", "--gil", "--nonblocking",
                                       "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        outputs.append(out)
    time.sleep(0.5)
    try:
        wrk_run(loads, script, opts.duration)
    finally:
        for spy in spies:
            try:
                spy.wait(timeout=opts.duration + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
    written = [o for o in outputs if o.exists()]
    if not written:
        log("--profile: py-spy wrote nothing (needs ptrace permission: root or CAP_SYS_PTRACE)")
        return None
    sc_profile_files[sc.key] = written
    return summarize_profile(written)


# Components, matched from the innermost frame outwards; the first frame that matches decides.
_COMPONENTS = [
    ("logging", ("logging/__init__", "totpadmin/server/logs.py")),
    ("SQLAlchemy (ORM, Core, pool) + sqlite3/psycopg", ("sqlalchemy/", "sqlite3", "psycopg")),
    ("spyne + lxml (parse, dispatch, serialize)", ("spyne/", "lxml")),
    ("crypto (AES-GCM, HMAC-OTP, Argon2, base64)", ("cryptography/", "argon2", "secretbox.py", "core/otp.py",
                                                    "base64.py", "hmac.py")),
    ("TLS (pyOpenSSL, twisted.protocols.tls)", ("OpenSSL/", "twisted/protocols/tls.py")),
    ("totpadmin's own code", ("totpadmin/",)),
    ("Twisted (reactor, HTTP, threads)", ("twisted/",)),
]


def profile_stacks(paths: list[Path]):
    """(collapsed stack, samples) of py-spy's raw output files."""
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():  # py-spy can leave a line cut short when it is stopped mid-write
                yield stack, int(count)


def summarize_profile(paths: list[Path], top: int = 12) -> str:
    import collections
    import re

    by_component, inclusive, total = collections.Counter(), collections.Counter(), 0
    for stack, n in profile_stacks(paths):
        frames = stack.split(";")
        total += n
        component = "other (stdlib)"
        for frame in reversed(frames):
            match = next((name for name, marks in _COMPONENTS if any(m in frame for m in marks)), None)
            if match:
                component = match
                break
        by_component[component] += n
        for name in {re.sub(r" \(.*?:\d+\)$", "", re.sub(r":\d+\)$", ")", f)) for f in frames[1:]
                     if ("totpadmin/" in f and "totpadmin/cli/" not in f and "server/app.py" not in f)
                     or "sqlalchemy/orm/session.py" in f}:
            inclusive[name] += n
    if not total:
        return "(no samples)"
    lines = [f"  {100 * n / total:5.1f}%  {name}" for name, n in by_component.most_common()]
    lines.append(f"  heaviest totpadmin functions (inclusive, {total} samples):")
    lines += [f"  {100 * n / total:5.1f}%    {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- the run


def make_conf(dest: Path) -> Path:
    shutil.copytree(ROOT / "conf", dest)
    props = dest / "totp.properties"
    lines = [ln for ln in props.read_text().splitlines() if ln.split("=", 1)[0].strip() not in BENCH_PROPERTIES]
    lines += [f"{k}={v}" for k, v in BENCH_PROPERTIES.items()]
    props.write_text("\n".join(lines) + "\n")
    return dest


@dataclass
class Store:
    """A data directory (key ring, TLS certificate) and its database: SQLite in it, or a PostgreSQL schema."""

    data_dir: Path
    url: str | None = None  # None: SQLite in data_dir
    schema: str | None = None

    def args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)] + (["--database-url", self.url] if self.url else [])


def loopback_url(url: str) -> str:
    """``url`` if its database is on this machine (loopback or a Unix socket); else exit 2."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    hosts = [parsed.host] + [h for h in str(parsed.query.get("host", "")).split(",") if h]
    if parsed.get_backend_name() != "postgresql" or any(h not in (None, "", "127.0.0.1", "localhost", "::1")
                                                        and not h.startswith("/") for h in hosts):
        raise SystemExit(f"bench: --database-url must be a PostgreSQL URL on 127.0.0.1 (got "
                         f"{parsed.render_as_string(hide_password=True)})")
    return url


def new_pg_store(base_url: str, data_dir: Path, name: str) -> Store:
    """A fresh schema of its own (as tests/conftest.py does), dropped by :func:`drop_pg_store`."""
    import sqlalchemy as sa

    schema = f"bench_{name}_{os.getpid()}_{int(time.time())}"
    engine = sa.create_engine(base_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    sep = "&" if "?" in base_url else "?"
    return Store(data_dir, f"{base_url}{sep}options=-csearch_path%3D{schema}", schema)


def drop_pg_store(base_url: str, store: Store) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(base_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE'))
    except Exception as exc:  # cleanup must go on
        log(f"could not drop schema {store.schema}: {exc}")
    finally:
        engine.dispose()


def seed_store(store: Store, conf: Path, users: int, cache: Path | None) -> dict:
    """The first admin and ``users`` enrolled bench users (a SQLite store is copied from ``cache`` if it
    has one of that size, and kept there for next time)."""
    cached = cache / f"store-{users}" if cache and store.url is None else None
    if cached is not None and (cached / "complete").exists():
        log(f"copying the cached {users:,}-user store from {cached}")
        shutil.copytree(cached, store.data_dir, ignore=shutil.ignore_patterns("complete", "seed.json"))
        return json.loads((cached / "seed.json").read_text()) | {"cached": True}
    target = Store(cached, None) if cached is not None else store
    if cached is not None and cached.exists():
        shutil.rmtree(cached)  # an interrupted earlier load
    run([str(TOTP_ADMIN), "db", "upgrade", *target.args()])
    run([str(TOTP_ADMIN), "user", "add", "admin", "--role", "admin", *target.args()], input=ADMIN_PASSWORD + "\n")
    log(f"seeding {users:,} users (scripts/bench_seed.py)")
    started = time.monotonic()
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_seed.py"), *target.args(),
                        "--conf-dir", str(conf), "--users", str(users)],
                       stdout=subprocess.PIPE, text=True, timeout=3600, cwd=ROOT)  # progress on our stderr
    if r.returncode != 0:
        raise RuntimeError(f"bench_seed.py exited with {r.returncode}: {r.stdout}")
    info = {"users": users, "seconds": round(time.monotonic() - started, 1), "summary": r.stdout.strip(),
            "db_bytes": sum(p.stat().st_size for p in target.data_dir.glob("totp-admin.db*")) if not target.url else None}
    log(r.stdout.strip())
    if cached is not None:
        (cached / "seed.json").write_text(json.dumps(info))
        (cached / "complete").write_text("")
        shutil.copytree(cached, store.data_dir, ignore=shutil.ignore_patterns("complete", "seed.json"))
    return info


def reset_failures(store: Store) -> None:
    """Wrong-code counts and lockouts back to none, before each validateTOTP run: over several runs the
    same users would otherwise reach maxFailedAttempts and answer lockout faults (cheaper, and HTTP 500)."""
    import sqlalchemy as sa

    engine = sa.create_engine(store.url or f"sqlite:///{store.data_dir / 'totp-admin.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE totp_state SET failures = 0, lockouts = 0, locked_until = NULL"
                                 " WHERE failures > 0 OR lockouts > 0 OR locked_until IS NOT NULL"))
    finally:
        engine.dispose()


def serve_supports_workers() -> bool:
    try:
        return "--workers" in run([str(TOTP_ADMIN), "serve", "--help"], timeout=60)
    except (RuntimeError, subprocess.TimeoutExpired):
        return False


def pair_affinities(cpu_affinity: str | None) -> tuple[str | None, str | None]:
    """--cpu-affinity for the two servers of (g): a CPU each, as serve --workers 2 pins its workers (two
    servers left to "auto" could pick the same CPU); "off" or an explicit list is passed to both."""
    if cpu_affinity not in (None, "auto"):
        return cpu_affinity, cpu_affinity
    cpus = sorted(os.sched_getaffinity(0))
    return (str(cpus[0]), str(cpus[1])) if len(cpus) >= 2 else (cpu_affinity, cpu_affinity)


def start_server(kind: str, tmp: Path, store: Store | None, conf: Path, cpu_affinity: str | None = None,
                 name: str | None = None) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOTP_")}
    env["TOTP_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    if kind == "bare":
        tls_dir = tmp / "bare-tls"
        args = [sys.executable, str(SCRIPTS / "bench_bare.py"), "--port", str(port), "--tls-dir", str(tls_dir)]
        ca = tls_dir / "ca.crt"
    else:
        args = [str(TOTP_ADMIN), "serve", *store.args(), "--conf-dir", str(conf), "--host", HOST, "--port", str(port)]
        if kind == "two":
            args += ["--workers", "2"]
        if cpu_affinity is not None:
            args += ["--cpu-affinity", cpu_affinity]
        ca = store.data_dir / "tls" / "ca.crt"
    name = name or kind
    log(f"starting {name}: {' '.join(args[1:])}")
    server = Server(name, args, env=env, log_path=tmp / f"server-{name}.log", port=port, ca=ca)
    server.wait_listening()
    return server


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[:1]
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release(), "wrk": (wrk_version or ["?"])[0].split(" Copyright")[0]}


def fmt_table(results: list[Result]) -> str:
    rows = [("scenario", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "ratio to bare")]
    for r in results:
        if not r.ok:
            rows.append((f"({r.key}) {r.label}", "-", "-", "-", "-", r.note or "skipped"))
            continue
        ratio = f"{r.ratio_to_bare:.2f}" if r.ratio_to_bare is not None else "-"
        rows.append((f"({r.key}) {r.label}", f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
                     f"{r.cpu_us_per_req:,.0f}", ratio))
    return _table(rows, right=(1, 2, 3, 4, 5))


def fmt_details(results: list[Result]) -> str:
    rows = [("scenario", "requests", "server CPU %", "CPU s per server process", "wrk CPU %", "other CPU %",
             "machine busy %", "notes")]
    for r in results:
        if r.ok:
            rows.append((f"({r.key})", f"{r.wrk['requests']:,}", f"{r.server_cpu_pct:.0f}",
                         " + ".join(f"{v:.1f}" for v in r.per_process_cpu_s), f"{r.wrk_cpu_pct:.0f}",
                         f"{r.other_cpu_pct:.0f}", f"{r.machine_busy_pct:.0f}", r.note or "-"))
    return _table(rows, right=(1, 2, 4, 5, 6))


def fmt_hostile(results: list[Result], normal: Result) -> str:
    rows = [("hostile request", "answer", "body bytes", "CPU µs/req", "ratio to (b)")]
    for r in results:
        if r.ok:
            rows.append((f"({r.key}) {r.label.removeprefix('hostile: ')}", r.answer, f"{r.body_bytes:,}",
                         f"{r.cpu_us_per_req:,.0f}", f"{r.cpu_us_per_req / normal.cpu_us_per_req:.1f}"))
        else:
            rows.append((f"({r.key}) {r.label.removeprefix('hostile: ')}", "-", "-", "-", r.note or "skipped"))
    return _table(rows, right=(2, 3, 4))


def _table(rows, right=()) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    def line(row):
        return "| " + " | ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                                 for i, (c, w) in enumerate(zip(row, widths))) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(rows[0]), sep, *map(line, rows[1:])])


def targets(by: dict[str, Result], connections: int) -> list[tuple[str, str, bool | str | None]]:
    out = []
    def ok(*keys):
        return all(k in by and by[k].ok for k in keys)
    if ok("a", "b"):
        v = by["b"].rps / by["a"].rps
        out.append(("SOAP initTOTP (TLS, auth, DB) >= 1/3 of bare req/s", f"{v:.2f} (b/a)", v >= 1 / 3))
    else:
        out.append(("SOAP initTOTP >= 1/3 of bare req/s", "not measured", None))
    # Throughput against throughput: both saturated (bs, es). At (b)'s 10 connections one worker is
    # near its plateau, but each of two workers has only 5 and is far from its own.
    if ok("bs", "es"):
        v = by["es"].rps / by["bs"].rps
        out.append((f"2 workers >= 1.7 x 1 worker (SOAP initTOTP, saturated: {by['es'].label.rsplit(', ', 1)[1]})",
                    f"{v:.2f} x (es/bs)", v >= 1.7))
    else:
        out.append(("2 workers >= 1.7 x 1 worker (saturated)", "not measured (scenarios bs, es)", None))
    if ok("b", "e"):
        v = by["e"].rps / by["b"].rps
        out.append((f"  the same at {connections} connections, about {connections / 2:g} per worker (not saturated)",
                    f"{v:.2f} x (e/b)", "info"))
    if ok("b", "g"):
        v = by["g"].rps / by["b"].rps
        share = f"; (e) reaches {by['e'].rps / by['g'].rps:.0%} of it" if ok("e") else ""
        out.append(("  this machine's ceiling: 2 separate servers, a store each", f"{v:.2f} x (g/b){share}", "info"))
    # (e)/(b) = 2 x (h/b) x (g/2h) x (e/g): one worker at half the connections, two processes that share
    # nothing against twice that worker, and what --workers 2 loses by sharing the store.
    if ok("b", "h"):
        v = by["h"].rps / by["b"].rps
        out.append(("  one worker at half the connections (each worker's share in e and g)", f"{v:.2f} x (h/b)", "info"))
    if ok("g", "h"):
        v = by["g"].rps / (2 * by["h"].rps)
        out.append(("  2 separate servers against twice that one worker", f"{v:.2f} x (g/2h)", "info"))
    hostile = [r for key, r in by.items() if key.startswith("x") and r.ok]
    if hostile and ok("b"):
        worst = max(hostile, key=lambda r: r.cpu_us_per_req)
        v = worst.cpu_us_per_req / by["b"].cpu_us_per_req
        out.append((f"no hostile request costs over {HOSTILE_MAX_RATIO:g} x the server CPU of (b)",
                    f"{v:.1f} x, the worst of {len(hostile)}: ({worst.key})", v <= HOSTILE_MAX_RATIO))
    if ok("d", "f"):
        v = by["f"].p50_ms / by["d"].p50_ms
        out.append((f"p50 validateTOTP at {by['f'].label.split(', ')[1]} <= 1.2 x at {by['d'].label.split(', ')[1]}",
                    f"{v:.2f} x (f/d, {connections} connections)", v <= 1.2))
    if ok("d1", "f1"):
        v = by["f1"].p50_ms / by["d1"].p50_ms
        out.append(("  same, 1 connection (service time, no queueing)", f"{v:.2f} x (f1/d1)", v <= 1.2))
    if ok("k", "d") and by["k"].cpu_us_per_signin:
        v = by["k"].cpu_us_per_signin / by["d"].cpu_us_per_req
        out.append(("CIAM sign-in (2 JSON calls, bearer) <= 1.6 x the server CPU of one form validateTOTP",
                    f"{v:.2f} x ({by['k'].cpu_us_per_signin:,.0f} / {by['d'].cpu_us_per_req:,.0f} µs, k/d)", v <= 1.6))
    if ok("k", "v") and by["k"].cpu_us_per_signin:
        v = by["k"].cpu_us_per_signin / by["v"].cpu_us_per_req
        out.append(("  the same sign-in against one SOAP 1.1 validateTOTP (XML envelope)",
                    f"{v:.2f} x ({by['k'].cpu_us_per_signin:,.0f} / {by['v'].cpu_us_per_req:,.0f} µs, k/v)", "info"))
    share = bearer_share(sc_profile_files.get("k", []))
    if share is not None:
        out.append(("bearer-token check <= 10 % of a CIAM call's server CPU (py-spy samples of k)",
                    f"{share:.1%}", share <= 0.10))
    if ok("k1", "m1"):
        v = by["m1"].p50_ms / by["k1"].p50_ms
        out.append((f"p50 CIAM sign-in calls at {by['m1'].label.split(', ')[1]} <= 1.2 x at "
                    f"{by['k1'].label.split(', ')[1]}", f"{v:.2f} x (m1/k1)", v <= 1.2))
    if ok("s", "d"):
        v = by["s"].cpu_us_per_req / by["d"].cpu_us_per_req
        out.append(("me/totp VALIDATE by a signed-in user against one form validateTOTP (server CPU per call)",
                    f"{v:.2f} x ({by['s'].cpu_us_per_req:,.0f} / {by['d'].cpu_us_per_req:,.0f} µs, s/d)", "info"))
    if ok("p", "d"):
        v = by["p"].cpu_us_per_req / by["d"].cpu_us_per_req
        out.append(("a self-service page (GET /account/enroll, a rendered template) against one form "
                    "validateTOTP (server CPU per call)",
                    f"{v:.2f} x ({by['p'].cpu_us_per_req:,.0f} / {by['d'].cpu_us_per_req:,.0f} µs, p/d)", "info"))
    if ok("t"):
        out.append(("access tokens issued per second (client credentials, 1 worker)", f"{by['t'].rps:,.0f}/s", "info"))
    return out


# What checking a bearer token runs: the cached verdict and its confirmation in the call's transaction
# (operations/application_logins.py, OAuthTokens.alive), and reading the header.
_BEARER_FRAMES = ("operations/application_logins.py", "alive (totpadmin/operations/oauth.py", "bearer_token (")


def bearer_share(paths: list[Path]) -> float | None:
    """The share of the profiled samples spent checking bearer tokens; None without a profile."""
    total = bearer = 0
    for stack, n in profile_stacks(paths):
        total += n
        if any(mark in stack for mark in _BEARER_FRAMES):
            bearer += n
    return bearer / total if total else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--duration", type=float, help="seconds measured per scenario (default 10; --quick 3)")
    p.add_argument("--warmup", type=float, help="seconds of load before each measurement (default 2; --quick 1)")
    p.add_argument("--connections", type=int, default=10, help="wrk connections (default 10; -t1 always)")
    p.add_argument("--users", type=int, help="enrolled users for (f) (default 1000000; --quick 10000)")
    p.add_argument("--small-users", type=int, default=1000, help="enrolled users for (b)-(e) and (d) (default 1000)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 s per scenario, 1 s warm-up, 10^4 users")
    p.add_argument("--repeat", type=int, default=1,
                   help="measured runs per scenario; the one with the median req/s is reported (default 1)")
    p.add_argument("--only", help="comma-separated scenario keys (a,b,c,d,e,g,h,bs,es,f,d1,f1,t,k,k1,m1,s,p, hostile x...; "
                                  "a trailing * matches a prefix: 'b,x*'); default all")
    p.add_argument("--database-url", type=loopback_url,
                   help="run on this PostgreSQL (127.0.0.1 only) instead of SQLite: each store in a fresh schema, "
                        "dropped at the end (e.g. postgresql+psycopg://root@127.0.0.1:5432/test)")
    p.add_argument("--seed-cache", type=Path, help="SQLite: keep the seeded (f) store here and reuse it next time "
                                                    "(copied into each run)")
    p.add_argument("--profile", type=Path, dest="profile_dir",
                   help="after measuring, run scenarios --profile-keys once more under py-spy (Python CPU: --gil); "
                        "collapsed stacks go here, a summary is printed")
    p.add_argument("--profile-keys", default="b,d,f,k", help="scenarios to profile (default b,d,f,k)")
    p.add_argument("--cpu-affinity", help="pass --cpu-affinity to totp-admin serve (auto, off or CPUs; default: "
                                           "serve's own default, auto)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (stores, logs, Lua scripts)")
    opts = p.parse_args(argv)
    opts.duration = opts.duration or (3 if opts.quick else 10)
    opts.warmup = opts.warmup if opts.warmup is not None else (1 if opts.quick else 2)
    opts.users = opts.users or (10_000 if opts.quick else 1_000_000)
    opts.profile_keys = set(opts.profile_keys.split(","))
    if shutil.which("wrk") is None:
        print("bench: wrk not found (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if min(opts.duration, opts.connections, opts.users, opts.small_users, opts.repeat) < 1 or opts.warmup < 0:
        print("bench: --duration, --connections, --users, --small-users and --repeat must be at least 1",
              file=sys.stderr)
        return 2

    all_scenarios = scenarios(opts.small_users, opts.users, opts.connections)
    wanted = set(opts.only.split(",")) if opts.only else {s.key for s in all_scenarios}
    wanted = {s.key for s in all_scenarios for w in wanted if w.endswith("*") and s.key.startswith(w[:-1])} \
        | {w for w in wanted if not w.endswith("*")}  # x*: every hostile scenario
    unknown = wanted - {s.key for s in all_scenarios}
    if unknown:
        print(f"bench: unknown scenarios {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    chosen = [s for s in all_scenarios if s.key in wanted]
    workers_ok = serve_supports_workers()

    tmp = Path(tempfile.mkdtemp(prefix="totp-bench-"))
    servers: list[Server] = []
    pg_stores: list[Store] = []

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    results: dict[str, Result] = {}
    clients: dict[str, tuple[str, str]] = {}  # store name -> OAuth2 client (scenarios t, k...)
    seeds = {}
    info = machine()
    started = time.monotonic()
    try:
        conf = make_conf(tmp / "conf")
        needs = {s.server for s in chosen}
        stores: dict[str, Store] = {}
        for name, users, kinds, cache in (("small", opts.small_users, {"one", "two"}, None),
                                          ("pair1", opts.small_users, {"pair"}, None),
                                          ("pair2", opts.small_users, {"pair"}, None),
                                          ("big", opts.users, {"big"}, opts.seed_cache)):
            if needs & kinds:
                if opts.database_url:
                    stores[name] = new_pg_store(opts.database_url, tmp / name, name)
                    pg_stores.append(stores[name])
                else:
                    stores[name] = Store(tmp / name)
                seeds[name] = seed_store(stores[name], conf, users, cache)
                if any(sc.flow and sc.server in kinds for sc in chosen):
                    clients[name] = bench_ciam.add_client(TOTP_ADMIN, stores[name].args())

        # Every server runs for the whole measurement (idle ones cost nothing), and with --repeat the
        # scenarios are measured in rounds (a b c ... a b c ...): a change in the machine's background load
        # then hits every scenario alike instead of skewing one ratio.
        live: dict[str, Server | ServerPair] = {}
        for s in chosen:
            if s.connections < 1:  # (h) with --connections 1
                results[s.key] = Result(s.key, s.label, note="skipped: needs --connections 2 or more")
        store_of = {"bare": None, "one": stores.get("small"), "two": stores.get("small"), "big": stores.get("big")}
        for kind in ("bare", "one", "two", "pair", "big"):
            group = [s for s in chosen if s.server == kind]
            if not group:
                continue
            if kind == "pair" and opts.connections < 2:
                for s in group:
                    results[s.key] = Result(s.key, s.label, note="skipped: needs --connections 2 or more")
                continue
            if kind == "pair":
                pair = ServerPair([start_server("one", tmp, stores[f"pair{i}"], conf, affinity, name=f"pair{i}")
                                   for i, affinity in enumerate(pair_affinities(opts.cpu_affinity), start=1)])
                servers.extend(pair.servers)
                live[kind] = pair
                continue
            if kind == "two" and not workers_ok:
                for s in group:
                    results[s.key] = Result(s.key, s.label, note="skipped: `totp-admin serve --help` has no --workers")
                continue
            server = start_server(kind, tmp, store_of[kind], conf, opts.cpu_affinity)
            servers.append(server)
            live[kind] = server
        plans = []
        for s in chosen:
            if s.key in results:
                continue
            server = live[s.server]
            script = tmp / f"scenario-{s.key}.lua"
            body_file = None
            if s.body is not None:
                body_file = tmp / f"scenario-{s.key}.body"
                body_file.write_bytes(s.body)
            try:
                client = clients.get("big" if s.server == "big" else "small")
                if s.flow == "token":
                    s = replace(s, authorization=bench_ciam.basic(client))
                if s.flow == "signin":
                    member = server.members()[0]
                    token = bench_ciam.access_token(HOST, member.port, member.ca, client)
                    s = replace(s, authorization=f"Bearer {token}")
                    script.write_text(bench_ciam.sign_in_lua(token, PREFIX, *s.users, WRONG_CODE))
                elif s.flow in ("me-totp", "account-page"):
                    member = server.members()[0]
                    users = [f"{PREFIX}{n:07d}" for n in range(s.users[0], s.users[1] + 1)]
                    if s.flow == "account-page":  # other users than (s)'s, without TOTP: no second step
                        bench_ciam.without_totp(HOST, member.port, member.ca, users, ("admin", ADMIN_PASSWORD))
                    tokens = bench_ciam.session_tokens(HOST, member.port, member.ca, users)
                    script.write_text(bench_ciam.me_totp_lua(tokens, WRONG_CODE) if s.flow == "me-totp"
                                      else bench_ciam.account_page_lua(tokens))
                else:
                    script.write_text(lua_script(s, body_file))
                for member in server.members():
                    preflight(s, member)
            except (RuntimeError, OSError) as exc:
                log(f"({s.key}) {exc}")
                results[s.key] = Result(s.key, s.label, note=f"failed: {str(exc).splitlines()[0][:80]}")
                continue
            members = server.members()
            # The pair shares the connections out as SO_REUSEPORT would on average: half each.
            shares = [s.connections // len(members) + (i < s.connections % len(members)) for i in range(len(members))]
            loads = [(f"https://{HOST}:{m.port}{s.path}", n) for m, n in zip(members, shares)]
            plans.append((s, server, loads, script, []))
        failed: dict[str, str] = {}
        for round_no in range(1, opts.repeat + 1):
            for s, server, loads, script, runs in plans:
                if s.key in failed:
                    continue
                log(f"({s.key}) {s.label}: {opts.warmup:g} s warm-up + {opts.duration:g} s, {s.connections} connections"
                    + (f", round {round_no}/{opts.repeat}" if opts.repeat > 1 else ""))
                try:
                    if s.count_bool or s.flow == "signin":
                        reset_failures(store_of[s.server])
                    if opts.warmup > 0:
                        wrk_run(loads, script, opts.warmup)
                    r = measure_once(s, server, loads, script, opts)
                    runs.append(r)
                    log(f"({s.key}) {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
                        f"{r.cpu_us_per_req:,.0f} µs CPU/req{'; ' + r.note if r.note else ''}")
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
                    log(f"({s.key}) failed: {exc}")
                    failed[s.key] = f"failed: {str(exc).splitlines()[0][:80]}"
        for s, server, loads, script, runs in plans:
            if s.key in failed or not runs:
                results[s.key] = Result(s.key, s.label, note=failed.get(s.key, "no run"))
                continue
            results[s.key] = median_run(runs)
            if opts.profile_dir and s.key in opts.profile_keys and server.name not in ("bare", "pair"):
                log(f"({s.key}) profiling: {opts.duration:g} s more under py-spy")
                results[s.key].profile = profile(s, server, loads, script, opts)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        log(f"stopped: {exc}")
        return 1
    finally:
        for server in servers:
            server.stop()
        for store in pg_stores:
            drop_pg_store(opts.database_url, store)
        if opts.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    bare = results.get("a")
    ordered = [results[s.key] for s in all_scenarios if s.key in results]
    for r in ordered:
        if r.ok and bare is not None and bare.ok:
            r.ratio_to_bare = r.rps / bare.rps
    by = {r.key: r for r in ordered}
    database = "PostgreSQL (" + opts.database_url.split("@")[-1] + ")" if opts.database_url else "SQLite"
    print(f"\ntotp-admin benchmark: {info['nproc']} x {info['cpu']}, Python {info['python']}, {info['wrk']}, "
          f"{database}, serve --cpu-affinity {opts.cpu_affinity or 'auto (default)'}; wrk -t1 -c{opts.connections} -d{opts.duration:g}s after {opts.warmup:g} s warm-up"
          f"{f', median of {opts.repeat} runs' if opts.repeat > 1 else ''}, "
          f"https://{HOST} only\n")
    print(fmt_table([r for r in ordered if not r.key.startswith("x")]))
    hostile = [r for r in ordered if r.key.startswith("x")]
    if hostile and by.get("b") is not None and by["b"].ok:
        print(f"\nHostile requests, server CPU per request against (b)'s {by['b'].cpu_us_per_req:,.0f} µs:\n")
        print(fmt_hostile(hostile, by["b"]))
    print("\nDetails. CPU % of one core during the measured run: server = utime+stime of its process tree (/proc/PID/"
          "stat), wrk = the client, other = everything else on the machine (/proc/stat; e.g. PostgreSQL, other "
          "jobs); machine busy = all cores (100 = every core):\n")
    print(fmt_details(ordered))
    measured = [r for r in ordered if r.ok]
    if measured and max(r.other_cpu_pct for r in measured) > 25:
        print(f"\nWARNING: other processes used up to {max(r.other_cpu_pct for r in measured):.0f}% of a core while "
              f"measuring (column 'other CPU %'): on this {os.cpu_count()}-core machine that skews the numbers; "
              f"rerun when the machine is idle, or with --repeat 3.")
    print()
    for name, s in seeds.items():
        cached = " (from --seed-cache)" if s.get("cached") else ""
        size = f"; database {s['db_bytes'] / 2**20:,.0f} MiB" if s.get("db_bytes") else ""
        print(f"seed {name}: {s['summary']}{cached}{size}")
    print("\nTargets:")
    for what, value, met in targets(by, opts.connections):
        verdict = {True: "met", False: "MISSED", None: "n/a", "info": "info"}[met]
        print(f"  {verdict:6} {what}: {value}")
    for r in ordered:
        if r.profile:
            print(f"\nProfile of ({r.key}) {r.label} (py-spy --gil: where the Python CPU goes):\n{r.profile}")
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    if opts.json:
        opts.json.write_text(json.dumps({"machine": info, "database": database,
                                         "options": {k: (str(v) if isinstance(v, Path) else
                                                         sorted(v) if isinstance(v, set) else v)
                                                     for k, v in vars(opts).items() if k != "database_url"},
                                         "seeds": seeds, "results": [asdict(r) for r in ordered],
                                         "targets": targets(by, opts.connections)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
