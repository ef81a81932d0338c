"""quic-go's HTTP/3 client (github.com/quic-go/quic-go v0.65.0, package
http3) against h3q-server: an independent QUIC + HTTP/3 + QPACK stack in Go.

The client is tests/interop/quicgo (built by scripts/build-go-peer.sh into
the build directory, only when its sources change). Each run is one QUIC
connection with a pinned 1350-byte UDP payload; it prints one JSON object per
request (status, headers, body length and SHA-256, trailers, errors with
their HTTP/3 codes) and a summary line. The expectations are computed here,
from what the demo routes in apps/server/demo.c promise.
"""

from __future__ import annotations

import hashlib
import json
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import BUILD_DIR, SANITIZED, SOURCE_DIR, pattern_sha256, scaled

BUILD_SCRIPT = SOURCE_DIR / "scripts" / "build-go-peer.sh"
BUILD_TIMEOUT = 600.0  # first build downloads modules and compiles quic-go

H3_NO_ERROR = 0x100
H3_INTERNAL_ERROR = 0x102
H3_REQUEST_REJECTED = 0x10B

HELLO = "hello from h3q\n"
TRAILERS_LEN = 60000
HINTS_LINK = "</style.css>; rel=preload; as=style"
# Large enough that a window-sized bug shows; smaller under sanitizers.
DOWNLOAD_SIZE = (16 << 20) if SANITIZED else (64 << 20)
UPLOAD_SIZE = (4 << 20) if SANITIZED else (16 << 20)
GOAWAY_DOWNLOAD = 32 << 20  # scenarios.go: goawayDownload


@pytest.fixture(scope="module")
def quicgo() -> Path:
    try:
        r = subprocess.run(["bash", str(BUILD_SCRIPT), str(BUILD_DIR)], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{BUILD_SCRIPT} did not finish within {BUILD_TIMEOUT:.0f}s", pytrace=False)
    if r.returncode != 0:
        pytest.fail(f"building the quic-go client failed (exit {r.returncode}):\n{r.stderr[-4000:]}",
                    pytrace=False)
    exe = Path(r.stdout.strip().splitlines()[-1])
    assert exe.is_file(), f"{BUILD_SCRIPT} printed {exe}, which does not exist"
    return exe


class Run:
    """One quicgoclient run: its records by name, its summary, its events."""

    def __init__(self, cmd: list[str], rc: int | None, lines: list[str], stderr: str) -> None:
        self.cmd, self.rc, self.stderr = cmd, rc, stderr
        self.records: dict[str, dict] = {}
        self.events: list[dict] = []
        self.summary: dict | None = None
        for line in lines:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                pytest.fail(f"quicgoclient printed invalid JSON ({e}): {line[:300]}\n{self.how()}",
                            pytrace=False)
            if obj.get("summary") is True:
                self.summary = obj
            elif "event" in obj:
                self.events.append(obj)
            else:
                assert obj["name"] not in self.records, f"duplicate record {obj['name']}"
                self.records[obj["name"]] = obj
        self.lines = lines

    def how(self) -> str:
        out = "\n".join(l[:400] for l in self.lines[-40:])
        return (f"cmd: {' '.join(self.cmd)}\nexit: {self.rc}\nstdout tail:\n{out}\n"
                f"stderr tail:\n{self.stderr[-3000:]}")

    def __getitem__(self, name: str) -> dict:
        assert name in self.records, f"no result for {name}\n{self.how()}"
        return self.records[name]

    def assert_clean(self) -> None:
        """The run finished on one connection that no error closed."""
        assert self.rc == 0, self.how()
        assert self.summary and self.summary["ok"] and self.summary["connections"] == 1, self.how()
        assert self.summary["conn"] == {"closed": False}, \
            f"the connection closed during the run: {self.summary['conn']}\n{self.how()}"
        assert "panic" not in self.stderr, self.how()


def _cmd(exe: Path, server, args: list[str], timeout: float) -> list[str]:
    return [str(exe), "-addr", f"{server.host}:{server.port}", "-insecure", "-payload", "1350",
            "-timeout", f"{int(timeout)}s", "-req-timeout", f"{int(timeout)}s", *args]


def run_quicgo(exe: Path, server, *args: str, timeout: float = 60.0) -> Run:
    """Runs the client to its end; its own -timeout fires before ours."""
    t = scaled(timeout)
    cmd = _cmd(exe, server, list(args), t)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=t + 15)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"quicgoclient did not exit within {t + 15:.0f}s\ncmd: {' '.join(cmd)}\n"
                    f"stdout tail:\n{out[-3000:]}", pytrace=False)
    return Run(cmd, p.returncode, p.stdout.splitlines(), p.stderr)


