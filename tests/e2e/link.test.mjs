// The WhatsApp link flow end to end: generate-link, the user's prefilled message arriving
// through the signed WhatsApp webhook, the reply with the one-time login URL sent through a
// fake WhatsApp Cloud API, the preview-safe confirm page, the redirect with a verification
// token (checked with `jose`), and the signed callback (checked with `standardwebhooks`).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { jwtVerify } from 'jose';
import { Webhook } from 'standardwebhooks';
import { startWorker, newRecipient, DEMO } from '../support/worker.mjs';
import { startFakeMeta, inboundTextPayload, metaSignature } from '../support/fake-meta.mjs';
import { startCallbackReceiver } from '../support/callback-receiver.mjs';
import { startFakeTwilio, twilioSignature, inboundWhatsappForm } from '../support/fake-twilio.mjs';
import { SEND_WINDOW_MS, assertNothingFor, waitFor } from '../support/wait.mjs';

const WA = '44444444-4444-4444-8444-444444444444';
const PHONE_ID = '109876543210987';
const BUSINESS = '15550009999';
const ACCESS_TOKEN = `EAAG${randomBytes(12).toString('hex')}`;

let meta;
let receiver;
let w;

function waInstance(extra = {}) {
  return {
    id: WA,
    name: 'Acme',
    channel: 'whatsapp',
    business_number: BUSINESS,
    whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url },
    link: { redirect_url: 'https://app.acme.example/welcome' },
    ...extra,
  };
}

async function start(opts = {}) {
  return startWorker({
    extraInstances: [waInstance()],
    credentials: { [WA]: { whatsapp_access_token: ACCESS_TOKEN, webhook_secret: receiver.secret } },
    vars: { CALLBACK_RETRY_SCALE: '0.001' },
    ...opts,
  });
}

before(async () => {
  meta = await startFakeMeta({ accessToken: ACCESS_TOKEN, phoneNumberId: PHONE_ID });
  receiver = await startCallbackReceiver({ secret: `whsec_${randomBytes(32).toString('base64')}` });
  w = await start();
});
after(async () => {
  await w?.stop();
  await meta?.close();
  await receiver?.close();
});

/** generate-link on the WhatsApp instance; `cb` adds callbacks to the receiver. */
async function generate(body = {}, { cb = true, worker = w } = {}) {
  const res = await worker.hs(
    'generate-link',
    {
      expires: 600,
      name: 'Acme',
      message: {
        prompt: 'Give me link to login at Acme',
        success: 'Welcome! Here is your login link: {link}',
        failed: 'Login failed. Please try again.',
        expired: 'This link has expired. Please request a new one.',
      },
      callback: cb ? { success: `${receiver.url}/ok`, failed: `${receiver.url}/failed` } : [],
      ...body,
    },
    { instance: WA },
  );
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.data;
}

/** The prefilled text a user sends from the whatsapp_link. */
function prefilled(data) {
  return new URL(data.whatsapp_link).searchParams.get('text');
}

/** Delivers an inbound WhatsApp text to the Worker's webhook, signed like Meta does. */
async function inbound(from, body, { id = `wamid.${randomBytes(12).toString('hex')}`, worker = w, sign = true, secret } = {}) {
  const raw = JSON.stringify(inboundTextPayload({ phoneNumberId: PHONE_ID, displayNumber: BUSINESS, from, body, id }));
  const headers = { 'Content-Type': 'application/json' };
  if (sign) headers['X-Hub-Signature-256'] = metaSignature(secret ?? worker.secrets.instances[WA].whatsapp_app_secret, raw);
  const res = await worker.fetch(`/webhooks/whatsapp/${WA}`, { method: 'POST', headers, body: raw });
  return { status: res.status, id };
}

async function status(uuid, worker = w) {
  const res = await worker.fetch(`/api/otp/v2/${WA}/otps/${uuid}`, {
    headers: { Authorization: `Bearer ${worker.secrets.tokens[WA]}` },
  });
  return (await res.json()).data;
}

