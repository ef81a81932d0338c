"""HTTP/3 spoken byte by byte over aioquic's QUIC layer, for conformance
tests that must control every frame (test_h3_errors.py).

aioquic's H3Connection is deliberately not used: it would open its own
control and QPACK streams, send its own SETTINGS and refuse to send most of
what these tests need to send. Here the client opens each stream itself and
writes hand-encoded bytes (varints, frames, SETTINGS, QPACK instructions and
field sections), and records what the server does in return: the
CONNECTION_CLOSE frame it sends (application or transport close, error
code), RESET_STREAM and STOP_SENDING per stream, the bytes of every stream,
and its own unidirectional streams (control stream frames, QPACK encoder and
decoder stream bytes).

    async with connect(server.host, server.port) as c:      # control + SETTINGS sent
        sid = c.bidi()
        c.send(sid, headers_frame(c.request_fields("GET", "/hello")), fin=True)
        r = await c.response(sid)
        assert r.status == 200

Every wait takes a timeout; nothing here blocks without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence, Union

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import Buffer, BufferReadError
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    QuicEvent,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)

# --------------------------------------------------------------------------
# numbers from RFC 9114, RFC 9204, RFC 9218, RFC 9220 and RFC 9297

# frame types (RFC 9114 section 7.2, 11.2.1)
DATA = 0x00
HEADERS = 0x01
H2_PRIORITY = 0x02
CANCEL_PUSH = 0x03
SETTINGS = 0x04
PUSH_PROMISE = 0x05
H2_PING = 0x06
GOAWAY = 0x07
H2_WINDOW_UPDATE = 0x08
H2_CONTINUATION = 0x09
MAX_PUSH_ID = 0x0D
PRIORITY_UPDATE_REQUEST = 0xF0700  # RFC 9218 section 7.2
PRIORITY_UPDATE_PUSH = 0xF0701

# unidirectional stream types (RFC 9114 section 6.2, RFC 9204 section 4.2)
STREAM_CONTROL = 0x00
STREAM_PUSH = 0x01
STREAM_QPACK_ENCODER = 0x02
STREAM_QPACK_DECODER = 0x03

# settings (RFC 9114 section 7.2.4.1, RFC 9204 section 5, RFC 9220, RFC 9297)
SETTINGS_QPACK_MAX_TABLE_CAPACITY = 0x01
SETTINGS_MAX_FIELD_SECTION_SIZE = 0x06
SETTINGS_QPACK_BLOCKED_STREAMS = 0x07
SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x08
SETTINGS_H3_DATAGRAM = 0x33
H2_ONLY_SETTINGS = (0x02, 0x03, 0x04, 0x05)

# error codes (RFC 9114 section 8.1, RFC 9204 section 6)
ERROR_NAMES = {
    0x100: "H3_NO_ERROR",
    0x101: "H3_GENERAL_PROTOCOL_ERROR",
    0x102: "H3_INTERNAL_ERROR",
    0x103: "H3_STREAM_CREATION_ERROR",
    0x104: "H3_CLOSED_CRITICAL_STREAM",
    0x105: "H3_FRAME_UNEXPECTED",
    0x106: "H3_FRAME_ERROR",
    0x107: "H3_EXCESSIVE_LOAD",
    0x108: "H3_ID_ERROR",
    0x109: "H3_SETTINGS_ERROR",
    0x10A: "H3_MISSING_SETTINGS",
    0x10B: "H3_REQUEST_REJECTED",
    0x10C: "H3_REQUEST_CANCELLED",
    0x10D: "H3_REQUEST_INCOMPLETE",
    0x10E: "H3_MESSAGE_ERROR",
    0x10F: "H3_CONNECT_ERROR",
    0x110: "H3_VERSION_FALLBACK",
    0x200: "QPACK_DECOMPRESSION_FAILED",
    0x201: "QPACK_ENCODER_STREAM_ERROR",
    0x202: "QPACK_DECODER_STREAM_ERROR",
}
H3_STREAM_CREATION_ERROR = 0x103
H3_CLOSED_CRITICAL_STREAM = 0x104
H3_FRAME_UNEXPECTED = 0x105
H3_FRAME_ERROR = 0x106
H3_ID_ERROR = 0x108
H3_SETTINGS_ERROR = 0x109
H3_MISSING_SETTINGS = 0x10A
H3_REQUEST_INCOMPLETE = 0x10D
H3_MESSAGE_ERROR = 0x10E
QPACK_DECOMPRESSION_FAILED = 0x200
QPACK_ENCODER_STREAM_ERROR = 0x201
QPACK_DECODER_STREAM_ERROR = 0x202

QUIC_TRANSPORT_CLOSE = 0x1C
QUIC_APPLICATION_CLOSE = 0x1D


def error_name(code: int | None) -> str:
    if code is None:
        return "none"
    return f"0x{code:x} ({ERROR_NAMES.get(code, 'unknown')})"


def reserved(n: int) -> int:
    """The n-th reserved ("grease") frame type, stream type or setting id:
    0x1f * N + 0x21 (RFC 9114 sections 6.2.3, 7.2.8, 7.2.4.1)."""
    return 0x1F * n + 0x21


# --------------------------------------------------------------------------
# varints and frames (RFC 9000 section 16, RFC 9114 section 7.1)


def varint(n: int) -> bytes:
    """QUIC variable-length integer in its shortest encoding."""
    if n < 0 or n >= 1 << 62:
        raise ValueError(f"varint out of range: {n}")
    if n < 1 << 6:
        return n.to_bytes(1, "big")
    if n < 1 << 14:
        return (n | 0x4000).to_bytes(2, "big")
    if n < 1 << 30:
        return (n | 0x8000_0000).to_bytes(4, "big")
    return (n | 0xC000_0000_0000_0000).to_bytes(8, "big")


def pull_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None when data ends inside the varint."""
    if pos >= len(data):
        return None
    length = 1 << (data[pos] >> 6)
    if pos + length > len(data):
        return None
    value = data[pos] & 0x3F
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, pos + length


