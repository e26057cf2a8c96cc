#!/usr/bin/env bash
# `make soak`: a few minutes of mixed traffic with faults against the dev Worker on 127.0.0.1
# (code and link flows, the widget, oversized and malformed bodies, slow and silent callback
# receivers, a restart of workerd halfway), then one table. Not part of `make test`. Builds the
# dev Worker, then runs scripts/soak.mjs (which says what it checks). Needs Node 20 and what
# scripts/setup.sh installs. Settings: SOAK_SECONDS (default 180), SOAK_CONCURRENCY (default 6),
# SOAK_CALLBACK_WAIT (default 90). Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true
export PATH="$HOME/.cargo/bin:$root/node_modules/.bin:$PATH"
source scripts/lib.sh

bash scripts/setup.sh --build >&2
bash scripts/build.sh dev >&2

# scripts/soak.mjs in its own process group, so that whatever it spawns (workerd) is stopped
# with it even if it dies without cleaning up.
status=0
in_own_group node scripts/soak.mjs || status=$?
exit "$status"
