"""RFC 9114 sections 4.1 to 4.3: malformed requests.

A malformed request gets its stream reset with H3_MESSAGE_ERROR (0x10e),
before any response; the connection stays usable, so after every malformed
request a well-formed GET /hello on the SAME connection must succeed. Header
sections are hand-encoded (QPACK without the dynamic table, see
aioquic_client.encode_headers_frame) and sent raw, so nothing on the client
side fixes them up; most cases are also sent through aioquic's own HTTP/3
layer ("h3"), which sends header lists as given.

Refusals RFC 9114 does not call malformed get a status instead: two host
fields give 400, a plain CONNECT (which h3q does not proxy) gives 501.
Frame-sequence errors (DATA before HEADERS, frames after the trailers) are
connection errors (H3_FRAME_UNEXPECTED, raised by quiche): the server
process lives on and serves new connections.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from aioquic.h3.connection import encode_frame

from aioquic_client import (
    H3_FRAME_UNEXPECTED,
    H3_MESSAGE_ERROR,
    H3Client,
    H3ClientError,
    encode_data_frame,
    encode_headers_frame,
    run,
)
from harness import scaled

HELLO = b"hello from h3q\n"
SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8


def base(authority: str, method: str = "GET", path: str = "/hello") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "https"), (":authority", authority), (":path", path)]


def plus(*extra):
    return lambda a: base(a) + list(extra)


# name -> header list (given the connection's authority). Each is the valid
# GET /hello request of base() with exactly one thing broken.
MALFORMED = {
    # RFC 9114 4.2: field names must be lowercase
    "uppercase-name": plus(("X-Upper", "1")),
    "uppercase-pseudo-name": lambda a: [(":method", "GET"), (":scheme", "https"),
                                        (":authority", a), (":Path", "/hello")],
    # RFC 9114 4.2: connection-specific fields
    "connection": plus(("connection", "close")),
    "keep-alive": plus(("keep-alive", "timeout=5")),
    "proxy-connection": plus(("proxy-connection", "keep-alive")),
    "transfer-encoding": plus(("transfer-encoding", "chunked")),
    "upgrade": plus(("upgrade", "websocket")),
    "te-gzip": plus(("te", "gzip")),
    "te-trailers-and-gzip": plus(("te", "trailers, gzip")),
    # RFC 9114 4.2 / RFC 9110 5.5: CR, LF, NUL; h3q also refuses edge whitespace
    "cr-in-value": plus(("x-v", "a\rb")),
    "lf-in-value": plus(("x-v", "a\nb")),
    "nul-in-value": plus(("x-v", "a\x00b")),
    "leading-space-in-value": plus(("x-v", " a")),
    "trailing-tab-in-value": plus(("x-v", "a\t")),
    # RFC 9114 4.3.1: exactly one :method, :scheme, :path
    "missing-method": lambda a: base(a)[1:],
    "missing-scheme": lambda a: [h for h in base(a) if h[0] != ":scheme"],
    "missing-path": lambda a: base(a)[:3],
    "duplicate-method": plus((":method", "GET")),
    "duplicate-scheme": plus((":scheme", "https")),
    "duplicate-path": plus((":path", "/hello")),
    "duplicate-authority": lambda a: base(a) + [(":authority", a)],
    # RFC 9114 4.3: no response or unknown pseudo-headers, none after fields
    "status-pseudo": plus((":status", "200")),
    "unknown-pseudo": plus((":foo", "bar")),
    "pseudo-after-regular": lambda a: [(":method", "GET"), (":scheme", "https"), ("x-a", "1"),
                                       (":authority", a), (":path", "/hello")],
    # RFC 9114 4.3.1: :path
    "empty-path": lambda a: base(a, path=""),
    "path-without-slash": lambda a: base(a, path="hello"),
    "asterisk-path-with-get": lambda a: base(a, path="*"),
    # RFC 9114 4.3.1: authority
    "authority-host-differ": plus(("host", "other.example")),
    "https-without-authority-or-host": lambda a: [(":method", "GET"), (":scheme", "https"),
                                                  (":path", "/hello")],
    "empty-authority": lambda a: base("", path="/hello"),
    # RFC 9110 8.6 / RFC 9114 4.1.2: content-length
    "content-length-not-a-number": plus(("content-length", "abc")),
    "content-length-negative": plus(("content-length", "-1")),
    "content-length-differing-fields": plus(("content-length", "3"), ("content-length", "4")),
    "content-length-differing-list": plus(("content-length", "3, 4")),
    # RFC 9220 3 / RFC 9114 4.4: CONNECT rules
    "protocol-without-extended-connect": lambda a: [
        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
        (":authority", a), (":path", "/hello")],
    "protocol-with-get": plus((":protocol", "websocket")),
    "connect-with-scheme-and-path": lambda a: [(":method", "CONNECT"), (":authority", a),
                                               (":scheme", "https"), (":path", "/")],
}

# Valid variants of the same request: these must be served.
VALID = {
    "te-trailers": plus(("te", "trailers")),
    "host-equals-authority": plus(("host", "{a}")),
    "host-instead-of-authority": lambda a: [(":method", "GET"), (":scheme", "https"),
                                            (":path", "/hello"), ("host", a)],
    "host-differs-only-in-case": lambda a: [(":method", "GET"), (":scheme", "https"),
                                            (":authority", "Example.com"), (":path", "/hello"),
                                            ("host", "example.COM")],
    "content-length-zero": plus(("content-length", "0")),
    "inner-whitespace": plus(("x-v", "a b\tc")),
    "query-string": lambda a: base(a, path="/hello?x=1&y=%20"),
}


def _resolve(builder, authority: str) -> list[tuple[str, str]]:
    return [(k, v.replace("{a}", authority)) for k, v in builder(authority)]


async def _send(c: H3Client, headers, via: str, *, end_stream: bool = True) -> int:
    sid = c.new_stream()
    if via == "raw":
        c.send_raw(sid, encode_headers_frame(headers), end_stream=end_stream)
    else:
        c.send_headers(sid, headers, end_stream=end_stream)
    return sid


async def _hello(c: H3Client, what: str) -> None:
    """The well-formed request on the same connection after a bad one."""
    try:
        h = await c.request("GET", "/hello", timeout=scaled(10))
    except H3ClientError as e:
        pytest.fail(f"after {what}: GET /hello on the same connection failed: {e}")
    assert (h.status, h.body) == (200, HELLO), f"after {what}: GET /hello gave {h}"


def _try(fn, *args, **kw) -> bool:
    """Sends on a stream the server may already have stopped (STOP_SENDING
    makes aioquic refuse further writes); returns whether it was sent."""
    try:
        fn(*args, **kw)
        return True
    except ValueError:
        return False


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("via", ["raw", "h3"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_reset_with_message_error(server, case, via):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            hdrs = _resolve(MALFORMED[case], c.authority)
            sid = await _send(c, hdrs, via)
            try:
                r = await c.wait_response(sid, timeout=scaled(10))
            except H3ClientError as e:
                pytest.fail(f"{case}: no reset and no response: {e}\nheaders: {hdrs!r}")
            await _hello(c, case)
            return r, hdrs

    r, hdrs = run(go(), scaled(40))
    assert r.reset_code == H3_MESSAGE_ERROR and r.status is None, (
        f"{case}: expected RESET_STREAM H3_MESSAGE_ERROR (0x10e) before any response; got "
        f"status={r.status} reset=0x{(r.reset_code or 0):x} body={r.body!r}\nheaders: {hdrs!r}")
    server.assert_alive()


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("via", ["raw", "h3"])
@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_variants_are_served(server, case, via):
    """Controls for the cases above: the same request without the defect."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            hdrs = _resolve(VALID[case], c.authority)
            sid = await _send(c, hdrs, via)
            return await c.wait_response(sid, timeout=scaled(10)), hdrs

    r, hdrs = run(go(), scaled(40))
    assert (r.status, r.body, r.reset_code) == (200, HELLO, None), f"{case}: {r}\nheaders: {hdrs!r}"


