"""HTTP/3 and QPACK error handling, written against RFC 9114 (sections 4,
6, 7, 8), RFC 9204 (sections 2, 3, 4, 6), RFC 9218 section 7.2, RFC 9220
and RFC 9297 section 2.1.1 -- not against what any server does today.

Each test opens its own QUIC connection (ALPN h3) with aioquic's QUIC
layer only (h3_wire.py) and writes every HTTP/3 byte itself: the client
control stream with hand-encoded SETTINGS, QPACK encoder/decoder streams,
request streams with hand-encoded or pylsqpack-encoded HEADERS, DATA and
other frames. It then asserts the server's observable reaction:

  - a connection error: an application CONNECTION_CLOSE (QUIC frame 0x1d)
    carrying the HTTP/3 or QPACK error code (expect_connection_error);
  - a stream error: RESET_STREAM on that request stream with the code,
    while the connection stays usable;
  - nothing wrong: a normal response, and GET /hello still answered on the
    same connection (expect_usable).

The server gets WAIT seconds to react; every wait is bounded. Tests that
need the server's QPACK dynamic table start h3q-server with
--qpack-max-table-capacity and --qpack-blocked-streams and are skipped,
with the reason, when `h3q-server --help` does not list those flags.
"""

from __future__ import annotations

import asyncio
import functools
import re
import subprocess

import pytest

from aioquic_client import run
from h3_wire import (
    CANCEL_PUSH,
    CLIENT_SETTINGS,
    DATA,
    GOAWAY,
    H2_CONTINUATION,
    H2_ONLY_SETTINGS,
    H2_PING,
    H2_PRIORITY,
    H2_WINDOW_UPDATE,
    H3_CLOSED_CRITICAL_STREAM,
    H3_FRAME_ERROR,
    H3_FRAME_UNEXPECTED,
    H3_ID_ERROR,
    H3_MESSAGE_ERROR,
    H3_MISSING_SETTINGS,
    H3_REQUEST_INCOMPLETE,
    H3_SETTINGS_ERROR,
    H3_STREAM_CREATION_ERROR,
    HEADERS,
    MAX_PUSH_ID,
    PRIORITY_UPDATE_PUSH,
    PRIORITY_UPDATE_REQUEST,
    PUSH_PROMISE,
    QPACK_DECODER_STREAM_ERROR,
    QPACK_DECOMPRESSION_FAILED,
    QPACK_ENCODER_STREAM_ERROR,
    SETTINGS,
    SETTINGS_ENABLE_CONNECT_PROTOCOL,
    SETTINGS_H3_DATAGRAM,
    SETTINGS_MAX_FIELD_SECTION_SIZE,
    SETTINGS_QPACK_BLOCKED_STREAMS,
    SETTINGS_QPACK_MAX_TABLE_CAPACITY,
    STATIC_AUTHORITY,
    STATIC_LAST,
    STATIC_METHOD_GET,
    STATIC_PATH_SLASH,
    STATIC_SCHEME_HTTPS,
    STREAM_CONTROL,
    STREAM_PUSH,
    STREAM_QPACK_DECODER,
    STREAM_QPACK_ENCODER,
    RawH3,
    connect,
    dec_insert_count_increment,
    dec_section_ack,
    enc_duplicate,
    enc_insert_dynamic_name,
    enc_insert_literal,
    enc_insert_static_name,
    enc_set_capacity,
    error_name,
    fl_dynamic,
    fl_dynamic_name,
    fl_literal,
    fl_post_base,
    fl_post_base_name,
    fl_static,
    fl_static_name,
    frame,
    literal_section,
    pylsqpack_headers_frame,
    required_insert_count,
    reserved,
    section_prefix,
    settings_frame,
    varint,
)
from harness import SERVER_BIN, SLOW, require_exe, scaled

HELLO = b"hello from h3q\n"
WAIT = 3.0  # seconds the server gets to react (times SLOW under sanitizers)
QPACK_CAPACITY = 4096  # what the dynamic-table server is told to advertise
QPACK_BLOCKED = 2

pytestmark = pytest.mark.timeout(scaled(60))


# --------------------------------------------------------------------------
# running a test body on a fresh connection


def on_connection(server, body, *, control: bool = True, settings=None, timeout: float = 30.0,
                  datagrams: bool = False):
    """Runs `await body(c)` on a new raw HTTP/3 connection to server;
    datagrams: the client sends the max_datagram_frame_size transport
    parameter."""
    async def main():
        async with connect(server.host, server.port, control=control, settings=settings,
                           timeout=scaled(10), wait_scale=SLOW,
                           max_datagram_frame_size=65536 if datagrams else None) as c:
            return await body(c)
    return run(main(), scaled(timeout))


def describe(c: RawH3) -> str:
    p = c.proto
    return (f"\n  stream resets from server: { {s: error_name(e) for s, e in p.resets.items()} }"
            f"\n  STOP_SENDING from server: { {s: error_name(e) for s, e in p.stop_sending.items()} }"
            f"\n  server uni stream types: {c.server.types}")


async def expect_connection_error(c: RawH3, code: int, what: str) -> None:
    """The server must close the connection with an application
    CONNECTION_CLOSE carrying code."""
    pc = await c.wait_close(WAIT)
    assert pc is not None, (
        f"{what}: expected connection error {error_name(code)}, but the server did not close "
        f"the connection within {WAIT * SLOW:.0f}s" + describe(c))
    assert pc.application and pc.error_code == code, (
        f"{what}: expected application CONNECTION_CLOSE {error_name(code)}, got {pc}")


async def expect_usable(c: RawH3, what: str) -> None:
    """No connection error, and GET /hello on a new stream gets its 200."""
    r = await c.request("GET", "/hello", timeout=WAIT)
    assert c.peer_close is None, f"{what}: the server closed the connection: {c.peer_close}"
    assert r.status == 200 and r.body == HELLO and r.fin, (
        f"{what}: GET /hello on the same connection afterwards: {r}" + describe(c))


