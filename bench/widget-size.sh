#!/usr/bin/env bash
# Prints the browser widget's size as a markdown table: each file a page downloads from
# www/widget/v<version>/ (edge-otp.js: the loader and wasm-bindgen's glue in one minified
# module; the Wasm) with raw and gzip -9 bytes, and the total against the 60 KB gzip budget.
# The moving /widget/edge-otp.js is a one-line re-export, listed apart. Builds the widget first
# unless WIDGET_NO_BUILD=1. Needs what scripts/setup.sh installs (see scripts/build-widget.sh)
# and gzip.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=$((60 * 1024))
[ "${WIDGET_NO_BUILD:-}" = 1 ] || bash scripts/build-widget.sh >&2
version=$(sed -n 's/^version = "\(.*\)"/\1/p' crates/otp-widget/Cargo.toml | head -1)
dir=www/widget/v$version

echo "| widget file (v$version) | raw bytes | gzip bytes |"
echo "| --- | ---: | ---: |"
raw_total=0 gz_total=0
for f in edge-otp.js edge_otp_widget_bg.wasm; do
  raw=$(stat -c %s "$dir/$f")
  gz=$(gzip -9c "$dir/$f" | wc -c)
  raw_total=$((raw_total + raw)) gz_total=$((gz_total + gz))
  echo "| $f | $raw | $gz |"
done
verdict=$([ "$gz_total" -le "$budget" ] && echo "within" || echo "OVER")
echo "| **total** | $raw_total | **$gz_total** ($((gz_total * 100 / budget))% of the 60 KB budget: $verdict) |"
echo "| (/widget/edge-otp.js, the moving re-export) | $(stat -c %s www/widget/edge-otp.js) | $(gzip -9c www/widget/edge-otp.js | wc -c) |"
