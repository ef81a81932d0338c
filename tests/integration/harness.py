"""Shared helpers and fixtures for h3q's integration tests (conftest.py
re-exports the fixtures; test modules import helpers from here).

Environment (set by tests/CMakeLists.txt when ctest runs these):
  H3Q_BUILD_DIR   directory holding h3q-server, h3q-client, h3q-bench
  H3Q_SOURCE_DIR  the source tree (scripts/gen-cert.sh lives there)
  H3Q_SANITIZED   "1" for the ASan+UBSan build: timeouts are scaled up (x3)
                  and ASan's quarantine is kept small (see sanitizer_env).
                  Every server/client stderr is checked for sanitizer
                  reports in every build.
  H3Q_SERVER_ARGS extra h3q-server flags for every server started here, e.g.
                  "--embedded-loop" or "--backend epoll" to run a suite on
                  another event loop (tests/CMakeLists.txt does for some).

Everything talks to 127.0.0.1 or ::1 only. Every wait has a timeout and every
server started here is stopped at teardown (SIGTERM, then SIGKILL), even when
the test failed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import random
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SOURCE_DIR = Path(os.environ.get("H3Q_SOURCE_DIR") or HERE.parents[1]).resolve()
BUILD_DIR = Path(os.environ.get("H3Q_BUILD_DIR") or SOURCE_DIR / "build").resolve()
SANITIZED = os.environ.get("H3Q_SANITIZED", "") not in ("", "0")

SERVER_BIN = BUILD_DIR / "h3q-server"
EXAMPLE_EMBED_BIN = BUILD_DIR / "h3q-example-embed"
SERVER_EXTRA_ARGS = shlex.split(os.environ.get("H3Q_SERVER_ARGS", ""))
CLIENT_BIN = BUILD_DIR / "h3q-client"
BENCH_BIN = BUILD_DIR / "h3q-bench"
GEN_CERT = SOURCE_DIR / "scripts" / "gen-cert.sh"

# Sanitized builds are several times slower; waits grow, checks do not weaken.
SLOW = 3 if SANITIZED else 1
LISTEN_TIMEOUT = 20.0 * SLOW
STOP_TIMEOUT = 10.0 * SLOW
RSS_LIMIT_KB = 64 * 1024

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "ERROR: UndefinedBehaviorSanitizer",
)

LISTEN_RE = re.compile(r"^h3q-server listening on (.+):(\d+)$")


def scaled(seconds: float) -> float:
    return seconds * SLOW


def require_exe(path: Path, what: str) -> str:
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{what} not found at {path} (H3Q_BUILD_DIR={BUILD_DIR}); build it first",
                    pytrace=False)
    return str(path)


def require_tool(name: str, package: str) -> str:
    p = shutil.which(name) or (f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None)
    if not p:
        pytest.fail(f"{name} is missing: install Debian package {package} "
                    f"(scripts/setup.sh test does)", pytrace=False)
    return p


def sanitizer_reports(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]


def sanitizer_env(env: dict | None = None) -> dict:
    """Environment for programs under test. Under sanitizers: report and exit
    on the first error, check leaks, and keep ASan's quarantine of freed
    memory small (default 256 MB) so peak-RSS checks measure h3q's buffering,
    not the quarantine. Options already in the environment win (they come
    last)."""
    e = dict(os.environ if env is None else env)
    if SANITIZED:
        ours = ("detect_leaks=1:halt_on_error=1:abort_on_error=0:"
                "quarantine_size_mb=8:thread_local_quarantine_size_kb=256")
        e["ASAN_OPTIONS"] = ours + (":" + e["ASAN_OPTIONS"] if e.get("ASAN_OPTIONS") else "")
        e["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1" + \
            (":" + e["UBSAN_OPTIONS"] if e.get("UBSAN_OPTIONS") else "")
    return e


# --------------------------------------------------------------------------
# ports, certificates, data


def free_udp_port(host: str = "127.0.0.1") -> int:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass
class Certs:
    dir: Path
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certs:
    d = tmp_path_factory.mktemp("certs")
    r = subprocess.run(["bash", str(GEN_CERT), str(d)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"gen-cert.sh failed: {r.stderr}"
    c = Certs(d, d / "cert.pem", d / "key.pem")
    assert c.cert.is_file() and c.key.is_file()
    return c


_PATTERN_BLOCK = bytes(range(251)) * 4096  # 1,028,096 bytes, whole periods


def pattern_bytes(offset: int, length: int) -> bytes:
    """The /bytes/:n content: byte at offset i is i % 251."""
    start = offset % 251
    reps = (start + length) // 251 + 1
    return (bytes(range(251)) * reps)[start : start + length]


@functools.lru_cache(maxsize=None)
def pattern_sha256(n: int) -> str:
    """SHA-256 of the first n bytes of the /bytes pattern, computed here."""
    h = hashlib.sha256()
    full, rest = divmod(n, len(_PATTERN_BLOCK))
    mv = memoryview(_PATTERN_BLOCK)
    for _ in range(full):
        h.update(mv)
    h.update(mv[:rest])
    return h.hexdigest()


def make_data_file(path: Path, size: int, seed: int = 1) -> str:
    """Writes size deterministic pseudo-random bytes; returns their SHA-256."""
    rng = random.Random(seed)
    h = hashlib.sha256()
    left = size
    with open(path, "wb") as f:
        while left:
            n = min(left, 1 << 20)
            b = rng.randbytes(n)
            f.write(b)
            h.update(b)
            left -= n
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


# --------------------------------------------------------------------------
# memory


def proc_status_kb(pid: int, field_name: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def peak_rss_kb(pid: int) -> int | None:
    """Peak resident set size (VmHWM) of a live process, in kB."""
    return proc_status_kb(pid, "VmHWM")


class RssSampler:
    """Samples VmRSS/VmHWM of a pid every interval seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.max_rss_kb = 0
        self.hwm_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        rss = proc_status_kb(self.pid, "VmRSS")
        hwm = proc_status_kb(self.pid, "VmHWM")
        if rss is not None:
            self.max_rss_kb = max(self.max_rss_kb, rss)
            self.samples += 1
        if hwm is not None:
            self.hwm_kb = max(self.hwm_kb, hwm)

    def __enter__(self) -> "RssSampler":
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join(5)
        self._sample()


