#!/usr/bin/env bash
# Prints a new random API token for an instance, its SHA-256 (what the API_TOKENS secret
# stores) and the JSON entry to put in that secret. Usage: scripts/new-token.sh <instance-uuid>
set -euo pipefail
instance=${1:?usage: $0 <instance-uuid>}
token="eotp_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
echo "token (give it to the site's backend, keep it secret): $token"
echo "sha256: $hash"
echo "API_TOKENS entry: {\"$instance\": [\"$hash\"]}"
