"""A real browser against h3q-server: Debian's chromium, driven by
playwright-core (tests/browser/load_page.mjs), loads pages over HTTP/3.

A page written here pulls a stylesheet, a script and an image, and its
script fetch()es: JSON and binary bodies POSTed to /echo, 3 MB POSTed to
/digest, a 5 MB /bytes download, 24 /bytes downloads at once, and /trailers
(a body, then a trailer section). The page measures each (length, SHA-256,
the i % 251 pattern) and the test compares with values computed in Python.
Every request must have gone over HTTP/3: performance entries'
nextHopProtocol and the DevTools protocol's response.protocol both say "h3".
Chromium's net-log of the run shows one QUIC connection that the server
neither closed nor reset a request stream of, and the trailers it decoded.
The demo site in www/ and /hints (103 Early Hints) are loaded too, and
www/webtransport.html runs a WebTransport echo (datagrams, both kinds of
streams, a close) against h3q-server --webtransport, with
serverCertificateHashes and with the SPKI flag.

Chromium is told to use QUIC for the server's origin
(--origin-to-force-quic-on) and to trust the test certificate by the SHA-256
of its public key. Nothing may leave loopback: host names resolve to nothing
(--host-resolver-rules), background networking is off, and the net-log must
show no name resolved and no byte sent to an address outside loopback. A
control run loads a page from a TLS-over-TCP server and must be rejected by
the same protocol check, so the check can fail.

scripts/setup.sh test installs chromium (Debian) and playwright-core (npm ci
into tests/browser/node_modules).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import os
import signal
import ssl
import struct
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from aioquic_client import H3Client
from aioquic_client import run as run_coro
from harness import SOURCE_DIR, pattern_sha256, require_tool, scaled

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_DIR = SOURCE_DIR / "tests" / "browser"
LOAD_PAGE = BROWSER_DIR / "load_page.mjs"
PAGE_TIMEOUT_S = 90.0  # the node script's own limit for one page run

BIG_N = 5_000_003  # odd, so the body does not end on a chunk boundary
TRAILERS_LEN = 60_000  # the /trailers body (apps/server/demo.c)
UPLOAD_LEN = 300_000  # POSTed to /echo and compared with what comes back
DIGEST_LEN = 3_000_001  # POSTed to /digest, which answers with its SHA-256
PARALLEL = 24  # concurrent fetch()es of /bytes/N on the one connection
ECHO_PAYLOAD = {"hello": "h3", "n": [1, 2, 3], "text": "grüße ✓ \"quoted\" \\ slash"}
CSS_COLOR = "rgb(1, 2, 3)"
IMG_W, IMG_H = 4, 3


# --------------------------------------------------------------------------
# the page


def png_bytes(w: int, h: int) -> bytes:
    """A valid w x h RGB PNG, so the browser can decode it and report its size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"".join(bytes((x * 40, y * 60, 200)) for x in range(w))
                    for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + \
        chunk(b"IEND", b"")


