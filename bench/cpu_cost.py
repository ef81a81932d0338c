#!/usr/bin/env python3
"""Server CPU time per transferred gigabyte, next to goodput, for h3q-server
builds and ngtcp2's gtlsserver, measured with the same client (h3q-bench).

On a shared machine goodput follows whatever else runs; the CPU seconds a
server spends per GB (user + system, read from /proc/PID/stat around each
run) say more about its cost. On loopback the receiver's softirq work is
charged to the sender, so this includes the kernel's delivery cost too.

  bench/cpu_cost.py --h3q base=build-base --h3q new=build [--runs 5]
                    [--size BYTES] [--path file|bytes] [--client-build DIR]

Runs are interleaved between targets with a rotating order; the table shows
medians and every run. Loopback only; not a test. Reuses bench.py's files
(bench/results/work) and certificate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--h3q", action="append", default=[], metavar="LABEL=BUILD_DIR",
                    help="an h3q-server build to measure (repeatable)")
    ap.add_argument("--no-ngtcp2", action="store_true")
    ap.add_argument("--client-build", help="build dir of h3q-bench (default: first --h3q)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=bench.GB)
    ap.add_argument("--path", choices=("file", "bytes"), default="file",
                    help="h3q serves the file (like gtlsserver) or generates /bytes/N")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra h3q-server argument (repeatable)")
    a = ap.parse_args()
    if not a.h3q:
        sys.exit("cpu_cost: give at least one --h3q LABEL=BUILD_DIR")

    work = bench.RESULTS / "work"
    htdocs = work / "htdocs"
    htdocs.mkdir(parents=True, exist_ok=True)
    logdir = work / "logs"
    logdir.mkdir(exist_ok=True)
    big = f"file_{a.size}"
    bench.write_pattern_file(htdocs / big, a.size)
    certs = work / "certs"
    subprocess.run(["bash", str(bench.ROOT / "scripts" / "gen-cert.sh"), str(certs)],
                   check=True, stdout=subprocess.DEVNULL)
    cert, key = certs / "cert.pem", certs / "key.pem"

    servers, paths = {}, {}
    for spec in a.h3q:
        label, build = spec.split("=", 1)
        port = bench.free_udp_port()
        servers[label] = bench.Server(
            label, [str(Path(build).resolve() / "h3q-server"), "--addr", "127.0.0.1",
                    "--port", str(port), "--cert", str(cert), "--key", str(key),
                    "--root", str(htdocs), "--max-payload", str(bench.PAYLOAD),
                    "--log-level", "error", *a.server_arg],
            port, "h3q-server listening on", 0)
        paths[label] = f"/{big}" if a.path == "file" else f"/bytes/{a.size}"
    if not a.no_ngtcp2:
        port = bench.free_udp_port()
        servers["ngtcp2"] = bench.Server(
            "ngtcp2", [bench.find_exe("gtlsserver"), "-q", "--no-quic-dump", "--no-http-dump",
                       "-d", str(htdocs), f"--max-udp-payload-size={bench.PAYLOAD}",
                       "--no-pmtud", "127.0.0.1", str(port), str(key), str(cert)],
            port, None, 0)
        paths["ngtcp2"] = f"/{big}"
    client = Path(a.client_build or a.h3q[0].split("=", 1)[1]).resolve() / "h3q-bench"

    labels = list(servers)
    runs: dict[str, list[tuple[float, float, str]]] = {lab: [] for lab in labels}
    try:
        for s in servers.values():
            s.start(logdir)
        for r in range(a.runs):
            order = labels[r % len(labels):] + labels[:r % len(labels)]
            for lab in order:
                s = servers[lab]
                load = loadavg()
                before = cpu_seconds(s.proc.pid)
                res = bench.run_bench(str(client), f"https://127.0.0.1:{s.port}{paths[lab]}",
                                      ["-c", "1", "-s", "1", "-n", "1"], 1, 300)
                cpu = cpu_seconds(s.proc.pid) - before
                if res.get("error"):
                    bench.log(f"  run {r + 1} {lab}: ERROR {res['error']}")
                    continue
                mbit = res["goodput_mbit_s"]
                runs[lab].append((mbit, cpu / (a.size / 1e9), load))
                bench.log(f"  run {r + 1} {lab:10} {mbit:8.0f} Mbit/s  "
                          f"{cpu / (a.size / 1e9):5.2f} CPU s/GB  load {load}")
    finally:
        for s in servers.values():
            s.stop()

    print(f"| target | goodput Mbit/s (median) | server CPU s per GB (median) | runs (Mbit/s, CPU s/GB) |")
    print("|---|---|---|---|")
    for lab in labels:
        rs = runs[lab]
        if not rs:
            print(f"| {lab} | n/a | n/a | all runs failed |")
            continue
        med_g = statistics.median(x[0] for x in rs)
        med_c = statistics.median(x[1] for x in rs)
        each = ", ".join(f"{g:.0f}/{c:.2f}" for g, c, _ in rs)
        print(f"| {lab} | {med_g:,.0f} | {med_c:.2f} | {each} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
