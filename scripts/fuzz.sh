#!/usr/bin/env bash
# Runs every fuzzer a fuzz build made, one after the other, each for a
# fixed time on a working copy of its seed corpus.
#   scripts/fuzz.sh BUILD_DIR SECONDS [NAME...]
# BUILD_DIR is a build configured with -DH3Q_FUZZ=ON; NAMEs (e.g. "router")
# pick fuzzers, default all of BUILD_DIR/fuzz-targets.txt. The working
# corpus BUILD_DIR/fuzz/corpus/NAME keeps what earlier runs found; logs go
# to BUILD_DIR/fuzz/logs, crashing inputs to BUILD_DIR/fuzz/artifacts/NAME.
# Exits non-zero when any fuzzer finds a crash, leak, timeout or broken
# invariant.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:?usage: fuzz.sh BUILD_DIR SECONDS [NAME...]}"
seconds="${2:?usage: fuzz.sh BUILD_DIR SECONDS [NAME...]}"
shift 2
build="$(cd "$build" && pwd)"
seeds="$root/tests/fuzz"
work="$build/fuzz"

if [ $# -gt 0 ]; then
  names=("$@")
else
  mapfile -t names < <(grep -v '^$' "$build/fuzz-targets.txt")
fi
if [ ${#names[@]} -eq 0 ]; then
  echo "fuzz: no fuzzers in $build" >&2
  exit 1
fi

# Sets children_cpu to the CPU seconds (user + system) used by this
# script's finished children, from the shell's `times` (its second line).
# `times` must run in this shell, not in a $(...) subshell: into a file.
cpu_file="$(mktemp)"
trap 'rm -f "$cpu_file"' EXIT
read_children_cpu() {
  times >"$cpu_file"
  children_cpu=$(tail -n1 "$cpu_file" | awk '{ s = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] }
    printf "%.0f", s }')
}

failed=()
total_cpu=0
for name in "${names[@]}"; do
  bin="$build/fuzz_$name"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is missing (not built in this tree?)" >&2
    failed+=("$name")
    continue
  fi
  corpus="$work/corpus/$name"
  artifacts="$work/artifacts/$name"
  log="$work/logs/$name.log"
  mkdir -p "$corpus" "$artifacts" "$work/logs"
  cp -n "$seeds/corpus/$name"/* "$corpus"/ 2>/dev/null || true
  args=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  [ -f "$seeds/$name.dict" ] && args+=(-dict="$seeds/$name.dict")
  # Extra libFuzzer flags for one fuzzer, e.g. a tighter malloc limit.
  if [ -f "$seeds/$name.options" ]; then
    read -r -a extra < "$seeds/$name.options"
    args+=("${extra[@]}")
  fi
  printf 'fuzz: %-16s %ss ... ' "$name" "$seconds"
  read_children_cpu
  cpu_before=$children_cpu
  if "$bin" "${args[@]}" "$corpus" >"$log" 2>&1; then
    read_children_cpu
    cpu=$((children_cpu - cpu_before))
    total_cpu=$((total_cpu + cpu))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)
    echo "ok (${runs:-?} runs, ${cpu} CPU s, coverage ${cov:-?}, corpus $(ls "$corpus" | wc -l))"
  else
    echo "FAILED"
    failed+=("$name")
    grep -E 'ERROR|runtime error|invariant broken|SUMMARY|Test unit written' "$log" | head -n 20 || true
    echo "fuzz: full log: $log"
  fi
done

echo "fuzz: ${total_cpu} CPU seconds in the fuzzers that finished cleanly"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in: ${failed[*]} (reproduce: BUILD/fuzz_NAME ARTIFACT)" >&2
  exit 1
fi