/** A claimed link reads `pending` (the seed's statuses), with when it was claimed. */
function assertClaimed(s) {
  assert.equal(s.status, 'pending');
  assert.match(s.claimed_at ?? '', /\+00:00$/, 'claimed_at set');
}

function loginPath(text) {
  const m = text.match(/https?:\/\/[^\s]+\/login\/([A-Za-z0-9_-]+)/);
  assert.ok(m, `a login URL in: ${text}`);
  return `/login/${m[1]}`;
}

describe('generate-link', () => {
  test('answers with the documented body and wa.me link', async () => {
    const r = newRecipient();
    const d = await generate({ chatId: `${r}@c.us` });
    assert.deepEqual(Object.keys(d), ['uuid', 'code', 'chat_id', 'status', 'otp_type', 'expires_at', 'created_at', 'whatsapp_link']);
    assert.match(d.code, /^[A-Z]{8}$/);
    assert.equal(d.chat_id, `${r}@c.us`);
    assert.equal(d.status, 'pending');
    assert.equal(d.otp_type, 'link');
    assert.equal(
      d.whatsapp_link,
      `https://wa.me/${BUSINESS}?text=Give+me+link+to+login+at+Acme+%5B${d.code}%5D+-+DO+NOT+CHANGE+THIS+MESSAGE`,
    );
    assert.equal(Date.parse(d.expires_at) - Date.parse(d.created_at), 600_000);
  });

  test('a callback URL on a private address is refused', async () => {
    // (This Worker allows loopback callbacks, as dev builds may for local tests.)
    for (const url of ['https://10.1.2.3/cb', 'https://169.254.169.254/latest', 'https://[::ffff:10.0.0.1]/cb', 'https://intranet.local/cb', 'http://example.com/cb']) {
      const res = await w.hs('generate-link', { callback: { success: url } }, { instance: WA });
      assert.equal(res.status, 422, url);
      assert.deepEqual(Object.keys(res.body.errors), ['callback.success']);
    }
  });
});