@pytest.mark.timeout(scaled(60))
def test_raw_encoder_control(server):
    """The hand-encoded plain request is served: the raw path itself is sound."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = await _send(c, base(c.authority), "raw")
            return await c.wait_response(sid, timeout=scaled(10))

    r = run(go(), scaled(30))
    assert (r.status, r.body) == (200, HELLO), r


@pytest.mark.timeout(scaled(60))
def test_two_host_fields_400(server):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            hdrs = base(c.authority) + [("host", c.authority), ("host", c.authority)]
            sid = await _send(c, hdrs, "raw")
            r = await c.wait_response(sid, timeout=scaled(10))
            await _hello(c, "two host fields")
            return r

    r = run(go(), scaled(30))
    assert r.status == 400 and r.complete, r


@pytest.mark.timeout(scaled(60))
def test_options_asterisk_is_not_malformed(server):
    """':path: *' is valid with OPTIONS (no route for it: any status, no reset)."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = await _send(c, base(c.authority, "OPTIONS", "*"), "raw")
            r = await c.wait_response(sid, timeout=scaled(10))
            await _hello(c, "OPTIONS *")
            return r

    r = run(go(), scaled(30))
    assert r.reset_code is None and r.status is not None and r.complete, r


@pytest.mark.timeout(scaled(60))
def test_other_scheme_may_omit_authority(server):
    """RFC 9114 4.3.1: only http/https require an authority."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = await _send(c, [(":method", "GET"), (":scheme", "foo"), (":path", "/hello")], "raw")
            return await c.wait_response(sid, timeout=scaled(10))

    r = run(go(), scaled(30))
    assert r.reset_code is None and r.status is not None and r.complete, r


# ---------------------------------------------------------------------------
# CONNECT


@pytest.fixture(scope="module")
def xserver(module_servers):
    return module_servers.start("--extended-connect")


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("which", ["default", "extended-connect"])
def test_plain_connect_is_501(server, xserver, which):
    s = server if which == "default" else xserver

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            sid = await _send(c, [(":method", "CONNECT"), (":authority", "example.com:443")], "raw")
            r = await c.wait_response(sid, timeout=scaled(10))
            await _hello(c, "plain CONNECT")
            return r

    r = run(go(), scaled(30))
    assert r.status == 501 and r.reset_code is None, r


@pytest.mark.timeout(scaled(60))
def test_extended_connect_setting(server, xserver):
    """SETTINGS_ENABLE_CONNECT_PROTOCOL=1 only with --extended-connect."""
    async def settings(s):
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            await c.request("GET", "/hello", timeout=scaled(10))
            return dict(c.h3.received_settings or {})

    plain = run(settings(server), scaled(30))
    ext = run(settings(xserver), scaled(30))
    assert ext.get(SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1, ext
    assert plain.get(SETTINGS_ENABLE_CONNECT_PROTOCOL, 0) == 0, plain


@pytest.mark.timeout(scaled(60))
def test_extended_connect_accepted_when_enabled(xserver):
    """With --extended-connect a well-formed extended CONNECT passes
    validation (there is no CONNECT route, so it gets a status, not a reset);
    without :authority it is still malformed."""
    async def go():
        async with H3Client.connect(xserver.host, xserver.port, timeout=scaled(10)) as c:
            a = c.authority
            ok = await _send(c, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                                 (":authority", a), (":path", "/hello")], "raw")
            r_ok = await c.wait_response(ok, timeout=scaled(10))
            await _hello(c, "extended CONNECT")
            bad = await _send(c, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                                  (":path", "/hello")], "raw")
            r_bad = await c.wait_response(bad, timeout=scaled(10))
            await _hello(c, "extended CONNECT without :authority")
            return r_ok, r_bad

    r_ok, r_bad = run(go(), scaled(30))
    assert r_ok.reset_code is None and r_ok.status is not None and r_ok.status != 501, r_ok
    assert r_bad.reset_code == H3_MESSAGE_ERROR and r_bad.status is None, r_bad


# ---------------------------------------------------------------------------
# content-length against the DATA received


def _digest_body(data: bytes) -> bytes:
    return f"sha256 {hashlib.sha256(data).hexdigest()}\nlength {len(data)}\n".encode()


async def _cl_request(c: H3Client, path: str, cl: str, chunks: list[bytes], fin: bool) -> int:
    sid = c.new_stream()
    c.send_headers(sid, c.request_headers("POST", path, [("content-length", cl)]),
                   end_stream=fin and not chunks)
    for i, ch in enumerate(chunks):
        _try(c.send_data, sid, ch, end_stream=fin and i == len(chunks) - 1)
        await asyncio.sleep(0.02)
    return sid


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("chunks", [[b"abcdef"], [b"abc", b"def"], [b"abc", b"", b"d"]],
                         ids=["one-frame", "second-frame", "after-empty-frame"])
def test_more_data_than_content_length_reset_as_it_arrives(server, chunks):
    """No FIN is sent: the reset must come from the excess DATA itself."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = await _cl_request(c, "/digest", "3", chunks, fin=False)
            try:
                r = await c.wait_response(sid, timeout=scaled(10))
            except H3ClientError as e:
                pytest.fail(f"excess DATA beyond content-length was not refused: {e}")
            await _hello(c, "excess DATA")
            return r

    r = run(go(), scaled(30))
    assert r.reset_code == H3_MESSAGE_ERROR and r.status is None, r


