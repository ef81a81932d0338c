"""0-RTT (TLS 1.3 early data) with --early-data.

Connection 1 collects a session ticket; connection 2 resumes with it and
sends requests before the handshake completes, so they travel in 0-RTT
packets. Safe methods are served from early data; unsafe ones get 425 Too
Early (RFC 8470). A POST sent after the handshake on the same connection is
served normally. Without --early-data the ticket allows no early data and the
same POST gets 200.

Two ways of sending the early requests:
  - "separate": the ClientHello goes out first and the requests follow at
    once in their own datagrams (what a client normally does);
  - "coalesced": the requests are queued before the first flight, so their
    0-RTT packet shares the UDP datagram with the Initial.

The server's qlog (--qlog-dir) shows which packets carried the requests; it
is used to prove the requests really were sent as 0-RTT.

In the coalesced case the server necessarily handles the requests before the
handshake can complete, so the POST must get 425. In the separate case the
client's Finished may be processed in the same receive batch as the 0-RTT
packets, before the request is dispatched; a server that handles an early
request only after the handshake completed may serve it (RFC 8470 section
3: replay is then impossible), so 200 is accepted there too.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from aioquic_client import H3Client, run
from harness import scaled

HELLO = b"hello from h3q\n"


async def _ticket(s):
    tickets = []
    async with H3Client.connect(s.host, s.port, timeout=scaled(10),
                                session_ticket_handler=tickets.append) as c:
        r = await c.request("GET", "/hello", timeout=scaled(10))
        assert r.status == 200
        for _ in range(int(scaled(20))):
            if tickets:
                break
            await asyncio.sleep(0.1)
    assert tickets, "the server sent no session ticket"
    return tickets[-1]


async def _early(s, ticket, how: str):
    """Resumes with ticket; GET /hello and POST /echo as early data."""
    async with H3Client.connect(s.host, s.port, timeout=scaled(10), session_ticket=ticket,
                                wait_connected=False, send_first_flight=(how != "coalesced")) as c:
        tx = how != "coalesced"
        g = c.new_stream()
        c.send_headers(g, c.request_headers("GET", "/hello"), end_stream=True, transmit=tx)
        p = c.new_stream()
        c.send_headers(p, c.request_headers("POST", "/echo", [("content-length", "5")]), transmit=tx)
        c.send_data(p, b"early", end_stream=True, transmit=tx)
        before_handshake = c.proto.handshake is None
        c.transmit()
        await c.wait_connected()
        rg = await c.wait_response(g, timeout=scaled(10))
        rp = await c.wait_response(p, timeout=scaled(10))
        late = await c.request("POST", "/echo", body=b"after", timeout=scaled(10))
        return {"sids": (g, p), "sent_before_handshake": before_handshake,
                "accepted": c.early_data_accepted, "resumed": c.session_resumed,
                "get": rg, "post": rp, "late_post": late}


def _zero_rtt_stream_ids(qlog_dir: Path) -> dict[str, set[int]]:
    """Per qlog file: request stream ids carried by 0-RTT packets received."""
    out = {}
    for f in sorted(qlog_dir.iterdir()):
        ids = set()
        for line in f.read_text(errors="replace").splitlines():
            line = line.lstrip("\x1e")
            if '"0RTT"' not in line or "packet_received" not in line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            data = ev.get("data") or {}
            if (data.get("header") or {}).get("packet_type") != "0RTT":
                continue
            for fr in data.get("frames") or []:
                if fr.get("frame_type") == "stream" and fr.get("stream_id", 1) % 4 == 0:
                    ids.add(fr["stream_id"])
        out[f.name] = ids
    return out


@pytest.mark.timeout(scaled(90))
@pytest.mark.parametrize("how", ["separate", "coalesced"])
def test_early_data_get_served_post_425(servers, tmp_path, how):
    qdir = tmp_path / "qlog"
    qdir.mkdir()
    s = servers.start("--early-data", "--qlog-dir", str(qdir))

    async def go():
        t = await _ticket(s)
        return t, await _early(s, t, how)

    ticket, res = run(go(), scaled(60))
    assert ticket.max_early_data_size == 0xFFFFFFFF, \
        f"ticket allows early data of {ticket.max_early_data_size}"
    assert res["sent_before_handshake"], "requests were not queued before the handshake"
    assert res["resumed"] and res["accepted"], f"resumed={res['resumed']} early data accepted={res['accepted']}"
    g, p = res["sids"]
    got = _zero_rtt_stream_ids(qdir)
    seen = set().union(*got.values()) if got else set()
    assert (res["get"].status, res["get"].body) == (200, HELLO), res["get"]
    assert (res["late_post"].status, res["late_post"].body) == (200, b"after"), res["late_post"]
    assert {g, p} <= seen, (
        f"the server processed no 0-RTT packet carrying request streams {g}, {p} "
        f"(0-RTT stream ids per connection qlog: {got}); the requests were answered only "
        f"after the handshake: GET {res['get'].status}, POST {res['post'].status}")
    allowed = (425,) if how == "coalesced" else (425, 200)
    assert res["post"].status in allowed and res["post"].complete, \
        f"POST in early data: expected {allowed}, got {res['post']}"
    if res["post"].status == 200:
        assert res["post"].body == b"early", res["post"]


@pytest.mark.timeout(scaled(90))
def test_no_early_data_without_flag(servers, tmp_path):
    s = servers.start()

    async def go():
        t = await _ticket(s)
        return t, await _early(s, t, "coalesced")

    ticket, res = run(go(), scaled(60))
    assert ticket.max_early_data_size in (None, 0), ticket.max_early_data_size
    assert res["resumed"] is True and res["accepted"] is False, res
    assert (res["get"].status, res["get"].body) == (200, HELLO), res["get"]
    assert (res["post"].status, res["post"].body) == (200, b"early"), res["post"]


@pytest.mark.timeout(scaled(90))
def test_ticket_key_shared_between_processes(servers, tmp_path):
    """--ticket-key: a ticket from one process resumes (with 0-RTT) at
    another using the same key; a process with another key does a full
    handshake and refuses the early data, so the POST is answered 200."""
    key = tmp_path / "ticket.key"
    key.write_bytes(os.urandom(48))
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(48))
    a = servers.start("--early-data", "--ticket-key", str(key))
    b = servers.start("--early-data", "--ticket-key", str(key))
    c = servers.start("--early-data", "--ticket-key", str(other))

    async def go():
        t = await _ticket(a)
        return await _early(b, t, "coalesced"), await _early(c, t, "coalesced")

    same, diff = run(go(), scaled(60))
    assert same["resumed"] and same["accepted"], same
    assert same["post"].status == 425 and same["get"].status == 200, same
    assert diff["resumed"] is False and not diff["accepted"], diff
    assert diff["post"].status == 200 and diff["get"].status == 200, diff


@pytest.mark.timeout(scaled(60))
def test_bad_ticket_key_file(servers, tmp_path, certs):
    from harness import ServerError, start_server

    key = tmp_path / "short.key"
    key.write_bytes(b"x" * 47)
    with pytest.raises(ServerError, match="48"):
        start_server("--early-data", "--ticket-key", str(key), certs=certs, log_dir=tmp_path)
