// Privacy by default: a number's data lives no longer than its instance's retention window
// after its last activity (the objects delete their storage from their alarm), a delivered
// message keeps no text, the erase API removes everything about a number from every object
// and record it touched (checked in the raw bytes of the persisted KV and SQLite files), and
// the instance's list of recent challenges pages through them without codes or numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startWorker, newRecipient, DEMO, OTHER } from '../support/worker.mjs';
import { startFakeMeta } from '../support/fake-meta.mjs';
import { startCallbackReceiver } from '../support/callback-receiver.mjs';
import { waitFor } from '../support/wait.mjs';

const WA = '66666666-6666-4666-8666-666666666666';
const LIST = '77777777-7777-4777-8777-777777777777';
const PHONE_ID = '109876543210666';
const BUSINESS = '15550006666';
const ACCESS_TOKEN = `EAAG${randomBytes(12).toString('hex')}`;

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** Files under `dir` whose raw bytes hold `digits` (as ASCII or UTF-16). */
function filesHolding(dir, digits) {
  return filesUnder(dir).filter((f) => {
    const bytes = readFileSync(f);
    return bytes.includes(Buffer.from(digits)) || bytes.includes(Buffer.from(digits, 'utf16le'));
  });
}

/** A Worker with a WhatsApp instance on a fake Meta, whose callbacks go to a receiver. */
async function setUp({ persist = false, retentionDays, vars = {} } = {}) {
  const meta = await startFakeMeta({ accessToken: ACCESS_TOKEN, phoneNumberId: PHONE_ID });
  const receiver = await startCallbackReceiver({ secret: `whsec_${randomBytes(32).toString('base64')}` });
  const w = await startWorker({
    persist,
    extraInstances: [
      {
        id: WA, name: 'Acme', channel: 'whatsapp', business_number: BUSINESS,
        whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url },
        link: { redirect_url: 'https://app.acme.example/welcome' },
        ...(retentionDays ? { retention_days: retentionDays } : {}),
      },
      { id: LIST, name: 'Listed', channel: 'outbox' },
    ],
    credentials: { [WA]: { whatsapp_access_token: ACCESS_TOKEN, webhook_secret: receiver.secret } },
    // A WhatOTP live key: it serves the Hypersender API too.
    tokens: { [WA]: `sk_live_${randomBytes(12).toString('hex')}` },
    vars,
  });
  const stop = async () => {
    await w.stop();
    await meta.close();
    await receiver.close();
  };
  return { w, meta, receiver, stop };
}

/** The user writes the link's prefilled text from `from`; resolves with the login path sent back. */
async function claim({ w, meta }, link, from) {
  const before = meta.messages.filter((m) => m.to === from).length;
  const res = await w.sendWhatsApp(WA, {
    phoneNumberId: PHONE_ID, displayNumber: BUSINESS, from, id: `wamid.${randomBytes(12).toString('hex')}`,
    body: new URL(link.whatsapp_link).searchParams.get('text'),
  });
  assert.equal(res.status, 200);
  const reply = (await meta.waitForMessages(before + 1, { to: from }))[before];
  return reply.text.match(/\/login\/[A-Za-z0-9_-]+/)[0];
}

