// Verification token keys on workerd: the deploy's ES256 keys (TOKEN_SIGNING_KEYS, a private JWK
// or PKCS#8 per kid) sign through WebCrypto, each instance with its token_kid, and all of them are
// published at /.well-known/jwks.json; an instance that opts into HS256 (token_alg) signs with its
// shared key and the middleware checks its tokens with it; a missing or broken key is a 503 that
// never costs the user's code.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { SignJWT, importJWK, jwtVerify } from 'jose';
import { startWorker, newRecipient, newSigningKey, DEMO, SHOP_ORIGIN } from '../support/worker.mjs';

const HS = '66666666-6666-4666-8666-666666666666';
const HS_PK = 'pk_test_hs256optin0000000001';
const ROTATED = '77777777-7777-4777-8777-777777777777';
const ROTATED_PK = 'pk_test_rotatedkid000000001';
const MISSING = '88888888-8888-4888-8888-888888888888';
// A live key: the server API's validate-code (a live credential) sees its codes.
const MISSING_PK = 'pk_live_missingkid000000001';

const widgetFor = (pk) => ({ publishable_key: pk, allowed_origins: [SHOP_ORIGIN] });
const EXTRA = [
  { id: HS, name: 'HS', channel: 'outbox', token_alg: 'HS256', widget: widgetFor(HS_PK) },
  { id: ROTATED, name: 'Rotated', channel: 'outbox', token_kid: 'k2', widget: widgetFor(ROTATED_PK) },
  { id: MISSING, name: 'Missing', channel: 'outbox', token_kid: 'k9', widget: widgetFor(MISSING_PK) },
];

/** A code-mode widget session on `harness` for a fresh number: `{phone, session, code}`. */
async function codeSession(harness, pk) {
  const phone = newRecipient();
  const start = await widgetPost(harness, 'start', { publishable_key: pk, phone: `+${phone}` });
  assert.equal(start.status, 200, JSON.stringify(start.body));
  const msg = await harness.nextMessage(phone);
  return { phone, session: start.body.session, code: msg.text.match(/\b(\d{6})\b/)[1] };
}

let ip = 0;
async function widgetPost(harness, route, body) {
  const res = await harness.fetch(`/widget/v1/${route}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: SHOP_ORIGIN, 'CF-Connecting-IP': `203.0.113.${++ip}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** A verification token earned through the widget's code flow of instance `pk`. */
async function earnToken(harness, pk) {
  const s = await codeSession(harness, pk);
  const v = await widgetPost(harness, 'verify', { publishable_key: pk, session: s.session, code: s.code });
  assert.equal(v.status, 200, JSON.stringify(v.body));
  return { ...s, token: v.body.token };
}

const headerOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url'));

describe('a deploy with a JWK and a PKCS#8 key', () => {
  let w;
  const k1 = newSigningKey();
  const k2 = newSigningKey();
  // k2 as an operator would paste it from `openssl genpkey`: a PKCS#8 PEM.
  const k2Pem = createPrivateKey({ key: k2, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' });
  before(async () => {
    w = await startWorker({ extraInstances: EXTRA, signingKeys: { k1, k2: k2Pem } });
  });
  after(async () => {
    await w?.stop();
  });

  test('the_jwks_publishes_every_key_public_half_only_and_each_instance_signs_with_its_kid', async () => {
    const res = await w.fetch('/.well-known/jwks.json');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('cache-control'), 'public, max-age=600');
    const { keys } = await res.json();
    assert.deepEqual(keys, [
      { kty: 'EC', crv: 'P-256', x: k1.x, y: k1.y, kid: 'k1', alg: 'ES256', use: 'sig' },
      { kty: 'EC', crv: 'P-256', x: k2.x, y: k2.y, kid: 'k2', alg: 'ES256', use: 'sig' },
    ]);
    for (const [pk, aud, kid] of [['pk_test_edgeotpdemo0000000001', DEMO, 'k1'], [ROTATED_PK, ROTATED, 'k2']]) {
      const { token, phone } = await earnToken(w, pk);
      assert.deepEqual(headerOf(token), { alg: 'ES256', typ: 'JWT', kid });
      const { payload } = await jwtVerify(token, w.keySet(), { algorithms: ['ES256'], audience: aud, issuer: w.url });
      assert.equal(payload.sub, `+${phone}`);
    }
  });

  test('an_hs256_instance_signs_with_its_shared_key_and_its_tokens_fail_the_jwks', async () => {
    const { token, phone } = await earnToken(w, HS_PK);
    assert.deepEqual(headerOf(token), { alg: 'HS256', typ: 'JWT', kid: 'k1' });
    const key = new TextEncoder().encode(w.secrets.instances[HS].token_keys.k1);
    const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], audience: HS, issuer: w.url });
    assert.equal(payload.sub, `+${phone}`);
    await assert.rejects(jwtVerify(token, w.keySet(), { algorithms: ['ES256'], audience: HS }));
  });

  test('a_kid_the_deploy_lacks_answers_503_and_never_spends_the_code', async () => {
    const s = await codeSession(w, MISSING_PK);
    const v = await widgetPost(w, 'verify', { publishable_key: MISSING_PK, session: s.session, code: s.code });
    assert.equal(v.status, 503);
    assert.equal(v.body.error.code, 'service_unavailable');
    // The same code still validates through the server API: the refusal came before the attempt.
    const res = await w.hs('validate-code', { chatId: s.phone, code: s.code }, { instance: MISSING });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });
});

describe('a deploy without TOKEN_SIGNING_KEYS', () => {
  let w;
  before(async () => {
    w = await startWorker({ extraInstances: EXTRA, omit: ['TOKEN_SIGNING_KEYS'] });
  });
  after(async () => {
    await w?.stop();
  });

  test('publishes_an_empty_key_set_signs_hs256_opt_ins_and_refuses_es256_with_503', async () => {
    const res = await w.fetch('/.well-known/jwks.json');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { keys: [] });
    const { token } = await earnToken(w, HS_PK);
    assert.equal(headerOf(token).alg, 'HS256');
    const s = await codeSession(w, 'pk_test_edgeotpdemo0000000001');
    const v = await widgetPost(w, 'verify', { publishable_key: 'pk_test_edgeotpdemo0000000001', session: s.session, code: s.code });
    assert.equal(v.status, 503);
  });
});

describe('the middleware in front of an instance that opted into HS256', () => {
  let w;
  before(async () => {
    w = await startWorker({
      extraInstances: EXTRA,
      vars: { MIDDLEWARE: { instance: HS, protected: ['/members'] } },
    });
  });
  after(async () => {
    await w?.stop();
  });

  const postSession = (token) => w.fetch('/_otp/session', {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: w.url },
    body: new URLSearchParams({ token, next: '/members' }).toString(),
  });

  test('its_session_takes_its_hs256_tokens_and_refuses_es256_ones', async () => {
    const t = Math.floor(Date.now() / 1000);
    const claims = { iss: `${w.url}/_otp`, sub: `+${newRecipient()}`, aud: HS, jti: crypto.randomUUID(), iat: t, exp: t + 600 };
    const hs = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'k1' })
      .sign(new TextEncoder().encode(w.secrets.instances[HS].token_keys.k1));
    const ok = await postSession(hs);
    assert.equal(ok.status, 303);
    assert.ok(ok.headers.getSetCookie().some((c) => c.startsWith('edge_otp=')));
    const es = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: 'k1' })
      .sign(await importJWK(w.secrets.signingKeys.k1, 'ES256'));
    const refused = await postSession(es);
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.headers.getSetCookie(), []);
  });
});
