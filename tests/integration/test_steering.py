"""Two h3q-server processes on one UDP port (SO_REUSEPORT), with each
steering mode (--steering ebpf, --steering handoff), also with two
workers each.

The kernel spreads datagrams over the two sockets by 4-tuple hash. Every
connection ID a server issues carries its generation in an identity byte:
with eBPF the kernel delivers each datagram to the socket its identity
names; with handoff, a server that gets a datagram of the other's
connection passes it over a local socket and the owner answers. A client
whose source port changes mid-download (h3q-relay --rebind-after-bytes, 16
times: each new port is a new hash) must get its download intact either
way. With eBPF no datagram is ever handed over (the map of sockets is
shared by both processes); with handoff the rebindings land on the other
server with probability 1 - 2^-16, and its datagrams are handed over.

eBPF needs CAP_BPF: where bpf(2) is refused, --steering ebpf makes the
server exit with a message and the ebpf cases are skipped saying so; the
handoff cases are the fallback and always run."""

from __future__ import annotations

import pytest

from harness import ServerError, pattern_sha256, run_client, scaled
from relay import Relay
from test_operations import metrics, metrics_port, value

SIZE = 20_000_000
REBINDS = 16
MODES = ["ebpf", "handoff"]
# With a QUIC-LB server id of 3 bytes the identity byte moves to offset 4
# of the CID (after the first octet and the server id): the BPF program
# and the handoff must read it there.
QUIC_LB = ("--quic-lb-config-id", "1", "--quic-lb-server-id", "0a0b0c")


def start(servers, mode: str, port: int | None = None, *extra: str):
    """One h3q-server with steering `mode` and a metrics listener; skips
    the test when eBPF is asked for and refused."""
    try:
        return servers.start("--steering", mode, "--metrics", "127.0.0.1:0",
                             "--log-level", "info", *extra, port=port)
    except ServerError as e:
        if mode == "ebpf" and "eBPF refused" in str(e):
            pytest.skip(f"eBPF steering unavailable here (bpf(2) refused): "
                        f"{str(e).splitlines()[-1][:300]}")
        raise


def pair(servers, mode: str, *extra: str):
    a = start(servers, mode, None, *extra)
    b = start(servers, mode, a.port, *extra)
    return a, b


def counters(srv) -> dict[str, float]:
    m = metrics(metrics_port(srv))
    return {
        "accepted": value(m, "h3q_connections_accepted_total"),
        "handed_off": value(m, "h3q_packets_handed_off_total"),
        "handed_in": value(m, "h3q_packets_handed_in_total"),
        "handoff_drops": value(m, "h3q_packets_dropped_total", reason="handoff"),
    }


def logs(*srvs) -> str:
    return "\n".join(f"--- server pid {s.pid}\n{s.stderr_text()[-3000:]}" for s in srvs)


@pytest.mark.parametrize("mode", MODES)
def test_two_servers_share_the_port(servers, mode):
    """Connections are spread over both servers and all are served."""
    a, b = pair(servers, mode)
    runs = 0
    # 8 new connections per run, each from its own source port: both
    # servers get some within a few runs (all 64 on one: 2^-63).
    while runs < 8:
        res = run_client("-c", "8", "-n", "8", a.url("/hello"), timeout=scaled(30))
        assert res.returncode == 0, res.describe() + logs(a, b)
        assert [r["status"] for r in res.records] == [200] * 8, res.describe()
        runs += 1
        ca, cb = counters(a), counters(b)
        if ca["accepted"] and cb["accepted"]:
            break
    assert ca["accepted"] > 0 and cb["accepted"] > 0, (ca, cb)
    assert ca["accepted"] + cb["accepted"] == 8 * runs, (ca, cb)
    if mode == "ebpf":
        # Every datagram went to its owner's socket directly.
        assert ca["handed_off"] == cb["handed_off"] == 0, (ca, cb)
    a.assert_alive()
    b.assert_alive()


