"""NEW_TOKEN for returning clients (RFC 9000 §8.1.3; h3q-server
--new-token-lifetime, quiche patch deps/quiche/patches/10-new-token.patch).

Every connection gets one address-validation token in a NEW_TOKEN frame.
Independent clients keep it: aioquic (its token_handler, then
QuicConfiguration.token) and quic-go (quic.Config.TokenStore). On a --retry
server their first connection sees a Retry on the wire; the second one,
presenting the token, sees none and is served, and the server's counters
(h3q_new_tokens_*_total, h3q_retries_total) say so. A token presented from
another IP address, tampered with, expired or sealed under another secret is
ignored, not refused: the client gets a Retry and still connects (or, without
--retry, connects at once). With the same --secret-file a restarted server
accepts the old server's tokens. A NEW_TOKEN frame whose packets are lost is
sent again (the server's qlog shows it twice). Tokens are checked with
aioquic's sans-I/O QuicConnection over sockets of our own where the client's
address or its packets must be controlled."""

from __future__ import annotations

import asyncio
import glob
import os
import socket
import ssl
import time
from dataclasses import dataclass, field

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted
from aioquic.quic.logger import QuicLogger

from aioquic_client import H3Client, run
from harness import SERVER_EXTRA_ARGS, scaled
from test_operations import metrics, metrics_port, value
from test_quicgo import assert_text, quicgo, run_quicgo  # noqa: F401 (fixture)

TOKEN_KIND_NEW_TOKEN = 0x4E  # src/quic/token.h
LONG_TYPE_RETRY = 0x30  # bits 4-5 of a v1 long header


def _start(servers, *args: str, **kw):
    s = servers.start("--metrics", "127.0.0.1:0", *args, **kw)
    s.metrics_port = metrics_port(s)
    return s


def _counters(server) -> dict:
    m = metrics(server.metrics_port)
    return {"sent": value(m, "h3q_new_tokens_sent_total"),
            "accepted": value(m, "h3q_new_tokens_accepted_total"),
            "retries": value(m, "h3q_retries_total"),
            "connections": value(m, "h3q_connections_accepted_total")}


def _wait_counters(server, pred, what: str) -> dict:
    """Counters are updated by the server's loop: wait (bounded) for them."""
    deadline = time.monotonic() + scaled(10)
    while True:
        c = _counters(server)
        if pred(c):
            return c
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}: {c}")
        time.sleep(0.05)


# --------------------------------------------------------------------------
# aioquic's asyncio client (a fresh UDP port for every connection)


@dataclass
class Visit:
    status: int
    body: bytes
    retries: int  # Retry packets aioquic accepted
    packet_types: list[str]
    tokens: list[bytes] = field(default_factory=list)  # distinct, from NEW_TOKEN frames


def _packet_types(logger: QuicLogger) -> list[str]:
    trace = logger.to_dict()["traces"][0]
    return [e["data"]["header"]["packet_type"] for e in trace["events"]
            if e["name"] == "transport:packet_received"]


async def _visit_async(server, token: bytes, token_wait: float) -> Visit:
    logger, tokens = QuicLogger(), []
    async with H3Client.connect(server.host, server.port, timeout=scaled(10), quic_logger=logger,
                                token=token, token_handler=tokens.append) as c:
        r = await c.request("GET", "/hello", timeout=scaled(10))
        # The token goes out with HANDSHAKE_DONE; wait a little in case the
        # packet carrying it was reordered or lost.
        deadline = time.monotonic() + token_wait
        while not tokens and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        retries = c.quic._retry_count
    # A NEW_TOKEN frame is sent again when its packet is thought lost (a
    # PTO on a busy machine), so the same token may arrive more than once.
    unique = list(dict.fromkeys(tokens))
    return Visit(r.status, r.body, retries, _packet_types(logger), unique)


def _visit(server, token: bytes = b"", token_wait: float = 5.0) -> Visit:
    v = run(_visit_async(server, token, scaled(token_wait)), scaled(40))
    assert (v.status, v.body) == (200, b"hello from h3q\n"), v
    return v


