#!/usr/bin/env bash
# Builds a Go test peer into a build directory, only when its sources, this
# script or the Go version changed:
#   quicgo  the quic-go HTTP/3 test client (tests/interop/quicgo)
#   wtgo    the webtransport-go v0.10 client (tests/interop/wtgo)
#   quicgocases  quic-go running the interop matrix's cases (tests/interop/quicgocases)
#   scripts/build-go-peer.sh [BUILD_DIR] [PEER]  (default: build, quicgo)
# The binary is BUILD_DIR/PEERclient; its path is printed on stdout. Needs
# Go >= 1.26 (quic-go v0.65.0);
# looks for $GO, then go on PATH, then /usr/local/go/bin/go. Modules come
# from the Go module proxy (GOPROXY as configured) into the usual module
# cache (GOMODCACHE, by default under ~/go), checked against the committed
# go.sum.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(mkdir -p "${1:-$root/build}" && cd "${1:-$root/build}" && pwd)"
peer="${2:-quicgo}"
case "$peer" in
  quicgo | wtgo | quicgocases) ;;
  *) echo "build-go-peer: unknown peer '$peer' (quicgo, wtgo or quicgocases)" >&2; exit 2 ;;
esac
src="$root/tests/interop/$peer"
out="$build/${peer}client"
stamp="$build/${peer}client.stamp"
need_minor=26

# The toolchain must not switch itself to a downloaded one: what runs is
# what was found.
export GOTOOLCHAIN=local

go_minor() { "$1" env GOVERSION 2>/dev/null | sed -nE 's/^go1\.([0-9]+).*/\1/p'; }

# The first Go that is new enough, of $GO, go on PATH, /usr/local/go/bin/go.
find_go() {
  local g minor
  for g in "${GO:-}" "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
    [ -n "$g" ] && [ -x "$g" ] || continue
    minor="$(go_minor "$g")"
    if [ -n "$minor" ] && [ "$minor" -ge "$need_minor" ]; then
      echo "$g"
      return 0
    fi
    echo "build-go-peer: skipping $g ($("$g" env GOVERSION 2>/dev/null || echo unknown))" >&2
  done
  return 1
}

if ! go="$(find_go)"; then
  echo "build-go-peer: Go >= 1.$need_minor not found (quic-go v0.65.0 needs it); install it" \
       "to /usr/local/go or set GO=/path/to/go" >&2
  exit 1
fi
version="$("$go" env GOVERSION)"

# Rebuild only when something that goes into the binary changed.
want="$( (echo "$version"; cat "$0" "$src/go.mod" "$src/go.sum" "$src"/*.go) | sha256sum | cut -d' ' -f1)"
if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$out"
  exit 0
fi

echo "build-go-peer: building $out with $version" >&2
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# -mod=readonly: go.mod/go.sum are never rewritten; a missing or wrong sum fails.
(cd "$src" && GOFLAGS=-mod=readonly "$go" build -trimpath -buildvcs=false -o "$tmp" .)
mv -f "$tmp" "$out"
echo "$want" >"$stamp"
echo "$out"
