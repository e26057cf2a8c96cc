// `make soak`: a bounded soak of the dev Worker on 127.0.0.1 with faults, not part of `make test`.
// Starts the dev Worker (built by `scripts/build.sh dev`) with a persist directory and an
// instance whose channel is a fake WhatsApp Cloud API on loopback, and four callback receivers:
// one that answers at once, one after 2 s, one after 6 s (past the Worker's 4 s outbound
// deadline set here, so each of its callbacks is retried) and one that never answers. Then, for
// SOAK_SECONDS (default 180), SOAK_CONCURRENCY (default 6) loops send mixed traffic:
//   - code flows: request-code, a wrong code, the right code sent 3 times at once (exactly one
//     may succeed), then once more (must not);
//   - link flows: generate-link with callbacks, the user's message through the signed Meta
//     webhook (sometimes delivered twice), the reply read off the fake, the confirm page, two
//     concurrent confirms (exactly one may succeed);
//   - widget: start (link mode, from an allowed origin), polls, and a third of them claimed and
//     confirmed until poll hands out the token;
//   - bad bodies: oversized (with Content-Length, and chunked without one), malformed JSON.
// Halfway through, workerd is stopped and started again on the same port with the same persist
// directory and secrets; requests that meet the restart are counted and retried.
// Then it waits (at most SOAK_CALLBACK_WAIT s, default 90) for every verified link's signed
// callback, prints the table and stops everything it started.
// Exit status 0 when there was no 5xx on a well-formed request outside the restart window, no
// lost callback and no double spend; 1 otherwise. Loopback only; bounded in time.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import {
  startWorker, testInstances, instanceSecretsFor, newRecipient,
} from '../tests/support/worker.mjs';
import { startFakeMeta, inboundTextPayload, metaSignature } from '../tests/support/fake-meta.mjs';
import { startFakeServer } from '../tests/support/fake-server.mjs';
import { streamChunked } from '../tests/support/raw-http.mjs';

const env = process.env;
const SECONDS = Number(env.SOAK_SECONDS ?? 180);
const CONCURRENCY = Number(env.SOAK_CONCURRENCY ?? 6);
const CALLBACK_WAIT_S = Number(env.SOAK_CALLBACK_WAIT ?? 90);
const OUTBOUND_TIMEOUT_MS = 4000;
const log = (...a) => console.error('[soak]', ...a);

const SOAK = '77777777-7777-4777-8777-777777777777';
const PHONE_ID = '100000000000777';
const BUSINESS = '15550007777';
const ORIGIN = 'https://shop.example';
const PK = `pk_live_${randomBytes(10).toString('hex')}`;
/** The deploy's rate limiters raised: one client address sends all of this traffic. */
const GENEROUS = Object.fromEntries([['WHATOTP_RL', '1001'], ['WIDGET_RL', '1002'], ['WIDGET_POLL_RL', '1003'], ['LINK_RL', '1004']]
  .map(([name, id]) => [name, { type: 'ratelimit', namespace_id: id, simple: { limit: 1_000_000, period: 60 } }]));

// ---------------------------------------------------------------------------------------------
// What is measured.

const stats = new Map(); // kind -> {n, statuses: Map, ms: [], s5: 0}
const problems = [];
let restartConnErrors = 0;
let restartWindow5xx = 0;
let retries = 0;
let doubleSpends = 0;
let spendChecks = 0;
const expectedCallbacks = new Map(); // uuid -> receiver name

function record(kind, status, ms, { wellFormed = true, inRestart = false } = {}) {
  let s = stats.get(kind);
  if (!s) stats.set(kind, (s = { n: 0, statuses: new Map(), ms: [], s5: 0 }));
  s.n += 1;
  s.statuses.set(status, (s.statuses.get(status) ?? 0) + 1);
  s.ms.push(ms);
  if (status >= 500) {
    if (inRestart) restartWindow5xx += 1;
    else {
      s.s5 += 1;
      if (wellFormed || status !== 503) problems.push(`${kind}: ${status} outside the restart window`);
    }
  }
}

function fail(what) {
  problems.push(what);
}

// ---------------------------------------------------------------------------------------------
// The Worker, its restart, and requests that survive it.

let worker;
let base;
let restartUntil = 0; // while Date.now() < this (or restarting), failures are the restart's
let restarting = false;
const inRestart = () => restarting || Date.now() < restartUntil;

