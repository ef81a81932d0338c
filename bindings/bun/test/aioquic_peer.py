"""aioquic as an independent HTTP/3 client for the Bun package's tests.

    python aioquic_peer.py PORT trailers PATH   POST with request trailers;
                                                prints the response as JSON
    python aioquic_peer.py PORT wt PATH         a WebTransport session: 20
                                                datagrams, then closes it with
                                                code 7, reason "bye"; prints JSON
    python aioquic_peer.py PORT wtstreams PATH  WebTransport streams: 1 MiB on a
                                                bidirectional stream (echoed),
                                                a one-way stream (answered on
                                                one of the server's), a stream
                                                reset with code 7, and the
                                                server's own bidirectional
                                                stream (answered "pong")
Uses tests/integration/aioquic_client.py (PYTHONPATH set by the caller).
"""
import asyncio
import hashlib
import json
import os
import sys

from aioquic.buffer import encode_uint_var
from aioquic_client import H3Client, run

CLOSE_SESSION = 0x2843  # CLOSE_WEBTRANSPORT_SESSION capsule
DRAFT02 = [("sec-webtransport-http3-draft02", "1")]


async def trailers(port: int, path: str) -> dict:
    async with H3Client.connect("127.0.0.1", port) as c:
        sid = c.new_stream()
        c.send_headers(sid, [(":method", "POST"), (":scheme", "https"),
                             (":authority", f"127.0.0.1:{port}"), (":path", path),
                             ("te", "trailers")])
        c.send_data(sid, b"body bytes")
        c.send_headers(sid, [("x-checksum", "abc123"), ("x-count", "1")], end_stream=True)
        r = await c.wait_response(sid, timeout=20)
        return {"status": r.status, "body": r.body.decode(), "headers": r.headers,
                "trailers": r.trailers}


async def in_session(port: int, path: str, work) -> dict:
    """Opens a WebTransport session on path and, when it is accepted, runs
    work(client, session id, out); returns out (with the status)."""
    async with H3Client.connect("127.0.0.1", port, webtransport=True) as c:
        sid = c.wt_connect(path, headers=DRAFT02)
        head = await c.wait_headers(sid, 10)
        out: dict = {"status": head.status}
        if head.status == 200:
            await work(c, sid, out)
        return out


async def webtransport(c, sid: int, out: dict) -> None:
    sent = [f"dgram-{i}".encode() for i in range(20)]
    for d in sent:
        c.send_h3_datagram(sid, d)

    def echoes() -> list[str]:
        return [d.decode() for s, d in c.h3_datagrams if s == sid]

    await c.wait_until(lambda: len(echoes()) >= len(sent), 10)
    out["echoes"] = sorted(echoes())
    out["closed"] = await close_session(c, sid, 7, b"bye")


def wt_code_to_h3(code: int) -> int:
    """A WebTransport stream error code as an HTTP/3 code (the draft's
    mapping, which skips the reserved codepoints)."""
    return 0x52E4A40FA8DB + code + code // 0x1E


async def close_session(c, sid: int, code: int = 0, reason: bytes = b"") -> bool:
    """CLOSE_WEBTRANSPORT_SESSION with code and reason, then FIN; whether
    the server ended the CONNECT stream too."""
    value = code.to_bytes(4, "big") + reason
    c.send_data(sid, encode_uint_var(CLOSE_SESSION) + encode_uint_var(len(value)) + value,
                end_stream=True)
    return await c.wait_until(lambda: c.stream_done(sid), 10)


async def wt_streams(c, sid: int, out: dict) -> None:
    payload = os.urandom(1 << 20)
    echo = c.wt_open(sid, uni=False)
    for off in range(0, len(payload), 16384):
        c.wt_send(echo, payload[off:off + 16384])
    c.wt_send(echo, b"", end=True)
    uni = c.wt_open(sid, uni=True)
    c.wt_send(uni, b"uni hello", end=True)
    doomed = c.wt_open(sid, uni=False)
    c.wt_send(doomed, b"x" * 1000)
    # Reset once the server has the stream (it echoes): a reset that
    # overtakes the stream's first bytes may leave it unknown there.
    await c.wait_until(lambda: len(c.wt_streams[doomed].data) > 0, 10)
    c.reset_stream(doomed, wt_code_to_h3(7))

    def theirs(kind: int) -> list:  # 1: server bidi, 3: server one-way
        return [w for w in c.wt_streams.values()
                if w.session_id == sid and w.stream_id % 4 == kind]

    await c.wait_until(lambda: c.wt_streams[echo].ended and any(w.ended for w in theirs(3))
                       and theirs(1) and bytes(theirs(1)[0].data) == b"ping", 30)
    got = bytes(c.wt_streams[echo].data)
    out["echo_len"] = len(got)
    out["echo_ok"] = hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    out["uni"] = [bytes(w.data).decode() for w in theirs(3)]
    mine = theirs(1)[0] if theirs(1) else None
    out["server_bidi_first"] = bytes(mine.data).decode() if mine else None
    if mine:
        c.wt_send(mine.stream_id, b"pong", end=True)
        await c.wait_until(lambda: mine.ended, 10)
        out["server_bidi"] = bytes(mine.data).decode()
    await c.wait_until(lambda: any(s == sid for s, _ in c.h3_datagrams), 10)
    out["datagrams"] = [d.decode() for s, d in c.h3_datagrams if s == sid]
    out["closed"] = await close_session(c, sid)


def main() -> int:
    port, what, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if what == "trailers":
        print(json.dumps(run(trailers(port, path), timeout=30)))
        return 0
    if what == "wt":
        print(json.dumps(run(in_session(port, path, webtransport), timeout=30)))
        return 0
    if what == "wtstreams":
        print(json.dumps(run(in_session(port, path, wt_streams), timeout=60)))
        return 0
    print(f"unknown command {what}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
