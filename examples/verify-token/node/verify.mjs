// Checks an edge-otp verification token the way a site's backend would, with `jose`.
//
//   node verify.mjs <token> <jwks-url> <audience> <issuer>   (or env TOKEN, JWKS_URL, AUDIENCE, ISSUER)
//
// <jwks-url> is the service's public key set, <issuer>/.well-known/jwks.json; <audience> is the
// instance id; <issuer> the service's public URL (the token's `iss`). Prints the verified phone
// (+...) and exits 0, or prints the library's error and exits 1.
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { fileURLToPath } from 'node:url';

/**
 * The service's public keys: fetched on first use, cached, and fetched again when a token names
 * a `kid` the cache lacks (a key rotation), at most every 30 s. Make it once per process.
 */
export function serviceKeys(jwksUrl) {
  return createRemoteJWKSet(new URL(jwksUrl));
}

/**
 * Verifies `token`: ES256 only, signed by a key of `keys` (the one its `kid` names), for
 * `audience` (the instance id), from `issuer`, not expired. Returns `{phone, jti}`; remember
 * `jti` until the token's `exp` and refuse it a second time.
 */
export async function verifyPhoneToken(token, { keys, audience, issuer }) {
  const { payload } = await jwtVerify(token, keys, {
    algorithms: ['ES256'], // never let the token choose
    audience,
    issuer,
    requiredClaims: ['sub', 'jti', 'iat', 'exp'],
  });
  return { phone: payload.sub, jti: payload.jti };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [token, jwksUrl, audience, issuer] = ['TOKEN', 'JWKS_URL', 'AUDIENCE', 'ISSUER'].map(
    (name, i) => process.argv[2 + i] ?? process.env[name],
  );
  if (!token || !jwksUrl || !audience || !issuer) {
    console.error('usage: node verify.mjs <token> <jwks-url> <audience> <issuer>');
    process.exit(2);
  }
  try {
    const { phone } = await verifyPhoneToken(token.trim(), { keys: serviceKeys(jwksUrl), audience, issuer });
    console.log(phone);
  } catch (e) {
    console.error(`refused: ${e.code ?? e.name}: ${e.message}`);
    process.exit(1);
  }
}
