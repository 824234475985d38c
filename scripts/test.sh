#!/usr/bin/env bash
# Every test, one command. Installs what it needs (moto into .venv) itself.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if [[ -x scripts/ensure-moto.sh ]]; then
  step "ensuring moto (local S3/STS/IAM) in .venv"
  scripts/ensure-moto.sh
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "build the example binaries (the end-to-end tests run target/debug/examples/s3_reader)"
# `cargo test --examples` builds examples as test harnesses only; the e2e
# tests need the real binary.
cargo build --workspace --examples

step "cargo test (unit, integration, end-to-end; examples built)"
# Every target but the benches: `--all-targets` would *run* the harness=false
# benches (minutes of measurement). They are built below instead.
cargo test --workspace --lib --bins --tests --examples

step "doc tests"
cargo test --workspace --doc

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "benches build (run them with: cargo bench --bench <name> -- --quick)"
cargo build --workspace --benches

step "reliability report (figures printed by the fault matrix, soak, load and security tests)"
report=$(cargo test -q -p eks-pod-identity-provider --test fault_matrix --test soak --test load --test security \
  -- --nocapture --test-threads 1 2>/dev/null)
# `-q` prints progress dots before a test's own output on the same line.
printf '%s\n' "$report" |
  sed -E 's/^[.i]+//' |
  grep -E '^(fault matrix|soak|load|secret hygiene|refused hosts|redirects|proxy|body cap)' ||
  echo "(no report lines found)"
echo
echo "all checks passed"
