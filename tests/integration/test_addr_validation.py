"""Address validation with Retry (h3q-server --retry, RFC 9000 §8.1).

Real clients see a Retry on the wire and still connect (aioquic, ngtcp2's
gtlsclient, quic-go). Tokens are checked by driving aioquic's sans-I/O
QuicConnection over our own UDP sockets: the Initial that follows a Retry
is answered when it carries the server's token from the same address, and
dropped (no answer at all, RFC 9000 §8.1.2) when the token was tampered
with, forged, used from another port, or has expired (10 s)."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import socket
import ssl
import subprocess
import time

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.logger import QuicLogger

from aioquic_client import H3Client, run
from harness import require_tool, scaled
from test_quicgo import assert_text, quicgo, run_quicgo  # noqa: F401 (fixture)

LONG_TYPE_RETRY = 0x30  # bits 4-5 of a v1 long header


@pytest.fixture(scope="module")
def retry_server(module_servers):
    return module_servers.start("--retry")


def _packet_types(logger: QuicLogger) -> list[str]:
    trace = logger.to_dict()["traces"][0]
    return [e["data"]["header"]["packet_type"] for e in trace["events"]
            if e["name"] == "transport:packet_received"]


async def _get_hello(server, **kw):
    async with H3Client.connect(server.host, server.port, timeout=scaled(10), **kw) as c:
        r = await c.request("GET", "/hello", timeout=scaled(10))
        return r, c.quic._retry_count


@pytest.mark.timeout(scaled(60))
def test_aioquic_sees_retry_and_connects(retry_server):
    logger = QuicLogger()
    r, retries = run(_get_hello(retry_server, quic_logger=logger), scaled(30))
    assert (r.status, r.body) == (200, b"hello from h3q\n")
    # aioquic accepts a Retry only with a valid integrity tag, and then
    # checks the server's original/retry_source_connection_id parameters.
    assert retries == 1
    types = _packet_types(logger)
    assert types[0] == "retry", types[:5]


@pytest.mark.timeout(scaled(60))
def test_no_retry_without_the_flag(server):
    logger = QuicLogger()
    r, retries = run(_get_hello(server, quic_logger=logger), scaled(30))
    assert r.status == 200 and retries == 0
    assert "retry" not in _packet_types(logger)


@pytest.mark.timeout(scaled(90))
def test_gtlsclient_sees_retry_and_connects(retry_server, tmp_path):
    exe = require_tool("gtlsclient", "ngtcp2-client")
    url = f"https://127.0.0.1:{retry_server.port}/hello"
    cmd = [exe, "--no-http-dump", "--exit-on-all-streams-close", "--timeout=10s",
           "127.0.0.1", str(retry_server.port), url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(60),
                       stdin=subprocess.DEVNULL, errors="replace")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert "type=Retry" in out, "gtlsclient received no Retry"
    assert "retry_source_connection_id=" in out
    assert "[:status: 200]" in out


@pytest.mark.timeout(scaled(660))
def test_quicgo_connects_through_retry(servers, quicgo):
    """quic-go has no packet log here; the server's debug log shows the
    Retry and that the connection was accepted only after it."""
    s = servers.start("--retry", "--log-level", "debug")
    r = run_quicgo(quicgo, s, "-req", "GET /hello", "-req", "GET /bytes/100000")
    r.assert_clean()
    assert_text(r["GET /hello"], "hello from h3q\n")
    log = s.stderr_text()
    assert "retry sent" in log and log.index("retry sent") < log.index(": accepted"), log[-2000:]
    assert log.count(": accepted") == 1, log[-2000:]


# --------------------------------------------------------------------------
# tokens, with aioquic's QuicConnection over sockets of our own


def _client() -> QuicConnection:
    cfg = QuicConfiguration(is_client=True, alpn_protocols=["h3"])
    cfg.verify_mode = ssl.CERT_NONE
    return QuicConnection(configuration=cfg)


def _sock() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def _send_all(quic: QuicConnection, sock: socket.socket, addr) -> int:
    n = 0
    for data, _ in quic.datagrams_to_send(time.monotonic()):
        sock.sendto(data, addr)
        n += 1
    return n


def _recv(sock: socket.socket, wait: float) -> bytes | None:
    sock.settimeout(wait)
    try:
        return sock.recv(65536)
    except socket.timeout:
        return None


def _after_retry(server) -> tuple[QuicConnection, socket.socket, tuple]:
    """A client that sent its first Initial and processed the server's
    Retry; its next datagrams (the Initial with the token) are not sent."""
    addr = (server.host, server.port)
    quic, sock = _client(), _sock()
    quic.connect(addr, now=time.monotonic())
    assert _send_all(quic, sock, addr) >= 1
    retry = _recv(sock, scaled(5))
    assert retry is not None, "no answer to a client Initial"
    assert retry[0] & 0xF0 == 0xC0 | LONG_TYPE_RETRY, f"not a Retry: first byte {retry[0]:#x}"
    quic.receive_datagram(retry, addr, now=time.monotonic())
    assert quic._retry_count == 1, "aioquic rejected the Retry (integrity tag?)"
    assert quic._peer_token, "the Retry carried no token"
    return quic, sock, addr


def _answered(quic: QuicConnection, sock: socket.socket, addr, wait: float) -> bool:
    _send_all(quic, sock, addr)
    return _recv(sock, wait) is not None


@pytest.mark.timeout(scaled(60))
def test_valid_token_is_answered(retry_server):
    quic, sock, addr = _after_retry(retry_server)
    with sock:
        assert _answered(quic, sock, addr, scaled(5)), "the Initial with a valid token got no answer"


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("how", ["flip-last-byte", "flip-middle-byte", "random", "truncated",
                                 "other-kind"])
def test_tampered_or_forged_token_is_dropped(retry_server, how):
    quic, sock, addr = _after_retry(retry_server)
    tok = bytearray(quic._peer_token)
    if how == "flip-last-byte":
        tok[-1] ^= 0x01
    elif how == "flip-middle-byte":
        tok[len(tok) // 2] ^= 0x80
    elif how == "random":
        tok = bytearray(os.urandom(len(tok)))
    elif how == "truncated":
        tok = tok[:-1]
    else:
        tok[0] ^= 0xFF
    quic._peer_token = bytes(tok)
    with sock:
        assert not _answered(quic, sock, addr, scaled(1.5)), f"{how} token was answered"
    _still_connects(retry_server)


@pytest.mark.timeout(scaled(60))
def test_token_from_another_port_is_dropped(retry_server):
    quic, sock, addr = _after_retry(retry_server)
    with sock, _sock() as other:
        assert not _answered(quic, other, addr, scaled(1.5)), \
            "a token was accepted from another client port"


@pytest.mark.timeout(scaled(90))
def test_expired_token_is_dropped(retry_server):
    """Retry tokens live 10 s: the same Initial is dropped once that passed.
    Both Initials are built by aioquic right after the Retry; one goes out at
    once (answered), the other 11 s later (dropped)."""
    fresh, fresh_sock, addr = _after_retry(retry_server)
    late, late_sock, _ = _after_retry(retry_server)
    late_datagrams = late.datagrams_to_send(time.monotonic())
    with fresh_sock, late_sock:
        assert _answered(fresh, fresh_sock, addr, scaled(5))
        time.sleep(11.0)
        for data, _ in late_datagrams:
            late_sock.sendto(data, addr)
        assert _recv(late_sock, scaled(1.5)) is None, "an expired token was answered"
    _still_connects(retry_server)


def _still_connects(server) -> None:
    r, retries = run(_get_hello(server), scaled(30))
    assert r.status == 200 and retries == 1
    server.assert_alive()


def _initial(dcid: bytes, scid: bytes, size: int = 1200) -> bytes:
    """A v1 Initial header without a token, padded with junk to size (the
    server answers Retry before it decrypts anything)."""
    hdr = bytes([0xC0]) + struct.pack("!I", 1) + bytes([len(dcid)]) + dcid
    hdr += bytes([len(scid)]) + scid + b"\x00"  # token length 0
    rest = size - len(hdr) - 2
    return hdr + struct.pack("!H", 0x4000 | rest) + os.urandom(rest)


@pytest.mark.timeout(scaled(90))
def test_initial_flood_creates_no_connections(retry_server):
    """Spoofed-looking Initials (each its own DCID) get a Retry each, and
    the server accepts no connection for any of them: nothing is kept per
    attempt. Its /stats counters say how many connections it accepted."""
    async def accepted() -> int:
        async with H3Client.connect(retry_server.host, retry_server.port,
                                    timeout=scaled(10)) as c:
            r = await c.request("GET", "/stats", timeout=scaled(10))
            assert r.status == 200
            return json.loads(r.body)["connections_accepted"]
    before = run(accepted(), scaled(30))
    n, retries = 300, 0
    with _sock() as sock:
        addr = (retry_server.host, retry_server.port)
        # One at a time, so no socket buffer overflows on a busy machine.
        for i in range(n):
            sock.sendto(_initial(os.urandom(8 + i % 13), os.urandom(8)), addr)
            d = _recv(sock, scaled(2))
            retries += d is not None and d[0] & 0xF0 == 0xC0 | LONG_TYPE_RETRY
    assert retries == n, f"{retries} Retries for {n} Initials"
    after = run(accepted(), scaled(30))
    # Only the two /stats clients themselves were accepted.
    assert after == before + 1, (before, after)
