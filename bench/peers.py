"""The servers and clients that bench.py and memory.py compare (bench/ only).

Every server serves the same directory with the same certificate, UDP
payload pinned to 1350, otherwise its own defaults. Peers other than h3q
and ngtcp2 are built here on demand (never by make test):
  tokio-quiche  bench/tokio-quiche-server (cargo build --release --locked)
  quic-go       bench/quicgo              (go build, GOFLAGS=-mod=readonly)
  bun           bench/bun/node_modules    (npm ci by scripts/setup.sh bench)
  h3q-bun       the h3q Bun package (bindings/bun) on build/libh3q.so, run by
                that same Bun with the same fetch handler (bench/bun/h3q-server.js)
  h3q-bun-files the same package serving the directory natively (its files
                option: libh3q's static handler, no JavaScript per request)
  bun-memory, h3q-bun-memory  both Bun servers answering every request with
                the 1 KB file's bytes held in memory (no file I/O per request);
                not in the default list, and only meaningful for request rates
  h3q-w2        h3q-server --workers 2: two event loops on two threads, never
                pinned (it needs both CPUs, which it then shares with the
                client); not in the default list (bench/workers.py uses it)
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PAYLOAD = 1350  # UDP payload pinned for every party (loopback MTU is 64 KB)
GO_MIN_MINOR = 26  # quic-go v0.65.0
BUN_VERSION = "1.4.4"
# SCHED_FIFO priority of every server and client (bench.py --rt); 0: normal
# scheduling. Other work on the machine then cannot delay their wakeups.
RT_PRIORITY = 0


def placed(cmd: list[str], cpu: int | None) -> list[str]:
    """cmd pinned to cpu (taskset) and, when RT_PRIORITY is set, at that
    real-time priority (chrt). Both exec, so the pid stays cmd's."""
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    if RT_PRIORITY:
        cmd = ["chrt", "-f", str(RT_PRIORITY), *cmd]
    return cmd

# Order of columns in every table; h3q first, then the peers.
SERVER_NAMES = ["h3q", "ngtcp2", "tokio-quiche", "quic-go", "bun", "h3q-bun", "h3q-bun-files",
                "bun-memory", "h3q-bun-memory", "h3q-w2"]
# What runs unless --servers says otherwise.
DEFAULT_SERVERS = SERVER_NAMES[:7]
BUN_SERVERS = ("bun", "h3q-bun", "h3q-bun-files", "bun-memory", "h3q-bun-memory")
CLIENT_NAMES = ["h3q-bench", "quic-go"]