@pytest.mark.timeout(scaled(60))
def test_more_data_than_content_length_after_response_started(server):
    """/echo answers as the body arrives; excess DATA after that still resets."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/echo", [("content-length", "3")]))
            c.send_data(sid, b"abc")
            st = c.proto.streams[sid]
            for _ in range(int(scaled(50))):
                if st.resp.body_len >= 3:
                    break
                await asyncio.sleep(0.1)
            started = st.resp.status
            _try(c.send_data, sid, b"def")
            r = await c.wait_response(sid, timeout=scaled(10))
            await _hello(c, "excess DATA after the response started")
            return started, r

    started, r = run(go(), scaled(30))
    assert started == 200, f"/echo had not started answering: {started}"
    assert r.reset_code == H3_MESSAGE_ERROR and not r.complete, r


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("chunks", [[], [b"abc"], [b"abc", b"def"]], ids=["no-data", "one-frame", "two-frames"])
def test_less_data_than_content_length_reset_at_fin(server, chunks):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = await _cl_request(c, "/digest", "10", chunks, fin=True)
            r = await c.wait_response(sid, timeout=scaled(10))
            await _hello(c, "short body")
            return r

    r = run(go(), scaled(30))
    assert r.reset_code == H3_MESSAGE_ERROR and r.status is None, r


@pytest.mark.timeout(scaled(60))
def test_short_body_is_not_judged_before_fin(server):
    """A body still arriving is not refused early; completed, it is served."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = await _cl_request(c, "/digest", "10", [b"abc"], fin=False)
            await asyncio.sleep(0.5)
            st = c.proto.streams[sid]
            early = (st.resp.reset_code, st.resp.status, st.done.done())
            c.send_data(sid, b"defghij", end_stream=True)
            return early, await c.wait_response(sid, timeout=scaled(10))

    early, r = run(go(), scaled(30))
    assert early == (None, None, False), f"stream was answered/reset before FIN: {early}"
    assert (r.status, r.body) == (200, _digest_body(b"abcdefghij")), r


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("cl", ["6", "6, 6", "006"])
def test_matching_content_length_served(server, cl):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = await _cl_request(c, "/digest", cl, [b"abc", b"def"], fin=True)
            return await c.wait_response(sid, timeout=scaled(10))

    r = run(go(), scaled(30))
    assert (r.status, r.body) == (200, _digest_body(b"abcdef")), r


