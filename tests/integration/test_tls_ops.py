"""TLS operations: the ALPN check, client certificates (--client-ca,
--client-cert-required, h3q_request_client_cert_verified through the demo's
GET /client-cert) and certificate reload on SIGHUP without dropping
connections, with aioquic as the client. Certificates and CAs are made
here with openssl."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from aioquic_client import H3Client, H3ClientError, run
from harness import GEN_CERT, scaled

CERT_REQUIRED = 0x100 + 116  # CRYPTO_ERROR with TLS alert certificate_required


def _openssl(*args: str) -> None:
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"


def _ca(d: Path, name: str) -> tuple[Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    key, crt = d / f"{name}.key", d / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign")
    return crt, key


def _leaf(d: Path, name: str, ca: tuple[Path, Path]) -> tuple[str, str]:
    key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    ext = d / f"{name}.ext"
    ext.write_text("extendedKeyUsage=clientAuth\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return str(crt), str(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = _ca(d, "client-ca")
    rogue_ca = _ca(d, "rogue-ca")
    return {"ca": str(ca[0]), "good": _leaf(d, "alice", ca), "rogue": _leaf(d, "mallory", rogue_ca)}


async def _client_cert_status(server, cert) -> tuple[str, object]:
    """('ok', body) or ('refused', why)."""
    try:
        async with H3Client.connect(server.host, server.port, timeout=scaled(5),
                                    client_cert=cert) as c:
            try:
                r = await c.request("GET", "/client-cert", timeout=scaled(5))
            except H3ClientError as e:
                t = c.terminated
                return "refused", (t.error_code if t else str(e))
            if r.status is None:
                t = c.terminated
                return "refused", (t.error_code if t else "no response")
            return "ok", r.body
    except H3ClientError as e:
        return "refused", str(e)


@pytest.mark.timeout(scaled(90))
def test_client_cert_required(servers, pki):
    s = servers.start("--client-ca", pki["ca"], "--client-cert-required")
    assert run(_client_cert_status(s, pki["good"]), scaled(30)) == ("ok", b"verified\n")
    status, why = run(_client_cert_status(s, None), scaled(30))
    assert status == "refused", why
    assert why == CERT_REQUIRED or "0x174" in str(why), why
    status, why = run(_client_cert_status(s, pki["rogue"]), scaled(30))
    assert status == "refused", f"a certificate from another CA was accepted: {why}"
    assert run(_client_cert_status(s, pki["good"]), scaled(30)) == ("ok", b"verified\n")
    s.assert_alive()


@pytest.mark.timeout(scaled(90))
def test_client_cert_optional(servers, pki):
    s = servers.start("--client-ca", pki["ca"])
    assert run(_client_cert_status(s, pki["good"]), scaled(30)) == ("ok", b"verified\n")
    assert run(_client_cert_status(s, None), scaled(30)) == ("ok", b"none\n")
    status, why = run(_client_cert_status(s, pki["rogue"]), scaled(30))
    assert status == "refused", f"a certificate from another CA was accepted: {why}"


@pytest.mark.timeout(scaled(60))
def test_no_client_ca_means_no_client_cert(server, pki):
    # Without --client-ca the server does not ask; a client cert is unused.
    assert run(_client_cert_status(server, pki["good"]), scaled(30)) == ("ok", b"none\n")


@pytest.mark.timeout(scaled(60))
def test_client_cert_flags_are_validated(servers, tmp_path):
    from harness import ServerError
    with pytest.raises(ServerError) as e:
        servers.start("--client-cert-required")
    assert "client_cert_required" in str(e.value)
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("not a certificate\n")
    for path in (str(bad), str(tmp_path / "missing.pem")):
        with pytest.raises(ServerError) as e:
            servers.start("--client-ca", path)
        assert "client_ca_path" in str(e.value) and "--client-ca" in str(e.value)


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("alpn", [["h3-29"], ["hq-interop"], ["http/1.1"]])
def test_handshake_without_h3_alpn_fails(server, alpn):
    async def go():
        async with H3Client.connect(server.host, server.port, timeout=scaled(5), alpn=alpn):
            pass
    with pytest.raises(H3ClientError):
        run(go(), scaled(30))
    assert run(_client_cert_status(server, None), scaled(30))[0] == "ok"


# --------------------------------------------------------------------------
# reload


def _fingerprint_pem(path: Path) -> str:
    from cryptography import x509
    c = x509.load_pem_x509_certificate(path.read_bytes())
    return hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest()


def _peer_fingerprint(client: H3Client) -> str:
    c = client.quic.tls._peer_certificate
    return hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest()


def _make_cert(d: Path) -> None:
    r = subprocess.run(["bash", str(GEN_CERT), str(d)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def _install(src: Path, live: Path) -> None:
    for name in ("cert.pem", "key.pem"):
        tmp = live / (name + ".new")
        shutil.copyfile(src / name, tmp)
        tmp.replace(live / name)  # atomically, as an operator would


async def _wait_log(server, text: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while server.stderr_text().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} in the server log:\n{server.stderr_text()[-2000:]}"
        await asyncio.sleep(0.05)


@pytest.mark.timeout(scaled(180))
def test_sighup_reload_keeps_download_and_serves_new_cert(servers, tmp_path):
    a, b, live = tmp_path / "a", tmp_path / "b", tmp_path / "live"
    _make_cert(a)
    _make_cert(b)
    live.mkdir()
    _install(a, live)
    fa, fb = _fingerprint_pem(a / "cert.pem"), _fingerprint_pem(b / "cert.pem")
    assert fa != fb
    s = servers.start("--cert", str(live / "cert.pem"), "--key", str(live / "key.pem"),
                      with_certs=False)
    size = 64 << 20

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as old:
            assert _peer_fingerprint(old) == fa
            got = [0]
            dl = asyncio.ensure_future(old.request(
                "GET", f"/bytes/{size}", store_body=False, check_pattern=True,
                on_data=lambda d: got.__setitem__(0, got[0] + len(d)), timeout=scaled(120)))
            while got[0] == 0 and not dl.done():
                await asyncio.sleep(0.01)
            _install(b, live)
            s.proc.send_signal(signal.SIGHUP)
            await _wait_log(s, "tls: reloaded", 1, scaled(10))
            async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as new:
                assert _peer_fingerprint(new) == fb, "a new connection got the old certificate"
                r = await new.request("GET", "/hello", timeout=scaled(10))
                assert r.status == 200
            assert not dl.done(), "the download ended before the reload: the test proves nothing"
            # A reload that fails (a broken key) keeps the current certificate.
            (live / "key.pem").write_text("broken\n")
            s.proc.send_signal(signal.SIGHUP)
            await _wait_log(s, "tls reload failed", 1, scaled(10))
            async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as third:
                assert _peer_fingerprint(third) == fb
            r = await dl
            return r
    r = run(go(), scaled(150))
    assert r.status == 200 and r.complete, (r.status, r.reset_code)
    assert r.body_len == size and r.pattern_ok, (r.body_len, r.pattern_mismatch_at)
    assert "key_path" in s.stderr_text().split("tls reload failed", 1)[1].splitlines()[0]
    s.assert_alive()
