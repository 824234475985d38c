#!/usr/bin/env bash
# The one full, recorded benchmark run: every bench in full mode, one at a
# time, with the machine's quietness checked before and proven by each bench
# (its QUIET line: in-process floor, CPU steal, cgroup throttling, other
# processes' CPU). Writes every RESULT and QUIET line, plus the machine and
# crate versions, to benches/results/<UTC timestamp>.txt, and each bench's
# full output next to it.
#
#   bash benches/run-all.sh            # full run (about 15 minutes once built)
#   bash benches/run-all.sh --quick    # smoke run of the same (about 4 minutes)
#   bash benches/run-all.sh memory     # only the named benches (full mode)
#
# Run it on an otherwise idle machine: no build, test or other bench at the
# same time. It refuses to start while another cargo/rustc process runs
# (override with BENCH_ALLOW_BUSY=1; the QUIET lines will then say so).
set -euo pipefail
cd "$(dirname "$0")/.."

mode_args=()
mode=full
if [[ "${1:-}" == "--quick" ]]; then
  mode_args=(--quick)
  mode=quick
  shift
fi

all=(hot_path rotation failing_agent storm memory)
benches=("${@:-${all[@]}}")
for b in "${benches[@]}"; do
  [[ " ${all[*]} " == *" $b "* ]] || { echo "unknown bench '$b' (known: ${all[*]})" >&2; exit 2; }
done

echo "== building the benches (release profile)"
cargo bench --no-run 2>&1 | tail -n 3

busy=$(ps -eo pid=,comm= | awk '$2 ~ /^(cargo|rustc|cc1|cc1plus|ld|rust-lld|clippy-driver)$/ {print $1}' | paste -sd, -)
if [[ -n "$busy" && "${BENCH_ALLOW_BUSY:-0}" != 1 ]]; then
  echo "refusing to measure: other build processes are running (pids $busy)." >&2
  echo "wait for them, or set BENCH_ALLOW_BUSY=1 to record a run flagged as not quiet." >&2
  exit 2
fi

stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
out_dir=benches/results
mkdir -p "$out_dir/$stamp"
summary="$out_dir/$stamp.txt"
{
  echo "# benchmark run $stamp ($mode): ${benches[*]}"
  echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "# cpus $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "# $(rustc --version)"
  echo "# loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
  for c in aws-config aws-sdk-s3 aws-smithy-runtime; do
    v=$(grep -A1 "^name = \"$c\"$" Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p' | head -1)
    echo "# $c $v"
  done
} > "$summary"

start=$(date +%s)
for b in "${benches[@]}"; do
  echo "== $b ($mode)"
  t0=$(date +%s)
  # `cargo bench` passes --bench to the binary; the figures go to stdout.
  cargo bench --bench "$b" -- "${mode_args[@]}" \
    > "$out_dir/$stamp/$b.out" 2> "$out_dir/$stamp/$b.err" || {
    echo "bench $b failed: see $out_dir/$stamp/$b.err" | tee -a "$summary"
  }
  t1=$(date +%s)
  echo "# $b took $((t1 - t0)) s" >> "$summary"
  grep -E '^(RESULT|QUIET) ' "$out_dir/$stamp/$b.out" | tee -a "$summary" || true
done
end=$(date +%s)
{
  echo "# loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# total $((end - start)) s"
  if grep -q 'verdict=NOT-QUIET' "$summary"; then
    echo "# VERDICT: at least one bench ran on a machine that was not quiet (see its QUIET line); do not record these figures"
  else
    echo "# VERDICT: every bench ran on a quiet machine"
  fi
} | tee -a "$summary"
echo "figures: $summary"
