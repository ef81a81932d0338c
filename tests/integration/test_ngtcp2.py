"""Debian's ngtcp2 example client (gtlsclient, package ngtcp2-client) fetches
from h3q-server: an independent QUIC + HTTP/3 stack (ngtcp2/nghttp3/GnuTLS)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness import pattern_bytes, require_tool, scaled

STATUS_RE = re.compile(r"http: stream 0x([0-9a-f]+) \[:status: (\d{3})\]")


def gtlsclient(server, paths: list[str], dl: Path, log: Path, timeout: float = 60.0,
               extra: list[str] | None = None) -> tuple[int, dict[int, int], str]:
    """Runs gtlsclient for the given paths on one connection.

    Returns (exit status, {stream_id: status}, log text). Bodies land in dl/
    named after the last path component. The client exits once all its
    streams close (--exit-on-all-streams-close); an outer timeout bounds it.
    """
    exe = require_tool("gtlsclient", "ngtcp2-client")
    dl.mkdir(parents=True, exist_ok=True)
    host = server.host
    urls = [f"https://{'[' + host + ']' if ':' in host else host}:{server.port}{p}" for p in paths]
    cmd = [exe, "--no-quic-dump", "--no-http-dump", "--exit-on-all-streams-close",
           "--timeout=10s", "--handshake-timeout=10s", "--download", str(dl),
           *(extra or []), host, str(server.port), *urls]
    with open(log, "wb") as f:
        try:
            p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            pytest.fail(f"gtlsclient did not exit within {scaled(timeout):.0f}s\ncmd: {' '.join(cmd)}\n"
                        f"log tail:\n{log.read_text(errors='replace')[-3000:]}", pytrace=False)
    text = log.read_text(errors="replace")
    statuses = {int(sid, 16): int(st) for sid, st in STATUS_RE.findall(text)}
    return p.returncode, statuses, f"cmd: {' '.join(cmd)}\nexit {p.returncode}\nlog tail:\n" + \
        "\n".join(l for l in text.splitlines()[-60:])


def test_gtlsclient_hello(server, tmp_path):
    rc, st, desc = gtlsclient(server, ["/hello"], tmp_path / "dl", tmp_path / "log")
    assert rc == 0, desc
    assert st == {0: 200}, desc
    assert (tmp_path / "dl" / "hello").read_bytes() == b"hello from h3q\n", desc


@pytest.mark.parametrize("n", [1, 100_000, 1_000_000, 5_000_000])
def test_gtlsclient_bytes(n, server, tmp_path):
    rc, st, desc = gtlsclient(server, [f"/bytes/{n}"], tmp_path / "dl", tmp_path / "log")
    assert rc == 0, desc
    assert st == {0: 200}, desc
    got = (tmp_path / "dl" / str(n)).read_bytes()
    assert len(got) == n, f"{len(got)} bytes, expected {n}\n{desc}"
    assert got == pattern_bytes(0, n), "body differs from the i % 251 pattern"


def test_gtlsclient_many_on_one_connection(server, tmp_path):
    paths = ["/hello", "/bytes/300000", "/user/ngtcp2", "/nope", "/bytes/77777"]
    rc, st, desc = gtlsclient(server, paths, tmp_path / "dl", tmp_path / "log")
    assert rc == 0, desc
    assert st == {0: 200, 4: 200, 8: 200, 12: 404, 16: 200}, desc
    dl = tmp_path / "dl"
    assert (dl / "hello").read_bytes() == b"hello from h3q\n"
    assert (dl / "300000").read_bytes() == pattern_bytes(0, 300000)
    assert (dl / "ngtcp2").read_bytes() == b"user ngtcp2\n"
    assert (dl / "77777").read_bytes() == pattern_bytes(0, 77777)


def test_gtlsclient_ipv6(servers, tmp_path):
    s6 = servers.start(host="::1")
    rc, st, desc = gtlsclient(s6, ["/hello", "/bytes/200000"], tmp_path / "dl", tmp_path / "log")
    assert rc == 0, desc
    assert st == {0: 200, 4: 200}, desc
    assert (tmp_path / "dl" / "hello").read_bytes() == b"hello from h3q\n"
    assert (tmp_path / "dl" / "200000").read_bytes() == pattern_bytes(0, 200000)


def test_gtlsclient_post_echo(server, tmp_path):
    """gtlsclient -d sends a file as the request body; /echo returns it."""
    body = bytes((i * 7) % 256 for i in range(150_000))
    src = tmp_path / "body.bin"
    src.write_bytes(body)
    rc, st, desc = gtlsclient(server, ["/echo"], tmp_path / "dl", tmp_path / "log",
                              extra=["-m", "POST", "-d", str(src)])
    assert rc == 0, desc
    assert st == {0: 200}, desc
    assert (tmp_path / "dl" / "echo").read_bytes() == body
