// Self-test of the provider fakes in tests/support: each fake accepts a correct request with
// the real provider's body, refuses a request missing each checked thing with the provider's
// error, and its knobs and helpers work. Run: node --test tests/support/selftest/
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import { startFakeMeta, inboundTextPayload, statusPayload, metaSignature } from '../fake-meta.mjs';
import {
  startFakeTwilio, twilioSignature, inboundWhatsappForm, statusCallbackForm,
} from '../fake-twilio.mjs';
import { startCallbackReceiver } from '../callback-receiver.mjs';

async function call(url, { method = 'POST', headers = {}, body } = {}) {
  const res = await fetch(url, { method, headers, body, redirect: 'manual' });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

// ---------------------------------------------------------------------------------------------
describe('fake Meta WhatsApp Cloud API', () => {
  const TOKEN = 'EAAtest-token-123';
  const PHONE_ID = '106540352242922';
  let meta;
  before(async () => {
    meta = await startFakeMeta({ accessToken: TOKEN, phoneNumberId: PHONE_ID });
  });
  after(() => meta.close());
  beforeEach(() => meta.reset());

  const send = (body, { token = TOKEN, path, contentType = 'application/json', raw } = {}) =>
    call(`${meta.url}${path ?? `/v21.0/${PHONE_ID}/messages`}`, {
      headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(contentType ? { 'content-type': contentType } : {}) },
      body: raw ?? JSON.stringify(body),
    });
  const text = (over = {}) => ({ messaging_product: 'whatsapp', recipient_type: 'individual', to: '16505551234', type: 'text', text: { body: '123456 is your code' }, ...over });
  const auth = (code = '482913', over = {}) => ({
    messaging_product: 'whatsapp',
    to: '16505551234',
    type: 'template',
    template: {
      name: 'otp_code',
      language: { code: 'en_US' },
      components: [
        { type: 'body', parameters: [{ type: 'text', text: code }] },
        { type: 'button', sub_type: 'url', index: '0', parameters: [{ type: 'text', text: code }] },
      ],
      ...over,
    },
  });
  function assertGraphError(r, status, code, { type = 'OAuthException', details } = {}) {
    assert.equal(r.status, status, r.text);
    assert.equal(r.json.error.code, code, r.text);
    assert.equal(r.json.error.type, type);
    assert.equal(typeof r.json.error.message, 'string');
    assert.match(r.json.error.fbtrace_id, /^[A-Za-z0-9_-]{11}$/);
    if (details) assert.match(r.json.error.error_data.details, details);
  }

  test('a text message is accepted with the Cloud API success body and recorded', async () => {
    const r = await send(text());
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['messaging_product', 'contacts', 'messages']);
    assert.equal(r.json.messaging_product, 'whatsapp');
    assert.deepEqual(r.json.contacts, [{ input: '16505551234', wa_id: '16505551234' }]);
    assert.equal(r.json.messages.length, 1);
    assert.match(r.json.messages[0].id, /^wamid\.[A-Za-z0-9+/]+=*$/);
    assert.equal(Buffer.from(r.json.messages[0].id.slice(6), 'base64').includes('16505551234'), true);
    assert.equal(meta.messages.length, 1);
    const m = meta.messages[0];
    assert.equal(m.id, r.json.messages[0].id);
    assert.equal(m.to, '16505551234');
    assert.equal(m.type, 'text');
    assert.equal(m.text, '123456 is your code');
    assert.ok(m.receivedAt instanceof Date);
    assert.deepEqual(m.body, text());
    assert.equal(meta.rejected.length, 0);
  });

  test('text with preview_url and the 4096-character limit is accepted', async () => {
    assert.equal((await send(text({ text: { body: 'x'.repeat(4096), preview_url: false } }))).status, 200);
  });

  test('an authentication template is accepted, with message_status accepted, and its code recorded', async () => {
    const r = await send(auth('482913'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.messages[0].message_status, 'accepted');
    assert.equal(meta.messages[0].type, 'template');
    assert.equal(meta.messages[0].template.name, 'otp_code');
    assert.equal(meta.messages[0].code, '482913');
    assert.equal((await send(auth('ABCDEFGHIJKLMN'))).status, 200, '14 characters is under 15');
  });

  test('no bearer token: 401 code 104 OAuthException', async () => {
    const r = await send(text(), { token: null });
    assertGraphError(r, 401, 104);
    assert.equal(r.json.error.message, 'An access token is required to request this resource.');
    assert.equal(meta.rejected.at(-1).reason, 'missing bearer token');
  });

  test('wrong bearer token: 401 with Graph\'s code 190 body', async () => {
    const r = await send(text(), { token: 'EAAnope' });
    assertGraphError(r, 401, 190);
    assert.deepEqual(Object.keys(r.json.error), ['message', 'type', 'code', 'fbtrace_id']);
    assert.equal(r.json.error.message, 'Invalid OAuth access token - Cannot parse access token');
    assert.match(r.headers.get('www-authenticate'), /^OAuth "Facebook Platform" "invalid_token"/);
    const basic = await call(`${meta.url}/v21.0/${PHONE_ID}/messages`, { headers: { authorization: `Basic ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(text()) });
    assertGraphError(basic, 401, 104);
    assert.equal(meta.messages.length, 0);
  });

  test('unknown phone number id: 400 code 100 subcode 33 "Unsupported post request"', async () => {
    const r = await send(text(), { path: '/v21.0/999999999/messages' });
    assertGraphError(r, 400, 100, { type: 'GraphMethodException' });
    assert.equal(r.json.error.error_subcode, 33);
    assert.match(r.json.error.message, /^Unsupported post request\. Object with ID '999999999' does not exist/);
  });

  test('another API version or path: 400 code 2500', async () => {
    assertGraphError(await send(text(), { path: `/v20.0/${PHONE_ID}/messages` }), 400, 2500);
    assertGraphError(await send(text(), { path: `/v21.0/${PHONE_ID}/message` }), 400, 2500);
  });

  test('a body not sent as application/json is not read: code 100', async () => {
    const r = await send(null, { contentType: 'application/x-www-form-urlencoded', raw: 'messaging_product=whatsapp&to=16505551234' });
    assertGraphError(r, 400, 100, { details: /Content-Type must be application\/json/ });
    assert.match(meta.rejected.at(-1).reason, /content-type/);
    assertGraphError(await send(null, { contentType: null, raw: JSON.stringify(text()) }), 400, 100);
    assertGraphError(await send(null, { raw: '{not json' }), 400, 100, { details: /not valid JSON/ });
  });

  const refusals = [
    ['messaging_product missing', () => { const b = text(); delete b.messaging_product; return b; }, 100, /messaging_product is required/],
    ['messaging_product not whatsapp', () => text({ messaging_product: 'sms' }), 100, /messaging_product/],
    ['recipient_type not individual', () => text({ recipient_type: 'group' }), 100, /recipient_type/],
    ['to missing', () => { const b = text(); delete b.to; return b; }, 100, /to is required/],
    ['to with +', () => text({ to: '+16505551234' }), 100, /8 to 15 digits/],
    ['to too short', () => text({ to: '1234567' }), 100, /8 to 15 digits/],
    ['to too long', () => text({ to: '1234567890123456' }), 100, /8 to 15 digits/],
    ['to a number', () => text({ to: 16505551234 }), 100, /8 to 15 digits/],
    ['text missing', () => { const b = text(); delete b.text; return b; }, 100, /text is required/],
    ['text.body missing', () => text({ text: {} }), 100, /text\['body'\] is required/],
    ['text.body empty', () => text({ text: { body: '' } }), 100, /non-empty/],
    ['text.body over 4096', () => text({ text: { body: 'x'.repeat(4097) } }), 100, /4096/],
    ['preview_url not boolean', () => text({ text: { body: 'hi', preview_url: 'yes' } }), 100, /preview_url/],
    ['unknown type', () => text({ type: 'image' }), 100, /type must be one of/],
    ['template missing', () => { const b = auth(); delete b.template; return b; }, 100, /template is required/],
    ['template.name missing', () => { const b = auth(); delete b.template.name; return b; }, 100, /template\['name'\] is required/],
    ['template.language missing', () => { const b = auth(); delete b.template.language; return b; }, 100, /language'\] is required/],
    ['template.language.code missing', () => auth('1', { language: {} }), 100, /\['code'\] is required/],
    ['components not an array', () => auth('1', { components: {} }), 100, /must be an array/],
    ['no body parameter', () => { const b = auth(); b.template.components.shift(); return b; }, 132000, /localizable_params \(0\)/],
    ['two body parameters', () => { const b = auth(); b.template.components[0].parameters.push({ type: 'text', text: 'x' }); return b; }, 132000, /localizable_params \(2\)/],
    ['body parameter not text', () => { const b = auth(); b.template.components[0].parameters = [{ type: 'currency' }]; return b; }, 100, /type:'text'/],
    ['no button', () => { const b = auth(); b.template.components.pop(); return b; }, 132000, /button components \(0\)/],
    ['button sub_type quick_reply', () => { const b = auth(); b.template.components[1].sub_type = 'quick_reply'; return b; }, 100, /sub_type/],
    ['button index 1', () => { const b = auth(); b.template.components[1].index = '1'; return b; }, 100, /index/],
    ['button index a number', () => { const b = auth(); b.template.components[1].index = 0; return b; }, 100, /index/],
    ['button without parameter', () => { const b = auth(); b.template.components[1].parameters = []; return b; }, 132000, /button: number of parameters \(0\)/],
    ['button code differs from body code', () => { const b = auth('111111'); b.template.components[1].parameters[0].text = '222222'; return b; }, 131009, /same one-time code/],
    ['code of 15 characters', () => auth('ABCDEFGHIJKLMNO'), 131009, /under 15 characters/],
  ];
  for (const [name, make, code, details] of refusals) {
    test(`refused: ${name} -> code ${code}`, async () => {
      const r = await send(make());
      assertGraphError(r, 400, code, { details });
      assert.equal(r.json.error.error_data.messaging_product, 'whatsapp');
      assert.match(r.json.error.message, new RegExp(`^\\(#${code}\\) `));
      assert.equal(meta.messages.length, 0);
      assert.equal(meta.rejected.length, 1);
      assert.equal(typeof meta.rejected[0].reason, 'string');
    });
  }

  test('templates option: unknown names are 404 code 132001; non-authentication ones are not shape-checked', async () => {
    const strict = await startFakeMeta({
      accessToken: TOKEN, phoneNumberId: PHONE_ID, version: 'v22.0',
      templates: { otp_code: { category: 'AUTHENTICATION', language: 'en_US' }, hello: { category: 'UTILITY' } },
    });
    try {
      const post = (body) => call(`${strict.url}/v22.0/${PHONE_ID}/messages`, { headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal((await post(auth())).status, 200);
      assertGraphError(await post(auth('1', { name: 'nope' })), 404, 132001, { details: /nope/ });
      assertGraphError(await post(auth('1', { language: { code: 'fr' } })), 404, 132001);
      assert.equal((await post({ messaging_product: 'whatsapp', to: '447700900123', type: 'template', template: { name: 'hello', language: { code: 'en' } } })).status, 200);
      assert.equal(strict.sendUrl, `${strict.url}/v22.0/${PHONE_ID}/messages`);
    } finally {
      await strict.close();
    }
  });

  test('a cta_url interactive message is checked as the Cloud API checks it', async () => {
    const cta = (over = {}, params = {}) => ({
      messaging_product: 'whatsapp', recipient_type: 'individual', to: '16505551234', type: 'interactive',
      interactive: { type: 'cta_url', body: { text: 'Here is your login link' }, action: { name: 'cta_url', parameters: { display_text: 'Log in', url: 'https://otp.example/login/abc', ...params } }, ...over },
    });
    const ok = await send(cta());
    assert.equal(ok.status, 200, ok.text);
    assert.equal(meta.messages[0].type, 'interactive');
    assert.equal(meta.messages[0].text, 'Here is your login link');
    assert.equal(meta.messages[0].interactive.action.parameters.url, 'https://otp.example/login/abc');
    assert.equal((await send(cta({}, { url: 'http://127.0.0.1:8787/login/abc' }))).status, 200, 'loopback http, as local setups use');
    const cases = [
      [cta({}, { display_text: undefined }), /display_text/],
      [cta({}, { display_text: 'x'.repeat(21) }), /1 to 20/],
      [cta({}, { url: undefined }), /url/],
      [cta({}, { url: 'http://otp.example/login/abc' }), /https/],
      [cta({ body: { text: 'x'.repeat(1025) } }), /1024/],
      [cta({ body: undefined }), /body/],
      [cta({ type: 'button' }), /cta_url/],
      [cta({ action: { name: 'open', parameters: { display_text: 'Log in', url: 'https://a.example' } } }), /cta_url/],
    ];
    for (const [body, details] of cases) assertGraphError(await send(body), 400, 100, { details });
    assert.equal(meta.messages.length, 2);
  });

  test('a utility template must carry as many non-empty body parameters as it has', async () => {
    const strict = await startFakeMeta({ accessToken: TOKEN, phoneNumberId: PHONE_ID, templates: { order_shipped: { category: 'UTILITY', language: 'en_US', params: 2 } } });
    try {
      const post = (parameters) => call(`${strict.url}/v21.0/${PHONE_ID}/messages`, {
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messaging_product: 'whatsapp', to: '447700900123', type: 'template', template: { name: 'order_shipped', language: { code: 'en_US' }, components: [{ type: 'body', parameters }] } }),
      });
      const p = (text) => ({ type: 'text', text });
      assert.equal((await post([p('Ada'), p('42')])).status, 200);
      assertGraphError(await post([p('Ada')]), 400, 132000);
      assertGraphError(await post([p('Ada'), p('')]), 400, 100);
      assert.equal(strict.messages.length, 1);
    } finally {
      await strict.close();
    }
  });

  test('failNext fails the next sends with a Graph error, then sends succeed again', async () => {
    meta.failNext(2);
    const a = await send(text());
    assertGraphError(a, 500, 131000, { details: /Something went wrong/ });
    assert.equal(a.json.error.message, '(#131000) Something went wrong');
    assert.equal((await send(text({ text: {} }))).status, 400, 'an invalid request does not use up a failure');
    assertGraphError(await send(text()), 500, 131000);
    assert.equal((await send(text())).status, 200);
    meta.failNext(1, { status: 429, code: 130429, message: 'Rate limit hit' });
    assertGraphError(await send(text()), 429, 130429, { details: /Rate limit hit/ });
    assert.equal(meta.messages.length, 1);
    assert.deepEqual(meta.rejected.map((r) => r.reason), ['failNext', 'text.body missing', 'failNext', 'failNext']);
  });

  test('failRecipient fails every send to that number only', async () => {
    meta.failRecipient('+447700900999');
    for (let i = 0; i < 2; i++) {
      const r = await send(text({ to: '447700900999' }));
      assertGraphError(r, 400, 131026, { details: /Message undeliverable/ });
    }
    assert.equal((await send(text())).status, 200);
    meta.clearFailures();
    assert.equal((await send(text({ to: '447700900999' }))).status, 200);
  });

  test('waitForMessages waits for n (optionally to one number) and times out with a reason', async () => {
    const waiting = meta.waitForMessages(2, { to: '+447700900111' });
    await send(text());
    await send(text({ to: '447700900111' }));
    setTimeout(() => send(text({ to: '447700900111', text: { body: 'second' } })), 30);
    const got = await waiting;
    assert.equal(got.length, 2);
    assert.deepEqual(got.map((m) => m.to), ['447700900111', '447700900111']);
    assert.equal((await meta.waitForMessages(1)).length, 3, 'resolves at once when already there');
    await send(text({ to: '+1' }));
    await assert.rejects(meta.waitForMessages(4, { timeoutMs: 50 }), /waited 50 ms for 4 message\(s\), have 3 \(rejected: to is not 8-15 digits\)/);
  });

  test('setDelay delays answers', async () => {
    meta.setDelay(120);
    const t0 = Date.now();
    assert.equal((await send(text())).status, 200);
    assert.ok(Date.now() - t0 >= 100);
  });

  test('inboundTextPayload is the Cloud API messages webhook for a text', () => {
    const p = inboundTextPayload({
      phoneNumberId: '106540352242922', displayNumber: '15550783881', from: '16505551234',
      body: 'Does it come in another color?', id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=',
      timestamp: 1749416383, name: 'Sheena Nelson', wabaId: '102290129340398',
    });
    assert.equal(JSON.stringify(p), JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{
        id: '102290129340398',
        changes: [{
          value: {
            messaging_product: 'whatsapp',
            metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
            contacts: [{ profile: { name: 'Sheena Nelson' }, wa_id: '16505551234' }],
            messages: [{
              from: '16505551234', id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=',
              timestamp: '1749416383', type: 'text', text: { body: 'Does it come in another color?' },
            }],
          },
          field: 'messages',
        }],
      }],
    }));
    const d = inboundTextPayload({ phoneNumberId: '1', from: '447700900123', body: 'hi' });
    const msg = d.entry[0].changes[0].value.messages[0];
    assert.match(msg.id, /^wamid\./);
    assert.match(msg.timestamp, /^\d{10}$/);
  });

  test('statusPayload builds sent and failed status webhooks', () => {
    const sent = statusPayload({ phoneNumberId: '1', id: 'wamid.X', status: 'sent', recipientId: '16505551234', timestamp: 1750857384 });
    const v = sent.entry[0].changes[0].value;
    assert.equal(sent.object, 'whatsapp_business_account');
    assert.equal(sent.entry[0].changes[0].field, 'messages');
    assert.deepEqual(v.metadata, { display_phone_number: '15550783881', phone_number_id: '1' });
    assert.deepEqual(v.statuses, [{
      id: 'wamid.X', status: 'sent', timestamp: '1750857384', recipient_id: '16505551234',
      pricing: { billable: true, pricing_model: 'PMP', category: 'authentication', type: 'regular' },
    }]);
    const failed = statusPayload({ phoneNumberId: '1', id: 'wamid.Y', status: 'failed', recipientId: '1', errors: [{ code: 131026, title: 'Message undeliverable.' }] });
    const s = failed.entry[0].changes[0].value.statuses[0];
    assert.equal(s.pricing, undefined);
    assert.deepEqual(s.errors, [{
      code: 131026, title: 'Message undeliverable.', message: 'Message undeliverable.',
      error_data: { details: 'Message undeliverable.' },
      href: 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/',
    }]);
  });

  test('metaSignature matches HMAC-SHA256 known answers (computed with Python hmac)', () => {
    assert.equal(metaSignature('app-secret-123', '{"object":"whatsapp_business_account"}'),
      'sha256=dbc74863d4cd49044ec08695c8e2eb2b18119ff8d1e681226a93be56fc391aac');
    assert.equal(metaSignature('été', Buffer.from('café ✓', 'utf8')),
      'sha256=a8bf75b458ee426f2bf284e8bfce278ca2591f95e2b52dfe2f9cf6e6a8cc1232');
  });
});