@pytest.mark.timeout(scaled(60))
def test_repeated_equal_content_length_fields_served(server):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/digest",
                                                  [("content-length", "3"), ("content-length", "3")]))
            c.send_data(sid, b"abc", end_stream=True)
            return await c.wait_response(sid, timeout=scaled(10))

    r = run(go(), scaled(30))
    assert (r.status, r.body) == (200, _digest_body(b"abc")), r


# ---------------------------------------------------------------------------
# request trailers


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("trailers", [
    [(":path", "/x")],
    [("x-a", "1"), (":method", "GET")],
    [("X-Upper", "1")],
    [("transfer-encoding", "chunked")],
    [("x-a", "a\nb")],
], ids=["pseudo", "pseudo-after-field", "uppercase", "connection-specific", "lf"])
@pytest.mark.parametrize("via", ["raw", "h3"])
def test_malformed_request_trailers(server, trailers, via):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/digest"))
            c.send_data(sid, b"abc")
            if via == "raw":
                c.send_raw(sid, encode_headers_frame(trailers), end_stream=True)
            else:
                c.send_headers(sid, trailers, end_stream=True)
            r = await c.wait_response(sid, timeout=scaled(10))
            await _hello(c, f"trailers {trailers!r}")
            return r

    r = run(go(), scaled(30))
    assert r.reset_code == H3_MESSAGE_ERROR and r.status is None, r


