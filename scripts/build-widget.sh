#!/usr/bin/env bash
# Builds the browser widget (crates/otp-widget) with `wasm-pack build --target web --release`
# into pkg/ (its npm package: Wasm, JS glue, TypeScript types, plus the edge-otp.js loader as
# the package's entry), then copies what a browser loads into www/widget/, where the Worker
# serves it as static assets at /widget/edge-otp.js.
# Needs what scripts/setup.sh installs: wasm-pack, wasm-bindgen (=0.2.130) and node_modules
# (binaryen's wasm-opt, which must come first on PATH: Debian's is too old).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"

wasm-pack build crates/otp-widget --target web --release --out-dir ../../pkg \
  --out-name edge_otp_widget  # relative: binaryen's wasm-opt (Node) fails on some absolute paths

cp crates/otp-widget/js/edge-otp.js crates/otp-widget/js/edge-otp.d.ts pkg/
# package.json: the loader is the entry (it registers <edge-otp> and exports mount).
node -e '
  const fs = require("fs");
  const crate = fs.readFileSync("crates/otp-widget/Cargo.toml", "utf8");
  const version = /^version = "(.*)"/m.exec(crate)[1];
  const pkg = {
    name: "edge-otp-widget",
    version,
    description: "Phone verification widget: one-time code or WhatsApp link, in one element",
    license: "Apache-2.0",
    type: "module",
    main: "edge-otp.js",
    module: "edge-otp.js",
    types: "edge-otp.d.ts",
    files: ["edge-otp.js", "edge-otp.d.ts", "edge_otp_widget.js", "edge_otp_widget.d.ts",
            "edge_otp_widget_bg.wasm", "edge_otp_widget_bg.wasm.d.ts"],
    sideEffects: ["./edge-otp.js", "./snippets/*"],
    keywords: ["otp", "phone-verification", "whatsapp", "webotp", "custom-element"],
  };
  fs.writeFileSync("pkg/package.json", JSON.stringify(pkg, null, 2) + "\n");
'

mkdir -p www/widget
cp pkg/edge-otp.js pkg/edge_otp_widget.js pkg/edge_otp_widget_bg.wasm www/widget/