async def expect_stream_error(c: RawH3, sid: int, code: int, what: str) -> None:
    """The server resets request stream sid with code before any final
    response; the connection stays usable."""
    r = await c.response(sid, WAIT)
    assert c.peer_close is None, (
        f"{what}: expected stream error {error_name(code)} on stream {sid}, "
        f"got a connection error: {c.peer_close}")
    assert r.reset_code == code and r.status is None, (
        f"{what}: expected RESET_STREAM {error_name(code)} on stream {sid} before any "
        f"response, got: {r}" + describe(c))
    await expect_usable(c, what)


async def no_close_after_round_trip(c: RawH3, what: str) -> None:
    """Lets the server process what was sent (a PING round trip, then a
    short pause) and checks it did not close the connection."""
    try:
        await asyncio.wait_for(c.proto.ping(), scaled(WAIT))
    except (asyncio.TimeoutError, ConnectionError):
        pass
    await c.settle(0.3)
    assert c.peer_close is None, f"{what}: the server closed the connection: {c.peer_close}"


# --------------------------------------------------------------------------
# servers


@functools.lru_cache(maxsize=None)
def server_help() -> str:
    exe = require_exe(SERVER_BIN, "h3q-server")
    p = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10)
    return p.stdout + p.stderr


def has_flag(flag: str) -> bool:
    return re.search(re.escape(flag) + r"\b", server_help()) is not None


QPACK_FLAGS = ("--qpack-max-table-capacity", "--qpack-blocked-streams")


@pytest.fixture(scope="module")
def qpack_server(module_servers):
    """h3q-server advertising a QPACK dynamic table of QPACK_CAPACITY bytes
    and QPACK_BLOCKED blocked streams."""
    missing = [f for f in QPACK_FLAGS if not has_flag(f)]
    if missing:
        pytest.skip(f"h3q-server --help lists no {' / '.join(missing)}: this server cannot be "
                    f"told to advertise a QPACK dynamic table, which this test needs")
    return module_servers.start("--qpack-max-table-capacity", str(QPACK_CAPACITY),
                                "--qpack-blocked-streams", str(QPACK_BLOCKED))


@pytest.fixture(scope="module")
def no_table_server(module_servers, server):
    """h3q-server advertising QPACK_MAX_TABLE_CAPACITY 0 (with the flag if
    it exists; otherwise the plain server, whose SETTINGS the test checks)."""
    if has_flag("--qpack-max-table-capacity"):
        return module_servers.start("--qpack-max-table-capacity", "0")
    return server


# --------------------------------------------------------------------------
# the client control stream (RFC 9114 section 6.2.1, 7.2)

FIELD_SECTION_GET = literal_section([(":method", "GET"), (":scheme", "https"),
                                     (":authority", "localhost"), (":path", "/")])


@pytest.mark.parametrize("first", [
    pytest.param(frame(GOAWAY, varint(0)), id="goaway"),
    pytest.param(frame(MAX_PUSH_ID, varint(0)), id="max-push-id"),
    pytest.param(frame(PRIORITY_UPDATE_REQUEST, varint(0) + b"u=1"), id="priority-update"),
])
def test_control_first_frame_not_settings(server, first):
    """RFC 9114 6.2.1: a first control frame other than SETTINGS is
    H3_MISSING_SETTINGS."""
    async def body(c):
        c.open_control(first=first)
        await expect_connection_error(c, H3_MISSING_SETTINGS, "first control frame not SETTINGS")
    on_connection(server, body, control=False)


def test_control_second_settings(server):
    """RFC 9114 7.2.4: a second SETTINGS frame is H3_FRAME_UNEXPECTED."""
    async def body(c):
        c.control(settings_frame(CLIENT_SETTINGS))
        await expect_connection_error(c, H3_FRAME_UNEXPECTED, "second SETTINGS")
    on_connection(server, body)


@pytest.mark.parametrize("data", [
    pytest.param(frame(DATA, b"x"), id="data"),
    pytest.param(frame(HEADERS, FIELD_SECTION_GET), id="headers"),
    pytest.param(frame(PUSH_PROMISE, varint(0) + FIELD_SECTION_GET), id="push-promise"),
    pytest.param(frame(H2_PRIORITY, b"\x00" * 5), id="h2-priority-0x02"),
    pytest.param(frame(H2_PING, b"\x00" * 8), id="h2-ping-0x06"),
    pytest.param(frame(H2_WINDOW_UPDATE, b"\x00" * 4), id="h2-window-update-0x08"),
    pytest.param(frame(H2_CONTINUATION, b"\x00"), id="h2-continuation-0x09"),
])
def test_control_frame_unexpected(server, data):
    """RFC 9114 7.2.1, 7.2.2, 7.2.5 (a client never sends PUSH_PROMISE),
    7.2.8 (HTTP/2 frame types): on the control stream, H3_FRAME_UNEXPECTED."""
    async def body(c):
        c.control(data)
        await expect_connection_error(c, H3_FRAME_UNEXPECTED, "frame on the control stream")
    on_connection(server, body)


@pytest.mark.parametrize("settings", [
    pytest.param([(SETTINGS_MAX_FIELD_SECTION_SIZE, 1000), (SETTINGS_MAX_FIELD_SECTION_SIZE, 2000)],
                 id="duplicate-id"),
    pytest.param([(SETTINGS_QPACK_BLOCKED_STREAMS, 0), (SETTINGS_QPACK_BLOCKED_STREAMS, 0)],
                 id="duplicate-id-same-value"),
    *[pytest.param([(ident, 0)], id=f"h2-setting-0x{ident:02x}") for ident in H2_ONLY_SETTINGS],
    pytest.param([(SETTINGS_ENABLE_CONNECT_PROTOCOL, 2)], id="enable-connect-protocol-2"),
    pytest.param([(SETTINGS_H3_DATAGRAM, 2)], id="h3-datagram-2"),
])
def test_settings_error(server, settings):
    """RFC 9114 7.2.4 (duplicate identifiers; the RFC says MAY, h3q does)
    and 7.2.4.1 (HTTP/2 settings 0x02-0x05), RFC 9220 section 3 / RFC 8441
    section 3 (ENABLE_CONNECT_PROTOCOL is 0 or 1), RFC 9297 2.1.1
    (H3_DATAGRAM is 0 or 1): H3_SETTINGS_ERROR."""
    async def body(c):
        await expect_connection_error(c, H3_SETTINGS_ERROR, f"SETTINGS {settings}")
    on_connection(server, body, settings=settings)


