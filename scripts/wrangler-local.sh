#!/usr/bin/env bash
# Writes wrangler.toml without its [build] tables, for running an already-built Worker locally
# (wrangler 4.86 would run the build twice at start-up), and without its [secrets] tables (the
# deploy's list of required secrets: locally it would warn on every start that the feature is
# experimental, and restrict what .dev.vars may set). Usage: scripts/wrangler-local.sh [OUT]
# (default .wrangler.local.toml, next to wrangler.toml so relative paths hold). The file is
# replaced atomically and only when its content changes, so a running `wrangler dev` that
# watches it never reads half a file.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.wrangler.local.toml}
tmp=$(mktemp "$out.XXXXXX")
awk '/^\[(env\.[a-z]+\.)?(build|secrets)\]/{skip=1; next} /^\[/{skip=0} !skip' wrangler.toml > "$tmp"
if cmp -s "$tmp" "$out" 2>/dev/null; then rm -f "$tmp"; else mv -f "$tmp" "$out"; fi
