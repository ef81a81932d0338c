"""The QUIC Interop Runner's test cases against h3q-server, without Docker:
the clients available here (quic-go, ngtcp2's gtlsclient, aioquic) run
each case on loopback and every cell of the matrix is judged by the
property the case is about, never by an exit status alone:

  handshake      one connection (the server's log counts them), file intact
  transfer       3 files of 2, 3 and 5 MB on one connection, size + SHA-256
  multiplexing   300 small files on one connection (beyond the 100-stream limit)
  retry          the client saw a Retry packet (needs h3q-server --retry)
  resumption     a second connection resumed the TLS session, without 0-RTT
                 (client's view and the server's log)
  zerortt        a second connection sent its requests in 0-RTT and the
                 server accepted them (client's view and the server's log)
  http3          ALPN h3 and 3 files fetched concurrently
  chacha20       only TLS_CHACHA20_POLY1305_SHA256 offered and negotiated
  keyupdate      the client updated its 1-RTT keys mid-transfer and the
                 server answered with the new key phase
  ipv6           the server on ::1
  rebind-port    the client's port changes mid-transfer, as behind a NAT
                 (same connection IDs); the transfer completes on one
                 connection, in each of 3 runs (the outcome depends on timing)
  connectionmigration  the client migrates to a new port with a new
                 connection ID mid-transfer (RFC 9000 section 9)
  v2             QUIC v2 (RFC 9369) offered first and used

Each cell is pass, FAIL or unsupported (by the client or by the server),
with the reason. The matrix is printed and written to OUT/matrix.txt and
OUT/matrix.json (OUT defaults to BUILD/interop).

    .venv/bin/python tests/interop/run.py [--build build] [--cases a,b] [--clients x,y]

Exits 1 when any cell fails.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[1]

CASES = ["handshake", "transfer", "multiplexing", "retry", "resumption", "zerortt", "http3",
         "chacha20", "keyupdate", "ipv6", "rebind-port", "connectionmigration", "v2"]
CLIENTS = ["quic-go", "ngtcp2", "aioquic"]
QUIC_V2 = "0x6b3343cf"
CLIENT_TIMEOUT = 60.0
# Cases whose outcome depends on timing run this often; all must pass.
REPEAT = {"rebind-port": 3}

# Files each case fetches: (path, size). Content is pseudo-random.
FILES: dict[str, list[tuple[str, int]]] = {
    "handshake": [("/hs/1k", 1024)],
    "transfer": [("/tr/2m", 2 << 20), ("/tr/3m", 3 << 20), ("/tr/5m", 5 << 20)],
    "multiplexing": [(f"/mx/{i}", 32) for i in range(300)],
    "retry": [("/rt/1k", 1024)],
    "resumption": [("/rs/4k", 4096), ("/rs/100k", 100_000)],
    "zerortt": [(f"/zr/{i}", 4096) for i in range(4)],
    "http3": [("/h3/5k", 5000), ("/h3/10k", 10_000), ("/h3/500k", 500_000)],
    "chacha20": [("/cc/1m", 1 << 20)],
    "keyupdate": [("/ku/10m", 10 << 20)],
    "ipv6": [("/v6/1m", 1 << 20)],
    "rebind-port": [("/rb/10m", 10 << 20)],
    "connectionmigration": [("/cm/10m", 10 << 20)],
    "v2": [("/v2/1k", 1024)],
}


@dataclass
class Cell:
    result: str  # "pass", "fail", "unsupported"
    reason: str

    @property
    def mark(self) -> str:
        return {"pass": "pass", "fail": "FAIL", "unsupported": "unsup"}[self.result]


def ok(reason: str) -> Cell:
    return Cell("pass", reason)


def fail(reason: str) -> Cell:
    return Cell("fail", reason)


def unsupported(reason: str) -> Cell:
    return Cell("unsupported", reason)


# --------------------------------------------------------------------------
# the server and its files


class Env:
    """Certificates, the served files with their hashes, the build."""

    def __init__(self, build: Path, out: Path) -> None:
        self.build, self.out = build, out
        self.www = out / "www"
        self.logs = out / "logs"
        self.hashes: dict[str, str] = {}
        self.help = subprocess.run([str(build / "h3q-server"), "--help"], capture_output=True,
                                   text=True, timeout=10).stdout
        self._files()
        certs = out / "certs"
        subprocess.run(["bash", str(SOURCE / "scripts" / "gen-cert.sh"), str(certs)],
                       check=True, capture_output=True, timeout=60)
        self.certs = harness.Certs(certs, certs / "cert.pem", certs / "key.pem")
        self.quicgo_error = self._build_quicgo()

    def _build_quicgo(self) -> str | None:
        """Builds the quic-go peer (only when its sources changed)."""
        try:
            r = subprocess.run(["bash", str(SOURCE / "scripts" / "build-go-peer.sh"),
                                str(self.build), "quicgocases"], capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=600)
        except subprocess.TimeoutExpired:
            return "building it took over 600 s"
        return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["?"])[-1]

    def _files(self) -> None:
        seed = 1
        for files in FILES.values():
            for path, size in files:
                f = self.www / path.lstrip("/")
                f.parent.mkdir(parents=True, exist_ok=True)
                self.hashes[path] = harness.make_data_file(f, size, seed)
                seed += 1

    def has_flag(self, flag: str) -> bool:
        return re.search(rf"^\s*{re.escape(flag)}\b", self.help, re.M) is not None

    def start(self, case: str, host: str = "127.0.0.1"):
        self.logs.mkdir(parents=True, exist_ok=True)
        args = ["--root", str(self.www), "--early-data", "--log-level", "info"]
        if self.has_flag("--active-migration"):
            args.append("--active-migration")
        if case == "retry":
            args.append("--retry")
        return harness.start_server(*args, host=host, certs=self.certs, log_dir=self.logs)


def server_conns(server) -> list[dict]:
    """The connections the server started, from its log."""
    out = []
    for m in re.finditer(r"conn (\d+): started \(resumed (yes|no), early data accepted (yes|no)\)",
                         server.stderr_text()):
        out.append({"resumed": m.group(2) == "yes", "early": m.group(3) == "yes"})
    return out


# --------------------------------------------------------------------------
# judging the clients' reports (quic-go and aioquic print the same JSON)


def check_files(env: Env, files: list[dict], case: str) -> str | None:
    """None when every expected file arrived intact, else what is wrong."""
    got = {f["path"]: f for f in files}
    for path, size in FILES[case]:
        f = got.get(path)
        if f is None:
            return f"{path}: not fetched"
        if f.get("error"):
            return f"{path}: {f['error'][:160]}"
        if f["status"] != 200:
            return f"{path}: status {f['status']}"
        if f["size"] != size:
            return f"{path}: {f['size']} bytes of {size}"
        if f["sha256"] != env.hashes[path]:
            return f"{path}: SHA-256 differs"
    return None


def judge_report(env: Env, case: str, report: dict, conns: list[dict], extra: dict) -> Cell:
    """A quic-go or aioquic report against the case's property."""
    if report.get("error") and not report.get("conns"):
        return fail(report["error"])
    cs = report.get("conns") or [{}]
    last = cs[-1]
    if case == "v2" and last.get("version") != QUIC_V2 and "0x00000001" == last.get("version"):
        vn = extra.get("vn", "the server's Version Negotiation")
        return unsupported(f"server: offered v2 first, {vn} listed only v1, so the connection "
                           "used v1 (quiche 0.30 implements QUIC v1 only)")
    for i, c in enumerate(cs):
        if c.get("error"):
            return fail(f"connection {i + 1}: {c['error'][:200]}")
        bad = check_files(env, c.get("files", []), case)
        if bad:
            return fail(f"connection {i + 1}: {bad}")
    return judge_property(case, cs, conns, extra)


