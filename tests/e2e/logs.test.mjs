// The Worker's log as an operator reads it: one JSON object per event, with the event name,
// instance, challenge id, channel, outcome and latency, and nothing a leaked log could be used
// against a user with. A code flow (a wrong code, then the right one), a link flow (generate,
// the signed inbound message, the login confirmed) and a provider that answers an error
// echoing the number and the code run against a Worker whose console output this process
// captures (wrangler at log level `log` prints the Worker's lines through console.*); then the
// whole output is scanned for every phone number used (in full and its national part), every
// code, the link code, the login token and the API token: none may appear.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startWorker, newRecipient, DEMO, ROOT } from '../support/worker.mjs';
import { metaSignature, startFakeMeta, statusPayload } from '../support/fake-meta.mjs';
import { waitFor } from '../support/wait.mjs';

const ECHO = '66666666-6666-4666-8666-666666666666';
const DEMO_PHONE_ID = '100000000000001';
const DEMO_BUSINESS = '15550001234';

/** Everything the Worker (and wrangler) wrote to this process's console. */
const output = [];
const original = {};
for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
  original[level] = console[level];
  console[level] = (...args) => output.push(args.map(String).join(' '));
}

/** A "provider" that refuses every message with an error text echoing what it was sent. */
let echo;
let w;
const secretsUsed = [];

before(async () => {
  echo = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const sent = JSON.parse(body);
      const text = sent.text?.body ?? JSON.stringify(sent.template ?? {});
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `(#100) Invalid parameter: to ${sent.to}: ${text}`, type: 'OAuthException', code: 100 } }));
    });
  });
  await new Promise((r) => echo.listen(0, '127.0.0.1', r));
  w = await startWorker({ logLevel: 'log' });
  secretsUsed.push(w.secrets.tokens[DEMO], w.secrets.pepper);
});

after(async () => {
  await w?.stop();
  await new Promise((r) => (echo ? echo.close(r) : r()));
  Object.assign(console, original);
});

