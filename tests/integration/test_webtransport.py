"""WebTransport over HTTP/3 against h3q-server --webtransport (/wt/echo)
with aioquic's WebTransport client (H3Connection(enable_webtransport=True),
draft-02 as aioquic speaks it): a session with 50 datagrams, a 100 KB
unidirectional stream and 10 bidirectional streams, all compared byte for
byte; then the negative cases: WebTransport not enabled, a stream naming an
unknown session, an oversized datagram, datagrams after the session closed,
a reset in the middle of a stream, and the connection closing with sessions
and streams open (the server's counters at GET /stats come back to zero;
under ASan the server's exit shows no leak). Last, a server that stops
sends DRAIN_WEBTRANSPORT_SESSION on open sessions and exits once they
close."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
from aioquic.buffer import encode_uint_var

from aioquic_client import H3Client, run
from harness import scaled

WT_FIRST = 0x52E4A40FA8DB
BUFFERED_STREAM_REJECTED = 0x3994BD84
MESSAGE_ERROR = 0x10E
CLOSE_SESSION = 0x2843
DRAFT02 = [("sec-webtransport-http3-draft02", "1")]


def wt_to_h3(code: int) -> int:
    """draft-ietf-webtrans-http3 section 4.3."""
    return WT_FIRST + code + code // 0x1E


def pattern(n: int, seed: int) -> bytes:
    return bytes((i * 31 + seed) % 256 for i in range(n))


def capsule(ctype: int, value: bytes) -> bytes:
    return encode_uint_var(ctype) + encode_uint_var(len(value)) + value


async def stats(c: H3Client) -> dict:
    r = await c.request("GET", "/stats", timeout=scaled(10))
    assert r.status == 200, r
    return json.loads(r.body)


async def open_session(c: H3Client, path: str = "/wt/echo") -> int:
    sid = c.wt_connect(path, headers=DRAFT02)
    head = await c.wait_headers(sid, scaled(10))
    assert head.status == 200, head
    assert head.header("sec-webtransport-http3-draft") == "draft02", head.headers
    return sid


async def close_session(c: H3Client, sid: int, code: int = 0, reason: bytes = b"") -> None:
    """CLOSE_WEBTRANSPORT_SESSION, then FIN; waits for the server's FIN."""
    c.send_data(sid, capsule(CLOSE_SESSION, code.to_bytes(4, "big") + reason), end_stream=True)
    await c.wait_until(lambda: c.stream_done(sid), scaled(10))


@pytest.fixture(scope="module")
def wt_server(module_servers):
    return module_servers.start("--webtransport", "--dgram-max-payload", "500")


def test_session_datagrams_uni_and_bidi_streams(wt_server):
    datagrams = [i.to_bytes(2, "big") + pattern(i * 7 % 400, i) for i in range(50)]
    uni_body = pattern(100_000, 1)
    bidi_bodies = [pattern(1000 * (i + 1) + i, 10 + i) for i in range(10)]

    async def go():
        async with H3Client.connect(wt_server.host, wt_server.port, webtransport=True) as c:
            sid = await open_session(c)
            for d in datagrams:
                c.send_h3_datagram(sid, d)
            uni = c.wt_open(sid, uni=True)
            c.wt_send(uni, uni_body, end=True)
            bidis = []
            for body in bidi_bodies:
                b = c.wt_open(sid, uni=False)
                c.wt_send(b, body, end=True)
                bidis.append(b)

            def server_uni():
                return [w for w in c.wt_streams.values()
                        if w.stream_id % 4 == 3 and w.session_id == sid]

            def done():
                return (len(c.h3_datagrams) >= len(datagrams)
                        and all(c.wt_streams[b].ended for b in bidis)
                        and any(w.ended for w in server_uni()))

            await c.wait_until(done, scaled(20))
            got_dgrams = [d for s, d in c.h3_datagrams if s == sid]
            echoes = [bytes(c.wt_streams[b].data) for b in bidis]
            ups = [(bytes(w.data), w.ended) for w in server_uni()]
            st = await stats(c)
            await close_session(c, sid)
            return got_dgrams, echoes, ups, st

    got_dgrams, echoes, ups, st = run(go(), scaled(60))
    assert sorted(got_dgrams) == sorted(datagrams), (len(got_dgrams), len(datagrams))
    for i, (got, want) in enumerate(zip(echoes, bidi_bodies)):
        assert got == want, f"bidi stream {i}: {len(got)} bytes back of {len(want)}"
    assert len(ups) == 1 and ups[0] == (uni_body, True), [(len(d), e) for d, e in ups]
    assert st["wt_sessions_accepted"] >= 1 and st["wt_streams_opened"] >= 12, st
    wt_server.assert_alive()


