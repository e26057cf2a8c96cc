// Delivery channels end to end against fake providers on 127.0.0.1 that check what the real
// ones check: WhatsApp Cloud API (text and authentication template), Twilio (SMS with the
// WebOTP line, WhatsApp), the site's own signed sender; the fallback chain with a fresh code;
// delivery receipts from both providers; messages in the requested locale.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { startWorker, newRecipient } from '../support/worker.mjs';
import { startFakeMeta, statusPayload, metaSignature } from '../support/fake-meta.mjs';
import { startFakeTwilio, twilioSignature, statusCallbackForm } from '../support/fake-twilio.mjs';
import { startCallbackReceiver } from '../support/callback-receiver.mjs';
import { waitFor } from '../support/wait.mjs';

const PHONE_ID = '109876543210111';
const ACCESS_TOKEN = `EAAG${randomBytes(12).toString('hex')}`;
const ACCOUNT = `AC${randomBytes(16).toString('hex')}`;
const AUTH = randomBytes(16).toString('hex');
const SMS_FROM = '+15550001111';
const WA_FROM = '+15550002222';
const ids = {
  wa: '66666666-6666-4666-8666-000000000001',
  template: '66666666-6666-4666-8666-000000000002',
  sms: '66666666-6666-4666-8666-000000000003',
  twwa: '66666666-6666-4666-8666-000000000004',
  byo: '66666666-6666-4666-8666-000000000005',
  metered: '66666666-6666-4666-8666-000000000006',
};

let meta;
let twilio;
let sender;
let w;

before(async () => {
  meta = await startFakeMeta({ accessToken: ACCESS_TOKEN, phoneNumberId: PHONE_ID });
  twilio = await startFakeTwilio({ accountSid: ACCOUNT, authToken: AUTH });
  sender = await startCallbackReceiver({ secret: `whsec_${randomBytes(32).toString('base64')}` });
  const whatsapp = { phone_number_id: PHONE_ID, api_base: meta.url };
  const tw = { account_sid: ACCOUNT, from: SMS_FROM, whatsapp_from: WA_FROM, api_base: twilio.url };
  const creds = { whatsapp_access_token: ACCESS_TOKEN, twilio_auth_token: AUTH, sender_secret: sender.secret };
  w = await startWorker({
    extraInstances: [
      { id: ids.wa, name: 'Acme', channel: 'whatsapp', fallback: ['twilio_sms'], whatsapp, twilio: tw, web_otp_domain: 'acme.example' },
      { id: ids.template, name: 'Acme', channel: 'whatsapp', whatsapp: { ...whatsapp, template: { name: 'otp_login', language: 'en_US' } } },
      { id: ids.sms, name: 'Acme', channel: 'twilio_sms', twilio: tw, web_otp_domain: 'acme.example' },
      { id: ids.twwa, name: 'Acme', channel: 'twilio_whatsapp', twilio: tw },
      { id: ids.byo, name: 'Acme', channel: 'webhook', webhook: { url: `${sender.url}/send` } },
      // Its own counters, for the metrics of fallbacks and failures.
      { id: ids.metered, name: 'Acme', channel: 'whatsapp', fallback: ['twilio_sms'], whatsapp, twilio: tw },
    ],
    credentials: Object.fromEntries(Object.values(ids).map((id) => [id, creds])),
  });
});
after(async () => {
  await w?.stop();
  await Promise.all([meta?.close(), twilio?.close(), sender?.close()]);
});

async function requestCode(instance, body) {
  const res = await w.hs('request-code', body, { instance });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.data;
}

async function status(instance, uuid) {
  const res = await w.fetch(`/api/otp/v2/${instance}/otps/${uuid}`, {
    headers: { Authorization: `Bearer ${w.secrets.tokens[instance]}` },
  });
  return (await res.json()).data;
}

