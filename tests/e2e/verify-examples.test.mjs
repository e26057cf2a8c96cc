// The backend examples in examples/verify-token (Node with jose's createRemoteJWKSet, Python with
// PyJWT's PyJWKClient, Rust with jsonwebtoken and a JWK) against a live Worker's JWKS: the Worker
// signs a token through the widget's code flow, and each example, given only the JWKS URL, must
// accept it and print the phone; accept a token of the other published key (a rotation); and
// refuse a tampered, expired, misaddressed or unpublished-key token, an unknown kid, and any
// algorithm but ES256 (`none`, HS256 keyed with the public key, ES384, RS256).
// Needs `make setup` (scripts/setup.sh): the Python venv and the Rust example's build.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { SignJWT, importJWK } from 'jose';
import { startWorker, newRecipient, newSigningKey, ROOT, DEMO, OTHER, DEMO_PK, SHOP_ORIGIN } from '../support/worker.mjs';

const run = promisify(execFile);
const EX = path.join(ROOT, 'examples/verify-token');
const PYTHON = path.join(ROOT, '.venv-examples/bin/python');
const RUST_DIR = path.join(EX, 'rust');
const RUST_BIN = path.join(RUST_DIR, 'target/release/verify-token-example');

/** How each example is run: argv before `<token> <jwks-url> <audience> <issuer>`. */
const EXAMPLES = {
  node: [process.execPath, path.join(EX, 'node/verify.mjs')],
  python: [PYTHON, path.join(EX, 'python/verify.py')],
  rust: [RUST_BIN],
};

/** Fails with what to do when an example's runtime is missing or older than its sources. */
function checkPrerequisites() {
  const setup = 'run `make setup` (scripts/setup.sh) first';
  if (!existsSync(PYTHON)) {
    throw new Error(`the Python example's venv .venv-examples is missing: ${setup}`);
  }
  if (!existsSync(RUST_BIN)) {
    throw new Error(`the Rust example is not built (${path.relative(ROOT, RUST_BIN)}): ${setup}`);
  }
  const built = statSync(RUST_BIN).mtimeMs;
  for (const src of ['src/main.rs', 'Cargo.toml', 'Cargo.lock']) {
    if (statSync(path.join(RUST_DIR, src)).mtimeMs > built) {
      throw new Error(`the Rust example's build is older than its ${src}: ${setup}`);
    }
  }
}

