"""QPACK interop: h3q's codec (driven through tests/tools/qpack_tool) against
ls-qpack (pylsqpack), an independent implementation.

- ls-qpack's encoder, with a dynamic table and blocked streams allowed,
  encodes realistic and random header lists; h3q decodes them (sections may
  arrive before the encoder-stream bytes they need) and must return the
  same fields. h3q's decoder instructions (Insert Count Increment, Section
  Acknowledgment, Stream Cancellation) go back to ls-qpack's encoder, which
  rejects anything malformed or unexpected.
- h3q's encoder output is decoded by ls-qpack's decoder.
- The field-section size limit (RFC 9114 section 4.2.2) is checked at its
  exact boundary.
Everything is seeded, so a failure reproduces."""

from __future__ import annotations

import random
import subprocess

import pylsqpack
import pytest

from harness import BUILD_DIR, require_exe, sanitizer_env, sanitizer_reports

TOOL = BUILD_DIR / "tests" / "qpack_tool"
SEED = 20261128
ENTRY_OVERHEAD = 32

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_"
HOSTS = [b"example.com", b"www.example.org", b"api.h3q.test", b"127.0.0.1:4433"]
AGENTS = [
    b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/156.0.0.0 Safari/537.36",
    b"curl/8.11.0",
    b"h3q-client/0.1",
]
CONTENT_TYPES = [b"text/html; charset=utf-8", b"application/json", b"image/png",
                 b"text/plain", b"application/octet-stream", b"video/mp4"]
STATUSES = [b"200", b"204", b"206", b"301", b"304", b"404", b"500", b"503", b"418"]


class Tool:
    """qpack_tool as a child process speaking its line protocol."""

    def __init__(self, stderr_path):
        self.stderr = open(stderr_path, "w+b")
        self.proc = subprocess.Popen(
            [require_exe(TOOL, "qpack_tool")], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, env=sanitizer_env(),
            text=True, bufsize=1)

    def cmd(self, line: str) -> list[str]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = []
        while True:
            reply = self.proc.stdout.readline()
            assert reply, f"qpack_tool exited during {line[:80]!r}"
            reply = reply.rstrip("\n")
            if reply == "end":
                break
            out.append(reply)
        assert out != ["bad"], f"qpack_tool rejected {line[:80]!r}"
        return out

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        rc = self.proc.wait(timeout=60)
        self.stderr.seek(0)
        err = self.stderr.read().decode(errors="replace")
        self.stderr.close()
        assert not sanitizer_reports(err), err
        assert rc == 0, f"qpack_tool exit {rc}: {err}"

    # Helpers over the protocol.

    def decoder(self, capacity: int, blocked: int) -> None:
        assert self.cmd(f"decoder {capacity} {blocked}") == ["ok"]

    def enc(self, data: bytes) -> str:
        (reply,) = self.cmd(f"enc {data.hex()}")
        return reply

    def section(self, stream_id: int, data: bytes, limit: int = 1 << 30):
        """Returns (result, fields)."""
        lines = self.cmd(f"section {stream_id} {limit} {data.hex()}")
        fields = []
        for ln in lines[:-1]:
            kind, name, value = (ln.split(" ") + [""])[:3]
            assert kind == "field", ln
            fields.append((bytes.fromhex(name), bytes.fromhex(value)))
        assert lines[-1].startswith("result "), lines
        return lines[-1][len("result "):], fields

    def instructions(self) -> bytes:
        (reply,) = self.cmd("instr")
        assert reply.startswith("instr")
        return bytes.fromhex(reply[len("instr"):].strip())

    def cancel(self, stream_id: int) -> None:
        assert self.cmd(f"cancel {stream_id}") == ["ok"]

    def encode(self, headers) -> bytes:
        pairs = " ".join(f"{n.hex()}:{v.hex()}" for n, v in headers)
        (reply,) = self.cmd(f"encode {pairs}")
        assert reply.startswith("block ")
        return bytes.fromhex(reply[len("block "):])


@pytest.fixture
def tool(tmp_path):
    t = Tool(tmp_path / "qpack_tool.stderr")
    yield t
    t.close()


# ---------------------------------------------------------------------------
# Header lists


def _token(rng: random.Random, lo: int, hi: int) -> bytes:
    return "".join(rng.choice(TOKEN_CHARS) for _ in range(rng.randint(lo, hi))).encode()


