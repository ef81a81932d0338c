"""QUIC DATAGRAM (RFC 9221) through h3q-server --datagrams, whose demo
echoes every connection-scoped datagram, with aioquic as the peer: echo
byte for byte, the payload limit (oversized datagrams dropped and counted
in GET /stats), and a server without datagrams refusing them as RFC 9221
section 3 requires. Then HTTP Datagrams (RFC 9297) with --h3-datagrams:
echo on a request stream, DATAGRAM capsules, a datagram for a stream that
does not exist (dropped, counted), and H3_DATAGRAM_ERROR for a datagram
without a quarter stream id or with one of 2^60."""

from __future__ import annotations

import asyncio
import json

import pytest

from aioquic.buffer import encode_uint_var

from aioquic_client import H3Client, run
from harness import scaled

FRAME_MAX = 65536  # what the client announces as max_datagram_frame_size
PROTOCOL_VIOLATION = 0xA


def payload(i: int) -> bytes:
    """Datagram i: its index, then bytes that depend on it (sizes vary)."""
    body = bytes((i * 7 + k) % 256 for k in range(i * 19 % 1100))
    return i.to_bytes(2, "big") + body


async def stats(c: H3Client) -> dict:
    r = await c.request("GET", "/stats", timeout=scaled(10))
    assert r.status == 200, r
    return json.loads(r.body)


@pytest.fixture(scope="module")
def dgram_server(module_servers):
    return module_servers.start("--datagrams", "--dgram-max-payload", "1000")


def test_datagram_echo(dgram_server):
    sent = [payload(i) for i in range(50) if len(payload(i)) <= 1000]

    async def go():
        async with H3Client.connect(dgram_server.host, dgram_server.port,
                                    max_datagram_frame_size=FRAME_MAX,
                                    raw_datagrams=True) as c:
            for d in sent:
                c.send_datagram(d)
            first = list(await c.wait_datagrams(len(sent), scaled(5)))
            # Datagrams may be lost (RFC 9221), and on a loaded machine a
            # loopback socket can drop one now and then: what did not come
            # back is sent once more, so that such a loss does not fail the
            # test while a datagram that never comes back does.
            lost = [d for d in sent if d not in first]
            for d in lost:
                c.send_datagram(d)
            await c.wait_until(lambda: all(d in c.proto.datagrams for d in sent), scaled(10))
            return list(c.proto.datagrams), lost, await stats(c)

    got, lost, st = run(go(), scaled(30))
    assert len(lost) <= 2, f"{len(lost)} of {len(sent)} datagrams lost on loopback"
    # the echo carries each datagram unchanged, and nothing else
    assert set(got) == set(sent), (len(got), len(sent), len(lost))
    assert st["datagrams_received"] >= len(sent) and st["datagrams_sent"] >= len(sent), st
    dgram_server.assert_alive()


def test_oversized_datagram_dropped_and_counted(dgram_server):
    async def go():
        async with H3Client.connect(dgram_server.host, dgram_server.port,
                                    max_datagram_frame_size=FRAME_MAX,
                                    raw_datagrams=True) as c:
            before = await stats(c)
            c.send_datagram(b"a" * 1001)  # over --dgram-max-payload
            c.send_datagram(b"b" * 1000)  # exactly the limit
            got = list(await c.wait_datagrams(1, scaled(10)))
            after = await stats(c)
            return got, before, after, c.terminated

    got, before, after, term = run(go(), scaled(30))
    assert got == [b"b" * 1000]
    assert after["datagrams_too_large"] - before["datagrams_too_large"] == 1, (before, after)
    assert term is None  # the connection survives an oversized datagram


def test_datagram_without_support_is_protocol_violation(server):
    """The plain server announces no max_datagram_frame_size: a DATAGRAM
    frame from the client closes the connection (RFC 9221 section 3)."""

    async def go():
        async with H3Client.connect(server.host, server.port,
                                    max_datagram_frame_size=FRAME_MAX,
                                    raw_datagrams=True) as c:
            assert c.quic._remote_max_datagram_frame_size is None
            c.quic._remote_max_datagram_frame_size = FRAME_MAX  # send anyway
            c.send_datagram(b"unwanted")
            return await c.wait_terminated(scaled(10))

    t = run(go(), scaled(30))
    assert t.error_code == PROTOCOL_VIOLATION, t
    server.assert_alive()


