"""Clients that give up mid-stream: cancelled uploads (RESET_STREAM) and
downloads (STOP_SENDING). The server must clean the stream up, keep the
connection and itself healthy, and not keep generating or buffering data."""

from __future__ import annotations

import asyncio
import time

import pytest

from aioquic_client import H3Client, H3ClientError, run
from harness import RSS_LIMIT_KB, SANITIZED, scaled

H3_REQUEST_CANCELLED = 0x10C


@pytest.mark.timeout(scaled(120))
def test_upload_reset_midway(server):
    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            sid = c.new_stream(store_body=False)
            c.send_headers(sid, c.request_headers("POST", "/echo"))
            await c.send_body(sid, b"x" * 5_000_000, end_stream=False, timeout=scaled(30))
            c.reset_stream(sid, H3_REQUEST_CANCELLED)
            c.stop_sending(sid, H3_REQUEST_CANCELLED)
            # the server answers STOP_SENDING with RESET_STREAM (RFC 9000 3.5)
            try:
                r = await c.wait_response(sid, timeout=scaled(10))
            except H3ClientError as e:
                pytest.fail(f"no RESET_STREAM/FIN from the server after cancelling: {e}")
            # the connection is still good
            h = await c.request("GET", "/hello", timeout=scaled(10))
            return r, h

    r, h = run(go(), scaled(60))
    assert r.reset_code is not None or r.complete, r
    assert (h.status, h.body) == (200, b"hello from h3q\n")
    server.assert_alive()


@pytest.mark.timeout(scaled(120))
def test_download_stop_sending(server):
    """STOP_SENDING on a 1 GB download: the server resets its side promptly
    instead of streaming the rest."""
    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            state = {"sid": None, "stopped_at": None}

            def on_data(_data: bytes) -> None:
                st = c.proto.streams.get(state["sid"])
                if state["stopped_at"] is None and st and st.resp.body_len >= 2_000_000:
                    state["stopped_at"] = time.monotonic()
                    c.stop_sending(state["sid"], H3_REQUEST_CANCELLED)

            sid = c.new_stream(store_body=False, hash_body=False, on_data=on_data)
            state["sid"] = sid
            c.send_headers(sid, c.request_headers("GET", "/bytes/1000000000"), end_stream=True)
            try:
                r = await c.wait_response(sid, timeout=scaled(20))
            except H3ClientError as e:
                pytest.fail(f"server kept the stream open after STOP_SENDING: {e}")
            h = await c.request("GET", "/hello", timeout=scaled(10))
            return r, h

    r, h = run(go(), scaled(60))
    assert r.reset_code is not None, f"expected RESET_STREAM from the server, got {r}"
    assert r.body_len < 200_000_000, f"server sent {r.body_len} bytes after STOP_SENDING"
    assert (h.status, h.body) == (200, b"hello from h3q\n")
    server.assert_alive()


@pytest.mark.timeout(scaled(180))
def test_many_cancelled_downloads_memory(servers):
    """50 large downloads cancelled right after their first bytes, then the
    connection closes: memory stays bounded and the server keeps serving."""
    s = servers.start()
    limit = RSS_LIMIT_KB + ((s.peak_rss_kb() or 0) if SANITIZED else 0)

    async def go():
        async with H3Client.connect(s.host, s.port) as c:
            sids = []
            for i in range(50):
                sid = c.new_stream(store_body=False, hash_body=False)
                c.send_headers(sid, c.request_headers("GET", f"/bytes/{100_000_000 + i}"),
                               end_stream=True)
                sids.append(sid)
            await asyncio.sleep(0.5)
            for sid in sids:
                c.stop_sending(sid, H3_REQUEST_CANCELLED)
            await asyncio.sleep(0.5)
        # abrupt: a fresh connection with streams in flight, closed without cancelling
        async with H3Client.connect(s.host, s.port) as c:
            for i in range(20):
                sid = c.new_stream(store_body=False, hash_body=False)
                c.send_headers(sid, c.request_headers("GET", "/bytes/50000000"), end_stream=True)
            await asyncio.sleep(0.5)
        async with H3Client.connect(s.host, s.port) as c:
            return await c.request("GET", "/hello", timeout=scaled(10))

    h = run(go(), scaled(90))
    assert (h.status, h.body) == (200, b"hello from h3q\n")
    s.assert_alive()
    hwm = s.peak_rss_kb()
    print(f"cancelled downloads: server VmHWM {hwm} kB")
    assert hwm is not None and hwm < limit, f"server VmHWM {hwm} kB >= {limit} kB"