def _first_token(server) -> bytes:
    """A first visit to a --retry server: a Retry, then one NEW_TOKEN."""
    v = _visit(server)
    assert v.retries == 1 and v.packet_types[0] == "retry", v.packet_types[:5]
    assert len(v.tokens) == 1, f"expected one NEW_TOKEN token, got {v.tokens}"
    assert v.tokens[0][0] == TOKEN_KIND_NEW_TOKEN, v.tokens[0].hex()
    return v.tokens[0]


@pytest.mark.timeout(scaled(120))
def test_returning_client_skips_retry(servers):
    s = _start(servers, "--retry")
    token = _first_token(s)
    _wait_counters(s, lambda c: c["sent"] == 1 and c["retries"] == 1, "the first NEW_TOKEN")
    v = _visit(s, token)  # from another UDP port: the token binds the IP only
    assert v.retries == 0 and "retry" not in v.packet_types, v.packet_types[:8]
    # The returning connection got a token of its own too.
    assert len(v.tokens) == 1 and v.tokens[0] != token
    c = _wait_counters(s, lambda c: c["sent"] == 2, "the second NEW_TOKEN")
    assert (c["accepted"], c["retries"], c["connections"]) == (1, 1, 2), c
    # A token is not single-use within its lifetime (RFC 9000 §8.1.3 lets
    # a client use it for several connections; replay costs no more than a
    # connection from that address would).
    v = _visit(s, token)
    assert v.retries == 0, v.packet_types[:8]
    _wait_counters(s, lambda c: c["accepted"] == 2, "the third connection")


@pytest.mark.timeout(scaled(120))
@pytest.mark.parametrize("how", ["flip-last-byte", "flip-middle-byte", "random", "truncated",
                                 "other-secret"])
