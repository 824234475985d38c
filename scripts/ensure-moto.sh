#!/usr/bin/env bash
# Ensure a moto server (PyPI `moto[server]` 5.x) is installed in <repo>/.venv.
#
# Idempotent: does nothing when .venv/bin/moto_server already exists.
# Quiet on success; prints the absolute path of moto_server on stdout.
# Needs only python3 (with the venv module) and network access to PyPI.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
moto="$venv/bin/moto_server"

if [[ ! -x "$moto" ]]; then
  python="${PYTHON:-python3}"
  if ! command -v "$python" >/dev/null 2>&1; then
    echo "ensure-moto: $python not found; install python3 (with venv and pip)" >&2
    exit 1
  fi
  log="$(mktemp "${TMPDIR:-/tmp}/ensure-moto.XXXXXX.log")"
  trap 'rm -f "$log"' EXIT
  if [[ ! -x "$venv/bin/python" ]]; then
    if ! "$python" -m venv "$venv" >"$log" 2>&1; then
      # Debian/Ubuntu ship venv without ensurepip unless python3-venv is installed:
      # fall back to a pip-less venv and bootstrap pip from the system pip.
      rm -rf "$venv"
      if "$python" -m venv --without-pip "$venv" >>"$log" 2>&1 &&
        "$python" -m pip --python "$venv/bin/python" --version >>"$log" 2>&1; then
        :
      else
        cat "$log" >&2
        echo "ensure-moto: could not create $venv (install python3-venv)" >&2
        exit 1
      fi
    fi
  fi
  if [[ -x "$venv/bin/pip" ]]; then
    pip=("$venv/bin/pip")
  else
    pip=("$python" -m pip --python "$venv/bin/python")
  fi
  if ! "${pip[@]}" install --quiet --disable-pip-version-check --no-input \
    'moto[server]>=5,<6' >>"$log" 2>&1; then
    cat "$log" >&2
    echo "ensure-moto: pip install 'moto[server]>=5,<6' failed" >&2
    exit 1
  fi
  if [[ ! -x "$moto" ]]; then
    cat "$log" >&2
    echo "ensure-moto: pip succeeded but $moto is missing" >&2
    exit 1
  fi
fi

echo "$moto"
