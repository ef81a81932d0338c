"""aioquic as an independent HTTP/3 client for the Bun package's tests.

    python aioquic_peer.py PORT trailers PATH   POST with request trailers;
                                                prints the response as JSON
Uses tests/integration/aioquic_client.py (PYTHONPATH set by the caller).
"""
import asyncio
import json
import sys

from aioquic_client import H3Client, run


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


def main() -> int:
    port, what, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if what == "trailers":
        print(json.dumps(run(trailers(port, path), timeout=30)))
        return 0
    print(f"unknown command {what}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
