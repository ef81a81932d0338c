#!/usr/bin/env python3
"""HTTP/3 servers side by side: h3q-server, ngtcp2's gtlsserver,
tokio-quiche, quic-go and Bun, each measured with two clients (h3q-bench
and quic-go's load client) on loopback.

Run through bench/run.sh (make bench). See bench/README.md for the method.
Writes bench/results/latest.md (and latest.json) and prints the tables;
--smoke writes bench/results/smoke.md instead.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import memory  # noqa: E402
import peers  # noqa: E402
from peers import PAYLOAD, ROOT, PeerError, Server, Tools, log  # noqa: E402

RESULTS = ROOT / "bench" / "results"
GIB = 1 << 30
KB = 1024
H3Q = "h3q"


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


def warm_page_cache(path: Path) -> None:
    """Reads path once so no server's first download pays for the disk (the
    file may have been evicted since an earlier bench wrote it)."""
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


def loadavg() -> tuple[float, float, float]:
    with contextlib.suppress(OSError, ValueError):
        a = Path("/proc/loadavg").read_text().split()
        return float(a[0]), float(a[1]), float(a[2])
    return (0.0, 0.0, 0.0)


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all CPUs), from /proc/stat."""
    with contextlib.suppress(OSError, ValueError):
        f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        v = [int(x) for x in f[:8]]
        busy = sum(v) - v[3] - v[4]  # minus idle and iowait
        return busy / os.sysconf("SC_CLK_TCK")
    return 0.0


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# --------------------------------------------------------------------------
# scenarios and runs


@dataclass
class Scenario:
    key: str
    title: str
    metric: str  # key in the client's JSON
    unit: str
    conns: int
    streams: int
    content: str  # "big" or "small"
    duration: float | None  # None: one request per stream (-n)
    rate: int = 0  # open loop: requests/s offered (h3q-bench --rate); 0: closed loop
    results: dict[tuple[str, str], list[dict]] = field(default_factory=dict)  # (client, server)


def client_cmd(client: str, t: Tools, url: str, sc: Scenario, timeout: float,
               threads: int = 1) -> list[str] | None:
    """The client's command line, or None when it cannot run sc."""
    if client == "h3q-bench":
        cmd = [str(t.h3q_bench), url, "-c", str(sc.conns), "-s", str(sc.streams), "-k",
               "--max-payload", str(PAYLOAD), "--json", "--timeout", str(int(timeout) - 10)]
        if threads > 1 and sc.conns > 1:
            cmd += ["--threads", str(min(threads, sc.conns))]
        if sc.rate:
            cmd += ["--rate", str(sc.rate)]
        return cmd + (["-D", f"{sc.duration:g}"] if sc.duration else ["-n", str(sc.conns * sc.streams)])
    if sc.rate:
        return None  # quic-go's load client has no open-loop mode
    cmd = [str(t.quicgo), "load", "-url", url, "-c", str(sc.conns), "-s", str(sc.streams),
           "-timeout", str(int(timeout) - 10)]
    return cmd + (["-D", f"{sc.duration:g}"] if sc.duration else ["-n", str(sc.conns * sc.streams)])


def run_client(cmd: list[str], cpu: int | None, timeout: float, srv: Server) -> dict:
    cmd = peers.placed(cmd, cpu)
    load1 = loadavg()[0]
    srv_cpu0, busy0, kids0 = srv.cpu_seconds(), machine_busy_s(), children_cpu_s()
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s", "cmd": " ".join(cmd)}
    wall = time.monotonic() - t0
    srv_cpu1, busy1, kids1 = srv.cpu_seconds(), machine_busy_s(), children_cpu_s()
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
    obj.update(wall_s=wall, exit=p.returncode, load1=load1)
    # The client is the only child running meanwhile: its CPU time shows
    # whether it, not the server, was the bottleneck.
    obj["client_cpu_s"] = kids1 - kids0
    if srv_cpu0 is not None and srv_cpu1 is not None:
        obj["server_cpu_s"] = srv_cpu1 - srv_cpu0
        # What the rest of the machine did meanwhile: busy CPU time that was
        # neither the server's nor the client's (other people's builds, and
        # softirq work the kernel charged to no process).
        obj["other_cpu_pct"] = 100 * max(0.0, (busy1 - busy0) - (srv_cpu1 - srv_cpu0)
                                         - (kids1 - kids0)) / wall
    if p.returncode != 0 or obj.get("failed", 0) or not obj.get("ok"):
        obj["error"] = (f"exit {p.returncode}, ok={obj.get('ok')} failed={obj.get('failed')}: "
                        f"{p.stderr.strip()[-200:]}")
    return obj


