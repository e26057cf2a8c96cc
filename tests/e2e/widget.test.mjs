// The widget API (/widget/v1/) on workerd: publishable keys and the origin allowlist (CORS,
// preflight included), the code flow to a verification token any JWT library accepts, the
// server-side resend cooldown, the WhatsApp link flow completed by polling with the poll
// secret, Turnstile against a fake siteverify on 127.0.0.1, the per-IP limit, and bad input.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { jwtVerify } from 'jose';
import { startWorker, newRecipient, DEMO, DEMO_PK, SHOP_ORIGIN } from '../support/worker.mjs';
import { startFakeTurnstile } from '../support/fake-turnstile.mjs';

const GUARDED = '44444444-4444-4444-8444-444444444444';
const GUARDED_PK = 'pk_live_turnstileguarded0001';
const TURNSTILE_SECRET = '0x4AAAAAAAturnstile-secret-for-tests';

let w;
let turnstile;
before(async () => {
  turnstile = await startFakeTurnstile({ secret: TURNSTILE_SECRET });
  w = await startWorker({
    extraInstances: [
      {
        id: GUARDED,
        name: 'Guarded',
        channel: 'outbox',
        widget: {
          publishable_key: GUARDED_PK,
          allowed_origins: [SHOP_ORIGIN],
          turnstile: { site_key: '0x4AAAAAAAsitekey', siteverify_url: turnstile.url },
          default_country: 'BR',
        },
      },
    ],
    credentials: { [GUARDED]: { turnstile_secret: TURNSTILE_SECRET } },
  });
});
after(async () => {
  await w?.stop();
  await turnstile?.close();
});

let ipCounter = 0;
/** A fresh client address, so the per-IP limit of one test never spills into another. */
const freshIp = () => `198.51.100.${++ipCounter}`;

/** POSTs a widget endpoint from `origin`; returns status, headers and parsed body. */
async function post(route, body, { origin = SHOP_ORIGIN, ip = freshIp(), raw } = {}) {
  const res = await w.fetch(`/widget/v1/${route}`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'CF-Connecting-IP': ip,
      ...(origin ? { Origin: origin } : {}),
    },
    body: raw ?? JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

const start = (phone, extra = {}, opts) => post('start', { publishable_key: DEMO_PK, phone: `+${phone}`, ...extra }, opts);

/** The code of the newest outbox message for `to`. */
async function codeFor(to, after = 0) {
  const msg = await w.nextMessage(to, after);
  const m = msg.text.match(/\b([0-9]{6})\b/);
  assert.ok(m, `no code in ${msg.text}`);
  return m[1];
}

describe('publishable key and origins', () => {
  test('config tells the widget how codes look, and CORS lets an allowed origin read it', async () => {
    const res = await w.fetch(`/widget/v1/config?key=${DEMO_PK}`, { headers: { Origin: SHOP_ORIGIN } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), SHOP_ORIGIN);
    assert.match(res.headers.get('vary'), /Origin/);
    assert.deepEqual(await res.json(), {
      name: 'edge-otp demo',
      modes: ['code', 'link'],
      code_length: 6,
      alphabet: 'digits',
      channel: 'outbox',
      resend_cooldown: 30,
      turnstile_site_key: null,
      default_country: null,
    });
  });

  test("config suggests the phone field's country: the instance's, else the visitor's as the edge sees it", async () => {
    const config = async (key, cf) => (await w.fetch(`/widget/v1/config?key=${key}`, {
      headers: { Origin: SHOP_ORIGIN, ...(cf ? { 'MF-CF-Blob': JSON.stringify(cf) } : {}) },
    })).json();
    // The edge's country (injected the way wrangler's local runtime reads request.cf).
    assert.equal((await config(DEMO_PK, { country: 'EG', city: 'Cairo' })).default_country, 'EG');
    // An instance setting wins; no edge country (local dev's placeholder) and no setting: none.
    assert.equal((await config(GUARDED_PK, { country: 'EG' })).default_country, 'BR');
    assert.equal((await config(GUARDED_PK)).default_country, 'BR');
    assert.equal((await config(DEMO_PK)).default_country, null);
    // Anything but a two-letter code from the edge is not passed on.
    assert.equal((await config(DEMO_PK, { country: 'T1' })).default_country, null);
  });

  const origins = [
    // [origin, allowed]
    [SHOP_ORIGIN, true],
    ['https://a.brand.example', true],
    ['https://brand.example', false],
    ['https://evil.example', false],
    ['http://shop.example', false],
    ['https://shop.example.evil.example', false],
    ['null', false],
  ];
  for (const [origin, allowed] of origins) {
    test(`preflight from ${origin} is ${allowed ? 'allowed' : 'refused'}`, async () => {
      const res = await w.fetch('/widget/v1/start', {
        method: 'OPTIONS',
        headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
      });
      assert.equal(res.status, allowed ? 204 : 403);
      assert.equal(res.headers.get('access-control-allow-origin'), allowed ? origin : null);
      if (allowed) {
        assert.match(res.headers.get('access-control-allow-methods'), /POST/);
        assert.match(res.headers.get('access-control-allow-headers'), /content-type/);
      }
    });
  }

  test('a start from an origin not on the list is refused and sends nothing', async () => {
    const phone = newRecipient();
    const res = await start(phone, {}, { origin: 'https://evil.example' });
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'forbidden');
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    assert.deepEqual(await w.outbox(phone), []);
  });

  test('an unknown key and a missing origin get the same refusal', async () => {
    const phone = newRecipient();
    const unknown = await post('start', { publishable_key: 'pk_live_nosuchkey000000000', phone: `+${phone}` });
    const noOrigin = await start(phone, {}, { origin: null });
    for (const res of [unknown, noOrigin]) {
      assert.equal(res.status, 403);
      assert.deepEqual(res.body, { error: { code: 'forbidden', message: 'this publishable key is unknown or not allowed on this origin', field: null } });
    }
    assert.deepEqual(await w.outbox(phone), []);
  });

  test("a page on the service's own origin may use the key", async () => {
    const res = await start(newRecipient(), {}, { origin: w.url });
    assert.equal(res.status, 200);
  });
});

