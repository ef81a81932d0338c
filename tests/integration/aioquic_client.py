"""A small HTTP/3 client on aioquic, independent of h3q's own code.

It is a test peer, so it deliberately lets callers do things a polite client
would not: send an arbitrary header list (pseudo-headers in any order,
uppercase names, duplicates...), raw bytes on a request stream, leave a
stream open, reset it or send STOP_SENDING. Request bodies may be bytes or an
(async) iterable of chunks; chunks are queued only while aioquic's send buffer
for the stream is below a bound, so a 100 MB upload never sits in memory at
once. Response bodies can be stored, hashed (SHA-256), and/or checked against
an expected pattern as they arrive.

Typical use:

    async with H3Client.connect("127.0.0.1", port) as c:
        r = await c.request("GET", "/hello")
        assert r.status == 200 and r.body == b"hello from h3q\\n"

    r = run(fetch("127.0.0.1", port, "GET", "/hello"))   # one-shot, own loop

Every wait is bounded: request(timeout=...), connect(timeout=...), and run()
wraps the whole coroutine in asyncio.wait_for.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import ssl
import time
from dataclasses import dataclass, field
from typing import AsyncIterable, Callable, Iterable, Sequence, Union

from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import Buffer, BufferReadError, encode_uint_var
from aioquic.h3.connection import H3_ALPN, H3Connection, encode_frame
from aioquic.h3.connection import FrameType
from aioquic.h3.events import (
    DatagramReceived,
    DataReceived,
    H3Event,
    HeadersReceived,
    WebTransportStreamDataReceived,
)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import (
    ConnectionTerminated,
    DatagramFrameReceived,
    HandshakeCompleted,
    QuicEvent,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)

HeaderList = Sequence[tuple[Union[str, bytes], Union[str, bytes]]]
Body = Union[bytes, bytearray, memoryview, Iterable[bytes], AsyncIterable[bytes], None]

# How many bytes of request body may sit in aioquic's send buffer for one
# stream (unsent + sent-but-unacknowledged) before we wait for the peer.
SEND_BUFFER_HIGH_WATER = 1 << 20
SEND_CHUNK = 64 * 1024


class H3ClientError(Exception):
    """A request failed at the transport or HTTP/3 level (not an HTTP status)."""


# HTTP/3 frame types and error codes used by tests (RFC 9114, RFC 9218).
FRAME_DATA = 0x0
FRAME_HEADERS = 0x1
FRAME_GOAWAY = 0x7
FRAME_PRIORITY_UPDATE_REQUEST = 0xF0700
H3_NO_ERROR = 0x100
H3_GENERAL_PROTOCOL_ERROR = 0x101
H3_INTERNAL_ERROR = 0x102
H3_FRAME_UNEXPECTED = 0x105
H3_REQUEST_REJECTED = 0x10B
H3_REQUEST_CANCELLED = 0x10C
H3_REQUEST_INCOMPLETE = 0x10D
H3_MESSAGE_ERROR = 0x10E


def encode_headers_frame(headers: "HeaderList", stream_id: int = 0) -> bytes:
    """A complete HEADERS frame (type 0x01 + varint length + QPACK block)
    for exactly this header list, encoded with a fresh pylsqpack encoder
    whose dynamic table is off (static table and literals only), so the
    block needs no encoder-stream instructions. Nothing is validated: names
    may be uppercase, values may hold CR/LF/NUL, pseudo-headers may be in
    any order. Send it with H3Client.send_raw()."""
    from pylsqpack import Encoder

    enc = Encoder()
    instructions, block = enc.encode(stream_id, [(_b(k), _b(v)) for k, v in headers])
    assert not instructions, "dynamic table is off: no encoder instructions expected"
    return encode_frame(FRAME_HEADERS, block)


def encode_data_frame(data: bytes) -> bytes:
    return encode_frame(FRAME_DATA, bytes(data))


class _ControlStreamReader:
    """Parses the server's unidirectional streams far enough to see the
    frames on its control stream. aioquic 1.7 parses GOAWAY but drops it (no
    H3 event exists for it), so the client records GOAWAY ids here."""

    MAX_BUFFER = 1 << 16

    def __init__(self) -> None:
        self.buf = bytearray()
        self.stream_type: int | None = None
        self.frames: list[tuple[int, bytes]] = []  # (type, payload), control only
        self.skip = 0  # payload bytes of a large frame still to discard

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Feeds stream bytes; returns the complete control frames parsed."""
        out: list[tuple[int, bytes]] = []
        if self.stream_type is not None and self.stream_type != 0:
            return out  # not the control stream: ignore
        self.buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                del self.buf[:n]
                self.skip -= n
                if self.skip:
                    return out
            b = Buffer(data=bytes(self.buf[:32]))
            try:
                if self.stream_type is None:
                    self.stream_type = b.pull_uint_var()
                    del self.buf[: b.tell()]
                    if self.stream_type != 0:
                        self.buf.clear()
                        return out
                    continue
                ftype = b.pull_uint_var()
                flen = b.pull_uint_var()
            except BufferReadError:
                return out
            hdr = b.tell()
            if flen > self.MAX_BUFFER:
                del self.buf[:hdr]
                self.skip = flen
                continue
            if len(self.buf) < hdr + flen:
                return out
            payload = bytes(self.buf[hdr : hdr + flen])
            del self.buf[: hdr + flen]
            self.frames.append((ftype, payload))
            out.append((ftype, payload))


