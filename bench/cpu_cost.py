#!/usr/bin/env python3
"""Where a 1 GiB download's wall time goes: server CPU time per GB next to
goodput, and for the server and the client the time each spent running,
waiting for a CPU held by another process, and idle (neither), for one or
more h3q-server builds and the peers (ngtcp2, tokio-quiche), all measured
with the same client (h3q-bench).

  bench/cpu_cost.py --h3q base=build-before --h3q new=build
                    [--peers ngtcp2,tokio-quiche] [--runs 5] [--size BYTES]
                    [--client-build DIR] [--server-arg ARG]

Servers run on CPU 0 and the client on CPU 1, as in bench.py. The times
come from /proc/PID/task/*/schedstat (run time and run-queue delay of
every thread): on a shared machine a download is slow either because a
party waited for its CPU (another process held it) or because it was
idle, waiting for the other party (the server for ACKs and flow-control
credit, the client for data). Only "idle" says something about how the
two talk to each other; "waiting" is the machine's load. On loopback the
receiver's softirq work is charged to the sender, so CPU time includes
some of the peer's network stack. UDP buffer overflows (RcvbufErrors,
SndbufErrors from /proc/net/snmp) are counted per run. h3q servers run
with --log-level debug, so their log (bench/results/work/logs/LABEL.log)
ends each connection with quiche's counters (lost packets, PTOs, how often
flow control blocked it, cwnd, RTT).

Runs are interleaved between targets with a rotating order; the table shows
medians and every run. Loopback only; not a test. Uses bench.py's files
(bench/results/work) and certificate.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import peers  # noqa: E402

NS = 1e9


def sched_totals(pid: int) -> tuple[float, float]:
    """(run, run-queue wait) seconds summed over pid's threads; threads that
    ended are missed, so read it while the process lives."""
    run = wait = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                a, b, _ = f.read().split()
        except (OSError, ValueError):
            continue
        run += int(a)
        wait += int(b)
    return run / NS, wait / NS


def udp_errors() -> dict[str, int]:
    with open("/proc/net/snmp") as f:
        rows = [ln.split() for ln in f if ln.startswith("Udp:")]
    return dict(zip(rows[0][1:], map(int, rows[1][1:])))


class ClientWatch:
    """Samples the client's schedstat until it exits (its last sample is
    at most one period old: a lower bound on its run and wait time)."""

    PERIOD = 0.02

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.run, self.wait = proc, 0.0, 0.0
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while self.proc.poll() is None:
            run, wait = sched_totals(self.proc.pid)
            if run or wait:
                self.run, self.wait = run, wait
            time.sleep(self.PERIOD)


def one_download(client: Path, srv: peers.Server, size: int, timeout: float) -> dict:
    cmd = peers.placed([str(client), srv.url("big"), "-c", "1", "-s", "1", "-n", "1", "-k",
                        "--max-payload", str(peers.PAYLOAD), "--json",
                        "--timeout", str(int(timeout))], 1)
    load = bench.loadavg()[0]
    run0, wait0 = sched_totals(srv.proc.pid)
    udp0 = udp_errors()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    watch = ClientWatch(p)
    out, err = p.communicate(timeout=timeout + 30)
    wall = time.monotonic() - t0
    watch.thread.join()
    run1, wait1 = sched_totals(srv.proc.pid)
    udp1 = udp_errors()
    res = next((json.loads(ln) for ln in out.splitlines() if ln.startswith("{")), None)
    if p.returncode != 0 or not res or not res.get("ok"):
        return {"error": f"exit {p.returncode}: {err.strip()[-300:]}"}
    srun, swait = run1 - run0, wait1 - wait0
    return {
        "mbit": res["goodput_mbit_s"], "wall": wall, "load": load,
        "cpu_per_gb": srun / (size / 1e9),
        "srv": (srun, swait, max(0.0, wall - srun - swait)),
        "cli": (watch.run, watch.wait, max(0.0, wall - watch.run - watch.wait)),
        "drops": sum(udp1.get(k, 0) - udp0.get(k, 0) for k in ("RcvbufErrors", "SndbufErrors")),
    }


def fmt_split(t: tuple[float, float, float]) -> str:
    return f"{t[0]:.2f} / {t[1]:.2f} / {t[2]:.2f}"


def med_split(rs: list[dict], who: str) -> tuple[float, float, float]:
    return tuple(statistics.median(r[who][i] for r in rs) for i in range(3))


def make_servers(a, htdocs: Path, cert: Path, key: Path, big: str,
                 logdir: Path) -> dict[str, peers.Server]:
    servers = {}
    for spec in a.h3q:
        label, build = spec.split("=", 1)
        t = peers.Tools(Path(build).resolve(), logdir, Path(build).resolve() / "h3q-server",
                        Path(build).resolve() / "h3q-bench")
        s = peers.make_server("h3q", t, htdocs, cert, key, 0, big, big,
                              ["--log-level", "debug", *a.server_arg])
        s.name = label
        servers[label] = s
    names = [p for p in a.peers.split(",") if p]
    if names:
        t = peers.Tools(Path(a.h3q[0].split("=", 1)[1]).resolve(), logdir, Path("/"), Path("/"))
        if "ngtcp2" in names:
            t.gtlsserver = peers.find_system_exe("gtlsserver")
        if "tokio-quiche" in names:
            t.tq = peers.build_tokio_quiche(logdir)
        for name in names:
            servers[name] = peers.make_server(name, t, htdocs, cert, key, 0, big, big)
    return servers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--h3q", action="append", default=[], metavar="LABEL=BUILD_DIR",
                    help="an h3q-server build to measure (repeatable)")
    ap.add_argument("--peers", default="ngtcp2,tokio-quiche",
                    help="peers to measure too: ngtcp2,tokio-quiche (empty: none)")
    ap.add_argument("--client-build", help="build dir of h3q-bench (default: first --h3q)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=bench.GIB)
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra h3q-server argument (repeatable)")
    a = ap.parse_args()
    if not a.h3q:
        sys.exit("cpu_cost: give at least one --h3q LABEL=BUILD_DIR")
    if (os.cpu_count() or 1) < 2:
        sys.exit("cpu_cost: needs 2 CPUs (server on CPU 0, client on CPU 1)")

    work = bench.RESULTS / "work"
    htdocs = work / "htdocs"
    htdocs.mkdir(parents=True, exist_ok=True)
    logdir = work / "logs"
    logdir.mkdir(exist_ok=True)
    big = f"file_{a.size}"
    bench.write_pattern_file(htdocs / big, a.size)
    bench.warm_page_cache(htdocs / big)
    certs = work / "certs"
    subprocess.run(["bash", str(peers.ROOT / "scripts" / "gen-cert.sh"), str(certs)],
                   check=True, stdout=subprocess.DEVNULL)
    client = Path(a.client_build or a.h3q[0].split("=", 1)[1]).resolve() / "h3q-bench"

    servers = make_servers(a, htdocs, certs / "cert.pem", certs / "key.pem", big, logdir)
    labels = list(servers)
    runs: dict[str, list[dict]] = {lab: [] for lab in labels}
    timeout = max(120.0, a.size / 1e9 * 60)
    try:
        for s in servers.values():
            s.start(logdir)
        for r in range(a.runs):
            order = labels[r % len(labels):] + labels[:r % len(labels)]
            for lab in order:
                res = one_download(client, servers[lab], a.size, timeout)
                if res.get("error"):
                    peers.log(f"  run {r + 1} {lab}: ERROR {res['error']}")
                    continue
                runs[lab].append(res)
                peers.log(f"  run {r + 1} {lab:12} {res['mbit']:6.0f} Mbit/s "
                          f"{res['cpu_per_gb']:5.2f} CPU s/GB  server run/wait/idle "
                          f"{fmt_split(res['srv'])}  client {fmt_split(res['cli'])}  "
                          f"drops {res['drops']}  load {res['load']:.1f}")
    finally:
        for s in servers.values():
            s.stop()

    print("| target | goodput Mbit/s | server CPU s/GB | server run / wait / idle s "
          "| client run / wait / idle s | UDP buffer drops | runs (Mbit/s) |")
    print("|---|---|---|---|---|---|---|")
    for lab in labels:
        rs = runs[lab]
        if not rs:
            print(f"| {lab} | n/a | n/a | n/a | n/a | n/a | all runs failed |")
            continue
        each = ", ".join(f"{x['mbit']:.0f}" for x in rs)
        print(f"| {lab} | {statistics.median(x['mbit'] for x in rs):,.0f} "
              f"| {statistics.median(x['cpu_per_gb'] for x in rs):.2f} "
              f"| {fmt_split(med_split(rs, 'srv'))} | {fmt_split(med_split(rs, 'cli'))} "
              f"| {statistics.median(x['drops'] for x in rs):.0f} "
              f"| {each} |")
    return 0 if all(runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
