#!/usr/bin/env bash
# Runs the Bun package's tests (bindings/bun) against BUILD's libh3q.so.
#   scripts/bun-test.sh BUILD
# The suite runs twice: with the HTTP/3 loop on a thread of libh3q's and
# inline on the JS thread (H3Q_LOOP).
# Exit 77 (ctest: skipped) under sanitizers: the ASan runtime would have to
# be preloaded into the bun binary, whose allocator and JIT it does not
# support, so that build tests the host API through the C tests instead.
set -euo pipefail
build="$(cd "$1" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
pkg="$root/bindings/bun"
if [ "${H3Q_SANITIZED:-}" = 1 ]; then
  echo "skipped: bun cannot load an ASan-instrumented libh3q.so (no ASan runtime in bun)"
  exit 77
fi
bun="$pkg/node_modules/.bin/bun"
if [ ! -x "$bun" ]; then
  echo "bun-test: $bun missing: run scripts/setup.sh test (npm ci in bindings/bun)" >&2
  exit 1
fi
cd "$pkg"
# The whole suite once per place of the HTTP/3 loop (serve()'s loop option).
for loop in thread inline; do
  echo "bun-test: loop $loop"
  H3Q_LOOP="$loop" H3Q_BUILD_DIR="$build" H3Q_LIB="$build/libh3q.so" "$bun" test --timeout 200000
done
