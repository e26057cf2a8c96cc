#!/usr/bin/env bash
# Installs what edge-otp needs on a Debian machine with Rust (rustup) and Node 20, idempotently
# (each step is skipped when already at the right version):
#   --build   building and running the Worker (`make dev`, `make deploy`): the wasm32 target,
#             pinned cargo tools (worker-build, wasm-bindgen-cli, wasm-pack), the npm packages
#             in package.json (wrangler, binaryen, test libraries). No root, no apt.
#   --no-apt  that, plus what the tests need besides Debian packages: rustfmt and clippy, the
#             token-check examples (PyJWT in .venv-examples, which needs python3-venv; the Rust
#             one built).
#   (none)    that, plus Debian's chromium, chromedriver and wrk for the browser tests and
#             benchmarks (`make test`, `make bench`): apt-get, as root.
# A missing prerequisite stops it before anything is installed, with one line naming each.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130
WASM_PACK_VERSION=0.15.1
NODE_MAJOR=20

mode=full
case "${1:-}" in
  --build) mode=build ;;
  --no-apt) mode=no-apt ;;
  "") ;;
  *) die "usage: $0 [--build|--no-apt]" ;;
esac

log() { printf '[setup] %s\n' "$*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

# Prerequisites first, all of them, so a fresh machine learns everything it lacks at once.
missing=()
if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
  missing+=("Rust (cargo and rustup; install it with rustup, then open a new shell)")
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=("Node.js $NODE_MAJOR or newer with npm")
else
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$node_major" -ge "$NODE_MAJOR" ] || missing+=("Node.js $NODE_MAJOR or newer (found $(node --version))")
fi
if [ "$mode" != build ] && ! .venv-examples/bin/python -c 'import jwt' 2>/dev/null; then
  if ! command -v python3 >/dev/null; then
    missing+=("python3 with venv (Debian: python3-venv)")
  elif ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=("python3-venv (Debian: apt-get install python3-venv)")
  fi
fi
apt_packages=()
if [ "$mode" = full ]; then
  command -v chromium >/dev/null || apt_packages+=(chromium)
  command -v chromedriver >/dev/null || apt_packages+=(chromium-driver)
  command -v wrk >/dev/null || apt_packages+=(wrk)
  if [ ${#apt_packages[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
      missing+=("${apt_packages[*]} (for the browser tests and benchmarks; no apt-get here: install them yourself)")
    elif [ "$(id -u)" -ne 0 ]; then
      missing+=("root for apt-get install ${apt_packages[*]} (browser tests and benchmarks only: run as root, install them yourself, or use --no-apt)")
    fi
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  line=$(printf '%s; ' "${missing[@]}")
  die "missing: ${line%; }"
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

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

if [ "$mode" = build ]; then
  log "ready to build"
  exit 0
fi

for comp in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$comp" || rustup component add "$comp"
done

# The token-check examples (examples/verify-token, run by tests/e2e/verify-examples.test.mjs):
# PyJWT in a project-local venv, and the Rust example built once (its own lock file and target
# dir; cargo makes this a no-op when nothing changed).
# PyJWT checks ES256 tokens with `cryptography`: both are pinned there, and both are checked here.
PYJWT_VERSION=$(sed -n 's/^PyJWT==//p' examples/verify-token/python/requirements.txt)
CRYPTOGRAPHY_VERSION=$(sed -n 's/^cryptography==//p' examples/verify-token/python/requirements.txt)
if ! .venv-examples/bin/python -c "import jwt, cryptography, sys; sys.exit(jwt.__version__ != '$PYJWT_VERSION' or cryptography.__version__ != '$CRYPTOGRAPHY_VERSION')" 2>/dev/null; then
  log "PyJWT $PYJWT_VERSION and cryptography $CRYPTOGRAPHY_VERSION into .venv-examples"
  python3 -m venv .venv-examples
  .venv-examples/bin/pip install --quiet --disable-pip-version-check -r examples/verify-token/python/requirements.txt
fi
cargo build --quiet --release --locked --manifest-path examples/verify-token/rust/Cargo.toml

if [ ${#apt_packages[@]} -gt 0 ]; then
  log "apt-get install ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi
log "ready"