def judge_property(case: str, cs: list[dict], conns: list[dict], extra: dict) -> Cell:
    want_conns = 2 if case in ("resumption", "zerortt") else 1
    if len(conns) != want_conns:
        return fail(f"the server saw {len(conns)} connections, expected {want_conns}")
    last = cs[-1]
    if case == "resumption":
        # gtlsclient does not tell; the server's log always does.
        if not conns[1]["resumed"] or last.get("resumed") is False:
            return fail("the second connection was not resumed "
                        f"(server: {conns[1]['resumed']}, client: {last.get('resumed')})")
        if last.get("used_0rtt"):
            return fail("0-RTT was used, resumption alone was asked")
        return ok("second connection resumed (server's log"
                  + (" and the client" if "resumed" in last else "") + "), no 0-RTT sent")
    if case == "zerortt":
        if not (last.get("used_0rtt") and conns[1]["early"]):
            return fail("0-RTT was not accepted on the second connection "
                        f"(client: {last.get('used_0rtt')}, server: {conns[1]['early']})")
        return ok("second connection's requests went in 0-RTT, accepted by the server")
    if case == "chacha20":
        if "CHACHA20" not in last.get("cipher", ""):
            return fail(f"negotiated {last.get('cipher')}")
        return ok(f"negotiated {last['cipher']}")
    if case == "http3" and last.get("alpn") != "h3":
        return fail(f"ALPN {last.get('alpn')!r}")
    if case == "keyupdate":
        return extra.get("keyupdate") or fail("no evidence of a key update")
    if case in ("rebind-port", "connectionmigration"):
        addrs = last.get("local_addrs", [])
        if case == "connectionmigration" and extra.get("no_spare_cid"):
            return unsupported(NO_SPARE_CID + f" ({addrs[-1]})")
        if len(addrs) < 2 or addrs[-1].startswith("error"):
            return fail(addrs[-1] if len(addrs) > 1 else "the client did not move")
        return ok(f"moved {addrs[0]} -> {addrs[-1]} mid-transfer, files intact, one connection")
    if case == "retry":
        return extra.get("retry") or fail("no evidence of a Retry")
    if case == "v2":
        return ok(f"version {last.get('version')}")
    return ok("files intact (size + SHA-256), one connection")


