#!/usr/bin/env python3
"""Server memory per idle connection (every server) and per open request
stream (h3q only). bench/, not a test.

Idle connections, for each server (h3q, ngtcp2, tokio-quiche, quic-go, bun):
a fresh server is started alone, its resident memory (VmRSS) is read, then
quic-go's client (`quicgo-bench idle`) opens N connections that each
complete one GET of the 1 KB file and stay open, kept alive by PINGs; once
all are open, VmRSS is read again. (after - before) / N is the cost of one
idle connection. bench.py runs this as its `idle` scenario (median of
interleaved runs); this script runs it on its own too.

Open request streams (h3q only: it needs h3q's /digest route, whose
handler keeps only a SHA-256 state): on one aioquic connection, S request
streams each send 1 KB of an unfinished upload and stay open.

  bench/memory.py [--build DIR] [--servers LIST] [--connections N] [--runs R]
                  [--streams S] [--no-streams]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402
from peers import ROOT, PeerError, Server, Tools, log  # noqa: E402

SETTLE_S = 1.0  # let the allocator and the runtime's GC settle before reading RSS


def idle_per_conn(srv: Server, quicgo: Path, n: int, client_cpu: int | None,
                  timeout: float = 600) -> dict:
    """Opens n idle connections to an already started server; returns
    {"kb_per_conn", "opened", "failed", "rss_before_kb", "rss_after_kb",
    "open_s", "error"?}."""
    time.sleep(SETTLE_S)
    before = srv.rss_kb()
    cmd = [str(quicgo), "idle", "-url", srv.url("small"), "-c", str(n)]
    cmd = peers.placed(cmd, client_cpu)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    res: dict = {"rss_before_kb": before}
    try:
        line = _read_line(p, timeout)
        if not line:
            res["error"] = f"idle client gave no result: {p.stderr.read()[-300:] if p.poll() is not None else 'timeout'}"
            return res
        ready = json.loads(line)
        time.sleep(SETTLE_S)
        after = srv.rss_kb()
        opened = int(ready.get("connections", 0))
        res.update(opened=opened, failed=int(ready.get("failed", 0)), rss_after_kb=after,
                   open_s=ready.get("seconds"))
        failed = int(ready.get("failed", 0))
        if failed:
            # A few failed handshakes or GETs out of thousands do not change
            # the per-connection figure (it divides by the open ones): note
            # them. More than 1% fails the run.
            msg = f"{failed} of {n} connections failed: {ready.get('error')}"
            res["error" if failed * 100 > n else "warning"] = msg
        if before is None or after is None or not srv.alive():
            res["error"] = "server died"
        elif opened:
            res["kb_per_conn"] = (after - before) / opened
        return res
    finally:
        with contextlib.suppress(Exception):
            p.stdin.close()  # EOF: the client closes its connections and exits
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def _read_line(p: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            return p.stdout.readline()
        if p.poll() is not None:
            return p.stdout.readline()
    return ""


# --------------------------------------------------------------------------
# h3q only: memory per open request stream (aioquic from the project venv)


async def _streams_delta(pid: int, port: int, n_streams: int) -> float:
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from aioquic_client import H3Client  # noqa: E402

    # The streams are never answered: their futures fail when the connection
    # closes at the end, which is expected here.
    asyncio.get_running_loop().set_exception_handler(lambda _loop, _ctx: None)
    async with H3Client.connect("127.0.0.1", port, timeout=10, idle_timeout=120) as c:
        r = await c.request("GET", "/hello", timeout=10)
        assert r.status == 200, r.status
        await asyncio.sleep(SETTLE_S)
        before = peers.proc_status_kb(pid, "VmRSS")
        for _ in range(n_streams):
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/digest"))
            c.send_data(sid, b"x" * 1024)
        await asyncio.sleep(1.0)  # let the server receive and dispatch all
        await asyncio.sleep(SETTLE_S)
        after = peers.proc_status_kb(pid, "VmRSS")
        return (after - before) / n_streams


def h3q_per_stream(t: Tools, work: Path, cert: Path, key: Path, n_streams: int,
                   runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        srv = peers.make_server("h3q", t, work, cert, key, None, "-", "-",
                                ["--max-streams", str(n_streams + 10), "--idle-timeout", "120000"])
        srv.start(t.logdir)
        try:
            out.append(asyncio.run(asyncio.wait_for(
                _streams_delta(srv.proc.pid, srv.port, n_streams), 120)))
        finally:
            srv.stop()
    return out


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--servers", default=",".join(peers.DEFAULT_SERVERS))
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--no-streams", action="store_true", help="skip h3q's per-stream part")
    ap.add_argument("--no-idle", action="store_true", help="only h3q's per-stream part")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    servers = [s for s in a.servers.split(",") if s]
    work = ROOT / "bench" / "results" / "work"
    htdocs, logdir = work / "htdocs", work / "logs"
    htdocs.mkdir(parents=True, exist_ok=True)
    logdir.mkdir(parents=True, exist_ok=True)
    (htdocs / "1k").write_bytes(bytes(i % 251 for i in range(1024)))
    build = Path(a.build).resolve()
    t = Tools(build, logdir, build / "h3q-server", build / "h3q-bench")
    pin = (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
    scpu, ccpu = (0, 1) if pin else (None, None)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(ROOT / "scripts" / "gen-cert.sh"), tmp], check=True,
                       stdout=subprocess.DEVNULL)
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        try:
            t.prepare(servers if not a.no_idle else ["h3q"], need_quicgo=not a.no_idle)
        except PeerError as e:
            log(f"memory: {e}")
            return 1
        per_conn: dict[str, list[float]] = {s: [] for s in servers}
        for r in range(0 if a.no_idle else a.runs):
            order = servers[r % len(servers):] + servers[:r % len(servers)]
            for name in order:
                srv = peers.make_server(name, t, htdocs, cert, key, scpu, "1k", "1k")
                srv.start(logdir)
                try:
                    res = idle_per_conn(srv, t.quicgo, a.connections, ccpu)
                finally:
                    srv.stop()
                log(f"run {r + 1} {name:13} {res.get('kb_per_conn', float('nan')):8.1f} KB "
                    f"per idle connection ({res.get('opened')} open)"
                    + (f" ERROR {res['error']}" if res.get("error") else ""))
                if "kb_per_conn" in res and not res.get("error"):
                    per_conn[name].append(res["kb_per_conn"])
        if not a.no_idle:
            print(f"\nmedian of {a.runs} runs, {a.connections} idle connections each:\n")
            print("| server | KB per idle connection |\n|---|---|")
            for s in servers:
                v = per_conn[s]
                print(f"| {s} | {statistics.median(v):.1f} |" if v else f"| {s} | n/a |")
        if not a.no_streams:
            vals = h3q_per_stream(t, htdocs, cert, key, a.streams, a.runs)
            print(f"\nh3q-server, per open request stream (1 KB of body buffered), median of "
                  f"{a.runs}: {statistics.median(vals):.1f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
