#!/usr/bin/env python3
"""h3q-server vs ngtcp2's gtlsserver, measured with the same client (h3q-bench).

Run through bench/run.sh (make bench). Loopback only. See bench/README.md for
the method. Writes bench/results/latest.md (and latest.json) and prints the
table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAYLOAD = 1350  # UDP payload pinned for every party (loopback MTU is 64 KB)
GB = 1_000_000_000
KB = 1024


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_exe(name: str) -> str:
    p = shutil.which(name) or next((f"{d}/{name}" for d in ("/usr/sbin", "/usr/bin")
                                    if os.access(f"{d}/{name}", os.X_OK)), None)
    if not p:
        sys.exit(f"bench: {name} not found (scripts/setup.sh test installs ngtcp2-server)")
    return p


def write_pattern_file(path: Path, size: int) -> None:
    """The same content h3q's /bytes/:n produces (byte i = i % 251)."""
    if path.is_file() and path.stat().st_size == size:
        return
    block = bytes(range(251)) * 4096
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    tmp.rename(path)


# --------------------------------------------------------------------------
# servers


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    ready: str | None  # stdout line prefix meaning "listening"; None: poll the port
    cpu: int | None
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self, logdir: Path) -> None:
        cmd = self.cmd
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu), *cmd]
        self.log_path = logdir / f"{self.name}.log"
        logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 20
        if self.ready:
            fd = self.proc.stdout.fileno()
            buf = b""
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        break
                    buf += chunk
                    if self.ready.encode() in buf:
                        self._drain()
                        return
                if self.proc.poll() is not None:
                    break
            self.stop()
            sys.exit(f"bench: {self.name} did not start: {' '.join(cmd)}\n"
                     f"{self.log_path.read_text(errors='replace')[-2000:]}")
        else:
            # gtlsserver prints nothing useful on stdout with -q: wait until
            # the UDP port is bound (a fresh bind of it fails).
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    try:
                        s.bind(("127.0.0.1", self.port))
                    except OSError:
                        self._drain()
                        return
                time.sleep(0.05)
            self.stop()
            sys.exit(f"bench: {self.name} did not start: {' '.join(cmd)}\n"
                     f"{self.log_path.read_text(errors='replace')[-2000:]}")

    def _drain(self) -> None:
        import threading

        def run():
            with contextlib.suppress(Exception):
                while self.proc.stdout.read(65536):
                    pass
        threading.Thread(target=run, daemon=True).start()

    def peak_rss_kb(self) -> int | None:
        if not self.proc:
            return None
        # taskset execs the server, so the pid is the server's
        with contextlib.suppress(OSError):
            for line in open(f"/proc/{self.proc.pid}/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# --------------------------------------------------------------------------
# measurements


@dataclass
class Target:
    label: str  # column name
    server: Server
    path: str


@dataclass
class Scenario:
    key: str
    title: str
    metric: str  # key in h3q-bench's JSON
    unit: str
    args: list[str]
    paths: dict[str, str]  # target label -> path
    results: dict[str, list[dict]] = field(default_factory=dict)


def run_bench(bench: str, url: str, args: list[str], cpu: int | None, timeout: float) -> dict:
    cmd = [bench, url, *args, "-k", "--max-payload", str(PAYLOAD), "--json",
           "--timeout", str(int(timeout) - 10)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s", "cmd": " ".join(cmd)}
    wall = time.monotonic() - t0
    obj = None
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                cand = json.loads(line)
                if "requests" in cand:
                    obj = cand
    if obj is None:
        return {"error": f"exit {p.returncode}, no JSON result: {p.stderr.strip()[-300:]}",
                "cmd": " ".join(cmd)}
    obj["wall_s"] = wall
    obj["exit"] = p.returncode
    if p.returncode != 0 or obj.get("failed", 0) or not obj.get("ok"):
        obj["error"] = f"exit {p.returncode}, ok={obj.get('ok')} failed={obj.get('failed')}"
    return obj


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "Mbit/s":
        return f"{v:,.0f}"
    if unit == "req/s":
        return f"{v:,.0f}"
    return f"{v:.2f}"


def machine() -> list[tuple[str, str]]:
    def sh(*cmd: str) -> str:
        with contextlib.suppress(Exception):
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        return "?"

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    quiche = "?"
    with contextlib.suppress(OSError):
        m = re.search(r'name = "quiche"\nversion = "([^"]+)"',
                      (ROOT / "deps" / "quiche" / "Cargo.lock").read_text())
        quiche = m.group(1) if m else "?"
    return [
        ("date (UTC)", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")),
        ("h3q commit", sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
         + (" (+ uncommitted changes)" if sh("git", "-C", str(ROOT), "status", "--porcelain",
                                               "--untracked-files=no") else "")),
        ("quiche", quiche),
        ("ngtcp2-server (Debian)", sh("dpkg-query", "-W", "-f=${Version}", "ngtcp2-server")),
        ("CPU", cpu),
        ("nproc", str(os.cpu_count())),
        ("memory", mem),
        ("kernel", platform.release()),
        ("OS", sh("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME")),
        ("compiler", sh("cc", "--version").splitlines()[0] if sh("cc", "--version") else "?"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"), help="dir with h3q-server, h3q-bench")
    ap.add_argument("--runs", type=int, default=5, help="runs per scenario and target (median)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per request-rate run")
    ap.add_argument("--size", type=int, default=GB, help="download size in bytes")
    ap.add_argument("--only", default="", help="comma list of scenarios: download,rps1,rps20")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server/client to CPUs")
    ap.add_argument("--out", default=str(RESULTS / "latest.md"))
    a = ap.parse_args()

    build = Path(a.build).resolve()
    h3q_server = build / "h3q-server"
    bench = build / "h3q-bench"
    for p in (h3q_server, bench):
        if not os.access(p, os.X_OK):
            sys.exit(f"bench: {p} missing; build first (make build)")
    gtlsserver = find_exe("gtlsserver")

    pin = (os.cpu_count() or 1) >= 2 and not a.no_pin and shutil.which("taskset")
    server_cpu, client_cpu = (0, 1) if pin else (None, None)

    work = RESULTS / "work"
    htdocs = work / "htdocs"
    htdocs.mkdir(parents=True, exist_ok=True)
    logdir = work / "logs"
    logdir.mkdir(exist_ok=True)
    big_name = f"file_{a.size}"
    log(f"bench: preparing {htdocs} ({a.size} byte file, 1 KB file)")
    write_pattern_file(htdocs / big_name, a.size)
    write_pattern_file(htdocs / "1k", KB)
    certs = work / "certs"
    subprocess.run(["bash", str(ROOT / "scripts" / "gen-cert.sh"), str(certs)], check=True,
                   stdout=subprocess.DEVNULL)
    cert, key = certs / "cert.pem", certs / "key.pem"

    hp, np_ = free_udp_port(), free_udp_port()
    h3q = Server("h3q-server",
                 [str(h3q_server), "--addr", "127.0.0.1", "--port", str(hp), "--cert", str(cert),
                  "--key", str(key), "--root", str(htdocs), "--max-payload", str(PAYLOAD),
                  "--log-level", "error"],
                 hp, "h3q-server listening on", server_cpu)
    ngx = Server("gtlsserver",
                 [gtlsserver, "-q", "--no-quic-dump", "--no-http-dump", "-d", str(htdocs),
                  f"--max-udp-payload-size={PAYLOAD}", "--no-pmtud",
                  "127.0.0.1", str(np_), str(key), str(cert)],
                 np_, None, server_cpu)

    H_BYTES, H_FILE, NG = "h3q /bytes", "h3q file", "ngtcp2 file"
    scenarios = [
        Scenario("download", f"{a.size / 1e9:g} GB download, 1 connection", "goodput_mbit_s",
                 "Mbit/s", ["-c", "1", "-s", "1", "-n", "1"],
                 {H_BYTES: f"/bytes/{a.size}", H_FILE: f"/{big_name}", NG: f"/{big_name}"}),
        Scenario("rps1", "1 KB GETs, 1 connection x 100 streams", "req_per_s", "req/s",
                 ["-c", "1", "-s", "100", "-D", str(a.duration)],
                 {H_BYTES: "/bytes/1024", H_FILE: "/1k", NG: "/1k"}),
        Scenario("rps20", "1 KB GETs, 20 connections x 10 streams", "req_per_s", "req/s",
                 ["-c", "20", "-s", "10", "-D", str(a.duration)],
                 {H_BYTES: "/bytes/1024", H_FILE: "/1k", NG: "/1k"}),
    ]
    if a.only:
        keep = set(a.only.split(","))
        scenarios = [s for s in scenarios if s.key in keep]
    servers = {H_BYTES: h3q, H_FILE: h3q, NG: ngx}
    labels = [H_BYTES, H_FILE, NG]

    try:
        h3q.start(logdir)
        ngx.start(logdir)
        log(f"bench: h3q-server :{hp}, gtlsserver :{np_}; pinning: "
            f"{'servers on CPU 0, client on CPU 1' if pin else 'none'}")
        # one warm-up request per target (page cache, code paths)
        for sc in scenarios:
            if sc.key == "download":
                continue  # the file was just written or read: it is in the page cache
            for lab in labels:
                s = servers[lab]
                run_bench(str(bench), f"https://127.0.0.1:{s.port}{sc.paths[lab]}",
                          ["-c", "1", "-s", "1", "-n", "1"], client_cpu, 120)
        for r in range(a.runs):
            for sc in scenarios:
                # interleave and rotate the order so no server always goes first
                order = labels[r % 3:] + labels[:r % 3]
                for lab in order:
                    s = servers[lab]
                    url = f"https://127.0.0.1:{s.port}{sc.paths[lab]}"
                    timeout = 300 if sc.key == "download" else a.duration + 60
                    res = run_bench(str(bench), url, sc.args, client_cpu, timeout)
                    sc.results.setdefault(lab, []).append(res)
                    val = res.get(sc.metric)
                    log(f"  run {r + 1}/{a.runs} {sc.key:8} {lab:12} "
                        f"{fmt(val, sc.unit) if isinstance(val, (int, float)) else '-':>10} {sc.unit}"
                        + (f"  ERROR {res['error']}" if res.get("error") else ""))
                    for srv in (h3q, ngx):
                        if srv.proc.poll() is not None:
                            raise SystemExit(f"bench: {srv.name} died (exit {srv.proc.returncode});"
                                             f" log: {srv.log_path}")
        rss = {"h3q-server": h3q.peak_rss_kb(), "gtlsserver": ngx.peak_rss_kb()}
    finally:
        h3q.stop()
        ngx.stop()

    # ---- report
    lines = ["# h3q benchmark: h3q-server vs ngtcp2 gtlsserver", ""]
    lines.append(f"Client for every row: `h3q-bench` (same binary, same flags), UDP payload "
                 f"{PAYLOAD} for all parties, loopback 127.0.0.1, medians of {a.runs} runs "
                 f"interleaved between servers; request-rate runs last {a.duration} s each. "
                 + ("Servers pinned to CPU 0, client to CPU 1 (taskset)." if pin else "No CPU pinning."))
    lines.append("")
    head = ["scenario", "metric"] + labels + ["h3q /bytes ÷ ngtcp2", "h3q file ÷ ngtcp2"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    detail = []
    for sc in scenarios:
        med = {}
        errs = {}
        for lab in labels:
            rs = sc.results.get(lab, [])
            vals = [x[sc.metric] for x in rs if not x.get("error") and isinstance(x.get(sc.metric), (int, float))]
            med[lab] = median(vals)
            errs[lab] = len(rs) - len(vals)
        ratio = lambda x: (f"{med[x] / med[NG]:.2f}" if med[x] and med[NG] else "n/a")  # noqa: E731
        cells = [sc.title, sc.unit] + [fmt(med[l], sc.unit) + (f" ({errs[l]} failed runs)" if errs[l] else "")
                                       for l in labels] + [ratio(H_BYTES), ratio(H_FILE)]
        lines.append("| " + " | ".join(cells) + " |")
        for lab in labels:
            rs = [x for x in sc.results.get(lab, []) if not x.get("error")]
            if rs:
                p50 = median([x["latency_ms"]["p50"] for x in rs if x.get("latency_ms")])
                p99 = median([x["latency_ms"]["p99"] for x in rs if x.get("latency_ms")])
                vals = sorted(round(x[sc.metric]) for x in rs)
                detail.append(f"| {sc.title} | {lab} | {vals} | {fmt(p50, '')} | {fmt(p99, '')} |")
            for x in sc.results.get(lab, []):
                if x.get("error"):
                    detail.append(f"| {sc.title} | {lab} | ERROR: {x['error']} | | |")
    lines += ["", "Per-run values and latency (median over runs of each run's p50/p99, ms):", "",
              "| scenario | target | all runs | p50 ms | p99 ms |", "|---|---|---|---|---|", *detail]
    lines += ["", f"Server peak RSS over the whole session (VmHWM): "
              f"h3q-server {rss['h3q-server']} kB, gtlsserver {rss['gtlsserver']} kB.", ""]
    lines += ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine()]
    lines.append("")
    text = "\n".join(lines)
    print(text)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    (out.with_suffix(".json")).write_text(json.dumps(
        {sc.key: sc.results for sc in scenarios}, indent=1))
    log(f"bench: wrote {out}")
    failed = any(x.get("error") for sc in scenarios for rs in sc.results.values() for x in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
