"""GET /bytes/1000000000 (1 GB): content verified, server peak RSS < 64 MB."""

from __future__ import annotations

import hashlib
import re

import pytest

from aioquic_client import H3Client, run
from harness import (RSS_LIMIT_KB, SANITIZED, RssSampler, pattern_bytes, pattern_sha256,
                     run_client, scaled)

GB = 1_000_000_000


def rss_limit_kb(server) -> int:
    """64 MB; under ASan the sanitizer's own baseline (shadow memory, runtime)
    measured right after start-up is added, since it is not h3q's buffering."""
    if not SANITIZED:
        return RSS_LIMIT_KB
    return RSS_LIMIT_KB + (server.peak_rss_kb() or 0)


def test_pattern_helpers_cross_check():
    """The Python-side expected SHA-256 agrees with a direct computation."""
    for n in (0, 1, 251, 252, 1_000_000, 3_333_333):
        assert pattern_sha256(n) == hashlib.sha256(pattern_bytes(0, n)).hexdigest()
    assert pattern_bytes(0, 3) == b"\x00\x01\x02"
    assert pattern_bytes(250, 3) == b"\xfa\x00\x01"


@pytest.fixture
def fresh_server(servers):
    """A server of our own, so VmHWM reflects only this test's transfer."""
    return servers.start()


@pytest.mark.timeout(scaled(300))
def test_download_1gb_h3q_client(fresh_server):
    s = fresh_server
    limit = rss_limit_kb(s)
    expected_sha = pattern_sha256(GB)  # ~1-2 s, computed in Python
    with RssSampler(s.pid, interval=0.02) as mem:
        res = run_client("--verify-bytes", "-o", "/dev/null", s.url(f"/bytes/{GB}"),
                         timeout=scaled(240))
    s.assert_alive()
    hwm = s.peak_rss_kb()
    assert res.returncode == 0, res.describe()
    assert len(res.records) == 1, res.describe()
    rec = res.records[0]
    assert rec["status"] == 200 and not rec.get("error"), res.describe()
    assert rec["body_bytes"] == GB, res.describe()
    assert rec["sha256"] == expected_sha, res.describe()
    mbit = GB * 8 / res.elapsed / 1e6
    print(f"1 GB via h3q-client: {res.elapsed:.2f}s ({mbit:.0f} Mbit/s), "
          f"server VmHWM {hwm} kB, max sampled VmRSS {mem.max_rss_kb} kB ({mem.samples} samples)")
    assert hwm is not None and hwm < limit, \
        f"server peak RSS (VmHWM) {hwm} kB >= limit {limit} kB while serving 1 GB"


def test_download_exact_bytes_h3q_client(server, tmp_path):
    """A body written with -o is byte-for-byte the pattern (cross-checks
    --verify-bytes and the client's sha256 against Python)."""
    n = 4_000_037
    out = tmp_path / "b.bin"
    res = run_client("-o", str(out), server.url(f"/bytes/{n}"), timeout=60)
    assert res.returncode == 0, res.describe()
    rec = res.records[0]
    assert rec["status"] == 200 and rec["body_bytes"] == n, res.describe()
    data = out.read_bytes()
    assert len(data) == n
    assert data == pattern_bytes(0, n), "downloaded bytes differ from the i % 251 pattern"
    assert rec["sha256"] == hashlib.sha256(data).hexdigest(), res.describe()


def test_verify_bytes_detects_mismatch(server):
    """--verify-bytes must fail on content that is not the pattern (/hello)."""
    res = run_client("--verify-bytes", "-o", "/dev/null", server.url("/hello"), timeout=30)
    assert res.returncode != 0, "h3q-client --verify-bytes accepted a body that is not the pattern\n" \
        + res.describe()


def test_download_aioquic(server):
    n = 20_000_000

    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            return await c.request("GET", f"/bytes/{n}", store_body=False, check_pattern=True,
                                   timeout=scaled(60))

    r = run(go(), scaled(90))
    assert r.status == 200 and r.complete, r
    assert r.header("content-length") == str(n)
    assert r.body_len == n
    assert r.pattern_ok, f"pattern mismatch at offset {r.pattern_mismatch_at}"
    assert r.sha256 == pattern_sha256(n)


@pytest.mark.timeout(scaled(180))
def test_download_paced_bbr2(servers):
    """quiche paces only with BBRv2: its packets carry release times and the
    server holds them on a timer. A paced download must complete, intact
    (a pace timer that never fired would stall it)."""
    s = servers.start("--cc", "bbr2")
    n = 50_000_000
    res = run_client("--verify-bytes", "-o", "/dev/null", s.url(f"/bytes/{n}"),
                     timeout=scaled(120))
    s.assert_alive()
    assert res.returncode == 0, res.describe()
    rec = res.records[0]
    assert rec["status"] == 200 and rec["body_bytes"] == n, res.describe()
    assert rec["sha256"] == pattern_sha256(n), res.describe()


def test_closed_connection_logs_transport_counters(servers):
    """At debug level a closing connection logs quiche's counters (what
    bench/cpu_cost.py's readers look at when a download is slow): packets
    and bytes sent cover the body, nothing is lost on loopback."""
    n = 5_000_000
    s = servers.start("--log-level", "debug")
    res = run_client("-o", "/dev/null", s.url(f"/bytes/{n}"), timeout=60)
    assert res.returncode == 0, res.describe()
    assert s.stop() == []
    lines = [ln for ln in s.stderr_text().splitlines() if ": closed: packets sent" in ln]
    assert len(lines) == 1, s.stderr_text()[-3000:]
    m = re.search(r"packets sent (\d+), received (\d+), lost (\d+), retransmitted (\d+), "
                  r"PTOs (\d+); bytes sent (\d+); blocked by flow control (\d+) \(connection\), "
                  r"(\d+) \(streams\); cwnd (\d+), slow start exit cwnd (\d+); "
                  r"rtt (\d+) us \(min (\d+)\)", lines[0])
    assert m, lines[0]
    sent, received, _lost, _retrans, _ptos, bytes_sent = map(int, m.groups()[:6])
    cwnd = int(m.group(9))
    assert bytes_sent >= n and sent >= n // 1350, lines[0]
    assert received > 0 and cwnd > 0, lines[0]
