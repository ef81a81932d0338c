#!/usr/bin/env bash
# Prepares deps/quiche/patched/quiche: quiche's published crate (the version
# and checksum pinned below, the same as Cargo.lock's) with h3q's patches
# from deps/quiche/patches/*.patch applied in name order. Cargo.toml points
# [patch.crates-io] there. The crate comes from cargo's download cache when
# it is there, otherwise from crates.io; the checksum is checked either way.
# Reruns only when the crate or a patch changed (a stamp of their hashes).
set -euo pipefail
version=0.30.0
sha256=52b35a721a2a56797347929745fa783fc99e680d9484b80324ce40106b75493a
crate="$(cd "$(dirname "$0")/../deps/quiche" && pwd)"
out="$crate/patched"
dest="$out/quiche"

shopt -s nullglob
patches=("$crate"/patches/*.patch)
stamp=$( (echo "$version $sha256"; for p in "${patches[@]}"; do sha256sum "$p"; done) | sha256sum | cut -d' ' -f1)
if [[ -f "$dest/.h3q-stamp" && "$(cat "$dest/.h3q-stamp")" == "$stamp" ]]; then
  exit 0
fi

mkdir -p "$out"
archive="$out/quiche-$version.crate"
if [[ ! -f "$archive" ]] || ! echo "$sha256  $archive" | sha256sum -c --status; then
  cached=("${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/quiche-$version.crate)
  if ((${#cached[@]})) && echo "$sha256  ${cached[0]}" | sha256sum -c --status; then
    cp "${cached[0]}" "$archive.tmp"
  else
    curl -fsSL --retry 3 -o "$archive.tmp" "https://static.crates.io/crates/quiche/quiche-$version.crate"
  fi
  if ! echo "$sha256  $archive.tmp" | sha256sum -c --status; then
    echo "quiche-source: quiche-$version.crate does not match its pinned checksum" >&2
    rm -f "$archive.tmp"
    exit 1
  fi
  mv "$archive.tmp" "$archive"
fi

rm -rf "$dest" "$dest.tmp"
mkdir -p "$dest.tmp"
tar -xzf "$archive" -C "$dest.tmp" --strip-components=1
for p in "${patches[@]}"; do
  echo "quiche-source: applying $(basename "$p")"
  patch -d "$dest.tmp" -p1 --forward --batch --quiet <"$p"
done
echo "$stamp" >"$dest.tmp/.h3q-stamp"
mv "$dest.tmp" "$dest"