def test_not_enabled_is_malformed(server):
    """Without --webtransport (and so without extended CONNECT), :protocol
    makes the request malformed (RFC 9220 section 3): H3_MESSAGE_ERROR."""

    async def go():
        async with H3Client.connect(server.host, server.port, webtransport=True) as c:
            sid = c.wt_connect("/wt/echo", headers=DRAFT02)
            await c.wait_until(lambda: c.stream_done(sid), scaled(10))
            return c.proto.streams[sid].resp, c.h3.received_settings

    resp, settings = run(go(), scaled(30))
    assert resp.status is None and resp.reset_code == MESSAGE_ERROR, resp
    assert settings.get(0x2B603742) is None and settings.get(0x08) is None, settings


def test_extended_connect_without_webtransport(servers):
    s = servers.start("--extended-connect")

    async def go():
        async with H3Client.connect(s.host, s.port, webtransport=True) as c:
            sid = c.wt_connect("/wt/echo", headers=DRAFT02)
            return await c.wait_response(sid, scaled(10))

    r = run(go(), scaled(30))
    assert r.status == 404, r


def test_unknown_path_is_404(wt_server):
    async def go():
        async with H3Client.connect(wt_server.host, wt_server.port, webtransport=True) as c:
            sid = c.wt_connect("/wt/nowhere", headers=DRAFT02)
            return await c.wait_response(sid, scaled(10))

    assert run(go(), scaled(30)).status == 404


def test_stream_for_unknown_session_refused(wt_server):
    async def go():
        async with H3Client.connect(wt_server.host, wt_server.port, webtransport=True) as c:
            sid = await open_session(c)
            before = await stats(c)
            stray = c.wt_open(sid + 400, uni=False)  # no such session
            c.wt_send(stray, b"anyone?")
            w = c.wt_streams[stray]
            await c.wait_until(lambda: w.reset_code is not None and w.stop_code is not None,
                               scaled(10))
            # the session itself still echoes
            c.send_h3_datagram(sid, b"still here")
            await c.wait_until(lambda: c.h3_datagrams, scaled(10))
            after = await stats(c)
            return w, before, after, list(c.h3_datagrams), c.terminated

    w, before, after, dgrams, term = run(go(), scaled(30))
    assert (w.reset_code, w.stop_code) == (BUFFERED_STREAM_REJECTED, BUFFERED_STREAM_REJECTED)
    assert after["wt_streams_rejected"] - before["wt_streams_rejected"] == 1
    assert dgrams and dgrams[0][1] == b"still here" and term is None


def test_oversized_datagram_dropped(wt_server):
    async def go():
        async with H3Client.connect(wt_server.host, wt_server.port, webtransport=True) as c:
            sid = await open_session(c)
            before = await stats(c)
            c.send_h3_datagram(sid, b"L" * 600)  # over --dgram-max-payload 500
            c.send_h3_datagram(sid, b"s" * 400)
            await c.wait_until(lambda: c.h3_datagrams, scaled(10))
            await asyncio.sleep(0.2)
            after = await stats(c)
            return list(c.h3_datagrams), before, after

    got, before, after = run(go(), scaled(30))
    assert [d for _, d in got] == [b"s" * 400]
    assert after["datagrams_too_large"] - before["datagrams_too_large"] == 1


