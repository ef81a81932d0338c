"""pytest configuration for h3q's integration tests; see harness.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402

from harness import (  # noqa: E402,F401  (fixtures are found by name)
    BUILD_DIR,
    SANITIZED,
    certs,
    module_servers,
    scaled,
    server,
    servers,
)


# --------------------------------------------------------------------------
# pytest plumbing


def pytest_collection_modifyitems(config, items):
    # A hard per-test limit (pytest-timeout) in case an inner bound is missed.
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(scaled(300)))


def pytest_report_header(config):
    return [f"h3q build dir: {BUILD_DIR}", f"sanitized: {SANITIZED}"]
