"""Operations: Prometheus metrics, the access log, log formats, the TLS key
log, quiche's trace log, per-connection stats, the download limit, socket
buffer knobs and the one-datagram-per-syscall fallback.

The metrics text is checked by a strict parser of the Prometheus text
exposition format 0.0.4 written here (families, HELP/TYPE once and before
their samples, names, label escaping, values, histogram invariants), and
its counters against requests whose number and statuses the test knows.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from aioquic_client import H3_REQUEST_CANCELLED, H3Client, run
from harness import (SERVER_BIN, SOURCE_DIR, free_udp_port, pattern_sha256, require_exe,
                     run_client, scaled)
from test_config import assert_config_error

HELLO = b"hello from h3q\n"

# --------------------------------------------------------------------------
# a strict parser of the Prometheus text format 0.0.4

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(AssertionError):
    pass


def _parse_value(text: str, line: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        raise ExpositionError(f"bad value {text!r} in {line!r}")
    return float(text)


def _parse_labels(s: str, line: str) -> tuple[dict[str, str], str]:
    """Parses '{a="x",b="y"}rest'; returns the labels and the rest."""
    labels: dict[str, str] = {}
    i = 1
    while True:
        if s[i] == "}":
            return labels, s[i + 1:]
        m = LABEL_RE.match(s, i)
        if not m or s[m.end():m.end() + 2] != '="':
            raise ExpositionError(f"bad label in {line!r}")
        name, i = m.group(0), m.end() + 2
        value = []
        while True:
            if i >= len(s):
                raise ExpositionError(f"unterminated label value in {line!r}")
            ch = s[i]
            if ch == "\\":
                esc = s[i + 1:i + 2]
                if esc not in ("\\", '"', "n"):
                    raise ExpositionError(f"bad escape in {line!r}")
                value.append("\n" if esc == "n" else esc)
                i += 2
            elif ch == '"':
                i += 1
                break
            else:
                value.append(ch)
                i += 1
        if name in labels:
            raise ExpositionError(f"label {name} twice in {line!r}")
        labels[name] = "".join(value)
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            raise ExpositionError(f"expected , or }} in {line!r}")


def _family_of(name: str, types: dict[str, str]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return name


def parse_exposition(text: str) -> dict:
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    if not text.endswith("\n"):
        raise ExpositionError("the exposition must end with a newline")
    families: dict[str, dict] = {}
    types: dict[str, str] = {}
    done: set[str] = set()  # families whose samples ended
    current = None
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME_RE.fullmatch(name):
                    raise ExpositionError(f"bad name in {line!r}")
                fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
                key = parts[1].lower()
                if fam[key] is not None:
                    raise ExpositionError(f"second {parts[1]} for {name}")
                if fam["samples"]:
                    raise ExpositionError(f"{parts[1]} for {name} after its samples")
                fam[key] = parts[3] if len(parts) > 3 else ""
                if key == "type":
                    if fam["type"] not in TYPES:
                        raise ExpositionError(f"bad type in {line!r}")
                    types[name] = fam["type"]
            continue
        if not line.strip():
            raise ExpositionError("empty line in the exposition")
        m = NAME_RE.match(line)
        if not m:
            raise ExpositionError(f"bad sample line {line!r}")
        name, rest = m.group(0), line[m.end():]
        labels: dict[str, str] = {}
        if rest.startswith("{"):
            labels, rest = _parse_labels(rest, line)
        fields = rest.split(" ")
        if fields[0] != "" or len(fields) not in (2, 3):
            raise ExpositionError(f"bad sample line {line!r}")
        value = _parse_value(fields[1], line)
        fam_name = _family_of(name, types)
        if fam_name != current:
            if fam_name in done:
                raise ExpositionError(f"samples of {fam_name} are not together")
            if current is not None:
                done.add(current)
            current = fam_name
        fam = families.setdefault(fam_name, {"type": "untyped", "help": None, "samples": []})
        if any(s[0] == name and s[1] == labels for s in fam["samples"]):
            raise ExpositionError(f"duplicate sample {line!r}")
        fam["samples"].append((name, labels, value))
    for name, fam in families.items():
        if fam["type"] == "histogram":
            _check_histogram(name, fam["samples"])
        if fam["type"] == "counter":
            assert all(v >= 0 for _, _, v in fam["samples"]), name
    return families


def _check_histogram(name: str, samples: list) -> None:
    buckets = [(s[1]["le"], s[2]) for s in samples if s[0] == name + "_bucket"]
    count = [s[2] for s in samples if s[0] == name + "_count"]
    total = [s[2] for s in samples if s[0] == name + "_sum"]
    if not buckets or len(count) != 1 or len(total) != 1:
        raise ExpositionError(f"histogram {name} lacks buckets, _sum or _count")
    bounds = [_parse_value(le, name) for le, _ in buckets]
    if bounds != sorted(bounds) or not math.isinf(bounds[-1]):
        raise ExpositionError(f"histogram {name}: buckets not ascending to +Inf")
    values = [v for _, v in buckets]
    if values != sorted(values) or values[-1] != count[0]:
        raise ExpositionError(f"histogram {name}: buckets not cumulative, or +Inf != _count")


def test_parser_rejects_what_it_must():
    good = ("# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 3\n"
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 0.5\nh_count 2\n")
    fams = parse_exposition(good)
    assert fams["a_total"]["samples"] == [("a_total", {"x": '1"'}, 3.0)]
    bad = [
        good[:-1],  # no final newline
        good.replace("a_total{", "a-total{"),
        good.replace("} 3", "} three"),
        good.replace('le="+Inf"} 2', 'le="+Inf"} 3'),  # +Inf != count
        good.replace('h_bucket{le="1"} 1', 'h_bucket{le="1"} 5'),  # not cumulative
        good + "# TYPE a_total counter\n",  # TYPE twice
        good + "a_total{x=\"2\"} 1\n",  # family split
        good.replace('x="1\\""', 'x="1'),  # unterminated
    ]
    for text in bad:
        with pytest.raises(ExpositionError):
            parse_exposition(text)


def value(fams: dict, sample: str, **labels: str) -> float:
    for fam in fams.values():
        for name, lab, v in fam["samples"]:
            if name == sample and lab == labels:
                return v
    raise AssertionError(f"no sample {sample}{labels}")


# --------------------------------------------------------------------------
# helpers


def metrics_port(srv) -> int:
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        for line in srv.stdout_lines:
            m = re.fullmatch(r"h3q-server metrics on port (\d+)", line)
            if m:
                return int(m.group(1))
        time.sleep(0.05)
    pytest.fail(f"no metrics line on stdout: {srv.stdout_lines}")


def scrape(port: int, path: str = "/metrics", method: str = "GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=scaled(10)) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def metrics(port: int) -> dict:
    status, headers, body = scrape(port)
    assert status == 200, (status, body)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    assert headers["Connection"] == "close", headers
    return parse_exposition(body)


def wait_for(pred, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + scaled(timeout)
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# --------------------------------------------------------------------------
# metrics


@pytest.mark.timeout(scaled(120))
def test_metrics_count_requests(servers):
    srv = servers.start("--metrics", "127.0.0.1:0")
    port = metrics_port(srv)
    before = metrics(port)
    assert value(before, "h3q_requests_total") == 0
    assert value(before, "h3q_connections_active") == 0
    for name in ("h3q_retries_total", "h3q_stateless_resets_total",
                 "h3q_version_negotiations_total", "h3q_webtransport_sessions_active"):
        assert name in before, name

    async def go():
        async with H3Client.connect(srv.host, srv.port) as c:
            rs = [await c.request("GET", "/hello", timeout=scaled(10)) for _ in range(3)]
            rs += [await c.request("GET", "/no/such/page", timeout=scaled(10)) for _ in range(2)]
            rs.append(await c.request("GET", "/bytes/100000", timeout=scaled(10)))
            during = metrics(port)
            return rs, during

    rs, during = run(go(), scaled(60))
    assert [r.status for r in rs] == [200, 200, 200, 404, 404, 200]
    assert value(during, "h3q_connections_active") == 1
    assert value(during, "h3q_connections_accepted_total") == 1
    after = wait_for(lambda: (m := metrics(port)) and
                     value(m, "h3q_connections_active") == 0 and m, "the connection to close")
    assert value(after, "h3q_requests_total") == 6
    assert value(after, "h3q_responses_total", **{"class": "2xx"}) == 4
    assert value(after, "h3q_responses_total", **{"class": "4xx"}) == 2
    for cls in ("none", "1xx", "3xx", "5xx"):
        assert value(after, "h3q_responses_total", **{"class": cls}) == 0
    body_bytes = sum(len(r.body) for r in rs)
    assert value(after, "h3q_response_body_bytes_total") == body_bytes
    assert value(after, "h3q_request_duration_seconds_count") == 6
    assert value(after, "h3q_request_duration_seconds_bucket", le="+Inf") == 6
    assert value(after, "h3q_connections_closed_total", reason="peer") == 1
    closed = sum(v for _, _, v in after["h3q_connections_closed_total"]["samples"])
    assert closed == 1
    # Everything the server sent and got went through UDP.
    assert value(after, "h3q_udp_bytes_sent_total") > body_bytes
    assert value(after, "h3q_udp_datagrams_received_total") >= 3


def test_metrics_packet_drops_and_version_negotiation(servers):
    srv = servers.start("--metrics", "127.0.0.1:0")
    port = metrics_port(srv)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(scaled(5))
    try:
        # A long header with an unknown version, padded to 1200 bytes.
        vn = bytes([0xC0]) + bytes.fromhex("1a2a3a4a") + b"\x08" + b"D" * 8 + b"\x08" + b"S" * 8
        s.sendto(vn + bytes(1200 - len(vn)), (srv.host, srv.port))
        reply, _ = s.recvfrom(2048)
        assert reply[1:5] == b"\x00\x00\x00\x00", "expected a Version Negotiation packet"
        s.sendto(b"hello", (srv.host, srv.port))  # no QUIC header at all
        s.sendto(bytes([0x40]) + os.urandom(40), (srv.host, srv.port))  # unknown DCID
    finally:
        s.close()
    m = wait_for(lambda: (m := metrics(port)) and
                 value(m, "h3q_udp_datagrams_received_total") >= 3 and m, "the datagrams")
    assert value(m, "h3q_version_negotiations_total") == 1
    assert value(m, "h3q_packets_dropped_total", reason="version") == 1
    assert value(m, "h3q_packets_dropped_total", reason="malformed") == 1
    assert value(m, "h3q_packets_dropped_total", reason="unknown_connection") == 1
    assert value(m, "h3q_connections_accepted_total") == 0


def test_metrics_http_edges(servers):
    """404 elsewhere, 405 for other methods, HEAD without a body, a bounded
    request head, and clients that send half a request or nothing do not
    hold up the QUIC side or other scrapes."""
    srv = servers.start("--metrics", "127.0.0.1:0")
    port = metrics_port(srv)
    assert scrape(port, "/")[0] == 404
    assert scrape(port, "/metricsx")[0] == 404
    assert scrape(port, "/metrics", method="POST")[0] == 405
    status, headers, body = scrape(port, "/metrics?name=x", method="HEAD")
    assert status == 200 and body == "" and int(headers["Content-Length"]) > 100
    # Slow and silent clients, left open meanwhile.
    slow = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    slow.sendall(b"GET /metr")
    silent = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    try:
        res = run_client(srv.url("/hello"), timeout=scaled(30))
        assert res.returncode == 0 and res.records[0]["status"] == 200, res.describe()
        assert value(metrics(port), "h3q_requests_total") == 1
        # The slow one finishes its request later and gets its answer.
        slow.sendall(b"ics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := slow.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:100]
        assert b"\r\nConnection: close\r\n" in data
        # A head that never ends is refused once it is too long.
        big = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        big.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 8000)
        reply = big.recv(100)
        big.close()
        assert reply.startswith(b"HTTP/1.1 400 "), reply
    finally:
        slow.close()
        silent.close()


@pytest.mark.parametrize("value_, field", [
    ("localhost:9100", "metrics_addr"),
    ("127.0.0.1", "metrics_addr"),
    ("127.0.0.1:70000", "metrics_addr"),
    ("::1:9100", "metrics_addr"),
])
def test_metrics_addr_invalid(value_, field):
    assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                         "--metrics", value_], field, "--metrics")


def test_metrics_port_taken(certs):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                             "--cert", str(certs.cert), "--key", str(certs.key),
                             "--metrics", f"127.0.0.1:{port}"], "metrics_addr")
    finally:
        taken.close()


def test_metrics_ipv6(servers):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    srv = servers.start("--metrics", "[::1]:0")
    port = metrics_port(srv)
    with socket.create_connection(("::1", port), timeout=scaled(5)) as s:
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    parse_exposition(body.decode())


# --------------------------------------------------------------------------
# access log and log formats

TEXT_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) (\S+) (\d+) (\d+) "
                       r"(\d+\.\d{3})ms conn=(\d+) stream=(\d+)( aborted)?")


def access_records(path: Path, fmt: str) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if fmt == "json":
            rec = json.loads(line)
            assert set(rec) == {"ts", "method", "path", "status", "bytes", "duration_ms",
                                "conn", "stream", "aborted"}, rec
        else:
            m = TEXT_LINE.fullmatch(line)
            assert m, f"access log line does not parse: {line!r}"
            rec = {"ts": m[1], "method": m[2], "path": m[3], "status": int(m[4]),
                   "bytes": int(m[5]), "duration_ms": float(m[6]), "conn": int(m[7]),
                   "stream": int(m[8]), "aborted": bool(m[9])}
        out.append(rec)
    return out


@pytest.mark.timeout(scaled(120))
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_access_log_one_line_per_request(servers, tmp_path, fmt):
    log = tmp_path / "access.log"
    srv = servers.start("--access-log", str(log), "--log-format", fmt)
    upload = os.urandom(3000)

    async def go():
        async with H3Client.connect(srv.host, srv.port) as c:
            rs = [await c.request("GET", "/hello", timeout=scaled(10)),
                  await c.request("GET", "/missing", timeout=scaled(10)),
                  await c.request("POST", "/echo", body=upload, timeout=scaled(10)),
                  await c.request("GET", "/bytes/50000", timeout=scaled(10))]
            # A download the client stops half-way: logged when it is reset.
            sid = c.new_stream(store_body=False, hash_body=False)
            c.send_headers(sid, c.request_headers("GET", "/bytes/1000000000"), end_stream=True)
            while c.proto.streams[sid].resp.body_len < 100_000:
                await c._wait_progress(scaled(10))
            c.stop_sending(sid, H3_REQUEST_CANCELLED)
            c.reset_stream(sid, H3_REQUEST_CANCELLED)
            c.transmit()
            await asyncio.sleep(0.2)
            return rs, sid

    rs, cut_sid = run(go(), scaled(60))
    assert [r.status for r in rs] == [200, 404, 200, 200]
    recs = wait_for(lambda: len(r := access_records(log, fmt)) >= 5 and r, "5 access log lines")
    time.sleep(0.6)  # two housekeeping flushes: nothing more may come
    recs = access_records(log, fmt)
    assert len(recs) == 5, recs
    by_stream = {r["stream"]: r for r in recs}
    assert set(by_stream) == {r.stream_id for r in rs} | {cut_sid}
    assert len({r["conn"] for r in recs}) == 1, "one connection"
    expected = [("GET", "/hello", 200, len(HELLO)), ("GET", "/missing", 404, None),
                ("POST", "/echo", 200, len(upload)), ("GET", "/bytes/50000", 200, 50000)]
    for r, (method, path, status, nbytes) in zip(rs, expected):
        rec = by_stream[r.stream_id]
        assert (rec["method"], rec["path"], rec["status"]) == (method, path, status), rec
        assert rec["bytes"] == (nbytes if nbytes is not None else len(r.body)), rec
        assert rec["duration_ms"] >= 0 and not rec["aborted"], rec
    cut = by_stream[cut_sid]
    assert cut["aborted"] and cut["status"] == 200 and cut["path"] == "/bytes/1000000000", cut
    assert 100_000 <= cut["bytes"] < 1_000_000_000, cut


def test_access_log_to_stdout(servers):
    srv = servers.start("--access-log", "-")
    res = run_client("-n", "3", srv.url("/hello"), timeout=scaled(30))
    assert res.returncode == 0, res.describe()
    lines = wait_for(lambda: len(l := [x for x in srv.stdout_lines if " GET /hello " in x]) >= 3
                     and l, "3 access lines on stdout")
    assert len(lines) == 3
    for line in lines:
        assert TEXT_LINE.fullmatch(line), line


def test_access_log_unwritable(certs, tmp_path):
    assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                         "--cert", str(certs.cert), "--key", str(certs.key),
                         "--access-log", str(tmp_path / "no" / "dir" / "a.log")],
                        "access_log_path", "--access-log")


def test_json_log_lines(servers):
    srv = servers.start("--log-format", "json", "--log-level", "debug")
    res = run_client(srv.url("/hello"), timeout=scaled(30))
    assert res.returncode == 0, res.describe()
    srv.stop()
    lines = [l for l in srv.stderr_text().splitlines() if l.strip()]
    assert len(lines) >= 2, lines
    for line in lines:
        rec = json.loads(line)
        assert set(rec) == {"ts", "level", "program", "msg"}, rec
        assert rec["level"] in ("error", "warn", "info", "debug", "trace"), rec
    assert any("accepted" in json.loads(l)["msg"] for l in lines)


@pytest.mark.parametrize("bad", ["xml", "JSONX", ""])
def test_log_format_invalid(bad):
    assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                         "--log-format", bad], "log_format", "--log-format")


def test_keylog(servers, tmp_path):
    keylog = tmp_path / "keys.log"
    srv = servers.start("--keylog", str(keylog))
    res = run_client(srv.url("/hello"), timeout=scaled(30))
    assert res.returncode == 0, res.describe()
    text = keylog.read_text()
    for label in ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"):
        assert re.search(rf"^{label} [0-9a-f]{{64}} [0-9a-f]+$", text, re.M), text[:500]


def test_quiche_debug_log_at_trace(servers):
    srv = servers.start("--log-level", "trace")
    res = run_client(srv.url("/hello"), timeout=scaled(30))
    assert res.returncode == 0, res.describe()
    srv.stop()
    quiche_lines = [l for l in srv.stderr_text().splitlines() if " trace quiche: " in l]
    assert quiche_lines, srv.stderr_text()[-2000:]


def test_no_quiche_log_below_trace(servers):
    srv = servers.start("--log-level", "debug")
    res = run_client(srv.url("/hello"), timeout=scaled(30))
    assert res.returncode == 0, res.describe()
    srv.stop()
    assert "quiche:" not in srv.stderr_text()


# --------------------------------------------------------------------------
# per-connection stats (h3q_request_conn_stats through GET /connstats)


def test_connection_stats(servers):
    srv = servers.start()

    async def go():
        async with H3Client.connect(srv.host, srv.port) as c:
            await c.request("GET", "/bytes/200000", timeout=scaled(10))
            return await c.request("GET", "/connstats", timeout=scaled(10))

    r = run(go(), scaled(30))
    assert r.status == 200, r
    st = json.loads(r.body)
    assert st["rtt_us"] > 0 and st["min_rtt_us"] > 0, st
    assert st["cwnd"] >= 2 * 1200 and st["pmtu"] >= 1200, st
    assert st["bytes_sent"] > 200_000 and st["bytes_received"] > 1200, st
    assert st["packets_sent"] > 100 and st["packets_received"] > 1, st
    assert st["packets_lost"] >= 0 and st["bytes_lost"] >= 0, st


# --------------------------------------------------------------------------
# max_active_downloads_per_conn


@pytest.mark.timeout(scaled(90))
def test_download_limit_per_connection(servers):
    """With a limit of 1, a GET while another GET is in progress on the same
    connection gets 503; other methods and other connections do not count;
    the slot frees when the first response ends. The first GET is kept open
    by /dgram/echo, whose response ends when the request does."""
    srv = servers.start("--max-downloads-per-conn", "1", "--h3-datagrams",
                        "--metrics", "127.0.0.1:0")
    port = metrics_port(srv)

    async def go():
        async with H3Client.connect(srv.host, srv.port) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("GET", "/dgram/echo"), end_stream=False)
            while not c.proto.streams[sid].got_final_headers:
                await c._wait_progress(scaled(10))
            refused = await c.request("GET", "/hello", timeout=scaled(10))
            upload = await c.request("POST", "/echo", body=b"x" * 1000, timeout=scaled(10))
            other = await run_other()
            c.send_data(sid, b"", end_stream=True)
            first = await c.wait_response(sid, timeout=scaled(10))
            again = await c.request("GET", "/hello", timeout=scaled(10))
            return refused, upload, other, first, again

    async def run_other():
        async with H3Client.connect(srv.host, srv.port) as c2:
            return await c2.request("GET", "/hello", timeout=scaled(10))

    refused, upload, other, first, again = run(go(), scaled(60))
    assert refused.status == 503, refused
    assert upload.status == 200 and upload.body == b"x" * 1000
    assert other.status == 200
    assert first.status == 200 and first.complete
    assert again.status == 200 and again.body == HELLO
    assert value(metrics(port), "h3q_downloads_rejected_total") == 1
    assert "max_active_downloads_per_conn" in srv.stderr_text()


# --------------------------------------------------------------------------
# socket knobs and the one-datagram-per-syscall fallback


@pytest.mark.parametrize("flag, bad, field", [
    ("--recv-buffer", "100", "recv_buffer_size"),
    ("--recv-buffer", "2000000000", "recv_buffer_size"),
    ("--send-buffer", "1", "send_buffer_size"),
    ("--send-buffer", "1073741825", "send_buffer_size"),
    ("--max-downloads-per-conn", "1000001", "max_active_downloads_per_conn"),
])
def test_knob_validation_names_the_field(certs, flag, bad, field):
    assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                         "--cert", str(certs.cert), "--key", str(certs.key), flag, bad],
                        field, flag)


def test_socket_buffer_sizes_logged(servers):
    srv = servers.start("--recv-buffer", "262144", "--send-buffer", "131072",
                        "--log-level", "debug")
    res = run_client(srv.url("/hello"), timeout=scaled(30))
    assert res.returncode == 0, res.describe()
    m = re.search(r"socket buffers: receive (\d+), send (\d+) bytes \(asked 262144, 131072",
                  srv.stderr_text())
    assert m, srv.stderr_text()[-2000:]
    # Linux doubles what it grants (bookkeeping); a cap may lower it.
    assert 0 < int(m[1]) <= 2 * 262144 and 0 < int(m[2]) <= 2 * 131072, m.groups()


@pytest.mark.timeout(scaled(180))
@pytest.mark.parametrize("how", ["flag", "env"])
def test_single_datagram_syscalls_download(servers, how):
    size = 20_000_000
    if how == "flag":
        srv = servers.start("--udp-no-mmsg", "--log-level", "info")
    else:
        srv = servers.start("--log-level", "info", env={**os.environ, "H3Q_UDP_NO_MMSG": "1"})
    res = run_client("--verify-bytes", "-o", "/dev/null", srv.url(f"/bytes/{size}"),
                     timeout=scaled(120))
    assert res.returncode == 0, res.describe()
    rec = res.records[0]
    assert rec["status"] == 200 and rec["body_bytes"] == size, res.describe()
    assert rec["sha256"] == pattern_sha256(size)

    async def go():
        async with H3Client.connect(srv.host, srv.port) as c:
            return await c.request("POST", "/echo", body=b"y" * 300_000, timeout=scaled(30))

    r = run(go(), scaled(60))
    assert r.status == 200 and r.body == b"y" * 300_000
    assert "one datagram per system call" in srv.stderr_text()


# --------------------------------------------------------------------------
# documentation


def test_readme_documents_every_flag():
    """Every flag h3q-server --help lists has a row in the README's table."""
    out = subprocess.run([require_exe(SERVER_BIN, "h3q-server"), "--help"], capture_output=True,
                         text=True, timeout=scaled(10)).stdout
    flags = re.findall(r"^  (--[a-z0-9-]+)", out, re.M)
    assert len(flags) > 40, out
    table = [l for l in (SOURCE_DIR / "README.md").read_text().splitlines() if l.startswith("| `--")]
    missing = [f for f in flags if not any(re.search(rf"`{f}[ `]", row) for row in table)]
    assert not missing, f"README's flag table lacks {missing}"