/** Runs an example; resolves with its exit code, stdout and stderr (never rejects on exit 1). */
async function verifyWith(name, token, { jwks = live.jwks, aud = live.aud, iss = live.iss } = {}) {
  const [cmd, ...args] = EXAMPLES[name];
  try {
    const { stdout, stderr } = await run(cmd, [...args, token, jwks, aud, iss], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const b64url = (v) => Buffer.from(typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

let w;
let live; // { token, phone, claims, jwks, aud, iss }
/** The deploy's signing keys (private JWKs): k1 signs now, k0 is the previous one, still published. */
const signingKeys = { k0: newSigningKey(), k1: newSigningKey() };

before(async () => {
  checkPrerequisites();
  // A Worker whose key set holds two live keys (a rotation in progress).
  w = await startWorker({ signingKeys });
  const phone = `+${newRecipient()}`;
  const post = async (route, body) => {
    const res = await w.fetch(`/widget/v1/${route}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: SHOP_ORIGIN },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, `${route}: ${res.status}`);
    return res.json();
  };
  const started = await post('start', { publishable_key: DEMO_PK, phone });
  const msg = await w.nextMessage(phone);
  const code = msg.text.match(/\b([0-9]{6})\b/)?.[1];
  assert.ok(code, `no code in ${msg.text}`);
  const verified = await post('verify', { publishable_key: DEMO_PK, session: started.session, code });
  assert.equal(verified.status, 'verified');
  const claims = JSON.parse(Buffer.from(verified.token.split('.')[1], 'base64url'));
  live = { token: verified.token, phone, claims, jwks: `${w.url}/.well-known/jwks.json`, aud: DEMO, iss: w.url };
});
after(async () => {
  await w?.stop();
});

/** A token with the live claims (or `claims` over them), signed as the Worker would by `key`. */
async function signed({ claims = {}, kid = 'k1', alg = 'ES256', key } = {}) {
  return new SignJWT({ ...live.claims, jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg, typ: 'JWT', kid })
    .sign(key ?? (await importJWK(signingKeys[kid] ?? signingKeys.k1, 'ES256')));
}

/** `token`'s header and claims re-signed with HMAC-SHA256 keyed by `secret`. */
function hs256With(token, secret) {
  const input = `${b64url({ alg: 'HS256', typ: 'JWT', kid: 'k1' })}.${token.split('.')[1]}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

test('the Worker token is what the examples assume: ES256, kid k1, claims in order; the JWKS lists both live keys', async () => {
  const [h] = live.token.split('.').slice(0, 1).map((p) => JSON.parse(Buffer.from(p, 'base64url')));
  assert.deepEqual(h, { alg: 'ES256', typ: 'JWT', kid: 'k1' });
  const c = live.claims;
  assert.deepEqual(Object.keys(c), ['iss', 'sub', 'aud', 'jti', 'iat', 'exp']);
  assert.deepEqual([c.iss, c.sub, c.aud, c.exp - c.iat], [live.iss, live.phone, DEMO, 600]);
  const jwks = await (await fetch(live.jwks)).json();
  assert.deepEqual(jwks.keys.map((k) => k.kid), ['k0', 'k1']);
  for (const k of jwks.keys) {
    assert.deepEqual([k.kty, k.crv, k.alg, k.use, k.d], ['EC', 'P-256', 'ES256', 'sig', undefined]);
    assert.deepEqual([k.x, k.y], [signingKeys[k.kid].x, signingKeys[k.kid].y]);
  }
});

for (const name of Object.keys(EXAMPLES)) {
  describe(`${name} example`, () => {
    /** Asserts a refusal: exit 1, nothing on stdout, the library's error matching `why`. */
    const refused = (r, why, what = '') => {
      assert.equal(r.code, 1, `${what}: exit ${r.code}; stdout ${r.stdout}; stderr ${r.stderr}`);
      assert.equal(r.stdout, '', what);
      assert.match(r.stderr, why, what);
    };

    test('accepts the Worker token and prints the phone', async () => {
      const r = await verifyWith(name, live.token);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${live.phone}\n`);
    });

    test('accepts a token of the other published key and refuses a kid the JWKS lacks (rotation)', async () => {
      const r = await verifyWith(name, await signed({ kid: 'k0' }));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${live.phone}\n`);
      refused(await verifyWith(name, await signed({ kid: 'k9' })), /kid|key/i, 'unknown kid');
    });

    test('refuses a flipped signature bit, altered claims and a key that is not published', async () => {
      const [h, c, s] = live.token.split('.');
      const sig = Buffer.from(s, 'base64url');
      sig[5] ^= 0x01;
      refused(await verifyWith(name, `${h}.${c}.${b64url(sig)}`), /signature/i, 'flipped bit');
      const altered = b64url({ ...live.claims, sub: '+20100000000' });
      refused(await verifyWith(name, `${h}.${altered}.${s}`), /signature/i, 'altered claims');
      const stranger = await importJWK(newSigningKey(), 'ES256');
      refused(await verifyWith(name, await signed({ key: stranger })), /signature/i, 'unpublished key');
    });

    test('refuses another audience and another issuer', async () => {
      refused(await verifyWith(name, live.token, { aud: OTHER }), /aud/i);
      refused(await verifyWith(name, live.token, { iss: 'https://otp.example.com' }), /iss/i);
    });

    test('refuses an expired token', async () => {
      const t = now();
      refused(await verifyWith(name, await signed({ claims: { iat: t - 700, exp: t - 100 } })), /expired|exp/i);
    });

    test('refuses any algorithm but ES256: none, HS256 keyed with the public key, ES384, RS256', async () => {
      const [, claims] = live.token.split('.');
      const none = `${b64url({ alg: 'none', typ: 'JWT', kid: 'k1' })}.${claims}.`;
      refused(await verifyWith(name, none), /./, 'none');
      const publicJwk = { kty: 'EC', crv: 'P-256', x: signingKeys.k1.x, y: signingKeys.k1.y };
      const pem = createPublicKey({ key: publicJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      refused(await verifyWith(name, hs256With(live.token, pem)), /alg/i, 'HS256 keyed with the PEM public key');
      refused(await verifyWith(name, hs256With(live.token, JSON.stringify(publicJwk))), /alg/i, 'HS256 keyed with the JWK');
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
      refused(await verifyWith(name, await signed({ alg: 'ES384', key: p384 })), /alg/i, 'ES384');
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      refused(await verifyWith(name, await signed({ alg: 'RS256', key: rsa })), /alg/i, 'RS256');
    });
  });
}