/** The Worker's JSON log lines (wrangler may prefix or colour a line; the object is inside). */
function events() {
  const out = [];
  for (const chunk of output) {
    // eslint-disable-next-line no-control-regex
    for (const line of chunk.replace(/\x1b\[[0-9;]*m/g, '').split('\n')) {
      const at = line.indexOf('{"event":');
      if (at < 0) continue;
      const end = line.lastIndexOf('}');
      out.push(JSON.parse(line.slice(at, end + 1)));
    }
  }
  return out;
}

function waitForEvent(what, match) {
  return waitFor(() => events().find(match), { timeout: 5000, what: () => `${what} in the log; have ${JSON.stringify(events().slice(-8))}` });
}

/** A code of the same length that is not `code`. */
const otherCode = (code) => String((Number(code) + 1) % 10 ** code.length).padStart(code.length, '0');

/** What must never be in the output: numbers, codes (and link codes); login tokens must not be in
 * the Worker's own lines (wrangler's request log prints each URL path, as the platform's does). */
const used = { phones: [], codes: [], tokens: [] };

test('a code flow logs send, delivery, the wrong attempt and the verification as JSON events', async () => {
  const phone = newRecipient();
  used.phones.push(phone);
  const rc = await w.hs('request-code', { chatId: `${phone}@c.us` });
  assert.equal(rc.status, 200);
  const { uuid, code } = rc.body.data;
  used.codes.push(code);
  const sent = await waitForEvent('code.sent', (e) => e.event === 'code.sent' && e.challenge === uuid);
  assert.deepEqual(
    { instance: sent.instance, channel: sent.channel, outcome: sent.outcome, to: sent.to },
    { instance: DEMO, channel: 'outbox', outcome: 'queued', to: `+20…${phone.slice(-2)}` },
  );
  const delivery = await waitForEvent('delivery', (e) => e.event === 'delivery' && e.challenge === uuid);
  assert.equal(delivery.outcome, 'accepted');
  assert.equal(delivery.channel, 'outbox');
  assert.equal(typeof delivery.latency_ms, 'number');
  assert.ok(delivery.latency_ms >= 0);

  const wrong = otherCode(code);
  used.codes.push(wrong);
  assert.equal((await w.hs('validate-code', { chatId: phone, code: wrong })).status, 422);
  const attempt = await waitForEvent('the wrong attempt', (e) => e.event === 'code.attempt' && e.challenge === uuid && e.outcome === 'wrong');
  assert.equal(attempt.attempts_left, 4);
  assert.equal((await w.hs('validate-code', { chatId: phone, code })).status, 200);
  const ok = await waitForEvent('the verification', (e) => e.event === 'code.attempt' && e.challenge === uuid && e.outcome === 'verified');
  assert.equal(ok.channel, 'outbox');
  assert.equal(typeof ok.seconds_to_verify, 'number');
});

test('a link flow logs generated, claimed and verified with the challenge id', async () => {
  const phone = newRecipient();
  used.phones.push(phone);
  const gl = await w.hs('generate-link', { chatId: phone, expires: 600, name: 'Acme' });
  assert.equal(gl.status, 200, JSON.stringify(gl.body));
  const { uuid, code, whatsapp_link: link } = gl.body.data;
  used.codes.push(code);
  const text = new URL(link).searchParams.get('text');
  const hook = await w.sendWhatsApp(DEMO, { phoneNumberId: DEMO_PHONE_ID, displayNumber: DEMO_BUSINESS, from: phone, body: text, id: `wamid.${uuid}` });
  assert.equal(hook.status, 200);
  const reply = await w.nextMessage(phone);
  const token = reply.text.match(/\/login\/([A-Za-z0-9_-]+)/)[1];
  used.tokens.push(token);
  const confirm = await w.fetch(`/login/${token}`, { method: 'POST', redirect: 'manual' });
  assert.equal(confirm.status, 303);
  for (const name of ['link.generated', 'link.claimed', 'link.verified']) {
    const e = await waitForEvent(name, (x) => x.event === name && x.challenge === uuid);
    assert.equal(e.instance, DEMO, name);
  }
  const verified = events().find((x) => x.event === 'link.verified' && x.challenge === uuid);
  assert.equal(typeof verified.seconds_to_verify, 'number');
  // The reply to the phone went out as a message delivery, logged without its text.
  await waitForEvent('the reply delivery', (e) => e.event === 'delivery' && e.message && e.outcome === 'accepted' && e.to === `+20…${phone.slice(-2)}`);
});

test('a provider error that echoes the number and the code is logged with its status and its digits masked', async () => {
  // Its own Worker: dev routes (the outbox the other tests read) stay off beside a real channel.
  const token = 'EAAGechoechoechoecho';
  const e = await startWorker({
    logLevel: 'log',
    extraInstances: [{
      id: ECHO,
      name: 'Echo',
      channel: 'whatsapp',
      whatsapp: { phone_number_id: '100000000000066', api_base: `http://127.0.0.1:${echo.address().port}` },
    }],
    credentials: { [ECHO]: { whatsapp_access_token: token } },
  });
  secretsUsed.push(token, e.secrets.tokens[ECHO], e.secrets.pepper);
  try {
    const phone = newRecipient();
    used.phones.push(phone);
    const rc = await e.hs('request-code', { chatId: phone }, { instance: ECHO });
    assert.equal(rc.status, 200);
    const { uuid, code } = rc.body.data;
    used.codes.push(code);
    const failed = await waitForEvent('the refused delivery', (x) => x.event === 'delivery' && x.challenge === uuid);
    assert.equal(failed.status, 400);
    assert.equal(failed.channel, 'whatsapp');
    assert.equal(failed.outcome, 'refused');
    assert.match(failed.error, /whatsapp answered 400 \(code 100\): \(#100\) Invalid parameter: to #/);
    const gaveUp = await waitForEvent('code.failed', (x) => x.event === 'code.failed' && x.challenge === uuid);
    assert.equal(gaveUp.channel, 'whatsapp');
  } finally {
    await e.stop();
  }
});

test('delivery receipts are logged with the provider status, a failure reason scrubbed', async () => {
  const phoneId = '100000000000077';
  const token = 'EAAGmetametametameta';
  const meta = await startFakeMeta({ accessToken: token, phoneNumberId: phoneId });
  const WA = '99999999-0000-4000-8000-000000000077';
  const m = await startWorker({
    logLevel: 'log',
    extraInstances: [{ id: WA, name: 'Meta', channel: 'whatsapp', whatsapp: { phone_number_id: phoneId, api_base: meta.url } }],
    credentials: { [WA]: { whatsapp_access_token: token } },
  });
  secretsUsed.push(token, m.secrets.tokens[WA], m.secrets.instances[WA].whatsapp_app_secret);
  try {
    const phone = newRecipient();
    used.phones.push(phone);
    const rc = await m.hs('request-code', { chatId: phone }, { instance: WA });
    assert.equal(rc.status, 200);
    const { uuid, code } = rc.body.data;
    used.codes.push(code);
    const [msg] = await meta.waitForMessages(1, { to: phone });
    await waitForEvent('the accepted delivery', (e) => e.event === 'delivery' && e.challenge === uuid && e.outcome === 'accepted');
    const post = (payload) => {
      const raw = JSON.stringify(payload);
      const sig = metaSignature(m.secrets.instances[WA].whatsapp_app_secret, raw);
      return m.fetch(`/webhooks/whatsapp/${WA}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': sig }, body: raw });
    };
    assert.equal((await post(statusPayload({ phoneNumberId: phoneId, id: msg.id, status: 'delivered', recipientId: phone }))).status, 200);
    const delivered = await waitForEvent('the delivered receipt', (e) => e.event === 'delivery.receipt' && e.challenge === uuid && e.status === 'delivered');
    assert.equal(delivered.error, undefined);
    // A reason that quotes the number (a provider may): logged with its digits masked.
    const errors = [{ code: 131026, title: `Message undeliverable to ${phone}` }];
    assert.equal((await post(statusPayload({ phoneNumberId: phoneId, id: msg.id, status: 'failed', recipientId: phone, errors }))).status, 200);
    const failed = await waitForEvent('the failed receipt', (e) => e.event === 'delivery.receipt' && e.challenge === uuid && e.status === 'failed');
    assert.equal(failed.error, '#: Message undeliverable to #');
  } finally {
    await m.stop();
    await meta.close();
  }
});

test('every event is one JSON object with an event name, and no number, code, token or secret is anywhere in the output', () => {
  const all = events();
  assert.ok(all.length >= 10, `events seen: ${all.length}`);
  for (const e of all) assert.equal(typeof e.event, 'string');
  const text = output.join('\n');
  for (const phone of used.phones) {
    assert.ok(!text.includes(phone), `the number ${phone} is in the log`);
    assert.ok(!text.includes(phone.slice(2)), `the national part of ${phone} is in the log`);
  }
  for (const code of used.codes) assert.ok(!text.includes(code), `a code (${code}) is in the log`);
  const lines = JSON.stringify(all);
  for (const token of used.tokens) assert.ok(!lines.includes(token), 'a login token is in a log line');
  for (const secret of secretsUsed) assert.ok(!text.includes(secret), 'a secret is in the log');
});

test('the deploy keeps these lines: Workers Logs is on in wrangler.toml', () => {
  const toml = readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8');
  assert.match(toml, /^\[observability\]\nenabled = true$/m);
});

test('DO_JURISDICTION sends every object call through the namespace\'s jurisdiction; an unknown one is a config problem', async () => {
  // workerd has no jurisdictions: its refusal proves the Worker asked for one. On Cloudflare the
  // same call places the object in the EU (docs/configuration.md#privacy-retention-erasure-jurisdiction).
  for (const [jurisdiction, logged] of [
    ['eu', (e) => e.event === 'internal.error' && /Jurisdiction restrictions are not implemented in workerd/.test(e.error)],
    ['mars', (e) => e.event === 'config.problem' && e.var === 'DO_JURISDICTION' && /"eu" or "fedramp"/.test(e.error)],
  ]) {
    const own = await startWorker({ vars: { DO_JURISDICTION: jurisdiction }, logLevel: 'log' });
    try {
      const seen = events().length;
      const res = await own.hs('request-code', { chatId: newRecipient() });
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.deepEqual(res.body, { success: false, message: 'The service is temporarily unavailable. Try again shortly.', data: null });
      await waitFor(() => events().slice(seen).find(logged), { timeout: 5000, what: () => `${jurisdiction}: the log line; have ${JSON.stringify(events().slice(seen))}` });
    } finally {
      await own.stop();
    }
  }
});
