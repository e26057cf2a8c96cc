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