def cpu_cost(res: dict, sc: Scenario, who: str = "server") -> float | None:
    """Server (or client) CPU per GB (seconds) for downloads, per request
    (µs) otherwise."""
    cpu = res.get(f"{who}_cpu_s")
    if cpu is None or res.get("error"):
        return None
    if sc.content == "big":
        b = res.get("body_bytes") or 0
        return cpu / (b / 1e9) if b else None
    ok = res.get("ok") or 0
    return cpu / ok * 1e6 if ok else None


# --------------------------------------------------------------------------
# report


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if unit in ("Mbit/s", "req/s"):
        return f"{v:,.0f}"
    if unit in ("CPU s/GB", "KB/conn"):
        return f"{v:.1f}" if v < 100 else f"{v:,.0f}"
    if unit == "CPU µs/req":
        return f"{v:.1f}" if v < 100 else f"{v:,.0f}"
    return f"{v:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "n/a"


def good(rs: list[dict]) -> list[dict]:
    return [x for x in rs if not x.get("error")]


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *["| " + " | ".join(r) + " |" for r in rows]]


def report(a, scenarios: list[Scenario], servers: list[str], clients: list[str],
           idle: dict[str, list[dict]] | None, pin: bool, load_start, load_end,
           started: str, peak_rss: dict, mach: list) -> str:
    peers_ = [s for s in servers if s != H3Q]
    has_h3q = H3Q in servers
    # The Bun package against Bun's own HTTP/3 server, same handler.
    bun_pairs = [(p, q) for p, q in (("h3q-bun", "bun"), ("h3q-bun-files", "bun"),
                                     ("h3q-bun-memory", "bun-memory"))
                 if p in servers and q in servers]
    L = [f"# HTTP/3 servers side by side ({started} UTC)", ""]
    L.append(
        f"Loopback 127.0.0.1, UDP payload {PAYLOAD} for every party, same files "
        f"(`i % 251` pattern) and certificate for every server, medians of {a.runs} runs "
        f"interleaved between servers (order rotated each round); request-rate runs last "
        f"{a.duration:g} s. "
        + ("Servers pinned to CPU 0, clients to CPU 1 (taskset)." if pin else "No CPU pinning.")
        + (f" Servers and clients ran at real-time priority (SCHED_FIFO {a.rt}, chrt), so other "
           "work on the machine could not delay them." if getattr(a, "rt", 0) else ""))
    L += ["", f"Load average (1/5/15 min) at start {load_start[0]:.2f} / {load_start[1]:.2f} / "
          f"{load_start[2]:.2f}, at end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f}."]
    runs = [x for sc in scenarios for rs in sc.results.values() for x in rs]
    l1 = [x["load1"] for x in runs if "load1" in x]
    oth = [x["other_cpu_pct"] for x in runs if "other_cpu_pct" in x]
    if l1:
        L.append(f"1-minute load average before each run: min {min(l1):.2f}, median "
                 f"{statistics.median(l1):.2f}, max {max(l1):.2f}. Busy CPU time outside the "
                 f"server and client during a run (other processes; softirq work charged to no "
                 f"process): median {statistics.median(oth):.0f}%, max {max(oth):.0f}% of one "
                 f"CPU.")
    L.append("")
    for client in clients:
        L += [f"## Client: {client}", ""]
        head = (["scenario", "metric", *servers] + ([f"h3q ÷ {p}" for p in peers_] if has_h3q else [])
                + [f"{p} ÷ {q}" for p, q in bun_pairs])
        rows = []
        for sc in scenarios:
            if not any(sc.results.get((client, s)) for s in servers):
                continue  # not run with this client (open loop: h3q-bench only)
            med, lat, errs = {}, {}, {}
            for s in servers:
                rs = sc.results.get((client, s), [])
                g = good(rs)
                med[s] = median([x[sc.metric] for x in g])
                errs[s] = len(rs) - len(g)
                p50 = median([x["latency_ms"]["p50"] for x in g if x.get("latency_ms")])
                p99 = median([x["latency_ms"]["p99"] for x in g if x.get("latency_ms")])
                mean = median([x["latency_ms"]["mean"] for x in g
                               if "mean" in (x.get("latency_ms") or {})])
                lat[s] = (p50, p99, mean)
            cells = [fmt(med[s], sc.unit) + (f" ({errs[s]} failed)" if errs[s] else "")
                     for s in servers]
            rows.append([sc.title, sc.unit, *cells]
                        + ([ratio(med[H3Q], med[p]) for p in peers_] if has_h3q else [])
                        + [ratio(med[p], med[q]) for p, q in bun_pairs])
            if sc.duration:
                rows.append(["", "p50 / p99 / mean ms",
                             *[f"{fmt(lat[s][0])} / {fmt(lat[s][1])} / {fmt(lat[s][2])}"
                               if lat[s][0] is not None else "n/a" for s in servers]]
                            + (["" for _ in peers_] if has_h3q else [])
                            + ["" for _ in bun_pairs])
            if sc.duration and not sc.rate and any(lat[s][2] for s in servers):
                # Little's law: requests in flight on average = req/s x mean
                # latency. A closed loop holds that many (at most conns x
                # streams, less while stream credit runs short), so its mean
                # latency is in flight / req/s whatever the server does:
                # a mean under 1 ms needs in flight x 1000 req/s.
                rows.append(["", "in flight (req/s × mean)",
                             *[f"{med[s] * lat[s][2] / 1e3:.0f}" if med[s] and lat[s][2]
                               else "n/a" for s in servers]]
                            + (["" for _ in peers_] if has_h3q else [])
                            + ["" for _ in bun_pairs])
        L += table(head, rows) + [""]
    # server CPU
    L += ["## Server CPU time", "",
          "utime+stime of the server process (all threads) from /proc/PID/stat, before and "
          "after each run, divided by the GB of body delivered (downloads) or by the "
          "requests completed (request rate); median over runs. On loopback the kernel "
          "charges part of the receiver's work to the sender. Lower is better, so here "
          "h3q ÷ peer below 1 favours h3q.", ""]
    head = ["scenario", "client", "unit", *servers] + ([f"h3q ÷ {p}" for p in peers_] if has_h3q else [])
    rows = []
    crow = []
    for sc in scenarios:
        unit = "CPU s/GB" if sc.content == "big" else "CPU µs/req"
        for client in clients:
            if not any(sc.results.get((client, s)) for s in servers):
                continue
            med = {s: median([c for c in (cpu_cost(x, sc) for x in sc.results.get((client, s), []))
                              if c is not None]) for s in servers}
            rows.append([sc.title, client, unit, *[fmt(med[s], unit) for s in servers]]
                        + ([ratio(med[H3Q], med[p]) for p in peers_] if has_h3q else []))
            rs = {s: [x for x in sc.results.get((client, s), []) if not x.get("error")]
                  for s in servers}
            cmed = {s: median([c for c in (cpu_cost(x, sc, "client") for x in rs[s])
                               if c is not None]) for s in servers}
            busy = {s: median([100 * x["client_cpu_s"] / x["wall_s"] for x in rs[s]
                               if x.get("client_cpu_s") is not None and x.get("wall_s")])
                    for s in servers}
            crow.append([sc.title, client, unit,
                         *[f"{fmt(cmed[s], unit)} ({busy[s]:.0f}%)" if cmed[s] is not None
                           else "n/a" for s in servers]])
    L += table(head, rows) + [""]
    if any(c != "n/a" for r in crow for c in r[3:]):
        L += ["Client CPU time (utime+stime of the client process, from the rusage of "
              "bench.py's children) per unit of work, and in brackets the share of one CPU "
              "it used over the run's wall time (handshakes included): near 100% the client "
              "limits the result, well below it the server (or the machine's load) does.", ""]
        L += table(["scenario", "client", "unit", *servers], crow) + [""]
    if idle is not None:
        L += [f"## Memory: {a.idle_conns:,} idle connections", "",
              "A fresh server alone on CPU 0; quic-go's client opens the connections (each "
              "completes one GET of the 1 KB file, then stays open, kept alive by PINGs); "
              "(VmRSS with them - VmRSS before) / connections. Median over runs.", ""]
        med = {s: median([x["kb_per_conn"] for x in idle.get(s, [])
                          if "kb_per_conn" in x and not x.get("error")]) for s in servers}
        opened = {s: "/".join(str(x.get("opened", 0)) for x in idle.get(s, [])) for s in servers}
        errs = {s: sum(1 for x in idle.get(s, []) if x.get("error")) for s in servers}
        head = ["", *servers] + ([f"h3q ÷ {p}" for p in peers_] if has_h3q else [])
        rows = [["KB per idle connection",
                 *[fmt(med[s], "KB/conn") + (f" ({errs[s]} failed)" if errs[s] else "")
                   for s in servers]] + ([ratio(med[H3Q], med[p]) for p in peers_] if has_h3q else []),
                ["connections open, per run", *[opened[s] for s in servers]]
                + (["" for _ in peers_] if has_h3q else [])]
        L += table(head, rows) + [""]
    # per-run detail
    L += ["## All runs", "", "Values per run in run order; errors are listed and excluded "
          "from medians.", ""]
    rows = []
    for sc in scenarios:
        for client in clients:
            for s in servers:
                rs = sc.results.get((client, s), [])
                if not rs:
                    continue
                vals = [fmt(x.get(sc.metric), sc.unit) if not x.get("error")
                        else "ERROR" for x in rs]
                cpu = [fmt(cpu_cost(x, sc), "CPU s/GB" if sc.content == "big" else "CPU µs/req")
                       for x in rs]
                rows.append([sc.title, client, s, ", ".join(vals), ", ".join(cpu)])
                rows += [[sc.title, client, s, f"ERROR: {x['error']}", ""] for x in rs if x.get("error")]
    L += table(["scenario", "client", "server", "metric per run",
                "server CPU per run"], rows) + [""]
    if idle is not None:
        rows = [[s, ", ".join(fmt(x.get("kb_per_conn"), "KB/conn") for x in idle.get(s, [])),
                 ", ".join(f"{x.get('open_s', 0) or 0:.1f}" for x in idle.get(s, [])),
                 "; ".join(x.get("error") or x["warning"] for x in idle.get(s, [])
                           if x.get("error") or x.get("warning"))] for s in servers]
        L += table(["server", "KB per idle connection, per run", "seconds to open all",
                    "errors and warnings"], rows) + [""]
    L.append("Server peak RSS during the throughput runs (VmHWM; servers that map files "
             "count the mapped pages): " + ", ".join(
                 f"{s} {v:,} kB" for s, v in peak_rss.items() if v) + ".")
    L += ["", "## Machine", "", "| | |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in mach]
    L.append("")
    return "\n".join(L)


def render(data: dict) -> str:
    """The markdown report from the data bench.py saves as JSON (--render)."""
    a = argparse.Namespace(**data["args"])
    scenarios = make_scenarios(a)
    for sc in scenarios:
        for k, v in data["results"].get(sc.key, {}).items():
            c, s = k.split("|", 1)
            sc.results[(c, s)] = v
    return report(a, scenarios, data["servers"], data["clients"], data["idle"], data["pin"],
                  data["load_start"], data["load_end"], data["started"], data["peak_rss"],
                  data["machine"])


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

    def lock_version(lock: Path, name: str) -> str:
        with contextlib.suppress(OSError):
            m = re.search(rf'name = "{re.escape(name)}"\nversion = "([^"]+)"', lock.read_text())
            return m.group(1) if m else "?"
        return "?"

    dirty = sh("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no")
    return [
        ("date (UTC)", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")),
        ("h3q commit", sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
         + (" (+ uncommitted changes)" if dirty else "")),
        ("quiche (h3q)", lock_version(ROOT / "deps" / "quiche" / "Cargo.lock", "quiche")),
        ("ngtcp2-server (Debian)", sh("dpkg-query", "-W", "-f=${Version}", "ngtcp2-server")),
        ("tokio-quiche / its quiche",
         lock_version(ROOT / "bench" / "tokio-quiche-server" / "Cargo.lock", "tokio-quiche") + " / "
         + lock_version(ROOT / "bench" / "tokio-quiche-server" / "Cargo.lock", "quiche")),
        ("quic-go", "v0.65.0 (" + sh(peers.find_go_quiet(), "env", "GOVERSION") + ")"),
        ("bun", peers.BUN_VERSION),
        ("CPU", cpu),
        ("nproc", str(os.cpu_count())),
        ("memory", mem),
        ("kernel", platform.release()),
        ("OS", sh("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME")),
        ("compiler", (sh("cc", "--version").splitlines() or ["?"])[0]),
    ]


# --------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"), help="dir with h3q-server, h3q-bench")
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario, client and server (median)")
    ap.add_argument("--duration", type=float, default=5, help="seconds per request-rate run")
    ap.add_argument("--size", type=int, default=GIB, help="download size in bytes (1 GiB)")
    ap.add_argument("--idle-conns", type=int, default=10000, help="connections of the idle scenario")
    ap.add_argument("--only", default="",
                    help="comma list of scenarios: download,rps1,rps20,rps5,rps5open,"
                         "rps5openhigh,idle "
                         "(default all)")
    ap.add_argument("--servers", default=",".join(peers.DEFAULT_SERVERS),
                    help="comma list of servers (default: " + ",".join(peers.DEFAULT_SERVERS)
                    + "; also known: " + ",".join(sorted(set(peers.SERVER_NAMES) - set(peers.DEFAULT_SERVERS)))
                    + ")")
    ap.add_argument("--clients", default=",".join(peers.CLIENT_NAMES),
                    help="comma list of clients (default both): " + ",".join(peers.CLIENT_NAMES))
    ap.add_argument("--no-pin", action="store_true", help="do not pin servers/clients to CPUs")
    ap.add_argument("--rt", type=int, default=None, metavar="PRIO",
                    help="run servers and clients at SCHED_FIFO priority PRIO (chrt), so "
                         "other work on the machine cannot delay them; 0: normal scheduling "
                         "(default: 10 when root and chrt exists and no Bun server is "
                         "measured, else 0)")
    ap.add_argument("--client-threads", type=int, default=0,
                    help="h3q-bench --threads for scenarios with several connections "
                         "(default: the CPUs the client may run on: 1 when pinned)")
    ap.add_argument("--open-rate", type=int, default=5000,
                    help="requests/s offered in the open-loop 5 x 100 scenario (rps5open)")
    ap.add_argument("--open-rate-high", type=int, default=50000,
                    help="requests/s offered in the second open-loop 5 x 100 scenario "
                         "(rps5openhigh; 0: skip it)")
    ap.add_argument("--smoke", action="store_true",
                    help="quick check that every peer builds and answers: 1 MiB download, "
                         "1 s request-rate runs, 1 run, 50 idle connections")
    ap.add_argument("--out", default=None, help="markdown output (default results/latest.md)")
    ap.add_argument("--render", metavar="JSON",
                    help="only rewrite the report from a saved latest.json (to --out)")
    a = ap.parse_args()
    if a.smoke:
        a.runs, a.duration, a.size, a.idle_conns = 1, 1, 1 << 20, 50
    if a.rt is None:
        # Bun needs its background threads (collector, finalizers) to run
        # beside the JS thread: under SCHED_FIFO on one CPU they starve, and
        # Bun.serve ran out of descriptors (EMFILE) at 20 x 10. Bun's servers
        # are therefore measured at normal priority unless asked otherwise.
        bun = any(s.startswith(("bun", "h3q-bun")) for s in a.servers.split(","))
        a.rt = 10 if os.geteuid() == 0 and shutil.which("chrt") and not bun else 0
    a.out = a.out or str(RESULTS / ("smoke.md" if a.smoke else "latest.md"))
    return a


def make_scenarios(a) -> list[Scenario]:
    size_title = f"{a.size / GIB:g} GiB" if a.size >= GIB else f"{a.size / (1 << 20):g} MiB"
    d = a.duration
    all_ = [
        Scenario("download", f"{size_title} download, 1 connection", "goodput_mbit_s", "Mbit/s",
                 1, 1, "big", None),
        Scenario("rps1", "1 KB GETs, 1 conn x 100 streams", "req_per_s", "req/s", 1, 100, "small", d),
        Scenario("rps20", "1 KB GETs, 20 conns x 10 streams", "req_per_s", "req/s", 20, 10, "small", d),
        Scenario("rps5", "1 KB GETs, 5 conns x 100 streams", "req_per_s", "req/s", 5, 100, "small", d),
        Scenario("rps5open", f"1 KB GETs, 5 x 100, open loop {a.open_rate:,} req/s", "req_per_s",
                 "req/s", 5, 100, "small", d, rate=a.open_rate),
    ]
    high = getattr(a, "open_rate_high", 0)  # absent from older saved runs
    if high:
        all_.append(Scenario("rps5openhigh", f"1 KB GETs, 5 x 100, open loop {high:,} req/s",
                             "req_per_s", "req/s", 5, 100, "small", d, rate=high))
    keep = set(a.only.split(",")) if a.only else None
    return [s for s in all_ if keep is None or s.key in keep]


def client_threads(a, client_cpu) -> int:
    """h3q-bench threads: more than the client's CPUs only adds switches."""
    if a.client_threads > 0:
        return a.client_threads
    return 1 if client_cpu is not None else (os.cpu_count() or 1)


def run_throughput(a, t: Tools, scenarios, servers, clients, srv: dict[str, Server],
                   client_cpu) -> None:
    threads = client_threads(a, client_cpu)
    for name in servers:  # warm-up: code paths, page cache of the small file
        for client in clients:
            warm = Scenario("warm", "", "", "", 1, 1, "small", None)
            run_client(client_cmd(client, t, srv[name].url("small"), warm, 60), client_cpu, 60,
                       srv[name])
    for r in range(a.runs):
        for sc in scenarios:
            for client in clients:
                # interleave and rotate so no server always goes first
                order = servers[r % len(servers):] + servers[:r % len(servers)]
                for name in order:
                    s = srv[name]
                    timeout = 600 if sc.content == "big" else sc.duration + 60
                    cmd = client_cmd(client, t, s.url(sc.content), sc, timeout, threads)
                    if cmd is None:
                        continue
                    res = run_client(cmd, client_cpu, timeout, s)
                    sc.results.setdefault((client, name), []).append(res)
                    val = res.get(sc.metric)
                    log(f"  run {r + 1}/{a.runs} {sc.key:8} {client:9} {name:12} "
                        f"{fmt(val, sc.unit) if isinstance(val, (int, float)) else '-':>10} "
                        f"{sc.unit:6} cpu {fmt(cpu_cost(res, sc))} load {res.get('load1', 0):.2f}"
                        + (f"  ERROR {res['error']}" if res.get("error") else ""))
                    for n, x in srv.items():
                        if not x.alive():
                            raise PeerError(f"{n} died (exit {x.proc.returncode}); log: {x.log_path}")


def run_idle(a, t: Tools, servers, htdocs, cert, key, big, server_cpu, client_cpu) -> dict:
    out: dict[str, list[dict]] = {}
    for r in range(a.runs):
        order = servers[r % len(servers):] + servers[:r % len(servers)]
        for name in order:
            s = peers.make_server(name, t, htdocs, cert, key, server_cpu, big, "1k")
            s.start(t.logdir)
            try:
                res = memory.idle_per_conn(s, t.quicgo, a.idle_conns, client_cpu)
            finally:
                s.stop()
            res["load1"] = loadavg()[0]
            out.setdefault(name, []).append(res)
            log(f"  run {r + 1}/{a.runs} idle     quic-go   {name:12} "
                f"{fmt(res.get('kb_per_conn'), 'KB/conn'):>10} KB/conn "
                f"({res.get('opened')} open in {res.get('open_s') or 0:.1f} s)"
                + (f"  ERROR {res['error']}" if res.get("error") else "")
                + (f"  warning: {res['warning']}" if res.get("warning") else ""))
    return out


def main() -> int:
    a = parse_args()
    if a.render:
        text = render(json.loads(Path(a.render).read_text()))
        Path(a.out).write_text(text)
        print(text)
        return 0
    servers = [s for s in a.servers.split(",") if s]
    clients = [c for c in a.clients.split(",") if c]
    for s in servers:
        if s not in peers.SERVER_NAMES:
            sys.exit(f"bench: unknown server {s!r} (known: {','.join(peers.SERVER_NAMES)})")
    for c in clients:
        if c not in peers.CLIENT_NAMES:
            sys.exit(f"bench: unknown client {c!r} (known: {','.join(peers.CLIENT_NAMES)})")
    scenarios = make_scenarios(a)
    want_idle = not a.only or "idle" in a.only.split(",")
    pin = bool((os.cpu_count() or 1) >= 2 and not a.no_pin and shutil.which("taskset"))
    server_cpu, client_cpu = (0, 1) if pin else (None, None)
    peers.RT_PRIORITY = a.rt

    work = RESULTS / "work"
    htdocs, logdir = work / "htdocs", work / "logs"
    htdocs.mkdir(parents=True, exist_ok=True)
    logdir.mkdir(exist_ok=True)
    build = Path(a.build).resolve()
    t = Tools(build, logdir, build / "h3q-server", build / "h3q-bench")
    try:
        t.prepare(servers, need_quicgo="quic-go" in clients or want_idle)
    except PeerError as e:
        log(f"bench: {e}")
        return 1
    big = f"file_{a.size}"
    log(f"bench: preparing {htdocs} ({a.size} byte file, 1 KB file)")
    write_pattern_file(htdocs / big, a.size)
    write_pattern_file(htdocs / "1k", KB)
    warm_page_cache(htdocs / big)
    certs = work / "certs"
    subprocess.run(["bash", str(ROOT / "scripts" / "gen-cert.sh"), str(certs)], check=True,
                   stdout=subprocess.DEVNULL)
    cert, key = certs / "cert.pem", certs / "key.pem"

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    load_start = loadavg()
    srv: dict[str, Server] = {}
    peak: dict[str, int | None] = {}
    idle = None
    try:
        if scenarios:
            for name in servers:
                srv[name] = peers.make_server(name, t, htdocs, cert, key, server_cpu, big, "1k")
                srv[name].start(logdir)
            log("bench: " + ", ".join(f"{n} :{s.port}" for n, s in srv.items()) + "; pinning: "
                + ("servers on CPU 0, clients on CPU 1" if pin else "none"))
            run_throughput(a, t, scenarios, servers, clients, srv, client_cpu)
            peak = {n: s.peak_rss_kb() for n, s in srv.items()}
        for s in srv.values():
            s.stop()
        if want_idle:
            idle = run_idle(a, t, servers, htdocs, cert, key, big, server_cpu, client_cpu)
    except PeerError as e:
        log(f"bench: {e}")
        return 1
    finally:
        for s in srv.values():
            s.stop()

    data = {"args": vars(a), "servers": servers, "clients": clients, "pin": pin,
            "load_start": load_start, "load_end": loadavg(), "started": started,
            "peak_rss": peak, "machine": machine(), "idle": idle,
            "results": {sc.key: {f"{c}|{s}": v for (c, s), v in sc.results.items()}
                        for sc in scenarios}}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(data, indent=1))
    text = render(data)
    print(text)
    out.write_text(text)
    log(f"bench: wrote {out}")
    failed = any(x.get("error") for sc in scenarios for rs in sc.results.values() for x in rs)
    failed |= any(x.get("error") for rs in (idle or {}).values() for x in rs)
    missing = [f"{sc.key}/{c}/{s}" for sc in scenarios for c in clients for s in servers
               if not good(sc.results.get((c, s), []))
               and client_cmd(c, t, "", sc, 60) is not None]
    if missing:
        log(f"bench: no successful run for: {', '.join(missing)}")
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
