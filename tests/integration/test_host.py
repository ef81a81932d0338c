"""The host API (h3q_host_*), driven the way a foreign runtime drives it,
by tests/tools/host_tool.c: the library's loop thread serves, the tool's
thread waits, polls events and sends commands. h3q-client and aioquic are
the clients. Every test runs twice: with h3q_host_poll and the getters, and
with h3q_host_poll_into into a 96-byte buffer (smaller than a request head,
so heads come as buffers of their own and batches are handed out in parts)
with commands corked per batch. Runs in the ASan build too (the Bun
package's own tests, bindings/bun, cannot load an instrumented library).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest

from aioquic.buffer import encode_uint_var
from aioquic_client import H3Client, run
from harness import (BUILD_DIR, file_sha256, make_data_file, require_exe, run_client,
                     sanitizer_env, sanitizer_reports, scaled, _read_line, _kill, free_udp_port)

HOST_TOOL = BUILD_DIR / "tests" / "host_tool"
CLOSE_SESSION = 0x2843  # CLOSE_WEBTRANSPORT_SESSION capsule
DRAFT02 = [("sec-webtransport-http3-draft02", "1")]
ECHO_SIZE = 30_000_000


@pytest.fixture(params=["getters", "records"])
def host(certs, tmp_path, request):
    exe = require_exe(HOST_TOOL, "host_tool")
    procs = []
    errpath = tmp_path / "host.stderr"
    mode = ["96"] if request.param == "records" else []

    def start():
        for _ in range(5):
            port = free_udp_port()
            with open(errpath, "wb") as errf:
                proc = subprocess.Popen([exe, str(port), str(certs.cert), str(certs.key), *mode],
                                        stdout=subprocess.PIPE, stderr=errf,
                                        stdin=subprocess.DEVNULL, text=True,
                                        env=sanitizer_env(), start_new_session=True)
            procs.append(proc)
            if _read_line(proc, scaled(20)) == f"host_tool listening on 127.0.0.1:{port}":
                return proc, port
            _kill(proc)
        pytest.fail("host_tool did not start:\n" + errpath.read_text(errors="replace"))

    yield start
    for p in procs:
        _kill(p)
    err = errpath.read_text(errors="replace") if errpath.exists() else ""
    assert not sanitizer_reports(err), err


def stop(proc) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(scaled(20)) == 0
    assert proc.stdout.read().strip() == "host_tool stopped"


@pytest.mark.timeout(scaled(120))
def test_routes_echo_stream_trailers(host, tmp_path):
    proc, port = host()
    base = f"https://127.0.0.1:{port}"
    res = run_client(f"{base}/hello", f"{base}/missing", f"{base}/stream")
    assert res.returncode == 0, res.describe()
    by_url = {r["url"]: r for r in res.records}
    assert by_url[f"{base}/hello"]["status"] == 200
    assert by_url[f"{base}/missing"]["status"] == 404
    stream = by_url[f"{base}/stream"]
    assert stream["body_bytes"] == 64 * 16384
    assert ["x-chunks", "64"] in stream["trailers"]

    upload = tmp_path / "upload.bin"
    sha = make_data_file(upload, ECHO_SIZE, seed=9)
    res = run_client("-X", "POST", "-d", str(upload), f"{base}/echo", timeout=scaled(90))
    assert res.returncode == 0, res.describe()
    assert res.records[0]["body_bytes"] == ECHO_SIZE
    assert res.records[0]["sha256"] == sha
    stop(proc)


@pytest.mark.timeout(scaled(60))
def test_request_connection_numbers(host):
    """A REQUEST event's value carries its connection's number above the
    no-body bit: one number for all requests of a connection, another for
    each other connection."""
    proc, port = host()
    res = run_client("--connections", "3", "--repeat", "12", f"https://127.0.0.1:{port}/conn")
    assert res.returncode == 0, res.describe()
    assert len(res.records) == 12
    numbers: dict[int, set[str]] = {}
    for r in res.records:
        assert r["status"] == 200
        numbers.setdefault(r["conn"], set()).update(v for k, v in r["headers"] if k == "x-conn")
    assert len(numbers) == 3
    assert all(len(n) == 1 for n in numbers.values()), numbers
    assert len(set.union(*numbers.values())) == 3, numbers
    stop(proc)


@pytest.mark.timeout(scaled(120))
def test_file_responses(host, tmp_path):
    """h3q_host_respond_file: the file whole (content-length from the
    file), HEAD without a body, a missing file, and a client that goes
    away mid-file (the loop thread closes the file with the stream)."""
    proc, port = host()
    base = f"https://127.0.0.1:{port}"
    big = tmp_path / "big.bin"
    sha = make_data_file(big, 5_000_000, seed=4)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    res = run_client(f"{base}/file{big}", f"{base}/file{empty}",
                     f"{base}/file{tmp_path}/missing", timeout=scaled(60))
    by_url = {r["url"]: r for r in res.records}
    got = by_url[f"{base}/file{big}"]
    assert got["status"] == 200 and got["sha256"] == sha, got
    assert ["content-length", "5000000"] in got["headers"], got
    assert ["x-file", "1"] in got["headers"], got
    assert by_url[f"{base}/file{empty}"]["body_bytes"] == 0
    assert by_url[f"{base}/file{tmp_path}/missing"]["status"] == 404
    res = run_client("-X", "HEAD", f"{base}/file{big}", timeout=scaled(30))
    assert res.records[0]["body_bytes"] == 0
    assert ["content-length", "5000000"] in res.records[0]["headers"]

    async def go():
        async with H3Client.connect("127.0.0.1", port, timeout=scaled(10)) as c:
            sids = []
            for _ in range(5):
                sid = c.new_stream()
                c.send_headers(sid, c.request_headers("GET", f"/file{big}"), end_stream=True)
                sids.append(sid)
            await c.wait_until(lambda: any(c.proto.streams[s].buf for s in sids), scaled(10))
            # STOP_SENDING on two: the server resets them mid-file; the
            # connection's close ends the other three mid-file.
            for sid in sids[:2]:
                c.stop_sending(sid)
            await asyncio.sleep(0.2)
            c.close()
        async with H3Client.connect("127.0.0.1", port, timeout=scaled(10)) as c:
            return await c.request("GET", "/hello", timeout=scaled(10))

    after = run(go(), scaled(60))
    assert after.status == 200 and after.body == b"hello"
    stop(proc)


def test_file_responses_never_stale(host, tmp_path):
    """Small files settled for 2 s are kept in memory by the host's file
    cache (util/file_snapshot.h), and a path is checked once per read of
    datagrams: every change must still give the new bytes and length, even
    one that keeps the size and sets the mtime back."""
    proc, port = host()
    p = tmp_path / "small.txt"
    p.write_bytes(b"settled v1\n")
    time.sleep(2.5)

    async def get(c):
        r = await c.request("GET", f"/file{p}", timeout=scaled(10))
        return r.status, r.body

    async def go():
        async with H3Client.connect("127.0.0.1", port, timeout=scaled(10)) as c:
            for _ in range(3):  # the first keeps the bytes, the others send them
                assert await get(c) == (200, b"settled v1\n")
            st = os.stat(p)
            p.write_bytes(b"SETTLED V2\n")
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
            assert await get(c) == (200, b"SETTLED V2\n")
            tmp = tmp_path / "small.tmp"
            tmp.write_bytes(b"v3, longer than before\n")
            os.replace(tmp, p)
            assert await get(c) == (200, b"v3, longer than before\n")
            p.unlink()
            assert (await get(c))[0] == 404

    run(go(), scaled(60))
    stop(proc)


@pytest.mark.timeout(scaled(120))
def test_concurrency_and_resets(host):
    proc, port = host()
    base = f"https://127.0.0.1:{port}"
    res = run_client("-n", "200", "-p", "100", f"{base}/hello", timeout=scaled(60))
    assert res.returncode == 0, res.describe()
    assert len(res.records) == 200 and all(r["status"] == 200 for r in res.records)

    async def go():
        async with H3Client.connect("127.0.0.1", port, timeout=scaled(10)) as c:
            # Reset an echo mid-body: the host's later commands for that
            # stream are dropped and the connection stays usable.
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/echo"))
            c.send_data(sid, b"x" * 50_000)
            await asyncio.sleep(0.2)
            c.reset_stream(sid)
            await asyncio.sleep(0.2)
            return await c.request("GET", "/hello", timeout=scaled(10))

    after = run(go(), scaled(60))
    assert after.status == 200 and after.body == b"hello"
    stop(proc)


@pytest.mark.timeout(scaled(60))
def test_graceful_stop_with_open_stream(host):
    proc, port = host()

    async def go():
        async with H3Client.connect("127.0.0.1", port, timeout=scaled(10)) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/echo"))
            c.send_data(sid, b"before stop ")
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            # The stream still runs while the server drains: commands are
            # carried out after the stop.
            c.send_data(sid, b"after stop", end_stream=True)
            return await c.wait_response(sid, timeout=scaled(20))

    r = run(go(), scaled(40))
    assert r.status == 200 and r.body == b"before stop after stop", r
    assert proc.wait(scaled(20)) == 0


@pytest.mark.timeout(scaled(60))
def test_webtransport_datagrams(host):
    proc, port = host()

    async def go():
        async with H3Client.connect("127.0.0.1", port, webtransport=True,
                                    timeout=scaled(10)) as c:
            sid = c.wt_connect("/wt/echo", headers=DRAFT02)
            head = await c.wait_headers(sid, scaled(10))
            assert head.status == 200, head
            sent = [b"d%d" % i for i in range(30)]
            for d in sent:
                c.send_h3_datagram(sid, d)
            await c.wait_until(lambda: len(c.h3_datagrams) >= len(sent), scaled(10))
            got = sorted(d for s, d in c.h3_datagrams if s == sid)
            value = (3).to_bytes(4, "big") + b"done"
            c.send_data(sid, encode_uint_var(CLOSE_SESSION) + encode_uint_var(len(value)) + value,
                        end_stream=True)
            closed = await c.wait_until(lambda: c.stream_done(sid), scaled(10))
            return sorted(sent), got, closed

    sent, got, closed = run(go(), scaled(40))
    assert got == sent
    assert closed
    stop(proc)


def wt_code_to_h3(code: int) -> int:
    """A WebTransport stream error code as an HTTP/3 code (draft mapping)."""
    return 0x52E4A40FA8DB + code + code // 0x1E


@pytest.mark.timeout(scaled(90))
def test_webtransport_streams(host):
    """Streams in a session through the host API: a 2 MB bidirectional
    echo (past the 256 KiB body window, so consume paces it), a one-way
    stream forwarded to one of the host's, and a reset answered with a
    reset of the same WebTransport code."""
    proc, port = host()
    payload = os.urandom(2_000_000)

    async def go():
        async with H3Client.connect("127.0.0.1", port, webtransport=True,
                                    timeout=scaled(10)) as c:
            sid = c.wt_connect("/wt/echo", headers=DRAFT02)
            head = await c.wait_headers(sid, scaled(10))
            assert head.status == 200, head
            echo = c.wt_open(sid, uni=False)
            for off in range(0, len(payload), 32768):
                c.wt_send(echo, payload[off:off + 32768])
            c.wt_send(echo, b"", end=True)
            uni = c.wt_open(sid, uni=True)
            c.wt_send(uni, b"one way", end=True)
            doomed = c.wt_open(sid, uni=False)
            c.wt_send(doomed, b"x" * 100)
            await c.wait_until(lambda: len(c.wt_streams[doomed].data) > 0, scaled(10))
            c.reset_stream(doomed, wt_code_to_h3(7))

            def forwarded():
                return [w for w in c.wt_streams.values()
                        if w.session_id == sid and w.stream_id % 4 == 3 and w.ended]

            await c.wait_until(lambda: c.wt_streams[echo].ended and forwarded()
                               and c.wt_streams[doomed].reset_code is not None, scaled(30))
            return (bytes(c.wt_streams[echo].data), [bytes(w.data) for w in forwarded()],
                    c.wt_streams[doomed].reset_code)

    echoed, forwarded, reset = run(go(), scaled(60))
    assert len(echoed) == len(payload) and echoed == payload
    assert forwarded == [b"one way"]
    assert reset == wt_code_to_h3(7)
    stop(proc)
