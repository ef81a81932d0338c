#!/usr/bin/env python3
"""Where a Bun server's CPU time goes, thread by thread (bench/ only).

Runs the Bun servers of bench.py (bench/peers.py: bun, h3q-bun,
h3q-bun-memory, ...) one after the other, interleaved over --runs rounds,
each under a request-rate load from h3q-bench (1 KB GETs, --conns x
--streams, --duration seconds; server on CPU 0, client on CPU 1 as in
bench.py), and prints per server the median request rate, the median CPU
time per request of the whole process and its split between the JS thread
(the process's main thread), libh3q's loop thread ("h3q-host") and every
other thread (Bun's file thread pool, JIT and GC helpers). CPU time per
request is the steady number on a shared machine; request rates are not.

  bench/bun/threads.py [--build build] [--servers bun,h3q-bun] [--runs 5]
      [--duration 4] [--conns 1] [--streams 100] [--rate N]

It also counts the server's context switches per request (its live
threads', from /proc/PID/task/*/status).

Uses bench/results/work (htdocs, certificate) as bench.py leaves it, and
creates what is missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import peers  # noqa: E402  (bench/peers.py)
from peers import BUN_SERVERS, PeerError, Tools  # noqa: E402

ROOT = peers.ROOT
WORK = ROOT / "bench" / "results" / "work"
KB = 1024


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of pid: its main thread, its h3q-host thread, and the
    rest (the whole process minus those two, so that threads that came and
    went count too)."""
    tick = float(subprocess.check_output(["getconf", "CLK_TCK"]).strip())

    def secs(stat: str) -> float:
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / tick

    out = {"main": 0.0, "h3q-host": 0.0}
    total = secs(Path(f"/proc/{pid}/stat").read_text())
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            comm = (task / "comm").read_text().strip()
        except OSError:
            continue  # the thread ended
        if int(task.name) == pid:
            out["main"] += secs(stat)
        elif comm == "h3q-host":
            out["h3q-host"] += secs(stat)
    out["other"] = total - out["main"] - out["h3q-host"]
    return out


def switches(pid: int) -> int:
    """Context switches (voluntary and not) of pid's live threads: each one
    hands the CPU over, and with the server pinned to one CPU every wakeup
    of another of its threads costs two."""
    n = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended
        for line in status.splitlines():
            if "ctxt_switches:" in line:
                n += int(line.split()[1])
    return n


def prepare() -> tuple[Path, Path, Path]:
    htdocs = WORK / "htdocs"
    htdocs.mkdir(parents=True, exist_ok=True)
    one_k = htdocs / "1k"
    if not one_k.exists():
        one_k.write_bytes(bytes(i % 251 for i in range(KB)))
    certs = WORK / "certs"
    if not (certs / "cert.pem").exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "gen-cert.sh"), str(certs)], check=True,
                       stdout=subprocess.DEVNULL)
    return htdocs, certs / "cert.pem", certs / "key.pem"


def one_run(srv: peers.Server, t: Tools, a) -> dict:
    url = f"https://127.0.0.1:{srv.port}/1k"
    base = [str(t.h3q_bench), url, "-k", "--max-payload", str(peers.PAYLOAD)]
    subprocess.run(["taskset", "-c", "1", *base, "-c", "1", "-s", "10", "-n", "200"],
                   capture_output=True, timeout=60)  # warm-up
    rate = ["--rate", str(a.rate)] if a.rate else []
    before, sw0 = thread_cpu(srv.proc.pid), switches(srv.proc.pid)
    p = subprocess.run(["taskset", "-c", "1", *base, "-c", str(a.conns), "-s", str(a.streams),
                        "--json", "-D", str(a.duration), *rate],
                       capture_output=True, text=True, timeout=a.duration + 60)
    after, sw1 = thread_cpu(srv.proc.pid), switches(srv.proc.pid)
    res = json.loads(p.stdout[p.stdout.index("{"):])
    n = max(res.get("ok", 0), 1)
    split = {k: (after[k] - before[k]) * 1e6 / n for k in after}
    return {"rps": res.get("req_per_s", 0.0), "failed": res.get("failed", 0),
            "total": sum(split.values()), "switches": (sw1 - sw0) / n, **split}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--servers", default="bun,h3q-bun,bun-memory,h3q-bun-memory")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--rate", type=int, default=0,
                    help="open loop: requests/s offered (h3q-bench --rate); 0: closed loop")
    a = ap.parse_args()
    names = [s for s in a.servers.split(",") if s]
    if any(s not in BUN_SERVERS for s in names):
        sys.exit(f"threads.py: servers are among {', '.join(BUN_SERVERS)}")
    build = Path(a.build).resolve()
    logdir = WORK / "logs"
    htdocs, cert, key = prepare()
    logdir.mkdir(exist_ok=True)
    t = Tools(build, logdir, build / "h3q-server", build / "h3q-bench")
    runs: dict[str, list[dict]] = {n: [] for n in names}
    try:
        t.prepare(names, need_quicgo=False)
        for r in range(a.runs):
            # Interleaved, order rotated every round, as in bench.py.
            for name in names[r % len(names):] + names[:r % len(names)]:
                srv = peers.make_server(name, t, htdocs, cert, key, 0, "1k", "1k")
                srv.start(logdir)
                try:
                    runs[name].append(one_run(srv, t, a))
                finally:
                    srv.stop()
    except (PeerError, subprocess.SubprocessError, ValueError) as e:
        print(f"threads.py: {e}", file=sys.stderr)
        return 1
    load = f", {a.rate:,} req/s offered" if a.rate else ""
    print(f"1 KB GETs, {a.conns} x {a.streams}{load}, {a.duration} s, {a.runs} runs (medians); "
          "CPU µs per request")
    print("| server | req/s | total | JS thread | h3q-host | other threads | switches/req |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        rs = [x for x in runs[name] if not x["failed"]]
        if not rs:
            print(f"| {name} | failed | | | | | |")
            continue
        med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
        print(f"| {name} | {med['rps']:,.0f} | {med['total']:.1f} | {med['main']:.1f} "
              f"| {med['h3q-host']:.1f} | {med['other']:.1f} | {med['switches']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
