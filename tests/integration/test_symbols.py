"""The libraries export the public API and nothing else.

- libh3q.so exports exactly the H3Q_EXTERN functions of include/h3q.h.
- In the installed static libh3q.a, h3q's own code is one relocatable
  object whose only global symbols are those same functions (internal
  names such as conn_close are local), so they cannot clash with a user's.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from harness import BUILD_DIR, SOURCE_DIR


def public_functions() -> set[str]:
    text = (SOURCE_DIR / "include" / "h3q.h").read_text()
    # H3Q_EXTERN <return type> [*]name(  -- possibly across lines.
    names = re.findall(r"H3Q_EXTERN[^;(]*?\b(h3q_\w+)\s*\(", text, re.S)
    assert len(names) > 40, "header parse found too few functions"
    return set(names)


def nm(*args: str) -> list[tuple[str, str]]:
    tool = shutil.which("nm")
    if not tool:
        pytest.fail("nm (binutils) is required", pytrace=False)
    out = subprocess.run([tool, *args], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            rows.append((parts[1], parts[2]))
    return rows


def test_shared_library_exports_exactly_the_header():
    lib = BUILD_DIR / "libh3q.so"
    assert lib.exists(), lib
    exported = {name for kind, name in nm("-D", "--defined-only", str(lib)) if kind in "TDB"}
    exported = {n.split("@")[0] for n in exported}
    assert exported == public_functions()


def test_static_archive_hides_internal_symbols():
    obj = BUILD_DIR / "h3q_public.o"
    assert obj.exists(), obj
    globals_ = {name for kind, name in nm("-g", "--defined-only", str(obj))}
    assert globals_ == public_functions()
    # Internal functions are still there, but local.
    local = {name for kind, name in nm("--defined-only", str(obj)) if kind.islower()}
    assert {"conn_close", "stream_new", "udp_open"} <= local
