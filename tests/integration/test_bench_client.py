"""h3q-bench, the load generator bench/ uses: request counts and merged
results with several threads (--threads). No timing is asserted: only
counts, bytes and the shape of the report."""

from __future__ import annotations

import pytest

from harness import BENCH_BIN, free_udp_port, run_client, scaled

SIZE = 1000


def bench(*args: str, timeout: float = 60.0):
    res = run_client(*args, exe=BENCH_BIN, timeout=scaled(timeout))
    assert len(res.records) == 1, f"expected one JSON result\n{res.describe()}"
    return res, res.records[0]


def check_latency_shape(out: dict) -> None:
    lat = out["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"], out
    assert lat["mean"] <= lat["max"], out


@pytest.mark.timeout(scaled(120))
def test_threads_complete_exact_request_count(server):
    n = 600
    res, out = bench(server.url(f"/bytes/{SIZE}"), "-c", "4", "-s", "8", "-n", str(n),
                     "--threads", "2", "--timeout", str(int(scaled(60))))
    assert res.returncode == 0, res.describe()
    assert out["threads"] == 2 and out["connections"] == 4 and out["streams"] == 8, out
    assert out["requests"] == n and out["ok"] == n and out["failed"] == 0, out
    assert out["body_bytes"] == n * SIZE, out
    check_latency_shape(out)
    server.assert_alive()


@pytest.mark.timeout(scaled(120))
def test_threads_bounded_duration_run(server):
    res, out = bench(server.url(f"/bytes/{SIZE}"), "-c", "3", "-s", "4", "-D", "1",
                     "-t", "3", "--timeout", str(int(scaled(60))))
    assert res.returncode == 0, res.describe()
    assert out["threads"] == 3, out
    assert out["ok"] > 0 and out["failed"] == 0 and out["requests"] == out["ok"], out
    assert out["body_bytes"] == out["ok"] * SIZE, out
    check_latency_shape(out)
    server.assert_alive()


@pytest.mark.timeout(scaled(60))
def test_threads_capped_by_connections(server):
    res, out = bench(server.url(f"/bytes/{SIZE}"), "-c", "2", "-s", "2", "-n", "40",
                     "--threads", "8")
    assert res.returncode == 0, res.describe()
    assert out["threads"] == 2 and out["ok"] == 40, out


@pytest.mark.timeout(scaled(60))
def test_threads_unanswered_requests_fail():
    # Nothing listens: every worker waits for its handshakes until the
    # deadline, which stops all of them; the unfinished -n requests fail.
    port = free_udp_port()
    res, out = bench(f"https://127.0.0.1:{port}/x", "-c", "2", "-n", "50", "--threads", "2",
                     "--timeout", "2", timeout=30)
    assert res.returncode == 1, res.describe()
    assert out["ok"] == 0 and out["failed"] == 50, out
    assert "deadline" in res.stderr, res.describe()


@pytest.mark.timeout(scaled(120))
def test_open_loop_rate(server):
    # --rate paces request starts; -n bounds the run, so the count is exact.
    n = 200
    res, out = bench(server.url(f"/bytes/{SIZE}"), "-c", "2", "-s", "50", "-n", str(n),
                     "--rate", "2000", "-t", "2", "--timeout", str(int(scaled(60))))
    assert res.returncode == 0, res.describe()
    assert out["rate"] == 2000 and out["ok"] == n and out["failed"] == 0, out
    assert out["body_bytes"] == n * SIZE, out
    # 200 requests at 2000/s cannot all start before 0.1 s have passed.
    assert out["seconds"] >= 0.09, out
    check_latency_shape(out)