# --------------------------------------------------------------------------
# HTTP Datagrams (RFC 9297): h3q-server --h3-datagrams echoes every datagram
# of a request to /dgram/echo; aioquic announces H3_DATAGRAM.

DATAGRAM_ERROR = 0x33


def capsule(ctype: int, value: bytes) -> bytes:
    return encode_uint_var(ctype) + encode_uint_var(len(value)) + value


@pytest.fixture(scope="module")
def h3dgram_server(module_servers):
    return module_servers.start("--h3-datagrams")


def test_http_datagram_echo(h3dgram_server):
    sent = [payload(i) for i in range(50)]

    async def go():
        async with H3Client.connect(h3dgram_server.host, h3dgram_server.port,
                                    webtransport=True) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/dgram/echo"))
            head = await c.wait_headers(sid, scaled(10))
            for d in sent:
                c.send_h3_datagram(sid, d)
            await c.wait_until(lambda: len(c.h3_datagrams) >= len(sent), scaled(10))
            got = list(c.h3_datagrams)
            c.send_data(sid, b"", end_stream=True)
            resp = await c.wait_response(sid, scaled(10))
            return head.status, got, resp

    status, got, resp = run(go(), scaled(30))
    assert status == 200
    assert all(stream == 0 for stream, _ in got), got[:3]
    assert sorted(d for _, d in got) == sorted(sent)
    assert resp.complete  # the response ended with the request


def test_http_datagram_capsules_in(h3dgram_server):
    """DATAGRAM capsules on a capsule-protocol request reach the same
    receiver (unknown capsule types are skipped); the echo goes back as QUIC
    DATAGRAMs since the client announced H3_DATAGRAM; the client's FIN ends
    the response."""

    async def go():
        async with H3Client.connect(h3dgram_server.host, h3dgram_server.port,
                                    webtransport=True) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/dgram/echo") +
                           [("capsule-protocol", "?1")])
            await c.wait_headers(sid, scaled(10))
            body = capsule(0x2B, b"ignored") + capsule(0, b"first") + capsule(0, b"second")
            c.send_data(sid, body[:9])
            c.send_data(sid, body[9:])
            await c.wait_until(lambda: len(c.h3_datagrams) >= 2, scaled(10))
            got = list(c.h3_datagrams)
            c.send_data(sid, b"", end_stream=True)
            resp = await c.wait_response(sid, scaled(10))
            return got, resp

    got, resp = run(go(), scaled(30))
    assert got == [(0, b"first"), (0, b"second")]
    assert resp.complete and resp.status == 200


def test_http_datagram_unknown_stream_counted(h3dgram_server):
    async def go():
        async with H3Client.connect(h3dgram_server.host, h3dgram_server.port,
                                    webtransport=True) as c:
            before = await stats(c)
            c.send_h3_datagram(400, b"nobody")  # stream 400 was never opened
            await asyncio.sleep(0.2)
            after = await stats(c)
            return before, after, c.terminated

    before, after, term = run(go(), scaled(30))
    assert after["datagrams_unroutable"] - before["datagrams_unroutable"] == 1, (before, after)
    assert term is None


@pytest.mark.parametrize("raw", [b"", encode_uint_var(1 << 60) + b"x"],
                         ids=["no-stream-id", "id-2^60"])
def test_http_datagram_bad_id_is_connection_error(h3dgram_server, raw):
    async def go():
        async with H3Client.connect(h3dgram_server.host, h3dgram_server.port,
                                    webtransport=True, raw_datagrams=True) as c:
            await c.wait_until(lambda: c.h3.received_settings is not None, scaled(5))
            c.send_datagram(raw)
            return await c.wait_terminated(scaled(10))

    t = run(go(), scaled(30))
    assert t.error_code == DATAGRAM_ERROR, t
    h3dgram_server.assert_alive()
