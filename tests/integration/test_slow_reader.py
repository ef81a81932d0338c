"""A client that stops reading for seconds: the server's memory stays bounded,
it keeps serving others meanwhile, and the transfer then completes verified."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from aioquic_client import H3Client, run
from harness import (CLIENT_BIN, RSS_LIMIT_KB, SANITIZED, RssSampler, pattern_sha256,
                     require_exe, sanitizer_env, sanitizer_reports, scaled)

SIZE = 64 * 1024 * 1024
STALL_AFTER = 1024 * 1024
STALL_MS = 3000


@pytest.mark.timeout(scaled(240))
def test_stalled_reader_bounded_memory(servers, tmp_path):
    s = servers.start()
    limit = RSS_LIMIT_KB + ((s.peak_rss_kb() or 0) if SANITIZED else 0)
    exe = require_exe(CLIENT_BIN, "h3q-client")
    cmd = [exe, "-k", "--json", "--verify-bytes", "-o", "/dev/null",
           "--timeout", str(int(scaled(110))), "--stall-after", str(STALL_AFTER), "--stall-ms", str(STALL_MS),
           s.url(f"/bytes/{SIZE}")]
    err_path = tmp_path / "client.stderr"
    t0 = time.monotonic()
    with RssSampler(s.pid, interval=0.02) as mem, open(err_path, "wb") as errf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL,
                                env=sanitizer_env())
        try:
            # While the client is stalled, the server must still answer others
            # promptly (its loop is not blocked on the stalled stream).
            time.sleep(1.0)
            assert proc.poll() is None, "client finished before the stall; test proves nothing"

            async def hello():
                async with H3Client.connect(s.host, s.port, timeout=scaled(5)) as c:
                    return await c.request("GET", "/hello", timeout=scaled(5))

            t1 = time.monotonic()
            r = run(hello(), scaled(10))
            during = time.monotonic() - t1
            assert (r.status, r.body) == (200, b"hello from h3q\n")
            rss_during = mem.max_rss_kb
            out, _ = proc.communicate(timeout=scaled(120))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    elapsed = time.monotonic() - t0
    stderr = err_path.read_text(errors="replace")
    desc = f"cmd: {' '.join(cmd)}\nexit {proc.returncode}\nstdout: {out[-2000:]!r}\nstderr: {stderr[-3000:]}"
    assert not sanitizer_reports(stderr), desc
    assert proc.returncode == 0, desc
    recs = [json.loads(line) for line in out.decode().splitlines()
            if line.startswith("{") and '"summary"' not in line]
    assert len(recs) == 1, desc
    rec = recs[0]
    assert rec["status"] == 200 and not rec.get("error"), desc
    assert rec["body_bytes"] == SIZE, desc
    assert rec["sha256"] == pattern_sha256(SIZE), desc
    assert elapsed >= STALL_MS / 1000.0, f"finished in {elapsed:.2f}s: the client did not stall"
    s.assert_alive()
    hwm = s.peak_rss_kb()
    print(f"stalled 64 MB download: {elapsed:.2f}s; /hello during stall {during*1000:.0f} ms; "
          f"server VmRSS during stall {rss_during} kB, VmHWM {hwm} kB")
    assert hwm is not None and hwm < limit, f"server VmHWM {hwm} kB >= {limit} kB with a stalled reader"
    assert during < scaled(2.0), f"/hello took {during:.2f}s while another client was stalled"


@pytest.mark.timeout(scaled(240))
def test_two_stalled_readers_and_normal_traffic(servers):
    """Two stalled 32 MB downloads on separate connections plus normal traffic;
    everything completes and memory stays bounded."""
    s = servers.start()
    limit = RSS_LIMIT_KB + ((s.peak_rss_kb() or 0) if SANITIZED else 0)
    exe = require_exe(CLIENT_BIN, "h3q-client")
    n = 32 * 1024 * 1024
    procs = []
    try:
        for stall_after in (512 * 1024, 4 * 1024 * 1024):
            cmd = [exe, "-k", "--json", "--verify-bytes", "-o", "/dev/null",
                   "--timeout", str(int(scaled(110))), "--stall-after", str(stall_after), "--stall-ms", "2500", s.url(f"/bytes/{n}")]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          stdin=subprocess.DEVNULL, env=sanitizer_env()))

        async def traffic():
            async with H3Client.connect(s.host, s.port) as c:
                for i in range(20):
                    r = await c.request("GET", f"/bytes/{100_000 + i}", store_body=False,
                                        check_pattern=True, timeout=scaled(10))
                    assert r.status == 200 and r.pattern_ok and r.body_len == 100_000 + i
        run(traffic(), scaled(60))
        for p in procs:
            out, err = p.communicate(timeout=scaled(120))
            assert p.returncode == 0, f"exit {p.returncode}\n{out[-2000:]!r}\n{err[-2000:]!r}"
            assert not sanitizer_reports(err.decode(errors="replace"))
            rec = json.loads(next(line for line in out.decode().splitlines()
                                  if line.startswith("{") and '"summary"' not in line))
            assert rec["status"] == 200 and rec["body_bytes"] == n, rec
            assert rec["sha256"] == pattern_sha256(n), rec
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    hwm = s.peak_rss_kb()
    print(f"two stalled readers: server VmHWM {hwm} kB")
    assert hwm is not None and hwm < limit, f"server VmHWM {hwm} kB >= {limit} kB"
