"""webtransport-go v0.10 (draft-02, on quic-go; tests/interop/wtgo) against
h3q-server --webtransport: a session on /wt/echo with 50 datagrams, a
100 KB unidirectional stream (echoed on a server stream) and 10
bidirectional streams at once, compared byte for byte by the client; then
a clean close from the client, and a refused session (404) for a path no
WebTransport route serves. The server's counters (GET /stats) must agree.

The client is built by scripts/build-go-peer.sh (modules from the Go module
proxy, checked against tests/interop/wtgo/go.sum)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from aioquic_client import H3Client, run
from harness import BUILD_DIR, SOURCE_DIR, scaled

BUILD_SCRIPT = SOURCE_DIR / "scripts" / "build-go-peer.sh"
BUILD_TIMEOUT = 600.0


@pytest.fixture(scope="module")
def wtgo() -> Path:
    try:
        r = subprocess.run(["bash", str(BUILD_SCRIPT), str(BUILD_DIR), "wtgo"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{BUILD_SCRIPT} did not finish within {BUILD_TIMEOUT:.0f}s", pytrace=False)
    if r.returncode != 0:
        pytest.fail(f"building the webtransport-go client failed (exit {r.returncode}):\n"
                    f"{r.stderr[-4000:]}", pytrace=False)
    exe = Path(r.stdout.strip().splitlines()[-1])
    assert exe.is_file(), f"{BUILD_SCRIPT} printed {exe}, which does not exist"
    return exe


@pytest.fixture(scope="module")
def wt_server(module_servers):
    # A short idle timeout: webtransport-go's client may exit before its
    # session close (capsule or CONNECTION_CLOSE) leaves the machine; the
    # server must then still end the session, at the idle timeout.
    return module_servers.start("--webtransport", "--idle-timeout", str(IDLE_TIMEOUT_MS))


def run_wtgo(exe: Path, server, path: str, *args: str, timeout: float = 60.0) -> dict:
    t = scaled(timeout)
    cmd = [str(exe), "-url", server.url(path), "-insecure", "-timeout", f"{int(t)}s", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=t + 15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"wtgoclient did not exit within {t + 15:.0f}s: {' '.join(cmd)}",
                    pytrace=False)
    how = f"cmd: {' '.join(cmd)}\nexit {p.returncode}\nstdout:\n{p.stdout[-3000:]}\n" \
          f"stderr:\n{p.stderr[-3000:]}"
    records = {}
    for line in p.stdout.splitlines():
        obj = json.loads(line)
        records["summary" if obj.get("summary") else obj["name"]] = obj
    assert "panic" not in p.stderr, how
    records["_how"] = how
    records["_rc"] = p.returncode
    return records


def stats(server) -> dict:
    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            r = await c.request("GET", "/stats")
            return json.loads(r.body)
    return run(go(), scaled(20))


IDLE_TIMEOUT_MS = 4000


def stats_once_idle(server, timeout: float = IDLE_TIMEOUT_MS / 1000 + 6) -> dict:
    """The counters once no session is open any more (the client's close
    may still be on its way when it exits), or the last ones seen."""
    deadline = time.monotonic() + scaled(timeout)
    st = stats(server)
    while st["wt_sessions_active"] and time.monotonic() < deadline:
        time.sleep(0.1)
        st = stats(server)
    return st


def test_echo(wtgo, wt_server):
    before = stats(wt_server)
    r = run_wtgo(wtgo, wt_server, "/wt/echo", "-datagrams", "50", "-uni-size", "100000",
                 "-bidi", "10", "-bidi-size", "20000")
    how = r["_how"]
    assert r["_rc"] == 0 and r["summary"]["ok"], how
    assert r["session"] == {"name": "session", "status": 200, "error": ""}, how
    assert r["datagrams"] == {"name": "datagrams", "sent": 50, "echoed": 50, "mismatched": 0}, how
    uni = r["uni"]
    assert (uni["sent"], uni["got"], uni["same"], uni["error"]) == (100000, 100000, True, ""), how
    assert r["bidi"] == {"name": "bidi", "streams": 10, "same": 10, "error": ""}, how
    assert r["close"] == {"name": "close", "error": "", "closed_by_server": False}, how
    after = stats_once_idle(wt_server)
    assert after["wt_sessions_accepted"] - before["wt_sessions_accepted"] == 1, (before, after)
    # 10 bidi, the client's uni stream and the server's
    assert after["wt_streams_opened"] - before["wt_streams_opened"] == 12, (before, after)
    assert after["wt_sessions_active"] == 0, after
    wt_server.assert_alive()


def test_refused_path(wtgo, wt_server):
    r = run_wtgo(wtgo, wt_server, "/wt/nowhere", "-scenario", "refused", timeout=20)
    assert r["session"]["status"] == 404, r["_how"]
    assert "404" in r["session"]["error"], r["_how"]
