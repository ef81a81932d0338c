"""Event loop backends and the embedding API.

h3q-server runs here on the epoll backend (--backend epoll, blocking
h3q_server_run) and through the public embedding API (--embedded-loop: its
own poll() loop on h3q_server_fd, h3q_server_next_timeout_ms and
h3q_server_process). Each mode serves routes to h3q-client and aioquic, a
large verified download, POST echoes, concurrent streams, connection
timers (idle timeout) and a graceful stop on SIGTERM: an in-flight download
completes, the connection closes with H3_NO_ERROR and the process exits 0.

examples/embed.c (a host program with its own timers) is run too: a
response finished by the host's timer outside h3q_server_process is sent
at once, and SIGTERM waits for such a response before the exit.

Other suites run on these loops with H3Q_SERVER_ARGS (see harness.py).
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time

import pytest

from aioquic_client import H3_NO_ERROR, H3Client, run
from harness import (EXAMPLE_EMBED_BIN, SERVER_BIN, file_sha256, make_data_file,
                     pattern_sha256, require_exe, run_client, sanitizer_env,
                     sanitizer_reports, scaled, _read_line, _kill, free_udp_port)

MODES = {"epoll": ("--backend", "epoll"), "embedded": ("--embedded-loop",)}
HELLO = b"hello from h3q\n"
DOWNLOAD = 200_000_000
ECHO_SIZE = 20_000_000


@pytest.fixture(scope="module", params=list(MODES))
def mode_server(request, module_servers):
    """One server per loop mode, shared by the module's tests."""
    return module_servers.start(*MODES[request.param])


@pytest.fixture(params=list(MODES))
def mode_args(request):
    return MODES[request.param]


@pytest.fixture(scope="module")
def echo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("embed") / "upload.bin"
    sha = make_data_file(path, ECHO_SIZE, seed=77)
    yield path, sha
    path.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# one server per mode


def test_routes_h3q_client(mode_server):
    s = mode_server
    res = run_client(s.url("/hello"), s.url("/user/7?tab=x"), s.url("/no/such/route"))
    assert res.returncode == 0, res.describe()
    by_url = {r["url"]: r for r in res.records}
    assert by_url[s.url("/hello")]["status"] == 200, res.describe()
    assert by_url[s.url("/hello")]["body_bytes"] == len(HELLO), res.describe()
    assert by_url[s.url("/user/7?tab=x")]["status"] == 200, res.describe()
    assert by_url[s.url("/no/such/route")]["status"] == 404, res.describe()


def test_routes_aioquic(mode_server):
    s = mode_server

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            hello = await c.request("GET", "/hello", timeout=scaled(10))
            user = await c.request("GET", "/user/42", timeout=scaled(10))
            return hello, user

    hello, user = run(go(), scaled(30))
    assert hello.status == 200 and hello.body == HELLO, hello
    assert user.status == 200 and b"42" in user.body, user


@pytest.mark.timeout(scaled(300))
def test_large_download_verified(mode_server):
    s = mode_server
    res = run_client("--verify-bytes", "-o", "/dev/null", s.url(f"/bytes/{DOWNLOAD}"),
                     timeout=scaled(200))
    assert res.returncode == 0, res.describe()
    rec = res.records[0]
    assert rec["status"] == 200 and not rec.get("error"), res.describe()
    assert rec["body_bytes"] == DOWNLOAD, res.describe()
    assert rec["sha256"] == pattern_sha256(DOWNLOAD), res.describe()
    print(f"{DOWNLOAD} bytes: {res.elapsed:.2f}s "
          f"({DOWNLOAD * 8 / res.elapsed / 1e6:.0f} Mbit/s)")

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            return await c.request("GET", "/bytes/20000000", store_body=False,
                                   check_pattern=True, timeout=scaled(120))

    r = run(go(), scaled(150))
    assert r.status == 200 and r.complete and r.body_len == 20_000_000, r
    assert r.sha256 == pattern_sha256(20_000_000), r


@pytest.mark.timeout(scaled(240))
def test_echo(mode_server, echo_file, tmp_path):
    s = mode_server
    path, sha = echo_file
    out = tmp_path / "echoed.bin"
    res = run_client("-X", "POST", "--data-file", str(path), "-o", str(out),
                     s.url("/echo"), timeout=scaled(120))
    assert res.returncode == 0, res.describe()
    assert res.records[0]["status"] == 200, res.describe()
    assert file_sha256(out) == sha, "echoed body differs from what was sent"

    data = bytes(range(256)) * 4000 + b"tail"

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            return await c.request("POST", "/echo", body=data, timeout=scaled(60))

    r = run(go(), scaled(90))
    assert r.status == 200 and r.complete, r
    assert r.body == data


@pytest.mark.timeout(scaled(180))
def test_concurrent_streams_and_connections(mode_server):
    s = mode_server
    ns = [(i * 7919) % 300_000 + i for i in range(100)]
    urls = [s.url(f"/bytes/{n}") for n in ns]
    res = run_client("-c", "4", "-p", "25", "--verify-bytes", "-o", "/dev/null", *urls,
                     timeout=scaled(120))
    assert res.returncode == 0, res.describe()
    assert len(res.records) == 100, res.describe()
    want = dict(zip(urls, ns))
    for rec in res.records:
        assert rec["status"] == 200 and not rec.get("error"), rec
        assert rec["sha256"] == pattern_sha256(want[rec["url"]]), rec
    assert len({rec["conn"] for rec in res.records}) == 4, res.describe()


# --------------------------------------------------------------------------
# servers of their own


