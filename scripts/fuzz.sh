#!/usr/bin/env bash
# `make fuzz`: property-based fuzzing of every operation in docs/openapi.yaml against the dev
# Worker on 127.0.0.1, with schemathesis. Not part of `make test` (about 10 minutes on 2 cores).
# Installs schemathesis (a pinned version, from the Python package index) into .venv-fuzz once,
# builds the dev Worker, then scripts/fuzz.mjs starts the Worker and the fake providers, runs
# schemathesis and prints the table. Needs python3 with venv (Debian: python3-venv), Node 20 and
# what scripts/setup.sh installs. Settings: see scripts/fuzz.mjs (FUZZ_EXAMPLES, FUZZ_WORKERS,
# FUZZ_SEED, FUZZ_MIN_REQUESTS, FUZZ_TIME_LIMIT). Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/lib.sh
log() { printf '[fuzz] %s\n' "$*" >&2; }

SCHEMATHESIS_VERSION=4.32.5
venv=.venv-fuzz

export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true
export PATH="$HOME/.cargo/bin:$root/node_modules/.bin:$PATH"

if [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ]; then
  command -v python3 >/dev/null || die "python3 is missing: install Python 3.9 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)"
  if [ ! -x "$venv/bin/pip" ]; then
    # Debian's python3 without python3-venv has the venv module but cannot put pip in one.
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      die "python3-venv is missing: install it (Debian/Ubuntu: apt-get install python3-venv), then run make fuzz again"
    fi
  fi
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

bash scripts/setup.sh --build >&2
bash scripts/build.sh dev >&2

# scripts/fuzz.mjs in its own process group, so that whatever it spawns (workerd,
# schemathesis) is stopped with it even if it dies without cleaning up.
status=0
in_own_group node scripts/fuzz.mjs || status=$?
exit "$status"