@pytest.mark.parametrize("settings", [
    pytest.param([(reserved(0), 7), (reserved(1), 0), (reserved(0x1234567), 1 << 40)],
                 id="reserved-ids"),
    pytest.param([(0x3FF0, 1), (0x7A7A7A, 123456)], id="unknown-ids"),
    pytest.param([(SETTINGS_QPACK_MAX_TABLE_CAPACITY, 0), (SETTINGS_QPACK_BLOCKED_STREAMS, 0),
                  (SETTINGS_MAX_FIELD_SECTION_SIZE, 65536), (SETTINGS_ENABLE_CONNECT_PROTOCOL, 1),
                  (SETTINGS_H3_DATAGRAM, 1)], id="known-ids-valid-values"),
    pytest.param([], id="empty"),
])
def test_settings_ignored_or_accepted(server, settings):
    """RFC 9114 7.2.4.1, 9: unknown and reserved setting identifiers are
    ignored; valid values of known settings are accepted (H3_DATAGRAM 1
    together with the max_datagram_frame_size transport parameter)."""
    async def body(c):
        await expect_usable(c, f"SETTINGS {settings}")
    on_connection(server, body, settings=settings, datagrams=True)


def test_h3_datagram_without_transport_parameter(server):
    """RFC 9297 2.1.1: H3_DATAGRAM 1 from a peer that did not send the
    max_datagram_frame_size transport parameter is H3_SETTINGS_ERROR."""
    async def body(c):
        await expect_connection_error(c, H3_SETTINGS_ERROR, "H3_DATAGRAM 1 without the TP")
    on_connection(server, body, settings=[(SETTINGS_H3_DATAGRAM, 1)])


@pytest.mark.parametrize("first,data", [
    # SETTINGS as the first frame, its payload cut inside a varint
    pytest.param(frame(SETTINGS, b"\x40"), None, id="settings-id-varint-past-end"),
    pytest.param(frame(SETTINGS, varint(SETTINGS_MAX_FIELD_SECTION_SIZE)), None,
                 id="settings-value-missing"),
    pytest.param(frame(SETTINGS, varint(SETTINGS_MAX_FIELD_SECTION_SIZE) + b"\x80\x00"), None,
                 id="settings-value-varint-past-end"),
    # after a valid SETTINGS
    pytest.param(None, frame(GOAWAY, varint(0) + b"\x00"), id="goaway-trailing-byte"),
    pytest.param(None, frame(GOAWAY, b""), id="goaway-empty"),
    pytest.param(None, frame(MAX_PUSH_ID, varint(4) + b"\x01"), id="max-push-id-trailing-byte"),
    pytest.param(None, frame(MAX_PUSH_ID, b"\x40"), id="max-push-id-varint-past-end"),
    pytest.param(None, frame(CANCEL_PUSH, b""), id="cancel-push-empty"),
])
def test_control_frame_length_error(server, first, data):
    """RFC 9114 7.1, 10.8: a frame payload with bytes after its fields, or
    ending inside them, is H3_FRAME_ERROR."""
    async def body(c):
        c.open_control(first=first)
        if data is not None:
            c.control(data)
        await expect_connection_error(c, H3_FRAME_ERROR, "malformed control frame")
    on_connection(server, body, control=False)


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_control_stream_closed(server, how):
    """RFC 9114 6.2.1: closing the control stream, at any point, is
    H3_CLOSED_CRITICAL_STREAM."""
    async def body(c):
        await c.acked(c.control_id)
        if how == "fin":
            c.control(b"", fin=True)
        else:
            c.reset(c.control_id, 0x100)
        await expect_connection_error(c, H3_CLOSED_CRITICAL_STREAM, f"control stream {how}")
    on_connection(server, body)


def test_second_control_stream(server):
    """RFC 9114 6.2.1: a second control stream is H3_STREAM_CREATION_ERROR."""
    async def body(c):
        await c.acked(c.control_id)
        c.uni(STREAM_CONTROL, settings_frame(CLIENT_SETTINGS))
        await expect_connection_error(c, H3_STREAM_CREATION_ERROR, "second control stream")
    on_connection(server, body)


@pytest.mark.parametrize("stream_type", [
    pytest.param(STREAM_QPACK_ENCODER, id="encoder"),
    pytest.param(STREAM_QPACK_DECODER, id="decoder"),
])
def test_second_qpack_stream(server, stream_type):
    """RFC 9204 4.2: a second encoder or decoder stream is
    H3_STREAM_CREATION_ERROR."""
    async def body(c):
        first = c.uni(stream_type)
        await c.acked(first)
        c.uni(stream_type)
        await expect_connection_error(c, H3_STREAM_CREATION_ERROR, "second QPACK stream")
    on_connection(server, body)


@pytest.mark.parametrize("how", ["fin", "reset"])
@pytest.mark.parametrize("stream_type", [
    pytest.param(STREAM_QPACK_ENCODER, id="encoder"),
    pytest.param(STREAM_QPACK_DECODER, id="decoder"),
])
def test_qpack_stream_closed(server, stream_type, how):
    """RFC 9204 4.2: closing the encoder or decoder stream is
    H3_CLOSED_CRITICAL_STREAM."""
    async def body(c):
        sid = c.uni(stream_type)
        await c.acked(sid)
        if how == "fin":
            c.send(sid, b"", fin=True)
        else:
            c.reset(sid, 0x100)
        await expect_connection_error(c, H3_CLOSED_CRITICAL_STREAM, f"QPACK stream {how}")
    on_connection(server, body)


