"""Workers (h3q-server --workers N, h3q_config.workers): N event loops on N
threads of one process, each with its own SO_REUSEPORT socket on the same
port.

What is checked:
  - many connections are all served, and the kernel spread them over both
    workers (the per-worker lines of /metrics say how many each accepted);
  - --workers auto starts one worker per online CPU; bad values are refused
    with a message naming the field;
  - a graceful stop under load with two workers: every connection gets
    GOAWAY, every request that was started ends with exactly one outcome,
    the process exits 0;
  - responses finished from another thread through posts
    (h3q_server_post_worker to h3q_request_worker, and h3q_server_post on
    worker 0) run on the thread that owns the request; h3q_server_goaway
    reaches a connection of the other worker; h3q_server_run joins every
    thread (tests/tools/workers_tool.c).

Without packet steering a connection whose client address changes may
reach the other worker; these tests keep every client's address fixed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from contextlib import AsyncExitStack

import pytest

import test_operations as ops
from aioquic_client import H3_NO_ERROR, H3Client, H3ClientError, run
from harness import (BUILD_DIR, CLIENT_BIN, _kill, _read_line, free_udp_port, require_exe,
                     run_client, sanitizer_env, sanitizer_reports, scaled)
from test_config import assert_config_error

HELLO = b"hello from h3q\n"
WORKERS_TOOL = BUILD_DIR / "tests" / "workers_tool"


def worker_counts(fams: dict, sample: str) -> dict[int, float]:
    """{worker: value} of a per-worker family."""
    out = {}
    for fam in fams.values():
        for name, labels, v in fam["samples"]:
            if name == sample:
                out[int(labels["worker"])] = v
    return out


def online_cpus() -> int:
    return max(1, min(32, os.sysconf("SC_NPROCESSORS_ONLN")))


# --------------------------------------------------------------------------
# h3q-server --workers


@pytest.mark.timeout(scaled(180))
def test_two_workers_serve_every_connection(servers):
    """40 h3q-client connections and 8 aioquic ones: every request is
    answered, and both workers accepted some of the connections."""
    s = servers.start("--workers", "2", "--metrics", "127.0.0.1:0")
    port = ops.metrics_port(s)
    res = run_client("-c", "40", "-n", "200", s.url("/hello"), timeout=scaled(60))
    assert res.returncode == 0, res.describe()
    assert len(res.records) == 200, res.describe()
    assert all(r["status"] == 200 and r["body_bytes"] == len(HELLO) for r in res.records), \
        res.describe()
    assert len({r["conn"] for r in res.records}) == 40, "h3q-client used fewer connections"

    async def aioquic_clients():
        async with AsyncExitStack() as stack:
            cs = [await stack.enter_async_context(H3Client.connect(s.host, s.port,
                                                                   timeout=scaled(10)))
                  for _ in range(8)]
            return [await c.request("GET", "/hello", timeout=scaled(10)) for c in cs]

    rs = run(aioquic_clients(), scaled(60))
    assert [(r.status, r.body) for r in rs] == [(200, HELLO)] * 8
    fams = ops.wait_for(lambda: (m := ops.metrics(port)) and
                        ops.value(m, "h3q_connections_accepted_total") >= 48 and m,
                        "48 accepted connections in /metrics")
    accepted = worker_counts(fams, "h3q_worker_connections_accepted_total")
    requests = worker_counts(fams, "h3q_worker_requests_total")
    assert set(accepted) == {0, 1}, accepted
    assert sum(accepted.values()) == ops.value(fams, "h3q_connections_accepted_total") == 48
    assert accepted[0] > 0 and accepted[1] > 0, f"one worker took every connection: {accepted}"
    assert sum(requests.values()) == ops.value(fams, "h3q_requests_total") == 208, requests
    assert requests[0] > 0 and requests[1] > 0, requests


@pytest.mark.timeout(scaled(60))
def test_workers_auto_starts_one_per_cpu(servers):
    s = servers.start("--workers", "auto", "--metrics", "127.0.0.1:0")
    res = run_client("-c", "4", "-n", "8", s.url("/hello"), timeout=scaled(30))
    assert res.returncode == 0 and len(res.records) == 8, res.describe()
    fams = ops.metrics(ops.metrics_port(s))
    accepted = worker_counts(fams, "h3q_worker_connections_accepted_total")
    assert sorted(accepted) == list(range(online_cpus())), accepted


@pytest.mark.timeout(scaled(90))
def test_max_connections_is_server_wide(servers):
    """--max-connections 3 with two workers: 8 clients try at once and
    exactly 3 connect (a limit per worker would let up to 6 in)."""
    s = servers.start("--workers", "2", "--max-connections", "3", "--metrics", "127.0.0.1:0")

    trying = [8]  # attempts not yet connected or given up
    settled = asyncio.Event()

    def settle():
        trying[0] -= 1
        if trying[0] == 0:
            settled.set()

    async def attempt():
        connected = False
        try:
            async with H3Client.connect(s.host, s.port, timeout=scaled(5)) as c:
                connected = True
                settle()
                r = await c.request("GET", "/hello", timeout=scaled(10))
                # hold the slot until every other attempt got in or gave up
                await asyncio.wait_for(settled.wait(), scaled(30))
                return r.status
        except H3ClientError:
            if not connected:
                settle()
            return None

    async def go():
        return await asyncio.gather(*(attempt() for _ in range(8)))

    got = run(go(), scaled(60))
    assert sorted(got, key=str) == [200, 200, 200] + [None] * 5, got
    fams = ops.metrics(ops.metrics_port(s))
    assert ops.value(fams, "h3q_connections_accepted_total") == 3


@pytest.mark.parametrize("value", ["0", "33", "x", "-1", ""])
def test_bad_workers_refused(value, certs):
    assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                         "--cert", str(certs.cert), "--key", str(certs.key),
                         "--workers", value], "workers")


def test_embedded_loop_needs_one_worker(certs):
    assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                         "--cert", str(certs.cert), "--key", str(certs.key),
                         "--embedded-loop", "--workers", "2"], "workers")


async def _wait_echo(c: H3Client, sid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not c.body_so_far(sid):
        if time.monotonic() > deadline:
            raise H3ClientError(f"stream {sid}: no echo within {timeout}s")
        await c._wait_progress(0.05)


@pytest.mark.timeout(scaled(240))
def test_stop_under_load_two_workers(servers, tmp_path):
    """SIGTERM while 16 connections each hold an unfinished upload and
    h3q-client downloads on 8 more: every connection gets GOAWAY, every
    upload finishes with 200 after it, every h3q-client request ends with
    exactly one outcome (a verified 200 or an error), the access log has
    one line per answered download, and the process exits 0 in time."""
    log = tmp_path / "access.log"
    s = servers.start("--workers", "2", "--metrics", "127.0.0.1:0", "--access-log", str(log),
                      "--drain-timeout", str(int(scaled(30) * 1000)))
    port = ops.metrics_port(s)
    exe = require_exe(CLIENT_BIN, "h3q-client")
    n_downloads, size = 300, 1_000_000
    cmd = [exe, "-k", "--json", "--verify-bytes", "-o", "/dev/null", "-c", "8", "-p", "4",
           "-n", str(n_downloads), "--timeout", str(int(scaled(100))), s.url(f"/bytes/{size}")]

    async def go():
        async with AsyncExitStack() as stack:
            cs = [await stack.enter_async_context(H3Client.connect(s.host, s.port,
                                                                   timeout=scaled(10)))
                  for _ in range(16)]
            sids = []
            for i, c in enumerate(cs):
                sid = c.new_stream()
                c.send_headers(sid, c.request_headers("POST", "/echo"))
                c.send_data(sid, f"conn {i} ".encode())
                sids.append(sid)
            for c, sid in zip(cs, sids):
                await _wait_echo(c, sid, scaled(10))
            accepted = worker_counts(ops.metrics(port), "h3q_worker_connections_accepted_total")
            client = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, env=sanitizer_env())
            # under load: some downloads answered before the signal
            ops.wait_for(lambda: ops.value(ops.metrics(port), "h3q_requests_total") >= 16 + 24,
                         "downloads in progress", timeout=60)
            t0 = time.monotonic()
            s.expect_exit = True
            s.proc.send_signal(signal.SIGTERM)
            gids = []
            for c in cs:
                try:
                    gids.append(await c.wait_goaway(scaled(5)))
                except H3ClientError as e:
                    gids.append(str(e))
            for c, sid in zip(cs, sids):
                c.send_data(sid, b"done", end_stream=True)
            rs = [await c.wait_response(sid, timeout=scaled(20)) for c, sid in zip(cs, sids)]
            terms = [await c.wait_terminated(scaled(20)) for c in cs]
            out, err = await asyncio.get_running_loop().run_in_executor(
                None, lambda: client.communicate(timeout=scaled(110)))
            return accepted, sids, gids, rs, terms, out, err, t0

    accepted, sids, gids, rs, terms, out, err, t0 = run(go(), scaled(200))
    try:
        rc = s.proc.wait(scaled(30))
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t0
    assert accepted.get(0, 0) > 0 and accepted.get(1, 0) > 0, \
        f"16 connections all on one worker: {accepted}"
    assert gids == [sid + 4 for sid in sids], f"GOAWAY ids per connection: {gids}"
    for i, r in enumerate(rs):
        assert (r.status, r.body) == (200, f"conn {i} done".encode()), r
    assert [t.error_code for t in terms] == [H3_NO_ERROR] * 16, terms
    desc = f"h3q-client stderr: {err.decode(errors='replace')[-3000:]}"
    assert not sanitizer_reports(err.decode(errors="replace")), desc
    recs = [json.loads(line) for line in out.decode().splitlines()
            if line.startswith("{") and '"summary"' not in line]
    assert len(recs) == n_downloads, f"{len(recs)} records for {n_downloads} requests\n{desc}"
    ok = [r for r in recs if r["status"] == 200 and not r["error"]]
    failed = [r for r in recs if r["error"]]
    assert len(ok) + len(failed) == n_downloads, \
        f"records with both or neither of a status and an error\n{desc}"
    assert all(r["body_bytes"] == size for r in ok), "a 200 download was cut"
    assert ok, "no download answered before the stop"
    assert rc == 0, f"exit status {rc} ({took:.1f}s after SIGTERM)"
    assert took < scaled(30), f"exited {took:.1f}s after SIGTERM"
    lines = log.read_text().splitlines()
    assert not [l for l in lines if l.endswith(" aborted")], "a request was cut by the stop"
    logged = [l for l in lines if f" /bytes/{size} 200 {size} " in l]
    assert len(logged) == len(ok), f"{len(logged)} access log lines for {len(ok)} downloads"
    keys = [re.search(r"conn=(\d+) stream=(\d+)", l).groups() for l in lines]
    assert len(keys) == len(set(keys)), "a request logged twice"
    conns = {int(k[0]) % 2 for k in keys}
    assert conns == {0, 1}, f"access log: connections of one worker only: {conns}"


# --------------------------------------------------------------------------
# the API from several threads (tests/tools/workers_tool.c)


@pytest.fixture
def tool(certs, tmp_path):
    exe = require_exe(WORKERS_TOOL, "workers_tool")
    procs = []
    errpath = tmp_path / "workers_tool.stderr"

    def start(workers: str = "2"):
        for _ in range(5):
            port = free_udp_port()
            with open(errpath, "wb") as errf:
                proc = subprocess.Popen([exe, str(port), str(certs.cert), str(certs.key), workers],
                                        stdout=subprocess.PIPE, stderr=errf,
                                        stdin=subprocess.DEVNULL, text=True,
                                        env=sanitizer_env(), start_new_session=True)
            procs.append(proc)
            if _read_line(proc, scaled(20)) == f"workers_tool listening on 127.0.0.1:{port}":
                return proc, port
            _kill(proc)
        pytest.fail("workers_tool did not start:\n" + errpath.read_text(errors="replace"))

    yield start
    for p in procs:
        _kill(p)
    err = errpath.read_text(errors="replace") if errpath.exists() else ""
    assert not sanitizer_reports(err), err


def stop_tool(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(scaled(30)) == 0
    return proc.stdout.read().strip()


@pytest.mark.timeout(scaled(120))
def test_deferred_responses_return_to_their_worker(tool, tmp_path):
    """Handlers hand every response to a helper thread; it comes back
    through h3q_server_post_worker (/deferred) or through h3q_server_post
    on worker 0 and then the request's worker (/posted). Every response is
    finished on the thread that ran its handler, both workers served, and
    after the stop every worker thread has been joined."""
    proc, port = tool("2")
    base = f"https://127.0.0.1:{port}"
    for path, n in (("/deferred", 96), ("/posted", 64)):
        bodies = tmp_path / f"bodies{path.replace('/', '-')}"
        res = run_client("-c", "16", "-n", str(n), "-o", str(bodies), base + path,
                         timeout=scaled(60))
        assert res.returncode == 0 and len(res.records) == n, res.describe()
        assert all(r["status"] == 200 for r in res.records), res.describe()
        lines = bodies.read_text().splitlines()
        assert len(lines) == n, lines[:5]
        fields = [dict(kv.split("=") for kv in l.split()) for l in lines]
        assert all(f["same_thread"] == "1" for f in fields), \
            f"{path}: a response finished on another thread than its handler's: {lines}"
        if path == "/posted":
            assert all(f["main"] == "1" for f in fields), \
                f"h3q_server_post ran elsewhere than worker 0's thread: {lines}"
        workers = {f["worker"] for f in fields}
        assert workers == {"0", "1"}, f"{path}: served by workers {workers} only"
    assert stop_tool(proc) == "workers_tool stopped threads=1"


@pytest.mark.timeout(scaled(120))
def test_goaway_reaches_the_other_workers_connection(tool):
    """h3q_server_goaway, called in a handler on one worker, for a
    connection of the other worker: that connection gets GOAWAY (through a
    post), the caller's own connection goes on."""
    proc, port = tool("2")

    async def go():
        async with AsyncExitStack() as stack:
            by_worker: dict[str, tuple[H3Client, str]] = {}
            for _ in range(24):
                c = await stack.enter_async_context(H3Client.connect("127.0.0.1", port,
                                                                     timeout=scaled(10)))
                r = await c.request("GET", "/whoami", timeout=scaled(10))
                f = dict(kv.split("=") for kv in r.body.decode().split())
                by_worker.setdefault(f["worker"], (c, f["conn"]))
                if len(by_worker) == 2:
                    break
            assert set(by_worker) == {"0", "1"}, f"24 connections, workers {set(by_worker)}"
            (a, a_conn), (b, b_conn) = by_worker["0"], by_worker["1"]
            assert int(a_conn) % 2 == 0 and int(b_conn) % 2 == 1, (a_conn, b_conn)
            r = await a.request("GET", f"/goaway/{b_conn}", timeout=scaled(10))
            gid = await b.wait_goaway(scaled(5))
            after = await a.request("GET", "/whoami", timeout=scaled(10))
            missing = await a.request("GET", f"/goaway/{int(a_conn) + 1000}", timeout=scaled(10))
            return r.body, gid, after.status, a.goaway_ids, missing.body

    body, gid, after, a_goaways, missing = run(go(), scaled(100))
    assert body == b"rc=0\n"
    assert gid == 4, f"GOAWAY id {gid}: stream 0 was served on that connection"
    assert after == 200 and a_goaways == [], "the caller's connection got a GOAWAY too"
    assert missing == b"rc=-12\n", f"own worker, unknown connection: {missing!r}"
    stop_tool(proc)