def test_connection_timers_fire(servers, mode_args):
    """A per-connection QUIC timer (the idle timeout) fires on this loop:
    the server closes the idle connection by itself."""
    s = servers.start(*mode_args, "--idle-timeout", "600", "--log-level", "debug")

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10),
                                    idle_timeout=60) as c:
            r = await c.request("GET", "/hello", timeout=scaled(10))
            deadline = time.monotonic() + scaled(10)
            while "closed" not in s.stderr_text() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return r

    t0 = time.monotonic()
    r = run(go(), scaled(30))
    assert r.status == 200, r
    log = s.stderr_text()
    assert re.search(r"conn \d+: closed", log), f"no idle close in the log:\n{log[-2000:]}"
    assert time.monotonic() - t0 < scaled(10)


@pytest.mark.timeout(scaled(120))
def test_graceful_stop(servers, mode_args):
    """SIGTERM during a download: it completes and verifies, the connection
    closes with H3_NO_ERROR, the process exits 0 well before the deadline."""
    drain_ms = int(scaled(30) * 1000)
    size = 20_000_000
    s = servers.start(*mode_args, "--drain-timeout", str(drain_ms))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            sid = c.new_stream(store_body=False, hash_body=True, check_pattern=True)
            c.send_headers(sid, c.request_headers("GET", f"/bytes/{size}"), end_stream=True)
            st = c.proto.streams[sid]
            deadline = time.monotonic() + scaled(10)
            while st.resp.body_len < 1_000_000 and time.monotonic() < deadline:
                await c._wait_progress(0.1)
            s.expect_exit = True
            s.proc.send_signal(signal.SIGTERM)
            r = await c.wait_response(sid, timeout=scaled(60))
            term = await c.wait_terminated(scaled(10))
            return r, term

    t0 = time.monotonic()
    r, term = run(go(), scaled(90))
    assert r.status == 200 and r.complete and r.body_len == size, r
    assert r.sha256 == pattern_sha256(size), r
    assert term.error_code == H3_NO_ERROR, term
    rc = s.proc.wait(scaled(10))
    assert rc == 0, f"exit status {rc}\n{s.stderr_text()[-3000:]}"
    assert time.monotonic() - t0 < drain_ms / 1000, "waited for the drain deadline"


def test_idle_stop_is_quick(servers, mode_args):
    s = servers.start(*mode_args)
    t0 = time.monotonic()
    assert s.signal_and_wait(signal.SIGTERM, scaled(10)) == 0, s.stderr_text()[-2000:]
    assert time.monotonic() - t0 < scaled(2)


@pytest.mark.parametrize("args, flag", [
    (["--embedded-loop", "--backend", "libev"], "--embedded-loop"),
    (["--embedded-loop", "--loop", "libev"], "--embedded-loop"),
    (["--backend", "select"], "--backend"),
    (["--loop", "select"], "--loop"),  # the older name of --backend
])
def test_bad_loop_flags(args, flag):
    exe = require_exe(SERVER_BIN, "h3q-server")
    p = subprocess.run([exe, "--addr", "127.0.0.1", *args], capture_output=True, text=True,
                       timeout=scaled(20), env=sanitizer_env())
    assert p.returncode == 2, p.stderr
    assert flag in p.stderr, p.stderr
    assert not sanitizer_reports(p.stderr), p.stderr


# --------------------------------------------------------------------------
# examples/embed.c


@pytest.fixture
def example(certs, tmp_path):
    exe = require_exe(EXAMPLE_EMBED_BIN, "h3q-example-embed")
    procs = []

    def start():
        for _ in range(5):
            port = free_udp_port()
            errf = open(tmp_path / "embed.stderr", "wb")
            proc = subprocess.Popen([exe, str(certs.cert), str(certs.key), str(port)],
                                    stdout=subprocess.PIPE, stderr=errf,
                                    stdin=subprocess.DEVNULL, text=True,
                                    env=sanitizer_env(), start_new_session=True)
            errf.close()
            procs.append(proc)
            line = _read_line(proc, scaled(20))
            if line == f"embed listening on 127.0.0.1:{port}":
                return proc, port
            _kill(proc)
        pytest.fail("h3q-example-embed did not start:\n"
                    + (tmp_path / "embed.stderr").read_text(errors="replace"))

    yield start
    for p in procs:
        _kill(p)
    err = (tmp_path / "embed.stderr").read_text(errors="replace") \
        if (tmp_path / "embed.stderr").exists() else ""
    assert not sanitizer_reports(err), err


@pytest.mark.timeout(scaled(90))
def test_example_embed(example, tmp_path):
    proc, port = example()
    base = f"https://127.0.0.1:{port}"
    res = run_client(f"{base}/hello/bob", stdout_path=tmp_path / "hello.out", json_out=False)
    assert res.returncode == 0, res.describe()
    assert (tmp_path / "hello.out").read_bytes() == b"hello, bob\n"

    async def go():
        async with H3Client.connect("127.0.0.1", port, timeout=scaled(10)) as c:
            quick = await c.request("GET", "/later/200", timeout=scaled(10))
            # A response the host finishes while SIGTERM is being handled.
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("GET", "/later/1500"), end_stream=True)
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            slow = await c.wait_response(sid, timeout=scaled(20))
            term = await c.wait_terminated(scaled(10))
            return quick, slow, term

    quick, slow, term = run(go(), scaled(60))
    assert quick.status == 200 and quick.body == b"waited 200 ms\n", quick
    # The host timer fired outside h3q_server_process; the bytes still left
    # at once (not with the next housekeeping tick or datagram).
    assert 0.2 <= quick.elapsed < 0.2 + scaled(0.15), quick.elapsed
    assert slow.status == 200 and slow.body == b"waited 1500 ms\n", slow
    assert term.error_code == H3_NO_ERROR, term
    assert proc.wait(scaled(10)) == 0
