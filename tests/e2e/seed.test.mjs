// The last gaps to the seed APIs, end to end: link replies as WhatsApp's interactive URL
// button (`cta_url`, shape checked by the fake Cloud API) with a text fallback; generate-link
// refused for an instance that does not send WhatsApp; only the seed's statuses leave the
// Worker (a claimed link reads `pending`, a superseded code `expired`); `{code}` in the prompt
// filled in; WhatOTP's `channel` naming the channel that delivers, operator templates (text
// per locale, or an approved WhatsApp template with its parameters), and
// `expires_in_seconds` enforced: a message not handed over in time is dropped, its status
// `expired`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DEMO, DEMO_PK, DEMO_TEMPLATES, instanceSecretsFor, newRecipient, startWorker } from '../support/worker.mjs';
import { startFakeMeta } from '../support/fake-meta.mjs';
import { startFakeTwilio } from '../support/fake-twilio.mjs';
import { waitFor } from '../support/wait.mjs';

const hex = (n) => randomBytes(n).toString('hex');
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;
const WA = '77777777-7777-4777-8777-000000000001';
const SMS = '77777777-7777-4777-8777-000000000002';
const BYO = '77777777-7777-4777-8777-000000000003';
const PHONE_ID = '109876543210777';
const BUSINESS = '15550007700';
const ACCESS_TOKEN = `EAAG${hex(12)}`;
const ACCOUNT = `AC${hex(16)}`;
const TWILIO_AUTH = hex(16);

