"""The interop matrix runner (tests/interop/run.py, `make interop`): a
short subset of its cases with every client, and its judging on made-up
reports, so that a broken check cannot pass quietly.

handshake, transfer and http3 with each client are already covered by
test_quicgo.py, test_ngtcp2.py and the aioquic suites; here the cases whose
proof is in the clients' own reports: zerortt (client and server agree the
requests went in 0-RTT) and keyupdate (the new key phase both ways), plus
handshake as the baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness import BUILD_DIR, SOURCE_DIR, scaled

sys.path.insert(0, str(SOURCE_DIR / "tests" / "interop"))
import run as matrix  # noqa: E402  (tests/interop/run.py)

SMOKE_CASES = ["handshake", "zerortt", "keyupdate"]


def test_matrix_subset_passes(tmp_path):
    out = tmp_path / "interop"
    cmd = [sys.executable, str(SOURCE_DIR / "tests" / "interop" / "run.py"), "--build",
           str(BUILD_DIR), "--out", str(out), "--cases", ",".join(SMOKE_CASES)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(900),
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("run.py did not finish within 900 s", pytrace=False)
    how = f"cmd: {' '.join(cmd)}\nexit {p.returncode}\n{p.stdout[-6000:]}\n{p.stderr[-3000:]}"
    cells = json.loads((out / "matrix.json").read_text())["cells"]
    assert len(cells) == len(SMOKE_CASES) * len(matrix.CLIENTS), how
    for c in cells:
        assert c["result"] == "pass", f"{c['case']} / {c['client']}: {c['reason']}\n{how}"
    assert p.returncode == 0, how
    assert "zerortt" in (out / "matrix.txt").read_text()


class FakeEnv:
    hashes = {p: "ab" * 32 for files in matrix.FILES.values() for p, _ in files}


def report_for(case: str, conns: int = 1, **conn) -> dict:
    files = [{"path": p, "status": 200, "size": n, "sha256": "ab" * 32}
             for p, n in matrix.FILES[case]]
    c = {"version": "0x00000001", "alpn": "h3", "cipher": "TLS_AES_128_GCM_SHA256",
         "resumed": False, "used_0rtt": False, "files": files, "local_addrs": ["a"]}
    c.update(conn)
    return {"case": case, "conns": [dict(c) for _ in range(conns)]}


def judge(case, report, server_conns, extra=None):
    return matrix.judge_report(FakeEnv(), case, report, server_conns, extra or {})


def test_judge_passes_a_good_report():
    assert judge("transfer", report_for("transfer"),
                 [{"resumed": False, "early": False}]).result == "pass"


def test_judge_catches_bad_files_and_extra_connections():
    r = report_for("transfer")
    r["conns"][0]["files"][1]["sha256"] = "cd" * 32
    assert judge("transfer", r, [{"resumed": False, "early": False}]).result == "fail"
    r = report_for("transfer")
    r["conns"][0]["files"][2]["size"] -= 1
    assert judge("transfer", r, [{"resumed": False, "early": False}]).result == "fail"
    r = report_for("handshake")
    two = [{"resumed": False, "early": False}] * 2
    assert judge("handshake", r, two).result == "fail"


def test_judge_resumption_and_zerortt_need_the_servers_word():
    fresh, resumed = {"resumed": False, "early": False}, {"resumed": True, "early": False}
    r = report_for("resumption", 2, resumed=True)
    assert judge("resumption", r, [fresh, resumed]).result == "pass"
    assert judge("resumption", r, [fresh, fresh]).result == "fail"
    r = report_for("zerortt", 2, resumed=True, used_0rtt=True)
    assert judge("zerortt", r, [fresh, {"resumed": True, "early": True}]).result == "pass"
    assert judge("zerortt", r, [fresh, resumed]).result == "fail"


def test_judge_v2_and_migration():
    r = report_for("v2")
    assert judge("v2", r, [{"resumed": False, "early": False}]).result == "unsupported"
    r = report_for("v2", version=matrix.QUIC_V2)
    assert judge("v2", r, [{"resumed": False, "early": False}]).result == "pass"
    r = report_for("rebind-port", local_addrs=["a"])
    assert judge("rebind-port", r, [{"resumed": False, "early": False}]).result == "fail"
    r = report_for("rebind-port", local_addrs=["a", "b"])
    assert judge("rebind-port", r, [{"resumed": False, "early": False}]).result == "pass"


def test_judge_keyupdate_needs_evidence():
    r = report_for("keyupdate")
    one = [{"resumed": False, "early": False}]
    assert judge("keyupdate", r, one).result == "fail"
    assert judge("keyupdate", r, one, {"keyupdate": matrix.ok("seen")}).result == "pass"
