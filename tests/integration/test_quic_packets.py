"""Raw UDP datagrams at the QUIC layer, before any connection exists:
version negotiation for an unknown version (RFC 9000 section 6), no answer
to an unknown version in a datagram under 1200 bytes, and junk that must
neither crash the server nor get an answer. After each, a real client is
still served."""

from __future__ import annotations

import os
import socket
import struct

import pytest

from aioquic_client import run, H3Client
from harness import scaled

UNKNOWN_VERSION = 0x1A2A3A4A


def _long_header(version: int, dcid: bytes, scid: bytes, size: int) -> bytes:
    first = bytes([0xC0 | 0x00])  # long header, fixed bit, Initial type bits
    hdr = first + struct.pack("!I", version) + bytes([len(dcid)]) + dcid
    hdr += bytes([len(scid)]) + scid
    return hdr + os.urandom(size - len(hdr))


def _exchange(server, datagram: bytes, wait: float) -> bytes | None:
    fam = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(wait)
        s.sendto(datagram, (server.host, server.port))
        try:
            return s.recv(65536)
        except socket.timeout:
            return None


def _still_serves(server) -> None:
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            return await c.request("GET", "/hello", timeout=scaled(10))
    r = run(go(), scaled(30))
    assert (r.status, r.body) == (200, b"hello from h3q\n")
    server.assert_alive()


@pytest.mark.timeout(scaled(60))
def test_version_negotiation(server):
    dcid, scid = os.urandom(8), os.urandom(8)
    reply = _exchange(server, _long_header(UNKNOWN_VERSION, dcid, scid, 1200), scaled(3))
    assert reply is not None, "no Version Negotiation packet for an unknown version"
    assert reply[0] & 0x80, "not a long header"
    assert struct.unpack("!I", reply[1:5])[0] == 0, "version field of a VN packet must be 0"
    # The VN packet echoes the client's connection IDs swapped.
    dlen = reply[5]
    assert reply[6:6 + dlen] == scid
    slen = reply[6 + dlen]
    assert reply[7 + dlen:7 + dlen + slen] == dcid
    versions = reply[7 + dlen + slen:]
    listed = {struct.unpack("!I", versions[i:i + 4])[0] for i in range(0, len(versions), 4)}
    assert 0x00000001 in listed, f"QUIC v1 not offered: {sorted(hex(v) for v in listed)}"
    _still_serves(server)


@pytest.mark.timeout(scaled(60))
def test_no_version_negotiation_for_small_datagrams(server):
    dgram = _long_header(UNKNOWN_VERSION, os.urandom(8), os.urandom(8), 1000)
    assert _exchange(server, dgram, 1.0) is None
    _still_serves(server)


@pytest.mark.timeout(scaled(60))
def test_junk_datagrams_are_dropped(server):
    junk = [
        b"",
        b"\x00",
        os.urandom(5),
        bytes([0x40]) + os.urandom(16),  # short header too small for a reset
        bytes([0xC0]) + struct.pack("!I", 1) + bytes([255]),  # DCID length past the end
        _long_header(1, os.urandom(20), os.urandom(20), 1200),  # v1 Initial, garbage crypto
        _long_header(1, os.urandom(8), b"", 1199),            # v1 Initial under 1200 bytes
    ]
    for d in junk:
        assert _exchange(server, d, 0.3) is None, f"answered junk {d[:8].hex()}..."
    _still_serves(server)


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("size", [22, 41, 1200])
def test_short_header_for_unknown_connection_gets_stateless_reset(server, size):
    """RFC 9000 §10.3: a short-header packet for a connection the server does
    not have is answered with a stateless reset: shorter than the packet (so
    two endpoints cannot loop), at least 21 bytes, at most 43, first bits 01."""
    d = bytes([0x40 | (os.urandom(1)[0] & 0x3f)]) + os.urandom(size - 1)
    r = _exchange(server, d, 2.0)
    assert r is not None, f"no stateless reset for a {size}-byte short-header packet"
    assert 21 <= len(r) < size and len(r) <= 43, len(r)
    assert r[0] & 0xC0 == 0x40, f"first byte {r[0]:#x} is not a short header with the fixed bit"
    # The token depends on the DCID (first 16 bytes after the first byte).
    r2 = _exchange(server, d, 2.0)
    assert r2 is not None and r2[-16:] == r[-16:], "reset token not stable for one DCID"
    other = bytes([d[0]]) + bytes(b ^ 0xFF for b in d[1:17]) + d[17:]
    r3 = _exchange(server, other, 2.0)
    assert r3 is not None and r3[-16:] != r[-16:], "two DCIDs got the same reset token"
    _still_serves(server)