// ---------------------------------------------------------------------------------------------
describe('fake Twilio Messages API', () => {
  const SID = 'AC' + '0123456789abcdef'.repeat(2);
  const TOKEN = 'twilio-auth-token-xyz';
  const SERVICE = 'MG' + 'fedcba9876543210'.repeat(2);
  let tw;
  before(async () => {
    tw = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
  });
  after(() => tw.close());
  beforeEach(() => tw.reset());

  const basic = (user = SID, pass = TOKEN) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const send = (params, { authorization = basic(), sid = SID, contentType = 'application/x-www-form-urlencoded', raw } = {}) =>
    call(`${tw.url}/2010-04-01/Accounts/${sid}/Messages.json`, {
      headers: { ...(authorization ? { authorization } : {}), ...(contentType ? { 'content-type': contentType } : {}) },
      body: raw ?? new URLSearchParams(params).toString(),
    });
  const sms = (over = {}) => ({ To: '+16505551234', From: '+15017122661', Body: 'Your code is 123456', ...over });
  function assertTwilioError(r, status, code) {
    assert.equal(r.status, status, r.text);
    assert.deepEqual(Object.keys(r.json), ['code', 'message', 'more_info', 'status']);
    assert.equal(r.json.code, code);
    assert.equal(r.json.status, status);
    assert.equal(r.json.more_info, `https://www.twilio.com/docs/errors/${code}`);
  }

  test('an SMS is accepted: 201 Message resource, recorded', async () => {
    const r = await send(sms({ StatusCallback: 'https://otp.example.com/twilio/status' }));
    assert.equal(r.status, 201, r.text);
    const m = r.json;
    assert.match(m.sid, /^SM[0-9a-f]{32}$/);
    assert.equal(m.status, 'queued');
    assert.equal(m.to, '+16505551234');
    assert.equal(m.from, '+15017122661');
    assert.equal(m.body, 'Your code is 123456');
    assert.equal(m.account_sid, SID);
    assert.equal(m.api_version, '2010-04-01');
    assert.equal(m.direction, 'outbound-api');
    assert.equal(m.messaging_service_sid, null);
    assert.equal(m.error_code, null);
    assert.equal(m.num_segments, '1');
    assert.match(m.date_created, /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    assert.equal(m.uri, `/2010-04-01/Accounts/${SID}/Messages/${m.sid}.json`);
    assert.equal(m.subresource_uris.media, `/2010-04-01/Accounts/${SID}/Messages/${m.sid}/Media.json`);
    assert.equal(tw.messages.length, 1);
    const rec = tw.messages[0];
    assert.equal(rec.sid, m.sid);
    assert.equal(rec.statusCallback, 'https://otp.example.com/twilio/status');
    assert.equal(rec.params.Body, 'Your code is 123456');
    assert.equal(tw.sendUrl, `${tw.url}/2010-04-01/Accounts/${SID}/Messages.json`);
  });

  test('WhatsApp and Messaging Service sends are accepted', async () => {
    const wa = await send({ To: 'whatsapp:+16505551234', From: 'whatsapp:+14155238886', Body: '123456 is your code' });
    assert.equal(wa.status, 201, wa.text);
    assert.equal(wa.json.to, 'whatsapp:+16505551234');
    const svc = await send({ To: '+16505551234', MessagingServiceSid: SERVICE, Body: 'x'.repeat(1600) });
    assert.equal(svc.status, 201, svc.text);
    assert.equal(svc.json.status, 'accepted');
    assert.equal(svc.json.from, null);
    assert.equal(svc.json.messaging_service_sid, SERVICE);
    const tpl = await send({ To: 'whatsapp:+16505551234', From: 'whatsapp:+14155238886', ContentSid: 'HX' + '1'.repeat(32), ContentVariables: '{"1":"123456"}' });
    assert.equal(tpl.status, 201, tpl.text);
  });

  test('no, wrong or other-account credentials: 401 code 20003 "Authenticate"', async () => {
    for (const authorization of [null, basic(SID, 'wrong'), basic('AC' + 'f'.repeat(32), TOKEN), `Bearer ${TOKEN}`]) {
      const r = await send(sms(), { authorization });
      assertTwilioError(r, 401, 20003);
      assert.deepEqual(r.json, { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 });
    }
    const otherPath = await send(sms(), { sid: 'AC' + 'f'.repeat(32) });
    assertTwilioError(otherPath, 401, 20003);
    assert.match(tw.rejected.at(-1).reason, /path AccountSid/);
    assert.equal(tw.messages.length, 0);
  });

  test('unknown path: 404 code 20404', async () => {
    const r = await call(`${tw.url}/2010-04-01/Accounts/${SID}/Messages`, { headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(sms()).toString() });
    assertTwilioError(r, 404, 20404);
  });

  test('a JSON body is not read: 400 code 21604 (To missing)', async () => {
    const r = await send(null, { contentType: 'application/json', raw: JSON.stringify(sms()) });
    assertTwilioError(r, 400, 21604);
    assert.match(tw.rejected.at(-1).reason, /content-type application\/json/);
  });

  const refusals = [
    ['To missing', () => { const p = sms(); delete p.To; return p; }, 21604],
    ['To without +', () => sms({ To: '16505551234' }), 21211],
    ['To with letters', () => sms({ To: '+1650555abcd' }), 21211],
    ['To on an unknown channel', () => sms({ To: 'messenger:+16505551234' }), 21211],
    ['From and MessagingServiceSid missing', () => { const p = sms(); delete p.From; return p; }, 21603],
    ['From not a number', () => sms({ From: 'EdgeOTP!' }), 21606],
    ['MessagingServiceSid malformed', () => ({ To: '+16505551234', MessagingServiceSid: 'MG123', Body: 'x' }), 21701],
    ['WhatsApp To from an SMS From', () => sms({ To: 'whatsapp:+16505551234' }), 21910],
    ['Body missing', () => { const p = sms(); delete p.Body; return p; }, 21602],
    ['Body empty', () => sms({ Body: '' }), 21602],
    ['Body over 1600', () => sms({ Body: 'x'.repeat(1601) }), 21617],
    ['StatusCallback not a URL', () => sms({ StatusCallback: 'not a url' }), 21609],
    ['StatusCallback not http(s)', () => sms({ StatusCallback: 'ftp://otp.example.com/cb' }), 21609],
  ];
  for (const [name, make, code] of refusals) {
    test(`refused: ${name} -> code ${code}`, async () => {
      const r = await send(make());
      assertTwilioError(r, 400, code);
      assert.equal(tw.messages.length, 0);
      assert.equal(tw.rejected.length, 1);
    });
  }

  test('senders option: a From the account does not own is 21606', async () => {
    const owned = await startFakeTwilio({ accountSid: SID, authToken: TOKEN, senders: ['+15017122661'] });
    try {
      const post = (p) => call(owned.sendUrl, { headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(p).toString() });
      assert.equal((await post(sms())).status, 201);
      const r = await post(sms({ From: '+15550000000' }));
      assertTwilioError(r, 400, 21606);
      assert.match(r.json.message, /^The From phone number \+15550000000 is not a valid, SMS-capable inbound phone number/);
    } finally {
      await owned.close();
    }
  });

  test('failNext and failRecipient answer with Twilio errors', async () => {
    tw.failNext(1, { status: 429, code: 20429, message: 'Too Many Requests' });
    assertTwilioError(await send(sms()), 429, 20429);
    assert.equal((await send(sms())).status, 201);
    tw.failNext(1);
    assertTwilioError(await send(sms()), 500, 20500);
    tw.failRecipient('+447700900999');
    assertTwilioError(await send(sms({ To: '+447700900999' })), 400, 21610);
    assertTwilioError(await send({ To: 'whatsapp:+447700900999', From: 'whatsapp:+14155238886', Body: 'x' }), 400, 21610);
    assert.equal((await send(sms())).status, 201);
    tw.clearFailures();
    assert.equal((await send(sms({ To: '+447700900999' }))).status, 201);
    assert.deepEqual(tw.rejected.map((r) => r.reason), ['failNext', 'failNext', 'failRecipient +447700900999', 'failRecipient whatsapp:+447700900999']);
  });

  test('waitForMessages waits and times out', async () => {
    const waiting = tw.waitForMessages(1, { to: '+447700900111' });
    await send(sms());
    setTimeout(() => send({ To: 'whatsapp:+447700900111', From: 'whatsapp:+14155238886', Body: 'hi' }), 20);
    const got = await waiting;
    assert.deepEqual(got.map((m) => m.to), ['whatsapp:+447700900111']);
    await assert.rejects(tw.waitForMessages(3, { timeoutMs: 50 }), /fake Twilio: waited 50 ms for 3 message\(s\), have 2/);
  });

  test('twilioSignature matches Twilio\'s documented examples and a Python hmac answer', () => {
    const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
    assert.equal(twilioSignature('12345', url, { CallSid: 'CA1234567890ABCDE', Caller: '+14158675310', Digits: '1234', From: '+14158675310', To: '+18005551212' }),
      'GvWf1cFY/Q7PnoempGyD5oXAezc=');
    assert.equal(twilioSignature('12345', url, new URLSearchParams('To=%2B18005551212&From=%2B12349013030&Digits=1234&Caller=%2B12349013030&CallSid=CA1234567890ABCDE')),
      '0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
    const form = { MessageSid: 'SM' + 'a'.repeat(32), To: 'whatsapp:+14155238886', From: 'whatsapp:+14155550123', Body: 'Hello 123', AccountSid: 'AC' + '0'.repeat(32) };
    assert.equal(twilioSignature('tok_abc', 'https://otp.example/twilio/inbound', form), '9xWdn8heKYr5DSBvbqNSb1xQ+AI=');
    assert.equal(twilioSignature('t', 'u', { a: ['2', '1'] }), twilioSignature('t', 'u', [['a', '1'], ['a', '2']]));
  });

  test('inboundWhatsappForm is the form Twilio posts for an incoming WhatsApp text', () => {
    const f = inboundWhatsappForm({ from: '+16505551234', to: 'whatsapp:+14155238886', body: 'ABCDEFGH', messageSid: 'SM' + 'b'.repeat(32), accountSid: SID });
    assert.deepEqual(f, {
      SmsMessageSid: 'SM' + 'b'.repeat(32), NumMedia: '0', ProfileName: 'Test User', MessageType: 'text',
      SmsSid: 'SM' + 'b'.repeat(32), WaId: '16505551234', SmsStatus: 'received', Body: 'ABCDEFGH',
      To: 'whatsapp:+14155238886', NumSegments: '1', ReferralNumMedia: '0', MessageSid: 'SM' + 'b'.repeat(32),
      AccountSid: SID, From: 'whatsapp:+16505551234', ApiVersion: '2010-04-01',
    });
    assert.match(inboundWhatsappForm({ from: '+1', to: '+2', body: 'x', accountSid: SID }).MessageSid, /^SM[0-9a-f]{32}$/);
  });

  test('statusCallbackForm builds SMS and WhatsApp status callbacks', () => {
    const s = statusCallbackForm({ messageSid: 'SMx', status: 'delivered', to: '+16505551234', accountSid: SID, from: '+15017122661' });
    assert.deepEqual(s, { SmsSid: 'SMx', SmsStatus: 'delivered', MessageStatus: 'delivered', To: '+16505551234', MessageSid: 'SMx', AccountSid: SID, From: '+15017122661', ApiVersion: '2010-04-01' });
    const w = statusCallbackForm({ messageSid: 'SMy', status: 'undelivered', to: 'whatsapp:+16505551234', accountSid: SID, errorCode: 63016 });
    assert.equal(w.ErrorCode, '63016');
    assert.equal(w.ChannelPrefix, 'whatsapp');
    assert.equal(w.MessageStatus, 'undelivered');
    assert.equal(w.ChannelToAddress, '+16505551234');
    assert.match(w.ChannelInstallSid, /^XE[0-9a-f]{32}$/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('callback receiver (Standard Webhooks)', () => {
  const SECRET = 'whsec_' + Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');
  let rx;
  before(async () => {
    rx = await startCallbackReceiver({ secret: SECRET });
  });
  after(() => rx.close());
  beforeEach(() => rx.reset());

  function signed(payload, { id = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', at = new Date(), secret = SECRET } = {}) {
    const raw = JSON.stringify(payload);
    return {
      raw,
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': new Webhook(secret).sign(id, at, raw),
      },
    };
  }
  const post = (path, { raw, headers }) => call(`${rx.url}${path}`, { headers, body: raw });

  test('a request signed with standardwebhooks\' own sign is verified and answered 204', async () => {
    const event = { type: 'otp.verified', data: { uuid: 'u1', chat_id: '20123456789@c.us', status: 'verified' } };
    const r = await post('/hooks/otp?x=1', signed(event));
    assert.equal(r.status, 204);
    assert.equal(rx.requests.length, 1);
    const q = rx.requests[0];
    assert.equal(q.method, 'POST');
    assert.equal(q.path, '/hooks/otp?x=1');
    assert.equal(q.verified, true);
    assert.equal(q.verifyError, null);
    assert.deepEqual(q.json, event);
    assert.equal(q.rawBody, JSON.stringify(event));
    assert.equal(q.headers['webhook-id'], 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W');
    assert.ok(q.receivedAt instanceof Date);
  });

  test('a bad, missing or stale signature is recorded as unverified, never thrown', async () => {
    const wrongKey = signed({ a: 1 }, { secret: 'whsec_' + Buffer.from('another secret, 32 bytes long!!!').toString('base64') });
    assert.equal((await post('/a', wrongKey)).status, 204);
    const tampered = signed({ a: 1 });
    tampered.raw = JSON.stringify({ a: 2 });
    await post('/b', tampered);
    await call(`${rx.url}/c`, { headers: { 'content-type': 'application/json' }, body: '{}' });
    await post('/d', signed({ a: 1 }, { at: new Date(Date.now() - 10 * 60 * 1000) }));
    await call(`${rx.url}/e`, { headers: { 'content-type': 'text/plain' }, body: 'not json' });
    assert.deepEqual(rx.requests.map((q) => [q.path, q.verified, q.verifyError]), [
      ['/a', false, 'No matching signature found'],
      ['/b', false, 'No matching signature found'],
      ['/c', false, 'Missing required headers'],
      ['/d', false, 'Message timestamp too old'],
      ['/e', false, 'Missing required headers'],
    ]);
    assert.equal(rx.requests[4].json, null);
  });

  test('failNext and redirectNext shape the next answers', async () => {
    rx.failNext(2, 503);
    rx.redirectNext(1, 'http://127.0.0.1:9/elsewhere');
    const statuses = [];
    let location;
    for (let i = 0; i < 4; i++) {
      const r = await post('/x', signed({ i }));
      statuses.push(r.status);
      if (r.status === 302) location = r.headers.get('location');
    }
    assert.deepEqual(statuses, [503, 503, 302, 204]);
    assert.equal(location, 'http://127.0.0.1:9/elsewhere');
    assert.equal(rx.requests.length, 4);
    assert.ok(rx.requests.every((q) => q.verified));
    rx.failNext(1);
    assert.equal((await post('/y', signed({}))).status, 500);
  });

  test('non-POST requests are recorded and answered 405', async () => {
    const r = await call(`${rx.url}/z`, { method: 'GET' });
    assert.equal(r.status, 405);
    assert.equal(rx.requests[0].method, 'GET');
  });

  test('waitFor resolves once n requests arrived and rejects on timeout', async () => {
    const waiting = rx.waitFor(2, 2000);
    await post('/1', signed({ n: 1 }));
    setTimeout(() => post('/2', signed({ n: 2 })), 20);
    const got = await waiting;
    assert.deepEqual(got.map((q) => q.json.n), [1, 2]);
    await assert.rejects(rx.waitFor(3, 50), /waited 50 ms for 3 request\(s\), have 2/);
  });

  test('a bare base64 secret works too', async () => {
    const bare = Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');
    const other = await startCallbackReceiver({ secret: bare });
    try {
      const r = await call(`${other.url}/`, { headers: signed({ ok: true }).headers, body: JSON.stringify({ ok: true }) });
      assert.equal(r.status, 204);
      assert.equal(other.requests[0].verified, true);
    } finally {
      await other.close();
    }
  });
});
