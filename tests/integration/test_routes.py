"""Demo routes, 404/405, HEAD, route parameters and query strings, each
checked with h3q-client and with aioquic (an independent HTTP/3 client)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from aioquic_client import H3Client, run
from harness import pattern_bytes, run_client

CLIENTS = ["h3q-client", "aioquic"]


@dataclass
class Resp:
    status: int | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    how: str = ""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


def request(kind: str, server, method: str, path: str, tmp_path, body: bytes | None = None) -> Resp:
    if kind == "h3q-client":
        out = tmp_path / "body.out"
        if out.exists():
            out.unlink()
        args = ["-X", method, "-o", str(out)]
        if body is not None:
            data = tmp_path / "body.in"
            data.write_bytes(body)
            args += ["--data-file", str(data)]
        res = run_client(*args, server.url(path), timeout=30)
        assert res.returncode == 0, f"h3q-client failed\n{res.describe()}"
        assert len(res.records) == 1, f"expected one JSON record\n{res.describe()}"
        rec = res.records[0]
        assert not rec.get("error"), f"h3q-client reported an error\n{res.describe()}"
        got = out.read_bytes() if out.exists() else b""
        assert rec.get("body_bytes") == len(got), \
            f"body_bytes {rec.get('body_bytes')} != bytes written to -o ({len(got)})\n{res.describe()}"
        hdrs = [(k.lower(), v) for k, v in rec.get("headers") or []]
        return Resp(rec.get("status"), hdrs, got, res.describe())

    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            return await c.request(method, path, body=body, timeout=20)

    r = run(go(), 30)
    assert r.complete, f"aioquic: response to {method} {path} did not complete: {r}"
    return Resp(r.status, r.headers, r.body or b"", f"aioquic {method} {path}: {r.status} {r.headers}")


def allow_set(v: str | None) -> set[str]:
    return {m.strip() for m in (v or "").split(",") if m.strip()}


@pytest.mark.parametrize("kind", CLIENTS)
def test_hello(kind, server, tmp_path):
    r = request(kind, server, "GET", "/hello", tmp_path)
    assert r.status == 200, r.how
    assert r.body == b"hello from h3q\n", r.how
    assert (r.header("content-type") or "").startswith("text/plain"), r.how
    cl = r.header("content-length")
    assert cl is None or cl == "15", r.how


@pytest.mark.parametrize("kind", CLIENTS)
def test_hello_ignores_query(kind, server, tmp_path):
    r = request(kind, server, "GET", "/hello?x=1&y=2", tmp_path)
    assert (r.status, r.body) == (200, b"hello from h3q\n"), r.how


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("path", ["/nope", "/does/not/exist", "/hellox", "/user/1/extra"])
def test_not_found(kind, path, server, tmp_path):
    r = request(kind, server, "GET", path, tmp_path)
    assert r.status == 404, r.how


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("method,path,allowed", [
    ("POST", "/hello", {"GET", "HEAD"}),
    ("DELETE", "/hello", {"GET", "HEAD"}),
    ("PUT", "/user/7", {"GET", "HEAD"}),
    ("GET", "/echo", {"POST"}),
])
def test_method_not_allowed(kind, method, path, allowed, server, tmp_path):
    r = request(kind, server, method, path, tmp_path)
    assert r.status == 405, r.how
    assert r.header("allow") is not None, f"405 without an allow header: {r.how}"
    assert allow_set(r.header("allow")) == allowed, r.how


@pytest.mark.parametrize("kind", CLIENTS)
def test_allow_header_exact_for_hello(kind, server, tmp_path):
    r = request(kind, server, "POST", "/hello", tmp_path)
    assert r.status == 405 and r.header("allow") == "GET, HEAD", r.how


@pytest.mark.parametrize("kind", CLIENTS)
def test_head_hello(kind, server, tmp_path):
    r = request(kind, server, "HEAD", "/hello", tmp_path)
    assert r.status == 200, r.how
    assert r.header("content-length") == "15", r.how
    assert r.body == b"", r.how


@pytest.mark.parametrize("kind", CLIENTS)
def test_head_bytes(kind, server, tmp_path):
    r = request(kind, server, "HEAD", "/bytes/123456", tmp_path)
    assert r.status == 200, r.how
    assert r.header("content-length") == "123456", r.how
    assert r.body == b"", r.how


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("ident", ["42", "alice", "a-b_c.d", "0"])
def test_user_param(kind, ident, server, tmp_path):
    r = request(kind, server, "GET", f"/user/{ident}", tmp_path)
    assert r.status == 200, r.how
    assert r.body == f"user {ident}\n".encode(), r.how
    assert (r.header("content-type") or "").startswith("text/plain"), r.how


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("query", ["x=1", "x=1&y=two", "q=a%20b&empty=", "flag"])
def test_user_query(kind, query, server, tmp_path):
    r = request(kind, server, "GET", f"/user/7?{query}", tmp_path)
    assert r.status == 200, r.how
    assert r.body == f"user 7 query {query}\n".encode(), r.how


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("n", [0, 1, 250, 251, 252, 70000])
def test_bytes_small(kind, n, server, tmp_path):
    r = request(kind, server, "GET", f"/bytes/{n}", tmp_path)
    assert r.status == 200, r.how
    assert r.header("content-length") == str(n), r.how
    assert r.body == pattern_bytes(0, n), f"body of /bytes/{n} differs from the pattern ({r.how})"


@pytest.mark.parametrize("kind", CLIENTS)
def test_ipv6(kind, servers, tmp_path):
    s6 = servers.start(host="::1")
    r = request(kind, s6, "GET", "/hello", tmp_path)
    assert (r.status, r.body) == (200, b"hello from h3q\n"), r.how
    r = request(kind, s6, "GET", "/user/v6?a=b", tmp_path)
    assert (r.status, r.body) == (200, b"user v6 query a=b\n"), r.how


def test_many_requests_one_aioquic_connection(server):
    """Sequential mixed requests on one connection keep working."""
    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            for i in range(30):
                r = await c.request("GET", f"/user/{i}")
                assert (r.status, r.body) == (200, f"user {i}\n".encode())
                r = await c.request("GET", "/nope")
                assert r.status == 404
                r = await c.request("HEAD", "/hello")
                assert r.status == 200 and r.body == b""
    run(go(), 60)


def test_client_fail_flag_on_404(server):
    """h3q-client --fail turns an HTTP error status into exit status 1."""
    res = run_client("--fail", server.url("/nope"), timeout=30)
    assert res.returncode == 1, res.describe()
    res = run_client(server.url("/nope"), timeout=30)
    assert res.returncode == 0, "without --fail a 404 is a completed request\n" + res.describe()
    assert res.records and res.records[0]["status"] == 404, res.describe()