# --------------------------------------------------------------------------
# the clients


def run_json(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    with open(log, "w") as errf:
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=errf, text=True,
                               stdin=subprocess.DEVNULL, timeout=CLIENT_TIMEOUT + 30, env=env)
        except subprocess.TimeoutExpired:
            return {"error": f"client did not exit within {CLIENT_TIMEOUT + 30:.0f}s"}
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"error": f"client exit {p.returncode}, no report (see {log})"}


def addr_of(server) -> str:
    return f"[{server.host}]:{server.port}" if ":" in server.host else f"{server.host}:{server.port}"


def quicgo_cell(env: Env, case: str, server, workdir: Path) -> Cell:
    if case == "chacha20":
        return unsupported("client: quic-go's API cannot restrict TLS 1.3 cipher suites "
                           "(its own interop client uses an internal package)")
    if env.quicgo_error:
        return unsupported(f"client: the quic-go peer could not be built: {env.quicgo_error}")
    exe = env.build / "quicgocasesclient"
    qlog = workdir / "qlog"
    cmd = [str(exe), "-addr", addr_of(server), "-case", case, "-qlog-dir", str(qlog),
           "-timeout", f"{CLIENT_TIMEOUT:.0f}s", *[p for p, _ in FILES[case]]]
    e = dict(os.environ, QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING="1")
    report = run_json(cmd, workdir / "client.log", e)
    text = "".join(f.read_text(errors="replace") for f in sorted(qlog.glob("*.sqlog"))) \
        if qlog.is_dir() else ""
    extra = {}
    m = re.search(r'"server_versions":\[([^\]]*)\]', text)
    if m:
        extra["vn"] = f"the server's Version Negotiation ({m.group(1)})"
    if case == "keyupdate":
        local = '"trigger":"local_update"' in text
        new_phase = '"key_phase_bit":true' in text
        if local and new_phase:
            extra["keyupdate"] = ok("quic-go updated its keys (qlog key_updated, local_update) "
                                    "and received packets in the new key phase")
        else:
            extra["keyupdate"] = fail(f"qlog: local key update {local}, new-phase packets "
                                      f"received {new_phase}")
    if case == "connectionmigration":
        extra["no_spare_cid"] = not any("packet_received" in line and "new_connection_id" in line
                                        for line in text.splitlines())
    if case == "retry":
        got = '"packet_type":"retry"' in text
        extra["retry"] = ok("quic-go received a Retry") if got else fail("no Retry in the qlog")
    return judge_report(env, case, report, server_conns(server), extra)