def test_invalid_token_gets_retry_and_connects(servers, tmp_path, how):
    """Unlike a bad Retry token (dropped), a bad NEW_TOKEN token is ignored:
    the client cannot know it went stale (RFC 9000 §8.1.3)."""
    s = _start(servers, "--retry")
    if how == "other-secret":
        secret = tmp_path / "secret"
        secret.write_bytes(os.urandom(32))
        other = _start(servers, "--retry", "--secret-file", str(secret))
        tok = bytearray(_first_token(other))
    else:
        tok = bytearray(_first_token(s))
    if how == "flip-last-byte":
        tok[-1] ^= 0x01
    elif how == "flip-middle-byte":
        tok[len(tok) // 2] ^= 0x80
    elif how == "random":
        tok = bytearray([TOKEN_KIND_NEW_TOKEN]) + bytearray(os.urandom(len(tok) - 1))
    elif how == "truncated":
        tok = tok[:-1]
    v = _visit(s, bytes(tok))
    assert v.retries == 1 and v.packet_types[0] == "retry", v.packet_types[:5]
    visits = 1 if how == "other-secret" else 2
    c = _wait_counters(s, lambda c: c["connections"] == visits, f"{visits} connections")
    assert c["accepted"] == 0 and c["retries"] == visits, c


@pytest.mark.timeout(scaled(120))
def test_invalid_token_without_retry_connects_at_once(servers):
    s = _start(servers)
    v = _visit(s)
    assert v.retries == 0 and len(v.tokens) == 1, (v.retries, v.tokens)
    tok = bytearray(v.tokens[0])
    tok[-1] ^= 0x01
    v = _visit(s, bytes(tok))
    assert v.retries == 0 and "retry" not in v.packet_types, v.packet_types[:8]
    c = _wait_counters(s, lambda c: c["connections"] == 2, "the second connection")
    assert (c["accepted"], c["retries"]) == (0, 0), c


@pytest.mark.timeout(scaled(120))
def test_expired_token_gets_retry(servers):
    s = _start(servers, "--retry", "--new-token-lifetime", "1")
    token = _first_token(s)
    time.sleep(2.5)  # past the 1 s lifetime
    v = _visit(s, token)
    assert v.retries == 1 and v.packet_types[0] == "retry", v.packet_types[:5]
    c = _wait_counters(s, lambda c: c["connections"] == 2, "the second connection")
    assert c["accepted"] == 0, c


@pytest.mark.timeout(scaled(120))
def test_lifetime_zero_sends_no_token(servers):
    s = _start(servers, "--retry", "--new-token-lifetime", "0")
    v = _visit(s, token_wait=1.5)
    assert v.retries == 1 and v.tokens == [], v.tokens
    # Another server with a lifetime makes a token; this one ignores it.
    token = _first_token(_start(servers, "--retry"))
    v = _visit(s, token, token_wait=0.5)
    assert v.retries == 1, v.packet_types[:5]
    c = _wait_counters(s, lambda c: c["connections"] == 2, "the second connection")
    assert (c["sent"], c["accepted"]) == (0, 0), c


@pytest.mark.timeout(scaled(180))
def test_tokens_survive_a_restart_with_the_same_secret(servers, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(48))
    first = _start(servers, "--retry", "--secret-file", str(secret))
    token = _first_token(first)
    port = first.port
    assert first.stop() == [], "the first server did not stop cleanly"
    second = _start(servers, "--retry", "--secret-file", str(secret), port=port)
    v = _visit(second, token)
    assert v.retries == 0 and "retry" not in v.packet_types, v.packet_types[:8]
    c = _wait_counters(second, lambda c: c["connections"] == 1, "the connection")
    assert (c["accepted"], c["retries"]) == (1, 0), c


# --------------------------------------------------------------------------
# aioquic's sans-I/O QuicConnection over a socket of our own: the client's
# IP address, and which of the server's datagrams arrive, are ours to choose


@dataclass
class Handshake:
    first_retry: bool  # the server's first answer was a Retry
    completed: bool
    tokens: list[bytes]


def _handshake(server, token: bytes = b"", local_ip: str = "127.0.0.1",
               drop_after_handshake: int = 0, linger: float = 5.0) -> Handshake:
    """Connects from local_ip presenting token; once the handshake completed
    at the client, the server's next drop_after_handshake datagrams are
    dropped (lost). Returns when a NEW_TOKEN token arrived, or linger
    seconds after the handshake completed."""
    cfg = QuicConfiguration(is_client=True, alpn_protocols=["h3"])
    cfg.verify_mode = ssl.CERT_NONE
    cfg.token = token
    tokens: list[bytes] = []
    quic = QuicConnection(configuration=cfg, token_handler=tokens.append)
    addr = (server.host, server.port)
    first_retry, done_at, dropped = None, None, 0
    deadline = time.monotonic() + scaled(20)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((local_ip, 0))
        quic.connect(addr, now=time.monotonic())
        while time.monotonic() < deadline and not tokens and \
                (done_at is None or time.monotonic() < done_at + scaled(linger)):
            for data, _ in quic.datagrams_to_send(now=time.monotonic()):
                sock.sendto(data, addr)
            timer = quic.get_timer()
            wait = 0.05 if timer is None else min(0.05, max(0.001, timer - time.monotonic()))
            sock.settimeout(wait)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                data = None
            now = time.monotonic()
            if data is not None:
                if first_retry is None:
                    first_retry = data[0] & 0xF0 == 0xC0 | LONG_TYPE_RETRY
                if done_at is not None and dropped < drop_after_handshake:
                    dropped += 1
                    continue
                quic.receive_datagram(data, addr, now=now)
            elif timer is not None and now >= timer:
                quic.handle_timer(now=now)
            while (ev := quic.next_event()) is not None:
                if isinstance(ev, HandshakeCompleted):
                    done_at = time.monotonic()
                assert not isinstance(ev, ConnectionTerminated), ev
        quic.close()
        for data, _ in quic.datagrams_to_send(now=time.monotonic()):
            sock.sendto(data, addr)
    return Handshake(bool(first_retry), done_at is not None, tokens)


def _can_bind(ip: str) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


@pytest.mark.timeout(scaled(120))
def test_token_from_another_address_gets_retry(servers):
    """The whole of 127/8 is loopback: 127.0.0.2 is another client IP."""
    if not _can_bind("127.0.0.2"):
        pytest.skip("cannot bind 127.0.0.2 on this machine")
    s = _start(servers, "--retry")
    h = _handshake(s)
    assert h.first_retry and h.completed and len(h.tokens) == 1, h
    same = _handshake(s, token=h.tokens[0])
    assert not same.first_retry and same.completed, same
    other = _handshake(s, token=h.tokens[0], local_ip="127.0.0.2")
    assert other.first_retry and other.completed, other
    c = _wait_counters(s, lambda c: c["connections"] == 3, "three connections")
    assert (c["accepted"], c["retries"]) == (1, 2), c


def _half_open(server) -> socket.socket:
    """A client that sends its Initial and nothing more: the server keeps a
    handshake from an unvalidated address in progress."""
    cfg = QuicConfiguration(is_client=True, alpn_protocols=["h3"])
    cfg.verify_mode = ssl.CERT_NONE
    quic = QuicConnection(configuration=cfg)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    addr = (server.host, server.port)
    quic.connect(addr, now=time.monotonic())
    for data, _ in quic.datagrams_to_send(now=time.monotonic()):
        sock.sendto(data, addr)
    return sock


@pytest.mark.timeout(scaled(120))
def test_valid_token_skips_retry_under_load(servers):
    """--retry-auto 1: one handshake from an unvalidated address in progress
    puts the server under load; a new client then gets a Retry, unless it
    presents a NEW_TOKEN token."""
    if "--workers" in SERVER_EXTRA_ARGS:
        pytest.skip("load is counted per worker: the half-open handshake may be on the other one")
    s = _start(servers, "--retry-auto", "1")
    h = _handshake(s)
    assert not h.first_retry and h.completed and len(h.tokens) == 1, h
    with _half_open(s):
        m = lambda: metrics(s.metrics_port)  # noqa: E731
        deadline = time.monotonic() + scaled(10)
        while value(m(), "h3q_handshakes_unvalidated") < 1:
            assert time.monotonic() < deadline, "the half-open handshake was not counted"
            time.sleep(0.05)
        assert _handshake(s).first_retry, "no Retry under load"
        with_token = _handshake(s, token=h.tokens[0])
        assert not with_token.first_retry and with_token.completed, with_token
    c = _counters(s)
    assert c["accepted"] == 1, c


def _new_token_frames_sent(qlog_dir) -> int:
    n = 0
    for path in glob.glob(os.path.join(qlog_dir, "*.sqlog")):
        with open(path, errors="replace") as f:
            n += f.read().count('"frame_type":"new_token"')
    return n


@pytest.mark.timeout(scaled(120))
def test_lost_new_token_is_sent_again(servers, tmp_path):
    """The server's datagrams that follow the handshake are lost: quiche
    declares the packet with NEW_TOKEN lost and sends the frame again."""
    s = _start(servers, "--qlog-dir", str(tmp_path))
    h = _handshake(s, drop_after_handshake=3, linger=10.0)
    assert h.completed and len(h.tokens) == 1, h
    assert s.stop() == [], "the server did not stop cleanly"  # flushes the qlog
    assert _new_token_frames_sent(tmp_path) >= 2, "NEW_TOKEN was not retransmitted"


# --------------------------------------------------------------------------
# quic-go


@pytest.mark.timeout(scaled(660))
def test_quicgo_returning_client_skips_retry(servers, quicgo):
    """quic-go keeps the token in its TokenStore and presents it in the
    next connection's Initial: three connections (the run's own, then two
    sharing the store), of which only the last skips the Retry. quic-go's
    ClientHello may take two Initials, each answered by a Retry, so the
    server's debug log tells which connection had one: the lines before
    each ": accepted" line."""
    s = _start(servers, "--retry", "--log-level", "debug")
    r = run_quicgo(quicgo, s, "-scenario", "newtoken")
    assert r.rc == 0 and r.summary and r.summary["ok"], r.how()
    assert r.summary["connections"] == 3, r.how()
    assert_text(r["get0"], "hello from h3q\n")
    assert_text(r["get1"], "hello from h3q\n")
    rounds = [e for e in r.events if e["event"] == "newtoken_conn"]
    assert [e["round"] for e in rounds] == [0, 1], r.events
    assert rounds[0]["token"] is True, rounds[0]
    c = _wait_counters(s, lambda c: c["connections"] == 3, "three connections")
    assert (c["accepted"], c["sent"]) == (1, 3), c
    log = s.stderr_text()
    before_accept = log.split(": accepted")[:3]
    assert ["retry sent" in seg for seg in before_accept] == [True, True, False], log[-3000:]
    assert "NEW_TOKEN token accepted" in before_accept[2], log[-3000:]
