"""h3q-server behind h3q-relay (tests/tools/relay.c): loss, reordering,
duplication, corruption and a PMTU blackhole, with h3q-client, ngtcp2's
gtlsclient and aioquic. Bodies are checked by SHA-256 and every request
must end in exactly one status.

Sizes: the 100 MB download runs with h3q-client only. At 5% loss the
congestion window stays small (about 30 s for 100 MB here), and aioquic,
pure Python, moves an order of magnitude fewer bytes per second, so the
other clients fetch 20 MB (gtlsclient) and 10 MB (aioquic) to keep this
file within a few minutes of CI. Echo: 20 MB with h3q-client and
gtlsclient, 5 MB with aioquic, for the same reason. The relay is seeded,
so a run's impairment decisions are reproducible."""

from __future__ import annotations

import hashlib

import pytest

from aioquic_client import H3Client, chunks_of_file, run
from harness import (file_sha256, make_data_file, pattern_bytes, pattern_sha256, run_client,
                     scaled)
from relay import Relay
from test_ngtcp2 import gtlsclient

LOSSY = ("--loss", 5, "--reorder", 25, "--reorder-ms", 1, "--dup", 1)
MB = 1000 * 1000


@pytest.fixture(scope="module")
def upload_20mb(tmp_path_factory):
    path = tmp_path_factory.mktemp("impaired") / "upload.bin"
    sha = make_data_file(path, 20 * MB, seed=1111)
    yield path, sha
    path.unlink(missing_ok=True)


def check_lossy_counters(relay: Relay):
    c = relay.counters
    for d in ("up", "down"):
        assert c[d]["lost"] > 0 and c[d]["reordered"] > 0 and c[d]["duplicated"] > 0, \
            relay.describe()


def one_status_each(records: list[dict], n: int, desc: str):
    assert len(records) == n, desc
    for rec in records:
        assert isinstance(rec["status"], int) and rec["error"] is None, desc


# ---- 5% loss, 25% reordering, 1% duplication --------------------------------


@pytest.mark.timeout(scaled(240))
def test_lossy_download_100mb_h3q_client(server):
    size = 100 * MB
    with Relay(server, "--seed", 1, *LOSSY) as relay:
        res = run_client("--verify-bytes", "--no-body", relay.url(f"/bytes/{size}"),
                         timeout=scaled(180))
        relay.stop()
    desc = res.describe() + relay.describe()
    assert res.returncode == 0, desc
    one_status_each(res.records, 1, desc)
    rec = res.records[0]
    assert rec["status"] == 200 and rec["body_bytes"] == size, desc
    assert rec["sha256"] == pattern_sha256(size), desc
    check_lossy_counters(relay)
    print(f"100 MB at 5% loss: {res.elapsed:.1f}s")
    server.assert_alive()


def test_lossy_many_requests_h3q_client(server):
    """60 requests of three kinds on one connection: each one status."""
    urls = []
    with Relay(server, "--seed", 2, *LOSSY) as relay:
        for i in range(20):
            urls += [relay.url("/hello"), relay.url(f"/bytes/{100_000 + i}"), relay.url("/nope")]
        res = run_client("-p", "8", "--no-body", *urls, timeout=scaled(60))
        relay.stop()
    desc = res.describe() + relay.describe()
    one_status_each(res.records, 60, desc)
    by_url = {}
    for rec in res.records:
        by_url.setdefault(rec["url"].split("/", 3)[3], []).append(rec["status"])
    assert by_url["hello"] == [200] * 20 and by_url["nope"] == [404] * 20, desc
    assert sum(len(v) for k, v in by_url.items() if k.startswith("bytes/")) == 20, desc
    assert all(v == [200] for k, v in by_url.items() if k.startswith("bytes/")), desc
    for rec in res.records:
        if "/bytes/" in rec["url"]:
            assert rec["sha256"] == pattern_sha256(int(rec["url"].rsplit("/", 1)[1])), desc
        if rec["url"].endswith("/hello"):
            assert rec["sha256"] == hashlib.sha256(b"hello from h3q\n").hexdigest(), desc