def aioquic_cell(env: Env, case: str, server, workdir: Path) -> Cell:
    cmd = [sys.executable, str(HERE / "aioquic_cases.py"), "--addr", addr_of(server),
           "--case", case, "--timeout", str(CLIENT_TIMEOUT), *[p for p, _ in FILES[case]]]
    report = run_json(cmd, workdir / "client.log")
    extra = {}
    last = (report.get("conns") or [{}])[-1]
    if case == "keyupdate":
        s, r = last.get("key_phase_send"), last.get("key_phase_recv")
        extra["keyupdate"] = ok("aioquic updated its keys; the server answered in the new "
                                "key phase") if s == 1 and r == 1 else \
            fail(f"key phase sent {s}, received {r}")
    if case == "connectionmigration":
        extra["no_spare_cid"] = any("no spare connection ID" in a
                                    for a in last.get("local_addrs", []))
    if case == "retry":
        n = last.get("retries", 0)
        extra["retry"] = ok(f"aioquic handled {n} Retry") if n else fail("no Retry seen")
    return judge_report(env, case, report, server_conns(server), extra)


NO_SPARE_CID = ("server: h3q issues no spare connection IDs (no NEW_CONNECTION_ID "
                "frames), so a client has no ID to migrate with")
NGTCP2_CHACHA = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305"


def ngtcp2_args(case: str, workdir: Path) -> list[str]:
    return {
        "resumption": ["--session-file", str(workdir / "session"), "--disable-early-data"],
        "zerortt": ["--session-file", str(workdir / "session"), "--tp-file", str(workdir / "tp")],
        "chacha20": ["--ciphers", NGTCP2_CHACHA],
        "keyupdate": ["--key-update=5ms"],
        "rebind-port": ["--change-local-addr=30ms", "--nat-rebinding"],
        "connectionmigration": ["--change-local-addr=30ms"],
        "v2": ["-v", "v2draft"],
    }.get(case, [])


def gtlsclient(server, paths: list[str], dl: Path, log: Path, extra: list[str]) -> tuple[int, str]:
    exe = shutil.which("gtlsclient")
    host = server.host
    urls = [f"https://{addr_of(server)}{p}" for p in paths]
    cmd = [exe, "--no-quic-dump", "--no-http-dump", "--exit-on-all-streams-close",
           "--timeout=15s", "--handshake-timeout=10s", "--download", str(dl), *extra,
           host, str(server.port), *urls]
    dl.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as f:
        try:
            p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               timeout=CLIENT_TIMEOUT)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = -1
    return rc, log.read_text(errors="replace")


def ngtcp2_files(env: Env, case: str, dl: Path, text: str, upload: Path | None) -> str | None:
    """None when the downloaded files (or the echoed upload) are intact."""
    if upload is not None:
        got = dl / "echo"
        size = got.stat().st_size if got.exists() else 0
        if size != upload.stat().st_size:
            return f"/echo returned {size} of {upload.stat().st_size} bytes"
        if harness.file_sha256(got) != harness.file_sha256(upload):
            return "/echo: SHA-256 differs"
        return None
    statuses = re.findall(r"\[:status: (\d{3})\]", text)
    if len(statuses) != len(FILES[case]) or set(statuses) != {"200"}:
        return f"statuses {sorted(set(statuses))} for {len(statuses)} of {len(FILES[case])} requests"
    files = [{"path": p, "status": 200, "size": (dl / p.rsplit("/", 1)[1]).stat().st_size
              if (dl / p.rsplit("/", 1)[1]).exists() else 0,
              "sha256": harness.file_sha256(dl / p.rsplit("/", 1)[1])
              if (dl / p.rsplit("/", 1)[1]).exists() else ""} for p, _ in FILES[case]]
    return check_files(env, files, case)


