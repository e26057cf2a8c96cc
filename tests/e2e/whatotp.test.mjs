// The WhatOTP API (/v1) end to end, against the built dev Worker on workerd: bad inputs (one
// table row per field), API keys (none, wrong, another instance's, sk_test_), the code flow
// through the dev outbox, superseded sessions, wrong codes and lockout, messages/send,
// Idempotency-Key, the 120 requests/min limit, and test keys never reaching a provider (a
// fake WhatsApp Cloud API that records every send).
//
// The rate limit counts per (API key, client IP): every request here sends its own random
// `CF-Connecting-IP` unless a test fixes one, so only the limit test ever meets the limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DEMO, OTHER, QUICK, instanceSecretsFor, newRecipient, startWorker } from '../support/worker.mjs';
import { startFakeMeta } from '../support/fake-meta.mjs';
import { SEND_WINDOW_MS, assertNothingFor, awayFromMinuteBoundary, letTimePass } from '../support/wait.mjs';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;
const SESSION = /^otp_[0-9a-f]{32}$/;
const hex = (n) => randomBytes(n).toString('hex');
const randomIp = () => `10.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 250)}`;
const secondsOf = (iso) => Date.parse(iso) / 1000;

/** An outbox instance whose key is a test key, one capping lifetimes, one with a resend cooldown. */
const SANDBOX = '55555555-5555-4555-8555-555555555551';
const SHORT = '55555555-5555-4555-8555-555555555552';
const COOL = '55555555-5555-4555-8555-555555555553';
const KEYS = {
  [DEMO]: `sk_live_${hex(12)}`,
  [OTHER]: `sk_live_${hex(12)}`,
  [QUICK]: `sk_live_${hex(12)}`,
  [SANDBOX]: `sk_test_${hex(12)}`,
  [SHORT]: `sk_live_${hex(12)}`,
  [COOL]: `sk_live_${hex(12)}`,
};
const EXTRA = [
  { id: SANDBOX, name: 'Sandbox', channel: 'outbox' },
  { id: SHORT, name: 'Short', channel: 'outbox', max_expires: 120 },
  { id: COOL, name: 'Cool', channel: 'outbox', limits: { resend_cooldown: 30 } },
];

let w;
before(async () => {
  w = await startWorker({
    extraInstances: EXTRA,
    secrets: {
      pepper: hex(32),
      tokens: KEYS,
      instances: Object.fromEntries(Object.keys(KEYS).map((id) => [id, instanceSecretsFor()])),
    },
  });
});
after(async () => {
  await w?.stop();
});

/**
 * POSTs a /v1 endpoint. `body` is JSON-encoded unless it is a string; `key` null sends no
 * Authorization; `ip` is the client address the rate limit sees.
 */