# --------------------------------------------------------------------------
# the server


class ServerError(AssertionError):
    pass


class Server:
    """A running h3q-server. Use start_server()/the fixtures to get one."""

    def __init__(self, proc: subprocess.Popen, host: str, port: int, cmd: list[str],
                 stderr_path: Path, cwd: Path | None) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self.cmd = cmd
        self.stderr_path = stderr_path
        self.cwd = cwd
        self.stdout_lines: list[str] = []
        self.killed = False
        self.expect_exit = False  # set by tests that stop the server themselves
        self.returncode: int | None = None
        self._drain = threading.Thread(target=self._drain_stdout, daemon=True)
        self._drain.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "/") -> str:
        return f"https://{url_host(self.host)}:{self.port}{path}"

    def _drain_stdout(self) -> None:
        try:
            for line in self.proc.stdout:  # type: ignore[union-attr]
                self.stdout_lines.append(line.rstrip("\n"))
        except (ValueError, OSError):
            pass

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def assert_alive(self) -> None:
        if not self.alive():
            raise ServerError(f"h3q-server exited early with status {self.proc.returncode}\n"
                              f"cmd: {' '.join(self.cmd)}\nstderr:\n{self.stderr_text()[-4000:]}")

    def peak_rss_kb(self) -> int | None:
        return peak_rss_kb(self.pid)

    def signal_and_wait(self, sig: int, timeout: float = STOP_TIMEOUT) -> int | None:
        """Sends sig and waits for exit; returns the status or None on timeout."""
        self.expect_exit = True
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> list[str]:
        """Stops the server; returns a list of problems (empty if clean)."""
        problems: list[str] = []
        if self.returncode is not None:
            return problems
        was_alive = self.proc.poll() is None
        if was_alive:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.killed = True
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(10)
                problems.append(f"did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM; killed")
        elif not self.expect_exit:
            problems.append(f"had already exited (status {self.proc.returncode}) before teardown")
        self.returncode = self.proc.returncode
        self._drain.join(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        if not self.killed and self.returncode != 0:
            problems.append(f"exit status {self.returncode}, expected 0 after SIGTERM")
        reports = sanitizer_reports(self.stderr_text())
        if reports:
            problems.append("sanitizer reports:\n  " + "\n  ".join(reports[:20]))
        if problems:
            problems = [f"h3q-server on {self.host}:{self.port} (pid {self.pid}): {p}" for p in problems]
            problems.append(f"cmd: {' '.join(self.cmd)}\nstderr tail:\n{self.stderr_text()[-6000:]}")
        return problems


_server_seq = [0]


def start_server(*args: str, host: str = "127.0.0.1", port: int | None = None,
                 certs: Certs | None = None, cwd: Path | None = None,
                 log_dir: Path, env: dict | None = None,
                 listen_timeout: float = LISTEN_TIMEOUT,
                 prefix: list[str] | None = None) -> Server:
    """Starts h3q-server and waits for its 'listening' line.

    With certs, --cert/--key are passed. port=None picks a free UDP port and
    retries (up to 5 times) if the server fails to bind it. prefix runs the
    server through another command that execs it (e.g. "ip netns exec NS"),
    so the process is still the server's.
    """
    exe = require_exe(SERVER_BIN, "h3q-server")
    last_err = ""
    for attempt in range(5):
        p = port if port is not None else free_udp_port(host)
        cmd = [*(prefix or []), exe, "--addr", host, "--port", str(p)]
        if certs is not None:
            cmd += ["--cert", str(certs.cert), "--key", str(certs.key)]
        cmd += list(args) + SERVER_EXTRA_ARGS
        _server_seq[0] += 1
        stderr_path = log_dir / f"h3q-server-{_server_seq[0]}.stderr"
        with open(stderr_path, "wb") as errf:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL,
                                    cwd=cwd, env=sanitizer_env(env), text=True, bufsize=1,
                                    start_new_session=True)
        line = _read_line(proc, listen_timeout)
        if line is not None:
            m = LISTEN_RE.match(line)
            if not m:
                _kill(proc)
                raise ServerError(f"unexpected first stdout line from h3q-server: {line!r}\n"
                                  f"cmd: {' '.join(cmd)}")
            if int(m.group(2)) != p:
                _kill(proc)
                raise ServerError(f"h3q-server says it listens on port {m.group(2)}, asked for {p}")
            return Server(proc, host, p, cmd, stderr_path, cwd)
        # no line: it exited or timed out
        timed_out = proc.poll() is None
        _kill(proc)
        err = stderr_path.read_text(errors="replace")
        last_err = err
        if timed_out:
            raise ServerError(f"h3q-server printed no 'listening' line within {listen_timeout:.0f}s\n"
                              f"cmd: {' '.join(cmd)}\nstderr:\n{err[-4000:]}")
        if port is None and re.search(r"in use|bind", err, re.I):
            continue  # lost the race for the port; pick another
        raise ServerError(f"h3q-server exited with status {proc.returncode} before listening\n"
                          f"cmd: {' '.join(cmd)}\nstderr:\n{err[-4000:]}")
    raise ServerError(f"h3q-server could not bind a port after 5 attempts:\n{last_err[-2000:]}")


