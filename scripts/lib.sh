# Shell helpers shared by scripts/*.sh (sourced, not run): portable hashing and random values
# (Linux and macOS: `sha256sum` or `shasum -a 256`), and one-line failures.

# die MESSAGE: prints "[<script>] MESSAGE" on stderr and exits 1.
die() {
  printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2
  exit 1
}

# sha256_hex: the SHA-256 of stdin, as lowercase hex.
sha256_hex() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 | cut -d' ' -f1
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 -r | cut -d' ' -f1
  else
    die "missing: sha256sum, shasum or openssl (to hash a token)"
  fi
}

# rand_hex N: N random bytes as hex (2N characters).
rand_hex() {
  head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# in_own_group COMMAND...: runs COMMAND in a process group of its own, waits for it and returns
# its status; when this script exits (even on Ctrl-C), stops the whole group, so whatever it
# spawned (workerd, wrk, schemathesis) never outlives it. setsid on Linux; elsewhere (macOS has
# none) bash's job control makes the group. Stdin is closed: the command runs unattended.
in_own_group() {
  _group=
  trap '_stop_group' EXIT
  trap 'exit 130' INT TERM
  if command -v setsid >/dev/null; then
    setsid "$@" </dev/null &
  else
    set -m
    "$@" </dev/null &
    set +m
  fi
  _group=$!
  local status=0
  wait "$_group" || status=$?
  return "$status"
}

_stop_group() {
  [ -n "${_group:-}" ] || return 0
  if kill -0 "$_group" 2>/dev/null; then
    kill -TERM "$_group" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$_group" 2>/dev/null || break; sleep 0.2; done
  fi
  kill -KILL -- "-$_group" 2>/dev/null || true
}