describe('a code reaches each channel', () => {
  test('WhatsApp Cloud API, text', async () => {
    const r = newRecipient();
    const d = await requestCode(ids.wa, { chatId: r, name: 'Acme' });
    const [m] = await meta.waitForMessages(1, { to: r });
    assert.equal(m.type, 'text');
    assert.equal(m.text, `${d.code} is your Acme verification code. It expires in 30 minutes.`);
    const s = await waitFor(async () => { const x = await status(ids.wa, d.uuid); return x.status === 'sent' && x; }, { what: 'the status sent' });
    assert.equal(s.channel, 'whatsapp');
  });

  test('WhatsApp Cloud API, authentication template with the copy-code button', async () => {
    const r = newRecipient();
    const d = await requestCode(ids.template, { chatId: r });
    const [m] = await meta.waitForMessages(1, { to: r });
    assert.equal(m.type, 'template');
    assert.equal(m.template.name, 'otp_login');
    assert.equal(m.code, d.code);
  });

  test('Twilio SMS ends with a well-formed WebOTP line', async () => {
    const r = newRecipient();
    const d = await requestCode(ids.sms, { chatId: `+${r}` });
    const [m] = await twilio.waitForMessages(1, { to: `+${r}` });
    assert.equal(m.from, SMS_FROM);
    const lines = m.body.split('\n');
    assert.equal(lines.at(-1), `@acme.example #${d.code}`);
    assert.equal(lines.at(-2), '');
    assert.match(lines[0], new RegExp(`^${d.code} is your`));
  });

  test('Twilio WhatsApp', async () => {
    const r = newRecipient();
    const d = await requestCode(ids.twwa, { chatId: r });
    const [m] = await twilio.waitForMessages(1, { to: `whatsapp:+${r}` });
    assert.equal(m.to, `whatsapp:+${r}`);
    assert.equal(m.from, `whatsapp:${WA_FROM}`);
    assert.ok(m.body.includes(d.code));
    assert.ok(!m.body.includes('@acme.example'), 'no WebOTP line on WhatsApp');
  });

  test("the site's own sender gets a signed POST", async () => {
    const r = newRecipient();
    const before = sender.requests.length;
    const d = await requestCode(ids.byo, { chatId: r });
    const [req] = (await sender.waitFor(before + 1)).slice(before);
    assert.equal(req.path, '/send');
    assert.equal(req.verified, true, req.verifyError);
    const body = new Webhook(sender.secret).verify(req.rawBody, req.headers);
    assert.deepEqual(Object.keys(body), ['to', 'text', 'code', 'kind', 'challenge']);
    assert.deepEqual([body.to, body.code, body.kind, body.challenge], [`+${r}`, d.code, 'code', d.uuid]);
  });

  test('messages follow the locale asked for', async () => {
    const r = newRecipient();
    const d = await requestCode(ids.wa, { chatId: r, locale: 'pt-BR', name: 'Acme' });
    const [m] = await meta.waitForMessages(1, { to: r });
    assert.ok(m.text.includes(d.code));
    assert.doesNotMatch(m.text, /is your/);
    const bad = await w.hs('request-code', { chatId: r, locale: '12' }, { instance: ids.wa });
    assert.equal(bad.status, 422);
    assert.deepEqual(Object.keys(bad.body.errors), ['locale']);
  });
});

