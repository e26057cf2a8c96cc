// Limits against abuse, in front of a real channel (a fake WhatsApp Cloud API that records
// every send): a country allowlist, the instance's hourly budget (sharded, approximate by a
// shard's worth), a per-number-range cap, and test numbers that get a fixed code and no
// delivery. Refused sends reach no provider.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker } from '../support/worker.mjs';
import { startFakeMeta } from '../support/fake-meta.mjs';
import { SEND_WINDOW_MS, assertNothingFor, waitFor } from '../support/wait.mjs';

const PHONE_ID = '109876543210222';
const ACCESS_TOKEN = `EAAG${randomBytes(12).toString('hex')}`;
const ids = {
  countries: '77777777-7777-4777-8777-000000000001',
  budget: '77777777-7777-4777-8777-000000000002',
  range: '77777777-7777-4777-8777-000000000003',
  testnum: '77777777-7777-4777-8777-000000000004',
  testoff: '77777777-7777-4777-8777-000000000005',
};
const TEST_NUMBER = '+15550009876';
const rand = (n) => String(Math.floor(Math.random() * 10 ** n)).padStart(n, '0');

let meta;
let w;
before(async () => {
  meta = await startFakeMeta({ accessToken: ACCESS_TOKEN, phoneNumberId: PHONE_ID });
  const base = { name: 'Acme', channel: 'whatsapp', whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url } };
  w = await startWorker({
    extraInstances: [
      { ...base, id: ids.countries, abuse: { allowed_countries: ['20', '+44'] } },
      { ...base, id: ids.budget, abuse: { hourly_budget: 4 } },
      { ...base, id: ids.range, abuse: { prefix_len: 7, prefix_limit: 2 } },
      { ...base, id: ids.testnum, abuse: { test_numbers: [{ number: TEST_NUMBER, code: '246810' }], test_numbers_enabled: true } },
      { ...base, id: ids.testoff, abuse: { test_numbers: [{ number: TEST_NUMBER, code: '246810' }] } },
    ],
    credentials: Object.fromEntries(Object.values(ids).map((id) => [id, { whatsapp_access_token: ACCESS_TOKEN }])),
  });
});
after(async () => {
  await w?.stop();
  await meta?.close();
});

const sentTo = (digits) => meta.messages.filter((m) => m.to === digits).length;

test('numbers outside the allowed countries are refused and nothing is sent', async () => {
  const uk = `447700${rand(6)}`;
  const us = `1415555${rand(4)}`;
  const eg = `20100${rand(7)}`;
  assert.equal((await w.hs('request-code', { chatId: `+${uk}` }, { instance: ids.countries })).status, 200);
  const res = await w.hs('request-code', { chatId: `+${us}` }, { instance: ids.countries });
  assert.equal(res.status, 422);
  assert.deepEqual(Object.keys(res.body.errors), ['chatId']);
  assert.match(res.body.message, /country this service sends to/);
  assert.equal((await w.hs('request-code', { chatId: eg }, { instance: ids.countries })).status, 200);
  await meta.waitForMessages(1, { to: eg });
  // A send for the refused number would have reached the fake by now (the later request's
  // send did); watch one more send window (200 ms) to be sure.
  await assertNothingFor(SEND_WINDOW_MS, () => sentTo(us), `nothing is sent to the refused +${us}`);
});

test("the hourly budget stops sends within a shard's worth of its limit", async () => {
  const results = [];
  for (let i = 0; i < 14; i++) {
    const to = `20101${rand(7)}`;
    const res = await w.hs('request-code', { chatId: to }, { instance: ids.budget });
    results.push({ to, res });
  }
  const ok = results.filter((r) => r.res.status === 200);
  const refused = results.filter((r) => r.res.status === 429);
  assert.equal(ok.length + refused.length, 14);
  assert.ok(ok.length >= 1 && ok.length <= 4 + 4 - 1, `${ok.length} sends passed a budget of 4 over 4 shards`);
  assert.ok(refused.length >= 14 - 7);
  for (const r of refused) {
    assert.match(r.res.body.message, /sending budget of this instance is spent/);
    const wait = Number(r.res.headers.get('retry-after'));
    assert.ok(wait >= 1 && wait <= 3600, `Retry-After ${wait}`);
  }
  // Every accepted send arrives; then, one send window (200 ms) after the last answer, no
  // refused send nor a second copy of an accepted one has.
  await waitFor(() => ok.every((r) => sentTo(r.to) >= 1), { what: 'a send for every accepted request' });
  await assertNothingFor(SEND_WINDOW_MS, () => [
    ...refused.filter((r) => sentTo(r.to) > 0).map((r) => `refused ${r.to}`),
    ...ok.filter((r) => sentTo(r.to) > 1).map((r) => `twice ${r.to}`),
  ], 'a refused send reaches no provider, an accepted one arrives once');
  for (const r of refused) assert.equal(sentTo(r.to), 0, 'a refused send reaches no provider');
  for (const r of ok) assert.equal(sentTo(r.to), 1);
});

test('at most 2 codes per number range per 10 minutes', async () => {
  const range = `2010${rand(3)}`; // 7 digits: the range
  const a = `${range}${rand(5)}`;
  const b = `${range}${rand(5)}`;
  const c = `${range}${rand(5)}`;
  const other = `2011${rand(8)}`;
  assert.equal((await w.hs('request-code', { chatId: a }, { instance: ids.range })).status, 200);
  assert.equal((await w.hs('request-code', { chatId: b }, { instance: ids.range })).status, 200);
  const third = await w.hs('request-code', { chatId: c }, { instance: ids.range });
  assert.equal(third.status, 429);
  assert.match(third.body.message, /numbers like this one/);
  assert.equal((await w.hs('request-code', { chatId: other }, { instance: ids.range })).status, 200);
  // The later request's send arrives; a send for the refused number would have too. One more
  // send window (200 ms) to be sure.
  await meta.waitForMessages(1, { to: other });
  await assertNothingFor(SEND_WINDOW_MS, () => sentTo(c), `nothing is sent to the refused ${c}`);
});

test('a test number gets its fixed code and no delivery, and is validated like any code', async () => {
  const res = await w.hs('request-code', { chatId: TEST_NUMBER }, { instance: ids.testnum });
  assert.equal(res.status, 200);
  assert.equal(res.body.data.code, '246810');
  // A delivery, had one been stored, would reach the fake within one send window (200 ms) of
  // this answer.
  await assertNothingFor(SEND_WINDOW_MS, () => sentTo('15550009876'), 'a test number never reaches a provider');
  const status = await w.fetch(`/api/otp/v2/${ids.testnum}/otps/${res.body.data.uuid}`, {
    headers: { Authorization: `Bearer ${w.secrets.tokens[ids.testnum]}` },
  });
  const data = (await status.json()).data;
  assert.equal(data.channel, 'test_number');
  assert.equal((await w.hs('validate-code', { chatId: TEST_NUMBER, code: '246810' }, { instance: ids.testnum })).status, 200);
});

test('test numbers are ignored with live credentials unless the instance enables them', async () => {
  const res = await w.hs('request-code', { chatId: TEST_NUMBER }, { instance: ids.testoff });
  assert.equal(res.status, 200);
  assert.notEqual(res.body.data.code, '246810');
  await meta.waitForMessages(1, { to: '15550009876' });
});
