#!/usr/bin/env bash
# Creates .dev.vars (local secrets for `wrangler dev`) with fresh random values, once: a
# pepper, a dev API token for the demo instance, the table of token hashes, the edge
# middleware's cookie key and the ES256 key that signs verification tokens (made with node, which
# wrangler needs anyway). Never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
rand() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# TOKEN_SIGNING_KEYS: {"k1": <a fresh P-256 private JWK>} (docs/configuration.md).
signing_keys() {
  node -e "const {generateKeyPairSync: g} = require('node:crypto');
process.stdout.write(JSON.stringify({k1: g('ec', {namedCurve: 'P-256'}).privateKey.export({format: 'jwk'})}))"
}
# Regenerated when an older file lacks a secret a newer build needs; the edge middleware's
# COOKIE_KEY and the token signing keys are added to an existing file, keeping its other secrets.
if [ -f .dev.vars ] && grep -q "^DEV_WHATOTP_KEY=" .dev.vars; then
  if ! grep -q "^COOKIE_KEY=" .dev.vars; then
    echo "COOKIE_KEY=$(rand 32)" >> .dev.vars
    echo "[dev] added COOKIE_KEY to .dev.vars" >&2
  fi
  if ! grep -q "^TOKEN_SIGNING_KEYS=" .dev.vars; then
    echo "TOKEN_SIGNING_KEYS='$(signing_keys)'" >> .dev.vars
    echo "[dev] added TOKEN_SIGNING_KEYS to .dev.vars" >&2
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
umask 077
cat > .dev.vars <<VARS
# Local secrets for wrangler dev, made by scripts/dev-vars.sh. Delete this file for new ones.
OTP_PEPPER=$pepper
DEV_API_TOKEN=$token
DEV_WHATOTP_KEY=$whatotp_key
COOKIE_KEY=$(rand 32)
TOKEN_SIGNING_KEYS='$(signing_keys)'
API_TOKENS='{"$demo":["$hash","$whatotp_hash"]}'
INSTANCE_SECRETS='{"$demo":{"whatsapp_app_secret":"$app_secret","whatsapp_verify_token":"$verify_token","webhook_secret":"$whsec"}}'
VARS
echo "[dev] created .dev.vars for instance $demo" >&2