def test_client_push_stream(server):
    """RFC 9114 6.2.2: a push stream opened by the client is
    H3_STREAM_CREATION_ERROR."""
    async def body(c):
        c.uni(STREAM_PUSH, varint(0) + frame(HEADERS, FIELD_SECTION_GET))
        await expect_connection_error(c, H3_STREAM_CREATION_ERROR, "client push stream")
    on_connection(server, body)


@pytest.mark.parametrize("stream_type", [
    pytest.param(reserved(0), id="reserved-0x21"),
    pytest.param(reserved(5), id="reserved-0xbc"),
    pytest.param(reserved(0x3FFFFFF), id="reserved-large"),
    pytest.param(0x1234, id="unassigned-0x1234"),
])
def test_unknown_uni_stream_ignored(server, stream_type):
    """RFC 9114 6.2.3: a unidirectional stream of unknown type is ignored
    (read and discarded, or aborted with STOP_SENDING, which SHOULD carry
    H3_STREAM_CREATION_ERROR); the connection goes on."""
    async def body(c):
        sid = c.uni(stream_type, b"some bytes of an unknown stream" * 10, fin=True)
        keep_open = c.uni(stream_type, b"more bytes, stream left open")
        await expect_usable(c, f"uni stream type 0x{stream_type:x}")
        for s in (sid, keep_open):
            code = c.proto.stop_sending.get(s)
            assert code in (None, H3_STREAM_CREATION_ERROR), (
                f"STOP_SENDING on unknown stream {s} with {error_name(code)}, "
                f"expected {error_name(H3_STREAM_CREATION_ERROR)}")
    on_connection(server, body)


def test_client_goaway_increasing_id(server):
    """RFC 9114 5.2: a GOAWAY id larger than a previous one is H3_ID_ERROR."""
    async def body(c):
        c.control(frame(GOAWAY, varint(4)) + frame(GOAWAY, varint(8)))
        await expect_connection_error(c, H3_ID_ERROR, "GOAWAY 4 then 8")
    on_connection(server, body)


def test_client_goaway_same_or_smaller_id_accepted(server):
    """RFC 9114 5.2: repeated GOAWAY frames with ids that do not grow are
    fine (and a client's GOAWAY carries a push id, not a stream id)."""
    async def body(c):
        c.control(frame(GOAWAY, varint(8)) + frame(GOAWAY, varint(8)) + frame(GOAWAY, varint(3)))
        await no_close_after_round_trip(c, "GOAWAY 8, 8, 3")
    on_connection(server, body)


def test_max_push_id_decreasing(server):
    """RFC 9114 7.2.7: a MAX_PUSH_ID smaller than a previous one is
    H3_ID_ERROR."""
    async def body(c):
        c.control(frame(MAX_PUSH_ID, varint(10)) + frame(MAX_PUSH_ID, varint(5)))
        await expect_connection_error(c, H3_ID_ERROR, "MAX_PUSH_ID 10 then 5")
    on_connection(server, body)


@pytest.mark.parametrize("data", [
    pytest.param(frame(CANCEL_PUSH, varint(0)), id="no-max-push-id"),
    pytest.param(frame(MAX_PUSH_ID, varint(2)) + frame(CANCEL_PUSH, varint(3)),
                 id="above-max-push-id"),
])
def test_cancel_push_not_allowed(server, data):
    """RFC 9114 7.2.3: CANCEL_PUSH for a push id above what the client
    allowed is H3_ID_ERROR."""
    async def body(c):
        c.control(data)
        await expect_connection_error(c, H3_ID_ERROR, "CANCEL_PUSH for a push id never allowed")
    on_connection(server, body)


@pytest.mark.parametrize("data", [
    pytest.param(frame(PRIORITY_UPDATE_REQUEST, varint(2) + b"u=1"), id="client-uni-2"),
    pytest.param(frame(PRIORITY_UPDATE_REQUEST, varint(3) + b"u=1"), id="server-uni-3"),
    pytest.param(frame(PRIORITY_UPDATE_REQUEST, varint(1) + b"u=1"), id="server-bidi-1"),
    pytest.param(frame(PRIORITY_UPDATE_PUSH, varint(5) + b"u=1"), id="push-never-allowed"),
])
def test_priority_update_bad_id(server, data):
    """RFC 9218 7.2: PRIORITY_UPDATE whose Prioritized Element ID is not a
    client-initiated bidirectional stream (or a push id above the limit)
    is H3_ID_ERROR."""
    async def body(c):
        c.control(data)
        await expect_connection_error(c, H3_ID_ERROR, "PRIORITY_UPDATE for a non-request stream")
    on_connection(server, body)


def test_unknown_frames_on_control_ignored(server):
    """RFC 9114 7.2.8, 9: unknown and reserved frame types on the control
    stream are ignored, whatever their size."""
    async def body(c):
        c.control(frame(reserved(0), b"")
                  + frame(reserved(1), b"grease")
                  + frame(reserved(0x2345678), b"\xff" * 3000)
                  + frame(0x3F3F3F, b"unknown extension frame"))
        await expect_usable(c, "unknown frames on the control stream")
    on_connection(server, body)


# --------------------------------------------------------------------------
# request streams (RFC 9114 section 4.1, 7.1, 7.2)


def test_data_before_headers(server):
    """RFC 9114 4.1: DATA before HEADERS is H3_FRAME_UNEXPECTED."""
    async def body(c):
        sid = c.bidi()
        c.send(sid, frame(DATA, b"early") + c.request_headers("POST", "/echo"), fin=True)
        await expect_connection_error(c, H3_FRAME_UNEXPECTED, "DATA before HEADERS")
    on_connection(server, body)