/** A code and two links for `phone`: one named for it and confirmed, one anyone could claim. */
async function touchEverything(ctx, phone, { idempotencyKey } = {}) {
  const { w, receiver } = ctx;
  const code = await w.hs('request-code', { chatId: phone }, {
    instance: WA, headers: idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {},
  });
  assert.equal(code.status, 200, JSON.stringify(code.body));
  assert.equal((await w.hs('validate-code', { chatId: phone, code: code.body.data.code }, { instance: WA })).status, 200);

  const named = await w.hs('generate-link', { chatId: phone, callback: { success: `${receiver.url}/ok` } }, { instance: WA });
  assert.equal(named.status, 200, JSON.stringify(named.body));
  const seen = receiver.requests.length;
  const login = await claim(ctx, named.body.data, phone);
  assert.equal((await w.fetch(login, { method: 'POST', redirect: 'manual' })).status, 303);
  await receiver.waitFor(seen + 1);

  const open = await w.hs('generate-link', {}, { instance: WA });
  assert.equal(open.status, 200);
  await claim(ctx, open.body.data, phone);

  // Through the WhatOTP API: a code session and a free-text message.
  const whatotp = async (route, body) => {
    const res = await w.fetch(route, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json', Authorization: `Bearer ${w.secrets.tokens[WA]}`,
        ...(idempotencyKey ? { 'Idempotency-Key': `${idempotencyKey}${route}` } : {}),
      },
      body: JSON.stringify(body),
    });
    assert.ok([200, 202].includes(res.status), `${route}: ${res.status}`);
    return res.json();
  };
  const session = await whatotp('/v1/otp/send', { to: `+${phone}`, channel: 'whatsapp' });
  const message = await whatotp('/v1/messages/send', { phone_number: `+${phone}`, template_id: 'text', variables: { text: 'Your order shipped' } });
  await ctx.meta.waitForMessages(5, { to: phone }); // the two codes, two login links, the message
  return { code: code.body.data, named: named.body.data, open: open.body.data, session, message };
}

