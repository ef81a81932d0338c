"""A fleet of two h3q-servers behind a QUIC-LB load balancer
(draft-ietf-quic-load-balancers, plaintext algorithm).

Each server has its own --quic-lb-server-id and all share one
--secret-file. build/h3q-quic-lb (tests/tools/quic_lb.c) stands in for the
load balancer: it routes a datagram by the server id in its DCID, and the
rest (a client's first Initial) by a hash of the client's address among the
servers that are up. "down I" on its stdin takes server I out of the pool,
as when a server leaves: clients of that server are then moved to the other
one, which is where the shared secret matters.

The servers run in two network namespaces on a bridge (10.x addresses,
the same port, like two machines) when the machine allows it (root,
`ip netns`); the same tests always run with both servers on loopback
ports too. The namespace variant is skipped, with the reason, where
namespaces cannot be created.

Checked:
  - every CID a server issues (the first and the spares) carries its
    server id and config rotation;
  - many connections (aioquic, which also moves to spare CIDs, and
    h3q-client) are each served by exactly one server, per the access logs,
    and both servers get connections; no short-header packet was
    unroutable;
  - a download survives NAT rebindings (new client ports: the address hash
    would move it), since packets are routed by CID;
  - a session resumed (with 0-RTT) on the other server works;
  - a Retry token issued by one server is accepted by the other;
  - the other server answers a moved connection with a stateless reset
    carrying the token the first server announced;
  - the last three fail when the servers have different secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import HandshakeCompleted

from aioquic_client import H3Client, run
from harness import BUILD_DIR, require_exe, run_client, scaled
from relay import Relay
from test_config import assert_config_error

LB_BIN = BUILD_DIR / "h3q-quic-lb"
CONFIG_ID = 2
SERVER_IDS = ("a1b2", "c3d4")
NONCE_LEN = 9
CID_LEN = 1 + 2 + NONCE_LEN
LONG_TYPE_RETRY = 0x30
ACCESS_RE = re.compile(r"^\S+ (\S+) (\S+) (\d+) \d+ \S+ conn=(\d+) stream=\d+")


# --------------------------------------------------------------------------
# the load balancer


class QuicLb:
    """build/h3q-quic-lb in front of backends [(server id hex, host, port)]."""

    def __init__(self, backends, config_id: int = CONFIG_ID) -> None:
        exe = require_exe(LB_BIN, "h3q-quic-lb")
        self.cmd = [exe, "--config-id", str(config_id), "--listen", "127.0.0.1:0",
                    "--duration", str(int(scaled(600)))]
        for sid, host, port in backends:
            self.cmd += ["--backend", f"{sid}={host}:{port}"]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self._line(scaled(10))
        m = re.match(r"^h3q-quic-lb listening on (.+):(\d+)$", line or "")
        if not m:
            self.proc.kill()
            pytest.fail(f"h3q-quic-lb did not start: {line!r}\ncmd: {' '.join(self.cmd)}",
                        pytrace=False)
        self.host, self.port = "127.0.0.1", int(m.group(2))

    def _line(self, timeout: float) -> str | None:
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().strip() if r else None  # type: ignore[union-attr]

    def command(self, text: str) -> str:
        self.proc.stdin.write(text + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        line = self._line(scaled(5))
        assert line is not None, f"h3q-quic-lb did not answer {text!r}"
        return line

    def down(self, i: int) -> None:
        assert self.command(f"down {i}") == f"ok down {i}"

    def up(self, i: int) -> None:
        assert self.command(f"up {i}") == f"ok up {i}"

    def stats(self) -> dict[str, int]:
        line = self.command("stats")
        assert line.startswith("stats "), line
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}

    def url(self, path: str) -> str:
        return f"https://{self.host}:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        assert self.proc.returncode == 0, f"h3q-quic-lb exited {self.proc.returncode}: {err}"
        assert "final " in out, out


# --------------------------------------------------------------------------
# where the servers live: two network namespaces, or loopback ports


class Netns:
    """Two namespaces on a bridge: the load balancer (root namespace)
    reaches server i at 10.N.0.(2+i):4433; nothing is routed elsewhere."""

    def __init__(self) -> None:
        tag = os.getpid() % 100000
        self.bridge = f"h3qlb{tag}"
        self.names = [f"h3qlb{tag}-{i}" for i in range(2)]
        net = self._free_net()
        self.hosts = [f"10.{net}.0.{2 + i}" for i in range(2)]
        self.bridge_ip = f"10.{net}.0.1/24"
        self.created: list[list[str]] = []

    @staticmethod
    def _free_net() -> int:
        """A 10.N.0.0/24 no route uses yet (another run's bridge, the host's
        networks), starting from one that depends on the pid."""
        p = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, timeout=20)
        for k in range(50):
            net = 200 + (os.getpid() + k) % 50
            if f"10.{net}." not in p.stdout:
                return net
        raise OSError("no free 10.200-249.0.0/24 network for the namespaces")

    def _ip(self, *args: str) -> None:
        p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
        if p.returncode != 0:
            raise OSError(f"ip {' '.join(args)}: {p.stderr.strip()}")

    def create(self) -> None:
        self._ip("link", "add", self.bridge, "type", "bridge")
        self.created.append(["link", "del", self.bridge])
        self._ip("addr", "add", self.bridge_ip, "dev", self.bridge)
        self._ip("link", "set", self.bridge, "up")
        for i, ns in enumerate(self.names):
            self._ip("netns", "add", ns)
            self.created.append(["netns", "del", ns])
            veth = f"{self.bridge}v{i}"
            self._ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._ip("link", "set", veth, "master", self.bridge, "up")
            self._ip("-n", ns, "addr", "add", f"{self.hosts[i]}/24", "dev", "eth0")
            self._ip("-n", ns, "link", "set", "eth0", "up")
            self._ip("-n", ns, "link", "set", "lo", "up")

    def destroy(self) -> None:
        for args in reversed(self.created):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self._ip(*args)
        self.created.clear()

    def place(self, i: int) -> dict:
        return {"host": self.hosts[i], "port": 4433,
                "prefix": ["ip", "netns", "exec", self.names[i]]}


class Loopback:
    def place(self, i: int) -> dict:
        return {"host": "127.0.0.1"}


@pytest.fixture(scope="module", params=["netns", "loopback"])
def placement(request):
    if request.param == "loopback":
        yield Loopback()
        return
    n = None
    try:
        n = Netns()
        n.create()
    except (OSError, subprocess.TimeoutExpired) as e:
        if n is not None:
            n.destroy()
        pytest.skip(f"network namespaces are not available here ({e}); "
                    "the loopback variant covers the same tests")
    try:
        yield n
    finally:
        n.destroy()


# --------------------------------------------------------------------------
# a fleet: two servers and the load balancer


@dataclass
class Fleet:
    servers: list
    logs: list[Path]
    secrets: list[bytes]
    lb: QuicLb

    def served(self) -> dict[str, tuple[int, int]]:
        """Access-log path -> (server index, that server's conn number)."""
        out: dict[str, tuple[int, int]] = {}
        for i, log in enumerate(self.logs):
            text = log.read_text() if log.exists() else ""
            for line in text.splitlines():
                m = ACCESS_RE.match(line)
                if m:
                    out[m.group(2)] = (i, int(m.group(4)))
        return out

    def wait_served(self, paths, timeout: float) -> dict[str, tuple[int, int]]:
        """The access-log entries of paths, once all are there (the log is
        flushed every 250 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.served()
            if all(p in got for p in paths) or time.monotonic() > deadline:
                return got
            time.sleep(0.1)


@contextlib.contextmanager
def fleet(servers, placement, tmp_path, *args: str, shared_secret: bool = True):
    secrets = [os.urandom(32)] * 2 if shared_secret else [os.urandom(32), os.urandom(32)]
    started, logs = [], []
    for i, sid in enumerate(SERVER_IDS):
        sf = tmp_path / f"secret{i}"
        sf.write_bytes(secrets[i])
        logs.append(tmp_path / f"access{i}.log")
        started.append(servers.start(
            "--secret-file", str(sf), "--quic-lb-config-id", str(CONFIG_ID),
            "--quic-lb-server-id", sid, "--quic-lb-nonce-len", str(NONCE_LEN),
            "--access-log", str(logs[i]), *args, **placement.place(i)))
    lb = QuicLb([(sid, s.host, s.port) for sid, s in zip(SERVER_IDS, started)])
    try:
        yield Fleet(started, logs, secrets, lb)
    finally:
        lb.stop()


def backend_of_cid(cid: bytes) -> int | None:
    """Which server issued cid, decoded as the load balancer does."""
    if len(cid) < 3 or cid[0] >> 5 != CONFIG_ID:
        return None
    sid = cid[1:3].hex()
    return SERVER_IDS.index(sid) if sid in SERVER_IDS else None


def expected_reset_token(secret: bytes, cid: bytes) -> bytes:
    """RFC 9000 §10.3 token as h3q derives it from the secret (see
    test_stateless_reset.py): crypto_kdf subkey 2, then HMAC-SHA256."""
    master = hashlib.blake2b(secret, digest_size=32).digest()
    key = hashlib.blake2b(b"", digest_size=32, key=master, salt=struct.pack("<Q", 2) + bytes(8),
                          person=b"h3qsecrt" + bytes(8)).digest()
    return hmac.new(key, cid, hashlib.sha256).digest()[:16]


# --------------------------------------------------------------------------
# connections stick to one server


async def _aioquic_conn(f: Fleet, i: int, requests: int) -> dict:
    """One connection: requests GETs, moving to a new (spare) CID before
    each after the first; returns the CIDs it saw and its paths."""
    paths = [f"/user/aq{i}x{j}" for j in range(requests)]
    async with H3Client.connect(f.lb.host, f.lb.port, timeout=scaled(10)) as c:
        seen = [c.quic._peer_cid.cid]
        for j, p in enumerate(paths):
            if j:
                for _ in range(int(scaled(40))):
                    if c.quic._peer_cid_available:
                        break
                    await asyncio.sleep(0.05)
                c.quic.change_connection_id()
                seen.append(c.quic._peer_cid.cid)
            r = await c.request("GET", p, timeout=scaled(10))
            assert r.status == 200, (p, r)
        seen += [x.cid for x in c.quic._peer_cid_available]
    return {"paths": paths, "cids": seen}


def _check_one_server_each(groups: dict[str, list[str]], served) -> set[int]:
    """Each group (one client connection) was served by one server
    connection; returns the servers that served any."""
    used = set()
    for name, paths in groups.items():
        missing = [p for p in paths if p not in served]
        assert not missing, f"{name}: not in any access log: {missing}"
        where = {served[p] for p in paths}
        assert len(where) == 1, f"{name}'s requests were split: {sorted(where)}"
        used |= {w[0] for w in where}
    return used


@pytest.mark.timeout(scaled(180))
def test_connections_stick_to_their_server(servers, placement, tmp_path):
    with fleet(servers, placement, tmp_path) as f:
        async def many():
            return await asyncio.gather(*(_aioquic_conn(f, i, 4) for i in range(12)))
        conns = run(many(), scaled(90))
        urls = [f.lb.url(f"/user/hq{k}") for k in range(36)]
        r = run_client("-c", "9", *urls, timeout=scaled(60))
        assert r.returncode == 0, r.describe()
        stats = f.lb.stats()

        groups = {f"aioquic#{i}": c["paths"] for i, c in enumerate(conns)}
        for rec in r.records:
            path = "/" + rec["url"].split("/", 3)[3]
            groups.setdefault(f"h3q-client#{rec['conn']}", []).append(path)
        assert len(groups) == 12 + 9, sorted(groups)
        served = f.wait_served([p for ps in groups.values() for p in ps], scaled(5))
        used = _check_one_server_each(groups, served)
        assert used == {0, 1}, f"only server(s) {used} got connections (LB stats {stats})"

        # Every CID the servers issued carries the server id of the server
        # that served the connection, in the configured layout.
        for i, c in enumerate(conns):
            where = served[c["paths"][0]][0]
            for cid in c["cids"]:
                assert len(cid) == CID_LEN and cid[0] == (CONFIG_ID << 5 | (CID_LEN - 1)), cid.hex()
                assert backend_of_cid(cid) == where, f"aioquic#{i}: CID {cid.hex()} is not server {where}'s"
        assert stats["unroutable_short"] == 0, f"short headers without a known server id: {stats}"
        assert stats["b0_cid"] > 0 and stats["b1_cid"] > 0, stats


@pytest.mark.timeout(scaled(180))
def test_download_survives_rebinding_behind_the_lb(servers, placement, tmp_path):
    """Four NAT rebindings (new source ports toward the load balancer)
    during a download: the client-address hash would send some of them to
    the other server; routing by CID keeps them on this one."""
    with fleet(servers, placement, tmp_path) as f:
        n = 4_000_000
        front = types.SimpleNamespace(host=f.lb.host, port=f.lb.port)  # the relay's server
        with Relay(front, "--rebind-after-bytes", "400000", "--rebind-after-bytes", "1200000",
                   "--rebind-after-bytes", "2000000", "--rebind-after-bytes", "3000000") as relay:
            r = run_client("--verify-bytes", "--no-body", relay.url(f"/bytes/{n}"),
                           timeout=scaled(90))
            counters = relay.stop()
        assert r.returncode == 0, r.describe() + "\n" + relay.describe()
        assert r.records and r.records[0]["body_bytes"] == n, r.describe()
        assert counters["flows"]["rebinds"] == 4, relay.describe()
        stats = f.lb.stats()
        assert stats["flows"] >= 5, stats  # one per client port
        assert stats["unroutable_short"] == 0, stats
        served = f.wait_served([f"/bytes/{n}"], scaled(5))
        assert f"/bytes/{n}" in served


# --------------------------------------------------------------------------
# a client moved to the other server


def _served_by(f: Fleet, path: str) -> int:
    got = f.wait_served([path], scaled(5))
    assert path in got, f"{path} is in no access log"
    return got[path][0]


@contextlib.contextmanager
def _taken_out(f: Fleet, i: int):
    f.lb.down(i)
    try:
        yield
    finally:
        f.lb.up(i)


async def _ticket(f: Fleet):
    tickets = []
    async with H3Client.connect(f.lb.host, f.lb.port, timeout=scaled(10),
                                session_ticket_handler=tickets.append) as c:
        r = await c.request("GET", "/user/first", timeout=scaled(10))
        assert r.status == 200
        for _ in range(int(scaled(20))):
            if tickets:
                break
            await asyncio.sleep(0.1)
    assert tickets, "no session ticket"
    return tickets[-1]


async def _resume(f: Fleet, ticket):
    """Resumes with ticket and sends GET /user/early as 0-RTT data."""
    async with H3Client.connect(f.lb.host, f.lb.port, timeout=scaled(10), session_ticket=ticket,
                                wait_connected=False) as c:
        sid = c.new_stream()
        c.send_headers(sid, c.request_headers("GET", "/user/early"), end_stream=True)
        await c.wait_connected()
        r = await c.wait_response(sid, timeout=scaled(10))
        return {"resumed": c.session_resumed, "early": c.early_data_accepted, "status": r.status}


@pytest.mark.timeout(scaled(120))
@pytest.mark.parametrize("shared", [True, False], ids=["shared-secret", "own-secrets"])
def test_resumed_session_on_the_other_server(servers, placement, tmp_path, shared):
    with fleet(servers, placement, tmp_path, "--early-data", shared_secret=shared) as f:
        ticket = run(_ticket(f), scaled(30))
        first = _served_by(f, "/user/first")
        with _taken_out(f, first):
            res = run(_resume(f, ticket), scaled(30))
        assert res["status"] == 200, res
        assert _served_by(f, "/user/early") == 1 - first
        if shared:
            assert res["resumed"] and res["early"], f"the other server did not resume: {res}"
        else:
            assert not res["resumed"] and not res["early"], res


def _quic_client() -> QuicConnection:
    cfg = QuicConfiguration(is_client=True, alpn_protocols=["h3"])
    cfg.verify_mode = ssl.CERT_NONE
    return QuicConnection(configuration=cfg)


def _pump(quic: QuicConnection, sock: socket.socket, addr, until: float) -> bool:
    """Drives quic over sock until the handshake completes (True) or until."""
    while time.monotonic() < until:
        for data, _ in quic.datagrams_to_send(time.monotonic()):
            sock.sendto(data, addr)
        sock.settimeout(0.05)
        with contextlib.suppress(socket.timeout):
            quic.receive_datagram(sock.recv(65536), addr, now=time.monotonic())
        timer = quic.get_timer()
        if timer is not None and timer <= time.monotonic():
            quic.handle_timer(time.monotonic())
        while (ev := quic.next_event()) is not None:
            if isinstance(ev, HandshakeCompleted):
                return True
    return False


def _retry_scid(datagram: bytes) -> bytes:
    """The SCID of a v1 Retry packet: the CID the client uses next."""
    assert datagram[0] & 0xF0 == 0xC0 | LONG_TYPE_RETRY, f"not a Retry: {datagram[:1].hex()}"
    dcid_len = datagram[5]
    at = 6 + dcid_len
    return datagram[at + 1:at + 1 + datagram[at]]


@pytest.mark.timeout(scaled(120))
@pytest.mark.parametrize("shared", [True, False], ids=["shared-secret", "own-secrets"])
def test_retry_token_from_one_server_accepted_by_the_other(servers, placement, tmp_path,
                                                           shared):
    """The client's first Initial gets a Retry from server A (whose id the
    Retry's SCID carries). A then leaves the pool, so the Initial with A's
    token lands on B (A's server id is unroutable now)."""
    with fleet(servers, placement, tmp_path, "--retry", shared_secret=shared) as f:
        addr = (f.lb.host, f.lb.port)
        quic = _quic_client()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            quic.connect(addr, now=time.monotonic())
            for data, _ in quic.datagrams_to_send(time.monotonic()):
                sock.sendto(data, addr)
            sock.settimeout(scaled(5))
            retry = sock.recv(65536)
            issuer = backend_of_cid(_retry_scid(retry))
            assert issuer in (0, 1), f"Retry SCID {_retry_scid(retry).hex()} has no server id"
            before = f.lb.stats()
            with _taken_out(f, issuer):
                quic.receive_datagram(retry, addr, now=time.monotonic())
                assert quic._retry_count == 1 and quic._peer_token
                done = _pump(quic, sock, addr, time.monotonic() + scaled(4 if shared else 2))
                after = f.lb.stats()
        other = 1 - issuer
        # The token's Initial and everything after went to the other server.
        assert after[f"b{other}_fallback"] > before[f"b{other}_fallback"], (before, after)
        assert after[f"b{issuer}_cid"] == before[f"b{issuer}_cid"], (before, after)
        assert done == shared, (f"handshake {'did not complete' if shared else 'completed'} "
                                f"with server {other} after server {issuer}'s Retry")


@pytest.mark.timeout(scaled(120))
@pytest.mark.parametrize("shared", [True, False], ids=["shared-secret", "own-secrets"])
def test_other_server_resets_a_moved_connection(servers, placement, tmp_path, shared):
    """A connection's server leaves the pool; its next packet reaches the
    other server, which knows nothing of it and answers with a stateless
    reset carrying the token the first server announced for that CID."""
    with fleet(servers, placement, tmp_path, shared_secret=shared) as f:
        async def go():
            async with H3Client.connect(f.lb.host, f.lb.port, timeout=scaled(10)) as c:
                r = await c.request("GET", "/user/reset", timeout=scaled(10))
                assert r.status == 200
                cid = c.quic._peer_cid
                where = backend_of_cid(cid.cid)
                assert cid.stateless_reset_token == expected_reset_token(f.secrets[where], cid.cid)
                got: list[bytes] = []
                orig = c.proto.datagram_received
                c.proto.datagram_received = lambda data, a: (got.append(data), orig(data, a))
                with _taken_out(f, where):
                    c.quic.send_ping(1)
                    c.proto.transmit()
                    deadline = time.monotonic() + scaled(1.5)
                    while not got and time.monotonic() < deadline:
                        await asyncio.sleep(0.02)
                return cid.stateless_reset_token, got
        token, got = run(go(), scaled(30))
        resets = [d for d in got if d[-16:] == token]
        if shared:
            assert resets, f"no stateless reset with the announced token ({len(got)} datagrams)"
        else:
            assert got and not resets, f"{len(got)} datagrams, {len(resets)} with the token"


# --------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize("args,field", [
    (["--quic-lb-server-id", "a1b2"], "quic_lb_config_id"),
    (["--quic-lb-config-id", "7", "--quic-lb-server-id", "a1"], "quic_lb_config_id"),
    (["--quic-lb-config-id", "1"], "quic_lb_server_id"),
    (["--quic-lb-config-id", "1", "--quic-lb-server-id", "xyz"], "quic_lb_server_id"),
    (["--quic-lb-config-id", "1", "--quic-lb-server-id", "00" * 16], "quic_lb_server_id"),
    (["--quic-lb-config-id", "1", "--quic-lb-server-id", "00" * 15, "--quic-lb-nonce-len", "5"],
     "quic_lb_nonce_len"),
    (["--quic-lb-config-id", "1", "--quic-lb-server-id", "a1", "--quic-lb-nonce-len", "3"],
     "quic_lb_nonce_len"),
])
def test_config_errors_name_the_field(certs, args, field):
    assert_config_error(["--addr", "127.0.0.1", "--port", "0", "--cert", str(certs.cert),
                         "--key", str(certs.key), *args], field)
