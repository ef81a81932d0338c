"""Extensible priorities (RFC 9218): the `priority` request header and
PRIORITY_UPDATE frames (type 0xF0700, sent by aioquic_client on aioquic's
control stream) decide the order responses on one connection are sent in.

Setup for each scenario on one aioquic connection: response A (20 MB) starts
first; once 2 MB of it arrived, response B (25 MB) is requested. B is larger
than what is left of A, so:
  - without priorities (both u=3, non-incremental: sent in stream order, or
    shared fairly) A finishes first -- the control, showing the test can
    tell the difference;
  - with A at u=7 and B at u=0, B must finish first.
The client's flow-control windows are large enough that B is never blocked
by them (which would hand the bandwidth to A legitimately).
"""

from __future__ import annotations

import time

import pytest

from aioquic_client import H3Client, H3ClientError, run
from harness import scaled

A_SIZE = 20_000_000
B_SIZE = 25_000_000
A_HEAD_START = 2_000_000


async def _race(s, mode: str):
    async with H3Client.connect(s.host, s.port, timeout=scaled(10),
                                max_stream_data=64 << 20, max_data=256 << 20) as c:
        a_extra = [("priority", "u=7")] if mode == "header" else []
        b_extra = [("priority", "u=0")] if mode == "header" else []
        a = c.new_stream(store_body=False, hash_body=False, check_pattern=True)
        c.send_headers(a, c.request_headers("GET", f"/bytes/{A_SIZE}", a_extra), end_stream=True)
        sa = c.proto.streams[a]
        deadline = time.monotonic() + scaled(20)
        while sa.resp.body_len < A_HEAD_START:
            if time.monotonic() > deadline or sa.done.done():
                raise H3ClientError(f"response A did not get going: {sa.resp}")
            await c._wait_progress(0.1)
        if mode == "update":
            # A's priority changes while it is being sent; B's update goes
            # out before its request (allowed: RFC 9218 section 7.1)
            c.send_priority_update(a, "u=7")
        b = c.new_stream(store_body=False, hash_body=False, check_pattern=True)
        if mode == "update":
            c.send_priority_update(b, "u=0")
        c.send_headers(b, c.request_headers("GET", f"/bytes/{B_SIZE}", b_extra), end_stream=True)
        sb = c.proto.streams[b]
        a_at_start = sa.resp.body_len
        order: list[tuple[str, float, int, int]] = []  # (who, t, A bytes since B started, B bytes)
        t0 = time.monotonic()

        def note(who):
            return lambda _f: order.append((who, time.monotonic() - t0,
                                            sa.resp.body_len - a_at_start, sb.resp.body_len))

        sa.done.add_done_callback(note("A"))
        sb.done.add_done_callback(note("B"))
        ra = await c.wait_response(a, timeout=scaled(120))
        rb = await c.wait_response(b, timeout=scaled(120))
        return order, ra, rb


def _check_complete(ra, rb):
    assert ra.complete and ra.body_len == A_SIZE and ra.pattern_ok, ra
    assert rb.complete and rb.body_len == B_SIZE and rb.pattern_ok, rb


@pytest.mark.timeout(scaled(180))
def test_control_without_priorities_first_request_finishes_first(server):
    order, ra, rb = run(_race(server, "none"), scaled(150))
    _check_complete(ra, rb)
    print(f"no priorities: {order}")
    assert [o[0] for o in order] == ["A", "B"], \
        f"without priorities the earlier, smaller-remaining response should finish first: {order}"


@pytest.mark.timeout(scaled(180))
@pytest.mark.parametrize("mode", ["header", "update"])
def test_urgency_0_started_later_finishes_first(server, mode):
    order, ra, rb = run(_race(server, mode), scaled(150))
    _check_complete(ra, rb)
    print(f"{mode}: {order}")
    assert [o[0] for o in order] == ["B", "A"], \
        f"u=0 response B (started after u=7 response A) did not finish first: {order}"


@pytest.mark.timeout(scaled(180))
@pytest.mark.parametrize("mode", ["header", "update"])
def test_urgency_7_waits_while_urgency_0_is_sent(server, mode):
    """Stricter: while the u=0 response is being sent, the u=7 one should get
    little of the bandwidth (RFC 9218 section 10: lower urgency values are
    served first). Bound: A may receive at most a quarter of what B receives
    while B is in flight (the control case shows about 0 for the stream
    that is second in line)."""
    order, ra, rb = run(_race(server, mode), scaled(150))
    _check_complete(ra, rb)
    b_done = [o for o in order if o[0] == "B"][0]
    a_bytes = b_done[2]
    print(f"{mode}: A received {a_bytes} bytes while B's {B_SIZE} were sent ({order})")
    assert a_bytes <= B_SIZE // 4, (
        f"u=7 response A received {a_bytes} bytes ({a_bytes / B_SIZE:.0%} of B) while the u=0 "
        f"response B was being sent: {order}")


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("value", ["u=9", "u=-1", "garbage;;", "u=0, i=?2", "i, u=x", ""])
def test_invalid_priority_values_ignored(server, value):
    """Unparsable or out-of-range priority fields are ignored (RFC 9218
    section 4: the defaults apply), not an error."""
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(10)) as c:
            r = await c.request("GET", "/bytes/100000", headers=[("priority", value)],
                                check_pattern=True, timeout=scaled(10))
            sid = c.new_stream()
            c.send_priority_update(sid, value)
            c.send_headers(sid, c.request_headers("GET", "/hello"), end_stream=True)
            r2 = await c.wait_response(sid, timeout=scaled(10))
            return r, r2, c.terminated

    r, r2, term = run(go(), scaled(40))
    assert r.status == 200 and r.pattern_ok and r.body_len == 100000, r
    assert (r2.status, r2.body) == (200, b"hello from h3q\n"), r2
    assert term is None, term