def upload_bytes(n: int, mul: int = 7, add: int = 3) -> bytes:
    """What the page POSTs; app.js builds the same bytes ((i * mul + add) % 256)."""
    period = bytes((i * mul + add) % 256 for i in range(256))
    return (period * (n // 256 + 1))[:n]


INDEX_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>h3q chromium test</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/style.css">
</head>
<body>
<h1 id="title">served by h3q</h1>
<p id="styled">styled</p>
<p id="script">script did not run</p>
<img id="img" src="/pixel.png" alt="pixel">
<script src="/app.js"></script>
</body>
</html>
"""

STYLE_CSS = f"#styled {{ color: {CSS_COLOR}; }}\n"

# Each check catches its own failure so one broken check hides no other.
APP_JS = """"use strict";
document.getElementById("script").textContent = "script ran";

const ECHO_PAYLOAD = __ECHO_PAYLOAD__;

async function sha256hex(buf) {
  const d = await crypto.subtle.digest("SHA-256", buf);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

function firstPatternMismatch(bytes) {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== i % 251) return i;
  return -1;
}

async function step(fn) {
  try {
    return await fn();
  } catch (e) {
    return { error: String(e) };
  }
}

async function download(path) {
  const r = await fetch(path, { cache: "no-store" });
  const bytes = new Uint8Array(await r.arrayBuffer());
  return {
    status: r.status,
    contentLength: r.headers.get("content-length"),
    length: bytes.length,
    sha256: await sha256hex(bytes),
    firstPatternMismatch: firstPatternMismatch(bytes),
  };
}

async function echoJson() {
  const r = await fetch("/echo", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(ECHO_PAYLOAD),
  });
  return { status: r.status, contentType: r.headers.get("content-type"), body: await r.json() };
}

async function echoBinary() {
  const sent = new Uint8Array(__UPLOAD_LEN__);
  for (let i = 0; i < sent.length; i++) sent[i] = (i * 7 + 3) % 256;
  const r = await fetch("/echo?binary", {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: sent,
  });
  const got = new Uint8Array(await r.arrayBuffer());
  return { status: r.status, length: got.length, sha256: await sha256hex(got) };
}

async function digestUpload() {
  const sent = new Uint8Array(__DIGEST_LEN__);
  for (let i = 0; i < sent.length; i++) sent[i] = (i * 13 + 5) % 256;
  const r = await fetch("/digest", { method: "POST", body: sent });
  return { status: r.status, text: await r.text() };
}

async function parallel() {
  const sizes = Array.from({ length: __PARALLEL__ }, (_, i) => 100000 + i);
  const got = await Promise.all(sizes.map((n) => download(`/bytes/${n}`)));
  return got.map((g, i) => ({
    n: sizes[i], status: g.status, length: g.length, firstPatternMismatch: g.firstPatternMismatch,
  }));
}

async function image() {
  const img = document.getElementById("img");
  await img.decode();
  return { complete: img.complete, width: img.naturalWidth, height: img.naturalHeight };
}

window.h3qChecks = (async () => ({
  image: await step(image),
  echoJson: await step(echoJson),
  echoBinary: await step(echoBinary),
  big: await step(() => download("/bytes/__BIG_N__")),
  trailers: await step(() => download("/trailers")),
  digestUpload: await step(digestUpload),
  parallel: await step(parallel),
}))();
"""


def write_site(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(INDEX_HTML)
    (root / "style.css").write_text(STYLE_CSS)
    (root / "pixel.png").write_bytes(png_bytes(IMG_W, IMG_H))
    js = (APP_JS.replace("__ECHO_PAYLOAD__", json.dumps(ECHO_PAYLOAD))
          .replace("__UPLOAD_LEN__", str(UPLOAD_LEN)).replace("__BIG_N__", str(BIG_N))
          .replace("__DIGEST_LEN__", str(DIGEST_LEN)).replace("__PARALLEL__", str(PARALLEL)))
    (root / "app.js").write_text(js)


# the paths the page must request, and how (performance entry initiatorType)
EXPECTED_RESOURCES = {
    "/style.css": "link",
    "/app.js": "script",
    "/pixel.png": "img",
    "/echo": "fetch",
    "/echo?binary": "fetch",
    f"/bytes/{BIG_N}": "fetch",
    "/trailers": "fetch",
    "/digest": "fetch",
    **{f"/bytes/{100_000 + i}": "fetch" for i in range(PARALLEL)},
}


# --------------------------------------------------------------------------
# chromium


def spki_sha256_b64(cert_pem: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what
    --ignore-certificate-errors-spki-list takes."""
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def chromium_flags(port: int, spki: str, netlog: Path | None = None,
                   force_quic: bool = True) -> list[str]:
    flags = [
        # trust the test certificate by its key, nothing else
        f"--ignore-certificate-errors-spki-list={spki}",
        # nothing leaves loopback: no name resolves, no background traffic
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-pings",
        # CI runs as root with a small /dev/shm
        "--no-sandbox",
        "--disable-dev-shm-usage",
    ]
    if force_quic:
        flags.append(f"--origin-to-force-quic-on=127.0.0.1:{port}")
    if netlog is not None:
        flags.append(f"--log-net-log={netlog}")
    return flags


@dataclass
class PageRun:
    report: dict
    stderr: str
    cmd_desc: str
    netlog: Path | None = None

    def describe(self) -> str:
        r = dict(self.report)
        r["entries"] = r.get("entries", [])[:40]
        r["responses"] = r.get("responses", [])[:40]
        return (f"{self.cmd_desc}\nreport: {json.dumps(r, indent=1)[:8000]}\n"
                f"stderr tail:\n{self.stderr[-3000:]}")


def require_browser() -> str:
    node = require_tool("node", "nodejs")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: install Debian package chromium "
                    "(scripts/setup.sh test does)", pytrace=False)
    if not (BROWSER_DIR / "node_modules" / "playwright-core" / "package.json").is_file():
        pytest.fail(f"playwright-core is not installed in {BROWSER_DIR}/node_modules "
                    "(scripts/setup.sh test runs npm ci there)", pytrace=False)
    return node