def header(rec: dict, name: str) -> str | None:
    v = (rec.get("headers") or {}).get(name)
    return v[0] if v else None


def assert_ok(rec: dict, status: int = 200) -> None:
    """A complete response with this status and no error."""
    assert rec["status"] == status and rec["complete"] and "error" not in rec, rec
    assert rec["proto"] == "HTTP/3.0", rec


def assert_text(rec: dict, text: str, status: int = 200) -> None:
    assert_ok(rec, status)
    assert rec.get("body_text") == text, rec
    assert rec["body_len"] == len(text.encode()), rec


def assert_pattern(rec: dict, n: int) -> None:
    """The body is the first n bytes of the /bytes pattern (i % 251)."""
    assert_ok(rec)
    assert rec["body_len"] == n, f"{rec['body_len']} bytes, expected {n}: {rec}"
    assert rec["body_sha256"] == pattern_sha256(n), f"body differs from the i % 251 pattern: {rec}"


def allow_set(rec: dict) -> set[str]:
    return {m.strip() for m in (header(rec, "allow") or "").split(",") if m.strip()}


# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def basic(quicgo, server) -> Run:
    """One run of the basic scenario, shared by the tests that check it."""
    return run_quicgo(quicgo, server, "-scenario", "basic")


@pytest.mark.timeout(scaled(120) + BUILD_TIMEOUT)
def test_basic_routes(basic):
    r = basic
    r.assert_clean()
    hello = r["hello"]
    assert_text(hello, HELLO)
    assert header(hello, "content-length") == "15", hello
    assert header(hello, "content-type") == "text/plain; charset=utf-8", hello
    assert_text(r["query"], "user 42 query tab=x&y=1\n")
    assert_text(r["param"], "user quic-go\n")
    assert_pattern(r["bytes0"], 0)
    assert_pattern(r["bytes100k"], 100000)
    assert header(r["bytes100k"], "content-length") == "100000"


@pytest.mark.timeout(scaled(120) + BUILD_TIMEOUT)
def test_head_404_405_and_early_hints(basic):
    r = basic
    r.assert_clean()
    for name, length in (("head_hello", "15"), ("head_bytes", "1000000")):
        h = r[name]
        assert_ok(h)
        assert h["body_len"] == 0, f"HEAD response with a body: {h}"
        assert header(h, "content-length") == length, h
    assert_text(r["not_found"], "404\n", 404)
    assert_text(r["post_hello"], "405\n", 405)
    assert allow_set(r["post_hello"]) == {"GET", "HEAD"}, r["post_hello"]
    assert_text(r["put_echo"], "405\n", 405)
    assert allow_set(r["put_echo"]) == {"POST"}, r["put_echo"]
    hints = r["hints"]
    assert_ok(hints)
    assert hints.get("informational") == [{"status": 103, "headers": {"link": [HINTS_LINK]}}], hints
    assert header(hints, "link") == HINTS_LINK, hints
    assert hints["body_text"].startswith("<!doctype html>"), hints


@pytest.mark.timeout(scaled(120) + BUILD_TIMEOUT)
def test_request_flag(quicgo, server):
    r = run_quicgo(quicgo, server, "-req", "GET /user/7?tab=x", "-req", "GET /bytes/5000",
                   "-req", "DELETE /hello")
    r.assert_clean()
    assert_text(r["GET /user/7?tab=x"], "user 7 query tab=x\n")
    assert_pattern(r["GET /bytes/5000"], 5000)
    assert r["DELETE /hello"]["status"] == 405, r["DELETE /hello"]


