// Idempotency-Key on Hypersender's request-code (the same key and body within 24 h returns the
// first response and sends nothing; the stored response holds no code, a replay derives it
// again), and sk_test_ credentials on the Hypersender surface (delivered to the outbox, never
// to a provider). The WhatOTP endpoints' keys are in whatotp.test.mjs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker, newRecipient, DEMO } from '../support/worker.mjs';
import { startFakeMeta } from '../support/fake-meta.mjs';
import { SEND_WINDOW_MS, assertNothingFor, waitFor } from '../support/wait.mjs';

const WA = '88888888-8888-4888-8888-000000000001';
const PHONE_ID = '109876543210333';
const ACCESS_TOKEN = `EAAG${randomBytes(12).toString('hex')}`;

let meta;
let w;
before(async () => {
  meta = await startFakeMeta({ accessToken: ACCESS_TOKEN, phoneNumberId: PHONE_ID });
  w = await startWorker({
    extraInstances: [{ id: WA, name: 'Acme', channel: 'whatsapp', whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url } }],
    credentials: { [WA]: { whatsapp_access_token: ACCESS_TOKEN } },
  });
});
after(async () => {
  await w?.stop();
  await meta?.close();
});

const keyed = (key, body, opts = {}) => w.hs('request-code', body, { ...opts, headers: { 'Idempotency-Key': key, ...(opts.headers ?? {}) } });

test('a repeated Idempotency-Key with the same body sends once and answers the same', async () => {
  const r = newRecipient();
  const key = `order-${randomBytes(6).toString('hex')}`;
  const first = await keyed(key, { chatId: r }, { instance: WA });
  assert.equal(first.status, 200);
  const [m] = await meta.waitForMessages(1, { to: r });
  assert.ok(m.text.includes(first.body.data.code));
  const again = await keyed(key, { chatId: r }, { instance: WA });
  assert.equal(again.status, 200);
  assert.deepEqual(again.body, first.body, 'the same response, its code derived again');
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  // A second send for the replay would reach the fake within one send window (200 ms) of it.
  await assertNothingFor(SEND_WINDOW_MS, () => meta.messages.filter((x) => x.to === r).slice(1), 'a replay sends nothing');
  assert.equal(meta.messages.filter((x) => x.to === r).length, 1, 'sent once');
  const other = await keyed(key, { chatId: r, length: 8 }, { instance: WA });
  assert.equal(other.status, 422);
  assert.match(other.body.message, /different request/);
  const bad = await keyed(' ', { chatId: r }, { instance: WA });
  assert.equal(bad.status, 422);
  assert.deepEqual(Object.keys(bad.body.errors), ['Idempotency-Key']);
});

test('a failed request frees its key for a corrected retry', async () => {
  const r = newRecipient();
  const key = `k-${randomBytes(6).toString('hex')}`;
  // Six codes for one number: the sixth is refused by the send cap, with its own key.
  for (let i = 0; i < 5; i++) assert.equal((await w.hs('request-code', { chatId: r })).status, 200);
  assert.equal((await keyed(key, { chatId: r })).status, 429);
  const other = newRecipient();
  assert.equal((await keyed(key, { chatId: other })).status, 200, 'the key was freed by the refusal');
});

test('a replay derives the same code again from the challenge', async () => {
  const r = newRecipient();
  const key = `k-${randomBytes(6).toString('hex')}`;
  const first = await keyed(key, { chatId: r, length: 10, useLetter: true, allCapital: true });
  assert.equal(first.status, 200);
  // Read back through a replay after the original code changed hands: the replay derives it.
  const again = await keyed(key, { chatId: r, length: 10, useLetter: true, allCapital: true });
  assert.equal(again.body.data.code, first.body.data.code);
});

test('a sk_test_ credential on request-code never reaches a provider', async () => {
  const testKey = `sk_test_${randomBytes(12).toString('hex')}`;
  const sandbox = await startWorker({
    extraInstances: [{ id: WA, name: 'Acme', channel: 'whatsapp', whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url } }],
    credentials: { [WA]: { whatsapp_access_token: ACCESS_TOKEN } },
    secrets: {
      pepper: randomBytes(32).toString('hex'),
      tokens: { [DEMO]: `t_${randomBytes(8).toString('hex')}`, [WA]: testKey },
      instances: { [WA]: { whatsapp_access_token: ACCESS_TOKEN } },
    },
  });
  try {
    const r = newRecipient();
    const res = await sandbox.hs('request-code', { chatId: r }, { instance: WA });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // The code is delivered, to the outbox; a provider send would have come with it, or within
    // one send window (200 ms) of it.
    const data = await waitFor(async () => {
      const s = await sandbox.fetch(`/api/otp/v2/${WA}/otps/${res.body.data.uuid}`, { headers: { Authorization: `Bearer ${testKey}` } });
      const d = (await s.json()).data;
      return d.status !== 'pending' && d;
    }, { what: 'the sandboxed code to leave pending' });
    await assertNothingFor(SEND_WINDOW_MS, () => meta.messages.filter((x) => x.to === r), 'a sk_test_ credential never reaches a provider');
    assert.equal(data.channel, 'outbox');
    assert.equal(data.status, 'sent');
  } finally {
    await sandbox.stop();
  }
});
