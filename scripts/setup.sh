#!/usr/bin/env bash
# Installs what h3q's build and tests need, only when missing.
#   scripts/setup.sh build   Debian packages for building
#   scripts/setup.sh test    + test peers (ngtcp2 client/server, python venv with aioquic)
#   scripts/setup.sh fuzz    only what the libFuzzer build needs (clang, libFuzzer, cmake)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
what="${1:-build}"

build_pkgs=(build-essential cmake pkg-config libev-dev libsodium-dev clang libclang-dev
            openssl python3 python3-venv git)
test_pkgs=(ngtcp2-client ngtcp2-server clang-format libclang-rt-14-dev)
fuzz_pkgs=(build-essential cmake clang libclang-rt-14-dev)

missing=()
want=("${build_pkgs[@]}")
[ "$what" = test ] && want+=("${test_pkgs[@]}")
[ "$what" = fuzz ] && want=("${fuzz_pkgs[@]}")
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

if [ "$what" = test ]; then
  venv="$root/.venv"
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$root/tests/requirements.txt" "$venv/.requirements"; then
    echo "setup: creating $venv with the Python test peers"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tests/requirements.txt"
    cp "$root/tests/requirements.txt" "$venv/.requirements"
  fi
fi