/** POSTs (or GETs) a WhatOTP endpoint with `key`. */
async function v1(w, path, body, key, method = 'POST') {
  const res = await w.fetch(path, {
    method,
    headers: { 'Content-Type': 'application/json', 'CF-Connecting-IP': `10.9.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`, Authorization: `Bearer ${key}` },
    body: method === 'GET' ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** The live status of a challenge (the status lookup's `data`). */
async function lookup(w, instance, uuid) {
  const res = await w.fetch(`/api/otp/v2/${instance}/otps/${uuid}`, { headers: { Authorization: `Bearer ${w.secrets.tokens[instance]}` } });
  return (await res.json()).data;
}

/** Sends the prefilled text of `data.whatsapp_link` (or `link`) from `from`, signed as Meta does. */
async function sendPrefilled(w, instance, phoneNumberId, link, from) {
  const body = new URL(link).searchParams.get('text');
  const res = await w.sendWhatsApp(instance, { phoneNumberId, from, body });
  assert.equal(res.status, 200);
  return body;
}

describe('on real channels (fake WhatsApp Cloud API and Twilio)', () => {
  let meta;
  let twilio;
  let w;
  const KEYS = { [DEMO]: `sk_live_${hex(12)}`, [WA]: `sk_live_${hex(12)}`, [SMS]: `sk_live_${hex(12)}`, [BYO]: `sk_live_${hex(12)}` };

  before(async () => {
    meta = await startFakeMeta({
      accessToken: ACCESS_TOKEN,
      phoneNumberId: PHONE_ID,
      templates: { order_shipped: { category: 'UTILITY', language: 'en_US', params: 2 } },
    });
    twilio = await startFakeTwilio({ accountSid: ACCOUNT, authToken: TWILIO_AUTH });
    const creds = { whatsapp_access_token: ACCESS_TOKEN, twilio_auth_token: TWILIO_AUTH };
    w = await startWorker({
      extraInstances: [
        {
          id: WA, name: 'Acme', channel: 'whatsapp', business_number: BUSINESS,
          whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url },
          link: { button_text: 'Sign in to Acme' },
          templates: DEMO_TEMPLATES,
        },
        { id: SMS, name: 'Texts', channel: 'twilio_sms', business_number: BUSINESS, twilio: { account_sid: ACCOUNT, from: '+15550001111', api_base: twilio.url } },
        { id: BYO, name: 'Own', channel: 'webhook', business_number: BUSINESS, webhook: { url: 'https://sender.example/send' } },
      ],
      secrets: {
        pepper: hex(32),
        tokens: KEYS,
        instances: Object.fromEntries(Object.keys(KEYS).map((id) => [id, { ...instanceSecretsFor(), ...creds }])),
      },
    });
  });
  after(async () => {
    await w?.stop();
    await Promise.all([meta?.close(), twilio?.close()]);
  });

  test('the login URL comes back as a cta_url button that the Cloud API accepts', async () => {
    const gl = await w.hs('generate-link', { message: { success: 'Welcome back to {name}: {link}' } }, { instance: WA });
    assert.equal(gl.status, 200, JSON.stringify(gl.body));
    const from = newRecipient();
    await sendPrefilled(w, WA, PHONE_ID, gl.body.data.whatsapp_link, from);
    const [m] = await meta.waitForMessages(1, { to: from });
    assert.equal(m.type, 'interactive');
    assert.equal(m.interactive.type, 'cta_url');
    const { display_text: label, url } = m.interactive.action.parameters;
    assert.equal(label, 'Sign in to Acme', 'link.button_text');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/login\/[A-Za-z0-9_-]+$/);
    assert.equal(m.interactive.body.text, `Welcome back to Acme: ${url}`, 'the body stands on its own, URL included');
    assert.equal(meta.rejected.length, 0, meta.rejected.map((r) => r.reason).join('; '));
  });

  test('a reply over the 1024 characters of a cta_url body goes as text', async () => {
    const long = `${'Welcome! '.repeat(112)}{link}`;
    const gl = await w.hs('generate-link', { message: { success: long } }, { instance: WA });
    assert.equal(gl.status, 200, JSON.stringify(gl.body));
    const from = newRecipient();
    await sendPrefilled(w, WA, PHONE_ID, gl.body.data.whatsapp_link, from);
    const [m] = await meta.waitForMessages(1, { to: from });
    assert.equal(m.type, 'text');
    assert.ok(m.text.length > 1024);
    assert.match(m.text, /\/login\/[A-Za-z0-9_-]+$/);
  });

  test('{code} in the prompt is filled in, and that message claims the link', async () => {
    const gl = await w.hs('generate-link', { message: { prompt: 'Log in to {name} with {code}' } }, { instance: WA });
    assert.equal(gl.status, 200, JSON.stringify(gl.body));
    const { code, uuid, whatsapp_link: link } = gl.body.data;
    const text = new URL(link).searchParams.get('text');
    assert.equal(text, `Log in to Acme with ${code} [${code}] - DO NOT CHANGE THIS MESSAGE`);
    const from = newRecipient();
    await sendPrefilled(w, WA, PHONE_ID, link, from);
    await meta.waitForMessages(1, { to: from });
    const s = await lookup(w, WA, uuid);
    assert.equal(s.status, 'pending', 'claimed reads pending');
    assert.match(s.claimed_at, ISO);
  });

  test('generate-link is WhatsApp only: an SMS or own-sender instance is refused with a 400', async () => {
    for (const instance of [SMS, BYO]) {
      const res = await w.hs('generate-link', { name: 'Texts' }, { instance });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.deepEqual(res.body, {
        success: false,
        message: 'generate-link is WhatsApp only: this instance does not send WhatsApp messages.',
        data: null,
      });
    }
    assert.equal(twilio.messages.length, 0);
  });

  test('otp/send answers with the channel that delivers, not the one asked for', async () => {
    const cases = [[WA, 'whatsapp', 'whatsapp'], [WA, 'sms', 'whatsapp'], [SMS, 'whatsapp', 'sms']];
    for (const [instance, asked, expected] of cases) {
      const to = newRecipient();
      const res = await v1(w, '/v1/otp/send', { to: `+${to}`, channel: asked }, KEYS[instance]);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.channel, expected, `${instance} asked ${asked}`);
    }
  });

  test('an approved template goes to the Cloud API as a template with its parameters; the status says sent', async () => {
    const to = newRecipient();
    const res = await v1(w, '/v1/messages/send', { phone_number: `+${to}`, template_id: 'order_shipped', variables: { name: 'Ada', order: 42 } }, KEYS[WA]);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const [m] = await meta.waitForMessages(1, { to });
    assert.equal(m.type, 'template');
    assert.deepEqual(m.template, {
      name: 'order_shipped',
      language: { code: 'en_US' },
      components: [{ type: 'body', parameters: [{ type: 'text', text: 'Ada' }, { type: 'text', text: '42' }] }],
    });
    const s = await waitFor(async () => {
      const r = await v1(w, `/v1/messages/${res.body.id}`, null, KEYS[WA], 'GET');
      return r.body.status === 'sent' && r;
    }, { what: 'the message status sent' });
    assert.equal(s.status, 200);
    assert.deepEqual(Object.keys(s.body), ['id', 'status', 'channel', 'expires_at', 'sent_at']);
    assert.equal(s.body.channel, 'whatsapp');
    assert.match(s.body.sent_at, ISO);
    assert.equal(s.body.expires_at, res.body.expires_at);
  });

  test('a text template is sent as text on SMS; another instance cannot read its status', async () => {
    const to = newRecipient();
    const res = await v1(w, '/v1/messages/send', { phone_number: `+${to}`, template_id: 'text', variables: { text: 'Hi {who}', who: 'Ada' } }, KEYS[SMS]);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const [m] = await twilio.waitForMessages(1, { to: `+${to}` });
    assert.equal(m.body, 'Hi Ada');
    const other = await v1(w, `/v1/messages/${res.body.id}`, null, KEYS[WA], 'GET');
    assert.equal(other.status, 404);
    assert.equal(other.body.error.code, 'not_found');
    const post = await v1(w, `/v1/messages/${res.body.id}`, {}, KEYS[SMS]);
    assert.equal(post.status, 405);
  });
});

describe('on the outbox (the dev stand-in for WhatsApp)', () => {
  let w;
  before(async () => {
    w = await startWorker({ vars: { DEV_CLOCK: 'manual' } });
    // The demo's sk_test_ key is its WhatOTP key in /dev/info; a live key is added as a token.
    w.key = w.secrets.whatotpKey;
  });
  after(async () => {
    await w?.stop();
  });

  test('/dev/info lists the demo instance\'s template ids', async () => {
    const info = await (await w.fetch('/dev/info')).json();
    assert.deepEqual(info.template_ids, ['text', ...Object.keys(DEMO_TEMPLATES).sort()]);
  });

  test('generate-link works on the outbox, which records the reply as a cta_url', async () => {
    const gl = await w.hs('generate-link', {});
    assert.equal(gl.status, 200, JSON.stringify(gl.body));
    const from = newRecipient();
    await sendPrefilled(w, DEMO, '100000000000001', gl.body.data.whatsapp_link, from);
    const m = await w.nextMessage(from);
    assert.equal(m.kind, 'cta_url');
    assert.match(m.text, /\/login\/[A-Za-z0-9_-]+$/);
  });

  test('a superseded code reads expired in the status lookup, with failure superseded', async () => {
    const to = newRecipient();
    const first = (await w.hs('request-code', { chatId: to, expires: 60 })).body.data;
    await w.nextMessage(to);
    // With 29 s left the code would expire before it could be typed: a send starts a new one.
    await w.advanceClock(31);
    const second = await w.hs('request-code', { chatId: to, expires: 60 });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.notEqual(second.body.data.uuid, first.uuid);
    const s = await lookup(w, DEMO, first.uuid);
    assert.deepEqual([s.status, s.failure], ['expired', 'superseded']);
  });

  test('templates: text per locale, an approved template shown by name, unknown ids and missing variables refused', async () => {
    const to = newRecipient();
    const send = (body) => v1(w, '/v1/messages/send', { phone_number: `+${to}`, ...body }, w.key);
    let res = await send({ template_id: 'welcome', locale: 'pt-BR', variables: { app: 'Loja', name: 'Ana' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    let m = await w.nextMessage(to);
    assert.deepEqual([m.kind, m.text], ['text', 'Bem-vindo ao Loja, Ana!']);
    res = await send({ template_id: 'order_shipped', variables: { name: 'Ana', order: 'A-17' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    m = await w.nextMessage(to, 1);
    assert.deepEqual([m.kind, m.text], ['template', '[order_shipped] Ana | A-17']);

    const refused = [
      [{ template_id: 'nope', variables: {} }, 'template_id', /`template_id` must be `text` or a template of this instance \(order_shipped, welcome\)/],
      [{ template_id: 'order_shipped', variables: { name: 'Ana' } }, 'variables', /`variables` must have `order`/],
      [{ template_id: 'welcome', locale: 'not a tag!', variables: {} }, 'locale', /language tag/],
    ];
    for (const [body, field, message] of refused) {
      res = await send(body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invalid_request');
      assert.equal(res.body.error.field, field);
      assert.match(res.body.error.message, message);
    }
    assert.equal((await w.outbox(`+${to}`)).length, 2, 'nothing queued for a refused request');
  });

  test('otp/send names the outbox as its channel', async () => {
    const res = await v1(w, '/v1/otp/send', { to: `+${newRecipient()}`, channel: 'whatsapp' }, w.key);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.channel, 'outbox');
  });

  test('the widget poll says pending with claimed_at once the message claimed the link', async () => {
    const start = await w.fetch('/widget/v1/start', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: 'https://shop.example' },
      body: JSON.stringify({ publishable_key: DEMO_PK, mode: 'link' }),
    });
    const s = await start.json();
    assert.equal(start.status, 200, JSON.stringify(s));
    const poll = async () => (await w.fetch('/widget/v1/poll', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: 'https://shop.example' },
      body: JSON.stringify({ publishable_key: DEMO_PK, session: s.session, poll_secret: s.poll_secret }),
    })).json();
    assert.deepEqual(await poll(), { status: 'pending' });
    const from = newRecipient();
    await sendPrefilled(w, DEMO, '100000000000001', s.link, from);
    await w.nextMessage(from);
    const claimed = await poll();
    assert.equal(claimed.status, 'pending');
    assert.match(claimed.claimed_at, ISO);
  });

  // Last: it moves this Worker's clock.
  test('a message not handed over within expires_in_seconds is dropped and reads expired', async () => {
    // Sent in an instant on the outbox: sent.
    const to = newRecipient();
    const sent = await v1(w, '/v1/messages/send', { phone_number: `+${to}`, template_id: 'text', variables: { text: 'now' }, expires_in_seconds: 30 }, w.key);
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    await w.nextMessage(to);
    const ok = await waitFor(async () => {
      const r = await v1(w, `/v1/messages/${sent.body.id}`, null, w.key, 'GET');
      return r.body.status === 'sent' && r.body;
    }, { what: 'the status sent' });
    assert.equal(ok.channel, 'outbox');
    assert.equal(Date.parse(ok.expires_at) - Date.parse(ok.sent_at) <= 30_000, true);
    await w.advanceClock(31);
    const still = await v1(w, `/v1/messages/${sent.body.id}`, null, w.key, 'GET');
    assert.equal(still.body.status, 'sent', 'a sent message stays sent after its deadline');
  });
});

describe('expiry of queued messages', () => {
  let meta;
  let w;
  const key = `sk_live_${hex(12)}`;
  before(async () => {
    meta = await startFakeMeta({ accessToken: ACCESS_TOKEN, phoneNumberId: PHONE_ID });
    w = await startWorker({
      extraInstances: [{ id: WA, name: 'Acme', channel: 'whatsapp', whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url } }],
      secrets: {
        pepper: hex(32),
        tokens: { [DEMO]: `t_${hex(8)}`, [WA]: key },
        instances: { [DEMO]: instanceSecretsFor(), [WA]: { ...instanceSecretsFor(), whatsapp_access_token: ACCESS_TOKEN } },
      },
      vars: { DEV_CLOCK: 'manual' },
    });
  });
  after(async () => {
    await w?.stop();
    await meta?.close();
  });

  test('a message the provider keeps refusing past its deadline is dropped, its status expired', async () => {
    meta.failNext(1000, { status: 503, code: 131000, message: 'Service unavailable' });
    const to = newRecipient();
    const res = await v1(w, '/v1/messages/send', { phone_number: `+${to}`, template_id: 'text', variables: { text: 'Your order shipped' }, expires_in_seconds: 30 }, key);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const status = async () => (await v1(w, `/v1/messages/${res.body.id}`, null, key, 'GET')).body;
    // The first attempt fails (a retryable 503): still queued, its retry a few seconds away.
    await waitFor(() => meta.rejected.length >= 1, { what: 'a first refused attempt' });
    assert.equal((await status()).status, 'queued');
    await w.advanceClock(31);
    const s = await waitFor(async () => { const b = await status(); return b.status !== 'queued' && b; }, { timeout: 15_000, what: 'the message to leave the queue' });
    assert.deepEqual([s.status, s.channel, s.sent_at], ['expired', null, null]);
    // Dropped for good: the provider is well again, and still nothing reaches it.
    const attempts = meta.requests.length;
    meta.clearFailures();
    await w.advanceClock(600);
    await new Promise((r) => setTimeout(r, 2500)); // two alarm wakes on the dev clock (1 s each)
    assert.equal(meta.requests.length, attempts, 'no attempt after the drop');
    assert.equal(meta.messages.length, 0);
  });
});
