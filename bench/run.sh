#!/usr/bin/env bash
# HTTP/3 servers side by side: h3q-server, ngtcp2, tokio-quiche, quic-go, Bun,
# each measured with h3q-bench and quic-go's load client (bench/README.md).
#   bench/run.sh [BUILD_DIR] [bench.py options: --runs N --duration S --only LIST
#                 --servers LIST --clients LIST --size BYTES --idle-conns N --no-pin]
#   bench/run.sh [BUILD_DIR] --smoke    every peer builds and answers (1 run, tiny sizes)
# make bench runs it after scripts/setup.sh bench. Results: bench/results/latest.md
# (--smoke: bench/results/smoke.md). Exit 1 when any run failed.
# A full run then compares the WebTransport echo with webtransport-go
# (bench/wt_bench.py, bench/results/wt-latest.md) and the goodput under loss
# (bench/lossy.py, bench/results/lossy-latest.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  build="$1"
  shift
fi
py="$root/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
status=0
"$py" "$root/bench/bench.py" --build "$build" "$@" || status=$?
# h3q's memory per open request stream (aioquic, h3q's /digest route) on a
# full run only; bench.py measured the idle connections of every server.
case " $* " in
  *" --smoke "* | *" --only"* | *" --servers"*) ;;
  *)
    { echo; echo "## h3q only: memory per open request stream"; echo
      "$py" "$root/bench/memory.py" --build "$build" --no-idle | tail -1; } \
      | tee -a "$root/bench/results/latest.md" || status=1
    "$py" "$root/bench/wt_bench.py" --build "$build" || status=1
    # Goodput at 1, 5 and 10% loss through h3q-relay (bench/results/lossy-latest.md).
    "$py" "$root/bench/lossy.py" --build "$build" || status=1
    ;;
esac
exit "$status"