describe('fallback and receipts', () => {
  test('a provider failure falls back to the next channel with a new code', async () => {
    const r = newRecipient();
    meta.failRecipient(r, { status: 400, code: 131026, message: 'Message undeliverable' });
    const d = await requestCode(ids.wa, { chatId: r });
    const [sms] = await twilio.waitForMessages(1, { to: `+${r}` });
    const fresh = sms.body.split('\n').at(-1).split('#')[1];
    assert.match(fresh, /^\d{6}$/);
    assert.notEqual(fresh, d.code, 'the next channel carries a fresh code');
    assert.equal(meta.messages.filter((m) => m.to === r).length, 0);
    const s = await waitFor(async () => { const x = await status(ids.wa, d.uuid); return x.channel === 'twilio_sms' && x.status === 'sent' && x; }, { what: 'the fallback to Twilio SMS, sent' });
    assert.equal(s.uuid, d.uuid, 'the same challenge');
    const old = await w.hs('validate-code', { chatId: r, code: d.code }, { instance: ids.wa });
    assert.equal(old.status, 422, 'the old code is void');
    const ok = await w.hs('validate-code', { chatId: r, code: fresh }, { instance: ids.wa });
    assert.equal(ok.status, 200);
  });

  test('fallbacks and failures at the end of the chain are counted per channel and country', async () => {
    const [saved, lost] = [newRecipient(), newRecipient()];
    for (const r of [saved, lost]) meta.failRecipient(r, { status: 400, code: 131026, message: 'Message undeliverable' });
    twilio.failRecipient(`+${lost}`);
    const a = await requestCode(ids.metered, { chatId: saved });
    const b = await requestCode(ids.metered, { chatId: lost });
    await waitFor(async () => (await status(ids.metered, a.uuid)).status === 'sent', { what: 'the first code sent over SMS' });
    await waitFor(async () => (await status(ids.metered, b.uuid)).status === 'failed', { what: 'the second code given up' });
    const metrics = async () => (await (await w.fetch(`/api/otp/v2/${ids.metered}/metrics`, {
      headers: { Authorization: `Bearer ${w.secrets.tokens[ids.metered]}` },
    })).json()).data.code;
    const c = await waitFor(async () => { const m = await metrics(); return m.failed === 1 && m.fallbacks === 2 && m; }, { what: 'one failure and two fallbacks counted' });
    assert.equal(c.sent, 2);
    assert.equal(c.delivered, 1);
    assert.deepEqual(c.by_channel.whatsapp, { sent: 2, fallback: 2 });
    assert.deepEqual(c.by_channel.twilio_sms, { delivered: 1, failed: 1 });
    assert.deepEqual(c.by_country['20'], { sent: 2, delivered: 1, failed: 1, fallback: 2 });
    assert.equal(c.conversion_rate, 0);
  });

  test('Meta receipts move the status; a bad signature changes nothing; a failed one falls back', async () => {
    const r = newRecipient();
    const d = await requestCode(ids.wa, { chatId: r });
    const [m] = await meta.waitForMessages(1, { to: r });
    const post = (payload, secret = w.secrets.instances[ids.wa].whatsapp_app_secret) => {
      const raw = JSON.stringify(payload);
      return w.fetch(`/webhooks/whatsapp/${ids.wa}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': metaSignature(secret, raw) },
        body: raw,
      });
    };
    await waitFor(async () => (await status(ids.wa, d.uuid)).status === 'sent', { what: 'the status sent' });
    const forged = await post(statusPayload({ phoneNumberId: PHONE_ID, id: m.id, status: 'failed', recipientId: r, errors: [{ code: 131026, title: 'Message undeliverable' }] }), 'wrong-secret');
    assert.equal(forged.status, 401);
    assert.equal((await status(ids.wa, d.uuid)).channel, 'whatsapp');
    assert.equal((await post(statusPayload({ phoneNumberId: PHONE_ID, id: m.id, status: 'delivered', recipientId: r }))).status, 200);
    assert.equal((await status(ids.wa, d.uuid)).delivery, 'delivered');
    assert.equal((await post(statusPayload({ phoneNumberId: PHONE_ID, id: m.id, status: 'failed', recipientId: r, errors: [{ code: 131026, title: 'Message undeliverable' }] }))).status, 200);
    const [sms] = await twilio.waitForMessages(1, { to: `+${r}` });
    assert.ok(sms.body.includes('@acme.example #'));
    await waitFor(async () => (await status(ids.wa, d.uuid)).channel === 'twilio_sms', { what: 'fallback after a failed receipt' });
  });

  test('Twilio status callbacks move the status, and are signature-checked', async () => {
    const r = newRecipient();
    const d = await requestCode(ids.sms, { chatId: r });
    const [m] = await twilio.waitForMessages(1, { to: `+${r}` });
    await waitFor(async () => (await status(ids.sms, d.uuid)).status === 'sent', { what: 'the status sent' });
    const url = `${w.url}/webhooks/twilio/${ids.sms}`;
    const form = statusCallbackForm({ messageSid: m.sid, status: 'delivered', to: `+${r}`, accountSid: ACCOUNT, from: SMS_FROM });
    const post = (sig) => w.fetch(`/webhooks/twilio/${ids.sms}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': sig },
      body: new URLSearchParams(form).toString(),
    });
    assert.equal((await post('Zm9yZ2Vk')).status, 401);
    assert.equal((await status(ids.sms, d.uuid)).delivery ?? null, null);
    assert.equal((await post(twilioSignature(AUTH, url, form))).status, 200);
    assert.equal((await status(ids.sms, d.uuid)).delivery, 'delivered');
  });
});