describe('the link loop', () => {
  test('message -> reply with login URL -> confirm -> redirect with token -> signed callback', async () => {
    const r = newRecipient();
    const d = await generate({ chatId: r });
    const seenBefore = receiver.requests.length;
    assert.equal((await inbound(r, prefilled(d))).status, 200);

    const [reply] = await meta.waitForMessages(1, { to: r });
    // WhatsApp's URL button (cta_url), its body the success text with the same URL.
    assert.equal(reply.type, 'interactive');
    assert.match(reply.text, /^Welcome! Here is your login link: http/);
    assert.deepEqual(reply.interactive.action.parameters, { display_text: 'Log in', url: reply.text.split(': ')[1] });
    assertClaimed(await status(d.uuid));

    // GET is preview-safe: it shows the confirm page and changes nothing.
    const login = loginPath(reply.text);
    for (let i = 0; i < 3; i++) {
      const page = await w.fetch(login);
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /Acme/);
      assert.match(html, /Confirm only if you asked to log in/);
      assert.equal(page.headers.get('x-frame-options'), 'DENY');
    }
    assertClaimed(await status(d.uuid));

    const post = await w.fetch(login, { method: 'POST', redirect: 'manual' });
    assert.equal(post.status, 303);
    const location = new URL(post.headers.get('location'));
    assert.equal(`${location.origin}${location.pathname}`, 'https://app.acme.example/welcome');
    const jwt = new URLSearchParams(location.hash.slice(1)).get('token');
    const { payload, protectedHeader } = await jwtVerify(jwt, w.keySet(), { audience: WA, algorithms: ['ES256'] });
    assert.deepEqual(protectedHeader, { alg: 'ES256', typ: 'JWT', kid: 'k1' });
    assert.equal(payload.sub, `+${r}`);
    assert.equal(payload.jti, d.uuid);
    assert.equal(payload.iss, w.url);
    assert.equal(payload.exp - payload.iat, 600);

    // A second POST never verifies again.
    const again = await w.fetch(login, { method: 'POST', redirect: 'manual' });
    assert.equal(again.status, 409);

    const [cb] = (await receiver.waitFor(seenBefore + 1)).slice(seenBefore);
    assert.equal(cb.path, '/ok');
    assert.equal(cb.verified, true, cb.verifyError);
    const verified = new Webhook(receiver.secret).verify(cb.rawBody, cb.headers);
    assert.deepEqual(Object.keys(verified), ['uuid', 'code', 'chat_id', 'status', 'verified_at']);
    assert.equal(verified.uuid, d.uuid);
    assert.equal(verified.code, d.code);
    assert.equal(verified.chat_id, `${r}@c.us`);
    assert.equal(verified.status, 'verified');
    assert.match(verified.verified_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/);
    const s = await status(d.uuid);
    assert.equal(s.status, 'verified');
    assert.equal(s.callbacks.success, 'delivered');
  });

  test('the same inbound message 50 times at once claims once, replies once, calls back once', async () => {
    const r = newRecipient();
    const d = await generate();
    const before = receiver.requests.length;
    const id = `wamid.${randomBytes(12).toString('hex')}`;
    const results = await Promise.all(Array.from({ length: 50 }, () => inbound(r, prefilled(d), { id })));
    assert.ok(results.every((x) => x.status === 200));
    const [reply] = await meta.waitForMessages(1, { to: r });
    // All 50 were answered before the first reply arrived; a second reply would be another job
    // of the link's object, due at once, so it would arrive within one send window (200 ms).
    await assertNothingFor(SEND_WINDOW_MS, () => meta.messages.filter((m) => m.to === r).slice(1), 'one reply to 50 copies of a message');
    assert.equal(meta.messages.filter((m) => m.to === r).length, 1, 'one reply');
    const login = loginPath(reply.text);
    const posts = await Promise.all(Array.from({ length: 10 }, () => w.fetch(login, { method: 'POST', redirect: 'manual' })));
    assert.equal(posts.filter((p) => p.status === 303).length, 1, 'one verification');
    await receiver.waitFor(before + 1);
    // A second callback would be another job of the link's object, due at once (the answers to
    // all 10 POSTs are in), so it would arrive within one send window (200 ms). A retry after a
    // success is watched for in 'a callback receiver that fails three times'.
    await assertNothingFor(SEND_WINDOW_MS, () => receiver.requests.slice(before + 1), 'one callback for 10 confirmations');
    assert.equal(receiver.requests.length - before, 1, 'one callback');
  });

  test('a message from another chat than the one named does not claim', async () => {
    const r = newRecipient();
    const stranger = newRecipient();
    const d = await generate({ chatId: r });
    await inbound(stranger, prefilled(d));
    const [failed] = await meta.waitForMessages(1, { to: stranger });
    assert.equal(failed.text, 'Login failed. Please try again.');
    assert.equal((await status(d.uuid)).status, 'pending');
    await inbound(r, prefilled(d));
    await meta.waitForMessages(1, { to: r });
    assertClaimed(await status(d.uuid));
  });

  test('an altered message does not claim', async () => {
    const r = newRecipient();
    const d = await generate();
    await inbound(r, prefilled(d).replace('login', 'logon'));
    const [failed] = await meta.waitForMessages(1, { to: r });
    assert.equal(failed.text, 'Login failed. Please try again.');
    assert.equal((await status(d.uuid)).status, 'pending');
  });

  test('bad and missing webhook signatures change nothing', async () => {
    const r = newRecipient();
    const d = await generate();
    assert.equal((await inbound(r, prefilled(d), { sign: false })).status, 401);
    assert.equal((await inbound(r, prefilled(d), { secret: 'not-the-app-secret' })).status, 401);
    // A reply, had a refused message claimed the link, would reach the fake within one send
    // window (200 ms) of the answer.
    await assertNothingFor(SEND_WINDOW_MS, () => meta.messages.filter((m) => m.to === r), 'an unsigned or badly signed message gets no reply');
    assert.equal((await status(d.uuid)).status, 'pending');
  });

  test('the webhook handshake echoes the challenge only for the right verify token', async () => {
    const token = w.secrets.instances[WA].whatsapp_verify_token;
    const ok = await w.fetch(`/webhooks/whatsapp/${WA}?hub.mode=subscribe&hub.verify_token=${token}&hub.challenge=1158201444`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), '1158201444');
    const bad = await w.fetch(`/webhooks/whatsapp/${WA}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1`);
    assert.equal(bad.status, 403);
  });

  test('an invalid or forged login URL gets a clear page', async () => {
    const res = await w.fetch('/login/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    assert.equal(res.status, 404);
    assert.match(await res.text(), /not valid/);
  });

  test('a callback receiver that fails three times gets it once more, same webhook-id', async () => {
    const r = newRecipient();
    const d = await generate();
    const before = receiver.requests.length;
    receiver.failNext(3, 503);
    await inbound(r, prefilled(d));
    const [reply] = await meta.waitForMessages(1, { to: r });
    assert.equal((await w.fetch(loginPath(reply.text), { method: 'POST', redirect: 'manual' })).status, 303);
    const got = (await receiver.waitFor(before + 4, 20_000)).slice(before);
    // At CALLBACK_RETRY_SCALE 0.001 the attempts are 1, 1 and 2 s apart (then 7, 18, 36 s):
    // watching 3 s from the fourth, successful one shows any attempt on that early schedule.
    await assertNothingFor(3000, () => receiver.requests.slice(before + 4), 'nothing more after the callback was delivered', { since: got[3].receivedAt.getTime() });
    const all = receiver.requests.slice(before);
    assert.equal(all.length, 4, 'three failures and one success, then nothing more');
    assert.equal(new Set(all.map((x) => x.headers['webhook-id'])).size, 1);
    assert.ok(all.every((x) => x.verified));
    assert.equal(got[3].json.status, 'verified');
    assert.equal((await status(d.uuid)).callbacks.success, 'delivered');
  });
});