# ---------------------------------------------------------------------------
# frame sequences


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("frames", [
    lambda c: encode_data_frame(b"abc") + encode_headers_frame(c.request_headers("GET", "/hello")),
    lambda c: (encode_headers_frame(c.request_headers("POST", "/digest")) + encode_data_frame(b"abc")
               + encode_headers_frame([("x-a", "1")]) + encode_data_frame(b"def")),
    lambda c: (encode_headers_frame(c.request_headers("POST", "/digest")) + encode_data_frame(b"abc")
               + encode_headers_frame([("x-a", "1")]) + encode_headers_frame([("x-b", "1")])),
], ids=["data-before-headers", "data-after-trailers", "headers-after-trailers"])
def test_invalid_frame_sequence_is_connection_error(server, frames):
    """RFC 9114 4.1: an invalid frame sequence is a connection error of type
    H3_FRAME_UNEXPECTED. The server itself survives and accepts new
    connections."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_raw(sid, frames(c), end_stream=True)
            try:
                await c.wait_response(sid, timeout=scaled(10))
            except H3ClientError:
                pass
            t = await c.wait_terminated(scaled(10))
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c2:
            h = await c2.request("GET", "/hello", timeout=scaled(10))
        return t, h

    t, h = run(go(), scaled(40))
    assert t.error_code == H3_FRAME_UNEXPECTED, f"closed with 0x{t.error_code:x} ({t.reason_phrase!r})"
    server.assert_alive()
    assert (h.status, h.body) == (200, HELLO)


@pytest.mark.timeout(scaled(60))
def test_unknown_frame_types_on_request_stream_are_ignored(server):
    """RFC 9114 9: unknown frame types, reserved ones (0x1f*N+0x21)
    included, are skipped wherever they appear on a request stream."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_raw(sid, encode_frame(0x21, b"grease")
                       + encode_headers_frame(c.request_headers("POST", "/digest"))
                       + encode_frame(0x40, b"") + encode_data_frame(b"abc")
                       + encode_frame(0x21 + 0x1F * 3, b"q" * 3000) + encode_data_frame(b"def"),
                       end_stream=True)
            return await c.wait_response(sid, timeout=scaled(10))

    r = run(go(), scaled(30))
    assert (r.status, r.body) == (200, _digest_body(b"abcdef")), r