class PeerError(Exception):
    """A peer could not be built or started."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    """A port free for UDP and TCP alike (Bun listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise PeerError("no free port")


def find_system_exe(name: str) -> str:
    p = shutil.which(name) or next((f"{d}/{name}" for d in ("/usr/sbin", "/usr/bin")
                                    if os.access(f"{d}/{name}", os.X_OK)), None)
    if not p:
        raise PeerError(f"{name} not found (scripts/setup.sh bench installs ngtcp2-server)")
    return p


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a whole process (all threads) from /proc/PID/stat."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        s = Path(f"/proc/{pid}/stat").read_text()
        rest = s[s.rfind(")") + 2:].split()  # fields from 3 (state) on
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return None


def proc_status_kb(pid: int, key: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


# --------------------------------------------------------------------------
# building the peers


def _run_build(cmd: list[str], cwd: Path, env: dict | None, what: str, logdir: Path) -> None:
    logf = logdir / f"build-{what}.log"
    log(f"bench: building {what} ({' '.join(cmd)}; log {logf})")
    with open(logf, "wb") as f:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        tail = logf.read_text(errors="replace")[-3000:]
        raise PeerError(f"building {what} failed (exit {p.returncode}):\n{tail}")


def find_go() -> str:
    for g in (os.environ.get("GO", ""), shutil.which("go") or "", "/usr/local/go/bin/go"):
        if not g or not os.access(g, os.X_OK):
            continue
        with contextlib.suppress(Exception):
            v = subprocess.run([g, "env", "GOVERSION"], capture_output=True, text=True,
                               env={**os.environ, "GOTOOLCHAIN": "local"}, timeout=30).stdout
            minor = int(v.strip().split(".")[1])
            if minor >= GO_MIN_MINOR:
                return g
    raise PeerError(f"Go >= 1.{GO_MIN_MINOR} not found (quic-go v0.65.0 needs it): install it "
                    "to /usr/local/go or set GO=/path/to/go")


def find_go_quiet() -> str:
    with contextlib.suppress(PeerError):
        return find_go()
    return "go"


def build_quicgo(build: Path, logdir: Path) -> Path:
    """bench/quicgo -> BUILD/quicgo-bench; go's build cache makes a rebuild cheap."""
    out = build / "quicgo-bench"
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}
    _run_build([find_go(), "build", "-trimpath", "-buildvcs=false", "-o", str(out), "."],
               BENCH / "quicgo", env, "quic-go", logdir)
    return out


def build_tokio_quiche(logdir: Path) -> Path:
    crate = BENCH / "tokio-quiche-server"
    if not shutil.which("cargo"):
        raise PeerError("cargo not found (it also builds quiche for h3q)")
    _run_build(["cargo", "build", "--release", "--locked", "--quiet"], crate, None,
               "tokio-quiche", logdir)
    return crate / "target" / "release" / "tq-fileserver"


def find_bun() -> Path:
    bun = BENCH / "bun" / "node_modules" / ".bin" / "bun"
    if not os.access(bun, os.X_OK):
        raise PeerError(f"{bun} missing: run scripts/setup.sh bench (npm ci in bench/bun)")
    v = subprocess.run([str(bun), "--version"], capture_output=True, text=True, timeout=30)
    if v.stdout.strip() != BUN_VERSION:
        raise PeerError(f"bun {v.stdout.strip()!r} found, {BUN_VERSION} expected "
                        "(run scripts/setup.sh bench)")
    return bun


# --------------------------------------------------------------------------
# servers


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    ready: str | None  # stdout text meaning "listening"; None: poll the UDP port
    cpu: int | None
    paths: dict[str, str] = field(default_factory=dict)  # content key -> URL path
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def url(self, what: str) -> str:
        return f"https://127.0.0.1:{self.port}{self.paths[what]}"

    def start(self, logdir: Path) -> None:
        cmd = placed(self.cmd, self.cpu)
        self.log_path = logdir / f"{self.name}.log"
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        if not (self._wait_stdout() if self.ready else self._wait_port()):
            self.stop()
            raise PeerError(f"{self.name} did not start: {' '.join(cmd)}\n"
                            f"{self.log_path.read_text(errors='replace')[-2000:]}")

    def _wait_stdout(self) -> bool:
        deadline = time.monotonic() + 30
        fd = self.proc.stdout.fileno()
        buf = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return False
                buf += chunk
                if self.ready.encode() in buf:
                    self._drain()
                    return True
            if self.proc.poll() is not None:
                return False
        return False

    def _wait_port(self) -> bool:
        # gtlsserver prints nothing useful with -q: wait until the UDP port
        # is bound (a fresh bind of it fails).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                except OSError:
                    self._drain()
                    return True
            time.sleep(0.05)
        return False

    def _drain(self) -> None:
        def run():
            with contextlib.suppress(Exception):
                while self.proc.stdout.read(65536):
                    pass
        threading.Thread(target=run, daemon=True).start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float | None:
        return proc_cpu_seconds(self.proc.pid) if self.alive() else None

    def rss_kb(self) -> int | None:
        return proc_status_kb(self.proc.pid, "VmRSS") if self.alive() else None

    def peak_rss_kb(self) -> int | None:
        return proc_status_kb(self.proc.pid, "VmHWM") if self.alive() else None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Tools:
    """Executables; the optional ones are None until built or found."""
    build: Path
    logdir: Path
    h3q_server: Path
    h3q_bench: Path
    gtlsserver: str | None = None
    tq: Path | None = None
    quicgo: Path | None = None
    bun: Path | None = None

    def prepare(self, servers: list[str], need_quicgo: bool) -> None:
        for p in (self.h3q_server, self.h3q_bench):
            if not os.access(p, os.X_OK):
                raise PeerError(f"{p} missing; build first (make build)")
        if "ngtcp2" in servers:
            self.gtlsserver = find_system_exe("gtlsserver")
        if "quic-go" in servers or need_quicgo:
            self.quicgo = build_quicgo(self.build, self.logdir)
        if "tokio-quiche" in servers:
            self.tq = build_tokio_quiche(self.logdir)
        if any(s in servers for s in BUN_SERVERS):
            self.bun = find_bun()


def make_server(name: str, t: Tools, htdocs: Path, cert: Path, key: Path, cpu: int | None,
                big: str, small: str, h3q_args: list[str] | None = None) -> Server:
    """A not yet started server of the given name serving htdocs."""
    port = free_port()
    files = {"big": f"/{big}", "small": f"/{small}"}
    if name in ("h3q", "h3q-w2"):
        workers = ["--workers", "2"] if name == "h3q-w2" else []
        cmd = [str(t.h3q_server), "--addr", "127.0.0.1", "--port", str(port), "--cert", str(cert),
               "--key", str(key), "--root", str(htdocs), "--max-payload", str(PAYLOAD),
               "--log-level", "error", *workers, *(h3q_args or [])]
        # Two workers on one pinned CPU would only take turns.
        return Server(name, cmd, port, "h3q-server listening on",
                      None if name == "h3q-w2" else cpu, files)
    if name == "ngtcp2":
        cmd = [t.gtlsserver, "-q", "--no-quic-dump", "--no-http-dump", "-d", str(htdocs),
               f"--max-udp-payload-size={PAYLOAD}", "--no-pmtud",
               "127.0.0.1", str(port), str(key), str(cert)]
        return Server(name, cmd, port, None, cpu, files)
    if name == "tokio-quiche":
        cmd = [str(t.tq), "--addr", f"127.0.0.1:{port}", "--cert", str(cert), "--key", str(key),
               "--root", str(htdocs)]
        return Server(name, cmd, port, "tq-fileserver listening on", cpu, files)
    if name == "quic-go":
        cmd = [str(t.quicgo), "server", "-addr", f"127.0.0.1:{port}", "-cert", str(cert),
               "-key", str(key), "-root", str(htdocs)]
        return Server(name, cmd, port, "quicgo-bench server listening on", cpu, files)
    if name in ("bun", "bun-memory"):
        cmd = [str(t.bun), str(BENCH / "bun" / "server.js"), str(port), str(cert), str(key),
               str(htdocs), *(["--memory"] if name == "bun-memory" else [])]
        return Server(name, cmd, port, "bun listening on", cpu, files)
    if name in ("h3q-bun", "h3q-bun-files", "h3q-bun-memory"):
        # env execs too (same pid); the package finds the library by H3Q_LIB.
        mode = {"h3q-bun": [], "h3q-bun-files": ["--files"], "h3q-bun-memory": ["--memory"]}[name]
        cmd = ["env", f"H3Q_LIB={t.build / 'libh3q.so'}", str(t.bun),
               str(BENCH / "bun" / "h3q-server.js"), str(port), str(cert), str(key), str(htdocs),
               *mode]
        return Server(name, cmd, port, "h3q-bun listening on", cpu, files)
    raise PeerError(f"unknown server {name!r} (known: {', '.join(SERVER_NAMES)})")
