"""A server bound to a wildcard address answers from the address each
client wrote to (IP_PKTINFO / IPV6_RECVPKTINFO in src/io/udp.c). Every
127.x.y.z address is loopback, so a client writing to 127.0.0.2 expects
answers from 127.0.0.2; its connected socket drops anything from
127.0.0.1, which is where the kernel's own choice of source would put
them."""

from __future__ import annotations

import pytest

from harness import pattern_bytes, pattern_sha256, run_client
from test_ngtcp2 import gtlsclient

SIZE = 1_000_000


def fetch(host: str, port: int):
    h = f"[{host}]" if ":" in host else host
    res = run_client("--no-body", "--verify-bytes", "--timeout", "10",
                     f"https://{h}:{port}/bytes/{SIZE}", f"https://{h}:{port}/bytes/10",
                     timeout=20)
    assert res.returncode == 0, res.describe()
    assert [r["status"] for r in res.records] == [200, 200], res.describe()
    assert res.records[0]["sha256"] == pattern_sha256(SIZE), res.describe()


@pytest.mark.parametrize("bind,targets", [
    ("0.0.0.0", ["127.0.0.1", "127.0.0.2", "127.0.0.3"]),
    ("::", ["::1", "127.0.0.2"]),  # dual-stack: IPv4 arrives IPv4-mapped
], ids=["ipv4-any", "ipv6-any"])
def test_wildcard_answers_from_the_address_written_to(servers, bind, targets):
    s = servers.start(host=bind)
    for t in targets:
        fetch(t, s.port)
    s.assert_alive()


def test_wildcard_gtlsclient(servers, tmp_path):
    s = servers.start(host="0.0.0.0")

    class Target:
        host, port = "127.0.0.2", s.port

    rc, st, desc = gtlsclient(Target, [f"/bytes/{SIZE}"], tmp_path / "dl", tmp_path / "log",
                              timeout=30)
    assert rc == 0 and st == {0: 200}, desc
    assert (tmp_path / "dl" / str(SIZE)).read_bytes() == pattern_bytes(0, SIZE), desc