def _b(x: Union[str, bytes]) -> bytes:
    return x if isinstance(x, bytes) else x.encode("latin-1")


def pattern_bytes(offset: int, length: int) -> bytes:
    """The /bytes/:n pattern: byte at absolute offset i is i % 251."""
    start = offset % 251
    reps = (start + length) // 251 + 1
    return (_PATTERN_251 * reps)[start : start + length]


_PATTERN_251 = bytes(range(251))


class PatternChecker:
    """Incrementally checks that data equals the /bytes pattern."""

    _BLOCK = _PATTERN_251 * 1024  # 257,024 bytes, a whole number of periods

    def __init__(self) -> None:
        self.offset = 0
        self.first_mismatch: int | None = None

    def feed(self, data: bytes) -> None:
        if self.first_mismatch is None:
            mv = memoryview(data)
            pos = 0
            while pos < len(mv):
                start = (self.offset + pos) % 251
                n = min(len(mv) - pos, len(self._BLOCK) - start)
                if mv[pos : pos + n] != self._BLOCK[start : start + n]:
                    for j in range(n):
                        if mv[pos + j] != self._BLOCK[start + j]:
                            self.first_mismatch = self.offset + pos + j
                            break
                    break
                pos += n
        self.offset += len(data)

    @property
    def ok(self) -> bool:
        return self.first_mismatch is None


@dataclass
class H3Response:
    stream_id: int
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    interim: list[list[tuple[str, str]]] = field(default_factory=list)
    body: bytes | None = None  # None when store_body=False
    body_len: int = 0
    sha256: str | None = None
    pattern_ok: bool | None = None  # set when check_pattern=True
    pattern_mismatch_at: int | None = None
    reset_code: int | None = None  # peer reset its sending side (RESET_STREAM)
    stop_sending_code: int | None = None  # peer sent STOP_SENDING
    complete: bool = False  # FIN received after a final response
    elapsed: float = 0.0

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]


class _Stream:
    def __init__(self, stream_id: int, store_body: bool, hash_body: bool,
                 check_pattern: bool, on_data: Callable[[bytes], None] | None) -> None:
        self.resp = H3Response(stream_id=stream_id)
        self.buf = bytearray() if store_body else None
        self.hasher = hashlib.sha256() if hash_body else None
        self.checker = PatternChecker() if check_pattern else None
        self.on_data = on_data
        self.done = asyncio.get_running_loop().create_future()
        self.got_final_headers = False

    def finish(self, exc: BaseException | None = None) -> None:
        if self.done.done():
            return
        r = self.resp
        if self.buf is not None:
            r.body = bytes(self.buf)
        if self.hasher is not None:
            r.sha256 = self.hasher.hexdigest()
        if self.checker is not None:
            r.pattern_ok = self.checker.ok
            r.pattern_mismatch_at = self.checker.first_mismatch
        if exc is not None:
            self.done.set_exception(exc)
        else:
            self.done.set_result(r)


