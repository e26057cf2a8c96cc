#!/usr/bin/env bash
# `make dev`: builds the dev Worker and runs it with its demo page on http://127.0.0.1:$PORT
# (default 8787) under wrangler dev, state persisted in .wrangler/state. Stays in the
# foreground until stopped; prints the demo instance id and dev API token once ready. Beside it
# run, stopped with it: the demo site's origin behind the edge middleware
# (scripts/dev-origin.mjs on 127.0.0.1:$ORIGIN_PORT, default 8788), and "another site" that
# embeds the widget from the service's origin under a strict CSP (scripts/another-site.mjs on
# 127.0.0.1:$SITE_PORT, default 8789; listed in the demo instance's allowed_origins).
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT=${PORT:-8787}
export ORIGIN_PORT=${ORIGIN_PORT:-8788}
export SITE_PORT=${SITE_PORT:-8789}
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true
bash scripts/setup.sh
bash scripts/dev-vars.sh
bash scripts/build.sh dev
bash scripts/wrangler-local.sh
node scripts/dev-origin.mjs &
origin_pid=$!
# The service lives under /_otp while [env.dev] turns the edge middleware on.
SERVICE_URL="http://127.0.0.1:$PORT/_otp" node scripts/another-site.mjs &
site_pid=$!
trap 'kill "$origin_pid" "$site_pid" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
(
  for _ in $(seq 1 120); do
    # The service lives under /_otp while [env.dev] turns the edge middleware on.
    if info=$(curl -fsS "http://127.0.0.1:$PORT/_otp/dev/info" 2>/dev/null) ||
      info=$(curl -fsS "http://127.0.0.1:$PORT/dev/info" 2>/dev/null); then
      echo
      echo "edge-otp is running on http://127.0.0.1:$PORT"
      echo "protected demo site: http://127.0.0.1:$PORT/members (origin on 127.0.0.1:$ORIGIN_PORT)"
      echo "another site embedding the widget: http://127.0.0.1:$SITE_PORT"
      echo "dev info: $info"
      exit 0
    fi
    sleep 0.5
  done
  echo "edge-otp did not answer on port $PORT" >&2
) &
node_modules/.bin/wrangler dev -c .wrangler.local.toml --env dev --ip 127.0.0.1 \
  --port "$PORT" --persist-to .wrangler/state --log-level warn --show-interactive-dev-session=false