def _read_line(proc: subprocess.Popen, timeout: float) -> str | None:
    """First stdout line within timeout, or None if it exited/timed out."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()  # type: ignore[union-attr]
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], min(left, 0.2))
        if r:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if line == "":
                return None  # EOF: exited
            return line.rstrip("\n")
        if proc.poll() is not None:
            return None


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


class ServerPool:
    """Starts servers and stops them all at teardown, collecting problems."""

    def __init__(self, certs: Certs, log_dir: Path) -> None:
        self.certs = certs
        self.log_dir = log_dir
        self.servers: list[Server] = []

    def start(self, *args: str, with_certs: bool = True, **kw) -> Server:
        s = start_server(*args, certs=self.certs if with_certs else None,
                         log_dir=self.log_dir, **kw)
        self.servers.append(s)
        return s

    def stop_all(self) -> list[str]:
        problems: list[str] = []
        for s in self.servers:
            problems += s.stop()
        self.servers.clear()
        return problems


@contextlib.contextmanager
def _pool(certs: Certs, log_dir: Path):
    pool = ServerPool(certs, log_dir)
    try:
        yield pool
    finally:
        problems = pool.stop_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def servers(certs, tmp_path):
    """Factory: servers.start(*args, host=..., with_certs=True, cwd=...)."""
    with _pool(certs, tmp_path) as pool:
        yield pool


@pytest.fixture(scope="module")
def module_servers(certs, tmp_path_factory):
    with _pool(certs, tmp_path_factory.mktemp("servers")) as pool:
        yield pool


@pytest.fixture(scope="module")
def server(module_servers) -> Server:
    """One plain h3q-server on 127.0.0.1 shared by a test module."""
    return module_servers.start()


# --------------------------------------------------------------------------
# h3q-client


@dataclass
class ClientResult:
    cmd: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    records: list[dict] = field(default_factory=list)
    summary: dict | None = None

    def describe(self) -> str:
        return (f"cmd: {' '.join(self.cmd)}\nexit: {self.returncode}  ({self.elapsed:.2f}s)\n"
                f"stdout tail:\n{self.stdout[-3000:]}\nstderr tail:\n{self.stderr[-3000:]}")


def run_client(*args: str, timeout: float = 60.0, json_out: bool = True,
               insecure: bool = True, exe: Path = CLIENT_BIN, check_sanitizers: bool = True,
               stdout_path: Path | None = None) -> ClientResult:
    """Runs h3q-client (or h3q-bench via exe=BENCH_BIN) and parses --json lines.

    --json and -k are added unless disabled. A timeout fails the test with
    whatever the client printed so far. stdout_path sends stdout to a file
    (for bodies); then no JSON is parsed.
    """
    prog = require_exe(exe, exe.name)
    cmd = [prog]
    if insecure:
        cmd.append("-k")
    if json_out:
        cmd.append("--json")
    if exe == CLIENT_BIN and "--timeout" not in args:
        # let the client hit its own deadline (and say so) before we kill it
        cmd += ["--timeout", str(max(5, int(timeout) - 5))]
    cmd += [str(a) for a in args]
    t0 = time.monotonic()
    out_f = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    try:
        p = subprocess.run(cmd, stdout=out_f, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           timeout=timeout, env=sanitizer_env())
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else ""
        err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else ""
        pytest.fail(f"{exe.name} did not finish within {timeout:.0f}s\ncmd: {' '.join(cmd)}\n"
                    f"stdout tail:\n{out[-2000:]}\nstderr tail:\n{err[-2000:]}", pytrace=False)
    finally:
        if stdout_path:
            out_f.close()
    elapsed = time.monotonic() - t0
    stdout = "" if stdout_path else p.stdout.decode(errors="replace")
    res = ClientResult(cmd, p.returncode, stdout, p.stderr.decode(errors="replace"), elapsed)
    if json_out and not stdout_path:
        for line in stdout.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                pytest.fail(f"{exe.name} printed invalid JSON ({e}): {line[:300]}\n{res.describe()}",
                            pytrace=False)
            if obj.get("summary") is True:
                res.summary = obj
            else:
                res.records.append(obj)
    if check_sanitizers:
        reports = sanitizer_reports(res.stderr)
        assert not reports, f"sanitizer reports from {exe.name}:\n" + "\n".join(reports) + "\n" + res.describe()
    return res


def header(rec: dict, name: str) -> str | None:
    """First header value (case-insensitive name) from an h3q-client JSON record."""
    name = name.lower()
    for k, v in rec.get("headers") or []:
        if k.lower() == name:
            return v
    return None


