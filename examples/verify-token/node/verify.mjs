// Checks an edge-otp verification token the way a site's backend would, with `jose`.
//
//   node verify.mjs <token> <key> <audience> <issuer>   (or env TOKEN, TOKEN_KEY, AUDIENCE, ISSUER)
//
// <key> is the instance's token key (INSTANCE_SECRETS.<instance>.token_keys.<kid>), or the whole
// token_keys object as JSON, {"k1": "...", "k0": "..."}, to pick the key by the token's kid
// during a rotation. Prints the verified phone (+...) and exits 0, or the library's error and 1.
import { jwtVerify, errors } from 'jose';
import { fileURLToPath } from 'node:url';

/**
 * Verifies `token`: HS256 only, for `audience` (the instance id), from `issuer` (the service's
 * public URL), not expired. `key` is a string, or `{kid: key}` (token_keys) to choose by kid.
 * Returns `{phone, jti}`; remember `jti` until the token's `exp` and refuse it a second time.
 */
export async function verifyPhoneToken(token, { key, audience, issuer }) {
  const utf8 = (k) => new TextEncoder().encode(k);
  const secret = typeof key === 'string' ? utf8(key) : ({ kid }) => {
    if (!Object.hasOwn(key, kid ?? '')) throw new errors.JWKSNoMatchingKey(`unknown kid ${JSON.stringify(kid)}`);
    return utf8(key[kid]);
  };
  const { payload } = await jwtVerify(token, secret, {
    algorithms: ['HS256'], // never let the token choose
    audience,
    issuer,
    requiredClaims: ['sub', 'jti', 'iat', 'exp'],
  });
  return { phone: payload.sub, jti: payload.jti };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [token, key, audience, issuer] = ['TOKEN', 'TOKEN_KEY', 'AUDIENCE', 'ISSUER'].map(
    (name, i) => process.argv[2 + i] ?? process.env[name],
  );
  if (!token || !key || !audience || !issuer) {
    console.error('usage: node verify.mjs <token> <key> <audience> <issuer>');
    process.exit(2);
  }
  try {
    const keys = key.trimStart().startsWith('{') ? JSON.parse(key) : key;
    const { phone } = await verifyPhoneToken(token.trim(), { key: keys, audience, issuer });
    console.log(phone);
  } catch (e) {
    console.error(`refused: ${e.code ?? e.name}: ${e.message}`);
    process.exit(1);
  }
}
