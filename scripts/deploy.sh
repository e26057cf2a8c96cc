#!/usr/bin/env bash
# `make deploy`: deploys edge-otp to your Cloudflare account from wrangler.toml, in one go and
# idempotently. Checks the prerequisites (Rust, Node 20, the wasm32 target and the pinned tools,
# through scripts/setup.sh --build; a wrangler login or CLOUDFLARE_API_TOKEN), puts the secrets
# the Worker needs, generating OTP_PEPPER, COOKIE_KEY, an API token per instance (API_TOKENS
# holds its SHA-256), the ES256 key that signs verification tokens (TOKEN_SIGNING_KEYS) and each
# instance's generated credentials (INSTANCE_SECRETS), then runs `wrangler deploy` (which builds
# the release Worker and, on the first deploy, creates the KV namespace) and prints the webhook
# URLs for Meta and Twilio and what the backend gets. A secret already set is never replaced
# unless --rotate names it. The logic is in scripts/deploy.mjs; docs/deploy.md tells the story.
#
# Usage: scripts/deploy.sh [--dry-run [--outdir DIR]] [--rotate NAME[,NAME...]]
#                          [--add-signing-key KID] [--config FILE] [--no-setup]
#   --dry-run   no network: builds and runs `wrangler deploy --dry-run` (nothing is uploaded)
#   --rotate    replace these secrets: OTP_PEPPER (voids open codes), COOKIE_KEY (signs every
#               middleware visitor out), API_TOKENS (a new token per instance; the old ones stop
#               working), INSTANCE_SECRETS (renews the generated fields, keeps your provider
#               credentials), TOKEN_SIGNING_KEYS (new keys under the same kids)
#   --add-signing-key KID  publish a new ES256 key before any instance signs with it (the first
#               step of a rotation with two keys live: docs/configuration.md)
#   --config    another wrangler configuration file (default wrangler.toml)
#   --no-setup  skip scripts/setup.sh --build (the tools are known to be installed)
# Environment: WRANGLER (the wrangler to run, default node_modules/.bin/wrangler),
# DEPLOY_STATE_DIR (where the state file goes, default .deploy/).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export PATH="$HOME/.cargo/bin:$(pwd)/node_modules/.bin:$PATH"
# Nothing but the deploy itself leaves the machine: no usage metrics.
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true

setup=1
for arg in "$@"; do
  [ "$arg" = --no-setup ] && setup=0
done
if [ "$setup" = 1 ]; then
  bash scripts/setup.sh --build
else
  command -v node >/dev/null || die "missing: Node.js 20 or newer"
fi
exec node scripts/deploy.mjs "$@"
