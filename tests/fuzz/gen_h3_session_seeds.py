#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_h3_session (tests/fuzz/corpus/h3_session).
The input format is described at the top of fuzz_h3_session.c; these seeds
are well-formed client sessions (and a few classic mistakes) for the fuzzer
to mutate. Run it again after changing the format."""
from pathlib import Path

OUT = Path(__file__).resolve().parent / "corpus" / "h3_session"
UNI = {2: 0, 6: 1, 10: 2, 14: 3}  # client uni stream id -> slot


def slot(stream_id: int) -> int:
    return UNI[stream_id] if stream_id & 3 == 2 else 4 + stream_id // 4


def varint(v: int) -> bytes:
    if v < 64:
        return bytes([v])
    if v < 16384:
        return (v | 0x4000).to_bytes(2, "big")
    return (v | 0x80000000).to_bytes(4, "big")


def frame(ftype: int, payload: bytes) -> bytes:
    return varint(ftype) + varint(len(payload)) + payload


def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
    op = slot(stream_id) | (0x10 if fin else 0)
    if len(payload) < 256:
        return bytes([op, len(payload)]) + payload
    return bytes([0x20 | op]) + len(payload).to_bytes(2, "big") + payload


def reset(stream_id: int, code: int) -> bytes:
    return bytes([0x40 | slot(stream_id), code])


def stop(stream_id: int, code: int) -> bytes:
    return bytes([0x60 | slot(stream_id), code])


def capacity(c: int) -> bytes:
    return bytes([0x80, c])


def wait(units_50ms: int) -> bytes:
    return bytes([0xA0, units_50ms])


GOAWAY = bytes([0xC0])
EARLY_ON = bytes([0xF0])


def literal(name_index: int, value: bytes) -> bytes:
    # Literal field line with a static name reference (RFC 9204 4.5.4).
    return bytes([0x50 | name_index]) + bytes([len(value)]) + value


def request(method_idx: int = 17, path: bytes = b"/", extra: bytes = b"") -> bytes:
    # Required Insert Count 0, base 0; :method, :scheme https, :authority, :path.
    fields = bytes([0xC0 | method_idx, 0xC0 | 23]) + literal(0, b"localhost")
    fields += bytes([0xC1]) if path == b"/" else literal(1, path)
    return frame(1, b"\x00\x00" + fields + extra)


SETTINGS = frame(4, varint(1) + varint(4096) + varint(7) + varint(16))
CONTROL = b"\x00" + SETTINGS
POST = 20  # static index of :method POST
# Encoder stream: type, Set Dynamic Table Capacity 4096, Insert With Name
# Reference (static 5, cookie) "hello".
ENCODER_INSERT = b"\x02\x3f\xe1\x1f" + b"\xc5\x05hello"
# Required Insert Count 1 (encoded 2), Base 1; the dynamic entry 0 last.
DYNAMIC_REQUEST = frame(1, b"\x02\x00" + bytes([0xD1, 0xD7, 0xC1]) + literal(0, b"localhost") + b"\x80")

seeds = {
    "one_get": data(2, CONTROL) + data(0, request(), fin=True),
    "four_handlers": data(2, CONTROL)
    + data(0, request(), True)
    + data(4, request(POST, b"/echo") + frame(0, b"x" * 300) + frame(0, b"y" * 20), True)
    + data(8, request(path=b"/stream"), True)
    + data(12, request(path=b"/never"), True),
    "qpack_dynamic": data(2, CONTROL)
    + data(6, ENCODER_INSERT)
    + data(10, b"\x03")
    + data(0, DYNAMIC_REQUEST, True),
    "blocked_then_insert": data(2, CONTROL)
    + data(0, DYNAMIC_REQUEST, True)
    + data(6, ENCODER_INSERT),
    "reset_and_stop": data(2, CONTROL) + capacity(1)
    + data(8, request(path=b"/stream"), True) + stop(8, 0x0C)
    + data(4, request(POST) + frame(0, b"abc")) + reset(4, 0x0C)
    + data(0, request()) + capacity(255) + data(0, b"", True),
    "goaway_drain": data(2, CONTROL) + data(12, request(), True) + GOAWAY + wait(120)
    + data(16, request(), True),
    "header_timeout": data(2, CONTROL) + data(0, request()[:5]) + wait(255) + wait(255),
    "early_data": EARLY_ON + data(0, request(POST) + frame(0, b"0rtt"), True) + data(2, CONTROL),
    "priority_update": data(2, CONTROL + frame(0xF0700, varint(0) + b"u=1, i"))
    + data(0, request(), True),
    "bad_data_on_control": data(2, CONTROL + frame(0, b"nope")),
    "missing_settings": data(2, b"\x00" + frame(7, varint(0))),
    "critical_closed": data(2, CONTROL, True),
    "unknown_uni_and_frames": data(2, CONTROL) + data(14, b"\x21" + b"junk")
    + data(0, frame(0x21, b"") + request() + frame(0x2F, b"zz"), True),
    "trailers": data(2, CONTROL)
    + data(4, request(POST) + frame(0, b"body") + frame(1, b"\x00\x00" + literal(5, b"t")), True),
    "big_body": data(2, CONTROL) + data(4, request(POST) + frame(0, b"z" * 3000), True),
}

OUT.mkdir(parents=True, exist_ok=True)
for name, blob in seeds.items():
    (OUT / name).write_bytes(blob)
print(f"{len(seeds)} seeds in {OUT}")