@pytest.mark.timeout(scaled(180))
def test_lossy_echo_20mb_h3q_client(server, upload_20mb, tmp_path):
    path, sha = upload_20mb
    out = tmp_path / "echoed.bin"
    with Relay(server, "--seed", 3, *LOSSY) as relay:
        res = run_client("-X", "POST", "--data-file", str(path), "-o", str(out),
                         relay.url("/echo"), timeout=scaled(120))
        relay.stop()
    desc = res.describe() + relay.describe()
    assert res.returncode == 0, desc
    one_status_each(res.records, 1, desc)
    assert res.records[0]["status"] == 200 and res.records[0]["sha256"] == sha, desc
    assert file_sha256(out) == sha
    check_lossy_counters(relay)


@pytest.mark.timeout(scaled(180))
def test_lossy_gtlsclient(server, upload_20mb, tmp_path):
    """gtlsclient: a 20 MB download with small requests beside it, then a
    20 MB echo on a second connection."""
    size = 20 * MB
    with Relay(server, "--seed", 4, *LOSSY) as relay:
        rc, st, desc = gtlsclient(relay, [f"/bytes/{size}", "/hello", "/nope"],
                                  tmp_path / "dl", tmp_path / "log", timeout=120,
                                  extra=["--timeout=30s"])
        relay.stop()
    desc += relay.describe()
    assert rc == 0 and st == {0: 200, 4: 200, 8: 404}, desc
    got = tmp_path / "dl" / str(size)
    assert got.stat().st_size == size and file_sha256(got) == pattern_sha256(size), desc
    assert (tmp_path / "dl" / "hello").read_bytes() == b"hello from h3q\n"
    check_lossy_counters(relay)

    path, sha = upload_20mb
    with Relay(server, "--seed", 5, *LOSSY) as relay:
        rc, st, desc = gtlsclient(relay, ["/echo"], tmp_path / "dl2", tmp_path / "log2",
                                  timeout=120, extra=["--timeout=30s", "--http-method=POST", f"--data={path}"])
        relay.stop()
    desc += relay.describe()
    assert rc == 0 and st == {0: 200}, desc
    assert file_sha256(tmp_path / "dl2" / "echo") == sha, desc


@pytest.mark.timeout(scaled(240))
def test_lossy_aioquic(server, tmp_path):
    size = 10 * MB
    up = tmp_path / "up.bin"
    up_sha = make_data_file(up, 5 * MB, seed=2222)

    async def go(relay):
        async with H3Client.connect(relay.host, relay.port, timeout=scaled(10)) as c:
            get = await c.request("GET", f"/bytes/{size}", store_body=False, hash_body=True,
                                  timeout=scaled(150))
            echo = await c.request("POST", "/echo", body=chunks_of_file(str(up)),
                                   store_body=False, hash_body=True, timeout=scaled(60))
            return get, echo

    with Relay(server, "--seed", 6, *LOSSY) as relay:
        get, echo = run(go(relay), scaled(220))
        relay.stop()
    desc = relay.describe()
    assert get.status == 200 and get.complete and not get.interim, (get, desc)
    assert get.body_len == size and get.sha256 == pattern_sha256(size), desc
    assert echo.status == 200 and echo.complete and not echo.interim, (echo, desc)
    assert echo.body_len == 5 * MB and echo.sha256 == up_sha, desc
    check_lossy_counters(relay)


# ---- corruption ---------------------------------------------------------------


def test_corruption_h3q_client(server):
    """Flipped bits fail QUIC's packet protection: those datagrams are
    dropped, the others carry the transfer to the end."""
    size = 3 * MB
    with Relay(server, "--seed", 7, "--corrupt", 5) as relay:
        res = run_client("--verify-bytes", "--no-body", "-n", "3", relay.url(f"/bytes/{size}"),
                         relay.url("/bytes/1000"), timeout=scaled(60))
        relay.stop()
    desc = res.describe() + relay.describe()
    assert res.returncode == 0, desc
    one_status_each(res.records, 6, desc)
    for rec in res.records:
        n = int(rec["url"].rsplit("/", 1)[1])
        assert rec["status"] == 200 and rec["sha256"] == pattern_sha256(n), desc
    assert relay.counters["up"]["corrupted"] > 0 and relay.counters["down"]["corrupted"] > 0
    server.assert_alive()


def test_corruption_aioquic(server):
    size = 1 * MB
    with Relay(server, "--seed", 8, "--corrupt", 5) as relay:
        r = run(_fetch_hashed(relay, f"/bytes/{size}"), scaled(60))
        relay.stop()
    assert r.status == 200 and r.sha256 == pattern_sha256(size), relay.describe()
    assert relay.counters["up"]["corrupted"] > 0, relay.describe()
    server.assert_alive()


