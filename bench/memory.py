#!/usr/bin/env python3
"""Memory per connection and per stream of h3q-server (bench/, not a test).

Starts h3q-server on loopback, then with aioquic (the project venv):
  1. opens N connections that each complete one GET /hello and stay open;
  2. on one more connection, opens S request streams that each send a
     partial upload (POST /digest, whose handler keeps only a SHA-256
     state, 1 KB, no FIN) and stay open.
The server's resident memory (VmRSS from /proc) is read before and after
each step; the difference divided by N (or S) is the cost of one idle
connection (or one open request stream). Median of --runs fresh servers.

  bench/memory.py [--build DIR] [--connections N] [--streams S] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from aioquic_client import H3Client  # noqa: E402


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start_server(build: Path, certdir: Path, port: int, max_streams: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(build / "h3q-server"), "--addr", "127.0.0.1", "--port", str(port),
         "--cert", str(certdir / "cert.pem"), "--key", str(certdir / "key.pem"),
         "--max-streams", str(max_streams), "--idle-timeout", "120000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc


async def settle(pid: int) -> int:
    await asyncio.sleep(0.5)
    return rss_kb(pid)


async def measure(pid: int, port: int, n_conns: int, n_streams: int) -> tuple[float, float]:
    base = await settle(pid)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(n_conns):
            c = await stack.enter_async_context(
                H3Client.connect("127.0.0.1", port, timeout=10, idle_timeout=120))
            r = await c.request("GET", "/hello", timeout=10)
            assert r.status == 200
        with_conns = await settle(pid)
        c = await stack.enter_async_context(
            H3Client.connect("127.0.0.1", port, timeout=10, idle_timeout=120))
        await c.request("GET", "/hello", timeout=10)
        before_streams = await settle(pid)
        for _ in range(n_streams):
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/digest"))
            c.send_data(sid, b"x" * 1024)
        await asyncio.sleep(1.0)  # let the server receive and dispatch all
        with_streams = await settle(pid)
        return ((with_conns - base) / n_conns, (with_streams - before_streams) / n_streams)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    build = Path(a.build).resolve()
    per_conn, per_stream = [], []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(ROOT / "scripts" / "gen-cert.sh"), tmp], check=True,
                       stdout=subprocess.DEVNULL)
        for i in range(a.runs):
            port = 45000 + i
            proc = start_server(build, Path(tmp), port, a.streams + 10)
            try:
                pc, ps = asyncio.run(asyncio.wait_for(
                    measure(proc.pid, port, a.connections, a.streams), 300))
                per_conn.append(pc)
                per_stream.append(ps)
                print(f"run {i + 1}: {pc:.1f} KB per idle connection, "
                      f"{ps:.1f} KB per open request stream", flush=True)
            finally:
                proc.terminate()
                proc.wait(10)
    print(f"\nmedian of {a.runs} runs ({a.connections} connections, {a.streams} streams):")
    print(f"| memory | h3q-server |\n|---|---|")
    print(f"| per idle connection (after one request) | {statistics.median(per_conn):.1f} KB |")
    print(f"| per open request stream (1 KB of body buffered) | "
          f"{statistics.median(per_stream):.1f} KB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