/**
 * fetch against the Worker, recorded under `kind`. A connection error while the Worker
 * restarts is counted and the request sent again (up to 60 s); outside a restart it is a
 * problem. Returns the Response (body unread) and whether it was retried.
 */
async function call(kind, p, init = {}, { wellFormed = true } = {}) {
  const deadline = Date.now() + 60_000;
  let retried = false;
  for (;;) {
    const t0 = performance.now();
    const during = inRestart();
    try {
      const res = await fetch(base + p, { redirect: 'manual', ...init, signal: AbortSignal.timeout(30_000) });
      const body = await res.text();
      const ms = performance.now() - t0;
      const restartAnswer = res.status >= 500 && (during || inRestart());
      if (restartAnswer && Date.now() < deadline) {
        // The local proxy in front of workerd answers a request cut by the restart itself.
        restartWindow5xx += 1;
        retries += 1;
        retried = true;
        await delay(250);
        continue;
      }
      record(kind, res.status, ms, { wellFormed, inRestart: restartAnswer });
      return { status: res.status, headers: res.headers, text: body, json: parse(body), retried };
    } catch (err) {
      if ((during || inRestart()) && Date.now() < deadline) {
        restartConnErrors += 1;
        retries += 1;
        retried = true;
        await delay(250);
        continue;
      }
      fail(`${kind}: ${err.cause?.code ?? err.message} outside the restart window`);
      return { status: 0, headers: new Headers(), text: '', json: null, retried };
    }
  }
}

function parse(text) {
  try { return JSON.parse(text); } catch { return null; }
}