def frame(ftype: int, payload: bytes = b"") -> bytes:
    """type + length + payload."""
    return varint(ftype) + varint(len(payload)) + bytes(payload)


def settings_frame(pairs: Iterable[tuple[int, int]]) -> bytes:
    return frame(SETTINGS, b"".join(varint(k) + varint(v) for k, v in pairs))


def parse_frames(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete frames in data, and the bytes of an incomplete last one."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        t = pull_varint(data, pos)
        ln = pull_varint(data, t[1]) if t else None
        if ln is None or ln[1] + ln[0] > len(data):
            break
        frames.append((t[0], bytes(data[ln[1] : ln[1] + ln[0]])))
        pos = ln[1] + ln[0]
    return frames, bytes(data[pos:])


def parse_settings(payload: bytes) -> list[tuple[int, int]] | None:
    """Setting pairs in order, or None if the payload is malformed."""
    out: list[tuple[int, int]] = []
    pos = 0
    while pos < len(payload):
        k = pull_varint(payload, pos)
        v = pull_varint(payload, k[1]) if k else None
        if v is None:
            return None
        out.append((k[0], v[0]))
        pos = v[1]
    return out


# --------------------------------------------------------------------------
# QPACK (RFC 9204): prefixed integers, string literals (never Huffman),
# field line representations, encoder and decoder stream instructions.


def qint(value: int, prefix_bits: int, flags: int = 0) -> bytes:
    """Prefixed integer (RFC 7541 section 5.1); flags fill the bits above
    the prefix in the first byte."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([flags | value])
    out = bytearray([flags | limit])
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def pull_qint(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int] | None:
    """(value, next position) of a prefixed integer, or None if truncated."""
    if pos >= len(data):
        return None
    limit = (1 << prefix_bits) - 1
    value = data[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while pos < len(data) and shift <= 62:
        b = data[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos
    return None


def qstr(s: Union[str, bytes], prefix_bits: int = 7, flags: int = 0) -> bytes:
    """String literal without Huffman coding (H bit 0)."""
    b = _b(s)
    return qint(len(b), prefix_bits, flags) + b


def required_insert_count(ric: int, max_table_capacity: int) -> int:
    """Encoded Required Insert Count (RFC 9204 section 4.5.1.1); the
    capacity is the decoder's SETTINGS_QPACK_MAX_TABLE_CAPACITY."""
    if ric == 0:
        return 0
    max_entries = max_table_capacity // 32
    if max_entries == 0:
        raise ValueError("a decoder with capacity 0 cannot have inserts")
    return ric % (2 * max_entries) + 1


def section_prefix(encoded_ric: int = 0, base: int = 0, ric: int = 0) -> bytes:
    """Encoded Required Insert Count, then Sign + Delta Base for this Base."""
    if base >= ric:
        return qint(encoded_ric, 8) + qint(base - ric, 7, 0x00)
    return qint(encoded_ric, 8) + qint(ric - base - 1, 7, 0x80)


def fl_static(index: int) -> bytes:
    """Indexed field line, static table."""
    return qint(index, 6, 0xC0)


def fl_dynamic(relative: int) -> bytes:
    """Indexed field line, dynamic table, relative to Base."""
    return qint(relative, 6, 0x80)


def fl_post_base(index: int) -> bytes:
    """Indexed field line with post-base index."""
    return qint(index, 4, 0x10)


def fl_static_name(index: int, value: Union[str, bytes]) -> bytes:
    """Literal field line with a static-table name reference."""
    return qint(index, 4, 0x50) + qstr(value)


def fl_dynamic_name(relative: int, value: Union[str, bytes]) -> bytes:
    """Literal field line with a dynamic-table name reference."""
    return qint(relative, 4, 0x40) + qstr(value)


def fl_post_base_name(index: int, value: Union[str, bytes]) -> bytes:
    """Literal field line with a post-base name reference."""
    return qint(index, 3, 0x00) + qstr(value)


def fl_literal(name: Union[str, bytes], value: Union[str, bytes]) -> bytes:
    """Literal field line with a literal name."""
    n = _b(name)
    return qint(len(n), 3, 0x20) + n + qstr(value)


def literal_section(fields: Sequence[tuple[Union[str, bytes], Union[str, bytes]]]) -> bytes:
    """A field section with Required Insert Count 0 and only literal names:
    exactly these fields, in this order, nothing validated."""
    return section_prefix() + b"".join(fl_literal(k, v) for k, v in fields)


# static table indexes used by the tests (RFC 9204 appendix A)
STATIC_AUTHORITY = 0
STATIC_PATH_SLASH = 1
STATIC_METHOD_GET = 17
STATIC_METHOD_POST = 20
STATIC_SCHEME_HTTPS = 23
STATIC_LAST = 98


def enc_set_capacity(capacity: int) -> bytes:
    return qint(capacity, 5, 0x20)


def enc_insert_static_name(index: int, value: Union[str, bytes]) -> bytes:
    return qint(index, 6, 0xC0) + qstr(value)


def enc_insert_dynamic_name(relative: int, value: Union[str, bytes]) -> bytes:
    return qint(relative, 6, 0x80) + qstr(value)


def enc_insert_literal(name: Union[str, bytes], value: Union[str, bytes]) -> bytes:
    n = _b(name)
    return qint(len(n), 5, 0x40) + n + qstr(value)


def enc_duplicate(relative: int) -> bytes:
    return qint(relative, 5, 0x00)


def dec_section_ack(stream_id: int) -> bytes:
    return qint(stream_id, 7, 0x80)


def dec_stream_cancel(stream_id: int) -> bytes:
    return qint(stream_id, 6, 0x40)


def dec_insert_count_increment(n: int) -> bytes:
    return qint(n, 6, 0x00)


def parse_decoder_instructions(data: bytes) -> list[tuple[str, int]]:
    """("ack", stream id), ("cancel", stream id), ("increment", n) in order;
    an incomplete last instruction is left out."""
    out: list[tuple[str, int]] = []
    pos = 0
    while pos < len(data):
        b = data[pos]
        if b & 0x80:
            kind, bits = "ack", 7
        elif b & 0x40:
            kind, bits = "cancel", 6
        else:
            kind, bits = "increment", 6
        r = pull_qint(data, pos, bits)
        if r is None:
            break
        out.append((kind, r[0]))
        pos = r[1]
    return out


def pylsqpack_headers_frame(fields: Sequence[tuple[Union[str, bytes], Union[str, bytes]]],
                            stream_id: int = 0) -> bytes:
    """HEADERS frame for exactly these fields, QPACK-encoded by pylsqpack
    with its dynamic table off (static table, Huffman and literals), so
    the field section needs no encoder stream."""
    from pylsqpack import Encoder

    instructions, block = Encoder().encode(stream_id, [(_b(k), _b(v)) for k, v in fields])
    if instructions:
        raise AssertionError("dynamic table is off: no encoder instructions expected")
    return frame(HEADERS, block)


def _b(x: Union[str, bytes]) -> bytes:
    return x if isinstance(x, bytes) else x.encode("latin-1")


# --------------------------------------------------------------------------
# the server's unidirectional streams


class ServerStreams:
    """Everything the server sends on its unidirectional streams: stream
    types, control stream frames (SETTINGS, GOAWAY ids) and the raw bytes
    of its QPACK encoder and decoder streams. Problems (a malformed control
    stream, a second control stream) are listed in `problems`."""

    MAX_BYTES = 1 << 20  # per stream; a server that sends more is a problem

    def __init__(self) -> None:
        self.types: dict[int, int] = {}  # stream id -> type
        self.closed: dict[int, str] = {}  # stream id -> "fin" / "reset 0x.."
        self.control_frames: list[tuple[int, bytes]] = []
        self.settings: list[tuple[int, int]] | None = None
        self.goaway_ids: list[int] = []
        self.encoder = bytearray()
        self.decoder = bytearray()
        self.problems: list[str] = []
        self._pending: dict[int, bytearray] = {}

    def streams_of_type(self, stream_type: int) -> list[int]:
        return [s for s, t in self.types.items() if t == stream_type]

    @property
    def settings_dict(self) -> dict[int, int]:
        return dict(self.settings or [])

    def decoder_instructions(self) -> list[tuple[str, int]]:
        return parse_decoder_instructions(bytes(self.decoder))

    def feed(self, stream_id: int, data: bytes, fin: bool) -> None:
        buf = self._pending.setdefault(stream_id, bytearray())
        if len(buf) + len(data) > self.MAX_BYTES:
            self.problems.append(f"server uni stream {stream_id}: more than {self.MAX_BYTES} bytes")
            data = b""
        buf += data
        if stream_id not in self.types:
            t = pull_varint(bytes(buf[:8]), 0)
            if t is None:
                return
            self.types[stream_id] = t[0]
            del buf[: t[1]]
        stype = self.types[stream_id]
        if stype == STREAM_CONTROL:
            self._control(stream_id, buf)
        elif stype == STREAM_QPACK_ENCODER:
            self.encoder += buf
            buf.clear()
        elif stype == STREAM_QPACK_DECODER:
            self.decoder += buf
            buf.clear()
        else:
            buf.clear()  # push or unknown: only the type is recorded
        if fin:
            self.closed[stream_id] = "fin"

    def _control(self, stream_id: int, buf: bytearray) -> None:
        if self.streams_of_type(STREAM_CONTROL)[0] != stream_id:
            self.problems.append(f"second server control stream {stream_id}")
            buf.clear()
            return
        frames, rest = parse_frames(bytes(buf))
        buf[:] = rest
        for ftype, payload in frames:
            if not self.control_frames and ftype != SETTINGS:
                self.problems.append(f"first server control frame is 0x{ftype:x}, not SETTINGS")
            if ftype == SETTINGS:
                parsed = parse_settings(payload)
                if parsed is None:
                    self.problems.append(f"malformed server SETTINGS payload {payload.hex()}")
                elif self.settings is not None:
                    self.problems.append("second SETTINGS frame from the server")
                else:
                    self.settings = parsed
            elif ftype == GOAWAY:
                v = pull_varint(payload, 0)
                if v is None or v[1] != len(payload):
                    self.problems.append(f"malformed server GOAWAY payload {payload.hex()}")
                else:
                    self.goaway_ids.append(v[0])
            self.control_frames.append((ftype, payload))


# --------------------------------------------------------------------------
# responses on request streams


@dataclass
class Response:
    stream_id: int
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    interim: list[list[tuple[str, str]]] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    frame_types: list[int] = field(default_factory=list)
    fin: bool = False  # the server ended its side cleanly
    reset_code: int | None = None  # RESET_STREAM from the server
    stop_sending_code: int | None = None  # STOP_SENDING from the server
    problem: str | None = None  # could not parse what the server sent

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def __str__(self) -> str:
        return (f"stream {self.stream_id}: status={self.status} body={self.body[:80]!r} "
                f"fin={self.fin} reset={error_name(self.reset_code)} "
                f"stop_sending={error_name(self.stop_sending_code)} "
                f"frames={[hex(t) for t in self.frame_types]} problem={self.problem}")


# --------------------------------------------------------------------------
# the connection


@dataclass
class PeerClose:
    """The CONNECTION_CLOSE frame the server sent."""

    quic_frame: int  # 0x1c transport close, 0x1d application close
    error_code: int
    frame_type: int | None  # only in a transport close
    reason: str

    @property
    def application(self) -> bool:
        return self.quic_frame == QUIC_APPLICATION_CLOSE

    def __str__(self) -> str:
        kind = "application" if self.application else "transport"
        return f"{kind} CONNECTION_CLOSE {error_name(self.error_code)} reason={self.reason!r}"


class _RecordingQuic(QuicConnection):
    """Records the server's CONNECTION_CLOSE frame as it arrives (aioquic
    reports it only after the draining period, and does not say whether
    it was an application or a transport close)."""

    peer_close: PeerClose | None = None
    on_peer_close: Callable[[], None] = staticmethod(lambda: None)

    def _handle_connection_close_frame(self, context, frame_type: int, buf: Buffer) -> None:
        start = buf.tell()
        try:
            code = buf.pull_uint_var()
            ftype = buf.pull_uint_var() if frame_type == QUIC_TRANSPORT_CLOSE else None
            reason = buf.pull_bytes(buf.pull_uint_var()).decode("utf-8", "replace")
        except BufferReadError:
            code, ftype, reason = -1, None, "<malformed CONNECTION_CLOSE>"
        buf.seek(start)
        if self.peer_close is None:
            self.peer_close = PeerClose(frame_type, code, ftype, reason)
            self.on_peer_close()
        super()._handle_connection_close_frame(context, frame_type, buf)


class _RawProtocol(QuicConnectionProtocol):
    def __init__(self, quic: _RecordingQuic, **kw) -> None:
        super().__init__(quic, **kw)
        self.changed = asyncio.Event()
        quic.on_peer_close = self.changed.set
        self.rx: dict[int, bytearray] = {}
        self.fin: set[int] = set()
        self.resets: dict[int, int] = {}
        self.stop_sending: dict[int, int] = {}
        self.terminated: ConnectionTerminated | None = None
        self.handshake_done = False
        self.server = ServerStreams()

    def datagram_received(self, data, addr) -> None:  # type: ignore[override]
        super().datagram_received(data, addr)
        self.changed.set()

    def _handle_timer(self) -> None:
        super()._handle_timer()
        self.changed.set()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            self.handshake_done = True
        elif isinstance(event, StreamDataReceived):
            sid = event.stream_id
            self.rx.setdefault(sid, bytearray()).extend(event.data)
            if event.end_stream:
                self.fin.add(sid)
            if sid % 4 == 3:
                self.server.feed(sid, event.data, event.end_stream)
        elif isinstance(event, StreamReset):
            self.resets[event.stream_id] = event.error_code
            if event.stream_id % 4 == 3:
                self.server.closed[event.stream_id] = f"reset {error_name(event.error_code)}"
        elif isinstance(event, StopSendingReceived):
            self.stop_sending[event.stream_id] = event.error_code
        elif isinstance(event, ConnectionTerminated):
            self.terminated = event
        self.changed.set()


# The client's SETTINGS unless a test says otherwise: no dynamic table for
# the server's encoder, so every response field section is static/literal.
CLIENT_SETTINGS = [(SETTINGS_QPACK_MAX_TABLE_CAPACITY, 0), (SETTINGS_QPACK_BLOCKED_STREAMS, 0)]


class RawH3:
    """One QUIC connection with ALPN h3 on which the test writes HTTP/3."""

    def __init__(self, proto: _RawProtocol, host: str, port: int, wait_scale: float) -> None:
        self.proto = proto
        self.host = host
        self.port = port
        self.authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.wait_scale = wait_scale
        self.control_id: int | None = None
        from pylsqpack import Decoder

        self._qpack = Decoder(0, 0)  # matches CLIENT_SETTINGS

    @property
    def quic(self) -> _RecordingQuic:
        return self.proto._quic  # type: ignore[return-value]

    @property
    def server(self) -> ServerStreams:
        return self.proto.server

    @property
    def peer_close(self) -> PeerClose | None:
        return self.quic.peer_close

    # --- sending ---------------------------------------------------------

    def bidi(self) -> int:
        """A new request stream id (nothing is sent yet)."""
        return self.quic.get_next_available_stream_id()

    def uni(self, stream_type: int | None, data: bytes = b"", fin: bool = False) -> int:
        """Opens a unidirectional stream: the type varint, then data."""
        sid = self.quic.get_next_available_stream_id(is_unidirectional=True)
        head = varint(stream_type) if stream_type is not None else b""
        self.send(sid, head + data, fin)
        return sid

    def send(self, sid: int, data: bytes, fin: bool = False) -> None:
        self.quic.send_stream_data(sid, bytes(data), fin)
        self.proto.transmit()

    def reset(self, sid: int, code: int) -> None:
        self.quic.reset_stream(sid, code)
        self.proto.transmit()

    def open_control(self, settings: Iterable[tuple[int, int]] | None = None,
                     first: bytes | None = None) -> int:
        """The client control stream: type 0x00, then SETTINGS (or `first`
        as the raw first bytes after the type)."""
        body = first if first is not None else settings_frame(
            CLIENT_SETTINGS if settings is None else settings)
        self.control_id = self.uni(STREAM_CONTROL, body)
        return self.control_id

    def control(self, data: bytes, fin: bool = False) -> None:
        """More bytes on the client control stream."""
        assert self.control_id is not None, "open_control() first"
        self.send(self.control_id, data, fin)

    def request_fields(self, method: str = "GET", path: str = "/hello",
                       extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        return [(":method", method), (":scheme", "https"), (":authority", self.authority),
                (":path", path), *extra]

    def request_headers(self, method: str = "GET", path: str = "/hello",
                        extra: Sequence[tuple[str, str]] = ()) -> bytes:
        """A HEADERS frame for a well-formed request (pylsqpack-encoded)."""
        return pylsqpack_headers_frame(self.request_fields(method, path, extra))

    # --- waiting ---------------------------------------------------------

    def scaled(self, seconds: float) -> float:
        return seconds * self.wait_scale

    async def wait_until(self, cond: Callable[[], bool], timeout: float) -> bool:
        """Polls cond whenever something happens; False after timeout seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            left = deadline - loop.time()
            if left <= 0:
                return False
            self.proto.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.proto.changed.wait(), min(left, 0.05))
        return True

    def closed(self) -> bool:
        return self.peer_close is not None or self.proto.terminated is not None

    async def acked(self, sid: int, timeout: float = 5.0) -> None:
        """Waits until the server acknowledged everything sent on sid."""
        def done() -> bool:
            st = self.quic._streams.get(sid)
            if st is None:
                return True  # finished and forgotten: everything was acknowledged
            s = st.sender
            return s._buffer_start == s._buffer_stop
        if not await self.wait_until(lambda: done() or self.closed(), self.scaled(timeout)):
            raise AssertionError(f"stream {sid}: data not acknowledged within {timeout}s")

    async def settle(self, seconds: float = 0.2) -> None:
        """Lets the server act on what was sent (a bounded pause)."""
        await self.wait_until(lambda: False, self.scaled(seconds))

    async def wait_close(self, timeout: float = 5.0) -> PeerClose | None:
        await self.wait_until(self.closed, self.scaled(timeout))
        return self.peer_close

    async def server_settings(self, timeout: float = 5.0) -> dict[int, int]:
        """The server's SETTINGS (waits for its control stream)."""
        if not await self.wait_until(lambda: self.server.settings is not None or self.closed(),
                                     self.scaled(timeout)):
            raise AssertionError(f"no SETTINGS from the server within {timeout}s "
                                 f"(its uni streams: {self.server.types})")
        if self.server.settings is None:
            raise AssertionError(f"connection closed before the server's SETTINGS: {self.peer_close}")
        return self.server.settings_dict

    async def response(self, sid: int, timeout: float = 5.0) -> Response:
        """What the server sent on request stream sid, once it ended its side
        (FIN or RESET_STREAM), the connection closed, or timeout passed."""
        p = self.proto
        await self.wait_until(lambda: sid in p.fin or sid in p.resets or self.closed(),
                              self.scaled(timeout))
        return self._parse_response(sid)

    def _parse_response(self, sid: int) -> Response:
        p = self.proto
        r = Response(stream_id=sid, fin=sid in p.fin, reset_code=p.resets.get(sid),
                     stop_sending_code=p.stop_sending.get(sid))
        frames, rest = parse_frames(bytes(p.rx.get(sid, b"")))
        if rest and r.fin:
            r.problem = f"response ends inside a frame ({len(rest)} bytes left)"
        for ftype, payload in frames:
            r.frame_types.append(ftype)
            if ftype == HEADERS:
                self._headers(r, payload)
            elif ftype == DATA:
                r.body += payload
        return r

    def _headers(self, r: Response, block: bytes) -> None:
        try:
            _, fields = self._qpack.feed_header(r.stream_id, block)
        except Exception as e:  # pylsqpack raises its own error types
            r.problem = f"undecodable response HEADERS: {type(e).__name__} {e}"
            return
        hdrs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields]
        status = next((v for k, v in hdrs if k == ":status"), None)
        if r.status is not None:
            r.trailers = hdrs
        elif status is not None and status.isdigit() and 100 <= int(status) < 200:
            r.interim.append(hdrs)
        else:
            r.status = int(status) if status and status.isdigit() else -1
            r.headers = hdrs

    async def request(self, method: str = "GET", path: str = "/hello",
                      body: bytes | None = None, timeout: float = 5.0) -> Response:
        """A well-formed request on a new stream; the response."""
        sid = self.bidi()
        data = self.request_headers(method, path)
        if body is not None:
            data += frame(DATA, body)
        self.send(sid, data, fin=True)
        return await self.response(sid, timeout)


@contextlib.asynccontextmanager
async def connect(host: str, port: int, *, control: bool = True,
                  settings: Iterable[tuple[int, int]] | None = None,
                  timeout: float = 10.0, wait_scale: float = 1.0,
                  max_datagram_frame_size: int | None = None):
    """A handshaken HTTP/3 connection (ALPN h3, certificate not verified:
    the test servers use a self-signed one). With control=True the client
    control stream with `settings` (default CLIENT_SETTINGS) is opened at
    once. max_datagram_frame_size: the QUIC transport parameter (RFC 9221),
    absent by default. The connection is closed on exit (bounded)."""
    cfg = QuicConfiguration(is_client=True, alpn_protocols=["h3"], idle_timeout=30.0)
    cfg.max_datagram_frame_size = max_datagram_frame_size
    cfg.verify_mode = ssl.CERT_NONE
    cfg.server_name = "localhost"
    quic = _RecordingQuic(configuration=cfg)
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _RawProtocol(quic), local_addr=(host, 0), family=family)
    try:
        proto.connect((host, port) if family == socket.AF_INET else (host, port, 0, 0))
        try:
            await asyncio.wait_for(proto.wait_connected(), timeout)
        except (asyncio.TimeoutError, ConnectionError) as e:
            raise AssertionError(f"QUIC handshake with {host}:{port} failed: {e!r} "
                                 f"{quic.peer_close}") from None
        c = RawH3(proto, host, port, wait_scale)
        if control:
            c.open_control(settings)
        yield c
    finally:
        proto.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proto.wait_closed(), 2.0)
        transport.close()
