"""100 concurrent streams on one connection; 20 connections at once.
Every body is verified (length + SHA-256 of the /bytes pattern, or exact)."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter

import pytest

from aioquic_client import H3Client, run
from harness import pattern_sha256, run_client, scaled


def sizes(count: int, seed: int) -> list[int]:
    # distinct sizes from 0 to ~1.2 MB, so responses end at different times
    return [(i * 7919 + seed * 104729) % 1_200_000 + i for i in range(count)]


def check_bytes_records(res, urls_to_n: dict[str, int], expect: int):
    assert res.returncode == 0, res.describe()
    assert len(res.records) == expect, f"{len(res.records)} records, expected {expect}\n" \
        + res.describe()
    for rec in res.records:
        n = urls_to_n[rec["url"]]
        assert not rec.get("error"), rec
        assert rec["status"] == 200, rec
        assert rec["body_bytes"] == n, rec
        assert rec["sha256"] == pattern_sha256(n), f"bad body for {rec['url']}: {rec}"
    if res.summary is not None:
        assert res.summary["ok"] == expect and res.summary["failed"] == 0, res.summary


@pytest.mark.timeout(scaled(180))
def test_100_streams_one_connection_h3q_client(server):
    ns = sizes(100, 1)
    urls = [server.url(f"/bytes/{n}") for n in ns]
    res = run_client("-c", "1", "-p", "100", "--verify-bytes", "-o", "/dev/null", *urls,
                     timeout=scaled(120))
    check_bytes_records(res, dict(zip(urls, ns)), 100)
    conns = {rec["conn"] for rec in res.records}
    assert len(conns) == 1, f"expected one connection, got {conns}"
    sids = [rec["stream_id"] for rec in res.records]
    assert len(set(sids)) == 100, f"stream ids not distinct: {Counter(sids).most_common(3)}"
    assert all(s % 4 == 0 for s in sids), "request streams must be client-initiated bidi"
    print(f"100 streams on one connection: {res.elapsed:.2f}s")
    server.assert_alive()


@pytest.mark.timeout(scaled(180))
def test_100_streams_one_connection_aioquic(server):
    ns = sizes(100, 2)
    echo_bodies = {i: hashlib.shake_128(b"e%d" % i).digest(50_000 + i) for i in range(0, 100, 10)}

    async def one(c, i):
        if i in echo_bodies:
            return await c.request("POST", "/echo", body=echo_bodies[i], timeout=scaled(90))
        return await c.request("GET", f"/bytes/{ns[i]}", store_body=False, check_pattern=True,
                               timeout=scaled(90))

    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            return await asyncio.gather(*[one(c, i) for i in range(100)])

    rs = run(go(), scaled(120))
    assert len({r.stream_id for r in rs}) == 100
    for i, r in enumerate(rs):
        assert r.status == 200 and r.complete, (i, r)
        if i in echo_bodies:
            assert r.body == echo_bodies[i], f"echo {i} differs"
        else:
            assert r.body_len == ns[i], (i, r.body_len, ns[i])
            assert r.pattern_ok, f"/bytes/{ns[i]}: mismatch at {r.pattern_mismatch_at}"
            assert r.sha256 == pattern_sha256(ns[i])


@pytest.mark.timeout(scaled(180))
def test_20_connections_h3q_client(server):
    ns = sizes(5, 3)
    urls = [server.url(f"/bytes/{n}") for n in ns]
    # 5 URLs x 20 repeats = 100 requests spread over 20 connections
    res = run_client("-c", "20", "-p", "5", "-n", "20", "--verify-bytes", "-o", "/dev/null",
                     *urls, timeout=scaled(120))
    check_bytes_records(res, dict(zip(urls, ns)), 100)
    per_conn = Counter(rec["conn"] for rec in res.records)
    assert len(per_conn) == 20, f"expected 20 connections, got {len(per_conn)}: {per_conn}"
    print(f"20 connections x 5 requests: {res.elapsed:.2f}s, per conn {sorted(per_conn.values())}")
    server.assert_alive()


@pytest.mark.timeout(scaled(180))
def test_20_connections_aioquic(server):
    async def conn_work(k: int):
        async with H3Client.connect(server.host, server.port, timeout=scaled(15)) as c:
            body = hashlib.shake_128(b"c%d" % k).digest(30_000 + k)
            n = 100_000 + k * 12_345
            return await asyncio.gather(
                c.request("GET", "/hello", timeout=scaled(60)),
                c.request("GET", f"/user/{k}?conn={k}", timeout=scaled(60)),
                c.request("GET", f"/bytes/{n}", store_body=False, check_pattern=True,
                          timeout=scaled(60)),
                c.request("POST", "/echo", body=body, timeout=scaled(60)),
                c.request("GET", "/nope", timeout=scaled(60)),
            ), n, body

    async def go():
        return await asyncio.gather(*[conn_work(k) for k in range(20)])

    results = run(go(), scaled(150))
    assert len(results) == 20
    for k, ((hello, user, by, echo, nope), n, body) in enumerate(results):
        assert (hello.status, hello.body) == (200, b"hello from h3q\n"), (k, hello)
        assert (user.status, user.body) == (200, f"user {k} query conn={k}\n".encode()), (k, user)
        assert by.status == 200 and by.body_len == n and by.pattern_ok, (k, by)
        assert echo.status == 200 and echo.body == body, (k, echo.status, echo.body_len)
        assert nope.status == 404, (k, nope)


@pytest.mark.timeout(scaled(240))
def test_20_connections_larger_bodies(server):
    """20 connections x 5 streams of 2 MB each, every body verified."""
    n = 2_000_000
    url = server.url(f"/bytes/{n}")
    res = run_client("-c", "20", "-p", "5", "-n", "100", "--verify-bytes", "-o", "/dev/null", url,
                     timeout=scaled(180))
    check_bytes_records(res, {url: n}, 100)
    assert len({rec["conn"] for rec in res.records}) == 20, res.describe()
    print(f"20x5 x 2 MB: {res.elapsed:.2f}s, server VmHWM {server.peak_rss_kb()} kB")
    server.assert_alive()
