#!/usr/bin/env python3
"""What one small request costs h3q-server: requests per second, server CPU
microseconds per request, heap calls per request and syscalls per request,
for one or more builds, interleaved.

  bench/req_cost.py --h3q base=build-base --h3q new=build [--runs 5]
                    [--duration 5] [--streams 100] [--size 1024]
                    [--mallocs] [--strace N]

Each run: a fresh 1 KB file served by `--root`, h3q-bench with one
connection x --streams streams for --duration seconds; server pinned to
CPU 0, client to CPU 1. CPU time is utime + stime from /proc/PID/stat
around the run (on loopback it includes some of the client's kernel work).

--mallocs preloads bench/tools/malloc_count.so (built here with cc) and
reads its counters (SIGUSR2) around each run: malloc+calloc+realloc calls
per completed request. --strace N attaches `strace -c -f` to the server
for N requests (-n N) once per build and prints syscalls per request, by
call. Loopback only; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def build_counter(work: Path) -> Path:
    so = work / "malloc_count.so"
    src = ROOT / "bench" / "tools" / "malloc_count.c"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(so), str(src)], check=True)
    return so


class H3q:
    def __init__(self, label: str, build: Path, work: Path, preload: Path | None):
        self.label, self.build, self.work = label, build, work
        self.port = free_udp_port()
        self.counts = work / f"mallocs-{label}.txt"
        env = dict(os.environ)
        if preload:
            env["LD_PRELOAD"] = str(preload)
            env["MALLOC_COUNT_OUT"] = str(self.counts)
        cmd = ["taskset", "-c", "0", str(build / "h3q-server"), "--addr", "127.0.0.1",
               "--port", str(self.port), "--cert", str(work / "certs" / "cert.pem"),
               "--key", str(work / "certs" / "key.pem"), "--root", str(work / "htdocs"),
               "--max-payload", "1350", "--log-level", "error"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        if "listening" not in line:
            raise SystemExit(f"{label}: server did not start: {line!r}")

    def mallocs(self) -> int:
        """Heap calls (malloc + calloc + realloc) so far."""
        before = self.counts.read_text().count("\n") if self.counts.exists() else 0
        os.kill(self.proc.pid, signal.SIGUSR2)
        for _ in range(100):
            if self.counts.exists() and self.counts.read_text().count("\n") > before:
                break
            time.sleep(0.02)
        m, c, r = (int(x) for x in self.counts.read_text().splitlines()[-1].split()[:3])
        return m + c + r

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_client(client: Path, port: int, args: list[str], timeout: float) -> dict:
    cmd = ["taskset", "-c", "1", str(client), "-k", "--json", *args,
           f"https://127.0.0.1:{port}/file_1k"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        return {"error": p.stderr[-300:] or f"exit {p.returncode}"}


def strace_run(s: H3q, client: Path, n: int, streams: int) -> None:
    out = s.work / f"strace-{s.label}.txt"
    st = subprocess.Popen(["strace", "-c", "-f", "-o", str(out), "-p", str(s.proc.pid)],
                          stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    res = run_client(client, s.port, ["-c", "1", "-s", str(streams), "-n", str(n)], 300)
    st.send_signal(signal.SIGINT)
    st.wait(30)
    if res.get("error") or res.get("failed"):
        log(f"{s.label}: strace run failed: {res}")
        return
    print(f"\n{s.label}: syscalls per request over {res['ok']} requests (strace -c -f)")
    total = 0
    for line in out.read_text().splitlines():
        f = line.split()
        if len(f) >= 5 and f[3].isdigit() and f[-1] != "total":
            calls = int(f[3])
            total += calls
            print(f"  {f[-1]:16} {calls / res['ok']:7.3f}")
    print(f"  {'all':16} {total / res['ok']:7.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--h3q", action="append", default=[], metavar="LABEL=BUILD_DIR")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--client-build", help="build dir of h3q-bench (default: last --h3q)")
    ap.add_argument("--mallocs", action="store_true")
    ap.add_argument("--strace", type=int, default=0, metavar="N")
    a = ap.parse_args()
    if not a.h3q:
        sys.exit("req_cost: give at least one --h3q LABEL=BUILD_DIR")

    work = Path(tempfile.mkdtemp(prefix="h3q-req-cost-"))
    (work / "htdocs").mkdir()
    (work / "htdocs" / "file_1k").write_bytes((bytes(range(251)) * (a.size // 251 + 1))[:a.size])
    subprocess.run(["bash", str(ROOT / "scripts" / "gen-cert.sh"), str(work / "certs")],
                   check=True, stdout=subprocess.DEVNULL)
    preload = build_counter(work) if a.mallocs else None
    builds = [(s.split("=", 1)[0], Path(s.split("=", 1)[1]).resolve()) for s in a.h3q]
    client = Path(a.client_build).resolve() if a.client_build else builds[-1][1]
    client = client / "h3q-bench"

    servers = {lab: H3q(lab, b, work, preload) for lab, b in builds}
    runs: dict[str, list[tuple[float, float, float]]] = {lab: [] for lab in servers}
    try:
        for s in servers.values():  # warm-up: handshake, page cache
            run_client(client, s.port, ["-c", "1", "-s", "10", "-n", "1000"], 60)
        labels = list(servers)
        for r in range(a.runs):
            for lab in labels[r % len(labels):] + labels[:r % len(labels)]:
                s = servers[lab]
                m0 = s.mallocs() if preload else 0
                c0 = cpu_seconds(s.proc.pid)
                res = run_client(client, s.port, ["-c", "1", "-s", str(a.streams),
                                                  "-D", str(a.duration)], a.duration + 60)
                cpu = cpu_seconds(s.proc.pid) - c0
                m1 = s.mallocs() if preload else 0
                if res.get("error") or res.get("failed"):
                    log(f"  run {r + 1} {lab}: ERROR {res}")
                    continue
                # In-flight requests at the end are served but not counted:
                # at most `streams` of them, small next to the total.
                per_req = cpu / res["ok"] * 1e6
                mpr = (m1 - m0) / res["ok"] if preload else float("nan")
                runs[lab].append((res["req_per_s"], per_req, mpr))
                log(f"  run {r + 1} {lab:8} {res['req_per_s']:9.0f} req/s "
                    f"{per_req:6.1f} CPU us/req  {mpr:6.2f} allocs/req  "
                    f"load {open('/proc/loadavg').read().split()[0]}")
        for s in servers.values():
            if a.strace:
                strace_run(s, client, a.strace, a.streams)
    finally:
        for s in servers.values():
            s.stop()

    print("\n| build | req/s (median) | server CPU us/req (median) | allocs/req | runs (req/s) |")
    print("|---|---|---|---|---|")
    for lab, rs in runs.items():
        if not rs:
            print(f"| {lab} | n/a | n/a | n/a | all runs failed |")
            continue
        each = ", ".join(f"{x[0]:.0f}" for x in rs)
        allocs = f"{statistics.median(x[2] for x in rs):.2f}" if a.mallocs else "n/a"
        print(f"| {lab} | {statistics.median(x[0] for x in rs):,.0f} | "
              f"{statistics.median(x[1] for x in rs):.1f} | {allocs} | {each} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
