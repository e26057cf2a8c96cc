#!/usr/bin/env bash
# Prints a new random API token for an instance, its SHA-256 (what the API_TOKENS secret
# stores) and the JSON entry to put in that secret. Usage: scripts/new-token.sh <instance-uuid>
# (`make deploy` makes one per instance by itself: docs/deploy.md.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
instance=${1:?usage: $0 <instance-uuid>}
token="eotp_$(rand_hex 32)"
hash=$(printf %s "$token" | sha256_hex)
echo "token (give it to the site's backend, keep it secret): $token"
echo "sha256: $hash"
echo "API_TOKENS entry: {\"$instance\": [\"$hash\"]}"
