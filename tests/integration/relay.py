"""Runs build/h3q-relay (tests/tools/relay.c), the UDP impairment relay,
between a client and an h3q-server, and reads its counters at exit."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import BUILD_DIR, require_exe, scaled, url_host

RELAY_BIN = BUILD_DIR / "h3q-relay"
LISTEN_RE = re.compile(r"^h3q-relay listening on (.+):(\d+)$")
COUNTER_RE = re.compile(r"(\w+)=(\d+)")


class Relay:
    """A running relay in front of `server`; `args` are h3q-relay flags
    (impairments). Use as a context manager; `counters` is filled at exit:
    {"up": {...}, "down": {...}, "flows": {...}}."""

    def __init__(self, server, *args: str, duration: float = 240.0) -> None:
        exe = require_exe(RELAY_BIN, "h3q-relay")
        self.host = server.host
        self.cmd = [exe, "--server", f"{url_host(server.host)}:{server.port}",
                    "--listen", f"{url_host(server.host)}:0",
                    "--duration", str(int(scaled(duration))), *map(str, args)]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        m = LISTEN_RE.match(line)
        if not m:
            self.proc.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            pytest.fail(f"h3q-relay did not start: {line!r} {err}\ncmd: {' '.join(self.cmd)}",
                        pytrace=False)
        self.port = int(m.group(2))
        self.counters: dict[str, dict[str, int]] = {}
        self.output = ""

    def url(self, path: str) -> str:
        return f"https://{url_host(self.host)}:{self.port}{path}"

    def stop(self) -> dict[str, dict[str, int]]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.output = out + err
        for line in out.splitlines():
            name, _, rest = line.partition(":")
            if name in ("up", "down", "flows"):
                self.counters[name] = {k: int(v) for k, v in COUNTER_RE.findall(rest)}
        assert self.proc.returncode == 0, f"h3q-relay exited {self.proc.returncode}: {self.output}"
        assert set(self.counters) == {"up", "down", "flows"}, f"no counters: {self.output}"
        return self.counters

    def __enter__(self) -> "Relay":
        return self

    def __exit__(self, *exc) -> None:
        if not self.counters:
            try:
                self.stop()
            except AssertionError:
                if exc[0] is None:
                    raise

    def describe(self) -> str:
        return f"relay: {' '.join(self.cmd)}\n{self.output}"


def wait_until(pred, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


__all__ = ["Relay", "RELAY_BIN", "wait_until", "Path"]
