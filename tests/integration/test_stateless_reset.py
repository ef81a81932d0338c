"""Server secret, spare connection IDs and stateless reset (RFC 9000 §5.1,
§10.3) with aioquic.

The server issues spare CIDs up to the client's active_connection_id_limit,
each with a stateless-reset token derived from the secret file. After
kill -9 and a restart with the same secret file, an old connection's next
packet is answered at once with a stateless reset carrying the token the
old server announced, far below the idle timeout. aioquic 1.7.2 does not
act on stateless resets itself (it drops them as undecryptable), so the
test recognises the reset the way RFC 9000 §10.3.1 says a client must: the
last 16 bytes of a datagram equal the token announced for the CID in use.
The expected tokens are computed here from the secret, independently of
h3q: BLAKE2b (libsodium's crypto_kdf) for the subkey, then HMAC-SHA256."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import queue
import signal
import struct
import subprocess
import threading
import time

import pytest

from aioquic_client import H3Client, run
from harness import scaled
from test_quicgo import quicgo  # noqa: F401 (fixture)

IDLE_TIMEOUT_MS = 30000


def _subkey(secret: bytes, subkey_id: int, length: int) -> bytes:
    master = hashlib.blake2b(secret, digest_size=32).digest()
    return hashlib.blake2b(b"", digest_size=length, key=master,
                           salt=struct.pack("<Q", subkey_id) + bytes(8),
                           person=b"h3qsecrt" + bytes(8)).digest()


def expected_reset_token(secret: bytes, cid: bytes) -> bytes:
    reset_key = _subkey(secret, 2, 32)  # subkey 2: stateless-reset tokens
    return hmac.new(reset_key, cid, hashlib.sha256).digest()[:16]


def _secret_file(path, secret: bytes):
    path.write_bytes(secret)
    return str(path)


def _cids(client: H3Client) -> list:
    q = client.quic
    return [q._peer_cid] + list(q._peer_cid_available)


async def _wait_cids(client: H3Client, n: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while len(_cids(client)) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return _cids(client)


@pytest.mark.timeout(scaled(60))
def test_spare_cids_with_derived_reset_tokens(servers, tmp_path):
    secret = os.urandom(64)
    s = servers.start("--secret-file", _secret_file(tmp_path / "secret", secret))

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            r = await c.request("GET", "/hello", timeout=scaled(10))
            assert r.status == 200
            # aioquic allows 8 active CIDs: the server should fill that.
            cids = await _wait_cids(c, 8, scaled(5))
            assert len(cids) == 8, f"server issued {len(cids)} CIDs, the client allows 8"
            assert len({x.cid for x in cids}) == len(cids)
            for x in cids:
                assert x.stateless_reset_token == expected_reset_token(secret, x.cid), \
                    f"CID #{x.sequence_number}: reset token not derived from the secret"
            seen = {x.cid for x in cids}
            # Move to a new CID: the client retires the old one, the server
            # unregisters it and issues a replacement; requests go on.
            for _ in range(3):
                c.quic.change_connection_id()
                r = await c.request("GET", "/hello", timeout=scaled(10))
                assert r.status == 200
            deadline = time.monotonic() + scaled(5)
            while len(seen | {x.cid for x in _cids(c)}) < 8 + 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            seen |= {x.cid for x in _cids(c)}
            assert len(seen) >= 8 + 3, "retired CIDs were not replaced"
            for x in _cids(c):
                assert x.stateless_reset_token == expected_reset_token(secret, x.cid)
    run(go(), scaled(40))


def _kill9(server) -> None:
    server.expect_exit = True
    server.killed = True  # teardown: an exit by SIGKILL is what we wanted
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(10)


async def _reset_after_restart(servers, tmp_path, secret: bytes, new_secret: bytes):
    """Connects, kill -9s the server, restarts it on the same port with
    new_secret, pings, and returns (token announced for the CID in use,
    [(seconds after the ping, datagram)], the client)."""
    s1 = servers.start("--secret-file", _secret_file(tmp_path / "s1", secret),
                       "--idle-timeout", str(IDLE_TIMEOUT_MS))
    async with H3Client.connect(s1.host, s1.port, timeout=scaled(10),
                                idle_timeout=IDLE_TIMEOUT_MS / 1000) as c:
        r = await c.request("GET", "/hello", timeout=scaled(10))
        assert r.status == 200
        token = c.quic._peer_cid.stateless_reset_token
        assert token == expected_reset_token(secret, c.quic._peer_cid.cid)
        _kill9(s1)
        servers.start("--secret-file", _secret_file(tmp_path / "s2", new_secret),
                      "--idle-timeout", str(IDLE_TIMEOUT_MS), port=s1.port)
        got: list[tuple[float, bytes]] = []
        orig = c.proto.datagram_received
        t0 = time.monotonic()

        def record(data, addr):
            got.append((time.monotonic() - t0, data))
            orig(data, addr)
        c.proto.datagram_received = record
        c.quic.send_ping(1)
        c.proto.transmit()
        deadline = time.monotonic() + scaled(5)
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return token, got


@pytest.mark.timeout(scaled(90))
def test_kill9_restart_same_secret_resets_old_connection(servers, tmp_path):
    secret = os.urandom(32)
    token, got = run(_reset_after_restart(servers, tmp_path, secret, secret), scaled(60))
    resets = [(t, d) for t, d in got if d[-16:] == token]
    assert resets, f"no stateless reset with the announced token; got {[(t, d.hex()) for t, d in got]}"
    t, d = resets[0]
    assert d[0] & 0xC0 == 0x40 and 21 <= len(d) <= 43
    # At once, not by idle timeout (30 s): one round trip on loopback.
    assert t < min(scaled(2.0), IDLE_TIMEOUT_MS / 1000 / 10), f"reset after {t:.3f}s"


@pytest.mark.timeout(scaled(90))
def test_restart_with_another_secret_cannot_reset(servers, tmp_path):
    """The control: a server with a different secret answers too, but its
    token is not the one announced, so the client must ignore it."""
    token, got = run(_reset_after_restart(servers, tmp_path, os.urandom(32), os.urandom(32)),
                     scaled(60))
    assert got, "the restarted server sent nothing"
    assert all(d[-16:] != token for _, d in got)


def _line_reader(proc: subprocess.Popen) -> "queue.Queue[str | None]":
    """A thread moves the client's stdout lines into a queue (select() on a
    buffered pipe would miss a second line already read into the buffer)."""
    q: "queue.Queue[str | None]" = queue.Queue()

    def pump():
        for line in proc.stdout:
            q.put(line)
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


def _read_event(lines, name: str, timeout: float, seen: list) -> dict:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        obj = json.loads(line)
        seen.append(obj)
        if obj.get("event") == name:
            return obj
    pytest.fail(f"quicgoclient: no {name!r} event within {timeout:.0f}s; got {seen}", pytrace=False)


@pytest.mark.timeout(scaled(660))
def test_quicgo_connection_ends_by_stateless_reset_after_kill9(servers, tmp_path, quicgo):
    """quic-go checks stateless resets itself: after kill -9 and a restart
    with the same secret, its next request ends the connection with a
    StatelessResetError at once (its idle timeout is 30 s)."""
    secret = _secret_file(tmp_path / "secret", os.urandom(48))
    s1 = servers.start("--secret-file", secret)
    cmd = [str(quicgo), "-addr", f"{s1.host}:{s1.port}", "-insecure", "-scenario", "reset",
           "-timeout", f"{int(scaled(60))}s", "-req-timeout", f"{int(scaled(40))}s"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen: list = []
    lines = _line_reader(proc)
    try:
        _read_event(lines, "ready", scaled(20), seen)
        _kill9(s1)
        servers.start("--secret-file", secret, port=s1.port)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        ended = _read_event(lines, "ended", scaled(50), seen)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    assert ended["conn"].get("error_kind") == "stateless_reset", seen
    assert ended["ms"] < scaled(2000), f"the reset took {ended['ms']} ms"


@pytest.mark.timeout(scaled(60))
def test_secret_file_errors_name_the_field(servers, tmp_path):
    from harness import ServerError
    short = tmp_path / "short"
    short.write_bytes(os.urandom(31))
    for path in (str(short), str(tmp_path / "missing")):
        with pytest.raises(ServerError) as e:
            servers.start("--secret-file", path)
        assert "secret_file" in str(e.value) and "--secret-file" in str(e.value)