async function api(path, body, { harness = w, key = KEYS[DEMO], ip = randomIp(), headers = {}, method = 'POST' } = {}) {
  const res = await harness.fetch(path, {
    method,
    headers: {
      'Content-Type': 'application/json',
      'CF-Connecting-IP': ip,
      ...(key ? { Authorization: `Bearer ${key}` } : {}),
      ...headers,
    },
    body: method === 'GET' ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

const send = (body, opts) => api('/v1/otp/send', body, opts);
const verify = (body, opts) => api('/v1/otp/verify', body, opts);
const message = (body, opts) => api('/v1/messages/send', body, opts);

/** Asserts the error body `{error: {code, message, field}}` and returns the error. */
function assertError(res, status, code, field) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.deepEqual(Object.keys(res.body), ['error']);
  const keys = Object.keys(res.body.error);
  assert.deepEqual(keys.slice(0, 3), ['code', 'message', 'field']);
  assert.equal(res.body.error.code, code);
  assert.match(res.body.error.message, /^[a-z`]/, 'messages start lowercase');
  assert.doesNotMatch(res.body.error.message, /\.$/, 'messages end without a period');
  if (field !== undefined) assert.equal(res.body.error.field, field);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  return res.body.error;
}

/** Sends a code to `to` (digits) and returns `{session, code}` read from the dev outbox. */
async function sendAndRead(to, { key = KEYS[DEMO], length, harness = w } = {}) {
  const before = (await harness.outbox(to)).length;
  const res = await send({ to: `+${to}`, channel: 'whatsapp', ...(length ? { length } : {}) }, { key, harness });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const msg = await harness.nextMessage(to, before);
  const code = msg.text.match(/\b\d{4,8}\b/)[0];
  return { session: res.body.session_id, code, body: res.body };
}

const wrongCode = (code) => String((Number(code[0]) + 1) % 10) + code.slice(1);

describe('send input', () => {
  const to = '+14155550100';
  const e164 = /`to` must be a phone number in e\.164 format/;
  const rows = [
    ['missing to', { channel: 'whatsapp' }, 'to', /`to` is required/],
    ['null to', { to: null, channel: 'whatsapp' }, 'to', /`to` is required/],
    ['to a number', { to: 14155550100, channel: 'whatsapp' }, 'to', /`to` must be a string/],
    ['empty to', { to: ' ', channel: 'whatsapp' }, 'to', /`to` must not be empty/],
    ['to without +', { to: '14155550100', channel: 'whatsapp' }, 'to', e164],
    ['to with spaces', { to: '+1 415 555 0100', channel: 'whatsapp' }, 'to', e164],
    ['to a chat id', { to: '+14155550100@c.us', channel: 'whatsapp' }, 'to', e164],
    ['to too short', { to: '+1234567', channel: 'whatsapp' }, 'to', e164],
    ['to too long', { to: '+1234567890123456', channel: 'whatsapp' }, 'to', e164],
    ['missing channel', { to }, 'channel', /`channel` is required/],
    ['channel voice', { to, channel: 'voice' }, 'channel', /`channel` must be `whatsapp` or `sms`/],
    ['channel capitalised', { to, channel: 'WhatsApp' }, 'channel', /`channel` must be/],
    ['length 3', { to, channel: 'whatsapp', length: 3 }, 'length', /`length` must be an integer between 4 and 8/],
    ['length 9', { to, channel: 'whatsapp', length: 9 }, 'length', /between 4 and 8/],
    ['length a string', { to, channel: 'whatsapp', length: '6' }, 'length', /between 4 and 8/],
    ['length a fraction', { to, channel: 'whatsapp', length: 6.5 }, 'length', /between 4 and 8/],
  ];
  for (const [what, body, field, reason] of rows) {
    test(`${what} is a 400 invalid_request naming ${field}`, async () => {
      const err = assertError(await send(body), 400, 'invalid_request', field);
      assert.match(err.message, reason);
    });
  }
});

describe('verify input', () => {
  const sid = `otp_${hex(16)}`;
  const rows = [
    ['missing session_id', { code: '123456' }, 'session_id', /`session_id` is required/],
    ['session_id a number', { session_id: 5, code: '123456' }, 'session_id', /must be a string/],
    ['session_id not ours', { session_id: 'otp_72x991', code: '123456' }, 'session_id', /returned by \/v1\/otp\/send/],
    ['missing code', { session_id: sid }, 'code', /`code` is required/],
    ['empty code', { session_id: sid, code: '' }, 'code', /must not be empty/],
    ['code a number', { session_id: sid, code: 123456 }, 'code', /must be a string/],
    ['code too long', { session_id: sid, code: '1'.repeat(65) }, 'code', /at most 64 characters/],
  ];
  for (const [what, body, field, reason] of rows) {
    test(`${what} is a 400 invalid_request naming ${field}`, async () => {
      const err = assertError(await verify(body), 400, 'invalid_request', field);
      assert.match(err.message, reason);
    });
  }
});

describe('messages/send input', () => {
  const ok = { phone_number: '+20123456789', template_id: 'text', variables: { text: 'hello' } };
  const rows = [
    ['missing phone_number', { ...ok, phone_number: undefined }, 'phone_number', /is required/],
    ['phone_number a chat id', { ...ok, phone_number: '20123456789@c.us' }, 'phone_number', /international format/],
    ['missing template_id', { ...ok, template_id: undefined }, 'template_id', /is required/],
    ['template_id with a space', { ...ok, template_id: 'a b' }, 'template_id', /letters, digits/],
    ['unknown template_id', { ...ok, template_id: 'nope' }, 'template_id', /must be `text` or a template of this instance \(order_shipped, welcome\)/],
    ['variables an array', { ...ok, variables: [] }, 'variables', /must be an object/],
    ['variables without text', { ...ok, variables: { name: 'Ada' } }, 'variables', /non-empty `text`/],
    ['a null variable', { ...ok, variables: { text: 'x', a: null } }, 'variables', /strings, numbers or booleans/],
    ['a rendered text over 4096 characters', { ...ok, variables: { text: '{a}'.repeat(80), a: 'x'.repeat(256) } }, 'variables', /at most 4096/],
    ['expires_in_seconds 29', { ...ok, expires_in_seconds: 29 }, 'expires_in_seconds', /between 30 and 86400/],
    ['expires_in_seconds a string', { ...ok, expires_in_seconds: '300' }, 'expires_in_seconds', /between 30 and 86400/],
  ];
  for (const [what, body, field, reason] of rows) {
    test(`${what} is a 400 invalid_request naming ${field}`, async () => {
      const err = assertError(await message(body), 400, 'invalid_request', field);
      assert.match(err.message, reason);
    });
  }
});

describe('bodies, methods and paths', () => {
  const malformed = [
    ['not JSON', 'to=+14155550100', 400, 'invalid_request'],
    ['a JSON array', '[]', 400, 'invalid_request'],
    ['a JSON string', '"+14155550100"', 400, 'invalid_request'],
    ['truncated JSON', '{"to": "+1415', 400, 'invalid_request'],
    ['a body over 16 KiB', JSON.stringify({ to: '+14155550100', channel: 'whatsapp', pad: 'x'.repeat(1 << 15) }), 413, 'payload_too_large'],
  ];
  for (const path of ['/v1/otp/send', '/v1/otp/verify', '/v1/messages/send']) {
    for (const [what, raw, status, code] of malformed) {
      test(`${path}: ${what} is a ${status} ${code}`, async () => {
        assertError(await api(path, raw), status, code, null);
      });
    }
    test(`${path}: GET is a 405 with Allow: POST`, async () => {
      const res = await api(path, undefined, { method: 'GET' });
      assertError(res, 405, 'method_not_allowed', null);
      assert.equal(res.headers.get('allow'), 'POST');
    });
  }

  test('paths beside the three endpoints are the shared 404', async () => {
    for (const p of ['/v1', '/v1/otp', '/v1/otp/status', '/v1/messages', '/v1/otp/send/x']) {
      const res = await api(p, {});
      assert.equal(res.status, 404, p);
      assert.deepEqual(res.body, { success: false, message: 'Not found.', data: null });
    }
  });
});

describe('API keys', () => {
  const body = { to: '+14155550100', channel: 'whatsapp' };
  const cases = [
    ['no Authorization header', null],
    ['a key that is not a WhatOTP key', 'not-a-key'],
    ['a well-formed live key nobody holds', `sk_live_${hex(12)}`],
    ['a well-formed test key nobody holds', `sk_test_${hex(12)}`],
    ['a key with a short secret', 'sk_live_abc'],
  ];
  for (const [what, key] of cases) {
    test(`${what} is a 401 on every endpoint`, async () => {
      for (const path of ['/v1/otp/send', '/v1/otp/verify', '/v1/messages/send']) {
        const res = await api(path, body, { key });
        assertError(res, 401, 'unauthorized', null);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      }
    });
  }

  test("another instance's key cannot see this instance's session", async () => {
    const to = newRecipient();
    const { session, code } = await sendAndRead(to);
    assertError(await verify({ session_id: session, code }, { key: KEYS[OTHER] }), 404, 'session_not_found', 'session_id');
    // Still open for its own instance.
    const res = await verify({ session_id: session, code });
    assert.equal(res.status, 200);
  });

  test('the key names the instance: its limits and lifetimes apply', async () => {
    const res = await send({ to: `+${newRecipient()}`, channel: 'whatsapp' }, { key: KEYS[SHORT] });
    assert.equal(res.status, 200);
    assert.equal(res.body.expires_in, 120, "lowered to the instance's max_expires");
  });
});

describe('code flow', () => {
  test('send, wrong code, right code, replay', async () => {
    const to = newRecipient();
    const start = Math.floor(Date.now() / 1000);
    const { session, code, body } = await sendAndRead(to);
    assert.deepEqual(Object.keys(body), ['session_id', 'status', 'channel', 'expires_at', 'expires_in']);
    assert.match(body.session_id, SESSION);
    assert.equal(body.status, 'pending');
    assert.equal(body.channel, 'outbox', 'the channel that delivers: the demo instance is on the outbox');
    assert.match(body.expires_at, ISO);
    assert.equal(body.expires_in, 300);
    assert.ok(Math.abs(secondsOf(body.expires_at) - (start + 300)) <= 2, body.expires_at);
    assert.match(code, /^\d{6}$/);

    let res = await verify({ session_id: session, code: wrongCode(code) });
    const err = assertError(res, 422, 'invalid_code', 'code');
    assert.equal(err.attempts_remaining, 4);
    assert.equal(res.headers.get('x-otp-attempts-remaining'), '4');

    res = await verify({ session_id: session, code });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body), ['session_id', 'status', 'verified_at']);
    assert.equal(res.body.session_id, session);
    assert.equal(res.body.status, 'verified');
    assert.match(res.body.verified_at, ISO);

    assertError(await verify({ session_id: session, code }), 409, 'session_already_verified', 'session_id');
  });

  test('length shapes the code; sms is accepted; the session id is case-insensitive', async () => {
    for (const length of [4, 8]) {
      const to = newRecipient();
      const { session, code } = await sendAndRead(to, { length });
      assert.match(code, new RegExp(`^\\d{${length}}$`));
      const res = await verify({ session_id: session.toUpperCase().replace('OTP_', 'otp_'), code });
      assert.equal(res.status, 200);
      assert.equal(res.body.session_id, session);
    }
    const res = await send({ to: `+${newRecipient()}`, channel: 'sms' });
    assert.equal(res.status, 200);
    assert.equal(res.body.channel, 'outbox', 'the demo has no SMS channel: its outbox delivers');
  });

  test('an unknown session is a 404', async () => {
    assertError(await verify({ session_id: `otp_${hex(16)}`, code: '123456' }), 404, 'session_not_found', 'session_id');
  });

  test('a second send while the code is live is the same session with the same code', async () => {
    // Issue 12 item 4: a send never voids a live code (anyone may ask for a code for a number).
    const to = newRecipient();
    const first = await sendAndRead(to);
    const second = await sendAndRead(to);
    assert.deepEqual([second.session, second.code], [first.session, first.code]);
    assert.ok(second.body.expires_in <= first.body.expires_in, 'the lifetime is not renewed');
    assert.equal((await verify({ session_id: first.session, code: first.code })).status, 200);
  });

  test('a newer code supersedes the session, and verifying the old one spends none of the new attempts', async () => {
    // Only a send the live code cannot serve starts a new one: here, a send when the code has
    // under 30 s to go (its lifetime is 300 s), on a Worker whose clock the test moves.
    const clocked = await startWorker({ extraInstances: EXTRA, secrets: w.secrets, vars: { DEV_CLOCK: 'manual' } });
    try {
      const harness = clocked;
      const to = newRecipient();
      const first = await sendAndRead(to, { harness });
      await clocked.advanceClock(300 - 29);
      const second = await sendAndRead(to, { harness });
      assert.notEqual(first.session, second.session);
      assertError(await verify({ session_id: first.session, code: first.code }, { harness }), 410, 'session_superseded', 'session_id');
      assertError(await verify({ session_id: first.session, code: second.code }, { harness }), 410, 'session_superseded', 'session_id');
      // The new session still has all 5 attempts: the wrong one below leaves 4.
      const err = assertError(await verify({ session_id: second.session, code: wrongCode(second.code) }, { harness }), 422, 'invalid_code');
      assert.equal(err.attempts_remaining, 4);
      assert.equal((await verify({ session_id: second.session, code: second.code }, { harness })).status, 200);
    } finally {
      await clocked.stop();
    }
  });

  test('a test key send beside a live code is another session and voids nothing', async () => {
    // w.secrets.whatotpKey is the demo instance's sk_test_ key: test and live keep one open
    // code each, so neither send voids the other's session.
    const to = newRecipient();
    const live = await sendAndRead(to);
    const test = await sendAndRead(to, { key: w.secrets.whatotpKey });
    assert.notEqual(live.session, test.session);
    assert.equal((await verify({ session_id: test.session, code: test.code })).status, 200);
    assert.equal((await verify({ session_id: live.session, code: live.code })).status, 200);
  });

  test('five wrong codes end the session and lock the number for a while', async () => {
    const to = newRecipient();
    const key = KEYS[QUICK]; // lockouts of 2 s
    const { session, code } = await sendAndRead(to, { key });
    for (let left = 4; left >= 0; left--) {
      const res = await verify({ session_id: session, code: wrongCode(code) }, { key });
      const err = assertError(res, 422, 'invalid_code', 'code');
      assert.equal(err.attempts_remaining, left);
      if (left === 0) assert.equal(res.headers.get('retry-after'), '2', 'the fifth wrong code in a row starts a lockout');
    }
    let res = await verify({ session_id: session, code }, { key });
    assertError(res, 429, 'too_many_attempts', 'session_id');
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    res = await send({ to: `+${to}`, channel: 'whatsapp' }, { key });
    assertError(res, 429, 'recipient_locked');
    assert.ok(Number(res.headers.get('retry-after')) <= 2);
    await letTimePass(2100, "QUICK's first lockout, 2 s");
    const again = await sendAndRead(to, { key });
    assert.equal((await verify({ session_id: again.session, code: again.code }, { key })).status, 200);
  });

  test('at most 5 codes per number per 10 minutes; a resend cooldown when the instance sets one', async () => {
    const to = newRecipient();
    for (let i = 0; i < 5; i++) assert.equal((await send({ to: `+${to}`, channel: 'whatsapp' })).status, 200);
    let res = await send({ to: `+${to}`, channel: 'whatsapp' });
    assertError(res, 429, 'too_many_sends', 'to');
    const wait = Number(res.headers.get('retry-after'));
    assert.ok(wait > 500 && wait <= 600, `Retry-After ${wait}`);

    const cool = newRecipient();
    assert.equal((await send({ to: `+${cool}`, channel: 'whatsapp' }, { key: KEYS[COOL] })).status, 200);
    res = await send({ to: `+${cool}`, channel: 'whatsapp' }, { key: KEYS[COOL] });
    assertError(res, 429, 'resend_cooldown', 'to');
    assert.ok(Number(res.headers.get('retry-after')) <= 30);
  });

  test('200 concurrent verifications of the right code give exactly one success', async () => {
    const to = newRecipient();
    const { session, code } = await sendAndRead(to);
    const results = await Promise.all(Array.from({ length: 200 }, () => verify({ session_id: session, code })));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 1);
    assert.equal(statuses.filter((s) => s === 409).length, 199);
  });

  test('a test key works end to end on an outbox instance', async () => {
    const to = newRecipient();
    const { session, code } = await sendAndRead(to, { key: KEYS[SANDBOX] });
    assert.equal((await verify({ session_id: session, code }, { key: KEYS[SANDBOX] })).status, 200);
  });
});

describe('messages/send', () => {
  test('queues the rendered text: 202 with an id, a queued status and the expiry', async () => {
    const to = newRecipient();
    const start = Math.floor(Date.now() / 1000);
    const res = await message({
      phone_number: to,
      template_id: 'text',
      variables: { text: 'Hi {name}, order {order} has shipped. {unknown}', name: 'Ada', order: 42 },
      expires_in_seconds: 600,
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body), ['id', 'status', 'expires_at']);
    assert.match(res.body.id, /^msg_[0-9a-f]{32}$/);
    assert.equal(res.body.status, 'queued');
    assert.ok(Math.abs(secondsOf(res.body.expires_at) - (start + 600)) <= 2, res.body.expires_at);
    const msg = await w.nextMessage(to);
    assert.equal(msg.text, 'Hi Ada, order 42 has shipped. {unknown}');
    const plain = await message({ phone_number: `+${to}`, template_id: 'text', variables: { text: 'plain' } });
    assert.ok(Math.abs(secondsOf(plain.body.expires_at) - (start + 300)) <= 2, 'default 300 s');
  });
});

describe('Idempotency-Key', () => {
  test('the same key and body send once and replay the first response', async () => {
    const to = newRecipient();
    const headers = { 'Idempotency-Key': `order-${hex(8)}` };
    const body = { to: `+${to}`, channel: 'whatsapp' };
    const first = await send(body, { headers });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const again = await send(body, { headers });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.doesNotMatch(JSON.stringify(again.body), /"code"/, 'no code in a stored response');
    await w.nextMessage(to);
    // A second message for the replay would reach the outbox within one send window (200 ms).
    await assertNothingFor(SEND_WINDOW_MS, async () => (await w.outbox(to)).slice(1), 'a replay sends nothing');
    assert.equal((await w.outbox(to)).length, 1, 'one message');
  });

  test('concurrent requests with one key send once', async () => {
    const to = newRecipient();
    const headers = { 'Idempotency-Key': `burst-${hex(8)}` };
    const results = await Promise.all(Array.from({ length: 10 }, () => send({ to: `+${to}`, channel: 'whatsapp' }, { headers })));
    const ok = results.filter((r) => r.status === 200);
    assert.ok(ok.length >= 1);
    assert.equal(new Set(ok.map((r) => r.body.session_id)).size, 1, 'one session');
    for (const r of results.filter((x) => x.status !== 200)) assertError(r, 409, 'idempotency_in_progress', 'Idempotency-Key');
    await w.nextMessage(to);
    // All ten are answered: a second message would reach the outbox within one send window (200 ms).
    await assertNothingFor(SEND_WINDOW_MS, async () => (await w.outbox(to)).slice(1), 'ten requests with one key send once');
    assert.equal((await w.outbox(to)).length, 1);
  });

  test('the same key with another body is a 409; another API key has its own keys', async () => {
    const key = `k-${hex(8)}`;
    const headers = { 'Idempotency-Key': key };
    const to = newRecipient();
    assert.equal((await send({ to: `+${to}`, channel: 'whatsapp' }, { headers })).status, 200);
    assertError(await send({ to: `+${to}`, channel: 'sms' }, { headers }), 409, 'idempotency_conflict', 'Idempotency-Key');
    const other = await send({ to: `+${to}`, channel: 'sms' }, { headers, key: KEYS[QUICK] });
    assert.equal(other.status, 200);
    assert.equal(other.headers.get('idempotent-replayed'), null);
  });

  test('a refused request frees its key; an invalid key is a 400', async () => {
    const to = newRecipient();
    for (let i = 0; i < 5; i++) assert.equal((await send({ to: `+${to}`, channel: 'whatsapp' })).status, 200);
    const headers = { 'Idempotency-Key': `capped-${hex(8)}` };
    for (let i = 0; i < 2; i++) {
      assertError(await send({ to: `+${to}`, channel: 'whatsapp' }, { headers }), 429, 'too_many_sends');
    }
    assertError(await send({ to: `+${to}`, channel: 'whatsapp' }, { headers: { 'Idempotency-Key': 'k'.repeat(256) } }), 400, 'invalid_request', 'Idempotency-Key');
  });

  test('messages/send: the same key queues one message', async () => {
    const to = newRecipient();
    const headers = { 'Idempotency-Key': `note-${hex(8)}` };
    const body = { phone_number: to, template_id: 'text', variables: { text: 'once' } };
    const first = await message(body, { headers });
    const again = await message(body, { headers });
    assert.equal(first.status, 202);
    assert.equal(again.status, 202);
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    await w.nextMessage(to);
    // A second message for the replay would reach the outbox within one send window (200 ms).
    await assertNothingFor(SEND_WINDOW_MS, async () => (await w.outbox(to)).slice(1), 'a replayed messages/send queues nothing');
    assert.equal((await w.outbox(to)).length, 1);
  });
});

describe('rate limit', () => {
  test('120 requests a minute per API key and client IP; the 121st is a 429 that sends nothing', async () => {
    await awayFromMinuteBoundary();
    const ip = `203.0.113.${1 + Math.floor(Math.random() * 250)}`;
    // Bad requests count too: 119 of them, then one real send (120 in all).
    const cheap = await Promise.all(Array.from({ length: 119 }, () => verify({}, { ip })));
    assert.deepEqual([...new Set(cheap.map((r) => r.status))], [400]);
    const to = newRecipient();
    assert.equal((await send({ to: `+${to}`, channel: 'whatsapp' }, { ip })).status, 200);

    const refused = newRecipient();
    for (const res of [
      await send({ to: `+${refused}`, channel: 'whatsapp' }, { ip }),
      await message({ phone_number: refused, template_id: 'text', variables: { text: 'x' } }, { ip }),
      await verify({}, { ip }),
    ]) {
      assertError(res, 429, 'rate_limited', null);
      assert.equal(res.headers.get('retry-after'), '60');
    }
    // The same key from another address, and another key from this one, still pass.
    assert.equal((await verify({}, { ip: randomIp() })).status, 400);
    assert.equal((await verify({}, { ip, key: KEYS[QUICK] })).status, 400);
    await w.nextMessage(to);
    // The refused requests were answered before the accepted one's message arrived; a message
    // of theirs would reach the outbox within one send window (200 ms).
    await assertNothingFor(SEND_WINDOW_MS, () => w.outbox(refused), 'refused requests send nothing');
    assert.deepEqual(await w.outbox(refused), [], 'refused requests send nothing');
  });
});

describe('test keys against a real channel', () => {
  const WA_LIVE = '66666666-6666-4666-8666-666666666661';
  const WA_TEST = '66666666-6666-4666-8666-666666666662';
  const PHONE_ID = '109876543210555';
  const ACCESS_TOKEN = `EAAG${hex(12)}`;
  const waKeys = { [WA_LIVE]: `sk_live_${hex(12)}`, [WA_TEST]: `sk_test_${hex(12)}` };
  let meta;
  let real;
  before(async () => {
    meta = await startFakeMeta({ accessToken: ACCESS_TOKEN, phoneNumberId: PHONE_ID });
    const wa = (id) => ({ id, name: 'Acme', channel: 'whatsapp', whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url } });
    const tokens = { [DEMO]: `t_${hex(8)}`, [OTHER]: `t_${hex(8)}`, [QUICK]: `t_${hex(8)}`, ...waKeys };
    real = await startWorker({
      extraInstances: [wa(WA_LIVE), wa(WA_TEST)],
      secrets: {
        pepper: hex(32),
        tokens,
        instances: Object.fromEntries(Object.keys(tokens).map((id) => [id, { ...instanceSecretsFor(), whatsapp_access_token: ACCESS_TOKEN }])),
      },
    });
  });
  after(async () => {
    await real?.stop();
    await meta?.close();
  });

  test('a live key reaches the provider (the control)', async () => {
    const to = newRecipient();
    const res = await send({ to: `+${to}`, channel: 'whatsapp' }, { harness: real, key: waKeys[WA_LIVE] });
    assert.equal(res.status, 200);
    const [sent] = await meta.waitForMessages(1, { to });
    const res2 = await message({ phone_number: to, template_id: 'text', variables: { text: 'live note' } }, { harness: real, key: waKeys[WA_LIVE] });
    assert.equal(res2.status, 202);
    const msgs = await meta.waitForMessages(2, { to });
    assert.ok(sent && msgs.some((m) => m.text === 'live note'));
  });

  test('an sk_test_ key never reaches the provider, for codes or messages', async () => {
    const to = newRecipient();
    const res = await send({ to: `+${to}`, channel: 'whatsapp' }, { harness: real, key: waKeys[WA_TEST] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.match(res.body.session_id, SESSION);
    const res2 = await message({ phone_number: to, template_id: 'text', variables: { text: 'test note' } }, { harness: real, key: waKeys[WA_TEST] });
    assert.equal(res2.status, 202);
    // Both are answered; a send of either would reach the fake within one send window (200 ms).
    // (The dev outbox, where they go, cannot be read beside a real channel.)
    await assertNothingFor(SEND_WINDOW_MS, () => meta.requests.filter((r) => r.rawBody.includes(to)), 'the fake saw nothing for this number');
  });
});