def load_page(url: str, flags: list[str], home: Path, selectors: tuple[str, ...] = (),
              styles: tuple[tuple[str, str], ...] = (), netlog: Path | None = None) -> PageRun:
    """Runs load_page.mjs for url and returns its report. The script ends
    itself after PAGE_TIMEOUT_S; a run that still has not ended a little later
    is killed (its whole process group) and fails the test."""
    node = require_browser()
    opts = {"executablePath": str(CHROMIUM), "url": url, "args": flags,
            "timeoutMs": int(scaled(PAGE_TIMEOUT_S) * 1000),
            "selectors": list(selectors), "styles": [list(s) for s in styles]}
    cmd = [node, str(LOAD_PAGE), json.dumps(opts)]
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    desc = f"cmd: node {LOAD_PAGE.name} {json.dumps(opts)}"
    proc = subprocess.Popen(cmd, cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=scaled(PAGE_TIMEOUT_S) + 30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"load_page.mjs did not exit on its own\n{desc}\n"
                    f"stderr tail:\n{err.decode(errors='replace')[-3000:]}", pytrace=False)
    finally:
        # Chromium's helpers must not outlive the run.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    text_out, text_err = out.decode(errors="replace"), err.decode(errors="replace")
    lines = [l for l in text_out.splitlines() if l.startswith("{")]
    assert lines, (f"load_page.mjs printed no report (exit {proc.returncode})\n{desc}\n"
                   f"stdout:\n{text_out[-2000:]}\nstderr:\n{text_err[-3000:]}")
    report = json.loads(lines[-1])
    run = PageRun(report, text_err, f"{desc}\nexit {proc.returncode}", netlog)
    assert proc.returncode == 0, f"load_page.mjs exit {proc.returncode}\n{run.describe()}"
    return run


def path_of(url: str) -> str:
    u = urlsplit(url)
    return u.path + (f"?{u.query}" if u.query else "")


def protocol_problems(run: PageRun, origin: str) -> list[str]:
    """Every navigation/resource entry and every response from origin must
    say h3; returns what did not (empty when all did)."""
    problems = []
    entries = [e for e in run.report.get("entries", []) if e["name"].startswith(origin)]
    if not any(e["entryType"] == "navigation" for e in entries):
        problems.append("no navigation entry for the origin")
    for e in entries:
        if e["nextHopProtocol"] != "h3":
            problems.append(f"{e['entryType']} {path_of(e['name'])}: "
                            f"nextHopProtocol {e['nextHopProtocol']!r}")
    responses = [r for r in run.report.get("responses", []) if r["url"].startswith(origin)]
    if not responses:
        problems.append("no responses from the origin")
    for r in responses:
        if r["protocol"] != "h3":
            problems.append(f"response {path_of(r['url'])}: protocol {r['protocol']!r}")
    return problems


