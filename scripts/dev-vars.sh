#!/usr/bin/env bash
# Creates .dev.vars (local secrets for `wrangler dev`) with fresh random values, once: a
# pepper, a dev API token for the demo instance, the table of token hashes and the edge
# middleware's cookie key. Never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
rand() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# Regenerated when an older file lacks a secret a newer build needs; the edge middleware's
# COOKIE_KEY is added to an existing file, keeping its other secrets.
if [ -f .dev.vars ] && grep -q "^DEV_WHATOTP_KEY=" .dev.vars; then
  if ! grep -q "^COOKIE_KEY=" .dev.vars; then
    echo "COOKIE_KEY=$(rand 32)" >> .dev.vars
    echo "[dev] added COOKIE_KEY to .dev.vars" >&2
  fi
  exit 0
fi
demo=$(awk '/^\[\[env.dev.vars.INSTANCES\]\]/{f=1} f && /^id *=/{gsub(/[" ]/,"",$0); sub(/^id=/,"",$0); print; exit}' wrangler.toml)
pepper=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
token="dev_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
whatotp_key="sk_test_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
whatotp_hash=$(printf %s "$whatotp_key" | sha256sum | cut -d' ' -f1)
app_secret=$(rand 16)
verify_token=$(rand 12)
whsec="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
token_key=$(rand 32)
umask 077
cat > .dev.vars <<VARS
# Local secrets for wrangler dev, made by scripts/dev-vars.sh. Delete this file for new ones.
OTP_PEPPER=$pepper
DEV_API_TOKEN=$token
DEV_WHATOTP_KEY=$whatotp_key
COOKIE_KEY=$(rand 32)
API_TOKENS='{"$demo":["$hash","$whatotp_hash"]}'
INSTANCE_SECRETS='{"$demo":{"whatsapp_app_secret":"$app_secret","whatsapp_verify_token":"$verify_token","webhook_secret":"$whsec","token_keys":{"k1":"$token_key"}}}'
VARS
echo "[dev] created .dev.vars for instance $demo" >&2