def ngtcp2_cell(env: Env, case: str, server, workdir: Path) -> Cell:
    if shutil.which("gtlsclient") is None:
        return unsupported("client: gtlsclient not installed (Debian ngtcp2-client)")
    paths = [p for p, _ in FILES[case]]
    extra = ngtcp2_args(case, workdir)
    upload = None
    if case == "rebind-port":
        # gtlsclient's --nat-rebinding leaves its old socket open and drops
        # what arrives there, and a downloading client sends too little to
        # move the server: it uploads instead, and the server echoes.
        upload = workdir / "upload"
        harness.make_data_file(upload, 10 << 20, 99)
        paths, extra = ["/echo"], extra + ["-m", "POST", "-d", str(upload)]
    rounds = 2 if case in ("resumption", "zerortt") else 1
    for r in range(rounds):
        rc, text = gtlsclient(server, paths, workdir / f"dl{r}", workdir / f"client{r}.log", extra)
        if case == "v2" and "VN v=0x00000001" in text:
            return unsupported("client and server: ngtcp2 0.12 offers only the v2 draft "
                               "(0x709a50c4); the server's Version Negotiation lists v1 only "
                               "(quiche 0.30 implements QUIC v1 only)")
        bad = ngtcp2_files(env, case, workdir / f"dl{r}", text, upload)
        if bad:
            return fail(f"{bad} (exit {rc}; log {workdir / f'client{r}.log'})")
    return ngtcp2_property(case, text, server_conns(server), workdir)


def ngtcp2_property(case: str, text: str, conns: list[dict], workdir: Path) -> Cell:
    if case == "chacha20":
        m = re.search(r"Negotiated cipher suite is (\S+)", text)
        cipher = m.group(1) if m else "nothing"
        return ok(f"negotiated {cipher}") if cipher == "CHACHA20-POLY1305" else \
            fail(f"negotiated {cipher}")
    if case == "keyupdate":
        tx = len(re.findall(r"pkt tx .*type=1RTT k=1", text))
        rx = len(re.findall(r"pkt rx .*type=1RTT k=1", text))
        return ok(f"{tx} packets sent and {rx} received in the new key phase") \
            if tx and rx else fail(f"key phase 1: {tx} packets sent, {rx} received")
    if case == "connectionmigration":
        m = re.search(r"ngtcp2_conn_initiate_\w*migration: (\w+)", text)
        if m and m.group(1) == "ERR_CONN_ID_BLOCKED":
            return unsupported(NO_SPARE_CID)
        if m:
            return fail(f"gtlsclient could not migrate: {m.group(1)}")
    addrs = re.findall(r"Sent packet: local=(\S+)", text)[:1] + \
        re.findall(r"Local address is now (\S+)", text)
    if case in ("rebind-port", "connectionmigration"):
        if len(addrs) < 2:
            return fail("gtlsclient did not change its address")
        if "PATH_CHALLENGE" not in text:
            return fail("the server never validated the new path")
    sent_0rtt = len(re.findall(r"frm tx \d+ 0RTT STREAM", text))
    cell = judge_property(case, [{"used_0rtt": sent_0rtt > 0 and bool(conns) and conns[-1]["early"],
                                  "alpn": "h3" if "Negotiated ALPN is h3" in text else "",
                                  "local_addrs": addrs}],
                          conns, {"retry": ok("gtlsclient received a Retry")
                                  if "type=Retry" in text else fail("no Retry in the log")})
    if case == "zerortt" and cell.result == "pass" and "Early data was rejected" in text:
        return fail("gtlsclient says early data was rejected")
    return cell


# --------------------------------------------------------------------------
# the matrix


