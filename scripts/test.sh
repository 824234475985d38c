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

step "cargo test (unit, integration, end-to-end)"
cargo test --workspace --all-targets

step "doc tests"
cargo test --workspace --doc

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "benches compile"
cargo bench --workspace --no-run

echo
echo "all checks passed"