const hs = (endpoint, body, kind = endpoint) => call(kind, `/api/otp/v2/${SOAK}/${endpoint}`, {
  method: 'POST',
  headers: { Authorization: `Bearer ${worker.secrets.tokens[SOAK]}`, 'Content-Type': 'application/json', Accept: 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const widget = (route, body, kind = `widget ${route}`) => call(kind, `/widget/v1/${route}`, {
  method: 'POST',
  headers: { Origin: ORIGIN, 'Content-Type': 'application/json' },
  body: JSON.stringify({ publishable_key: PK, ...body }),
});

/** The user's WhatsApp message through the signed Meta webhook. */
function inbound(from, text, id = `wamid.${randomBytes(12).toString('hex')}`) {
  const raw = JSON.stringify(inboundTextPayload({ phoneNumberId: PHONE_ID, displayNumber: BUSINESS, from, body: text, id }));
  return call('meta webhook', `/webhooks/whatsapp/${SOAK}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': metaSignature(worker.secrets.instances[SOAK].whatsapp_app_secret, raw) },
    body: raw,
  });
}

let meta;
let lateReplies = 0;
/**
 * The reply carrying the login URL, read off the fake Meta. A reply whose send was running when
 * workerd stopped is sent again once its job's lease (60 s, src/store/jobs.rs) has run out, so
 * the wait is longer than that; such late replies are counted.
 */
async function replyTo(to) {
  const t0 = Date.now();
  const [m] = await meta.waitForMessages(1, { to, timeoutMs: 75_000 });
  if (Date.now() - t0 > 10_000) lateReplies += 1;
  const match = /\/login\/([A-Za-z0-9_-]+)/.exec(m.text ?? '');
  if (!match) throw new Error(`no login URL in the reply to ${to}: ${m.text}`);
  return `/login/${match[1]}`;
}

/**
 * GET the confirm page, then two confirms at once: exactly one may verify (303 to the site
 * with the token, or 200 "verified" for a widget session, whose page polls for the token).
 */
async function confirm(login, what) {
  const page = await call('login page', login);
  if (page.status !== 200) fail(`${what}: the confirm page answered ${page.status}`);
  const posts = await Promise.all([0, 1].map(() => call('login confirm', login, { method: 'POST' })));
  const ok = posts.filter((r) => r.status === 303 || r.status === 200).length;
  const retried = posts.some((r) => r.retried);
  spendChecks += 1;
  if (ok > 1) {
    doubleSpends += 1;
    fail(`${what}: a login link confirmed ${ok} times`);
  }
  if (ok === 0 && !retried) fail(`${what}: no confirm succeeded (${posts.map((r) => r.status).join(', ')})`);
  return ok === 1 || retried;
}

// ---------------------------------------------------------------------------------------------
// The traffic.

const receivers = {};
let receiverTurn = 0;

async function codeFlow() {
  const to = newRecipient();
  const sent = await hs('request-code', { chatId: to });
  if (sent.status !== 200) return fail(`request-code answered ${sent.status}: ${sent.text.slice(0, 200)}`);
  const { code } = sent.json.data;
  const wrong = code.replace(/./, (c) => (c === '0' ? '1' : '0'));
  const bad = await hs('validate-code', { chatId: to, code: wrong });
  if (bad.status !== 422 && !bad.retried) fail(`a wrong code answered ${bad.status}`);
  // The same right code three times at once: one success, two refusals.
  const tries = await Promise.all([0, 1, 2].map(() => hs('validate-code', { chatId: to, code })));
  const ok = tries.filter((r) => r.status === 200).length;
  spendChecks += 1;
  if (ok > 1) {
    doubleSpends += 1;
    fail(`a code was accepted ${ok} times at once`);
  }
  if (ok === 0 && !tries.some((r) => r.retried)) fail(`the right code was refused: ${tries.map((r) => r.status).join(', ')}`);
  const again = await hs('validate-code', { chatId: to, code });
  if (again.status === 200) {
    doubleSpends += 1;
    fail('a used code was accepted again');
  }
}

async function linkFlow() {
  const to = newRecipient();
  const names = Object.keys(receivers);
  const name = names[receiverTurn++ % names.length];
  const url = receivers[name].url;
  const gen = await hs('generate-link', {
    chatId: to,
    expires: 600,
    callback: { success: `${url}/ok`, failed: `${url}/failed` },
  });
  if (gen.status !== 200) return fail(`generate-link answered ${gen.status}: ${gen.text.slice(0, 200)}`);
  const d = gen.json.data;
  const text = new URL(d.whatsapp_link).searchParams.get('text');
  const id = `wamid.${randomBytes(12).toString('hex')}`;
  // Meta delivers at least once: a third of the messages arrive twice, at once.
  const copies = Math.random() < 1 / 3 ? 2 : 1;
  const got = await Promise.all(Array.from({ length: copies }, () => inbound(to, text, id)));
  if (got.some((r) => r.status !== 200)) return fail(`the Meta webhook answered ${got.map((r) => r.status).join(', ')}`);
  const login = await replyTo(to);
  if (await confirm(login, `link ${d.uuid}`)) expectedCallbacks.set(d.uuid, name);
}

async function widgetFlow() {
  const start = await widget('start', { mode: 'link' });
  if (start.status !== 200) return fail(`widget start answered ${start.status}: ${start.text.slice(0, 200)}`);
  const { session, poll_secret: pollSecret, link } = start.json;
  for (let i = 0; i < 2; i++) {
    const p = await widget('poll', { session, poll_secret: pollSecret });
    if (p.status !== 200) return fail(`widget poll answered ${p.status}`);
  }
  if (Math.random() >= 1 / 3) return;
  const from = newRecipient();
  const msg = await inbound(from, new URL(link).searchParams.get('text'));
  if (msg.status !== 200) return fail(`the Meta webhook answered ${msg.status}`);
  await confirm(await replyTo(from), `widget session …${session.slice(-12)}`);
  const p = await widget('poll', { session, poll_secret: pollSecret });
  if (p.status !== 200 || (p.json?.status !== 'verified' && !p.retried)) fail(`widget poll after the confirm: ${p.status} ${p.text.slice(0, 120)}`);
}

async function badBodies() {
  const big = JSON.stringify({ chatId: newRecipient(), name: 'x'.repeat(20 * 1024) });
  const a = await hs('request-code', big, 'oversized (Content-Length)');
  if (a.status !== 413) fail(`an oversized body answered ${a.status}`);
  const b = await hs('validate-code', '{"chatId": "2012345', 'malformed JSON');
  const c = await call('malformed JSON', '/widget/v1/start', {
    method: 'POST', headers: { Origin: ORIGIN, 'Content-Type': 'application/json' }, body: '{"publishable_key":',
  }, { wellFormed: false });
  for (const r of [b, c]) if (r.status !== 400) fail(`malformed JSON answered ${r.status}`);
  // Chunked, no Content-Length, 320 KB: over every limit, under the 1 MB drop allowance.
  const t0 = performance.now();
  const during = inRestart();
  const route = Math.random() < 0.5 ? `/api/otp/v2/${SOAK}/request-code` : `/webhooks/whatsapp/${SOAK}`;
  const r = await streamChunked(base + route, {
    headers: { Authorization: `Bearer ${worker.secrets.tokens[SOAK]}`, 'Content-Type': 'application/json' },
    total: 320 * 1024,
  });
  const restart = during || inRestart();
  if (r.how !== 'answered') {
    if (restart) restartConnErrors += 1;
    else fail(`a chunked body: ${r.how}`);
    return;
  }
  record('oversized (chunked)', r.status, performance.now() - t0, { wellFormed: false, inRestart: restart });
  if (r.status !== 413 && !(restart && r.status >= 500)) fail(`a chunked oversized body answered ${r.status}`);
}

const MIX = [[codeFlow, 4], [linkFlow, 3], [widgetFlow, 2], [badBodies, 1]];
const TOTAL_WEIGHT = MIX.reduce((n, [, w]) => n + w, 0);
function pick() {
  let x = Math.random() * TOTAL_WEIGHT;
  for (const [f, w] of MIX) if ((x -= w) < 0) return f;
  return MIX[0][0];
}

async function loop(until) {
  while (Date.now() < until) {
    const f = pick();
    try {
      await f();
    } catch (err) {
      fail(`${f.name}: ${err.message}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** A callback receiver that records every signed request and answers after `answerMs` (never if null). */
async function startReceiver(name, secret, answerMs) {
  const wh = new Webhook(secret);
  const open = new Set();
  const server = await startFakeServer({
    name: `receiver ${name}`,
    handle(req, res, entry) {
      try {
        entry.json = wh.verify(entry.rawBody, Object.fromEntries(Object.entries(entry.headers).map(([k, v]) => [k, String(v)])));
        entry.verified = true;
      } catch {
        entry.verified = false;
      }
      if (answerMs === null) {
        open.add(res);
        return;
      }
      setTimeout(() => { res.writeHead(204); res.end(); }, answerMs);
    },
  });
  return {
    ...server,
    name,
    close() {
      for (const res of open) res.destroy();
      return server.close();
    },
  };
}

function percentile(sorted, p) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const cleanup = [];
async function stopAll() {
  for (const stop of cleanup.splice(0).reverse()) {
    try { await stop(); } catch (err) { log(`stopping: ${err.message}`); }
  }
}

async function main() {
  const persist = mkdtempSync(path.join(os.tmpdir(), 'edge-otp-soak-'));
  cleanup.push(() => rmSync(persist, { recursive: true, force: true }));
  try {
    const ids = [...testInstances().map((i) => i.id), SOAK];
    const secrets = {
      pepper: randomBytes(32).toString('hex'),
      tokens: Object.fromEntries(ids.map((id) => [id, `t_${randomBytes(16).toString('hex')}`])),
      instances: Object.fromEntries(ids.map((id) => [id, instanceSecretsFor()])),
    };
    const creds = secrets.instances[SOAK];
    meta = await startFakeMeta({ accessToken: creds.whatsapp_access_token, phoneNumberId: PHONE_ID });
    cleanup.push(() => meta.close());
    for (const [name, ms] of [['at once', 0], ['after 2 s', 2000], ['after 6 s', 6000], ['never', null]]) {
      receivers[name] = await startReceiver(name, creds.webhook_secret, ms);
      cleanup.push(() => receivers[name].close());
    }
    const instance = {
      id: SOAK,
      name: 'Soak shop',
      channel: 'whatsapp',
      business_number: BUSINESS,
      whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url },
      link: { redirect_url: 'https://shop.example/welcome' },
      widget: { publishable_key: PK, allowed_origins: [ORIGIN], daily_budget: 0, country_daily_budget: 0 },
    };
    const options = {
      persist,
      secrets,
      extraInstances: [instance],
      bindings: GENEROUS,
      vars: { OUTBOUND_TIMEOUT_MS: String(OUTBOUND_TIMEOUT_MS), CALLBACK_RETRY_SCALE: '0.01' },
    };
    worker = await startWorker(options);
    cleanup.push(() => worker.stop());
    base = worker.url;
    const port = Number(new URL(base).port);
    log(`Worker on ${base} (state in ${persist}); ${CONCURRENCY} loops for ${SECONDS} s, restart at ${SECONDS / 2} s`);

    const t0 = Date.now();
    const until = t0 + SECONDS * 1000;
    const loops = Array.from({ length: CONCURRENCY }, () => loop(until));
    await delay(SECONDS * 500);
    log('restarting workerd (same port, persist directory and secrets)');
    restarting = true;
    const r0 = Date.now();
    await worker.stop();
    worker = await startWorker({ ...options, port });
    base = worker.url;
    restarting = false;
    restartUntil = Date.now() + 2000;
    const restartMs = Date.now() - r0;
    log(`restarted in ${restartMs} ms on ${base}`);
    await Promise.all(loops);
    const trafficS = (Date.now() - t0) / 1000;

    // Every verified link's callback, signed, at its receiver: waited for, within a bound.
    const arrived = () => {
      const seen = new Set();
      for (const rc of Object.values(receivers)) {
        for (const q of rc.requests) if (q.verified && q.json?.status === 'verified') seen.add(q.json.uuid);
      }
      return seen;
    };
    const waitStart = Date.now();
    while (Date.now() - waitStart < CALLBACK_WAIT_S * 1000) {
      const seen = arrived();
      if ([...expectedCallbacks.keys()].every((u) => seen.has(u))) break;
      await delay(250);
    }
    const seen = arrived();
    const lost = [...expectedCallbacks.keys()].filter((u) => !seen.has(u));
    for (const u of lost) fail(`lost callback: ${u} (receiver ${expectedCallbacks.get(u)})`);
    const unsigned = Object.values(receivers).flatMap((rc) => rc.requests).filter((q) => !q.verified).length;
    if (unsigned) fail(`${unsigned} callbacks did not verify`);

    // The table.
    const rows = [...stats.entries()].sort(([a], [b]) => a.localeCompare(b));
    const w = Math.max(...rows.map(([k]) => k.length), 4);
    console.log();
    console.log(`${'kind'.padEnd(w)}  ${'requests'.padStart(8)}  ${'p50 ms'.padStart(7)}  ${'p99 ms'.padStart(7)}  ${'5xx'.padStart(4)}  statuses`);
    let total = 0;
    for (const [kind, s] of rows) {
      const sorted = s.ms.sort((a, b) => a - b);
      const statuses = [...s.statuses.entries()].sort(([a], [b]) => a - b).map(([k, v]) => `${k}:${v}`).join(' ');
      console.log(`${kind.padEnd(w)}  ${String(s.n).padStart(8)}  ${percentile(sorted, 50).toFixed(0).padStart(7)}  ${percentile(sorted, 99).toFixed(0).padStart(7)}  ${String(s.s5).padStart(4)}  ${statuses}`);
      total += s.n;
    }
    const perReceiver = Object.values(receivers).map((rc) => {
      const expected = [...expectedCallbacks.values()].filter((n) => n === rc.name).length;
      const got = new Set(rc.requests.filter((q) => q.verified && q.json?.status === 'verified').map((q) => q.json.uuid));
      return `${rc.name}: ${expected} expected, ${[...expectedCallbacks].filter(([u, n]) => n === rc.name && got.has(u)).length} arrived (${rc.requests.length} attempts)`;
    });
    console.log();
    console.log(`requests: ${total} in ${trafficS.toFixed(0)} s (${(total / trafficS).toFixed(1)}/s), ${CONCURRENCY} loops`);
    console.log(`restart: ${restartMs} ms; ${restartConnErrors} connection errors and ${restartWindow5xx} 5xx in its window, ${retries} requests retried`);
    console.log(`link replies sent after the restart's job leases ran out (over 10 s late): ${lateReplies}`);
    console.log(`callbacks: ${expectedCallbacks.size} expected, ${expectedCallbacks.size - lost.length} arrived (waited ${((Date.now() - waitStart) / 1000).toFixed(1)} s)`);
    for (const line of perReceiver) console.log(`  ${line}`);
    console.log(`double spends: ${doubleSpends} in ${spendChecks} concurrent spends`);
    console.log(`5xx outside the restart window: ${rows.reduce((n, [, s]) => n + s.s5, 0)}`);
    const unique = [...new Set(problems)];
    for (const p of unique.slice(0, 40)) console.log(`FAIL: ${p}`);
    if (unique.length > 40) console.log(`FAIL: ... and ${unique.length - 40} more`);
    if (!unique.length) console.log('PASS: no 5xx on well-formed requests, no lost callback, no double spend');
    return unique.length ? 1 : 0;
  } finally {
    await stopAll();
  }
}

let status = 1;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopAll().finally(() => process.exit(130)); });
try {
  status = await main();
} catch (err) {
  log(err.stack ?? err);
}
process.exit(status);