@pytest.mark.timeout(scaled(180) + BUILD_TIMEOUT)
def test_large_download_and_producer(quicgo, server):
    r = run_quicgo(quicgo, server, "-scenario", "download", "-download-size", str(DOWNLOAD_SIZE),
                   timeout=120)
    r.assert_clean()
    big = r["bytes_large"]
    assert_pattern(big, DOWNLOAD_SIZE)
    assert big["content_length"] == DOWNLOAD_SIZE, big
    assert_pattern(r["produce"], 5 << 20)
    assert r["produce"]["content_length"] == 5 << 20


@pytest.mark.timeout(scaled(120) + BUILD_TIMEOUT)
def test_failed_producer_resets_stream_connection_lives(quicgo, server):
    r = run_quicgo(quicgo, server, "-scenario", "download", "-download-size", "1000")
    r.assert_clean()
    f = r["produce_fail"]
    assert not f["complete"], f
    assert f["error_kind"] == "h3" and f["error_code"] == H3_INTERNAL_ERROR and f["error_remote"], f
    # The reset may overtake the response head; if the head came, it must
    # not have promised a length the body cannot have.
    if f["status"]:
        assert f["status"] == 200 and f["content_length"] == -1, f
        assert f["body_len"] < 1000000, f
    assert_text(r["after_reset"], HELLO)


@pytest.mark.timeout(scaled(180) + BUILD_TIMEOUT)
def test_post_echo_and_digest(quicgo, server):
    r = run_quicgo(quicgo, server, "-scenario", "upload", "-upload-size", str(UPLOAD_SIZE),
                   timeout=120)
    r.assert_clean()
    small = r["echo_small"]
    assert_text(small, "hello from quic-go\n")
    assert header(small, "content-type") == "text/plain", small
    assert_text(r["echo_empty"], "")
    big = r["echo_large"]
    assert_ok(big)
    assert big["sent_len"] == UPLOAD_SIZE and big["body_len"] == UPLOAD_SIZE, big
    assert big["body_sha256"] == big["sent_sha256"], "echoed body differs from the one sent"
    d = r["digest_large"]
    assert_text(d, f"sha256 {d['sent_sha256']}\nlength {UPLOAD_SIZE}\n")
    assert d["sent_sha256"] == big["sent_sha256"], "the same generated body is sent twice"


@pytest.mark.timeout(scaled(120) + BUILD_TIMEOUT)
def test_response_and_request_trailers(quicgo, server):
    r = run_quicgo(quicgo, server, "-scenario", "trailers")
    r.assert_clean()
    t = r["response_trailers"]
    assert_pattern(t, TRAILERS_LEN)
    assert t["trailers_announced"] == ["x-body-length", "x-body-sha256"], t
    assert t.get("trailers") == {"x-body-sha256": [pattern_sha256(TRAILERS_LEN)],
                                 "x-body-length": [str(TRAILERS_LEN)]}, t
    h = r["head_trailers"]
    assert_ok(h)
    assert h["body_len"] == 0 and "trailers" not in h, f"HEAD with a body or trailers: {h}"
    q = r["request_trailers"]
    assert_ok(q)
    lines = q["body_text"].splitlines()
    assert lines[:2] == [f"sha256 {q['sent_sha256']}", "length 100000"], q
    assert set(lines[2:]) == {f"trailer x-checksum: {q['sent_sha256']}",
                              "trailer x-note: two words"}, \
        f"the handler did not see quic-go's request trailers: {q}"


def _expected_concurrent(i: int, rec: dict) -> None:
    """Mirror of scenarios.go concurrentSpec."""
    kind = i % 4
    if kind == 0:
        assert_text(rec, HELLO)
    elif kind == 1:
        assert_text(rec, f"user {i} query n={i}\n")
    elif kind == 2:
        assert_pattern(rec, i * 997 % 200000)
    else:
        assert_text(rec, f"request {i}\n")


