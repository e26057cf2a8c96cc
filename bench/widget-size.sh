#!/usr/bin/env bash
# Prints the browser widget's size as a markdown table: each file a page downloads
# (www/widget/: the loader, the JS glue, the Wasm) with raw and gzip -9 bytes, and the total
# against the 60 KB gzip budget. Builds the widget first unless WIDGET_NO_BUILD=1.
# Needs what scripts/setup.sh installs (see scripts/build-widget.sh) and gzip.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=$((60 * 1024))
[ "${WIDGET_NO_BUILD:-}" = 1 ] || bash scripts/build-widget.sh >&2

echo "| widget file | raw bytes | gzip bytes |"
echo "| --- | ---: | ---: |"
raw_total=0 gz_total=0
for f in edge-otp.js edge_otp_widget.js edge_otp_widget_bg.wasm; do
  raw=$(stat -c %s "www/widget/$f")
  gz=$(gzip -9c "www/widget/$f" | wc -c)
  raw_total=$((raw_total + raw)) gz_total=$((gz_total + gz))
  echo "| $f | $raw | $gz |"
done
verdict=$([ "$gz_total" -le "$budget" ] && echo "within" || echo "OVER")
echo "| **total** | $raw_total | **$gz_total** ($((gz_total * 100 / budget))% of the 60 KB budget: $verdict) |"