describe('code flow', () => {
  test('start, a wrong code, the right code: a verification token a JWT library accepts', async () => {
    const phone = newRecipient();
    const started = await start(phone);
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.equal(started.headers.get('access-control-allow-origin'), SHOP_ORIGIN);
    assert.equal(started.headers.get('cache-control'), 'no-store');
    const s = started.body;
    assert.deepEqual(Object.keys(s), ['session', 'mode', 'phone', 'channel', 'code_length', 'alphabet', 'expires_at', 'expires_in', 'resend_in']);
    assert.equal(s.mode, 'code');
    assert.equal(s.phone, `+${phone}`);
    assert.equal(s.code_length, 6);
    assert.equal(s.resend_in, 30);
    assert.equal(s.expires_in, 300, 'a new code: its whole lifetime, even when the answer straddles a second');
    assert.match(s.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    const code = await codeFor(phone);

    const wrongCode = code === '000000' ? '111111' : '000000';
    const bad = await post('verify', { publishable_key: DEMO_PK, session: s.session, code: wrongCode });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error.code, 'invalid_code');
    assert.equal(bad.body.error.attempts_left, 4);
    assert.equal(bad.headers.get('x-otp-attempts-remaining'), '4');
    assert.match(bad.headers.get('access-control-expose-headers'), /x-otp-attempts-remaining/);

    const good = await post('verify', { publishable_key: DEMO_PK, session: s.session, code: `${code.slice(0, 3)}-${code.slice(3)}` });
    assert.equal(good.status, 200, JSON.stringify(good.body));
    assert.deepEqual(Object.keys(good.body), ['status', 'phone', 'token', 'expires_in']);
    assert.equal(good.body.status, 'verified');
    assert.equal(good.body.phone, `+${phone}`);
    const { payload, protectedHeader } = await jwtVerify(good.body.token, w.keySet(), { audience: DEMO, algorithms: ['ES256'] });
    assert.deepEqual(protectedHeader, { alg: 'ES256', typ: 'JWT', kid: 'k1' });
    assert.equal(payload.sub, `+${phone}`);
    assert.equal(payload.iss, w.url);
    assert.equal(payload.exp - payload.iat, 600);

    const again = await post('verify', { publishable_key: DEMO_PK, session: s.session, code });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'session_already_verified');
    assert.equal(again.body.error.field, 'session');
  });

  test('a second start for the number within 30 s is refused with the seconds to wait', async () => {
    const phone = newRecipient();
    assert.equal((await start(phone)).status, 200);
    await w.nextMessage(phone);
    const again = await start(phone);
    assert.equal(again.status, 429);
    assert.equal(again.body.error.code, 'resend_cooldown');
    assert.equal(again.body.error.field, 'phone');
    assert.ok(again.body.error.retry_after > 25 && again.body.error.retry_after <= 30, JSON.stringify(again.body));
    assert.equal(again.headers.get('retry-after'), String(again.body.error.retry_after));
    assert.match(again.headers.get('access-control-expose-headers'), /retry-after/);
    assert.equal((await w.outbox(phone)).length, 1);
  });

  test('a session cannot be altered, reused across modes, or used under another key', async () => {
    const phone = newRecipient();
    const { body: s } = await start(phone);
    const code = await codeFor(phone);
    const flipped = s.session.slice(0, 10) + (s.session[10] === 'A' ? 'B' : 'A') + s.session.slice(11);
    const altered = await post('verify', { publishable_key: DEMO_PK, session: flipped, code });
    assert.equal(altered.status, 404);
    assert.equal(altered.body.error.code, 'session_not_found');
    const asPoll = await post('poll', { publishable_key: DEMO_PK, session: s.session, poll_secret: 'x'.repeat(24) });
    assert.equal(asPoll.status, 404);
    const otherKey = await post('verify', { publishable_key: GUARDED_PK, session: s.session, code });
    assert.equal(otherKey.status, 404);
    // None of it spent the code.
    const ok = await post('verify', { publishable_key: DEMO_PK, session: s.session, code });
    assert.equal(ok.status, 200);
  });

  const badBodies = [
    // [name, body or raw text, status, code, field]
    ['not JSON', '{"publishable_key":', 400, 'invalid_request', null],
    ['an array', '[]', 400, 'invalid_request', null],
    ['no phone', { publishable_key: DEMO_PK }, 400, 'invalid_request', 'phone'],
    ['a short phone', { publishable_key: DEMO_PK, phone: '+12' }, 400, 'invalid_request', 'phone'],
    ['an unknown mode', { publishable_key: DEMO_PK, phone: '+15551234567', mode: 'sms' }, 400, 'invalid_request', 'mode'],
    ['a bad locale', { publishable_key: DEMO_PK, phone: '+15551234567', locale: '??' }, 400, 'invalid_request', 'locale'],
  ];
  for (const [name, body, status, code, field] of badBodies) {
    test(`start with ${name} is a ${status} ${code}`, async () => {
      const res = await post('start', typeof body === 'string' ? null : body, typeof body === 'string' ? { raw: body } : {});
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.error.code, code);
      assert.equal(res.body.error.field, field);
    });
  }

  test('verify without a code names the field; other methods are 405', async () => {
    const res = await post('verify', { publishable_key: DEMO_PK, session: 'abc' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.field, 'code');
    const get = await w.fetch('/widget/v1/start', { headers: { Origin: SHOP_ORIGIN } });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST, OPTIONS');
    assert.equal((await w.fetch('/widget/v1/nope')).status, 404);
  });
});

