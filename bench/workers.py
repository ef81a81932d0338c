#!/usr/bin/env python3
"""h3q-server with 1 and with 2 workers (--workers), side by side, measured
with h3q-bench: 1 KB GETs on 20 connections x 10 streams, and goodput of
1 GiB on one connection and of 1 GiB on each of 4 connections at once.

Nothing is pinned: two workers need both CPUs, which they then share with
the client (and with whatever else runs on the machine), so this measures
what a second core buys on a 2-CPU machine, not a clean per-core scaling.
One connection stays on one worker (the kernel picks a socket by the
client's address and port), so the single download cannot gain; the
4-connection download and the request rate can.

  bench/workers.py [--build DIR] [--runs N] [--duration S] [--size BYTES] [--smoke]
make bench-workers runs it. Writes bench/results/workers-latest.md (and
.json) and prints the table; exit 1 when a run failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402
import peers  # noqa: E402
from bench import GIB, KB, Scenario, fmt, good, log, median, table  # noqa: E402
from peers import ROOT, PeerError, Tools  # noqa: E402

SERVERS = {"h3q": "1 worker", "h3q-w2": "2 workers"}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"), help="dir with h3q-server, h3q-bench")
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario and server (median)")
    ap.add_argument("--duration", type=float, default=5, help="seconds per request-rate run")
    ap.add_argument("--size", type=int, default=GIB, help="download size in bytes (1 GiB)")
    ap.add_argument("--smoke", action="store_true", help="1 run, 1 s, 16 MiB: does it work")
    ap.add_argument("--out", default=str(bench.RESULTS / "workers-latest.md"))
    a = ap.parse_args()
    if a.smoke:
        a.runs, a.duration, a.size = 1, 1, 16 << 20
    return a


def scenarios(a) -> list[Scenario]:
    size = f"{a.size / GIB:g} GiB" if a.size >= GIB else f"{a.size / (1 << 20):g} MiB"
    return [
        Scenario("rps20", "1 KB GETs, 20 conns x 10 streams", "req_per_s", "req/s", 20, 10,
                 "small", a.duration),
        Scenario("download", f"{size} download, 1 connection", "goodput_mbit_s", "Mbit/s",
                 1, 1, "big", None),
        Scenario("download4", f"{size} download on each of 4 connections", "goodput_mbit_s",
                 "Mbit/s", 4, 1, "big", None),
    ]


def run_all(a, t: Tools, scs: list[Scenario], srv: dict) -> None:
    names = list(SERVERS)
    for name in names:  # warm-up: code paths, page cache
        warm = Scenario("warm", "", "", "", 1, 1, "small", None)
        bench.run_client(bench.client_cmd("h3q-bench", t, srv[name].url("small"), warm, 60),
                         None, 60, srv[name])
    for r in range(a.runs):
        for sc in scs:
            order = names[r % 2:] + names[:r % 2]  # neither always goes first
            for name in order:
                s = srv[name]
                timeout = 900 if sc.content == "big" else sc.duration + 60
                # The client may use both CPUs too: two threads.
                cmd = bench.client_cmd("h3q-bench", t, s.url(sc.content), sc, timeout, 2)
                res = bench.run_client(cmd, None, timeout, s)
                sc.results.setdefault(("h3q-bench", name), []).append(res)
                val = res.get(sc.metric)
                log(f"  run {r + 1}/{a.runs} {sc.key:9} {SERVERS[name]:9} "
                    f"{fmt(val, sc.unit) if isinstance(val, (int, float)) else '-':>10} "
                    f"{sc.unit:6} load {res.get('load1', 0):.2f}"
                    + (f"  ERROR {res['error']}" if res.get("error") else ""))
                if not s.alive():
                    raise PeerError(f"{name} died; log: {s.log_path}")


def report(a, scs: list[Scenario], load_start, load_end, started: str) -> str:
    rows = []
    for sc in scs:
        vals = [median([x[sc.metric] for x in good(sc.results.get(("h3q-bench", n), []))])
                for n in SERVERS]
        one, two = vals
        rows.append([sc.title, f"{fmt(one, sc.unit)} {sc.unit}", f"{fmt(two, sc.unit)} {sc.unit}",
                     f"{two / one:.2f}" if one and two else "n/a"])
    cpus = os.cpu_count() or 1
    return "\n".join([
        f"# h3q-server: 1 vs 2 workers ({started} UTC)", "",
        f"h3q-bench (2 threads) against h3q-server --workers 1 and 2, medians of {a.runs} "
        f"run(s), {cpus} CPUs, nothing pinned: server and client share the CPUs. "
        f"Load average (1 min) {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end.",
        "",
        *table(["scenario", "1 worker", "2 workers", "2 / 1"], rows), "",
        "One connection is served by one worker, so the single download cannot gain from a "
        "second one.", ""])


def main() -> int:
    a = parse_args()
    work = bench.RESULTS / "work"
    htdocs, logdir = work / "htdocs", work / "logs"
    htdocs.mkdir(parents=True, exist_ok=True)
    logdir.mkdir(exist_ok=True)
    build = Path(a.build).resolve()
    t = Tools(build, logdir, build / "h3q-server", build / "h3q-bench")
    try:
        t.prepare(list(SERVERS), need_quicgo=False)
    except PeerError as e:
        log(f"workers: {e}")
        return 1
    big = f"file_{a.size}"
    bench.write_pattern_file(htdocs / big, a.size)
    bench.write_pattern_file(htdocs / "1k", KB)
    certs = work / "certs"
    subprocess.run(["bash", str(ROOT / "scripts" / "gen-cert.sh"), str(certs)], check=True,
                   stdout=subprocess.DEVNULL)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    load_start = bench.loadavg()
    scs = scenarios(a)
    srv = {}
    try:
        for name in SERVERS:
            srv[name] = peers.make_server(name, t, htdocs, certs / "cert.pem", certs / "key.pem",
                                          None, big, "1k")
            srv[name].start(logdir)
        run_all(a, t, scs, srv)
    except PeerError as e:
        log(f"workers: {e}")
        return 1
    finally:
        for s in srv.values():
            s.stop()
    text = report(a, scs, load_start, bench.loadavg(), started)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(
        {sc.key: {n: sc.results.get(("h3q-bench", n), []) for n in SERVERS} for sc in scs},
        indent=1))
    out.write_text(text)
    print(text)
    failed = any(x.get("error") for sc in scs for rs in sc.results.values() for x in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