@pytest.mark.parametrize("mode,lb", [(m, lb) for lb in (False, True) for m in MODES],
                         ids=["ebpf", "handoff", "ebpf-quic-lb", "handoff-quic-lb"])
def test_rebinding_download_across_servers(servers, mode, lb):
    """The client's source port changes 16 times mid-download: each new
    4-tuple hashes to either server; the download completes intact."""
    a, b = pair(servers, mode, *(QUIC_LB if lb else ()))
    steps = [str(SIZE * (i + 1) // (REBINDS + 2)) for i in range(REBINDS)]
    args = [x for s in steps for x in ("--rebind-after-bytes", s)]
    with Relay(a, *args, duration=120) as relay:
        res = run_client("--verify-bytes", "--no-body", relay.url(f"/bytes/{SIZE}"),
                         timeout=scaled(60))
        relay_counters = relay.stop()
    desc = res.describe() + relay.describe() + logs(a, b)
    assert relay_counters["flows"]["rebinds"] == REBINDS, desc
    assert res.returncode == 0, desc
    rec = res.records[0]
    assert rec["status"] == 200 and rec["error"] is None, desc
    assert rec["body_bytes"] == SIZE and rec["sha256"] == pattern_sha256(SIZE), desc
    ca, cb = counters(a), counters(b)
    owner, other = (ca, cb) if ca["accepted"] else (cb, ca)
    assert owner["accepted"] == 1 and other["accepted"] == 0, (ca, cb)
    if mode == "ebpf":
        assert ca["handed_off"] == cb["handed_off"] == 0, (ca, cb)
    else:
        # The other server got datagrams of the owner's connection and
        # passed them on; every one passed was received (with workers,
        # H3Q_SERVER_ARGS, the owner's other worker passes some too).
        assert other["handed_off"] > 0, (ca, cb, desc)
        assert ca["handed_in"] + cb["handed_in"] == \
            ca["handed_off"] + cb["handed_off"], (ca, cb)


@pytest.mark.parametrize("mode", MODES)
def test_rebinding_download_across_workers(servers, mode):
    """Two servers of two workers each on one port (four sockets): 16
    rebindings land on any of them; the download completes intact. With
    eBPF nothing is handed over; with handoff, what a worker or process
    passes on is received by the owner."""
    a, b = pair(servers, mode, "--workers", "2")
    steps = [str(SIZE * (i + 1) // (REBINDS + 2)) for i in range(REBINDS)]
    args = [x for s in steps for x in ("--rebind-after-bytes", s)]
    with Relay(a, *args, duration=120) as relay:
        res = run_client("--verify-bytes", "--no-body", relay.url(f"/bytes/{SIZE}"),
                         timeout=scaled(60))
        relay_counters = relay.stop()
    desc = res.describe() + relay.describe() + logs(a, b)
    assert relay_counters["flows"]["rebinds"] == REBINDS, desc
    assert res.returncode == 0, desc
    rec = res.records[0]
    assert rec["status"] == 200 and rec["sha256"] == pattern_sha256(SIZE), desc
    ca, cb = counters(a), counters(b)
    assert ca["accepted"] + cb["accepted"] == 1, (ca, cb)
    off = ca["handed_off"] + cb["handed_off"]
    if mode == "ebpf":
        assert off == 0, (ca, cb)
    else:
        # 3 of the 4 sockets are not the owner's: a new port lands on one
        # of them with probability 3/4 each time.
        assert off > 0 and off == ca["handed_in"] + cb["handed_in"], (ca, cb)


def test_generations_of_a_port_are_bounded(servers):
    """Eight servers may share a port (generations 0..7); a ninth says why
    it cannot start."""
    first = start(servers, "handoff")
    for _ in range(7):
        start(servers, "handoff", first.port)
    with pytest.raises(ServerError) as e:
        start(servers, "handoff", first.port)
    assert "all 8 server generations" in str(e.value), str(e.value)[-2000:]
