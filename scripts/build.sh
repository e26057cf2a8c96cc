#!/usr/bin/env bash
# Builds the Worker with worker-build into build/<flavour>/ using only local tools:
#   release  the deploy build (no `dev` feature: no /dev routes), and build/release-assets/, the
#            static assets it serves (wrangler.toml [assets]): the widget, www/_headers,
#            www/favicon.svg and www/landing.html as the page at `/`; not the demo page
#   dev      the local build with the `dev` feature (outbox inspection, /dev/info); it serves www/
#            as it is ([env.dev.assets]): the demo page at `/`
# Needs what scripts/setup.sh installs (wasm-bindgen, worker-build, node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
root=$(pwd)
export PATH="$HOME/.cargo/bin:$root/node_modules/.bin:$PATH"
# worker-build downloads its tools unless told where they are (TOOLCHAIN.md, pitfall 1).
export WASM_BINDGEN_BIN=${WASM_BINDGEN_BIN:-wasm-bindgen}
export WASM_OPT_BIN=${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}
export ESBUILD_BIN=${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}
case "$flavour" in
  release)
    worker-build --release --out-dir "build/release"
    # worker-build keeps the Wasm "name" section (about a fifth of the file): the deploy build
    # drops it and runs the size passes until they stop shrinking it (`--converge`, ~1.7 KB
    # gzip). Imports and exports are unchanged.
    "$WASM_OPT_BIN" build/release/index_bg.wasm -Oz --converge --strip-debug --strip-producers \
      --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      -o build/release/index_bg.wasm
    ;;
  dev) worker-build --release --out-dir "build/dev" --features dev ;;
  *) echo "usage: $0 release|dev" >&2; exit 2 ;;
esac
# The browser widget: pkg/ and www/widget/ (served at /widget/edge-otp.js).
bash scripts/build-widget.sh
if [ "$flavour" = release ]; then
  # What the deploy serves, listed rather than copied wholesale: a file added to www/ for the
  # demo never ships by accident (add it here when a deploy should serve it).
  rm -rf build/release-assets
  mkdir -p build/release-assets
  for f in widget _headers favicon.svg _otp; do
    if [ -e "www/$f" ]; then cp -R "www/$f" build/release-assets/; fi
  done
  cp www/landing.html build/release-assets/index.html
fi