def _decode_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


class _H3Conn(H3Connection):
    """aioquic's H3Connection, except that responses to HEAD may carry a
    content-length without content (RFC 9110 section 9.3.2); aioquic 1.7
    would otherwise close the connection with H3_MESSAGE_ERROR. The
    content-length check stays on for every other response."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head_streams: set[int] = set()

    def _check_content_length(self, stream) -> None:
        if stream.stream_id in self.head_streams:
            return
        super()._check_content_length(stream)


@dataclass
class WtStream:
    """What the server sent on one WebTransport stream."""
    stream_id: int
    session_id: int
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False  # FIN received
    reset_code: int | None = None  # RESET_STREAM from the server
    stop_code: int | None = None  # STOP_SENDING from the server


class _H3Protocol(QuicConnectionProtocol):
    def __init__(self, *args, webtransport: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # enable_webtransport also announces H3_DATAGRAM (HTTP Datagrams)
        self.h3 = _H3Conn(self._quic, enable_webtransport=webtransport)
        self.h3_datagrams: list[tuple[int, bytes]] = []  # (stream id, payload)
        self.wt_streams: dict[int, WtStream] = {}
        self.streams: dict[int, _Stream] = {}
        self.terminated: ConnectionTerminated | None = None
        self.progress = asyncio.Event()  # set whenever anything arrives
        self.handshake: HandshakeCompleted | None = None
        self.goaway_ids: list[int] = []  # every GOAWAY id the server sent, in order
        self.goaway_at: float | None = None  # time.monotonic() of the first GOAWAY
        self._uni_readers: dict[int, _ControlStreamReader] = {}
        # QUIC DATAGRAM payloads received, in order, when raw_datagrams is set
        # (they then bypass aioquic's HTTP/3 layer, which would parse them as
        # HTTP Datagrams).
        self.raw_datagrams = False
        self.datagrams: list[bytes] = []

    # Wake up senders waiting for buffer space whenever packets arrive or a
    # timer fires (ACKs free aioquic's send buffer).
    def datagram_received(self, data, addr) -> None:  # type: ignore[override]
        super().datagram_received(data, addr)
        self.progress.set()

    def _handle_timer(self) -> None:
        super()._handle_timer()
        self.progress.set()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            self.handshake = event
        if isinstance(event, DatagramFrameReceived) and self.raw_datagrams:
            self.datagrams.append(event.data)
            self.progress.set()
            return
        if isinstance(event, StreamDataReceived) and event.stream_id % 4 == 3:
            rd = self._uni_readers.setdefault(event.stream_id, _ControlStreamReader())
            for ftype, payload in rd.feed(event.data):
                if ftype == FRAME_GOAWAY:
                    try:
                        self.goaway_ids.append(Buffer(data=payload).pull_uint_var())
                    except BufferReadError:
                        self.goaway_ids.append(-1)  # malformed GOAWAY payload
                    if self.goaway_at is None:
                        self.goaway_at = time.monotonic()
        if isinstance(event, ConnectionTerminated):
            self.terminated = event
            err = H3ClientError(
                f"connection closed: error_code=0x{event.error_code:x} "
                f"frame_type={event.frame_type} reason={event.reason_phrase!r}")
            for st in list(self.streams.values()):
                st.finish(err)
            self.progress.set()
            return
        if isinstance(event, StreamReset):
            st = self.streams.get(event.stream_id)
            if st is not None:
                st.resp.reset_code = event.error_code
                st.finish()
            if event.stream_id in self.wt_streams:
                self.wt_streams[event.stream_id].reset_code = event.error_code
        elif isinstance(event, StopSendingReceived):
            st = self.streams.get(event.stream_id)
            if st is not None:
                st.resp.stop_sending_code = event.error_code
            if event.stream_id in self.wt_streams:
                self.wt_streams[event.stream_id].stop_code = event.error_code
        for h3ev in self.h3.handle_event(event):
            self._h3_event(h3ev)
        # the H3 layer may have closed the connection (protocol error)
        self.progress.set()

    def _h3_event(self, ev: H3Event) -> None:
        if isinstance(ev, DatagramReceived):
            self.h3_datagrams.append((ev.stream_id, ev.data))
            return
        if isinstance(ev, WebTransportStreamDataReceived):
            w = self.wt_streams.setdefault(ev.stream_id, WtStream(ev.stream_id, ev.session_id))
            w.data += ev.data
            w.ended = w.ended or ev.stream_ended
            return
        st = self.streams.get(getattr(ev, "stream_id", -1))
        if st is None:
            return
        r = st.resp
        if isinstance(ev, HeadersReceived):
            hdrs = _decode_headers(ev.headers)
            status = None
            for k, v in hdrs:
                if k == ":status":
                    status = int(v)
            if not st.got_final_headers and status is not None and 100 <= status < 200:
                r.interim.append(hdrs)
            elif not st.got_final_headers:
                st.got_final_headers = True
                r.status = status
                r.headers = hdrs
            else:
                r.trailers = hdrs
            if ev.stream_ended:
                r.complete = st.got_final_headers
                st.finish()
        elif isinstance(ev, DataReceived):
            data = ev.data
            if data:
                r.body_len += len(data)
                if st.buf is not None:
                    st.buf += data
                if st.hasher is not None:
                    st.hasher.update(data)
                if st.checker is not None:
                    st.checker.feed(data)
                if st.on_data is not None:
                    st.on_data(data)
            if ev.stream_ended:
                r.complete = st.got_final_headers
                st.finish()


class H3Client:
    """One QUIC connection speaking HTTP/3; many concurrent requests allowed."""

    def __init__(self, proto: _H3Protocol, host: str, port: int) -> None:
        self.proto = proto
        self.host = host
        self.port = port
        self.authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.connect_timeout = 10.0

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Waits for the handshake (only needed with wait_connected=False)."""
        proto = self.proto
        timeout = self.connect_timeout if timeout is None else timeout
        # aioquic marks the protocol connected only if someone was waiting when
        # the handshake completed, so look at the recorded event first.
        if proto.handshake is not None:
            return
        if proto.terminated is not None:
            t = proto.terminated
            raise H3ClientError(f"QUIC handshake with {self.host}:{self.port} failed: "
                                f"{t.reason_phrase!r} (error 0x{t.error_code:x})")
        try:
            await asyncio.wait_for(proto.wait_connected(), timeout)
        except asyncio.TimeoutError:
            raise H3ClientError(
                f"QUIC handshake with {self.host}:{self.port} timed out after {timeout}s") from None
        except ConnectionError:
            t = proto.terminated
            why = (f"{t.reason_phrase!r} (error 0x{t.error_code:x})" if t else "closed")
            raise H3ClientError(f"QUIC handshake with {self.host}:{self.port} failed: {why}") from None

    @property
    def early_data_accepted(self) -> bool | None:
        """After the handshake: whether the server accepted 0-RTT data."""
        return None if self.proto.handshake is None else self.proto.handshake.early_data_accepted

    @property
    def session_resumed(self) -> bool | None:
        return None if self.proto.handshake is None else self.proto.handshake.session_resumed

    @property
    def goaway_ids(self) -> list[int]:
        """GOAWAY ids received from the server, in order."""
        return self.proto.goaway_ids

    @property
    def terminated(self) -> ConnectionTerminated | None:
        """The ConnectionTerminated event once the connection closed."""
        return self.proto.terminated

    async def wait_goaway(self, timeout: float) -> int:
        """Waits for the first GOAWAY; returns its id."""
        deadline = time.monotonic() + timeout
        while not self.proto.goaway_ids:
            left = deadline - time.monotonic()
            if left <= 0:
                raise H3ClientError(f"no GOAWAY within {timeout}s")
            if self.proto.terminated is not None:
                raise H3ClientError(
                    f"connection closed (0x{self.proto.terminated.error_code:x}) without GOAWAY")
            await self._wait_progress(min(left, 0.1))
        return self.proto.goaway_ids[0]

    async def wait_terminated(self, timeout: float) -> ConnectionTerminated:
        """Waits until the connection is closed (by either side)."""
        deadline = time.monotonic() + timeout
        while self.proto.terminated is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise H3ClientError(f"connection still open after {timeout}s")
            await self._wait_progress(min(left, 0.1))
        return self.proto.terminated

    def send_priority_update(self, stream_id: int, value: str) -> None:
        """PRIORITY_UPDATE (RFC 9218 section 7.1, type 0xF0700) for a request
        stream, sent on aioquic's control stream (aioquic has no API for it)."""
        payload = encode_uint_var(stream_id) + value.encode("ascii")
        self.quic.send_stream_data(self.h3._local_control_stream_id,
                                   encode_frame(FRAME_PRIORITY_UPDATE_REQUEST, payload))
        self.proto.transmit()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, host: str, port: int, *, timeout: float = 10.0,
                      cafile: str | None = None, server_name: str | None = None,
                      max_data: int = 32 << 20, max_stream_data: int = 16 << 20,
                      alpn: list[str] | None = None, idle_timeout: float = 30.0,
                      max_datagram_size: int | None = None,
                      max_datagram_frame_size: int | None = None,
                      raw_datagrams: bool = False, webtransport: bool = False,
                      session_ticket=None, session_ticket_handler=None,
                      wait_connected: bool = True, send_first_flight: bool = True,
                      client_cert: tuple[str, str] | None = None, quic_logger=None,
                      token: bytes = b"", token_handler=None):
        """session_ticket_handler: called with each TLS session ticket the
        server sends (keep one for a later 0-RTT connection).
        session_ticket: resume with this ticket; with wait_connected=False the
        client is yielded right after the first flight, so requests sent at
        once travel in 0-RTT packets (check client.early_data_accepted after
        wait_connected()).
        send_first_flight=False (with wait_connected=False): the ClientHello
        is not sent before the client is yielded; the caller's first send
        (e.g. send_headers) transmits it, so that request's 0-RTT packet is
        coalesced into the same UDP datagram as the Initial.
        max_datagram_frame_size: announce QUIC DATAGRAM support (RFC 9221);
        with raw_datagrams, received ones are kept in client.datagrams
        instead of going through aioquic's HTTP Datagram parsing.
        webtransport: aioquic's H3Connection(enable_webtransport=True), which
        announces H3_DATAGRAM and ENABLE_WEBTRANSPORT (and the transport
        parameter, 65536 unless max_datagram_frame_size says otherwise).
        client_cert: (certfile, keyfile) presented when the server asks.
        quic_logger: an aioquic QuicLogger recording the connection's events.
        token_handler: called with each address-validation token the server
        sends in a NEW_TOKEN frame; token: present one in the Initial."""
        cfg = QuicConfiguration(is_client=True, alpn_protocols=alpn or list(H3_ALPN),
                                idle_timeout=idle_timeout)
        if session_ticket is not None:
            cfg.session_ticket = session_ticket
        cfg.max_data = max_data
        cfg.max_stream_data = max_stream_data
        if max_datagram_size:
            cfg.max_datagram_size = max_datagram_size
        if max_datagram_frame_size or webtransport:
            cfg.max_datagram_frame_size = max_datagram_frame_size or 65536
        if cafile:
            cfg.load_verify_locations(cafile)
            cfg.verify_mode = ssl.CERT_REQUIRED
        else:
            cfg.verify_mode = ssl.CERT_NONE
        if server_name:
            cfg.server_name = server_name
        if client_cert:
            cfg.load_cert_chain(client_cert[0], client_cert[1])
        if quic_logger is not None:
            cfg.quic_logger = quic_logger
        cfg.token = token
        cm = quic_connect(host, port, configuration=cfg,
                          create_protocol=functools.partial(_H3Protocol, webtransport=webtransport),
                          session_ticket_handler=session_ticket_handler,
                          token_handler=token_handler, wait_connected=False)
        proto = await cm.__aenter__()
        proto.raw_datagrams = raw_datagrams
        try:
            if wait_connected or send_first_flight:
                proto.transmit()  # wait_connected=False leaves the Initial unsent
            client = cls(proto, host, port)
            client.connect_timeout = timeout
            if wait_connected:
                await client.wait_connected(timeout)
            yield client
        finally:
            # close; bounded so a wedged peer cannot hang teardown
            try:
                await asyncio.wait_for(cm.__aexit__(None, None, None), 5.0)
            except asyncio.TimeoutError:
                pass

    # --- low-level pieces, for tests that misbehave on purpose ---------------

    @property
    def quic(self):
        return self.proto._quic

    @property
    def h3(self) -> _H3Conn:
        return self.proto.h3

    def new_stream(self, *, store_body: bool = True, hash_body: bool = True,
                   check_pattern: bool = False,
                   on_data: Callable[[bytes], None] | None = None) -> int:
        sid = self.quic.get_next_available_stream_id()
        self.proto.streams[sid] = _Stream(sid, store_body, hash_body, check_pattern, on_data)
        return sid

    def send_headers(self, stream_id: int, headers: HeaderList, end_stream: bool = False,
                     transmit: bool = True) -> None:
        """Sends exactly this header list (no validation, no added pseudo-headers).
        transmit=False only queues it (call transmit() later)."""
        hdrs = [(_b(k), _b(v)) for k, v in headers]
        if (b":method", b"HEAD") in hdrs:
            self.h3.head_streams.add(stream_id)
        self.h3.send_headers(stream_id, hdrs, end_stream)
        if transmit:
            self.proto.transmit()

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False,
                  transmit: bool = True) -> None:
        self.h3.send_data(stream_id, bytes(data), end_stream)
        if transmit:
            self.proto.transmit()

    def send_raw(self, stream_id: int, data: bytes, end_stream: bool = False,
                 transmit: bool = True) -> None:
        """Raw bytes on the QUIC stream, bypassing HTTP/3 framing."""
        self.quic.send_stream_data(stream_id, data, end_stream)
        if transmit:
            self.proto.transmit()

    def send_datagram(self, data: bytes) -> None:
        """One QUIC DATAGRAM frame with exactly these bytes."""
        self.quic.send_datagram_frame(data)
        self.proto.transmit()

    @property
    def datagrams(self) -> list[bytes]:
        """QUIC DATAGRAM payloads received so far (raw_datagrams=True)."""
        return self.proto.datagrams

    async def wait_datagrams(self, n: int, timeout: float) -> list[bytes]:
        """Waits until n datagrams arrived (or timeout); returns them all."""
        deadline = time.monotonic() + timeout
        while len(self.proto.datagrams) < n and self.proto.terminated is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await self._wait_progress(min(left, 0.1))
        return self.proto.datagrams

    # --- HTTP Datagrams and WebTransport (connect(webtransport=True)) -------

    def send_h3_datagram(self, stream_id: int, data: bytes) -> None:
        """An HTTP Datagram (quarter stream id, then data) for stream_id."""
        self.h3.send_datagram(stream_id, data)
        self.proto.transmit()

    @property
    def h3_datagrams(self) -> list[tuple[int, bytes]]:
        """HTTP Datagrams received: (stream id, payload), in order."""
        return self.proto.h3_datagrams

    async def wait_until(self, cond: Callable[[], bool], timeout: float) -> bool:
        """Waits until cond() holds, the connection ends or timeout; returns
        cond()."""
        deadline = time.monotonic() + timeout
        while not cond() and self.proto.terminated is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await self._wait_progress(min(left, 0.1))
        return cond()

    async def wait_headers(self, stream_id: int, timeout: float = 10.0) -> H3Response:
        """Waits for the final header section (the stream may stay open)."""
        st = self.proto.streams[stream_id]
        await self.wait_until(lambda: st.got_final_headers or st.done.done(), timeout)
        if not st.got_final_headers:
            state = "ended" if st.done.done() else "open"
            raise H3ClientError(f"no response headers on stream {stream_id} "
                                f"within {timeout}s (stream {state}, reset "
                                f"{st.resp.reset_code})")
        return st.resp

    def body_so_far(self, stream_id: int) -> bytes:
        """Response body bytes received so far on a stream still open."""
        buf = self.proto.streams[stream_id].buf
        return bytes(buf) if buf is not None else b""

    def stream_done(self, stream_id: int) -> bool:
        return self.proto.streams[stream_id].done.done()

    def wt_connect(self, path: str, headers: HeaderList = (), protocol: str = "webtransport",
                   origin: str | None = "https://127.0.0.1") -> int:
        """Sends an extended CONNECT for a WebTransport session (draft-02
        style, as aioquic speaks it); returns the session id (its stream).
        The CONNECT stream's body (capsules) is kept in its response body."""
        sid = self.new_stream(hash_body=False)
        hdrs = [(":method", "CONNECT"), (":protocol", protocol), (":scheme", "https"),
                (":authority", self.authority), (":path", path)]
        if origin:
            hdrs.append(("origin", origin))
        self.send_headers(sid, hdrs + list(headers))
        return sid

    def wt_open(self, session_id: int, uni: bool) -> int:
        """Opens a WebTransport stream (aioquic writes its preface)."""
        sid = self.h3.create_webtransport_stream(session_id, is_unidirectional=uni)
        w = self.proto.wt_streams.setdefault(sid, WtStream(sid, session_id))
        if not uni:
            # aioquic marks only streams the peer opened as WebTransport
            # streams; without this it would parse the server's bytes on
            # our own bidi stream as HTTP/3 frames.
            with self.h3._get_or_create_stream(sid) as h3s:
                h3s.frame_type = FrameType.WEBTRANSPORT_STREAM
                h3s.session_id = session_id
        return w.stream_id

    def wt_send(self, stream_id: int, data: bytes, end: bool = False) -> None:
        """Raw bytes on a WebTransport stream (no HTTP/3 framing)."""
        self.quic.send_stream_data(stream_id, data, end)
        self.proto.transmit()

    @property
    def wt_streams(self) -> dict[int, WtStream]:
        return self.proto.wt_streams

    def transmit(self) -> None:
        """Sends whatever is queued."""
        self.proto.transmit()

    def reset_stream(self, stream_id: int, error_code: int = 0x10c) -> None:
        """RESET_STREAM (default H3_REQUEST_CANCELLED)."""
        self.quic.reset_stream(stream_id, error_code)
        self.proto.transmit()

    def stop_sending(self, stream_id: int, error_code: int = 0x10c) -> None:
        self.quic.stop_stream(stream_id, error_code)
        self.proto.transmit()

    def close(self, error_code: int = 0, reason: str = "") -> None:
        self.proto.close(error_code=error_code, reason_phrase=reason)

    async def wait_response(self, stream_id: int, timeout: float = 30.0) -> H3Response:
        st = self.proto.streams[stream_id]
        t0 = time.monotonic()
        try:
            return await asyncio.wait_for(asyncio.shield(st.done), timeout)
        except asyncio.TimeoutError:
            r = st.resp
            raise H3ClientError(
                f"stream {stream_id}: no complete response after {timeout}s "
                f"(status={r.status}, body_len={r.body_len})") from None
        finally:
            st.resp.elapsed += time.monotonic() - t0
            if st.done.done():
                self.proto.streams.pop(stream_id, None)

    async def _wait_progress(self, timeout: float) -> None:
        self.proto.progress.clear()
        try:
            await asyncio.wait_for(self.proto.progress.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def _unacked(self, stream_id: int) -> int:
        s = self.quic._streams.get(stream_id)
        if s is None:
            return 0
        return s.sender._buffer_stop - s.sender._buffer_start

    async def send_body(self, stream_id: int, body: Body, end_stream: bool = True,
                        timeout: float = 60.0, stall_timeout: float = 20.0) -> int:
        """Sends body as DATA frames, keeping aioquic's buffer bounded.

        Returns the number of body bytes sent. Raises H3ClientError when no
        progress is made for stall_timeout seconds or the total exceeds timeout.
        """
        deadline = time.monotonic() + timeout
        sent = 0
        st = self.proto.streams.get(stream_id)

        async def room() -> None:
            last = time.monotonic()
            prev = self._unacked(stream_id)
            while self._unacked(stream_id) > SEND_BUFFER_HIGH_WATER:
                if self.proto.terminated is not None:
                    raise H3ClientError("connection closed while sending the body")
                if st is not None and st.done.done() and st.resp.stop_sending_code is not None:
                    raise H3ClientError(
                        f"peer sent STOP_SENDING 0x{st.resp.stop_sending_code:x}")
                now = time.monotonic()
                if now > deadline:
                    raise H3ClientError(f"sending body timed out after {timeout}s ({sent} bytes)")
                cur = self._unacked(stream_id)
                if cur < prev:
                    last, prev = now, cur
                elif now - last > stall_timeout:
                    raise H3ClientError(
                        f"sending body stalled for {stall_timeout}s at {sent} bytes")
                await self._wait_progress(0.05)

        async def put(chunk: bytes) -> None:
            nonlocal sent
            mv = memoryview(chunk)
            for i in range(0, len(mv), SEND_CHUNK):
                await room()
                piece = mv[i : i + SEND_CHUNK]
                self.h3.send_data(stream_id, bytes(piece), False)
                self.proto.transmit()
                sent += len(piece)

        if body is None:
            pass
        elif isinstance(body, (bytes, bytearray, memoryview)):
            await put(bytes(body))
        elif hasattr(body, "__aiter__"):
            async for chunk in body:  # type: ignore[union-attr]
                await put(chunk)
        else:
            for chunk in body:  # type: ignore[union-attr]
                await put(chunk)
        if end_stream:
            self.quic.send_stream_data(stream_id, b"", True)
            self.proto.transmit()
        return sent

    # --- the normal way ------------------------------------------------------

    def request_headers(self, method: str, path: str,
                        extra: HeaderList | None = None) -> list[tuple[bytes, bytes]]:
        hdrs = [(b":method", _b(method)), (b":scheme", b"https"),
                (b":authority", _b(self.authority)), (b":path", _b(path)),
                (b"user-agent", b"h3q-tests-aioquic")]
        hdrs += [(_b(k).lower(), _b(v)) for k, v in (extra or [])]
        return hdrs

    async def request(self, method: str, path: str, *, headers: HeaderList | None = None,
                      raw_headers: HeaderList | None = None, body: Body = None,
                      store_body: bool = True, hash_body: bool = True,
                      check_pattern: bool = False,
                      on_data: Callable[[bytes], None] | None = None,
                      timeout: float = 30.0) -> H3Response:
        """One request; returns the response once the stream ends (or is reset).

        headers: extra regular headers added after the pseudo-headers.
        raw_headers: the complete header list sent as is (replaces everything).
        body: bytes, or an iterable / async iterable of byte chunks.
        """
        t0 = time.monotonic()
        sid = self.new_stream(store_body=store_body, hash_body=hash_body,
                              check_pattern=check_pattern, on_data=on_data)
        hdrs = raw_headers if raw_headers is not None else self.request_headers(method, path, headers)
        self.send_headers(sid, hdrs, end_stream=body is None)
        if body is not None:
            await self.send_body(sid, body, end_stream=True, timeout=timeout)
        remaining = max(0.1, timeout - (time.monotonic() - t0))
        r = await self.wait_response(sid, timeout=remaining)
        r.elapsed = time.monotonic() - t0
        return r


async def fetch(host: str, port: int, method: str, path: str, *,
                connect_timeout: float = 10.0, **kw) -> H3Response:
    """Opens a connection, makes one request, closes."""
    async with H3Client.connect(host, port, timeout=connect_timeout) as c:
        return await c.request(method, path, **kw)


def run(coro, timeout: float = 60.0):
    """Runs a coroutine in a fresh event loop with an overall time limit."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def chunks_of_file(path: str, size: int = 256 * 1024) -> Iterable[bytes]:
    with open(path, "rb") as f:
        while True:
            b = f.read(size)
            if not b:
                return
            yield b
