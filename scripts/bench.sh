#!/usr/bin/env bash
# `make bench`: a benchmark, not a test. Builds edge-otp (release for its Wasm size, dev to
# run) and the floor Worker in bench/floor (a bare workers-rs Worker: one Durable Object round
# trip per request), then bench/run.mjs starts both on 127.0.0.1, drives them one after the
# other with wrk and the full-flow driver, and prints one table (requests/s, p50, p99 beside
# the floor, ratios against the targets) and the Wasm sizes.
# Needs what scripts/setup.sh installs (it is run first). Settings: BENCH_SECONDS (per run,
# default 8), BENCH_CONNECTIONS (default 16), BENCH_THREADS (default 2).
# Exit status: 0 once the table is printed, even if a target is missed; non-zero if something
# broke. Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
log() { printf '[bench] %s\n' "$*" >&2; }

export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true
export PATH="$HOME/.cargo/bin:$root/node_modules/.bin:$PATH"
source scripts/lib.sh

# Only the table goes to stdout: everything before it goes to stderr.
bash scripts/setup.sh >&2
for tool in wrk gzip node; do
  command -v "$tool" >/dev/null || { log "$tool is missing"; exit 1; }
done

log "building edge-otp (release, dev)"
{
  bash scripts/build.sh release
  bash scripts/build.sh dev
  bash scripts/wrangler-local.sh
} >&2

# The floor: built like scripts/build.sh builds edge-otp (worker-build with local tools), in
# its own target directory so later runs are incremental.
log "building the floor worker (bench/floor)"
(
  cd bench/floor
  export WASM_BINDGEN_BIN=${WASM_BINDGEN_BIN:-wasm-bindgen}
  export WASM_OPT_BIN=${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}
  export ESBUILD_BIN=${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}
  export CARGO_TARGET_DIR="$root/target/bench-floor"
  worker-build --release --out-dir build
) >&2

# bench/run.mjs in its own process group, so that whatever it spawns (workerd, wrk) is
# stopped with it even if it dies without cleaning up.
status=0
in_own_group node bench/run.mjs || status=$?
# The browser widget's download size (built above by scripts/build.sh), against its budget.
echo
WIDGET_NO_BUILD=1 bash bench/widget-size.sh
exit "$status"
