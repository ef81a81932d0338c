"""aioquic running one QUIC Interop Runner test case against an HTTP/3
server: the same cases and the same JSON report as tests/interop/quicgocases
(see its main.go), for tests/interop/run.py to judge.

    .venv/bin/python tests/interop/aioquic_cases.py --addr 127.0.0.1:4433 --case transfer /f1 /f2

aioquic is driven sans-I/O here (our own UDP socket and select loop), which
is what lets a case swap the socket under a live connection (rebind-port:
the same connection IDs from a new port, as behind a NAT;
connectionmigration: a new port and the next connection ID) or ask for a
key update half-way (keyupdate). Everything stays on loopback; every wait
is bounded by --timeout.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import select
import socket
import sys
import time
from dataclasses import dataclass, field

from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted
from aioquic.quic.packet import QuicProtocolVersion
from aioquic.tls import CipherSuite, Epoch, SessionTicket

MAX_READS_PER_WAKEUP = 256
OLD_PORT_GRACE = 1.0  # seconds the old port still receives after a rebinding


@dataclass
class FileResult:
    path: str
    status: int = 0
    size: int = 0
    sha256: str = ""
    error: str = ""
    ended: bool = False
    length: int = -1  # content-length, when given
    hasher: object = field(default_factory=hashlib.sha256, repr=False)

    def report(self) -> dict:
        d = {"path": self.path, "status": self.status, "size": self.size,
             "sha256": self.hasher.hexdigest()}
        if self.error:
            d["error"] = self.error
        return d


class Client:
    """One QUIC connection with HTTP/3 on it, on a socket of our own."""

    def __init__(self, host: str, port: int, config: QuicConfiguration,
                 on_ticket=None) -> None:
        self.host, self.port = host, port
        self.v6 = ":" in host
        self.peer = (host, port, 0, 0) if self.v6 else (host, port)
        self.sock = self._socket()
        self.old_socks: list[tuple[socket.socket, float]] = []
        self.local_addrs = [self._local()]
        self.quic = QuicConnection(configuration=config, session_ticket_handler=on_ticket)
        self.quic.connect(self.peer, now=time.monotonic())
        self.h3 = H3Connection(self.quic)
        self.files: dict[int, FileResult] = {}
        self.handshake_done = False
        self.terminated: ConnectionTerminated | None = None
        self.transmit()

    def _socket(self) -> socket.socket:
        s = socket.socket(socket.AF_INET6 if self.v6 else socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("::1" if self.v6 else "127.0.0.1", 0))
        s.setblocking(False)
        return s

    def _local(self) -> str:
        a = self.sock.getsockname()
        return f"[{a[0]}]:{a[1]}" if self.v6 else f"{a[0]}:{a[1]}"

    def transmit(self) -> None:
        for data, addr in self.quic.datagrams_to_send(now=time.monotonic()):
            try:
                self.sock.sendto(data, addr)
            except BlockingIOError:
                pass  # a full socket buffer is a lost packet: QUIC resends

    def get(self, path: str) -> None:
        sid = self.quic.get_next_available_stream_id()
        authority = f"[{self.host}]:{self.port}" if self.v6 else f"{self.host}:{self.port}"
        self.h3.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"),
                                   (b":authority", authority.encode()),
                                   (b":path", path.encode())], end_stream=True)
        self.files[sid] = FileResult(path)
        self.transmit()

    def pump(self, max_wait: float) -> None:
        timer = self.quic.get_timer()
        now = time.monotonic()
        wait = max_wait if timer is None else max(0.0, min(max_wait, timer - now))
        ready, _, _ = select.select([self.sock, *self._old_ports()], [], [], wait)
        for sock in ready:
            for _ in range(MAX_READS_PER_WAKEUP):
                try:
                    data, addr = sock.recvfrom(65536)
                except BlockingIOError:
                    break
                self.quic.receive_datagram(data, addr, now=time.monotonic())
        timer = self.quic.get_timer()
        if timer is not None and time.monotonic() >= timer:
            self.quic.handle_timer(now=time.monotonic())
        self._events()
        self.transmit()

    def _events(self) -> None:
        while (ev := self.quic.next_event()) is not None:
            if isinstance(ev, HandshakeCompleted):
                self.handshake_done = True
            elif isinstance(ev, ConnectionTerminated):
                self.terminated = ev
            for h3ev in self.h3.handle_event(ev):
                self._h3_event(h3ev)

    def _h3_event(self, ev) -> None:
        f = self.files.get(getattr(ev, "stream_id", -1))
        if f is None:
            return
        if isinstance(ev, HeadersReceived):
            hdrs = dict(ev.headers)
            f.status = int(hdrs.get(b":status", b"0"))
            if b"content-length" in hdrs:
                f.length = int(hdrs[b"content-length"])
        elif isinstance(ev, DataReceived):
            f.hasher.update(ev.data)
            f.size += len(ev.data)
        if getattr(ev, "stream_ended", False):
            f.ended = True

    def run_until(self, done, deadline: float, step=None) -> bool:
        """Pumps until done() or the connection ends or the deadline."""
        while time.monotonic() < deadline:
            if done():
                return True
            if self.terminated is not None:
                return False
            if step is not None:
                step()
            self.pump(min(0.2, max(0.0, deadline - time.monotonic())))
        return done()

    def all_ended(self) -> bool:
        return all(f.ended for f in self.files.values())

    def rebind(self) -> str:
        """The NAT gives the client a new port: same connection IDs. Like a
        NAT whose old mapping still delivers for a while, what arrives on
        the old port is read for OLD_PORT_GRACE more seconds; everything
        leaves from the new one."""
        self.old_socks.append((self.sock, time.monotonic() + OLD_PORT_GRACE))
        self.sock = self._socket()
        self.local_addrs.append(self._local())
        self.transmit()
        return self.local_addrs[-1]

    def _old_ports(self) -> list[socket.socket]:
        now = time.monotonic()
        for s, until in [x for x in self.old_socks if x[1] <= now]:
            s.close()
        self.old_socks = [x for x in self.old_socks if x[1] > now]
        return [s for s, _ in self.old_socks]

    def migrate(self) -> str:
        """Active migration: a new port and the next connection ID."""
        spare = len(getattr(self.quic, "_peer_cid_available", []))
        if spare == 0:
            self.local_addrs.append("error: the server issued no spare connection ID")
            return self.local_addrs[-1]
        self.quic.change_connection_id()
        return self.rebind()

    def close(self) -> None:
        self.quic.close(error_code=0x100)
        self.transmit()
        self.sock.close()
        for s, _ in self.old_socks:
            s.close()

    def report(self) -> dict:
        tls = self.quic.tls
        ks = getattr(tls, "key_schedule", None)
        one_rtt = self.quic._cryptos.get(Epoch.ONE_RTT) if hasattr(self.quic, "_cryptos") else None
        d = {
            "version": f"0x{self.quic._version or 0:08x}",
            "alpn": self.quic.tls.alpn_negotiated or "",
            "cipher": ks.cipher_suite.name if ks is not None else "",
            "resumed": bool(tls.session_resumed),
            "used_0rtt": bool(tls.early_data_accepted),
            "retries": int(getattr(self.quic, "_retry_count", 0)),
            "key_phase_send": one_rtt.send.key_phase if one_rtt else -1,
            "key_phase_recv": one_rtt.recv.key_phase if one_rtt else -1,
            "files": [f.report() for f in self.files.values()],
            "local_addrs": self.local_addrs,
        }
        if self.terminated is not None and self.terminated.error_code not in (0, 0x100):
            d["error"] = (f"connection closed: 0x{self.terminated.error_code:x} "
                          f"{self.terminated.reason_phrase}")
        elif not self.all_ended():
            d["error"] = "not every response ended in time"
        return d


def make_config(case: str, ticket: SessionTicket | None) -> QuicConfiguration:
    c = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=False,
                          server_name="localhost", max_datagram_frame_size=None)
    c.max_data = 64 << 20
    c.max_stream_data = 16 << 20
    if case == "chacha20":
        c.cipher_suites = [CipherSuite.CHACHA20_POLY1305_SHA256]
    if case == "v2":
        c.supported_versions = [QuicProtocolVersion.VERSION_2, QuicProtocolVersion.VERSION_1]
    c.session_ticket = ticket
    return c


def one_connection(host: str, port: int, case: str, paths: list[str], deadline: float,
                   ticket: SessionTicket | None = None, tickets: list | None = None) -> dict:
    c = Client(host, port, make_config(case, ticket),
               on_ticket=(tickets.append if tickets is not None else None))
    if ticket is None:  # a 0-RTT request goes out before the handshake
        if not c.run_until(lambda: c.handshake_done, deadline):
            return {"error": "handshake did not complete", "files": [], "local_addrs": c.local_addrs}
    for p in paths:
        c.get(p)
    midway = {"rebind-port": c.rebind, "connectionmigration": c.migrate}.get(case)
    state = {"mid_done": False}

    def step() -> None:
        first = next(iter(c.files.values()))
        half = first.length // 2 if first.length > 0 else 0
        if case == "keyupdate" and not state["mid_done"] and c.handshake_done:
            c.quic.request_key_update()
            state["mid_done"] = True
        elif midway and not state["mid_done"] and half and first.size >= half:
            midway()
            state["mid_done"] = True

    c.run_until(c.all_ended, deadline, step)
    if tickets is not None and not tickets:  # the ticket may trail the data
        c.run_until(lambda: bool(tickets), min(deadline, time.monotonic() + 5))
    r = c.report()
    c.close()
    return r


def run(args) -> dict:
    host, _, port = args.addr.rpartition(":")
    host = host.strip("[]")
    if host not in ("127.0.0.1", "::1"):
        return {"case": args.case, "conns": [], "error": "--addr must be a loopback address"}
    deadline = time.monotonic() + args.timeout
    out = {"case": args.case, "conns": []}
    if args.case in ("resumption", "zerortt"):
        tickets: list[SessionTicket] = []
        out["conns"].append(one_connection(host, int(port), args.case, args.paths, deadline,
                                           tickets=tickets))
        if not tickets:
            out["error"] = "no session ticket from the server"
            return out
        t = tickets[-1]
        if args.case == "zerortt":
            second = one_connection(host, int(port), args.case, args.paths, deadline, ticket=t)
        else:  # the ticket without its early-data allowance: no 0-RTT
            t = dataclasses.replace(t, max_early_data_size=None)
            second = one_connection_resumed(host, int(port), args.paths, deadline, t)
        out["conns"].append(second)
    else:
        out["conns"].append(one_connection(host, int(port), args.case, args.paths, deadline))
    return out


def one_connection_resumed(host: str, port: int, paths: list[str], deadline: float,
                           ticket: SessionTicket) -> dict:
    """A resumed connection whose requests wait for the handshake (no 0-RTT)."""
    c = Client(host, port, make_config("resumption", ticket))
    if not c.run_until(lambda: c.handshake_done, deadline):
        return {"error": "handshake did not complete", "files": [], "local_addrs": c.local_addrs}
    for p in paths:
        c.get(p)
    c.run_until(c.all_ended, deadline)
    r = c.report()
    c.close()
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", required=True, help="127.0.0.1:PORT or [::1]:PORT")
    ap.add_argument("--case", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    json.dump(run(args), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
