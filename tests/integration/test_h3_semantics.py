"""HTTP/3 message semantics against the demo routes:

  - response trailers (GET /trailers: body, then x-body-sha256 and
    x-body-length, announced in a `trailer` header), with aioquic and
    h3q-client;
  - request trailers delivered to the handler (POST /digest lists them);
  - the pull producer (GET /produce/N, verified for several N including 0
    and 50 MB; ?fail_at=K resets the stream with H3_INTERNAL_ERROR);
  - 103 Early Hints before the final response (GET /hints);
  - content-length on responses, HEAD without a body;
  - a client abort mid-upload leaves the connection usable.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from aioquic_client import H3_INTERNAL_ERROR, H3Client, H3ClientError, run
from harness import (CLIENT_BIN, RSS_LIMIT_KB, SANITIZED, pattern_bytes, pattern_sha256, run_client,
                     scaled)

HELLO = b"hello from h3q\n"
TRAILERS_LEN = 60000
HINTS_LINK = "</style.css>; rel=preload; as=style"


def _digest_body(data: bytes, trailers: list[tuple[str, str]] = ()) -> bytes:
    out = f"sha256 {hashlib.sha256(data).hexdigest()}\nlength {len(data)}\n"
    for k, v in trailers:
        out += f"trailer {k}: {v}\n"
    return out.encode()


async def _hello(c: H3Client, what: str) -> None:
    try:
        h = await c.request("GET", "/hello", timeout=scaled(10))
    except H3ClientError as e:
        pytest.fail(f"after {what}: GET /hello on the same connection failed: {e}")
    assert (h.status, h.body) == (200, HELLO), f"after {what}: GET /hello gave {h}"


# ---------------------------------------------------------------------------
# response trailers


@pytest.mark.timeout(scaled(60))
def test_response_trailers_aioquic(server):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            return await c.request("GET", "/trailers", timeout=scaled(10))

    r = run(go(), scaled(30))
    assert r.status == 200 and r.complete, r
    assert r.body == pattern_bytes(0, TRAILERS_LEN)
    announced = {x.strip() for x in (r.header("trailer") or "").split(",")}
    assert announced == {"x-body-sha256", "x-body-length"}, r.headers
    assert r.header("content-length") in (None, str(TRAILERS_LEN)), r.headers
    t = dict(r.trailers)
    assert t.get("x-body-sha256") == hashlib.sha256(r.body).hexdigest(), r.trailers
    assert t.get("x-body-length") == str(TRAILERS_LEN), r.trailers
    assert not any(k.startswith(":") for k, _ in r.trailers), r.trailers


@pytest.mark.timeout(scaled(60))
def test_response_trailers_h3q_client(server, tmp_path):
    out = tmp_path / "body"
    res = run_client("-o", str(out), server.url("/trailers"), timeout=scaled(30))
    assert res.returncode == 0, res.describe()
    assert len(res.records) == 1, res.describe()
    rec = res.records[0]
    assert rec["status"] == 200 and not rec.get("error"), res.describe()
    body = out.read_bytes()
    assert body == pattern_bytes(0, TRAILERS_LEN)
    assert rec["body_bytes"] == TRAILERS_LEN and rec["sha256"] == hashlib.sha256(body).hexdigest()
    t = {k.lower(): v for k, v in rec.get("trailers") or []}
    assert t == {"x-body-sha256": hashlib.sha256(body).hexdigest(),
                 "x-body-length": str(TRAILERS_LEN)}, res.describe()


@pytest.mark.timeout(scaled(60))
def test_head_trailers_route_has_no_body_or_trailers(server):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            return await c.request("HEAD", "/trailers", timeout=scaled(10))

    r = run(go(), scaled(30))
    assert r.status == 200 and r.complete and r.body == b"" and r.trailers == [], r


# ---------------------------------------------------------------------------
# request trailers


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("body", [b"", b"abc", b"x" * 300_000], ids=["empty", "small", "300k"])
def test_request_trailers_reach_the_handler(server, body):
    trailers = [("x-checksum", hashlib.sha256(body).hexdigest()), ("x-note", "two words")]

    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/digest", [("te", "trailers")]))
            if body:
                await c.send_body(sid, body, end_stream=False, timeout=scaled(20))
            c.send_headers(sid, trailers, end_stream=True)  # the trailer section
            r = await c.wait_response(sid, timeout=scaled(20))
            await _hello(c, "request with trailers")
            return r

    r = run(go(), scaled(40))
    assert (r.status, r.body) == (200, _digest_body(body, trailers)), r


@pytest.mark.timeout(scaled(60))
def test_request_without_trailers_lists_none(server):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            return await c.request("POST", "/digest", body=b"abc", timeout=scaled(10))

    r = run(go(), scaled(30))
    assert (r.status, r.body) == (200, _digest_body(b"abc")), r


@pytest.mark.timeout(scaled(60))
def test_pseudo_header_in_request_trailers_is_message_error(server):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/digest"))
            c.send_data(sid, b"abc")
            c.send_headers(sid, [("x-ok", "1"), (":status", "200")], end_stream=True)
            r = await c.wait_response(sid, timeout=scaled(10))
            await _hello(c, "pseudo-header in trailers")
            return r

    r = run(go(), scaled(30))
    assert r.reset_code == 0x10E and r.status is None, r


# ---------------------------------------------------------------------------
# the pull producer


@pytest.mark.timeout(scaled(120))
@pytest.mark.parametrize("n", [0, 1, 250, 251, 252, 65535, 65536, 1_000_003, 5_000_000])
def test_producer_sizes_aioquic(server, n):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            r = await c.request("GET", f"/produce/{n}", store_body=False, check_pattern=True,
                                timeout=scaled(60))
            await _hello(c, f"/produce/{n}")
            return r

    r = run(go(), scaled(90))
    assert r.status == 200 and r.complete and r.reset_code is None, r
    assert r.body_len == n and r.pattern_ok, r
    assert r.header("content-length") == str(n), r.headers
    assert r.sha256 == pattern_sha256(n)


@pytest.mark.timeout(scaled(180))
@pytest.mark.parametrize("n", [0, 50_000_000])
def test_producer_h3q_client(server, n):
    res = run_client("--verify-bytes", "-o", "/dev/null", server.url(f"/produce/{n}"),
                     timeout=scaled(120))
    assert res.returncode == 0, res.describe()
    rec = res.records[0]
    assert rec["status"] == 200 and not rec.get("error"), res.describe()
    assert rec["body_bytes"] == n and rec["sha256"] == pattern_sha256(n), res.describe()


@pytest.mark.timeout(scaled(180))
def test_producer_bounded_memory_with_slow_reader(servers, tmp_path):
    """The producer is asked for data only when the stream has room: a
    200 MB response to a reader that stalls does not pile up in the server."""
    import subprocess

    from harness import RssSampler, require_exe, sanitizer_env, sanitizer_reports

    s = servers.start()
    limit = RSS_LIMIT_KB + ((s.peak_rss_kb() or 0) if SANITIZED else 0)
    size = 200_000_000
    exe = require_exe(CLIENT_BIN, "h3q-client")
    cmd = [exe, "-k", "--json", "--verify-bytes", "-o", "/dev/null", "--timeout", str(int(scaled(150))),
           "--stall-after", "1000000", "--stall-ms", "2000", s.url(f"/produce/{size}")]
    err = tmp_path / "client.stderr"
    with RssSampler(s.pid, interval=0.02), open(err, "wb") as errf:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL,
                           env=sanitizer_env(), timeout=scaled(160))
    stderr = err.read_text(errors="replace")
    desc = f"cmd: {' '.join(cmd)}\nexit {p.returncode}\nstdout: {p.stdout[-2000:]!r}\nstderr: {stderr[-2000:]}"
    assert not sanitizer_reports(stderr), desc
    assert p.returncode == 0, desc
    rec = [json.loads(x) for x in p.stdout.decode().splitlines() if x.startswith("{") and "summary" not in x][0]
    assert rec["body_bytes"] == size and rec["sha256"] == pattern_sha256(size), desc
    hwm = s.peak_rss_kb()
    print(f"/produce/{size} with a stalled reader: server VmHWM {hwm} kB")
    assert hwm is not None and hwm < limit, f"server VmHWM {hwm} kB >= {limit} kB"


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("n,fail_at", [(1_000_000, 0), (1_000_000, 1), (1_000_000, 100_000),
                                       (100_000_000, 5_000_000)])
def test_producer_failure_resets_stream(server, n, fail_at):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            r = await c.request("GET", f"/produce/{n}?fail_at={fail_at}", store_body=False,
                                check_pattern=True, timeout=scaled(30))
            await _hello(c, f"a failed producer (fail_at={fail_at})")
            return r

    r = run(go(), scaled(45))
    assert r.reset_code == H3_INTERNAL_ERROR and not r.complete, r
    assert r.pattern_ok, f"data before the failure is corrupt: {r}"
    assert r.body_len < n, r
    if r.status is not None:
        assert r.status == 200 and r.header("content-length") is None, \
            f"a response that may fail must not promise a content-length: {r.headers}"
    server.assert_alive()


@pytest.mark.timeout(scaled(60))
def test_producer_fail_at_beyond_end_completes(server):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            return await c.request("GET", "/produce/1000?fail_at=5000", check_pattern=True,
                                   timeout=scaled(10))

    r = run(go(), scaled(30))
    assert r.status == 200 and r.complete and r.body_len == 1000 and r.pattern_ok, r


# ---------------------------------------------------------------------------
# 103 Early Hints


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_early_hints_then_final(server, method):
    """aioquic reports two HEADERS sections before the body: 103, then 200."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            return await c.request(method, "/hints", timeout=scaled(10))

    r = run(go(), scaled(30))
    assert len(r.interim) == 1, r
    interim = dict(r.interim[0])
    assert interim.get(":status") == "103" and interim.get("link") == HINTS_LINK, r.interim
    assert r.status == 200 and r.complete, r
    assert r.header("link") == HINTS_LINK and r.header("content-type") == "text/html", r.headers
    cl = r.header("content-length")
    if method == "GET":
        assert r.body.startswith(b"<!doctype html>") and cl == str(len(r.body)), r
    else:
        assert r.body == b"" and cl is not None and int(cl) > 0, r


