"""What steering costs: goodput of one download and the request rate of
one h3q-bench connection when the client's datagrams reach the server that
owns the connection (one server; or two on the port with eBPF steering)
and when every one of them lands on the other server of the port and is
handed over (--steering handoff).

  bench/steering.py [--build DIR] [--seconds S] [--windows N]

"Every datagram on the wrong server" is made deterministic with bind
addresses: the owner A binds 0.0.0.0:PORT and takes the connection; then B
binds 127.0.0.1:PORT, a more specific match, so the kernel delivers every
later datagram to 127.0.0.1:PORT to B, which hands it to A (B's
h3q_packets_handed_off_total is checked to grow). A's answers leave from
its own socket. The rates are read from A's metrics (response bytes,
requests) over --windows windows of --seconds each, after a one-second
warm-up; the median is printed, with the datagrams the other server
handed over per second and its CPU time per datagram (utime + stime from
/proc, which also holds its own idle loop). Servers run on CPU 0, the client on CPU 1
(taskset), as in bench/README.md. Prints a markdown table and writes it to
bench/results/steering-latest.md."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$")


class Server:
    def __init__(self, build: Path, certs: Path, addr: str, port: int, steering: str):
        self.cmd = ["taskset", "-c", "0", str(build / "h3q-server"), "--addr", addr,
                    "--port", str(port), "--cert", str(certs / "cert.pem"),
                    "--key", str(certs / "key.pem"), "--steering", steering,
                    "--metrics", "127.0.0.1:0", "--max-payload", "1350"]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        first = self.proc.stdout.readline()
        second = self.proc.stdout.readline()
        m = re.search(r"metrics on port (\d+)", second)
        if "listening" not in first or not m:
            self.proc.kill()
            raise SystemExit(f"h3q-server did not start: {first!r} {second!r}\n{self.cmd}")
        self.metrics_port = int(m.group(1))

    def sample(self, name: str, labels: str = "") -> float:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            for line in r.read().decode().splitlines():
                m = SAMPLE_RE.match(line)
                if m and m.group(1) == name and (m.group(2) or "") == labels:
                    return float(m.group(3))
        raise KeyError(name)

    def cpu_seconds(self) -> float:
        """utime + stime so far (taskset execs the server: same pid)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def free_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the client's connection")
        time.sleep(0.05)


def client_cmd(build: Path, kind: str, port: int) -> list[str]:
    base = ["taskset", "-c", "1"]
    url = f"https://127.0.0.1:{port}"
    if kind == "download":
        return base + [str(build / "h3q-client"), "-k", "--no-body", "--timeout", "0",
                       f"{url}/bytes/1000000000000"]
    return base + [str(build / "h3q-bench"), "-k", "-c", "1", "-s", "16", "-D", "600",
                   f"{url}/hello"]


def measure(a: Server, kind: str, seconds: float, windows: int) -> float:
    """Median over the windows: Mbit/s of UDP payload sent (a response
    body's bytes are counted when it ends), or requests/s."""
    name = "h3q_udp_bytes_sent_total" if kind == "download" else "h3q_requests_total"
    scale = 8 / 1e6 if kind == "download" else 1.0
    time.sleep(1)  # warm-up
    rates = []
    for _ in range(windows):
        v0, t0 = a.sample(name), time.monotonic()
        time.sleep(seconds)
        v1, t1 = a.sample(name), time.monotonic()
        rates.append((v1 - v0) * scale / (t1 - t0))
    return statistics.median(rates)


def scenario(build: Path, certs: Path, layout: str, kind: str, seconds: float,
             windows: int) -> tuple[float, float, float]:
    """Returns (rate, datagrams handed over per second by the other server,
    the other server's CPU microseconds per datagram handed over)."""
    port = free_port()
    steering = "handoff" if layout == "handoff" else "ebpf"
    a = Server(build, certs, "0.0.0.0" if layout == "handoff" else "127.0.0.1", port,
               steering if layout != "one" else "handoff")
    servers = [a]
    if layout == "ebpf":
        servers.append(Server(build, certs, "127.0.0.1", port, "ebpf"))
    client = subprocess.Popen(client_cmd(build, kind, port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        # The connection is A's (or, with eBPF, either server's: the
        # owner is the one that counts requests).
        wait_for(lambda: sum(s.sample("h3q_connections_active") for s in servers) >= 1)
        owner = max(servers, key=lambda s: s.sample("h3q_connections_active"))
        if layout == "handoff":
            servers.append(Server(build, certs, "127.0.0.1", port, "handoff"))
        other = [s for s in servers if s is not owner]
        h0 = sum(s.sample("h3q_packets_handed_off_total") for s in other)
        c0 = sum(s.cpu_seconds() for s in other)
        t0 = time.monotonic()
        rate = measure(owner, kind, seconds, windows)
        n = sum(s.sample("h3q_packets_handed_off_total") for s in other) - h0
        cpu = sum(s.cpu_seconds() for s in other) - c0
        return rate, n / (time.monotonic() - t0), cpu * 1e6 / n if n else 0.0
    finally:
        client.kill()
        client.wait()
        for s in servers:
            s.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--windows", type=int, default=3)
    args = ap.parse_args()
    build = Path(args.build)
    layouts = [("one", "one server"),
               ("ebpf", "two servers, eBPF steering (datagrams reach the owner)"),
               ("handoff", "two servers, every client datagram handed over")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        certs = Path(tmp)
        subprocess.run([str(ROOT / "scripts" / "gen-cert.sh"), str(certs)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for layout, label in layouts:
            dl = scenario(build, certs, layout, "download", args.seconds, args.windows)
            rq = scenario(build, certs, layout, "requests", args.seconds, args.windows)
            rows.append((label, *dl, *rq))
            print(f"{label}: {dl[0]:.0f} Mbit/s, {rq[0]:.0f} req/s", file=sys.stderr)
    load = os.getloadavg()
    lines = ["| layout | download (UDP payload Mbit/s) | handed over/s | us CPU each "
             "| requests/s (1 conn x 16) | handed over/s | us CPU each |",
             "|---|---|---|---|---|---|---|"]
    lines += ["| {} | {:.0f} | {:.0f} | {:.1f} | {:.0f} | {:.0f} | {:.1f} |".format(*r)
              for r in rows]
    lines.append(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "steering-latest.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