describe('restarts and Twilio', () => {
  test('a restart in the middle of the callback retries still delivers it', async () => {
    const persist = mkdtempSync(path.join(os.tmpdir(), 'edge-otp-link-'));
    const first = await start({ persist, vars: { CALLBACK_RETRY_SCALE: '0.01' } });
    const r = newRecipient();
    let d;
    const before = receiver.requests.length;
    try {
      d = await generate({}, { worker: first });
      receiver.failNext(2, 500);
      await inbound(r, prefilled(d), { worker: first });
      const [reply] = await meta.waitForMessages(1, { to: r });
      assert.equal((await first.fetch(loginPath(reply.text), { method: 'POST', redirect: 'manual' })).status, 303);
      await receiver.waitFor(before + 2, 10_000); // two failed attempts; the third is due in 3 s
    } finally {
      await first.stop();
    }
    const second = await start({ persist, secrets: first.secrets, vars: { CALLBACK_RETRY_SCALE: '0.01' } });
    try {
      const all = (await receiver.waitFor(before + 3, 20_000)).slice(before);
      assert.equal(all[2].json.status, 'verified');
      assert.equal(new Set(all.map((x) => x.headers['webhook-id'])).size, 1);
      assert.equal((await status(d.uuid, second)).callbacks.success, 'delivered');
    } finally {
      await second.stop();
    }
  });

  test("Twilio's inbound WhatsApp webhook claims a link too, and its signature is checked", async () => {
    const r = newRecipient();
    const d = await generate();
    const url = `${w.url}/webhooks/twilio/${WA}`;
    const token = w.secrets.instances[WA].twilio_auth_token;
    const form = inboundWhatsappForm({ from: `+${r}`, to: `+${BUSINESS}`, body: prefilled(d), accountSid: `AC${randomBytes(16).toString('hex')}` });
    const post = (sig) => w.fetch(`/webhooks/twilio/${WA}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': sig },
      body: new URLSearchParams(form).toString(),
    });
    assert.equal((await post('bm90IGEgc2lnbmF0dXJl')).status, 401);
    assert.equal((await status(d.uuid)).status, 'pending');
    const ok = await post(twilioSignature(token, url, form));
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /<Response\/>/);
    await meta.waitForMessages(1, { to: r });
    assertClaimed(await status(d.uuid));
  });
});

describe('dev demo instance', () => {
  test('dev routes refuse to run beside a real channel', async () => {
    const res = await w.fetch('/dev/info');
    assert.equal(res.status, 403);
    assert.doesNotMatch(await res.text(), /api_token/);
  });

  test('the outbox demo runs the loop with the dev app secret from /dev/info', async () => {
    const dev = await startWorker();
    try {
      await demoLoop(dev);
    } finally {
      await dev.stop();
    }
  });
});

async function demoLoop(w) {
  {
    const info = await (await w.fetch('/dev/info')).json();
    assert.equal(info.whatsapp_number, '15550001234');
    assert.equal(info.whatsapp_phone_number_id, '100000000000001');
    const r = newRecipient();
    const res = await w.hs('generate-link', {}, { instance: DEMO });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const hook = await w.sendWhatsApp(DEMO, {
      phoneNumberId: info.whatsapp_phone_number_id, displayNumber: info.whatsapp_number, from: r, body: prefilled(res.body.data), secret: info.whatsapp_app_secret,
    });
    assert.equal(hook.status, 200);
    const msg = await w.nextMessage(r);
    const post = await w.fetch(loginPath(msg.text), { method: 'POST', redirect: 'manual' });
    assert.equal(post.status, 303);
    assert.match(post.headers.get('location'), /#token=/);
  }
}

describe('metrics', () => {
  test('counts links generated, opened, verified and failed attempts where they happen', async () => {
    const fresh = await start();
    try {
      const r = newRecipient();
      const d = await generate({ chatId: r }, { worker: fresh, cb: false });
      await generate({}, { worker: fresh, cb: false });
      await inbound(newRecipient(), prefilled(d), { worker: fresh }); // wrong sender
      await inbound(r, prefilled(d), { worker: fresh });
      const [reply] = await meta.waitForMessages(1, { to: r });
      const login = loginPath(reply.text);
      await fresh.fetch(login);
      await fresh.fetch(login); // opened counts once per link
      assert.equal((await fresh.fetch(login, { method: 'POST', redirect: 'manual' })).status, 303);
      const expected = { links_generated: 2, links_opened: 1, links_claimed: 1, links_verified: 1, failed_attempts: 1 };
      // The counters are written where each thing happens, some from objects' jobs: wait for them.
      let data;
      await waitFor(async () => {
        const res = await fresh.fetch(`/api/otp/v2/${WA}/metrics`, { headers: { Authorization: `Bearer ${fresh.secrets.tokens[WA]}` } });
        assert.equal(res.status, 200);
        data = (await res.json()).data;
        return Object.entries(expected).every(([k, v]) => data[k] === v);
      }, { timeout: 5000, interval: 100, what: () => `the metrics ${JSON.stringify(expected)}, have ${JSON.stringify(data)}` });
      for (const [k, v] of Object.entries(expected)) assert.equal(data[k], v, k);
      assert.equal(data.links_expired, 0);
      assert.ok(data.average_seconds_to_verification >= 0 && data.average_seconds_to_verification < 60);
      const today = new Date().toISOString().slice(0, 10);
      assert.equal(data.days[today].links_generated, 2);
      const anon = await fresh.fetch(`/api/otp/v2/${WA}/metrics`);
      assert.equal(anon.status, 401);
    } finally {
      await fresh.stop();
    }
  });
});