REQUEST_UNEXPECTED = [
    pytest.param(frame(SETTINGS, b""), id="settings"),
    pytest.param(frame(GOAWAY, varint(0)), id="goaway"),
    pytest.param(frame(MAX_PUSH_ID, varint(0)), id="max-push-id"),
    pytest.param(frame(CANCEL_PUSH, varint(0)), id="cancel-push"),
    pytest.param(frame(PRIORITY_UPDATE_REQUEST, varint(0) + b"u=1"), id="priority-update"),
    pytest.param(frame(PUSH_PROMISE, varint(0) + FIELD_SECTION_GET), id="push-promise"),
    pytest.param(frame(H2_PRIORITY, b"\x00" * 5), id="h2-priority-0x02"),
    pytest.param(frame(H2_PING, b"\x00" * 8), id="h2-ping-0x06"),
    pytest.param(frame(H2_WINDOW_UPDATE, b"\x00" * 4), id="h2-window-update-0x08"),
    pytest.param(frame(H2_CONTINUATION, b"\x00"), id="h2-continuation-0x09"),
]


@pytest.mark.parametrize("where", ["first", "after-headers"])
@pytest.mark.parametrize("bad", REQUEST_UNEXPECTED)
def test_request_frame_unexpected(server, bad, where):
    """RFC 9114 7.2.3-7.2.8, RFC 9218 7.2: control-stream frames,
    PUSH_PROMISE from a client and HTTP/2 frame types on a request stream
    are H3_FRAME_UNEXPECTED."""
    async def body(c):
        sid = c.bidi()
        head = c.request_headers("POST", "/echo")
        data = bad + head if where == "first" else head + bad
        c.send(sid, data + frame(DATA, b"body"), fin=True)
        await expect_connection_error(c, H3_FRAME_UNEXPECTED, f"frame on a request stream ({where})")
    on_connection(server, body)


@pytest.mark.parametrize("tail", [
    pytest.param(lambda: frame(DATA, b"0123456789")[:-5], id="data-payload"),
    pytest.param(lambda: varint(DATA), id="frame-length-missing"),
    pytest.param(lambda: varint(DATA) + b"\x40", id="frame-length-varint-cut"),
    pytest.param(lambda: varint(reserved(3))[:1], id="frame-type-varint-cut"),
    pytest.param(lambda: frame(reserved(2), b"0123456789")[:-3], id="unknown-frame-payload"),
    pytest.param(lambda: frame(HEADERS, literal_section([("x-trailer", "1")]))[:-2],
                 id="trailers-payload"),
])
def test_request_frame_cut_by_fin(server, tail):
    """RFC 9114 7.1: a stream that ends cleanly inside a frame is
    H3_FRAME_ERROR."""
    async def body(c):
        sid = c.bidi()
        c.send(sid, c.request_headers("POST", "/echo") + frame(DATA, b"abc") + tail(), fin=True)
        await expect_connection_error(c, H3_FRAME_ERROR, "frame cut by FIN")
    on_connection(server, body)


def test_request_headers_cut_by_fin(server):
    """RFC 9114 7.1: the first HEADERS frame cut by FIN is H3_FRAME_ERROR."""
    async def body(c):
        sid = c.bidi()
        c.send(sid, c.request_headers("GET", "/hello")[:-3], fin=True)
        await expect_connection_error(c, H3_FRAME_ERROR, "HEADERS cut by FIN")
    on_connection(server, body)


@pytest.mark.parametrize("after", [
    pytest.param(frame(DATA, b"late"), id="data"),
    pytest.param(frame(HEADERS, literal_section([("x-more", "1")])), id="headers"),
])
def test_frame_after_trailers(server, after):
    """RFC 9114 4.1: after the trailing HEADERS only unknown frames may
    follow; DATA or another HEADERS is H3_FRAME_UNEXPECTED."""
    async def body(c):
        sid = c.bidi()
        c.send(sid, c.request_headers("POST", "/echo") + frame(DATA, b"abc")
               + frame(HEADERS, literal_section([("x-trailer", "1")])) + after, fin=True)
        await expect_connection_error(c, H3_FRAME_UNEXPECTED, "frame after trailers")
    on_connection(server, body)


@pytest.mark.parametrize("data", [
    pytest.param(b"", id="empty"),
    pytest.param(frame(reserved(4), b"grease only"), id="unknown-frame-only"),
])
def test_request_without_headers(server, data):
    """RFC 9114 4.1.2: a request stream that ends without a complete request
    (here: no HEADERS at all) is answered with RESET_STREAM
    H3_REQUEST_INCOMPLETE; the connection stays usable."""
    async def body(c):
        sid = c.bidi()
        c.send(sid, data, fin=True)
        await expect_stream_error(c, sid, H3_REQUEST_INCOMPLETE, "request stream without HEADERS")
    on_connection(server, body)


def _fields(a: str, *pairs: tuple[str, str], drop: str | None = None,
            method: str = "GET", path: str = "/hello") -> list[tuple[str, str]]:
    base = [(":method", method), (":scheme", "https"), (":authority", a), (":path", path)]
    return [(k, v) for k, v in base if k != drop] + list(pairs)


