#!/usr/bin/env bash
# `make test`: every test, in tiers. Installs what it needs first (scripts/setup.sh).
#   1. cargo fmt --check, cargo clippy -D warnings (deploy and dev features), cargo test
#   2. wasm-pack test --node: otp-core's tests compiled to Wasm; --headless --chrome: the
#      widget's DOM behaviour in Debian's chromium (chromedriver on PATH)
#   3. end to end: the release and dev Workers built, then Node's test runner against them on
#      workerd (wrangler's unstable_startWorker, 127.0.0.1, real KV and Durable Objects)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$(pwd)/node_modules/.bin:$PATH"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true

step() { printf '\n== %s\n' "$*"; }

step setup
bash scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --features dev -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "wasm-pack test --node (otp-core)"
wasm-pack test --node crates/otp-core

step "wasm-pack test --headless --chrome (widget DOM)"
wasm-pack test --headless --chrome crates/otp-widget

step "build the release and dev Workers"
bash scripts/build.sh release
bash scripts/build.sh dev

step "fake provider self-tests"
node --test tests/support/selftest/

step "end-to-end tests"
node --test --test-concurrency=1 tests/e2e/
