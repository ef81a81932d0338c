#!/usr/bin/env python3
"""Soak: a bounded mixed load against one h3q-server, sampling its RSS and
open file descriptors, then a clean shutdown.

    scripts/soak.py --build build-asan --seconds 600      (make soak)
    scripts/soak.py --build build --seconds 25            (test_soak.py, make test)

Load, each in its own loop until the time is up (all on 127.0.0.1):
  downloads   h3q-client --verify-bytes, 4 x 4 MB per round
  uploads     h3q-client POST /echo of a 1 MB file, echoed body's SHA-256 checked
  small GETs  h3q-bench, 4 connections x 8 streams, /hello, 5 s per round
  slow reads  h3q-client stalling 1.5 s after 64 kB of a 2 MB body
  resets      tests/integration/abuse_client.py rapid-reset: streams opened
              and reset until the server closes the connection (H3_EXCESSIVE_LOAD)
  churn       tests/integration/abuse_client.py idle: 30 connections opened,
              held 1 s, closed

Pass: every download/upload/GET round succeeded; the server lived and exited
0 on SIGTERM with no sanitizer (incl. LeakSanitizer) report; after warm-up,
the median RSS of the last third of the samples is within --rss-tolerance
of the first third's, and the fd count did not grow. Prints a summary JSON
line, appends it to <build>/soak-results.jsonl, exits 0 on pass, 1 on fail.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABUSE = ROOT / "tests" / "integration" / "abuse_client.py"
PY = ROOT / ".venv" / "bin" / "python"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "ERROR: UndefinedBehaviorSanitizer")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def sanitizer_env() -> dict:
    e = dict(os.environ)
    e["ASAN_OPTIONS"] = ("detect_leaks=1:halt_on_error=1:quarantine_size_mb=8:"
                         "thread_local_quarantine_size_kb=256"
                         + (":" + e["ASAN_OPTIONS"] if e.get("ASAN_OPTIONS") else ""))
    e["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return e


class Load:
    """One kind of load, looping in a thread until stop."""

    def __init__(self, name: str, fn, stop: threading.Event) -> None:
        self.name, self.fn, self.stop = name, fn, stop
        self.rounds = self.failures = 0
        self.last_error = ""
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                ok, why = self.fn()
            except Exception as e:  # a tool that crashed is a failed round
                ok, why = False, repr(e)
            if self.stop.is_set() and not ok:
                break  # cut short by the end of the run: not a failure
            self.rounds += 1
            if not ok:
                self.failures += 1
                self.last_error = why[-2000:]


def run(cmd: list[str], timeout: float, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, stdin=stdin or subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, env=sanitizer_env())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory with h3q-server, -client, -bench")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds not compared")
    ap.add_argument("--rss-tolerance", type=float, default=0.10)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    build = Path(a.build).resolve()
    server_bin, client, bench = build / "h3q-server", build / "h3q-client", build / "h3q-bench"
    for p in (server_bin, client, bench):
        if not os.access(p, os.X_OK):
            print(f"soak: {p} missing; build first", file=sys.stderr)
            return 2
    rng = random.Random(a.seed)
    work = Path(tempfile.mkdtemp(prefix="h3q-soak-"))
    subprocess.run(["bash", str(ROOT / "scripts" / "gen-cert.sh"), str(work)], check=True,
                   capture_output=True, timeout=60)
    upload = work / "upload.bin"
    data = rng.randbytes(1 << 20)
    upload.write_bytes(data)
    upload_sha = hashlib.sha256(data).hexdigest()

    port = free_port()
    err_path = work / "server.stderr"
    errf = open(err_path, "wb")
    srv = subprocess.Popen([str(server_bin), "--addr", "127.0.0.1", "--port", str(port), "--cert",
                            str(work / "cert.pem"), "--key", str(work / "key.pem"), "--log-level", "error"],
                           stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL,
                           env=sanitizer_env(), text=True)
    line = srv.stdout.readline()
    if "listening" not in line:
        print(f"soak: server did not start: {line!r}\n{err_path.read_text()[-3000:]}", file=sys.stderr)
        srv.kill()
        return 1
    base = f"https://127.0.0.1:{port}"
    t_round = 60.0  # every tool's own deadline

    def downloads():
        r = run([str(client), "-k", "--json", "--no-body", "--verify-bytes", "-n", "4", "--timeout",
                 str(int(t_round)), f"{base}/bytes/4000000"], t_round + 30)
        return r.returncode == 0, r.stderr.decode(errors="replace")

    def uploads():
        r = run([str(client), "-k", "-X", "POST", "-d", str(upload), "-o", "-", "--timeout",
                 str(int(t_round)), f"{base}/echo"], t_round + 30)
        got = hashlib.sha256(r.stdout).hexdigest()
        return r.returncode == 0 and got == upload_sha, f"exit {r.returncode}, sha {got}: " + \
            r.stderr.decode(errors="replace")

    def small_gets():
        r = run([str(bench), "-k", "--json", "-c", "4", "-s", "8", "-D", "5", f"{base}/hello"], 60)
        return r.returncode == 0, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")

    def slow_reads():
        r = run([str(client), "-k", "--no-body", "--verify-bytes", "--stall-after", "65536", "--stall-ms",
                 "1500", "--timeout", str(int(t_round)), f"{base}/bytes/2000000"], t_round + 30)
        return r.returncode == 0, r.stderr.decode(errors="replace")

    def resets():
        r = run([str(PY), str(ABUSE), "rapid-reset", "--port", str(port), "--count", "1", "--split",
                 "--hold", "2"], 60)
        return r.returncode == 0, r.stderr.decode(errors="replace")

    def churn():
        r = run([str(PY), str(ABUSE), "idle", "--port", str(port), "--count", "30", "--hold", "1"], 60)
        done = [json.loads(l) for l in r.stdout.decode().splitlines() if '"done"' in l]
        ok = r.returncode == 0 and bool(done) and done[0].get("established") == 30
        return ok, r.stdout.decode(errors="replace")[-500:] + r.stderr.decode(errors="replace")

    stop = threading.Event()
    loads = [Load(n, f, stop) for n, f in (("downloads", downloads), ("uploads", uploads),
                                           ("small_gets", small_gets), ("slow_reads", slow_reads),
                                           ("resets", resets), ("churn", churn))]
    samples: list[tuple[float, int, int]] = []
    t0 = time.monotonic()
    for ld in loads:
        ld.t.start()
    died = False
    while time.monotonic() - t0 < a.seconds:
        time.sleep(a.sample)
        if srv.poll() is not None:
            died = True
            break
        rss, fds = proc_kb(srv.pid, "VmRSS"), fd_count(srv.pid)
        if rss is not None and fds is not None:
            samples.append((round(time.monotonic() - t0, 1), rss, fds))
            print(f"soak: t={samples[-1][0]:6.1f}s rss={rss} kB fds={fds}", flush=True)
    stop.set()
    for ld in loads:
        ld.t.join(t_round + 60)
    hwm = proc_kb(srv.pid, "VmHWM")
    status = None
    if not died:
        srv.send_signal(signal.SIGTERM)
        try:
            status = srv.wait(60)
        except subprocess.TimeoutExpired:
            srv.kill()
            status = "killed after 60 s"
    else:
        status = srv.returncode
    errf.close()
    stderr = err_path.read_text(errors="replace")
    reports = [l for l in stderr.splitlines() if any(m in l for m in SANITIZER_MARKERS)]

    problems = []
    if died:
        problems.append(f"server died during the soak (status {srv.returncode})")
    if status != 0:
        problems.append(f"server exit status {status} after SIGTERM")
    if reports:
        problems.append("sanitizer reports: " + "; ".join(reports[:10]))
    for ld in loads:
        if ld.name != "resets" and ld.failures:
            problems.append(f"{ld.name}: {ld.failures}/{ld.rounds} rounds failed; last: {ld.last_error[-600:]}")
        if ld.rounds == 0:
            problems.append(f"{ld.name}: no round completed")
    steady = [s for s in samples if s[0] >= a.warmup]
    third = len(steady) // 3
    rss_first = rss_last = fd_first = fd_last = None
    if third < 2:
        problems.append(f"too few samples after warm-up ({len(steady)}): run longer")
    else:
        rss_first = statistics.median(s[1] for s in steady[:third])
        rss_last = statistics.median(s[1] for s in steady[-third:])
        fd_first = max(s[2] for s in steady[:third])
        fd_last = max(s[2] for s in steady[-third:])
        # Half a megabyte of absolute slack: page granularity at small RSS.
        if rss_last > rss_first * (1 + a.rss_tolerance) + 512:
            problems.append(f"RSS grew: median {rss_first:.0f} kB in the first third, "
                            f"{rss_last:.0f} kB in the last (tolerance {a.rss_tolerance:.0%})")
        if fd_last > fd_first:
            problems.append(f"fd count grew: {fd_first} -> {fd_last}")
    summary = {"date": time.strftime("%Y-%m-%d"), "build": build.name, "seconds": a.seconds,
               "samples": len(samples), "rss_first_third_kb": rss_first, "rss_last_third_kb": rss_last,
               "hwm_kb": hwm, "fd_first_third": fd_first, "fd_last_third": fd_last,
               "loads": {ld.name: {"rounds": ld.rounds, "failures": ld.failures} for ld in loads},
               "server_exit": status, "sanitizer_reports": len(reports), "pass": not problems}
    print(json.dumps(summary), flush=True)
    with open(build / "soak-results.jsonl", "a") as f:
        f.write(json.dumps(summary) + "\n")
    for p in problems:
        print("soak: FAIL: " + p, file=sys.stderr)
    if not problems:
        subprocess.run(["rm", "-rf", str(work)])
    else:
        print(f"soak: logs kept in {work}", file=sys.stderr)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
