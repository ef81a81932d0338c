"""h3q-server configuration errors, --help, signals, and the generated
certificate when none is given."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import pytest

from aioquic_client import H3Client, run
from harness import (SERVER_BIN, free_udp_port, require_exe, run_client, sanitizer_env,
                     sanitizer_reports, scaled)

ALL_FLAGS = ["--addr", "--port", "--cert", "--key", "--root", "--log-level", "--idle-timeout",
             "--max-streams", "--cc", "--max-payload", "--qlog-dir", "--retry", "--secret-file",
             "--client-ca", "--client-cert-required", "--ticket-key", "--help"]


def run_server_expect_exit(args: list[str], cwd: Path | None = None, timeout: float = 10.0):
    exe = require_exe(SERVER_BIN, "h3q-server")
    cmd = [exe, *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(timeout),
                           stdin=subprocess.DEVNULL, cwd=cwd, env=sanitizer_env())
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"h3q-server did not exit within {scaled(timeout):.0f}s: {' '.join(cmd)}\n"
                    f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}", pytrace=False)
    desc = f"cmd: {' '.join(cmd)}\nexit: {p.returncode}\nstdout: {p.stdout!r}\nstderr: {p.stderr!r}"
    assert not sanitizer_reports(p.stderr), desc
    return p, desc


def assert_config_error(args, *must_name: str):
    p, desc = run_server_expect_exit(args)
    assert p.returncode == 2, "expected exit status 2 for a configuration error\n" + desc
    assert "listening" not in p.stdout, desc
    lines = [l for l in p.stderr.splitlines() if l.startswith("h3q-server: ")]
    assert lines, "no stderr line starting with 'h3q-server: '\n" + desc
    # the name may be the flag (max-streams) or the config field (max_streams)
    text = p.stderr.lower().replace("_", "-")
    for word in must_name:
        assert word.lower().replace("_", "-") in text, f"error message does not name {word!r}\n" + desc


def test_missing_cert_file(certs, tmp_path):
    missing = tmp_path / "no-such-dir" / "cert.pem"
    assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                         "--cert", str(missing), "--key", str(certs.key)], "cert", str(missing))


def test_missing_key_file(certs, tmp_path):
    missing = tmp_path / "absent-key.pem"
    assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                         "--cert", str(certs.cert), "--key", str(missing)], "key", str(missing))


def test_cert_file_not_a_certificate(certs, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("this is not a certificate\n")
    assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                         "--cert", str(junk), "--key", str(certs.key)], "cert")


@pytest.mark.parametrize("port", ["70000", "65536", "abc", "-1", ""])
def test_bad_port(port, certs):
    assert_config_error(["--addr", "127.0.0.1", "--port", port,
                         "--cert", str(certs.cert), "--key", str(certs.key)], "port")


@pytest.mark.parametrize("flag,value,name", [
    ("--cc", "vegas", "cc"),
    ("--log-level", "loud", "log-level"),
    ("--max-streams", "0", "max-streams"),
    ("--idle-timeout", "abc", "idle-timeout"),
    ("--max-payload", "10", "payload"),
    ("--addr", "not-an-address", "addr"),
    ("--retry-auto", "1000001", "retry_auto_threshold"),
    ("--new-token-lifetime", "2592001", "new_token_lifetime"),
])
def test_bad_values(flag, value, name, certs):
    assert_config_error(["--addr", "127.0.0.1", "--port", str(free_udp_port()),
                         "--cert", str(certs.cert), "--key", str(certs.key), flag, value], name)


def test_unknown_flag(certs):
    assert_config_error(["--port", str(free_udp_port()), "--cert", str(certs.cert),
                         "--key", str(certs.key), "--bogus-flag"], "--bogus-flag")


def test_help():
    p, desc = run_server_expect_exit(["--help"])
    assert p.returncode == 0, desc
    out = p.stdout + p.stderr
    for flag in ALL_FLAGS:
        assert flag in out, f"--help does not mention {flag}\n" + desc
    assert "listening" not in p.stdout, desc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero(sig, servers):
    """SIGTERM/SIGINT: the server closes its connections and exits 0, even
    with a client connected."""
    s = servers.start()

    async def go():
        async with H3Client.connect(s.host, s.port) as c:
            r = await c.request("GET", "/hello", timeout=scaled(10))
            assert r.status == 200
            loop = asyncio.get_running_loop()
            rc = await loop.run_in_executor(None, s.signal_and_wait, sig, scaled(10))
            # the server should have closed the connection (CONNECTION_CLOSE)
            for _ in range(40):
                if c.proto.terminated is not None:
                    break
                await asyncio.sleep(0.05)
            closed = c.proto.terminated is not None
            return rc, closed

    rc, closed = run(go(), scaled(40))
    assert rc is not None, f"h3q-server did not exit within {scaled(10):.0f}s of {sig.name}"
    assert rc == 0, f"exit status {rc} after {sig.name}\nstderr:\n{s.stderr_text()[-3000:]}"
    assert closed, f"after {sig.name} the client's connection was not closed by the server"
    # teardown (servers fixture) re-checks stderr for sanitizer reports


def test_generated_certificate(servers, tmp_path):
    """No --cert/--key: a self-signed ECDSA certificate appears under ./.h3q/
    of the working directory, and the server serves /hello with it."""
    work = tmp_path / "cwd"
    work.mkdir()
    s = servers.start(with_certs=False, cwd=work)
    gen = work / ".h3q"
    assert gen.is_dir(), f"{gen} was not created"
    pems = [p for p in gen.iterdir() if p.is_file()]
    certs_found = [p for p in pems if "BEGIN CERTIFICATE" in p.read_text(errors="replace")]
    keys_found = [p for p in pems if "PRIVATE KEY" in p.read_text(errors="replace")]
    assert certs_found and keys_found, f"no certificate and key in {gen}: {[p.name for p in pems]}"
    info = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(certs_found[0])],
                          capture_output=True, text=True, timeout=30)
    assert info.returncode == 0, info.stderr
    assert "id-ecPublicKey" in info.stdout, "generated certificate is not ECDSA"
    assert oct(keys_found[0].stat().st_mode & 0o077) == "0o0", \
        f"generated private key {keys_found[0]} is readable by group/others"

    res = run_client(s.url("/hello"), "-o", str(tmp_path / "hello.out"), timeout=30)
    assert res.returncode == 0 and res.records[0]["status"] == 200, res.describe()
    assert (tmp_path / "hello.out").read_bytes() == b"hello from h3q\n"

    async def go():
        async with H3Client.connect(s.host, s.port) as c:
            return await c.request("GET", "/hello", timeout=10)
    r = run(go(), 30)
    assert (r.status, r.body) == (200, b"hello from h3q\n")


def test_root_serves_files(servers, tmp_path):
    """--root DIR serves files for GET paths no route claims."""
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>h3q</h1>\n")
    (root / "sub" / "data.bin").write_bytes(bytes(range(256)) * 4000)
    s = servers.start("--root", str(root))

    async def go():
        async with H3Client.connect(s.host, s.port) as c:
            a = await c.request("GET", "/sub/data.bin", timeout=20)
            b = await c.request("GET", "/index.html", timeout=20)
            h = await c.request("GET", "/hello", timeout=20)  # routes still win
            m = await c.request("GET", "/missing.txt", timeout=20)
            t = await c.request("GET", "/../../../../etc/passwd", timeout=20)
            return a, b, h, m, t

    a, b, h, m, t = run(go(), 60)
    assert a.status == 200 and a.body == bytes(range(256)) * 4000, a.status
    assert a.header("content-length") == str(256 * 4000)
    assert a.header("content-type"), "file response without content-type"
    assert b.status == 200 and b.body == b"<h1>h3q</h1>\n"
    assert (b.header("content-type") or "").startswith("text/html"), b.headers
    assert (h.status, h.body) == (200, b"hello from h3q\n")
    assert m.status == 404
    assert t.status in (400, 403, 404), f"path traversal answered {t.status}"
    assert b"root:" not in (t.body or b"")