async def _fetch_hashed(relay, path):
    async with H3Client.connect(relay.host, relay.port, timeout=scaled(10)) as c:
        return await c.request("GET", path, store_body=False, hash_body=True,
                               timeout=scaled(45))


# ---- PMTU blackhole -------------------------------------------------------------

BLACKHOLE = ("--mtu", 1300)  # below the server's 1350-byte packets


@pytest.fixture(scope="module")
def pmtud_server(module_servers):
    return module_servers.start("--pmtud", "on")


def test_pmtu_blackhole_h3q_client(pmtud_server):
    size = 2 * MB
    with Relay(pmtud_server, *BLACKHOLE) as relay:
        res = run_client("--verify-bytes", "--no-body", relay.url(f"/bytes/{size}"),
                         timeout=scaled(30))
        relay.stop()
    desc = res.describe() + relay.describe()
    assert res.returncode == 0, desc
    assert res.records[0]["sha256"] == pattern_sha256(size), desc
    # Path MTU discovery probed above the hole and stayed below it.
    assert relay.counters["down"]["too_big"] > 0, desc


def test_pmtu_blackhole_gtlsclient_and_aioquic(pmtud_server, tmp_path):
    size = 2 * MB
    with Relay(pmtud_server, *BLACKHOLE) as relay:
        rc, st, desc = gtlsclient(relay, [f"/bytes/{size}"], tmp_path / "dl", tmp_path / "log",
                                  timeout=30)
        r = run(_fetch_hashed(relay, f"/bytes/{size}"), scaled(60))
        relay.stop()
    desc += relay.describe()
    assert rc == 0 and st == {0: 200}, desc
    assert (tmp_path / "dl" / str(size)).read_bytes() == pattern_bytes(0, size), desc
    assert r.status == 200 and r.sha256 == pattern_sha256(size), desc


def test_pmtu_blackhole_needs_pmtud(servers):
    """The control: with path MTU discovery off, every full-size packet
    falls into the hole and the download cannot finish."""
    s = servers.start()  # path MTU discovery is off by default
    with Relay(s, *BLACKHOLE) as relay:
        res = run_client("--verify-bytes", "--no-body", "--timeout", "3",
                         relay.url(f"/bytes/{2 * MB}"), timeout=scaled(20))
        relay.stop()
    assert res.returncode != 0, res.describe() + relay.describe()
    assert relay.counters["down"]["too_big"] > 0
    s.assert_alive()


def test_relay_is_seeded(tmp_path):
    """Same seed, same decisions; another seed, others. A sink that never
    answers keeps the random stream to one direction, so the counters
    depend on the seed alone."""
    import socket
    import time

    def counters_for(seed: int) -> dict:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as src:
            sink.bind(("127.0.0.1", 0))

            class Sink:
                host, port = "127.0.0.1", sink.getsockname()[1]

            with Relay(Sink, "--seed", seed, "--loss", 10, "--dup", 5, "--reorder", 20,
                       "--corrupt", 5, duration=30) as relay:
                for i in range(2000):
                    src.sendto(i.to_bytes(4, "big") * 50, ("127.0.0.1", relay.port))
                    if i % 100 == 99:
                        time.sleep(0.01)  # stay far below any socket buffer
                time.sleep(0.2)  # the reorder hold (5 ms) has passed
                return relay.stop()["up"]

    a, b, c = counters_for(42), counters_for(42), counters_for(43)
    assert a["received"] == 2000 and a == b, (a, b)
    assert a != c, (a, c)
    assert 150 < a["lost"] < 250 and a["forwarded"] == 2000 - a["lost"] + a["duplicated"], a


def test_relay_help_and_bad_flags():
    import subprocess

    from relay import RELAY_BIN

    out = subprocess.run([str(RELAY_BIN), "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for flag in ("--loss", "--dup", "--reorder", "--delay", "--jitter", "--corrupt", "--rate",
                 "--mtu", "--rebind-after-bytes", "--seed", "--duration"):
        assert flag in out.stdout
    bad = subprocess.run([str(RELAY_BIN), "--server", "127.0.0.1:1", "--loss", "150"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "'150'" in bad.stderr
    missing = subprocess.run([str(RELAY_BIN)], capture_output=True, text=True, timeout=10)
    assert missing.returncode == 2 and "--server" in missing.stderr

