#!/usr/bin/env bash
# Builds deps/quiche (quiche + h3q shim) into one static archive and puts
# quiche's own quiche.h next to it. quiche is the published crate with
# h3q's patches applied (scripts/quiche-source.sh). Uses the committed Cargo.lock (--locked).
set -euo pipefail
crate="$(cd "$(dirname "$0")/../deps/quiche" && pwd)"
"$(dirname "$0")/quiche-source.sh"
cd "$crate"
cargo build --release --locked
manifest=$(cargo metadata --format-version 1 --locked |
  python3 -c 'import json,sys; m=json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"]=="quiche"))')
mkdir -p target/include
cp "$(dirname "$manifest")/include/quiche.h" target/include/quiche.h.tmp
mv target/include/quiche.h.tmp target/include/quiche.h
touch target/release/libh3q_quiche.a
