#!/usr/bin/env bash
# Installs what building and testing edge-otp needs on a fresh Debian machine with Rust and
# Node 20, idempotently: the wasm32 target, pinned cargo tools (worker-build, wasm-bindgen-cli,
# wasm-pack), the npm packages in package.json (wrangler, binaryen, test libraries), the
# token-check examples (PyJWT in .venv-examples, the Rust one built) and, for browser tests and
# benchmarks, Debian's chromium, chromedriver and wrk.
# Usage: scripts/setup.sh [--no-apt]   (each step is skipped when already at the right version)
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130
WASM_PACK_VERSION=0.15.1

log() { printf '[setup] %s\n' "$*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
for comp in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$comp" || rustup component add "$comp"
done

# cargo_tool BIN VERSION CRATE [extra args]: installs CRATE@VERSION unless BIN --version says it.
cargo_tool() {
  local bin=$1 version=$2 crate=$3; shift 3
  if command -v "$bin" >/dev/null && "$bin" --version 2>/dev/null | grep -q "$version"; then
    return 0
  fi
  log "cargo install $crate $version"
  cargo install "$crate" --version "$version" "$@"
}
# wasm-bindgen-cli is installed without --locked: its lock file names a crate version the
# registry lacks.
cargo_tool wasm-bindgen "$WASM_BINDGEN_VERSION" wasm-bindgen-cli
cargo_tool worker-build "$WORKER_BUILD_VERSION" worker-build --locked
cargo_tool wasm-pack "$WASM_PACK_VERSION" wasm-pack --locked

if [ ! -x node_modules/.bin/wrangler ] || ! cmp -s package-lock.json node_modules/.package-lock.json.stamp 2>/dev/null; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.package-lock.json.stamp
fi

# The token-check examples (examples/verify-token, run by tests/e2e/verify-examples.test.mjs):
# PyJWT in a project-local venv, and the Rust example built once (its own lock file and target
# dir; cargo makes this a no-op when nothing changed).
PYJWT_VERSION=$(sed -n 's/^PyJWT==//p' examples/verify-token/python/requirements.txt)
if ! .venv-examples/bin/python -c "import jwt, sys; sys.exit(jwt.__version__ != '$PYJWT_VERSION')" 2>/dev/null; then
  log "PyJWT $PYJWT_VERSION into .venv-examples"
  python3 -m venv .venv-examples
  .venv-examples/bin/pip install --quiet --disable-pip-version-check -r examples/verify-token/python/requirements.txt
fi
cargo build --quiet --release --locked --manifest-path examples/verify-token/rust/Cargo.toml

if [ "${1:-}" != "--no-apt" ]; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  command -v wrk >/dev/null || missing+=(wrk)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi
log "ready"
