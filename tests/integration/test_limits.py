"""Request limits and what the client gets (h3q-server flags):

  --max-header-count / --max-header-name / --max-header-value /
  --max-header-bytes -> 431      --max-path -> 414 (the query is not counted)
  --max-body -> 413 for a declared or streamed body, then STOP_SENDING
  --max-requests-per-conn N -> 503 for the (N+1)th concurrent request
  --body-timeout -> 408 for an upload that stalls
  --header-timeout -> RESET_STREAM H3_REQUEST_INCOMPLETE for a header
                      section that never completes
  --idle-timeout -> the connection is dropped after inactivity

Every limit is probed at its boundary (exactly the limit passes, one more
is refused), and after each refusal a GET /hello on the SAME connection must
still succeed. The header count includes the pseudo-headers; the header bytes
are the sum of name and value lengths.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from aioquic_client import (
    H3_REQUEST_INCOMPLETE,
    H3Client,
    H3ClientError,
    encode_headers_frame,
    run,
)
from harness import scaled

HELLO = b"hello from h3q\n"

COUNT, NAME, VALUE, BYTES, PATH, BODY = 12, 40, 200, 1000, 60, 100_000
LIMIT_FLAGS = ("--max-header-count", str(COUNT), "--max-header-name", str(NAME),
               "--max-header-value", str(VALUE), "--max-header-bytes", str(BYTES),
               "--max-path", str(PATH), "--max-body", str(BODY))


@pytest.fixture(scope="module")
def lserver(module_servers):
    return module_servers.start(*LIMIT_FLAGS)


def _digest_body(data: bytes) -> bytes:
    return f"sha256 {hashlib.sha256(data).hexdigest()}\nlength {len(data)}\n".encode()


async def _hello(c: H3Client, what: str) -> None:
    try:
        h = await c.request("GET", "/hello", timeout=scaled(10))
    except H3ClientError as e:
        pytest.fail(f"after {what}: GET /hello on the same connection failed: {e}")
    assert (h.status, h.body) == (200, HELLO), f"after {what}: GET /hello gave {h}"


def _base(c: H3Client, path: str = "/hello") -> list[tuple[str, str]]:
    return [(":method", "GET"), (":scheme", "https"), (":authority", c.authority), (":path", path)]


def _section_bytes(hdrs) -> int:
    return sum(len(k) + len(v) for k, v in hdrs)


def _fields(kind: str, c: H3Client, over: bool) -> list[tuple[str, str]]:
    """A GET /hello header list exactly at (over=False) or one past the limit."""
    h = _base(c)
    extra = 1 if over else 0
    if kind == "count":
        h += [(f"x-f{i}", "v") for i in range(COUNT - len(h) + extra)]
        assert len(h) == COUNT + extra
    elif kind == "name":
        h += [("x" * (NAME + extra), "v")]
    elif kind == "value":
        h += [("x-v", "v" * (VALUE + extra))]
    elif kind == "bytes":
        # a few fields each within the name/value limits, summing to the limit
        left = BYTES - _section_bytes(h) + extra
        i = 0
        while left > 0:
            name = f"x-b{i}"
            n = min(VALUE, left - len(name))
            assert n > 0
            h.append((name, "b" * n))
            left -= len(name) + n
            i += 1
        assert _section_bytes(h) == BYTES + extra and len(h) <= COUNT
    return h


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("kind", ["count", "name", "value", "bytes"])
def test_header_limits_431(lserver, kind):
    async def go():
        async with H3Client.connect(lserver.host, lserver.port, timeout=scaled(10)) as c:
            at = await c.request("GET", "/hello", raw_headers=_fields(kind, c, False), timeout=scaled(10))
            over = await c.request("GET", "/hello", raw_headers=_fields(kind, c, True), timeout=scaled(10))
            await _hello(c, f"431 for {kind}")
            # the same through the raw path (no aioquic encoder involved)
            sid = c.new_stream()
            c.send_raw(sid, encode_headers_frame(_fields(kind, c, True)), end_stream=True)
            raw = await c.wait_response(sid, timeout=scaled(10))
            await _hello(c, f"raw 431 for {kind}")
            return at, over, raw

    at, over, raw = run(go(), scaled(40))
    assert (at.status, at.body) == (200, HELLO), f"{kind} exactly at the limit: {at}"
    assert over.status == 431 and over.complete, f"{kind} one past the limit: {over}"
    assert raw.status == 431 and raw.complete, f"{kind} one past the limit (raw): {raw}"
    lserver.assert_alive()


@pytest.mark.timeout(scaled(60))
def test_path_limit_414(servers):
    # its own server: long /user/:id paths are what this test sends
    lserver = servers.start(*LIMIT_FLAGS)

    async def go():
        async with H3Client.connect(lserver.host, lserver.port, timeout=scaled(10)) as c:
            ident_at = "a" * (PATH - len("/user/"))
            at = await c.request("GET", "/user/" + ident_at, timeout=scaled(10))
            over = await c.request("GET", "/user/" + ident_at + "a", timeout=scaled(10))
            await _hello(c, "414")
            # the limit is on the path: a long query does not count
            q = await c.request("GET", "/user/" + ident_at + "?" + "q" * 2 * PATH, timeout=scaled(10))
            return ident_at, at, over, q

    ident, at, over, q = run(go(), scaled(40))
    assert (at.status, at.body) == (200, f"user {ident}\n".encode()), at
    assert over.status == 414 and over.complete, over
    assert q.status == 200, q


@pytest.mark.timeout(scaled(60))
def test_default_header_limits(servers):
    """Spec defaults without flags: 100 fields, 256 B names, 8 KiB values,
    16 KiB section, 2048 B path."""
    server = servers.start()

    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            base = _base(c)
            res = {}

            async def probe(name, hdrs):
                res[name] = (await c.request("GET", "/hello", raw_headers=hdrs, timeout=scaled(10))).status

            await probe("count-100", base + [(f"x-f{i}", "v") for i in range(100 - len(base))])
            await probe("count-101", base + [(f"x-f{i}", "v") for i in range(101 - len(base))])
            await probe("name-256", base + [("n" * 256, "v")])
            await probe("name-257", base + [("n" * 257, "v")])
            await probe("value-8192", base + [("x-v", "v" * 8192)])
            await probe("value-8193", base + [("x-v", "v" * 8193)])
            b = _section_bytes(base)
            fill = 16384 - b - 3 * len("x-b0")  # three fields reaching 16384 exactly
            sizes = [8000, 8000 - 0, fill - 16000]
            assert sizes[2] > 0
            at = base + [(f"x-b{i}", "v" * n) for i, n in enumerate(sizes)]
            assert _section_bytes(at) == 16384
            await probe("bytes-16384", at)
            await probe("bytes-16385", base + [(f"x-b{i}", "v" * (n + (i == 2))) for i, n in enumerate(sizes)])
            for n in (2048, 2049):
                hdrs = [(k, v if k != ":path" else "/user/" + "a" * (n - 6)) for k, v in base]
                await probe(f"path-{n}", hdrs)
            await _hello(c, "default limits")
            return res

    res = run(go(), scaled(40))
    want = {"count-100": 200, "count-101": 431, "name-256": 200, "name-257": 431,
            "value-8192": 200, "value-8193": 431, "bytes-16384": 200, "bytes-16385": 431,
            "path-2048": 200, "path-2049": 414}
    assert res == want


# ---------------------------------------------------------------------------
# request body size


@pytest.mark.timeout(scaled(60))
def test_declared_body_too_large_413(lserver):
    """content-length > --max-body: 413 at once, and STOP_SENDING for the rest."""
    async def go():
        async with H3Client.connect(lserver.host, lserver.port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/digest", [("content-length", str(BODY + 1))]))
            r = await c.wait_response(sid, timeout=scaled(10))  # no body sent at all
            ok = await c.request("POST", "/digest", headers=[("content-length", str(BODY))],
                                 body=b"z" * BODY, timeout=scaled(20))
            await _hello(c, "413 (declared)")
            return r, ok

    r, ok = run(go(), scaled(40))
    assert r.status == 413 and r.complete, r
    assert r.stop_sending_code is not None, f"no STOP_SENDING after 413: {r}"
    assert (ok.status, ok.body) == (200, _digest_body(b"z" * BODY)), ok


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("path", ["/digest"])
def test_streamed_body_too_large_413(lserver, path):
    """No content-length, 2x --max-body streamed: 413 (the response had not
    started: /digest answers only at the end), STOP_SENDING, and the
    connection goes on."""
    async def go():
        async with H3Client.connect(lserver.host, lserver.port, timeout=scaled(10)) as c:
            sid = c.new_stream(store_body=True)
            c.send_headers(sid, c.request_headers("POST", path))
            try:
                await c.send_body(sid, b"y" * (2 * BODY), end_stream=True, timeout=scaled(20),
                                  stall_timeout=scaled(10))
            except (H3ClientError, ValueError):
                pass  # the server stopped the upload: expected
            r = await c.wait_response(sid, timeout=scaled(10))
            await _hello(c, "413 (streamed)")
            return r

    r = run(go(), scaled(40))
    assert r.status == 413 and r.complete, r
    assert r.stop_sending_code is not None, f"no STOP_SENDING after 413: {r}"


@pytest.mark.timeout(scaled(60))
def test_streamed_body_exactly_at_limit_served(lserver):
    async def go():
        async with H3Client.connect(lserver.host, lserver.port, timeout=scaled(10)) as c:
            return await c.request("POST", "/digest", body=b"w" * BODY, timeout=scaled(20))

    r = run(go(), scaled(30))
    assert (r.status, r.body) == (200, _digest_body(b"w" * BODY)), r


@pytest.mark.timeout(scaled(60))
def test_streamed_body_too_large_after_response_started(lserver):
    """/echo answers while the body arrives; once it has, going over
    --max-body can no longer be a 413: the stream is reset instead."""
    async def go():
        async with H3Client.connect(lserver.host, lserver.port, timeout=scaled(10)) as c:
            sid = c.new_stream(store_body=False)
            c.send_headers(sid, c.request_headers("POST", "/echo"))
            c.send_data(sid, b"e" * 1000)
            st = c.proto.streams[sid]
            deadline = time.monotonic() + scaled(10)
            while st.resp.body_len < 1000 and time.monotonic() < deadline:
                await c._wait_progress(0.1)
            started = (st.resp.status, st.resp.body_len)
            try:
                await c.send_body(sid, b"e" * (2 * BODY), end_stream=True, timeout=scaled(20),
                                  stall_timeout=scaled(10))
            except (H3ClientError, ValueError):
                pass
            r = await c.wait_response(sid, timeout=scaled(10))
            await _hello(c, "body limit after the response started")
            return started, r

    started, r = run(go(), scaled(40))
    assert started == (200, 1000), f"/echo had not started answering: {started}"
    assert r.reset_code is not None and not r.complete, r
    assert r.body_len <= BODY, r


# ---------------------------------------------------------------------------
# concurrent requests per connection


@pytest.mark.timeout(scaled(90))
def test_max_requests_per_conn_503(servers):
    n = 3
    s = servers.start("--max-requests-per-conn", str(n))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c, \
                H3Client.connect(s.host, s.port, timeout=scaled(10)) as other:
            open_sids = []
            for i in range(n):  # n uploads in progress (no FIN yet)
                sid = c.new_stream()
                c.send_headers(sid, c.request_headers("POST", "/echo"))
                c.send_data(sid, f"upload {i};".encode())
                open_sids.append(sid)
            # wait until the server has seen them all (each echoes its first bytes)
            deadline = time.monotonic() + scaled(10)
            while time.monotonic() < deadline and not all(
                    c.proto.streams[x].resp.body_len > 0 for x in open_sids):
                await c._wait_progress(0.1)
            over = await c.request("GET", "/hello", timeout=scaled(10))
            # the limit is per connection
            elsewhere = await other.request("GET", "/hello", timeout=scaled(10))
            for i, sid in enumerate(open_sids):
                c.send_data(sid, b"done", end_stream=True)
            done = [await c.wait_response(sid, timeout=scaled(10)) for sid in open_sids]
            after = await c.request("GET", "/hello", timeout=scaled(10))
            return over, elsewhere, done, after

    over, elsewhere, done, after = run(go(), scaled(60))
    assert over.status == 503 and over.complete, f"request {n + 1} on the connection: {over}"
    assert (elsewhere.status, elsewhere.body) == (200, HELLO), elsewhere
    for i, r in enumerate(done):
        assert (r.status, r.body) == (200, f"upload {i};done".encode()), r
    assert (after.status, after.body) == (200, HELLO), f"after the uploads finished: {after}"


@pytest.mark.timeout(scaled(90))
def test_max_requests_per_conn_with_slow_downloads(servers):
    """The same limit held by responses still being sent: two 2 GB
    /produce downloads (they stay open for the whole test) occupy the
    connection's two slots. They ask for low, incremental priority: with
    the default (u=3, non-incremental, RFC 9218) later responses of the
    same urgency are, as RFC 9218 section 10 recommends, sent only after
    them, so the 503 would wait for 4 GB."""
    n = 2
    s = servers.start("--max-requests-per-conn", str(n))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10),
                                    max_stream_data=64 * 1024, max_data=1 << 20) as c:
            sids = []
            for _ in range(n):
                sid = c.new_stream(store_body=False, hash_body=False)
                c.send_headers(sid, c.request_headers("GET", "/produce/2000000000",
                                                      [("priority", "u=7, i")]), end_stream=True)
                sids.append(sid)
            deadline = time.monotonic() + scaled(10)
            while time.monotonic() < deadline and not all(
                    c.proto.streams[x].resp.status for x in sids):
                await c._wait_progress(0.1)
            over = await c.request("GET", "/hello", timeout=scaled(10))
            for sid in sids:
                c.stop_sending(sid)
                c.reset_stream(sid)
            for sid in sids:
                try:
                    await c.wait_response(sid, timeout=scaled(10))
                except H3ClientError:
                    pass
            # the cancelled requests no longer count
            deadline = time.monotonic() + scaled(10)
            while True:
                after = await c.request("GET", "/hello", timeout=scaled(10))
                if after.status == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            return over, after

    over, after = run(go(), scaled(60))
    assert over.status == 503, over
    assert (after.status, after.body) == (200, HELLO), after


# ---------------------------------------------------------------------------
# timeouts


@pytest.mark.timeout(scaled(90))
def test_body_timeout_408(servers):
    ms = 1000
    s = servers.start("--body-timeout", str(ms))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            # a steady slow upload is fine: the limit is on idle time
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/digest"))
            t0 = time.monotonic()
            sent = b""
            while time.monotonic() - t0 < 2.5 * ms / 1000:
                c.send_data(sid, b"s" * 100)
                sent += b"s" * 100
                await asyncio.sleep(ms / 1000 / 4)
            c.send_data(sid, b"", end_stream=True)
            steady = await c.wait_response(sid, timeout=scaled(10))
            # a stalled one gets 408
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/digest"))
            c.send_data(sid, b"partial body")
            t0 = time.monotonic()
            stalled = await c.wait_response(sid, timeout=scaled(10) + ms / 1000)
            took = time.monotonic() - t0
            await _hello(c, "408")
            return steady, sent, stalled, took

    steady, sent, stalled, took = run(go(), scaled(60))
    assert (steady.status, steady.body) == (200, _digest_body(sent)), steady
    assert stalled.status == 408 and stalled.complete, stalled
    assert stalled.stop_sending_code is not None, f"no STOP_SENDING with the 408: {stalled}"
    assert ms / 1000 * 0.9 <= took <= ms / 1000 + scaled(2), f"408 after {took:.2f}s (timeout {ms} ms)"


@pytest.mark.timeout(scaled(90))
def test_header_timeout_resets_incomplete_headers(servers):
    ms = 1000
    s = servers.start("--header-timeout", str(ms))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            frame = encode_headers_frame(c.request_headers("GET", "/hello"))
            sid = c.new_stream()
            c.send_raw(sid, frame[: len(frame) // 2])
            t0 = time.monotonic()
            r = await c.wait_response(sid, timeout=scaled(10) + ms / 1000)
            took = time.monotonic() - t0
            await _hello(c, "header timeout")
            # a header section finished in time is served
            sid = c.new_stream()
            c.send_raw(sid, frame[:3])
            await asyncio.sleep(ms / 1000 / 3)
            c.send_raw(sid, frame[3:], end_stream=True)
            slow_ok = await c.wait_response(sid, timeout=scaled(10))
            return r, took, slow_ok

    r, took, slow_ok = run(go(), scaled(60))
    assert r.reset_code == H3_REQUEST_INCOMPLETE and r.status is None, r
    assert ms / 1000 * 0.9 <= took <= ms / 1000 + scaled(2), f"reset after {took:.2f}s (timeout {ms} ms)"
    assert (slow_ok.status, slow_ok.body) == (200, HELLO), slow_ok


@pytest.mark.timeout(scaled(90))
def test_idle_timeout_drops_connection(servers):
    """The server forgets a connection idle for --idle-timeout. aioquic would
    time out by itself too (the negotiated value is the smaller one), so it
    is told to ignore the server's value: a request after the idle period
    must then go unanswered, while one before it is served."""
    ms = 1000
    s = servers.start("--idle-timeout", str(ms))

    async def probe(sleep_s: float):
        async with H3Client.connect(s.host, s.port, timeout=scaled(10), idle_timeout=120) as c:
            advertised = c.quic._remote_max_idle_timeout
            c.quic._remote_max_idle_timeout = None  # keep aioquic's own 120 s
            r = await c.request("GET", "/hello", timeout=scaled(10))
            assert r.status == 200
            await asyncio.sleep(sleep_s)
            try:
                r2 = await c.request("GET", "/hello", timeout=scaled(3))
                return advertised, r2.status
            except H3ClientError as e:
                return advertised, str(e)

    advertised, before = run(probe(ms / 1000 * 0.4), scaled(40))
    assert advertised == ms / 1000, f"server advertised max_idle_timeout {advertised}s"
    assert before == 200, f"request within the idle timeout: {before}"
    _, after = run(probe(ms / 1000 * 2.5), scaled(40))
    assert after != 200, "the server still answered on a connection idle for 2.5x --idle-timeout"
    # and the server is fine
    async def fresh():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            return await c.request("GET", "/hello", timeout=scaled(10))
    assert run(fresh(), scaled(30)).status == 200
