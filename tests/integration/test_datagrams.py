"""QUIC DATAGRAM (RFC 9221) through h3q-server --datagrams, whose demo
echoes every connection-scoped datagram, with aioquic as the peer: echo
byte for byte, the payload limit (oversized datagrams dropped and counted
in GET /stats), and a server without datagrams refusing them as RFC 9221
section 3 requires."""

from __future__ import annotations

import json

import pytest

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
            got = list(await c.wait_datagrams(len(sent), scaled(10)))
            return got, await stats(c)

    got, st = run(go(), scaled(30))
    # loopback loses nothing; the echo carries each datagram unchanged
    assert sorted(got) == sorted(sent), (len(got), len(sent))
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