@pytest.mark.timeout(scaled(180) + BUILD_TIMEOUT)
@pytest.mark.parametrize("max_streams", [100, 250])
def test_200_concurrent_requests_one_connection(quicgo, servers, max_streams):
    """200 requests at once on one connection: with --max-streams 100 half
    of them wait for MAX_STREAMS credit; with 250 all are open at once."""
    s = servers.start("--max-streams", str(max_streams))
    n = 200
    r = run_quicgo(quicgo, s, "-scenario", "concurrent", "-concurrency", str(n), timeout=120)
    r.assert_clean()
    assert len(r.records) == n, r.how()
    for i in range(n):
        _expected_concurrent(i, r[f"c{i}"])


@pytest.mark.timeout(scaled(120) + BUILD_TIMEOUT)
def test_big_header_sections(quicgo, server):
    """About 8 KB of request headers pass (limits: 16384-byte section, 8192
    per value, 100 fields); sections past a limit get 431, and the
    connection keeps working."""
    r = run_quicgo(quicgo, server, "-scenario", "headers")
    r.assert_clean()
    for name in ("pad_8x1000", "one_8000", "many_90x20"):
        assert_text(r[name], HELLO)
    for name in ("over_20x1000", "over_120x10"):
        assert_text(r[name], "431\n", 431)


