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
import hashlib
import ssl
import time
from dataclasses import dataclass, field
from typing import AsyncIterable, Callable, Iterable, Sequence, Union

from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import (
    ConnectionTerminated,
    QuicEvent,
    StopSendingReceived,
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


class _H3Protocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = _H3Conn(self._quic)
        self.streams: dict[int, _Stream] = {}
        self.terminated: ConnectionTerminated | None = None
        self.progress = asyncio.Event()  # set whenever anything arrives

    # Wake up senders waiting for buffer space whenever packets arrive or a
    # timer fires (ACKs free aioquic's send buffer).
    def datagram_received(self, data, addr) -> None:  # type: ignore[override]
        super().datagram_received(data, addr)
        self.progress.set()

    def _handle_timer(self) -> None:
        super()._handle_timer()
        self.progress.set()

    def quic_event_received(self, event: QuicEvent) -> None:
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
        elif isinstance(event, StopSendingReceived):
            st = self.streams.get(event.stream_id)
            if st is not None:
                st.resp.stop_sending_code = event.error_code
        for h3ev in self.h3.handle_event(event):
            self._h3_event(h3ev)
        # the H3 layer may have closed the connection (protocol error)
        self.progress.set()

    def _h3_event(self, ev: H3Event) -> None:
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

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, host: str, port: int, *, timeout: float = 10.0,
                      cafile: str | None = None, server_name: str | None = None,
                      max_data: int = 32 << 20, max_stream_data: int = 16 << 20,
                      alpn: list[str] | None = None, idle_timeout: float = 30.0,
                      max_datagram_size: int | None = None):
        cfg = QuicConfiguration(is_client=True, alpn_protocols=alpn or list(H3_ALPN),
                                idle_timeout=idle_timeout)
        cfg.max_data = max_data
        cfg.max_stream_data = max_stream_data
        if max_datagram_size:
            cfg.max_datagram_size = max_datagram_size
        if cafile:
            cfg.load_verify_locations(cafile)
            cfg.verify_mode = ssl.CERT_REQUIRED
        else:
            cfg.verify_mode = ssl.CERT_NONE
        if server_name:
            cfg.server_name = server_name
        cm = quic_connect(host, port, configuration=cfg, create_protocol=_H3Protocol,
                          wait_connected=False)
        proto = await cm.__aenter__()
        try:
            proto.transmit()  # wait_connected=False leaves the Initial unsent
            try:
                await asyncio.wait_for(proto.wait_connected(), timeout)
            except asyncio.TimeoutError:
                raise H3ClientError(
                    f"QUIC handshake with {host}:{port} timed out after {timeout}s") from None
            except ConnectionError:
                t = proto.terminated
                why = (f"{t.reason_phrase!r} (error 0x{t.error_code:x})" if t else "closed")
                raise H3ClientError(f"QUIC handshake with {host}:{port} failed: {why}") from None
            client = cls(proto, host, port)
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

    def send_headers(self, stream_id: int, headers: HeaderList, end_stream: bool = False) -> None:
        """Sends exactly this header list (no validation, no added pseudo-headers)."""
        hdrs = [(_b(k), _b(v)) for k, v in headers]
        if (b":method", b"HEAD") in hdrs:
            self.h3.head_streams.add(stream_id)
        self.h3.send_headers(stream_id, hdrs, end_stream)
        self.proto.transmit()

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self.h3.send_data(stream_id, bytes(data), end_stream)
        self.proto.transmit()

    def send_raw(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Raw bytes on the QUIC stream, bypassing HTTP/3 framing."""
        self.quic.send_stream_data(stream_id, data, end_stream)
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
