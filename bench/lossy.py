"""Goodput under loss: one download per server through h3q-relay
(tests/tools/relay.c) at each loss rate, both directions, seeded; the
client is h3q-client. bench/run.sh runs it on a full `make bench`.

  bench/lossy.py [--build DIR] [--servers h3q,ngtcp2,...] [--losses 1,5,10]
                 [--size BYTES] [--runs N]

Prints a markdown table (Mbit/s, median of the runs; "fail" when a
download did not finish within its time limit) and writes it to
bench/results/lossy-latest.md."""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import peers

ROOT = peers.ROOT
MB = 1000 * 1000


def start_relay(build: Path, port: int, loss: float, seed: int) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([str(build / "h3q-relay"), "--server", f"127.0.0.1:{port}",
                          "--loss", str(loss), "--seed", str(seed), "--duration", "900"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline().strip()
    if not line.startswith("h3q-relay listening on"):
        p.kill()
        raise peers.PeerError(f"h3q-relay did not start: {line!r}")
    return p, int(line.rsplit(":", 1)[1])


def one_download(build: Path, url: str, size: int, timeout: float) -> float | None:
    """Goodput in Mbit/s, or None when the download failed."""
    cmd = [str(build / "h3q-client"), "-k", "-o", "/dev/null", "--timeout", str(int(timeout)), url]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return None
    elapsed = time.monotonic() - t0
    return size * 8 / elapsed / 1e6 if r.returncode == 0 else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--servers", default="h3q,ngtcp2,tokio-quiche,quic-go")
    ap.add_argument("--losses", default="1,5,10", help="loss rates in percent")
    ap.add_argument("--size", type=int, default=20 * MB, help="download size in bytes")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120, help="seconds per download")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "lossy-latest.md"))
    a = ap.parse_args()
    build = Path(a.build).resolve()
    servers = [s for s in a.servers.split(",") if s]
    losses = [float(x) for x in a.losses.split(",") if x]
    tmp = Path(tempfile.mkdtemp(prefix="h3q-lossy-"))
    htdocs = tmp / "htdocs"
    htdocs.mkdir()
    (htdocs / "big.bin").write_bytes(bytes(range(251)) * (a.size // 251) + b"x" * (a.size % 251))
    (htdocs / "small.txt").write_bytes(b"small\n")
    subprocess.run(["bash", str(ROOT / "scripts" / "gen-cert.sh"), str(tmp)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = peers.Tools(build, tmp, build / "h3q-server", build / "h3q-bench")
    t.prepare(servers, need_quicgo=False)
    rows, failed = [], False
    for name in servers:
        srv = peers.make_server(name, t, htdocs, tmp / "cert.pem", tmp / "key.pem", None,
                                "big.bin", "small.txt")
        srv.start(tmp)
        row = [name]
        try:
            for loss in losses:
                got = []
                for run in range(a.runs):
                    relay, port = start_relay(build, srv.port, loss, seed=run + 1)
                    try:
                        g = one_download(build, f"https://127.0.0.1:{port}/big.bin", a.size,
                                         a.timeout)
                    finally:
                        relay.terminate()
                        relay.wait(10)
                    if g is not None:
                        got.append(g)
                    peers.log(f"{name} {loss}% run {run + 1}: "
                              f"{'fail' if g is None else f'{g:.0f} Mbit/s'}")
                failed |= len(got) < a.runs
                row.append(f"{statistics.median(got):.0f}" if got else "fail")
        finally:
            srv.stop()
        rows.append(row)
    head = ["server"] + [f"{x:g}% loss" for x in losses]
    lines = [f"Goodput in Mbit/s, {a.size // MB} MB download through h3q-relay "
             f"(loss both ways), h3q-client, median of {a.runs}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