@pytest.mark.timeout(scaled(120) + BUILD_TIMEOUT)
def test_goaway_during_graceful_shutdown(quicgo, servers):
    """A download is in flight when the server gets SIGTERM. quic-go must
    read the GOAWAY (it then refuses new requests itself), the download
    must finish intact, the connection must close with H3_NO_ERROR and the
    server must exit 0 well before its drain deadline."""
    drain_ms = int(scaled(30) * 1000)
    s = servers.start("--drain-timeout", str(drain_ms))
    t = scaled(60)
    cmd = _cmd(quicgo, s, ["-scenario", "goaway"], t)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in p.stdout:  # type: ignore[union-attr]
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    got: list[str] = []
    deadline = time.monotonic() + t + 15
    signalled_at = None
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"quicgoclient stalled\ncmd: {' '.join(cmd)}\n" + "\n".join(got[-20:]),
                            pytrace=False)
            if line is None:
                break
            got.append(line)
            if signalled_at is None and '"event":"inflight"' in line:
                s.expect_exit = True
                s.proc.send_signal(signal.SIGTERM)
                signalled_at = time.monotonic()
        rc = p.wait(15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    r = Run(cmd, rc, got, p.stderr.read())  # type: ignore[union-attr]
    assert signalled_at is not None, f"the download never got going\n{r.how()}"
    assert rc == 0 and r.summary and r.summary["ok"], r.how()

    probes = [r.records[k] for k in sorted((k for k in r.records if k.startswith("probe")),
                                           key=lambda k: int(k[5:]))]
    assert probes and probes[-1].get("error_kind") == "goaway", \
        f"quic-go never saw the server's GOAWAY\n{r.how()}"
    for pr in probes[:-1]:
        # Before the GOAWAY arrived a probe is either served or, if the
        # server had already stopped taking requests, refused.
        served = pr["status"] == 200 and pr["complete"] and pr.get("body_text") == HELLO
        refused = pr.get("error_code") == H3_REQUEST_REJECTED and pr.get("error_remote")
        assert served or refused, f"probe neither served nor refused: {pr}"

    assert_pattern(r["inflight"], GOAWAY_DOWNLOAD)
    closed = [e for e in r.events if e["event"] == "closed"]
    assert closed and closed[0]["conn"]["closed"], f"the connection did not close\n{r.how()}"
    assert closed[0]["conn"].get("error_code") == H3_NO_ERROR, closed[0]

    try:
        status = s.proc.wait(scaled(10))
    except subprocess.TimeoutExpired:
        pytest.fail(f"h3q-server still running {scaled(10):.0f}s after its last connection closed",
                    pytrace=False)
    assert status == 0, f"h3q-server exit status {status}\n{s.stderr_text()[-3000:]}"
    assert time.monotonic() - signalled_at < drain_ms / 1000, "shutdown waited for the deadline"


@pytest.mark.timeout(scaled(120) + BUILD_TIMEOUT)
def test_aborted_requests_leave_connection_usable(quicgo, server):
    """quic-go cancels a download after 1 MiB and two uploads after 1 MiB
    (RESET_STREAM + STOP_SENDING with H3_REQUEST_CANCELLED) and sends 4 MiB
    to a route that answers 405 without reading it; each exchange ends
    promptly and the next 20 requests on the connection succeed."""
    r = run_quicgo(quicgo, server, "-scenario", "abort")
    r.assert_clean()
    d = r["cancel_download"]
    assert d["status"] == 200 and not d["complete"], d
    assert d["error_kind"] == "h3" and d["error_code"] == 0x10C and not d["error_remote"], d
    assert 1 << 20 <= d["body_len"] < 1_000_000_000, d
    assert d["body_sha256"] == pattern_sha256(d["body_len"]), "bytes before the cancel are corrupt"
    for name in ("cancel_upload_echo", "cancel_upload_digest"):
        u = r[name]
        # The server learns of the abort and ends the response with a reset
        # (a deadline here would mean the exchange hung).
        assert not u["complete"] and u["error_kind"] == "h3" and u["error_remote"], u
        if u["body_len"]:
            assert u["body_sha256"] == hashlib.sha256(bytes(u["body_len"])).hexdigest(), \
                f"echoed bytes differ from the zeros sent: {u}"
    ref = r["refused_body"]
    assert_text(ref, "405\n", 405)
    assert allow_set(ref) == {"GET", "HEAD"}, ref
    for i in range(20):
        assert_text(r[f"after{i}"], HELLO)


@pytest.mark.timeout(scaled(180) + BUILD_TIMEOUT)
def test_parallel_bulk_downloads_and_echoes(quicgo, server):
    """40 streams at once, half 2 MiB downloads, half 2 MiB echoes: the
    connection's flow-control window is shared by many busy streams."""
    r = run_quicgo(quicgo, server, "-scenario", "bulk", timeout=120)
    r.assert_clean()
    size = 2 << 20  # scenarios.go: bulkSize
    assert len(r.records) == 40, r.how()
    for i in range(40):
        rec = r[f"b{i}"]
        if i % 2 == 0:
            assert_pattern(rec, size + i)
        else:
            assert_ok(rec)
            assert rec["body_len"] == rec["sent_len"] == size, rec
            assert rec["body_sha256"] == rec["sent_sha256"], f"echo {i} differs from what was sent"


@pytest.mark.timeout(scaled(120) + BUILD_TIMEOUT)
@pytest.mark.parametrize("early_data", [True, False], ids=["accepted", "refused"])
def test_zero_rtt_resumption(quicgo, servers, early_data):
    """quic-go resumes with a session ticket and sends GET/HEAD as 0-RTT.
    With --early-data the server accepts the early data; without it, it
    refuses it and the same requests are answered after the handshake."""
    s = servers.start(*(["--early-data"] if early_data else []))
    r = run_quicgo(quicgo, s, "-scenario", "zerortt")
    assert r.rc == 0 and r.summary and r.summary["ok"], r.how()
    assert r.summary["connections"] == 3, r.how()
    conns = {e["round"]: e for e in r.events if e["event"] == "zerortt_conn"}
    assert set(conns) == {0, 1} and all("error" not in e for e in conns.values()), r.how()
    assert not conns[0]["used_0rtt"], conns[0]
    for rnd in (0, 1):
        assert not conns[rnd]["conn"]["closed"], conns[rnd]
        assert_text(r[f"get{rnd}"], HELLO)
        head = r[f"head{rnd}"]
        assert_ok(head)
        assert head["body_len"] == 0 and header(head, "content-length") == "1000", head
    if early_data:
        assert conns[0]["ticket"], f"no session ticket within 5 s: {conns[0]}"
        assert conns[1]["resumed"] and conns[1]["used_0rtt"], \
            f"the resumed connection did not use 0-RTT: {conns[1]}"
    else:
        assert not conns[1]["used_0rtt"], f"0-RTT accepted without --early-data: {conns[1]}"
