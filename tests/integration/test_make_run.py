"""`make run` serves the demo routes and the folder named in the Makefile,
from files that are in git (a folder git does not track would be missing
on a fresh clone). The server command is taken from `make -n run`."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from aioquic_client import run, H3Client
from harness import SOURCE_DIR, scaled


def _run_command() -> list[str]:
    out = subprocess.run(["make", "-n", "-s", "run", "PORT=4433"], cwd=SOURCE_DIR,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    lines = [l for l in out.splitlines() if "h3q-server" in l and "--root" in l]
    assert len(lines) == 1, f"no single h3q-server command in `make -n run`:\n{out}"
    return shlex.split(lines[0])


@pytest.mark.timeout(scaled(60))
def test_make_run_serves_tracked_folder(servers):
    argv = _run_command()
    root = argv[argv.index("--root") + 1]
    if shutil.which("git") and (SOURCE_DIR / ".git").exists():
        tracked = subprocess.run(["git", "-C", str(SOURCE_DIR), "ls-files", root],
                                 capture_output=True, text=True, timeout=30).stdout.split()
        assert f"{root}/index.html" in tracked, f"{root}/index.html is not in git"
    # Same flags as `make run`, but our port and test certificate.
    flags = [a for a in argv[1:] if a.startswith("--") and
             a not in ("--port", "--cert", "--key", "--root")]
    assert "--webtransport" in flags  # the page's WebTransport echo needs it
    s = servers.start("--root", str(SOURCE_DIR / root), *flags, cwd=SOURCE_DIR)

    async def go():
        async with H3Client.connect(s.host, s.port, timeout=scaled(10)) as c:
            page = await c.request("GET", "/", timeout=scaled(10))
            css = await c.request("GET", "/style.css", timeout=scaled(10))
            hello = await c.request("GET", "/hello", timeout=scaled(10))
            wt_page = await c.request("GET", "/webtransport.html", timeout=scaled(10))
            return page, css, hello, wt_page

    page, css, hello, wt_page = run(go(), scaled(30))
    assert wt_page.status == 200 and b"/webtransport.js" in wt_page.body
    assert page.status == 200 and b"h3q is serving this page over HTTP/3" in page.body
    assert page.header("content-type").startswith("text/html")
    assert css.status == 200 and css.header("content-type").startswith("text/css")
    assert (hello.status, hello.body) == (200, b"hello from h3q\n")
