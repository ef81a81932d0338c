"""Graceful shutdown: SIGTERM (or SIGINT) with --drain-timeout.

What the server owes its clients (RFC 9114 section 5.2):
  - a GOAWAY on every connection, idle or busy;
  - requests already received complete (no cut before the deadline);
  - requests on streams at or above the GOAWAY id are refused with
    H3_REQUEST_REJECTED (0x10b);
  - connections close with H3_NO_ERROR (0x100) once drained, or at the
    deadline;
  - the process exits 0 once everything drained, and no later than
    drain-timeout + about 2 s.

aioquic 1.7 parses GOAWAY but raises no event for it; aioquic_client records
the ids from the server's control stream (H3Client.goaway_ids).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from contextlib import AsyncExitStack

import pytest

from aioquic_client import H3_NO_ERROR, H3_REQUEST_REJECTED, H3Client, H3ClientError, run
from harness import CLIENT_BIN, pattern_sha256, require_exe, sanitizer_env, sanitizer_reports, scaled

HELLO = b"hello from h3q\n"
EXIT_GRACE = 2.0  # seconds past the drain deadline the process may take


def _wait_exit(s, timeout: float) -> int | None:
    try:
        return s.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


async def _wait_body(c: H3Client, sid: int, at_least: int, timeout: float) -> None:
    st = c.proto.streams[sid]
    deadline = time.monotonic() + timeout
    while st.resp.body_len < at_least:
        if time.monotonic() > deadline:
            raise H3ClientError(f"stream {sid}: only {st.resp.body_len} bytes after {timeout}s")
        if st.done.done():
            raise H3ClientError(f"stream {sid} ended early: {st.resp}")
        await c._wait_progress(0.1)


@pytest.mark.timeout(scaled(120))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_inflight_download_completes_then_exit(servers, sig):
    """A download in progress when the signal arrives finishes, verified;
    a new request on the same connection is refused with
    H3_REQUEST_REJECTED; then the connection closes with H3_NO_ERROR and
    the process exits 0, long before the deadline."""
    drain_ms = int(scaled(30) * 1000)
    size = 20_000_000
    s = servers.start("--drain-timeout", str(drain_ms))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            h = await c.request("GET", "/hello", timeout=scaled(10))
            sid = c.new_stream(store_body=False, hash_body=True, check_pattern=True)
            c.send_headers(sid, c.request_headers("GET", f"/bytes/{size}"), end_stream=True)
            await _wait_body(c, sid, 1_000_000, scaled(10))
            t0 = time.monotonic()
            s.expect_exit = True
            s.proc.send_signal(sig)
            await asyncio.sleep(0.3)
            late = c.new_stream()
            c.send_headers(late, c.request_headers("GET", "/hello"), end_stream=True)
            r_late = await c.wait_response(late, timeout=scaled(10))
            r = await c.wait_response(sid, timeout=scaled(60))
            t_done = time.monotonic() - t0
            term = await c.wait_terminated(scaled(10))
            t_closed = time.monotonic() - t0
            return h, sid, late, r_late, r, t_done, term, t_closed, list(c.goaway_ids), t0

    h, sid, late, r_late, r, t_done, term, t_closed, goaways, t0 = run(go(), scaled(100))
    rc = _wait_exit(s, drain_ms / 1000 + scaled(EXIT_GRACE))
    t_exit = time.monotonic() - t0
    assert h.status == 200
    assert r.status == 200 and r.complete and r.body_len == size and r.pattern_ok, \
        f"in-flight download cut by the shutdown: {r}"
    assert r.sha256 == pattern_sha256(size)
    assert r_late.reset_code == H3_REQUEST_REJECTED and r_late.status is None, \
        f"request on stream {late} after GOAWAY {goaways}: {r_late}"
    if goaways:
        assert late >= goaways[0], f"stream {late} below GOAWAY id {goaways[0]}"
        assert sid < goaways[0], f"in-flight stream {sid} not below GOAWAY id {goaways[0]}"
    assert term.error_code == H3_NO_ERROR, f"closed with 0x{term.error_code:x} {term.reason_phrase!r}"
    assert rc == 0, f"exit status {rc} (None: still running {t_exit:.1f}s after the signal)"
    # drained: no reason to wait for the deadline
    assert t_exit < t_done + scaled(3), \
        f"exited {t_exit:.1f}s after the signal although drained at {t_done:.1f}s"


@pytest.mark.timeout(scaled(120))
def test_goaway_sent_while_download_in_flight(servers):
    """GOAWAY reaches a client whose connection is busy sending a response."""
    s = servers.start("--drain-timeout", str(int(scaled(30) * 1000)))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            sid = c.new_stream(store_body=False, hash_body=False, check_pattern=True)
            c.send_headers(sid, c.request_headers("GET", "/bytes/40000000"), end_stream=True)
            await _wait_body(c, sid, 1_000_000, scaled(10))
            s.expect_exit = True
            s.proc.send_signal(signal.SIGTERM)
            st = c.proto.streams[sid]
            try:
                gid = await c.wait_goaway(scaled(3))
            except H3ClientError as e:
                gid = f"none ({e}); {st.resp.body_len} body bytes received by then"
            r = await c.wait_response(sid, timeout=scaled(60))
            return sid, gid, r

    sid, gid, r = run(go(), scaled(100))
    assert r.complete and r.pattern_ok, r
    assert isinstance(gid, int), f"no GOAWAY within 3 s of SIGTERM while stream {sid} was downloading: {gid}"
    assert gid == sid + 4, f"GOAWAY id {gid}: expected the first stream id after {sid}"


@pytest.mark.timeout(scaled(120))
def test_goaway_sent_on_idle_connection(servers):
    """A connection with nothing in progress still gets GOAWAY (id 4 here:
    request stream 0 was served), then the close with H3_NO_ERROR."""
    s = servers.start("--drain-timeout", str(int(scaled(10) * 1000)))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            h = await c.request("GET", "/hello", timeout=scaled(10))
            await asyncio.sleep(0.5)  # everything acknowledged: really idle
            t0 = time.monotonic()
            s.expect_exit = True
            s.proc.send_signal(signal.SIGTERM)
            term = await c.wait_terminated(scaled(10))
            return h, list(c.goaway_ids), term, time.monotonic() - t0

    h, goaways, term, took = run(go(), scaled(60))
    rc = _wait_exit(s, scaled(10))
    assert h.status == 200
    assert term.error_code == H3_NO_ERROR, f"closed with 0x{term.error_code:x}"
    assert rc == 0
    assert goaways == [4], (f"GOAWAY ids received before the close: {goaways} "
                            f"(connection closed {took:.2f}s after SIGTERM)")


@pytest.mark.timeout(scaled(120))
def test_every_connection_gets_goaway_and_uploads_finish(servers):
    """Three connections, each with an upload in progress: each gets GOAWAY,
    each upload can still be completed and is answered, then each connection
    closes with H3_NO_ERROR and the process exits 0."""
    s = servers.start("--drain-timeout", str(int(scaled(30) * 1000)))

    async def go():
        async with AsyncExitStack() as stack:
            cs = [await stack.enter_async_context(H3Client.connect(s.host, s.port, timeout=scaled(10)))
                  for _ in range(3)]
            sids = []
            for i, c in enumerate(cs):
                await c.request("GET", "/hello", timeout=scaled(10))
                sid = c.new_stream()
                c.send_headers(sid, c.request_headers("POST", "/echo"))
                c.send_data(sid, f"conn {i} ".encode())
                sids.append(sid)
            for c, sid in zip(cs, sids):
                await _wait_body(c, sid, 1, scaled(10))
            t0 = time.monotonic()
            s.expect_exit = True
            s.proc.send_signal(signal.SIGTERM)
            gids = []
            for c in cs:
                try:
                    gids.append(await c.wait_goaway(scaled(5)))
                except H3ClientError as e:
                    gids.append(str(e))
            await asyncio.sleep(0.3)  # still draining: the uploads go on
            for c, sid in zip(cs, sids):
                c.send_data(sid, b"finished after GOAWAY", end_stream=True)
            rs = [await c.wait_response(sid, timeout=scaled(10)) for c, sid in zip(cs, sids)]
            terms = [await c.wait_terminated(scaled(10)) for c in cs]
            return sids, gids, rs, terms, t0

    sids, gids, rs, terms, t0 = run(go(), scaled(100))
    rc = _wait_exit(s, scaled(10))
    took = time.monotonic() - t0
    for i, r in enumerate(rs):
        assert (r.status, r.body) == (200, f"conn {i} finished after GOAWAY".encode()), r
    assert gids == [sid + 4 for sid in sids], f"GOAWAY ids per connection: {gids}"
    assert [t.error_code for t in terms] == [H3_NO_ERROR] * 3, terms
    assert rc == 0 and took < scaled(10), f"exit {rc} after {took:.1f}s"


@pytest.mark.timeout(scaled(120))
def test_drain_deadline_cuts_endless_download(servers):
    """With a short --drain-timeout, a download that would take minutes
    keeps flowing until the deadline (not cut before), is then ended by the
    connection close, and the process exits in time."""
    drain_s = 1.5 * (2 if scaled(1) > 1 else 1)
    s = servers.start("--drain-timeout", str(int(drain_s * 1000)))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10),
                                    max_stream_data=256 * 1024, max_data=1 << 20) as c:
            sid = c.new_stream(store_body=False, hash_body=False, check_pattern=True)
            c.send_headers(sid, c.request_headers("GET", "/bytes/1000000000000"), end_stream=True)
            await _wait_body(c, sid, 500_000, scaled(10))
            st = c.proto.streams[sid]
            t0 = time.monotonic()
            s.expect_exit = True
            s.proc.send_signal(signal.SIGTERM)
            progress = []  # (seconds after the signal, body bytes)
            while c.terminated is None and time.monotonic() - t0 < drain_s + scaled(10):
                await c._wait_progress(0.05)
                progress.append((time.monotonic() - t0, st.resp.body_len))
            t_closed = time.monotonic() - t0
            try:
                await c.wait_response(sid, timeout=0.1)
            except H3ClientError:
                pass
            return st.resp, progress, c.terminated, t_closed, t0

    resp, progress, term, t_closed, t0 = run(go(), scaled(60))
    rc = _wait_exit(s, drain_s + scaled(EXIT_GRACE))
    t_exit = time.monotonic() - t0
    assert term is not None, f"connection still open {t_closed:.1f}s after SIGTERM"
    assert resp.reset_code is None, f"in-flight response reset before the close: {resp}"
    # data kept coming until shortly before the deadline
    late = [n for t, n in progress if t >= drain_s - 0.5]
    early = [n for t, n in progress if t <= 0.2]
    assert late and early and max(late) > max(early), \
        f"download stalled after SIGTERM (deadline {drain_s}s): {progress[:3]} ... {progress[-3:]}"
    assert resp.pattern_ok is not False and (resp.pattern_mismatch_at is None), resp
    assert drain_s - 0.2 <= t_closed <= drain_s + scaled(EXIT_GRACE), \
        f"connection closed {t_closed:.2f}s after SIGTERM (deadline {drain_s}s)"
    assert term.error_code == H3_NO_ERROR, f"closed with 0x{term.error_code:x}"
    assert rc == 0, f"exit status {rc} (None: still running {t_exit:.1f}s after SIGTERM)"
    assert t_exit <= drain_s + scaled(EXIT_GRACE) + 0.5, f"exited {t_exit:.2f}s after SIGTERM"


@pytest.mark.timeout(scaled(120))
def test_no_new_connections_while_draining(servers):
    s = servers.start("--drain-timeout", str(int(scaled(10) * 1000)))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/echo"))  # keeps the server draining
            c.send_data(sid, b"x")
            await _wait_body(c, sid, 1, scaled(10))
            s.expect_exit = True
            s.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            try:
                async with H3Client.connect(s.host, s.port, timeout=1.5) as c2:
                    newconn = await c2.request("GET", "/hello", timeout=2)
            except H3ClientError as e:
                newconn = str(e)
            c.send_data(sid, b"y", end_stream=True)
            r = await c.wait_response(sid, timeout=scaled(10))
            return newconn, r

    newconn, r = run(go(), scaled(60))
    assert (r.status, r.body) == (200, b"xy"), r
    assert isinstance(newconn, str), f"a new connection was served while draining: {newconn}"
    assert _wait_exit(s, scaled(10)) == 0


@pytest.mark.timeout(scaled(180))
def test_h3q_client_200mb_download_survives_sigterm(servers, tmp_path):
    """h3q-client downloads 200 MB (verified) while the server is told to stop."""
    size = 200_000_000
    drain_ms = int(scaled(60) * 1000)
    s = servers.start("--drain-timeout", str(drain_ms))
    exe = require_exe(CLIENT_BIN, "h3q-client")
    cmd = [exe, "-k", "--json", "--verify-bytes", "-o", "/dev/null", "--timeout", str(int(scaled(100))),
           "--stall-after", "20000000", "--stall-ms", "1500", s.url(f"/bytes/{size}")]
    err_path = tmp_path / "client.stderr"
    with open(err_path, "wb") as errf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL,
                                env=sanitizer_env())
        try:
            time.sleep(0.8)  # the client is in its stall, mid-download
            assert proc.poll() is None, "client finished before SIGTERM; test proves nothing"
            t0 = time.monotonic()
            s.expect_exit = True
            s.proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=scaled(110))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    rc = _wait_exit(s, drain_ms / 1000 + scaled(EXIT_GRACE))
    t_exit = time.monotonic() - t0
    stderr = err_path.read_text(errors="replace")
    desc = f"cmd: {' '.join(cmd)}\nexit {proc.returncode}\nstdout: {out[-2000:]!r}\nstderr: {stderr[-3000:]}"
    assert not sanitizer_reports(stderr), desc
    assert proc.returncode == 0, desc
    recs = [json.loads(line) for line in out.decode().splitlines()
            if line.startswith("{") and '"summary"' not in line]
    assert len(recs) == 1 and recs[0]["status"] == 200 and not recs[0].get("error"), desc
    assert recs[0]["body_bytes"] == size and recs[0]["sha256"] == pattern_sha256(size), desc
    assert recs[0]["conn"] == 0, f"the download was retried on another connection: {desc}"
    assert rc == 0, f"server exit status {rc} ({t_exit:.1f}s after SIGTERM)"
