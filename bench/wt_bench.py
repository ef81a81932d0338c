#!/usr/bin/env python3
"""WebTransport: h3q-server --webtransport vs an echo server on
webtransport-go v0.10 (quic-go), measured with the same client
(tests/interop/wtgo, -scenario bench).

Two numbers per run: the datagram echo rate (a window of 32 datagrams of
1000 bytes in flight for --seconds, each echo making room for the next) and
the goodput of one bidirectional stream echoing --stream-mb MiB. Servers on
CPU 0, the client on CPU 1, UDP payloads pinned to 1350 bytes for every
party. Runs alternate between the servers, order rotating; the table shows
medians. Writes bench/results/wt-latest.md (and .json). Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import PAYLOAD, RESULTS, ROOT, Server, free_udp_port, log, machine, median  # noqa: E402

WINDOW = 32
DGRAM_SIZE = 1000


def build_wtgo(build: Path) -> str:
    r = subprocess.run(["bash", str(ROOT / "scripts" / "build-go-peer.sh"), str(build), "wtgo"],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        sys.exit(f"wt_bench: building the webtransport-go peer failed:\n{r.stderr[-3000:]}")
    return r.stdout.strip().splitlines()[-1]


def run_client(exe: str, port: int, args: argparse.Namespace, cpu: int | None) -> dict:
    cmd = [exe, "-url", f"https://127.0.0.1:{port}/wt/echo", "-insecure", "-scenario", "bench",
           "-seconds", f"{args.seconds}s", "-stream-mb", str(args.stream_mb),
           "-window", str(WINDOW), "-dgram-size", str(DGRAM_SIZE), "-payload", str(PAYLOAD),
           "-timeout", f"{int(args.seconds) + 120}s"]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 180,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    out: dict = {}
    for line in p.stdout.splitlines():
        obj = json.loads(line)
        out["summary" if obj.get("summary") else obj["name"]] = obj
    d, s = out.get("bench_datagrams", {}), out.get("bench_stream", {})
    if p.returncode or not out.get("summary", {}).get("ok") or d.get("error") or s.get("error") \
            or not s.get("ok"):
        return {"error": f"exit {p.returncode}: {json.dumps(out)[:400]} {p.stderr[-300:]}"}
    return {"echo_per_s": d["echo_per_s"], "sent": d["sent"], "echoed": d["echoed"],
            "mbit_s": s["mbit_s"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--stream-mb", type=int, default=256)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "wt-latest.md"))
    args = ap.parse_args()
    build = Path(args.build).resolve()
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    srv_cpu, cli_cpu = (0, 1) if pin else (None, None)
    work = RESULTS / "work"
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(ROOT / "scripts" / "gen-cert.sh"), str(work / "certs")],
                   check=True, capture_output=True)
    cert, key = str(work / "certs" / "cert.pem"), str(work / "certs" / "key.pem")
    wtgo = build_wtgo(build)
    p1, p2 = free_udp_port(), free_udp_port()
    servers = {
        "h3q": Server("h3q", [str(build / "h3q-server"), "--addr", "127.0.0.1", "--port", str(p1),
                              "--cert", cert, "--key", key, "--webtransport",
                              "--max-payload", str(PAYLOAD), "--log-level", "error"],
                      p1, "h3q-server listening", srv_cpu),
        "webtransport-go": Server("wtgo", [wtgo, "-serve", f"127.0.0.1:{p2}", "-cert", cert,
                                           "-key", key, "-payload", str(PAYLOAD)],
                                  p2, "wtgo listening", srv_cpu),
    }
    results: dict[str, list[dict]] = {k: [] for k in servers}
    try:
        for s in servers.values():
            s.start(work)
        names = list(servers)
        for rnd in range(args.runs):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                r = run_client(wtgo, servers[name].port, args, cli_cpu)
                log(f"wt_bench: run {rnd + 1}/{args.runs} {name}: {r}")
                results[name].append(r)
                time.sleep(0.5)
    finally:
        for s in servers.values():
            s.stop()
    ok = {k: [r for r in v if "error" not in r] for k, v in results.items()}
    rows = []
    for key, title, unit in (("echo_per_s", f"datagram echoes/s (window {WINDOW}, "
                              f"{DGRAM_SIZE} B)", "/s"),
                             ("mbit_s", f"bidi stream echo, {args.stream_mb} MiB", "Mbit/s")):
        med = {k: median([r[key] for r in v]) for k, v in ok.items()}
        ratio = (med["h3q"] / med["webtransport-go"]
                 if med["h3q"] and med["webtransport-go"] else None)
        per_run = "; ".join(f"{k}: " + ", ".join(f"{r[key]:,.0f}" for r in v) for k, v in ok.items())
        rows.append((title, med, ratio, per_run))
    lines = ["# WebTransport echo: h3q vs webtransport-go", "",
             "| measure | h3q | webtransport-go | h3q ÷ wt-go |", "| --- | ---: | ---: | ---: |"]
    for title, med, ratio, _ in rows:
        cell = lambda v: "n/a" if v is None else f"{v:,.0f}"  # noqa: E731
        lines.append(f"| {title} | {cell(med['h3q'])} | {cell(med['webtransport-go'])} | "
                     f"{'n/a' if ratio is None else f'{ratio:.2f}'} |")
    lines += ["", f"Medians of {args.runs} runs; per run:", ""]
    lines += [f"- {title}: {per_run}" for title, _, _, per_run in rows]
    failed = {k: len(v) - len(ok[k]) for k, v in results.items() if len(v) != len(ok[k])}
    if failed:
        lines += ["", f"Failed runs (excluded): {failed}"]
    lines += ["", "| machine | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in machine()]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
