#!/usr/bin/env bash
# h3q-server vs ngtcp2's gtlsserver with the same client (h3q-bench).
#   bench/run.sh [BUILD_DIR] [bench.py options: --runs N --duration S --only download,rps1,rps20]
# make bench runs it after scripts/setup.sh test. Results: bench/results/latest.md;
# then the WebTransport echo against webtransport-go (bench/wt_bench.py,
# bench/results/wt-latest.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
[ $# -gt 0 ] && shift
py="$root/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
"$py" "$root/bench/bench.py" --build "$build" "$@"
"$py" "$root/bench/memory.py" --build "$build"
"$py" "$root/bench/wt_bench.py" --build "$build"
