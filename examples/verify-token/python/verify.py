"""Checks an edge-otp verification token the way a site's backend would, with PyJWT.

    python verify.py <token> <jwks-url> <audience> <issuer>   (or env TOKEN, JWKS_URL, AUDIENCE, ISSUER)

<jwks-url> is the service's public key set, <issuer>/.well-known/jwks.json; <audience> is the
instance id; <issuer> the service's public URL (the token's `iss`). Prints the verified phone
(+...) and exits 0, or prints the library's error and exits 1. Needs PyJWT with `cryptography`
(requirements.txt).
"""

import os
import sys

import jwt


def service_keys(jwks_url):
    """The service's public keys: fetched on first use and cached; a token naming a `kid` the
    cache lacks (a key rotation) fetches them again. Make it once per process."""
    return jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=600)


def verify_phone_token(token, keys, audience, issuer):
    """Verifies `token`: ES256 only, signed by the key of `keys` its `kid` names, for `audience`
    (the instance id), from `issuer`, not expired. Returns (phone, jti); remember jti until the
    token's exp and refuse it a second time."""
    # The header's kid is read unverified only to choose the key; decode() then checks it all.
    signing_key = keys.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["ES256"],  # never let the token choose
        audience=audience,
        issuer=issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    return claims["sub"], claims["jti"]


def main(argv):
    names = ["TOKEN", "JWKS_URL", "AUDIENCE", "ISSUER"]
    token, jwks_url, audience, issuer = (
        argv[i] if i < len(argv) else os.environ.get(n) for i, n in enumerate(names)
    )
    if not (token and jwks_url and audience and issuer):
        print("usage: python verify.py <token> <jwks-url> <audience> <issuer>", file=sys.stderr)
        return 2
    try:
        phone, _jti = verify_phone_token(token.strip(), service_keys(jwks_url), audience, issuer)
    except jwt.PyJWTError as e:
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(phone)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