def _value(rng: random.Random, n: int) -> bytes:
    kind = rng.random()
    if kind < 0.6:  # printable ASCII
        return bytes(rng.randint(0x20, 0x7E) for _ in range(n))
    if kind < 0.8:  # any byte: exercises the long Huffman codes
        return bytes(rng.randint(0, 255) for _ in range(n))
    return rng.choice([b"0123456789", b"abcdef", b"=/+"]) * (n // 6 + 1)


def _request(rng: random.Random) -> list[tuple[bytes, bytes]]:
    h = [(b":method", rng.choice([b"GET", b"POST", b"HEAD", b"PUT"])),
         (b":scheme", b"https"),
         (b":authority", rng.choice(HOSTS)),
         (b":path", b"/api/v1/items/%d?q=%s" % (rng.randint(0, 50), _token(rng, 0, 12))),
         (b"user-agent", rng.choice(AGENTS)),
         (b"accept", rng.choice([b"*/*", b"text/html,application/xhtml+xml", b"application/json"])),
         (b"accept-encoding", b"gzip, deflate, br")]
    if rng.random() < 0.5:
        h.append((b"cookie", b"session=" + _token(rng, 16, 64)))
    if rng.random() < 0.3:
        h.append((b"x-request-id", bytes(rng.getrandbits(8) for _ in range(16)).hex().encode()))
    return h


def _response(rng: random.Random) -> list[tuple[bytes, bytes]]:
    h = [(b":status", rng.choice(STATUSES)),
         (b"content-type", rng.choice(CONTENT_TYPES)),
         (b"content-length", str(rng.randint(0, 10**9)).encode()),
         (b"server", b"h3q"),
         (b"date", b"Sat, 28 Nov 2026 12:%02d:%02d GMT" % (rng.randint(0, 59), rng.randint(0, 59)))]
    if rng.random() < 0.4:
        h.append((b"cache-control", rng.choice([b"no-cache", b"max-age=604800", b"private, max-age=60"])))
    if rng.random() < 0.3:
        h.append((b"set-cookie", b"id=" + _token(rng, 8, 40) + b"; Path=/; Secure"))
    if rng.random() < 0.3:
        h.append((b"etag", b'"' + _token(rng, 8, 20) + b'"'))
    return h


def _random(rng: random.Random) -> list[tuple[bytes, bytes]]:
    h = []
    for _ in range(rng.randint(0, 12)):
        name = _token(rng, 1, 30)
        h.append((name, _value(rng, rng.choice([0, 1, 5, 20, 100, 300]))))
    return h


def _large(rng: random.Random) -> list[tuple[bytes, bytes]]:
    # Some fit the dynamic table, some are larger than any table here.
    return [(b":status", b"200"),
            (b"x-large", _value(rng, rng.choice([1000, 3000, 5000, 20000]))),
            (b"x-" + _token(rng, 1, 10), _value(rng, 200))]


def header_lists(seed: int, count: int):
    rng = random.Random(seed)
    makers = [_request, _request, _response, _response, _random, _large]
    return [rng.choice(makers)(rng) for _ in range(count)]


def section_size(headers) -> int:
    return sum(len(n) + len(v) + ENTRY_OVERHEAD for n, v in headers)


# ---------------------------------------------------------------------------
# ls-qpack encodes, h3q decodes


def _feed_back(tool: Tool, encoder: pylsqpack.Encoder) -> bytes:
    """Our decoder instructions go to ls-qpack's encoder (which raises
    DecoderStreamError for anything invalid)."""
    instr = tool.instructions()
    if instr:
        encoder.feed_decoder(instr)
    return instr


@pytest.mark.parametrize("capacity,blocked", [(4096, 16), (256, 16), (65536, 100), (4096, 0)])
def test_lsqpack_encoder_to_h3q_decoder(tool, capacity, blocked):
    rng = random.Random(SEED + capacity + blocked)
    encoder = pylsqpack.Encoder()
    tool.decoder(capacity, blocked)
    settings = encoder.apply_settings(max_table_capacity=capacity, blocked_streams=blocked)
    assert tool.enc(settings) == "ok"

    lists = header_lists(SEED + capacity, 600)
    stats = {"encoder_bytes": 0, "blocked": 0, "cancelled": 0, "dynamic": 0}
    stream_id = 0
    i = 0
    while i < len(lists):
        # A batch of sections sent before the encoder-stream bytes they need
        # (as if those packets were late), then the encoder stream.
        batch = lists[i:i + rng.choice([1, 1, 2, 4, 8])]
        i += len(batch)
        held = b""
        pending = []
        for headers in batch:
            enc_data, block = encoder.encode(stream_id, headers)
            held += enc_data
            stats["encoder_bytes"] += len(enc_data)
            if block[:1] != b"\x00":
                stats["dynamic"] += 1
            result, fields = tool.section(stream_id, block)
            if result == "blocked":
                stats["blocked"] += 1
                pending.append((stream_id, block, headers))
            else:
                assert result == "done", (result, headers)
                assert fields == headers
            stream_id += 4
        # Occasionally a blocked stream is reset instead of resumed.
        if pending and rng.random() < 0.1:
            sid, _, _ = pending.pop()
            tool.cancel(sid)
            stats["cancelled"] += 1
        assert tool.enc(held) == "ok"
        for sid, block, headers in pending:
            result, fields = tool.section(sid, block)
            assert result == "done", (result, sid)
            assert fields == headers
        _feed_back(tool, encoder)

    assert stats["dynamic"] > 0 and stats["encoder_bytes"] > 0, stats
    if blocked:
        assert stats["blocked"] > 0, stats
    else:
        assert stats["blocked"] == 0, stats


def test_lsqpack_encoder_byte_by_byte_encoder_stream(tool):
    """Encoder-stream data cut at every byte boundary."""
    encoder = pylsqpack.Encoder()
    tool.decoder(4096, 16)
    settings = encoder.apply_settings(max_table_capacity=4096, blocked_streams=16)
    for b in settings:
        assert tool.enc(bytes([b])) == "ok"
    for n, headers in enumerate(header_lists(SEED + 1, 60)):
        enc_data, block = encoder.encode(4 * n, headers)
        for k in range(len(enc_data)):
            assert tool.enc(enc_data[k:k + 1]) == "ok"
        result, fields = tool.section(4 * n, block)
        assert result == "done" and fields == headers
        _feed_back(tool, encoder)


# ---------------------------------------------------------------------------
# h3q encodes, ls-qpack decodes


def test_h3q_encoder_to_lsqpack_decoder(tool):
    decoder = pylsqpack.Decoder(4096, 16)
    lists = header_lists(SEED + 7, 600)
    # Every static-table entry once, and each name with another value.
    rng = random.Random(SEED)
    lists += [[(n, v), (n, _value(rng, 10))] for n, v in _static_entries()]
    for n, headers in enumerate(lists):
        block = tool.encode(headers)
        if not headers:
            # ls-qpack's decoder rejects an empty section (its own encoder
            # writes one: 0000); h3q decodes it, see the ls-qpack test.
            assert block == b"\x00\x00"
            continue
        control, fields = decoder.feed_header(4 * n, block)
        assert control == b""  # no dynamic references, nothing to acknowledge
        assert fields == headers


def _static_entries():
    # Recovered from ls-qpack's encoder: with no dynamic table, an exact
    # static match is a one- or two-byte indexed field line (0b11xxxxxx).
    probe = pylsqpack.Encoder()
    found = []
    for n, v in STATIC_PROBES:
        _, block = probe.encode(0, [(n, v)])
        if block[2] & 0xC0 == 0xC0:
            found.append((n, v))
    return found


STATIC_PROBES = [
    (b":authority", b""), (b":path", b"/"), (b"age", b"0"), (b"content-length", b"0"),
    (b":method", b"GET"), (b":method", b"CONNECT"), (b":scheme", b"https"),
    (b":status", b"200"), (b":status", b"425"), (b"accept", b"*/*"),
    (b"content-type", b"text/plain;charset=utf-8"),
    (b"strict-transport-security", b"max-age=31536000; includesubdomains; preload"),
    (b"content-security-policy", b"script-src 'none'; object-src 'none'; base-uri 'none'"),
    (b"x-frame-options", b"sameorigin"), (b"access-control-allow-credentials", b"FALSE"),
]


def test_h3q_encoder_matches_lsqpack_bytes_for_static_matches(tool):
    """For fields with an exact static match both encoders must produce
    the same indexed field line."""
    probe = pylsqpack.Encoder()
    for n, v in STATIC_PROBES:
        _, theirs = probe.encode(0, [(n, v)])
        assert tool.encode([(n, v)]) == theirs, (n, v)


# ---------------------------------------------------------------------------
# Section size limit


def test_section_size_limit_boundary(tool):
    encoder = pylsqpack.Encoder()  # no dynamic table: no acknowledgments
    tool.decoder(0, 0)
    for n, headers in enumerate(header_lists(SEED + 3, 300)):
        if not headers:
            continue
        _, block = encoder.encode(4 * n, headers)
        size = section_size(headers)
        result, fields = tool.section(4 * n, block, limit=size)
        assert result == "done" and fields == headers
        result, fields = tool.section(4 * n, block, limit=size - 1)
        assert result == "too_large"
        assert fields == headers[:len(fields)] and len(fields) < len(headers)
