"""aioquic as an independent HTTP/3 client for the Bun package's tests.

    python aioquic_peer.py PORT trailers PATH   POST with request trailers;
                                                prints the response as JSON
    python aioquic_peer.py PORT wt PATH         a WebTransport session: 20
                                                datagrams, then closes it with
                                                code 7, reason "bye"; prints JSON
Uses tests/integration/aioquic_client.py (PYTHONPATH set by the caller).
"""
import asyncio
import json
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


async def webtransport(port: int, path: str) -> dict:
    async with H3Client.connect("127.0.0.1", port, webtransport=True) as c:
        sid = c.wt_connect(path, headers=DRAFT02)
        head = await c.wait_headers(sid, 10)
        out: dict = {"status": head.status}
        if head.status != 200:
            return out
        sent = [f"dgram-{i}".encode() for i in range(20)]
        for d in sent:
            c.send_h3_datagram(sid, d)

        def echoes() -> list[str]:
            return [d.decode() for s, d in c.h3_datagrams if s == sid]

        await c.wait_until(lambda: len(echoes()) >= len(sent), 10)
        out["echoes"] = sorted(echoes())
        reason = b"bye"
        value = (7).to_bytes(4, "big") + reason
        c.send_data(sid, encode_uint_var(CLOSE_SESSION) + encode_uint_var(len(value)) + value,
                    end_stream=True)
        out["closed"] = await c.wait_until(lambda: c.stream_done(sid), 10)
        return out


def main() -> int:
    port, what, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if what == "trailers":
        print(json.dumps(run(trailers(port, path), timeout=30)))
        return 0
    if what == "wt":
        print(json.dumps(run(webtransport(port, path), timeout=30)))
        return 0
    print(f"unknown command {what}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