def run_cell(env: Env, client: str, case: str) -> Cell:
    """A cell; timing-dependent cases run REPEAT times and pass only if
    every run passes."""
    if case == "retry" and not env.has_flag("--retry"):
        return unsupported("server: not built yet (h3q-server --help lists no --retry)")
    runs = REPEAT.get(case, 1)
    cells = []
    for i in range(runs):
        cells.append(run_once(env, client, case, f"{client}-{case}" + (f"-{i + 1}" if runs > 1 else "")))
        if cells[-1].result == "unsupported":
            return cells[-1]
    if runs == 1:
        return cells[0]
    passed = sum(c.result == "pass" for c in cells)
    if passed == runs:
        return ok(f"{runs}/{runs} runs: {cells[0].reason}")
    first = next(c for c in cells if c.result != "pass")
    return fail(f"{passed}/{runs} runs passed; a failure: {first.reason}")


def run_once(env: Env, client: str, case: str, name: str) -> Cell:
    workdir = env.out / "cells" / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    server = env.start(case, host="::1" if case == "ipv6" else "127.0.0.1")
    try:
        fn = {"quic-go": quicgo_cell, "ngtcp2": ngtcp2_cell, "aioquic": aioquic_cell}[client]
        cell = fn(env, case, server, workdir)
    finally:
        problems = server.stop()
    if problems and cell.result != "fail":
        cell = fail("server: " + problems[0][:300])
    return cell


def render(cells: dict, cases: list[str], clients: list[str], when: str) -> str:
    w = max(len(c) for c in cases) + 2
    lines = [f"h3q interop matrix ({when}; server h3q-server, clients on loopback)", "",
             "case".ljust(w) + "".join(c.ljust(10) for c in clients)]
    lines.append("-" * len(lines[-1]))
    for case in cases:
        lines.append(case.ljust(w) + "".join(cells[(c, case)].mark.ljust(10) for c in clients))
    lines += ["", "Why (every cell):"]
    for case in cases:
        for c in clients:
            cell = cells[(c, case)]
            lines.append(f"  {case} / {c}: {cell.mark}: {cell.reason}")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description="QUIC Interop Runner cases against h3q-server")
    ap.add_argument("--build", default=str(SOURCE / "build"))
    ap.add_argument("--out", default=None, help="default BUILD/interop")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--clients", default=",".join(CLIENTS))
    args = ap.parse_args()
    build = Path(args.build).resolve()
    out = Path(args.out).resolve() if args.out else build / "interop"
    cases = [c for c in args.cases.split(",") if c]
    clients = [c for c in args.clients.split(",") if c]
    for name, known in (("case", CASES), ("client", CLIENTS)):
        for x in cases if name == "case" else clients:
            if x not in known:
                ap.error(f"unknown {name} {x!r} (known: {', '.join(known)})")
    shutil.rmtree(out / "cells", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    env = Env(build, out)
    cells = {}
    for case in cases:
        for client in clients:
            t0 = time.monotonic()
            cells[(client, case)] = run_cell(env, client, case)
            print(f"  {case:<20} {client:<8} {cells[(client, case)].mark:<6} "
                  f"({time.monotonic() - t0:.1f}s)", flush=True)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = render(cells, cases, clients, when)
    (out / "matrix.txt").write_text(text)
    (out / "matrix.json").write_text(json.dumps(
        {"date": when, "cells": [{"case": k[1], "client": k[0], "result": v.result,
                                  "reason": v.reason} for k, v in cells.items()]}, indent=1))
    print()
    print(text, end="")
    print(f"written to {out / 'matrix.txt'} and matrix.json")
    return 1 if any(c.result == "fail" for c in cells.values()) else 0


def _import_harness(build: Path):
    os.environ.setdefault("H3Q_BUILD_DIR", str(build))
    os.environ.setdefault("H3Q_SOURCE_DIR", str(SOURCE))
    sys.path.insert(0, str(SOURCE / "tests" / "integration"))
    import harness as h  # noqa: E402  (needs H3Q_BUILD_DIR first)
    return h


if __name__ == "__main__":
    _build = Path(next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--build=")),
                       sys.argv[sys.argv.index("--build") + 1] if "--build" in sys.argv
                       else SOURCE / "build")).resolve()
    harness = _import_harness(_build)
    sys.exit(main())
else:
    harness = _import_harness(Path(os.environ.get("H3Q_BUILD_DIR", SOURCE / "build")).resolve())