def test_datagrams_after_close_dropped(wt_server):
    async def go():
        async with H3Client.connect(wt_server.host, wt_server.port, webtransport=True) as c:
            sid = await open_session(c)
            await close_session(c, sid, 5, b"bye")
            before = await stats(c)
            for i in range(3):
                c.send_h3_datagram(sid, b"late %d" % i)
            await asyncio.sleep(0.3)
            after = await stats(c)
            return list(c.h3_datagrams), before, after, c.proto.streams[sid].resp

    got, before, after, resp = run(go(), scaled(30))
    assert got == [] and resp.complete  # the server ended the CONNECT stream
    assert after["datagrams_unroutable"] - before["datagrams_unroutable"] == 3, (before, after)
    assert after["wt_sessions_active"] == before["wt_sessions_active"]


def test_reset_mid_stream(wt_server):
    """The client resets a bidi stream after some bytes; the echo resets its
    side with the same WebTransport code, and the session goes on."""

    async def go():
        async with H3Client.connect(wt_server.host, wt_server.port, webtransport=True) as c:
            sid = await open_session(c)
            b = c.wt_open(sid, uni=False)
            c.wt_send(b, pattern(5000, 9))
            w = c.wt_streams[b]
            await c.wait_until(lambda: len(w.data) >= 5000, scaled(10))
            c.reset_stream(b, wt_to_h3(42))
            await c.wait_until(lambda: w.reset_code is not None, scaled(10))
            b2 = c.wt_open(sid, uni=False)
            c.wt_send(b2, b"after", end=True)
            await c.wait_until(lambda: c.wt_streams[b2].ended, scaled(10))
            return w, bytes(c.wt_streams[b2].data)

    w, after = run(go(), scaled(30))
    assert bytes(w.data) == pattern(5000, 9)
    assert w.reset_code == wt_to_h3(42)
    assert after == b"after"


def test_connection_closes_with_sessions_open(wt_server):
    async def go():
        async with H3Client.connect(wt_server.host, wt_server.port, webtransport=True) as c:
            for _ in range(3):
                sid = await open_session(c)
                b = c.wt_open(sid, uni=False)
                c.wt_send(b, b"half")  # no FIN
                u = c.wt_open(sid, uni=True)
                c.wt_send(u, b"unfinished")
            await c.wait_until(lambda: sum(len(w.data) for w in c.wt_streams.values()) >= 12,
                               scaled(10))
            during = await stats(c)
            c.close(error_code=0x100)
        await asyncio.sleep(0.3)
        async with H3Client.connect(wt_server.host, wt_server.port) as c2:
            after = await stats(c2)
        return during, after

    during, after = run(go(), scaled(30))
    assert during["wt_sessions_active"] >= 3, during
    assert after["wt_sessions_active"] == 0, after
    wt_server.assert_alive()


def test_server_stop_drains_sessions(servers):
    """SIGTERM: GOAWAY, and a DRAIN_WEBTRANSPORT_SESSION capsule on every
    open session; the session still echoes until the client closes it, and
    the server exits cleanly once it has."""
    s = servers.start("--webtransport", "--drain-timeout", "5000")

    async def go():
        async with H3Client.connect(s.host, s.port, webtransport=True) as c:
            sid = await open_session(c)
            s.proc.send_signal(signal.SIGTERM)
            s.expect_exit = True
            drain = capsule(0x78AE, b"")
            await c.wait_until(lambda: drain in c.body_so_far(sid), scaled(10))
            got_drain = drain in c.body_so_far(sid)
            c.send_h3_datagram(sid, b"still open")
            await c.wait_until(lambda: c.h3_datagrams, scaled(5))
            await close_session(c, sid)
            return got_drain, list(c.h3_datagrams), await c.wait_goaway(scaled(5))

    got_drain, dgrams, goaway = run(go(), scaled(30))
    assert got_drain and dgrams == [(0, b"still open")]
    assert goaway >= 4  # the CONNECT (stream 0) was before the GOAWAY
    assert s.proc.wait(scaled(10)) == 0