MALFORMED = {
    "missing-method": lambda a: _fields(a, drop=":method"),
    "missing-scheme": lambda a: _fields(a, drop=":scheme"),
    "missing-path": lambda a: _fields(a, drop=":path"),
    "empty-path": lambda a: _fields(a, path=""),
    "uppercase-name": lambda a: _fields(a, ("X-Upper", "1")),
    "uppercase-pseudo": lambda a: [(":Method", "GET")] + _fields(a, drop=":method"),
    "connection-header": lambda a: _fields(a, ("connection", "close")),
    "transfer-encoding": lambda a: _fields(a, ("transfer-encoding", "chunked")),
    "keep-alive": lambda a: _fields(a, ("keep-alive", "timeout=5")),
    "upgrade": lambda a: _fields(a, ("upgrade", "websocket")),
    "te-not-trailers": lambda a: _fields(a, ("te", "gzip")),
    "pseudo-after-regular": lambda a: [("x-first", "1")] + _fields(a),
    "duplicate-pseudo": lambda a: _fields(a, (":path", "/hello")),
    "unknown-pseudo": lambda a: _fields(a, (":foo", "bar")),
    "response-pseudo": lambda a: _fields(a, (":status", "200")),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request(server, name):
    """RFC 9114 4.1.2, 4.2, 4.3.1: a malformed request is a stream error
    H3_MESSAGE_ERROR (RESET_STREAM); the connection stays usable."""
    async def body(c):
        sid = c.bidi()
        c.send(sid, pylsqpack_headers_frame(MALFORMED[name](c.authority), sid), fin=True)
        await expect_stream_error(c, sid, H3_MESSAGE_ERROR, f"malformed request ({name})")
    on_connection(server, body)


def test_content_length_mismatch(server):
    """RFC 9114 4.1.2: a body longer or shorter than content-length makes
    the request malformed: H3_MESSAGE_ERROR."""
    async def body(c):
        sid = c.bidi()
        c.send(sid, c.request_headers("POST", "/echo", [("content-length", "10")])
               + frame(DATA, b"12345"), fin=True)
        await expect_stream_error(c, sid, H3_MESSAGE_ERROR, "content-length 10, body 5")
    on_connection(server, body)


def test_unknown_frames_interleaved_in_request(server):
    """RFC 9114 4.1, 9: unknown frames may come before, between and after
    HEADERS and DATA; the request is served normally."""
    async def body(c):
        sid = c.bidi()
        g = [frame(reserved(i), b"g" * (i * 100)) for i in range(6)]
        c.send(sid, g[0] + c.request_headers("POST", "/echo") + g[1] + frame(DATA, b"first ")
               + g[2] + g[3] + frame(DATA, b"second") + g[4] + frame(0x3F3F3F, b"x") + g[5],
               fin=True)
        r = await c.response(sid, WAIT)
        assert c.peer_close is None, f"connection closed: {c.peer_close}"
        assert r.status == 200 and r.body == b"first second" and r.fin, r
        await expect_usable(c, "unknown frames in a request")
    on_connection(server, body)


# --------------------------------------------------------------------------
# QPACK (RFC 9204)


def get_section(authority: str, *lines: bytes, prefix: bytes = section_prefix()) -> bytes:
    """A GET field section: method/scheme/authority from the static table,
    then the given field lines (which carry :path)."""
    return (prefix + fl_static(STATIC_METHOD_GET) + fl_static(STATIC_SCHEME_HTTPS)
            + fl_static_name(STATIC_AUTHORITY, authority) + b"".join(lines))


@pytest.mark.parametrize("lines", [
    pytest.param(fl_dynamic(0), id="dynamic-index-with-insert-count-0"),
    pytest.param(fl_post_base(0), id="post-base-index-with-insert-count-0"),
    pytest.param(fl_dynamic_name(0, "/hello"), id="dynamic-name-with-insert-count-0"),
    pytest.param(fl_static(STATIC_LAST + 1), id="static-index-99"),
    pytest.param(fl_static(1000), id="static-index-1000"),
    pytest.param(fl_static_name(STATIC_LAST + 1, "/hello"), id="static-name-index-99"),
    pytest.param(fl_static_name(STATIC_PATH_SLASH, "/hello")[:-2], id="value-past-end"),
])
def test_qpack_invalid_field_section(server, lines):
    """RFC 9204 2.2.3, 3.1, 4.5: a field line referencing a dynamic entry
    at or above the Required Insert Count (here 0), a static index past 98,
    or a field section that ends inside a representation is
    QPACK_DECOMPRESSION_FAILED."""
    async def body(c):
        sid = c.bidi()
        c.send(sid, frame(HEADERS, get_section(c.authority, lines)), fin=True)
        await expect_connection_error(c, QPACK_DECOMPRESSION_FAILED, "invalid field section")
    on_connection(server, body)


def test_qpack_dynamic_reference_when_table_disabled(no_table_server):
    """RFC 9204 4.5.1.1: with QPACK_MAX_TABLE_CAPACITY 0 (MaxEntries 0) any
    non-zero Required Insert Count is QPACK_DECOMPRESSION_FAILED."""
    async def body(c):
        settings = await c.server_settings(WAIT)
        assert settings.get(SETTINGS_QPACK_MAX_TABLE_CAPACITY, 0) == 0, (
            f"server advertises a dynamic table although asked for none: {settings}")
        sid = c.bidi()
        prefix = section_prefix(encoded_ric=2, base=1, ric=1)
        c.send(sid, frame(HEADERS, get_section(c.authority, fl_dynamic(0), prefix=prefix)),
               fin=True)
        await expect_connection_error(c, QPACK_DECOMPRESSION_FAILED,
                                      "dynamic reference with table capacity 0")
    on_connection(no_table_server, body)


def _encoder_errors(max_cap: int) -> dict[str, bytes]:
    """Encoder stream bytes that must fail, for a server whose maximum
    table capacity is max_cap."""
    cap = enc_set_capacity(min(max_cap, 4096)) if max_cap >= 64 else b""
    return {
        "capacity-above-maximum": enc_set_capacity(max_cap + 1),
        "insert-static-name-index-99": cap + enc_insert_static_name(STATIC_LAST + 1, "x"),
        "insert-dynamic-name-missing": cap + enc_insert_dynamic_name(0, "x"),
        "duplicate-missing": cap + enc_duplicate(0),
        "entry-larger-than-capacity": (enc_set_capacity(min(max_cap, 64)) if max_cap else b"")
        + enc_insert_literal("x" * 40, "y" * 40),
        "instruction-truncated-at-fin": cap + enc_insert_literal("x-name", "value")[:-2],
    }


@pytest.mark.parametrize("case", list(_encoder_errors(4096)))
def test_qpack_encoder_stream_error(server, case):
    """RFC 9204 3.2.2, 3.2.3, 4.3, 4.1.1: an invalid encoder stream
    instruction (capacity above the advertised maximum, a missing static
    or dynamic entry, an entry larger than the capacity) is
    QPACK_ENCODER_STREAM_ERROR. A stream that ends inside an instruction
    is closed, so H3_CLOSED_CRITICAL_STREAM is accepted there too."""
    async def body(c):
        settings = await c.server_settings(WAIT)
        data = _encoder_errors(settings.get(SETTINGS_QPACK_MAX_TABLE_CAPACITY, 0))[case]
        fin = case == "instruction-truncated-at-fin"
        c.uni(STREAM_QPACK_ENCODER, data, fin=fin)
        pc = await c.wait_close(WAIT)
        if fin and pc is not None and pc.error_code == H3_CLOSED_CRITICAL_STREAM:
            return
        await expect_connection_error(c, QPACK_ENCODER_STREAM_ERROR, f"encoder stream: {case}")
    on_connection(server, body)


@pytest.mark.parametrize("case", ["section-ack", "insert-count-increment", "increment-zero"])
def test_qpack_decoder_stream_error(server, case):
    """RFC 9204 4.4.1, 4.4.3: the client advertised no dynamic table, so
    the server never inserts; a Section Acknowledgment or an Insert Count
    Increment (and an increment of 0 in any case) is
    QPACK_DECODER_STREAM_ERROR."""
    async def body(c):
        r = await c.request("GET", "/hello", timeout=WAIT)  # stream 0 had a field section
        assert r.status == 200, r
        data = {"section-ack": dec_section_ack(r.stream_id),
                "insert-count-increment": dec_insert_count_increment(1),
                "increment-zero": dec_insert_count_increment(0)}[case]
        c.uni(STREAM_QPACK_DECODER, data)
        await expect_connection_error(c, QPACK_DECODER_STREAM_ERROR, f"decoder stream: {case}")
    on_connection(server, body)


async def _dynamic_setup(c: RawH3) -> tuple[int, int, int]:
    """Checks the server advertises the dynamic table it was told to, opens
    the encoder stream and sets the capacity; (encoder stream id, max
    capacity, blocked streams)."""
    s = await c.server_settings(WAIT)
    max_cap = s.get(SETTINGS_QPACK_MAX_TABLE_CAPACITY, 0)
    blocked = s.get(SETTINGS_QPACK_BLOCKED_STREAMS, 0)
    assert (max_cap, blocked) == (QPACK_CAPACITY, QPACK_BLOCKED), (
        f"server SETTINGS {s}: expected QPACK_MAX_TABLE_CAPACITY {QPACK_CAPACITY} and "
        f"QPACK_BLOCKED_STREAMS {QPACK_BLOCKED} from its command line")
    enc = c.uni(STREAM_QPACK_ENCODER, enc_set_capacity(max_cap))
    return enc, max_cap, blocked


async def _expect_section_ack(c: RawH3, sid: int) -> None:
    ok = await c.wait_until(lambda: ("ack", sid) in c.server.decoder_instructions(), WAIT * SLOW)
    assert ok, (f"no Section Acknowledgment for stream {sid} on the server's decoder stream "
                f"within {WAIT}s (RFC 9204 4.4.1); decoder stream: {c.server.decoder_instructions()}")


# The four inserts every dynamic-table test makes (absolute indexes 0..3).
def _inserts(path: str) -> bytes:
    return (enc_insert_static_name(STATIC_PATH_SLASH, path)  # 0  :path <path>
            + enc_insert_literal("x-dyn", "v1")  # 1  x-dyn v1
            + enc_duplicate(0)  # 2  x-dyn v1 (copy of 1)
            + enc_insert_dynamic_name(1, "v3"))  # 3  x-dyn v3 (name of 1: relative 1 after 3 inserts)


@pytest.mark.parametrize("variant", ["relative", "post-base", "trailers"])
def test_qpack_dynamic_table_request(qpack_server, variant):
    """RFC 9204 3.2, 4.3, 4.5: a request whose fields come from the dynamic
    table (indexed, name references; relative and post-base indexes;
    duplicates) is decoded; the server acknowledges the section on its
    decoder stream."""
    async def body(c):
        enc, max_cap, _ = await _dynamic_setup(c)
        c.send(enc, _inserts("/user/dyn?k=v"))
        ric = required_insert_count(4, max_cap)
        sid = c.bidi()
        if variant == "relative":  # Base 4: relative index = 3 - absolute
            sec = get_section(c.authority, fl_dynamic(3), fl_dynamic(0), fl_dynamic_name(2, "v9"),
                              prefix=section_prefix(ric, base=4, ric=4))
        elif variant == "post-base":  # Base 0: post-base index = absolute
            sec = get_section(c.authority, fl_post_base(0), fl_post_base(3),
                              fl_post_base_name(1, "v9"), prefix=section_prefix(ric, base=0, ric=4))
        if variant != "trailers":
            c.send(sid, frame(HEADERS, sec), fin=True)
            r = await c.response(sid, WAIT)
            assert c.peer_close is None and r.status == 200, f"{r} {c.peer_close}"
            assert r.body == b"user dyn query k=v\n", r
        else:  # Base 2: absolute 1 is relative 0, absolute 2 and 3 are post-base 0 and 1
            trailers = (section_prefix(ric, base=2, ric=4) + fl_dynamic(0) + fl_post_base(1)
                        + fl_post_base_name(0, "v4") + fl_literal("x-lit", "5"))
            c.send(sid, c.request_headers("POST", "/digest") + frame(DATA, b"abc")
                   + frame(HEADERS, trailers), fin=True)
            r = await c.response(sid, WAIT)
            assert c.peer_close is None and r.status == 200, f"{r} {c.peer_close}"
            assert r.body.endswith(b"length 3\ntrailer x-dyn: v1\ntrailer x-dyn: v3\n"
                                   b"trailer x-dyn: v4\ntrailer x-lit: 5\n"), r.body
        await _expect_section_ack(c, sid)
        await expect_usable(c, "after a dynamic-table request")
    on_connection(qpack_server, body)


def test_qpack_blocked_stream_unblocked(qpack_server):
    """RFC 9204 2.1.2, 2.2.1: HEADERS whose Required Insert Count is not
    reached yet waits (blocked stream) until the insert arrives on the
    encoder stream, then is decoded and acknowledged."""
    async def body(c):
        enc, max_cap, _ = await _dynamic_setup(c)
        await c.acked(enc)
        sid = c.bidi()
        sec = get_section(c.authority, fl_dynamic(0),
                          prefix=section_prefix(required_insert_count(1, max_cap), base=1, ric=1))
        c.send(sid, frame(HEADERS, sec), fin=True)
        await c.acked(sid)  # the server has the HEADERS; it cannot decode them yet
        await c.settle(0.2)
        assert c.peer_close is None, f"blocked HEADERS closed the connection: {c.peer_close}"
        early = c.proto.rx.get(sid)
        assert not early, f"response bytes before the insert arrived: {bytes(early)!r}"
        c.send(enc, enc_insert_static_name(STATIC_PATH_SLASH, "/user/late"))
        r = await c.response(sid, WAIT)
        assert c.peer_close is None and r.status == 200 and r.body == b"user late\n", (
            f"{r} {c.peer_close}")
        await _expect_section_ack(c, sid)
    on_connection(qpack_server, body)


def test_qpack_blocked_streams_limit(qpack_server):
    """RFC 9204 2.1.2: more blocked streams than QPACK_BLOCKED_STREAMS is
    QPACK_DECOMPRESSION_FAILED."""
    async def body(c):
        enc, max_cap, blocked = await _dynamic_setup(c)
        await c.acked(enc)
        sec = get_section(c.authority, fl_dynamic(0),
                          prefix=section_prefix(required_insert_count(1, max_cap), base=1, ric=1))
        for _ in range(blocked + 1):
            c.send(c.bidi(), frame(HEADERS, sec), fin=True)
        await expect_connection_error(c, QPACK_DECOMPRESSION_FAILED,
                                      f"{blocked + 1} blocked streams, limit {blocked}")
    on_connection(qpack_server, body)


def test_qpack_required_insert_count_too_large(qpack_server):
    """RFC 9204 4.5.1.1: an Encoded Required Insert Count the decoder could
    not have produced (above 2 * MaxEntries) is QPACK_DECOMPRESSION_FAILED."""
    async def body(c):
        _, max_cap, _ = await _dynamic_setup(c)
        full_range = 2 * (max_cap // 32)
        sid = c.bidi()
        sec = get_section(c.authority, fl_dynamic(0),
                          prefix=section_prefix(full_range + 1, base=1, ric=1))
        c.send(sid, frame(HEADERS, sec), fin=True)
        await expect_connection_error(c, QPACK_DECOMPRESSION_FAILED, "encoded RIC > 2*MaxEntries")
    on_connection(qpack_server, body)


# --------------------------------------------------------------------------
# the server's own streams (RFC 9114 6.2, RFC 9204 4.2)


def test_server_unidirectional_streams(server):
    """The server opens exactly one control stream starting with a valid
    SETTINGS frame, one QPACK encoder and one QPACK decoder stream, and no
    push stream; with the client's table capacity 0 its encoder stream
    carries no insert. (RFC 9204 4.2 lets an endpoint skip a QPACK stream
    it will not use; h3q opens both, as quiche's layer did.)"""
    async def body(c):
        srv = c.server
        def ready():
            return (srv.settings is not None and srv.streams_of_type(STREAM_QPACK_ENCODER)
                    and srv.streams_of_type(STREAM_QPACK_DECODER))
        await c.wait_until(ready, WAIT * SLOW)
        await expect_usable(c, "reading the server's streams")
        assert not srv.problems, srv.problems
        assert len(srv.streams_of_type(STREAM_CONTROL)) == 1, srv.types
        assert srv.control_frames and srv.control_frames[0][0] == SETTINGS, srv.control_frames
        ids = [k for k, _ in srv.settings or []]
        assert len(ids) == len(set(ids)), f"duplicate setting ids: {srv.settings}"
        assert not set(ids) & set(H2_ONLY_SETTINGS), f"HTTP/2 setting ids: {srv.settings}"
        assert len(srv.streams_of_type(STREAM_QPACK_ENCODER)) == 1, srv.types
        assert len(srv.streams_of_type(STREAM_QPACK_DECODER)) == 1, srv.types
        assert not srv.streams_of_type(STREAM_PUSH), srv.types
        assert set(srv.encoder) <= {0x20}, (
            f"server encoder stream has more than Set Dynamic Table Capacity 0: {bytes(srv.encoder)!r}")
        critical = [s for s, t in srv.types.items() if t in (0, 2, 3)]
        assert not [s for s in critical if s in srv.closed], srv.closed
    on_connection(server, body)


def test_server_sends_no_push(server):
    """Even when the client allows pushes (MAX_PUSH_ID), h3q does not push:
    no push stream and no PUSH_PROMISE frame."""
    async def body(c):
        c.control(frame(MAX_PUSH_ID, varint(16)))
        responses = [await c.request("GET", "/hello", timeout=WAIT) for _ in range(3)]
        await c.settle(0.2)
        for r in responses:
            assert r.status == 200 and PUSH_PROMISE not in r.frame_types, r
        assert not c.server.streams_of_type(STREAM_PUSH), c.server.types
        assert c.peer_close is None, c.peer_close
    on_connection(server, body)
