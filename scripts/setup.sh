#!/usr/bin/env bash
# Installs what h3q's build and tests need, only when missing.
#   scripts/setup.sh build   Debian packages for building
#   scripts/setup.sh test    + test peers (ngtcp2 client/server, Debian's chromium,
#                              python venv with aioquic, playwright-core from npm,
#                              Bun 1.4.4 from npm for bindings/bun);
#                            checks for Go >= 1.26 (quic-go test client, see build-go-peer.sh)
#   scripts/setup.sh fuzz    only what the libFuzzer build needs (clang, libFuzzer, cmake)
#   scripts/setup.sh bench   what make bench needs on top of build: ngtcp2-server, the
#                            python venv, Go >= 1.26 and node/npm, Bun 1.4.4 from npm
#                            (bench/bun); the bench's Rust and Go peers are built by
#                            bench/ itself on first use
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
what="${1:-build}"

build_pkgs=(build-essential cmake pkg-config libev-dev libsodium-dev clang libclang-dev
            openssl python3 python3-venv git patch curl ca-certificates)  # patch, curl: scripts/quiche-source.sh
test_pkgs=(ngtcp2-client ngtcp2-server clang-format libclang-rt-14-dev chromium)
fuzz_pkgs=(build-essential cmake clang libclang-rt-14-dev)
bench_pkgs=(ngtcp2-server util-linux strace)  # util-linux: taskset; strace: req_cost.py --strace

missing=()
want=("${build_pkgs[@]}")
[ "$what" = test ] && want+=("${test_pkgs[@]}")
[ "$what" = fuzz ] && want=("${fuzz_pkgs[@]}")
[ "$what" = bench ] && want+=("${bench_pkgs[@]}")
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The fuzz build compiles only h3q's pure modules: no quiche, no cargo.
[ "$what" = fuzz ] && exit 0

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo (Rust >= 1.88) is required to build quiche; install rustup first" >&2
  exit 1
fi

# Debian 12 ships Go 1.19; quic-go v0.65.0 needs 1.26, which is expected at
# /usr/local/go (or on PATH, or in $GO). Its modules come from the Go module
# proxy when scripts/build-go-peer.sh first builds the client.
go_ok() {
  local g minor
  for g in "${GO:-}" "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
    [ -n "$g" ] && [ -x "$g" ] || continue
    minor="$(GOTOOLCHAIN=local "$g" env GOVERSION 2>/dev/null | sed -nE 's/^go1\.([0-9]+).*/\1/p')"
    [ -n "$minor" ] && [ "$minor" -ge 26 ] && return 0
  done
  return 1
}
if { [ "$what" = test ] || [ "$what" = bench ]; } && ! go_ok; then
  echo "setup: Go >= 1.26 is required for the quic-go peers (tests/interop/quicgo, bench/quicgo);" \
       "install it to /usr/local/go or set GO=/path/to/go" >&2
  exit 1
fi

node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]
}

if [ "$what" = test ] || [ "$what" = bench ]; then
  venv="$root/.venv"
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$root/tests/requirements.txt" "$venv/.requirements"; then
    echo "setup: creating $venv with the Python test peers"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tests/requirements.txt"
    cp "$root/tests/requirements.txt" "$venv/.requirements"
  fi
fi

if [ "$what" = test ]; then
  # playwright-core drives Debian's chromium (tests/integration/test_chromium.py).
  # It is the core package only: it never downloads a browser of its own.
  browser="$root/tests/browser"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1 ||
     [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "setup: node >= 20 with npm is required for the browser test (playwright-core)" >&2
    exit 1
  fi
  if ! cmp -s "$browser/package-lock.json" "$browser/node_modules/.package-lock.json.setup"; then
    echo "setup: installing playwright-core into $browser/node_modules"
    (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
    cp "$browser/package-lock.json" "$browser/node_modules/.package-lock.json.setup"
  fi
fi

if [ "$what" = test ]; then
  # Bun for the Bun package's tests (bindings/bun); the npm package ships
  # the binary, pinned by the committed lock file.
  pkg="$root/bindings/bun"
  if ! cmp -s "$pkg/package-lock.json" "$pkg/node_modules/.package-lock.json.setup"; then
    echo "setup: installing bun into $pkg/node_modules"
    (cd "$pkg" && npm ci --no-audit --no-fund --silent)
    cp "$pkg/package-lock.json" "$pkg/node_modules/.package-lock.json.setup"
  fi
fi

if [ "$what" = bench ]; then
  # Bun's own HTTP/3 server is a reference peer; the npm package ships the binary.
  bun_dir="$root/bench/bun"
  if ! node_ok; then
    echo "setup: node >= 20 with npm is required to install Bun for the benchmark" >&2
    exit 1
  fi
  if ! cmp -s "$bun_dir/package-lock.json" "$bun_dir/node_modules/.package-lock.json.setup"; then
    echo "setup: installing bun into $bun_dir/node_modules"
    (cd "$bun_dir" && npm ci --no-audit --no-fund --silent)
    cp "$bun_dir/package-lock.json" "$bun_dir/node_modules/.package-lock.json.setup"
  fi
fi