async function erase(w, chatId, { instance = WA, token = w.secrets.tokens[instance] } = {}) {
  const res = await w.fetch(`/api/otp/v2/${instance}/recipients/${encodeURIComponent(chatId)}`, {
    method: 'DELETE',
    headers: { Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
  return { status: res.status, body: await res.json() };
}

async function otpStatus(w, uuid) {
  const res = await w.fetch(`/api/otp/v2/${WA}/otps/${uuid}`, { headers: { Authorization: `Bearer ${w.secrets.tokens[WA]}` } });
  return { status: res.status, body: await res.json() };
}

async function list(w, query = '', instance = LIST) {
  const res = await w.fetch(`/api/otp/v2/${instance}/challenges${query}`, {
    headers: { Accept: 'application/json', Authorization: `Bearer ${w.secrets.tokens[instance]}` },
  });
  return { status: res.status, text: await res.clone().text(), body: await res.json() };
}

/** Every message text in the Durable Objects' `messages` tables, read with SQLite itself. */
function messageTexts(dir) {
  const dbs = filesUnder(dir).filter((f) => f.endsWith('.sqlite'));
  const script = `
import json, sqlite3, sys
texts = []
for f in sys.argv[1:]:
    db = sqlite3.connect(f"file:{f}?mode=ro", uri=True)
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages'").fetchone():
        texts += [r[0] for r in db.execute("SELECT text FROM messages")]
    db.close()
print(json.dumps(texts))`;
  return JSON.parse(execFileSync('python3', ['-c', script, ...dbs]).toString());
}

test('erasing a number removes it from every persisted KV and SQLite file; a second erase removes nothing', async () => {
  const persist = mkdtempSync(path.join(os.tmpdir(), 'edge-otp-erase-'));
  const ctx = await setUp({ persist });
  const { w } = ctx;
  const phone = newRecipient();
  const bystander = newRecipient();
  let made;
  try {
    made = await touchEverything(ctx, phone, { idempotencyKey: `erase-${randomBytes(8).toString('hex')}` });
    await touchEverything(ctx, bystander);

    const first = await erase(w, `+${phone}`);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(Object.keys(first.body), ['success', 'message', 'data']);
    assert.equal(first.body.success, true);
    assert.equal(first.body.data.chat_id, `${phone}@c.us`);
    const removed = first.body.data.removed;
    assert.deepEqual(removed, {
      recipients: 1,
      code_challenges: 2, // request-code and otp/send
      link_challenges: 2,
      messages: 3, // the two login-link replies and the WhatOTP message
      records: 9, // a record and a list entry for each of the four challenges, the message's record
      idempotency_keys: 3, // request-code, otp/send and messages/send
    });

    // Idempotent: the same shape, nothing left to remove (any spelling of the number).
    const second = await erase(w, `${phone}@c.us`);
    assert.equal(second.status, 200);
    assert.deepEqual(Object.values(second.body.data.removed), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(Object.keys(second.body.data.removed), Object.keys(removed));

    // The instance's list no longer shows them (the bystander's are still listed).
    const listed = (await list(w, '?limit=100', WA)).body.data.challenges.map((i) => i.uuid);
    for (const d of [made.code, made.named, made.open]) assert.ok(!listed.includes(d.uuid), `${d.uuid} still listed`);
    assert.equal(listed.length, 4, 'the bystander\'s codes and links');

    // Nothing answers for the erased challenges any more; the bystander's are untouched.
    for (const uuid of [made.code.uuid, made.named.uuid, made.open.uuid]) assert.equal((await otpStatus(w, uuid)).status, 404, uuid);
    const message = await w.fetch(`/v1/messages/${made.message.id}`, { headers: { Authorization: `Bearer ${w.secrets.tokens[WA]}` } });
    assert.equal(message.status, 404, 'the WhatOTP message is gone');
    // The bystander's WhatOTP code is still live: a wrong code is a wrong attempt, not "no code".
    const untouched = await w.hs('validate-code', { chatId: bystander, code: '000000' }, { instance: WA });
    assert.equal(untouched.status, 422, JSON.stringify(untouched.body));
    assert.equal(untouched.body.message, 'Invalid OTP code.');
  } finally {
    await ctx.stop();
  }
  const files = filesUnder(persist);
  assert.ok(files.some((f) => f.endsWith('.sqlite')), `Durable Object databases persisted: ${files.join(', ')}`);
  // The scan reads the right files: the bystander's number is still on disk.
  assert.ok(filesHolding(persist, bystander).length > 0, 'the bystander\'s number is on disk');
  assert.deepEqual(filesHolding(persist, phone), [], `${phone} is left on disk`);
});

test('the erase API refuses callers without the instance\'s token and numbers it cannot read', async () => {
  const { w, stop } = await setUp();
  try {
    const phone = newRecipient();
    let res = await erase(w, phone, { token: null });
    assert.equal(res.status, 401);
    assert.equal(res.body.message, 'Unauthenticated.');
    res = await erase(w, phone, { token: w.secrets.tokens[OTHER] });
    assert.equal(res.status, 401);
    res = await erase(w, 'not-a-number');
    assert.equal(res.status, 422);
    assert.deepEqual(Object.keys(res.body.errors), ['chatId']);
    res = await erase(w, phone, { instance: '99999999-9999-4999-8999-999999999999', token: w.secrets.tokens[DEMO] });
    assert.equal(res.status, 404);
    const get = await w.fetch(`/api/otp/v2/${WA}/recipients/${phone}`, { headers: { Authorization: `Bearer ${w.secrets.tokens[WA]}` } });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'DELETE');
  } finally {
    await stop();
  }
});

test('a delivered message keeps no text, and the retention window deletes a number\'s objects', async () => {
  const persist = mkdtempSync(path.join(os.tmpdir(), 'edge-otp-retention-'));
  const ctx = await setUp({ persist, retentionDays: 1, vars: { DEV_CLOCK: 'manual' } });
  const { w, meta } = ctx;
  const phone = newRecipient();
  const objects = path.join(persist, 'v3', 'do');
  const blankTexts = (n) => waitFor(() => {
    const texts = messageTexts(objects);
    return texts.length >= n && texts.every((t) => t === '');
  }, { what: () => `${n} blank message texts, have ${JSON.stringify(messageTexts(objects))}` });
  const codeStatus = async (uuid) => (await otpStatus(w, uuid)).body.data;
  try {
    const made = await touchEverything(ctx, phone);
    // The replies went out: their texts (each holding a login URL) are blank in storage.
    await blankTexts(3); // two login links and the WhatOTP message

    // Half a day later: the link that was claimed but never confirmed expires and tells the
    // user so (a new message: activity for the number, at +12 h); the rest is still kept.
    await w.advanceClock(12 * 3600);
    // Two codes, two login links, the WhatOTP message, the expiry.
    const sent = await meta.waitForMessages(6, { to: phone });
    assert.ok(sent.some((m) => /has expired/.test(m.text ?? '')), 'the expiry message was sent');
    await blankTexts(4);
    assert.equal((await codeStatus(made.code.uuid)).status, 'validated');

    // A day after their last activity (the instance keeps 1 day) both links' objects delete
    // their storage from their alarms (on the dev clock, alarms wake every second); the
    // number's own object was active 12 h later and stays.
    await w.advanceClock(13 * 3600);
    await waitFor(async () => (await Promise.all([made.named, made.open].map((l) => otpStatus(w, l.uuid)))).every((r) => r.status === 404), {
      timeout: 10_000, what: 'both link objects to be deleted',
    });
    assert.equal((await codeStatus(made.code.uuid)).status, 'validated');

    // A day after the number's last activity its object goes too: the code's status now
    // comes from its KV record alone (kept a day past the code's expiry, on real time).
    await w.advanceClock(12 * 3600);
    await waitFor(async () => {
      const code = await codeStatus(made.code.uuid);
      return code.status === 'expired' && code.validated_at === null;
    }, { timeout: 10_000, what: 'the recipient object to be deleted' });
  } finally {
    await ctx.stop();
  }
  // Nothing of the number is left in any object's files (its KV record keeps it until its
  // own expiry, on real time, so KV is not scanned here).
  assert.ok(filesUnder(objects).some((f) => f.includes('RecipientObject')), 'recipient objects were persisted');
  assert.deepEqual(filesHolding(objects, phone), []);
});

test('a message given up keeps no text either', async () => {
  const persist = mkdtempSync(path.join(os.tmpdir(), 'edge-otp-given-up-'));
  const ctx = await setUp({ persist });
  const { w, meta } = ctx;
  const phone = newRecipient();
  meta.failRecipient(phone, { status: 400, code: 131026, message: 'Message undeliverable' });
  try {
    const res = await w.fetch('/v1/messages/send', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${w.secrets.tokens[WA]}` },
      body: JSON.stringify({ phone_number: `+${phone}`, template_id: 'text', variables: { text: 'Sign in: https://app.acme.example/login/secret-link' } }),
    });
    assert.equal(res.status, 202);
    const { id } = await res.json();
    const status = async () => (await (await w.fetch(`/v1/messages/${id}`, { headers: { Authorization: `Bearer ${w.secrets.tokens[WA]}` } })).json());
    await waitFor(async () => (await status()).status === 'failed', { what: () => 'the message given up' });
    const objects = path.join(persist, 'v3', 'do');
    const texts = await waitFor(() => { const t = messageTexts(objects); return t.length === 1 && t; }, { what: 'the message row' });
    assert.deepEqual(texts, [''], 'the text of a message given up is blank in storage');
  } finally {
    await ctx.stop();
  }
});

test('the list of recent challenges pages newest first, without codes or whole numbers', async () => {
  const { w, stop } = await setUp();
  try {
    const phones = Array.from({ length: 5 }, () => newRecipient());
    const made = [];
    for (const phone of phones) {
      const res = await w.hs('request-code', { chatId: phone }, { instance: LIST });
      assert.equal(res.status, 200);
      made.push(res.body.data);
    }
    const link = await w.hs('generate-link', {}, { instance: WA });
    assert.equal(link.status, 200);

    const seen = [];
    let cursor = '';
    let pages = 0;
    for (;;) {
      const page = await waitFor(async () => {
        const p = await list(w, `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        // A code's entry is written just after its answer: wait until the first page is full.
        return (cursor || p.body.data.challenges.length === 2) && p;
      }, { what: 'the first page of the list' });
      assert.equal(page.status, 200, page.text);
      assert.deepEqual(Object.keys(page.body), ['success', 'message', 'data']);
      assert.deepEqual(Object.keys(page.body.data), ['challenges', 'next_cursor']);
      for (const phone of phones) assert.ok(!page.text.includes(phone.slice(-8)), `${phone} in ${page.text}`);
      for (const item of page.body.data.challenges) {
        assert.deepEqual(Object.keys(item), ['uuid', 'otp_type', 'phone_last4', 'created_at', 'expires_at']);
        assert.match(item.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/);
        seen.push(item);
      }
      pages += 1;
      cursor = page.body.data.next_cursor;
      if (!cursor) break;
      assert.ok(pages < 10, 'the list ends');
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen.map((i) => i.uuid).sort(), made.map((d) => d.uuid).sort(), 'every challenge once, no other instance\'s');
    for (const d of made) {
      const item = seen.find((i) => i.uuid === d.uuid);
      assert.equal(item.otp_type, 'code');
      assert.equal(item.phone_last4, d.chat_id.split('@')[0].slice(-4));
      assert.equal(item.created_at, d.created_at);
      assert.equal(item.expires_at, d.expires_at);
    }
    const times = seen.map((i) => Date.parse(i.created_at));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    assert.ok(made.every((d) => !JSON.stringify(seen).includes(d.code)), 'no codes');

    // A link nobody was named for is listed without a number.
    const links = await waitFor(async () => (await list(w, '', WA)).body.data.challenges.find((i) => i.uuid === link.body.data.uuid));
    assert.equal(links.otp_type, 'link');
    assert.equal(links.phone_last4, null);

    assert.equal((await list(w, '?limit=0')).status, 422);
    assert.equal((await list(w, '?limit=101')).status, 422);
    const anonymous = await w.fetch(`/api/otp/v2/${LIST}/challenges`);
    assert.equal(anonymous.status, 401);
    const post = await w.fetch(`/api/otp/v2/${LIST}/challenges`, { method: 'POST', headers: { Authorization: `Bearer ${w.secrets.tokens[LIST]}` } });
    assert.equal(post.status, 405);
  } finally {
    await stop();
  }
});

/** `{key: expiration in ms}` of every KV entry persisted under `dir`, read with SQLite itself. */
function kvExpirations(dir) {
  const dbs = filesUnder(dir).filter((f) => f.endsWith('.sqlite'));
  const script = `
import json, sqlite3, sys
out = {}
for f in sys.argv[1:]:
    db = sqlite3.connect(f"file:{f}?mode=ro", uri=True)
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = '_mf_entries'").fetchone():
        out.update({k: e for k, e in db.execute("SELECT key, expiration FROM _mf_entries")})
    db.close()
print(json.dumps(out))`;
  return JSON.parse(execFileSync('python3', ['-c', script, ...dbs]).toString());
}

test('KV records expire with the challenge, list entries with the instance\'s retention window', async () => {
  const persist = mkdtempSync(path.join(os.tmpdir(), 'edge-otp-kv-ttl-'));
  const ctx = await setUp({ persist, retentionDays: 3 });
  const { w } = ctx;
  const DAY = 24 * 3600 * 1000;
  let code;
  let link;
  try {
    code = (await w.hs('request-code', { chatId: newRecipient(), expires: 600 }, { instance: WA })).body.data;
    link = (await w.hs('generate-link', { expires: 900 }, { instance: WA })).body.data;
    await waitFor(async () => (await list(w, '', WA)).body.data.challenges.length === 2, { what: 'both challenges listed' });
  } finally {
    await ctx.stop();
  }
  const entries = kvExpirations(path.join(persist, 'v3', 'kv'));
  const near = (actual, expected, what) => assert.ok(
    Math.abs(actual - expected) < 60_000, `${what}: expires ${new Date(actual).toISOString()}, expected ${new Date(expected).toISOString()}`,
  );
  for (const c of [code, link]) {
    const expires = Date.parse(c.expires_at);
    // The record that answers status lookups: a day past the challenge's own expiry.
    near(entries[`challenge:${c.uuid}`], expires + DAY, `challenge:${c.uuid}`);
    // The list entry: the instance's retention window (3 days) past it.
    const listed = Object.keys(entries).find((k) => k.startsWith(`list:${WA}:`) && k.endsWith(c.uuid));
    assert.ok(listed, `${c.uuid} is listed`);
    near(entries[listed], expires + 3 * DAY, listed);
  }
  assert.ok(Object.values(entries).every((e) => typeof e === 'number'), `every KV entry expires: ${JSON.stringify(entries)}`);
});
