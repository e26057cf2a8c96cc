#!/usr/bin/env bash
# Writes .wrangler.local.toml: wrangler.toml without its [build] tables, for running an
# already-built Worker locally (wrangler 4.86 would run the build twice at start-up).
set -euo pipefail
cd "$(dirname "$0")/.."
awk '/^\[(env\.[a-z]+\.)?build\]/{skip=1; next} /^\[/{skip=0} !skip' wrangler.toml > .wrangler.local.toml