def read_netlog(path: Path) -> dict:
    """A Chromium net-log; one cut short (browser killed) loses its last,
    partial event and gets its closing brackets back."""
    text = path.read_text(errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        head = text[: text.rfind("},") + 1]
        return json.loads(head + "]}")


def is_loopback(addr: str) -> bool:
    """addr as the net-log writes it: 1.2.3.4:port or [v6]:port."""
    host = addr[1:addr.index("]")] if addr.startswith("[") else addr.rsplit(":", 1)[0]
    return host.startswith("127.") or host == "::1"


@dataclass
class NetlogTraffic:
    udp_with_traffic: set[str]  # remote addresses of UDP sockets that sent or received
    udp_connect_only: set[str]  # connected (a route lookup) but never sent or received
    tcp_connects: set[str]
    resolved_names: set[str]  # host names that resolved to an address


def netlog_traffic(log: dict) -> NetlogTraffic:
    c = log["constants"]
    name_of = {v: k for k, v in c["logEventTypes"].items()}
    begin = c["logEventPhase"]["PHASE_BEGIN"]
    udp_addr: dict[int, str] = {}
    udp_busy: set[int] = set()
    tcp: set[str] = set()
    resolving: dict[int, str] = {}
    resolved: set[str] = set()
    for e in log["events"]:
        kind, src, params = name_of.get(e["type"], ""), e["source"]["id"], e.get("params") or {}
        if kind == "UDP_CONNECT" and "address" in params:
            udp_addr[src] = params["address"]
        elif kind in ("UDP_BYTES_SENT", "UDP_BYTES_RECEIVED"):
            udp_busy.add(src)
        elif kind in ("TCP_CONNECT", "TCP_CONNECT_ATTEMPT") and "address" in params:
            tcp.add(params["address"])
        elif kind == "HOST_RESOLVER_MANAGER_REQUEST":
            if e["phase"] == begin:
                resolving[src] = params.get("host", "?")
            elif src in resolving and "net_error" not in params:
                resolved.add(resolving[src])  # "https://host:port" or a bare host
    busy = {a for s, a in udp_addr.items() if s in udp_busy}
    idle = {a for s, a in udp_addr.items() if s not in udp_busy}
    return NetlogTraffic(busy, idle, tcp, resolved)


@dataclass
class QuicSessionLog:
    """One QUIC session to the server as Chromium's net-log shows it."""
    closed_by_peer: list[dict]  # QUIC_SESSION_CLOSED params with from_peer
    close_frames_received: list[dict]
    resets_received: list[dict]  # RST_STREAM frames, any stream
    response_trailers: dict[int, list[str]]  # stream id -> "name: value" lines


def quic_sessions(log: dict, port: int) -> list[QuicSessionLog]:
    c = log["constants"]
    name_of = {v: k for k, v in c["logEventTypes"].items()}
    begin = c["logEventPhase"]["PHASE_BEGIN"]
    sessions: dict[int, QuicSessionLog] = {}
    for e in log["events"]:
        kind, src, params = name_of.get(e["type"], ""), e["source"]["id"], e.get("params") or {}
        if kind == "QUIC_SESSION" and e["phase"] == begin and params.get("port") == port:
            sessions[src] = QuicSessionLog([], [], [], {})
        s = sessions.get(src)
        if s is None:
            continue
        if kind == "QUIC_SESSION_CLOSED" and params.get("from_peer"):
            s.closed_by_peer.append(params)
        elif kind == "QUIC_SESSION_CONNECTION_CLOSE_FRAME_RECEIVED":
            s.close_frames_received.append(params)
        elif kind == "QUIC_SESSION_RST_STREAM_FRAME_RECEIVED":
            s.resets_received.append(params)
        elif kind == "QUIC_CHROMIUM_CLIENT_STREAM_READ_RESPONSE_TRAILERS":
            s.response_trailers[params.get("quic_stream_id", -1)] = params.get("headers", [])
    return list(sessions.values())


# --------------------------------------------------------------------------
# the runs (one browser start per page, shared by the checks of a module)


@pytest.fixture(scope="module")
def spki(certs) -> str:
    return spki_sha256_b64(certs.cert)


@pytest.fixture(scope="module")
def site_server(module_servers, tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    write_site(root)
    return module_servers.start("--root", str(root))


@pytest.fixture(scope="module")
def site_run(site_server, spki, tmp_path_factory) -> PageRun:
    d = tmp_path_factory.mktemp("chromium-site")
    netlog = d / "netlog.json"
    run = load_page(site_server.url("/"), chromium_flags(site_server.port, spki, netlog),
                    d / "home", selectors=("#title", "#script"),
                    styles=(("#styled", "color"),), netlog=netlog)
    site_server.assert_alive()
    return run


@pytest.fixture(scope="module")
def site_netlog(site_run) -> dict:
    assert site_run.report["ok"], site_run.describe()
    assert site_run.netlog is not None and site_run.netlog.is_file(), "no net-log was written"
    return read_netlog(site_run.netlog)


@pytest.fixture(scope="module")
def www_server(module_servers):
    return module_servers.start("--root", str(SOURCE_DIR / "www"))


def checks(run: PageRun) -> dict:
    assert run.report["ok"], f"the page run failed: {run.report['error']}\n{run.describe()}"
    c = run.report["checks"]
    assert isinstance(c, dict), f"the page's checks did not run\n{run.describe()}"
    return c


# --------------------------------------------------------------------------
# the page written here


def test_page_and_subresources_load(site_run, site_server):
    r = site_run.report
    assert r["ok"], f"page run failed: {r['error']}\n{site_run.describe()}"
    assert r["navigation"] == {"status": 200, "url": site_server.url("/")}, site_run.describe()
    assert r["failed"] == [], site_run.describe()
    assert r["console"] == [], site_run.describe()
    assert r["text"]["#title"] == "served by h3q", site_run.describe()
    assert r["text"]["#script"] == "script ran", site_run.describe()  # app.js ran
    assert r["styles"]["#styled|color"] == CSS_COLOR, site_run.describe()  # style.css applied
    assert checks(site_run)["image"] == {"complete": True, "width": IMG_W, "height": IMG_H}, \
        site_run.describe()
    statuses = {path_of(x["url"]): x["status"] for x in r["responses"]}
    for path in ["/", *EXPECTED_RESOURCES]:
        assert statuses.get(path) == 200, \
            f"{path}: status {statuses.get(path)}\n{site_run.describe()}"


def test_every_request_used_h3(site_run, site_server):
    origin = site_server.url("")
    problems = protocol_problems(site_run, origin)
    assert not problems, "not HTTP/3:\n  " + "\n  ".join(problems) + "\n" + site_run.describe()
    seen = {path_of(e["name"]): e for e in site_run.report["entries"] if e["name"].startswith(origin)}
    assert seen.get("/", {}).get("entryType") == "navigation", site_run.describe()
    for path, initiator in EXPECTED_RESOURCES.items():
        e = seen.get(path)
        assert e is not None, f"no performance entry for {path}\n{site_run.describe()}"
        assert (e["initiatorType"], e["nextHopProtocol"]) == (initiator, "h3"), site_run.describe()


def test_fetch_post_json_echo(site_run):
    got = checks(site_run)["echoJson"]
    assert got == {"status": 200, "contentType": "application/json", "body": ECHO_PAYLOAD}, \
        site_run.describe()


def test_fetch_post_binary_echo(site_run):
    got = checks(site_run)["echoBinary"]
    want = hashlib.sha256(upload_bytes(UPLOAD_LEN)).hexdigest()
    assert got == {"status": 200, "length": UPLOAD_LEN, "sha256": want}, site_run.describe()


def test_fetch_post_large_upload(site_run):
    got = checks(site_run)["digestUpload"]
    want = hashlib.sha256(upload_bytes(DIGEST_LEN, 13, 5)).hexdigest()
    assert got == {"status": 200, "text": f"sha256 {want}\nlength {DIGEST_LEN}\n"}, \
        site_run.describe()


def test_fetch_parallel_downloads(site_run):
    got = checks(site_run)["parallel"]
    want = [{"n": 100_000 + i, "status": 200, "length": 100_000 + i, "firstPatternMismatch": -1}
            for i in range(PARALLEL)]
    assert got == want, site_run.describe()


def test_fetch_large_download(site_run):
    got = checks(site_run)["big"]
    assert got == {"status": 200, "contentLength": str(BIG_N), "length": BIG_N,
                   "sha256": pattern_sha256(BIG_N), "firstPatternMismatch": -1}, site_run.describe()


def test_fetch_response_with_trailers(site_run):
    got = checks(site_run)["trailers"]
    assert got == {"status": 200, "contentLength": str(TRAILERS_LEN), "length": TRAILERS_LEN,
                   "sha256": pattern_sha256(TRAILERS_LEN), "firstPatternMismatch": -1}, \
        site_run.describe()


def test_nothing_left_loopback(site_netlog, site_server):
    """Chromium's net-log of the run: every socket that moved a byte, and every
    TCP connect, was to loopback; no name resolved (all map to ~NOTFOUND).
    Chromium still connect()s a UDP socket to a public IPv6 address to probe
    IPv6 reachability; that is a route lookup that sends nothing, so it is
    allowed only while no byte goes through it."""
    t = netlog_traffic(site_netlog)
    # The log must show the QUIC socket to the server, or this check proves nothing.
    assert f"127.0.0.1:{site_server.port}" in t.udp_with_traffic, t
    assert not {a for a in t.udp_with_traffic if not is_loopback(a)}, t
    assert not {a for a in t.tcp_connects if not is_loopback(a)}, t
    names = {urlsplit(n).hostname if "://" in n else n for n in t.resolved_names}
    assert names <= {"127.0.0.1"}, t


def test_one_quic_connection_without_errors(site_netlog, site_server):
    """The whole page used one QUIC connection that the server neither closed
    nor reset a stream of: Chromium only STOP_SENDs the server's GREASE
    stream (an unknown type), which the server then resets; that is the one
    reset allowed, and only on a server-initiated unidirectional stream."""
    sessions = quic_sessions(site_netlog, site_server.port)
    assert len(sessions) == 1, f"{len(sessions)} QUIC sessions to the server: {sessions}"
    s = sessions[0]
    assert not s.closed_by_peer and not s.close_frames_received, s
    assert all(r["stream_id"] % 4 == 3 for r in s.resets_received), s


def test_trailers_reach_the_browser(site_netlog, site_server):
    """fetch() cannot see trailers; Chromium's net-log shows the trailer
    section it decoded for /trailers."""
    s = quic_sessions(site_netlog, site_server.port)
    trailers = [t for x in s for t in x.response_trailers.values()]
    want = [f"x-body-sha256: {pattern_sha256(TRAILERS_LEN)}", f"x-body-length: {TRAILERS_LEN}"]
    assert trailers == [want], trailers


# --------------------------------------------------------------------------
# the demo site (www/, what make run serves) and 103 Early Hints


def test_demo_site(www_server, spki, tmp_path):
    run = load_page(www_server.url("/"), chromium_flags(www_server.port, spki), tmp_path / "home",
                    selectors=("h1", "#proto span"), styles=(("h1", "font-size"),))
    r = run.report
    assert r["ok"], f"page run failed: {r['error']}\n{run.describe()}"
    assert r["navigation"]["status"] == 200, run.describe()
    assert r["failed"] == [], run.describe()
    # www/ has no favicon.ico: the browser's own request for it gets a 404
    assert [c for c in r["console"] if not c["url"].endswith("/favicon.ico")] == [], run.describe()
    assert r["text"]["h1"] == "h3q is serving this page over HTTP/3", run.describe()
    # the page reports its own navigation's protocol
    assert r["text"]["#proto span"] == "h3", run.describe()
    assert r["styles"]["h1|font-size"] == "22.4px", run.describe()  # 1.4rem from style.css
    problems = protocol_problems(run, www_server.url(""))
    assert not problems, "not HTTP/3:\n  " + "\n  ".join(problems) + "\n" + run.describe()
    css = [e for e in r["entries"] if path_of(e["name"]) == "/style.css"]
    assert len(css) == 1 and css[0]["nextHopProtocol"] == "h3", run.describe()
    www_server.assert_alive()


def decoded_header_blocks(log: dict) -> list[list[str]]:
    """Every HTTP/3 header section Chromium decoded ("name: value" lines)."""
    name_of = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    return [(e.get("params") or {}).get("headers", []) for e in log["events"]
            if name_of.get(e["type"]) == "HTTP3_HEADERS_DECODED"]


def test_early_hints_navigation(www_server, spki, tmp_path):
    """GET /hints sends 103 Early Hints (a link to /style.css), then the page."""
    netlog = tmp_path / "netlog.json"
    run = load_page(www_server.url("/hints"), chromium_flags(www_server.port, spki, netlog),
                    tmp_path / "home", selectors=("p",), styles=(("body", "max-width"),),
                    netlog=netlog)
    r = run.report
    assert r["ok"], f"page run failed: {r['error']}\n{run.describe()}"
    assert r["navigation"]["status"] == 200, run.describe()
    assert r["failed"] == [], run.describe()
    assert r["text"]["p"] == "hints\n", run.describe()
    assert r["styles"]["body|max-width"] == "640px", run.describe()  # 40rem from style.css
    problems = protocol_problems(run, www_server.url(""))
    assert not problems, "not HTTP/3:\n  " + "\n  ".join(problems) + "\n" + run.describe()
    blocks = decoded_header_blocks(read_netlog(netlog))
    hints = [b for b in blocks if b[:1] == [":status: 103"]]
    assert hints == [[":status: 103", "link: </style.css>; rel=preload; as=style"]], blocks
    www_server.assert_alive()


# --------------------------------------------------------------------------
# control: the protocol check rejects a page that did not come over HTTP/3


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def tls_tcp_server(root: Path, certs):
    """HTTPS over TCP (HTTP/1.1) on 127.0.0.1, serving root, in a thread."""
    handler = lambda *a, **kw: _QuietHandler(*a, directory=str(root), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.cert, certs.key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(10)


def test_protocol_check_rejects_http1(certs, spki, tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text(INDEX_HTML)
    (root / "style.css").write_text(STYLE_CSS)
    (root / "pixel.png").write_bytes(png_bytes(IMG_W, IMG_H))
    (root / "app.js").write_text('document.getElementById("script").textContent = "script ran";\n')
    with tls_tcp_server(root, certs) as port:
        run = load_page(f"https://127.0.0.1:{port}/", chromium_flags(port, spki, force_quic=False),
                        tmp_path / "home", selectors=("#script",))
    r = run.report
    assert r["ok"] and r["navigation"]["status"] == 200, run.describe()
    assert r["text"]["#script"] == "script ran", run.describe()
    problems = protocol_problems(run, f"https://127.0.0.1:{port}")
    assert any("nextHopProtocol 'http/1.1'" in p for p in problems), run.describe()
    assert any("navigation /" in p for p in problems), problems
    assert any("resource /style.css" in p for p in problems), problems


# --------------------------------------------------------------------------
# WebTransport: www/webtransport.html runs new WebTransport() against
# h3q-server --webtransport (/wt/echo): 20 datagrams, a 100 KB bidirectional
# stream, a 50 KB unidirectional stream (back on a server stream), then a
# close with code 7. Once with serverCertificateHashes (the page fetches the
# certificate's SHA-256 from /wt/cert-hash; the test certificate is ECDSA
# P-256, 14 days), once relying on the SPKI flag (?certhash=0).

WT_WANT = {
    "ready": True,
    "datagrams": {"sent": 20, "echoed": 20},
    "bidi": {"length": 100_000, "same": True},
    "uni": {"length": 50_000, "same": True},
    "closed": {"closeCode": 7, "reason": "done"},
}


@pytest.fixture(scope="module")
def wt_www_server(module_servers):
    return module_servers.start("--root", str(SOURCE_DIR / "www"), "--webtransport")


def webtransport_events(log: dict) -> tuple[list[dict], list[str]]:
    """Chromium's WebTransport sessions: the READY events' params and every
    state the client went through."""
    name_of = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    ready, states = [], []
    for e in log["events"]:
        kind, params = name_of.get(e["type"], ""), e.get("params") or {}
        if kind == "QUIC_SESSION_WEBTRANSPORT_SESSION_READY":
            ready.append(params)
        elif kind == "QUIC_SESSION_WEBTRANSPORT_CLIENT_STATE_CHANGED":
            states.append(params.get("next_state", "?"))
    return ready, states


def server_stats(server) -> dict:
    """The server's counters (GET /stats), fetched with aioquic."""
    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            r = await c.request("GET", "/stats")
            return json.loads(r.body)
    return run_coro(go(), scaled(20))


def server_stats_once_idle(server, timeout: float = 10.0) -> dict:
    """The counters once no WebTransport session is open any more."""
    deadline = time.monotonic() + scaled(timeout)
    st = server_stats(server)
    while st["wt_sessions_active"] and time.monotonic() < deadline:
        time.sleep(0.1)
        st = server_stats(server)
    return st


@pytest.mark.parametrize("mode", ["certhash", "spki"])
def test_webtransport_echo(wt_www_server, spki, tmp_path, mode):
    before = server_stats(wt_www_server)
    query = "" if mode == "certhash" else "?certhash=0"
    netlog = tmp_path / "netlog.json"
    run_ = load_page(wt_www_server.url("/webtransport.html" + query),
                     chromium_flags(wt_www_server.port, spki, netlog), tmp_path / "home",
                     selectors=("#results",), netlog=netlog)
    got = checks(run_)
    assert got.pop("certHashes") == (mode == "certhash"), run_.describe()
    assert got == WT_WANT, run_.describe()
    assert run_.report["console"] == [], run_.describe()
    log = read_netlog(netlog)
    t = netlog_traffic(log)
    assert f"127.0.0.1:{wt_www_server.port}" in t.udp_with_traffic, t
    assert not {a for a in t.udp_with_traffic if not is_loopback(a)}, t
    assert not {a for a in t.tcp_connects if not is_loopback(a)}, t
    ready, states = webtransport_events(log)
    assert len(ready) == 1 and ready[0].get("http_datagram_version") == "Rfc", ready
    assert "CONNECTED" in states and "FAILED" not in states, states
    after = server_stats_once_idle(wt_www_server)
    assert after["wt_sessions_accepted"] - before["wt_sessions_accepted"] == 1, (before, after)
    # bidi, the client's uni stream and the server's uni stream
    assert after["wt_streams_opened"] - before["wt_streams_opened"] == 3, (before, after)
    assert after["wt_sessions_active"] == 0, after
    wt_www_server.assert_alive()


def test_webtransport_check_can_fail(www_server, spki, tmp_path):
    """The same page against a server without --webtransport: the session
    never becomes ready, so the checks above can fail."""
    run_ = load_page(www_server.url("/webtransport.html?certhash=0"),
                     chromium_flags(www_server.port, spki), tmp_path / "home")
    got = checks(run_)
    assert isinstance(got["ready"], dict) and "error" in got["ready"], run_.describe()
