"""Checks an edge-otp verification token the way a site's backend would, with PyJWT.

    python verify.py <token> <key> <audience> <issuer>   (or env TOKEN, TOKEN_KEY, AUDIENCE, ISSUER)

<key> is the instance's token key (INSTANCE_SECRETS.<instance>.token_keys.<kid>), or the whole
token_keys object as JSON, {"k1": "...", "k0": "..."}, to pick the key by the token's kid
during a rotation. Prints the verified phone (+...) and exits 0, or the library's error and 1.
"""

import json
import os
import sys

import jwt


def verify_phone_token(token, key, audience, issuer):
    """Verifies `token`: HS256 only, for `audience` (the instance id), from `issuer` (the
    service's public URL), not expired. `key` is a str, or {kid: key} (token_keys) to choose by
    kid. Returns (phone, jti); remember jti until the token's exp and refuse it a second time."""
    if isinstance(key, dict):
        # The header is read unverified only to choose the key; decode() then checks it.
        kid = jwt.get_unverified_header(token).get("kid")
        if kid not in key:
            raise jwt.InvalidKeyError(f"unknown kid {kid!r}")
        key = key[kid]
    claims = jwt.decode(
        token,
        key,
        algorithms=["HS256"],  # never let the token choose
        audience=audience,
        issuer=issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    return claims["sub"], claims["jti"]


def main(argv):
    names = ["TOKEN", "TOKEN_KEY", "AUDIENCE", "ISSUER"]
    token, key, audience, issuer = (
        argv[i] if i < len(argv) else os.environ.get(n) for i, n in enumerate(names)
    )
    if not (token and key and audience and issuer):
        print("usage: python verify.py <token> <key> <audience> <issuer>", file=sys.stderr)
        return 2
    try:
        keys = json.loads(key) if key.lstrip().startswith("{") else key
        phone, _jti = verify_phone_token(token.strip(), keys, audience, issuer)
    except (jwt.PyJWTError, ValueError) as e:
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(phone)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
