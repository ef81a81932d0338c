"""POST /echo streams the request body back unchanged.

The 100 MB check runs with h3q-client and with aioquic (both full size; the
aioquic upload streams from the file with a bounded send buffer)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from aioquic_client import H3Client, chunks_of_file, run
from harness import RssSampler, file_sha256, make_data_file, run_client, scaled

BIG = 100 * 1000 * 1000


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("echo")
    path = d / "upload.bin"
    sha = make_data_file(path, BIG, seed=20240601)
    yield path, sha
    path.unlink(missing_ok=True)


@pytest.mark.timeout(scaled(300))
def test_echo_100mb_h3q_client(server, big_file, tmp_path):
    path, sha = big_file
    out = tmp_path / "echoed.bin"
    with RssSampler(server.pid) as mem:
        res = run_client("-X", "POST", "--data-file", str(path), "-o", str(out),
                         server.url("/echo"), timeout=scaled(240))
    assert res.returncode == 0, res.describe()
    assert len(res.records) == 1, res.describe()
    rec = res.records[0]
    assert rec["status"] == 200 and not rec.get("error"), res.describe()
    assert rec["body_bytes"] == BIG, res.describe()
    assert out.stat().st_size == BIG
    assert file_sha256(out) == sha, "echoed body differs from what was sent"
    assert rec["sha256"] == sha, res.describe()
    out.unlink()
    print(f"h3q-client echo 100 MB: {res.elapsed:.2f}s, server VmHWM {mem.hwm_kb} kB")
    server.assert_alive()


@pytest.mark.timeout(scaled(300))
def test_echo_100mb_aioquic(server, big_file):
    path, sha = big_file

    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            return await c.request("POST", "/echo", body=chunks_of_file(str(path)),
                                   headers=[("content-type", "application/octet-stream")],
                                   store_body=False, hash_body=True, timeout=scaled(240))

    with RssSampler(server.pid) as mem:
        r = run(go(), scaled(260))
    assert r.status == 200 and r.complete, r
    assert r.body_len == BIG
    assert r.sha256 == sha, "echoed body differs from what was sent"
    print(f"aioquic echo 100 MB: {r.elapsed:.2f}s, server VmHWM {mem.hwm_kb} kB")


@pytest.mark.parametrize("size", [0, 1, 1199, 1200, 65535, 65536, 1_000_003])
def test_echo_sizes_aioquic(server, size):
    data = hashlib.shake_128(str(size).encode()).digest(size) if size else b""

    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            return await c.request("POST", "/echo", body=data, timeout=30)

    r = run(go(), 45)
    assert r.status == 200 and r.complete, r
    assert r.body == data


def test_echo_odd_chunks_and_content_length(server):
    """Body in DATA frames of odd sizes, with a content-length header."""
    data = hashlib.shake_256(b"odd").digest(300_000)
    sizes = [1, 2, 3, 1000, 7, 65536, 13, 100_000]

    def chunks():
        pos = 0
        i = 0
        while pos < len(data):
            n = sizes[i % len(sizes)]
            yield data[pos:pos + n]
            pos += n
            i += 1

    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            return await c.request("POST", "/echo", body=chunks(),
                                   headers=[("content-length", str(len(data)))], timeout=30)

    r = run(go(), 45)
    assert r.status == 200 and r.complete, r
    assert r.body == data


def test_echo_concurrent_on_one_connection(server):
    """20 uploads interleaved on one connection each come back on their own stream."""
    bodies = [hashlib.shake_128(bytes([i])).digest(200_000 + i * 997) for i in range(20)]

    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            return await asyncio.gather(*[c.request("POST", "/echo", body=b, timeout=60)
                                          for b in bodies])

    rs = run(go(), 90)
    for i, (b, r) in enumerate(zip(bodies, rs)):
        assert r.status == 200 and r.complete, (i, r)
        assert r.body == b, f"upload {i}: echoed body differs ({r.body_len} vs {len(b)} bytes)"


def test_echo_small_h3q_client(server, tmp_path):
    data = b"The quick brown fox\x00\xff\n" * 1000
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    res = run_client("-X", "POST", "--data-file", str(src), "-o", str(out), server.url("/echo"),
                     timeout=30)
    assert res.returncode == 0, res.describe()
    assert res.records[0]["status"] == 200, res.describe()
    assert out.read_bytes() == data
    assert res.records[0]["sha256"] == hashlib.sha256(data).hexdigest(), res.describe()