/** The message a wa.me link pre-fills. */
const prefilled = (link) => new URL(link).searchParams.get('text');

describe('WhatsApp link flow', () => {
  test('start, send the message, confirm on the phone: the polling page gets the token', async () => {
    const started = await post('start', { publishable_key: DEMO_PK, mode: 'link' });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const s = started.body;
    assert.deepEqual(Object.keys(s), ['session', 'mode', 'link', 'poll_secret', 'expires_at', 'expires_in', 'poll_interval']);
    assert.match(s.link, /^https:\/\/wa\.me\/15550001234\?text=/);
    assert.equal(s.expires_in, 600);
    const poll = (secret = s.poll_secret) => post('poll', { publishable_key: DEMO_PK, session: s.session, poll_secret: secret });
    assert.deepEqual((await poll()).body, { status: 'pending' });

    const wrong = await poll(s.poll_secret.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')));
    assert.equal(wrong.status, 404);
    assert.equal(wrong.body.error.code, 'session_not_found');

    // The user sends the prefilled message; Meta posts it to the signed webhook.
    const from = newRecipient();
    const hook = await w.sendWhatsApp(DEMO, { phoneNumberId: '100000000000001', from, body: prefilled(s.link) });
    assert.equal(hook.status, 200);
    const reply = await w.nextMessage(from);
    const loginPath = reply.text.match(/https?:\/\/[^\s/]+(\/login\/[A-Za-z0-9_-]+)/)[1];
    // Seed statuses only: claimed reads `pending`, with when the message claimed it.
    const claimed = (await poll()).body;
    assert.deepEqual(Object.keys(claimed), ['status', 'claimed_at']);
    assert.equal(claimed.status, 'pending');
    assert.match(claimed.claimed_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/);

    // The phone confirms; the login page says to go back instead of redirecting.
    const confirmed = await w.fetch(loginPath, { method: 'POST', redirect: 'manual' });
    assert.equal(confirmed.status, 200);
    assert.match(await confirmed.text(), /You are verified/);

    const done = await poll();
    assert.equal(done.status, 200);
    assert.deepEqual(Object.keys(done.body), ['status', 'phone', 'token', 'expires_in']);
    assert.equal(done.body.phone, `+${from}`);
    const { payload } = await jwtVerify(done.body.token, w.keySet(), { audience: DEMO, algorithms: ['ES256'] });
    assert.equal(payload.sub, `+${from}`);
  });
});

describe('a verified link session hands out one token (issue 12)', () => {
  // Its own Worker on a dev clock the test moves: the token's lifetime passes in no time.
  let c;
  before(async () => {
    c = await startWorker({ vars: { DEV_CLOCK: 'manual' } });
  });
  after(async () => {
    await c?.stop();
  });

  /** A link session of `c` taken to verified: the user wrote from `from` and confirmed. */
  async function verifiedLinkSession(from) {
    const call = async (route, body) => {
      const res = await c.fetch(`/widget/v1/${route}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Origin: SHOP_ORIGIN, 'CF-Connecting-IP': freshIp() },
        body: JSON.stringify({ publishable_key: DEMO_PK, ...body }),
      });
      return { status: res.status, body: await res.json() };
    };
    const s = (await call('start', { mode: 'link' })).body;
    const hook = await c.sendWhatsApp(DEMO, { phoneNumberId: '100000000000001', from, body: prefilled(s.link) });
    assert.equal(hook.status, 200);
    const loginPath = (await c.nextMessage(from)).text.match(/https?:\/\/[^\s/]+(\/login\/[A-Za-z0-9_-]+)/)[1];
    assert.equal((await c.fetch(loginPath, { method: 'POST', redirect: 'manual' })).status, 200);
    return () => call('poll', { session: s.session, poll_secret: s.poll_secret });
  }

  const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));

  test('every_poll_before_exp_gets_the_same_claims_and_none_after_it', async () => {
    const from = newRecipient();
    const poll = await verifiedLinkSession(from);
    const first = await poll();
    assert.equal(first.status, 200);
    assert.equal(first.body.expires_in, 600);
    const { payload } = await jwtVerify(first.body.token, c.keySet(), { audience: DEMO, algorithms: ['ES256'] });
    assert.equal(payload.sub, `+${from}`);

    // 30 s later (the old behaviour minted a new token with a new iat and exp on every poll).
    await c.advanceClock(30);
    const later = await poll();
    assert.equal(later.status, 200);
    assert.deepEqual(claimsOf(later.body.token), claimsOf(first.body.token));
    assert.equal(later.body.expires_in, 570);
    await jwtVerify(later.body.token, c.keySet(), { audience: DEMO, algorithms: ['ES256'], currentDate: new Date((payload.iat + 30) * 1000) });

    // Past the token's exp the session answers with its status alone, for good.
    await c.advanceClock(571);
    for (let i = 0; i < 2; i++) {
      const after = await poll();
      assert.equal(after.status, 200);
      assert.deepEqual(after.body, { status: 'verified' });
    }
  });
});

describe('Turnstile', () => {
  const guardedStart = (extra = {}) => post('start', { publishable_key: GUARDED_PK, phone: `+${newRecipient()}`, ...extra });

  test('config hands out the site key', async () => {
    const res = await w.fetch(`/widget/v1/config?key=${GUARDED_PK}`, { headers: { Origin: SHOP_ORIGIN } });
    assert.equal((await res.json()).turnstile_site_key, '0x4AAAAAAAsitekey');
  });

  test('a start without a token, or with a forged or reused one, is refused', async () => {
    const none = await guardedStart();
    assert.equal(none.status, 403);
    assert.equal(none.body.error.code, 'turnstile_failed');
    const forged = await guardedStart({ turnstile_token: '0.forged' });
    assert.equal(forged.status, 403);
    const token = turnstile.issue();
    const first = await guardedStart({ turnstile_token: token });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const reused = await guardedStart({ turnstile_token: token });
    assert.equal(reused.status, 403);
    // The check went to siteverify as a form with the instance's secret and the client IP.
    const last = turnstile.requests.at(-1);
    assert.match(last.contentType, /x-www-form-urlencoded/);
    assert.equal(last.fields.secret, TURNSTILE_SECRET);
    assert.match(last.fields.remoteip, /^198\.51\.100\./);
  });
});

describe('per-IP limit', () => {
  test('the 21st start from one address within a minute is refused', async () => {
    const ip = '203.0.113.77';
    const statuses = [];
    for (let i = 0; i < 21; i++) {
      statuses.push((await start(newRecipient(), {}, { ip })).status);
    }
    assert.deepEqual(statuses.slice(0, 20), Array(20).fill(200));
    assert.equal(statuses[20], 429);
    const refused = await start(newRecipient(), {}, { ip });
    assert.equal(refused.body.error.code, 'rate_limited');
    assert.equal(refused.headers.get('retry-after'), '60');
    // Another address is not affected.
    assert.equal((await start(newRecipient(), {}, { ip: '203.0.113.78' })).status, 200);
  });
});