# ---------------------------------------------------------------------------
# content-length and HEAD


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("path,length", [("/hello", 15), ("/bytes/1000", 1000), ("/bytes/0", 0),
                                         ("/produce/1000", 1000), ("/trailers", TRAILERS_LEN),
                                         ("/user/42", len("user 42\n"))])
def test_content_length_and_head(server, path, length):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            g = await c.request("GET", path, timeout=scaled(10))
            h = await c.request("HEAD", path, timeout=scaled(10))
            await _hello(c, f"HEAD {path}")
            return g, h

    g, h = run(go(), scaled(30))
    assert g.status == 200 and g.complete and len(g.body) == length, g
    assert g.header("content-length") == str(length), g.headers
    assert h.status == 200 and h.complete and h.body == b"", h
    assert h.header("content-length") == str(length), h.headers
    strip = {"date"}
    assert [(k, v) for k, v in h.headers if k not in strip] == \
        [(k, v) for k, v in g.headers if k not in strip], "HEAD and GET headers differ"


# ---------------------------------------------------------------------------
# aborts


@pytest.mark.timeout(scaled(60))
def test_reset_mid_upload_to_digest(server):
    """RESET_STREAM part way through a /digest upload: the stream is dropped
    and the same connection then serves a new upload and a GET."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/digest"))
            await c.send_body(sid, b"a" * 2_000_000, end_stream=False, timeout=scaled(20))
            c.reset_stream(sid, 0x10C)
            try:
                r = await c.wait_response(sid, timeout=scaled(5))
            except H3ClientError:
                r = c.proto.streams.get(sid).resp if sid in c.proto.streams else None
            again = await c.request("POST", "/digest", body=b"b" * 1_000_000, timeout=scaled(20))
            await _hello(c, "a reset upload")
            return r, again

    r, again = run(go(), scaled(45))
    assert r is None or r.status != 200 or not r.complete, f"a reset upload was answered 200: {r}"
    assert (again.status, again.body) == (200, _digest_body(b"b" * 1_000_000)), again
    server.assert_alive()


@pytest.mark.timeout(scaled(60))
def test_stop_sending_mid_produce(server):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            state = {"sid": None, "stopped": False}

            def on_data(_d):
                st = c.proto.streams.get(state["sid"])
                if not state["stopped"] and st and st.resp.body_len >= 1_000_000:
                    state["stopped"] = True
                    c.stop_sending(state["sid"], 0x10C)

            sid = c.new_stream(store_body=False, on_data=on_data, check_pattern=True)
            state["sid"] = sid
            c.send_headers(sid, c.request_headers("GET", "/produce/1000000000"), end_stream=True)
            t0 = time.monotonic()
            r = await c.wait_response(sid, timeout=scaled(20))
            took = time.monotonic() - t0
            await _hello(c, "STOP_SENDING on /produce")
            return r, took

    r, took = run(go(), scaled(45))
    assert r.reset_code is not None and r.body_len < 200_000_000 and r.pattern_ok, r
