"""Request bodies split into unusual DATA frames, sent by aioquic: empty
DATA frames between real ones and an empty final frame. quiche 0.30's
recv_body reports "done" after an empty frame while more body follows, so
the server must keep reading instead of waiting for an event that never
comes."""

from __future__ import annotations

import hashlib

import pytest

from aioquic_client import H3Client, run
from harness import scaled


def _frames_then_echo(server, frames: list[bytes]):
    async def go():
        async with H3Client.connect(server.host, server.port) as c:
            sid = c.new_stream()
            c.send_headers(sid, c.request_headers("POST", "/echo"))
            for i, f in enumerate(frames):
                c.send_data(sid, f, end_stream=i == len(frames) - 1)
            return await c.wait_response(sid, timeout=scaled(10))

    return run(go(), scaled(30))


@pytest.mark.timeout(scaled(60))
@pytest.mark.parametrize("frames", [
    [b"abc", b"", b"def"],
    [b"", b"abc", b"", b"", b"def", b""],
    [b"x" * 70000, b"", b"y" * 5, b""],
    [b""],
], ids=["middle", "many", "large", "only-empty"])
def test_empty_data_frames_are_skipped(server, frames):
    r = _frames_then_echo(server, frames)
    want = b"".join(frames)
    assert r.status == 200
    assert hashlib.sha256(r.body).hexdigest() == hashlib.sha256(want).hexdigest()
    server.assert_alive()
