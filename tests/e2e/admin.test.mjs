// What an operator watches: the code flow's metrics through the metrics endpoint (sends,
// deliveries, failures, verifications, wrong attempts, lockouts, budget refusals, per channel
// and country, conversion and median time to verify, per hour), the operator page behind its
// token (refused without it, a sign-in form that sets an HttpOnly session cookie, the page and
// its data with it), the deep health check, and the page itself in Chromium drawing its charts
// (ADMIN_SCREENSHOT=docs/admin.png saves its picture).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { startWorker, newRecipient, DEMO, QUICK } from '../support/worker.mjs';
import { waitFor } from '../support/wait.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const ADMIN = 'adm_0123456789abcdef0123456789abcdef';
/** An instance that sends only to UK numbers: a +20 number is refused before any send. */
const UK_ONLY = '77777777-7777-4777-8777-777777777777';

let w;
before(async () => {
  w = await startWorker({
    adminToken: ADMIN,
    extraInstances: [{ id: UK_ONLY, name: 'UK only', channel: 'outbox', abuse: { allowed_countries: ['44'] } }],
  });
});
after(async () => {
  await w?.stop();
});

async function metrics(instance = DEMO) {
  const res = await w.fetch(`/api/otp/v2/${instance}/metrics`, { headers: { Authorization: `Bearer ${w.secrets.tokens[instance]}` } });
  assert.equal(res.status, 200);
  return (await res.json()).data;
}

/** Waits until the instance's code metrics satisfy `ok` (counters are added after the answer). */
function metricsUntil(instance, ok, what) {
  let last;
  return waitFor(async () => {
    last = await metrics(instance);
    return ok(last) && last;
  }, { timeout: 5000, interval: 100, what: () => `${what}; have ${JSON.stringify(last?.code)}` });
}

const otherCode = (code) => String((Number(code) + 1) % 10 ** code.length).padStart(code.length, '0');

describe('code-flow metrics', () => {
  test('sends, deliveries, verifications and wrong attempts, per channel, per country and per hour; conversion and median time to verify', async () => {
    const phones = [newRecipient(), newRecipient(), `44${String(Date.now()).slice(-10)}`];
    const codes = [];
    for (const p of phones) {
      const rc = await w.hs('request-code', { chatId: p });
      assert.equal(rc.status, 200);
      codes.push(rc.body.data.code);
    }
    assert.equal((await w.hs('validate-code', { chatId: phones[0], code: otherCode(codes[0]) })).status, 422);
    assert.equal((await w.hs('validate-code', { chatId: phones[0], code: codes[0] })).status, 200);
    const d = await metricsUntil(DEMO, (m) => m.code.verified === 1 && m.code.delivered === 3 && m.code.wrong_attempts === 1, 'three sends delivered, one verified, one wrong');
    const c = d.code;
    assert.equal(c.sent, 3);
    assert.equal(c.failed, 0);
    assert.equal(c.conversion_rate, 1 / 3);
    assert.ok(c.median_seconds_to_verify >= 0 && c.median_seconds_to_verify <= 5, `median ${c.median_seconds_to_verify}`);
    assert.deepEqual(c.by_channel.outbox, { sent: 3, delivered: 3, verified: 1, wrong: 1 });
    assert.deepEqual(c.by_country['20'], { sent: 2, delivered: 2, verified: 1, wrong: 1 });
    assert.deepEqual(c.by_country['44'], { sent: 1, delivered: 1 });
    const hour = new Date().toISOString().slice(0, 13);
    const hourly = d.hours[hour] ?? d.hours[new Date(Date.now() - 60_000).toISOString().slice(0, 13)];
    assert.equal(hourly['code.sent'], 3);
    assert.equal(hourly['code.sent@ch:outbox'], 3);
    assert.equal(hourly['code.sent@cc:20'], 2);
    // No counter, hour or day key holds a number or a code.
    const text = JSON.stringify(d);
    for (const p of phones) assert.ok(!text.includes(p.slice(2)), 'a number in the metrics');
    for (const code of codes) assert.ok(!text.includes(`:${code}`), 'a code in the metrics');
  });

  test('a lockout and a budget refusal are counted', async () => {
    const phone = newRecipient();
    const rc = await w.hs('request-code', { chatId: phone }, { instance: QUICK });
    const wrong = otherCode(rc.body.data.code);
    // The fifth wrong code ends the challenge and locks the recipient out (QUICK: for 2 s).
    for (let i = 1; i <= 5; i++) {
      const v = await w.hs('validate-code', { chatId: phone, code: wrong }, { instance: QUICK });
      assert.equal(v.status, 422);
      if (i === 5) assert.ok(v.headers.get('retry-after'), 'the fifth wrong code starts a lockout');
    }
    await metricsUntil(QUICK, (m) => m.code.lockouts === 1 && m.code.wrong_attempts === 5, 'five wrong attempts and one lockout counted');

    const refused = await w.hs('request-code', { chatId: newRecipient() }, { instance: UK_ONLY });
    assert.ok(refused.status >= 400 && refused.status < 500, `refused with ${refused.status}`);
    const m = await metricsUntil(UK_ONLY, (x) => x.code.budget_refusals === 1, 'one budget refusal');
    assert.equal(m.code.sent, 0);
    assert.equal(m.code.by_country['20'].budget_refused, 1);
    assert.equal(m.code.conversion_rate, null);
    assert.equal(m.code.median_seconds_to_verify, null);
  });
});

describe('the operator page', () => {
  test('refused without the operator token: the sign-in form, 401 for its data and files', async () => {
    const page = await w.fetch('/_otp/admin');
    assert.equal(page.status, 401);
    assert.match(await page.text(), /<input name="token" type="password"/);
    for (const p of ['/_otp/admin/metrics', '/_otp/admin/app.js', '/_otp/admin/app.css']) {
      for (const auth of [undefined, 'Bearer wrong', `Bearer ${w.secrets.tokens[DEMO]}`]) {
        const res = await w.fetch(p, { headers: auth ? { Authorization: auth } : {} });
        assert.equal(res.status, 401, `${p} with ${auth}`);
        assert.ok(!(await res.text()).includes('code.sent'), p);
      }
    }
    const forged = await w.fetch('/_otp/admin/metrics', { headers: { Cookie: 'otp_admin=9999999999.00' } });
    assert.equal(forged.status, 401);
  });

  test('the sign-in form sets an HttpOnly session cookie that opens the page and its data', async () => {
    const bad = await w.fetch('/_otp/admin', { method: 'POST', body: new URLSearchParams({ token: 'nope' }), redirect: 'manual' });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers.get('set-cookie'), null);
    const ok = await w.fetch('/_otp/admin', { method: 'POST', body: new URLSearchParams({ token: ADMIN }), redirect: 'manual' });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get('location'), '/_otp/admin');
    const cookie = ok.headers.get('set-cookie');
    assert.match(cookie, /^otp_admin=\d+\.[0-9a-f]{64}; Max-Age=28800; Path=\/_otp\/admin; HttpOnly; Secure; SameSite=Strict$/);
    assert.ok(!cookie.includes(ADMIN), 'the token itself is not the cookie');
    const jar = { Cookie: cookie.split(';')[0] };
    const page = await w.fetch('/_otp/admin', { headers: jar });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy'), /script-src 'self'/);
    assert.ok(!/unsafe-inline/.test(page.headers.get('content-security-policy')));
    assert.match(await page.text(), /<script type="module" src="admin\/app.js">/);
    const js = await w.fetch('/_otp/admin/app.js', { headers: jar });
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type'), /javascript/);
    const data = await w.fetch('/_otp/admin/metrics', { headers: jar });
    assert.equal(data.status, 200);
    const body = await data.json();
    assert.deepEqual(body.instances.map((i) => i.id).slice(0, 3), [DEMO, '22222222-2222-4222-8222-222222222222', QUICK]);
    assert.equal(typeof body.instances[0].code.sent, 'number');
    // A bearer header works as well (for scripts).
    const bearer = await w.fetch('/_otp/admin/metrics', { headers: { Authorization: `Bearer ${ADMIN}` } });
    assert.equal(bearer.status, 200);
  });

  test('a deploy without ADMIN_TOKEN has no operator page', async () => {
    const plain = await startWorker();
    try {
      for (const p of ['/_otp/admin', '/_otp/admin/metrics']) assert.equal((await plain.fetch(p)).status, 404, p);
    } finally {
      await plain.stop();
    }
  });

  test('the deploy build serves the page behind its token too (its files are in the release assets)', async () => {
    const release = await startWorker({ flavour: 'release', adminToken: ADMIN });
    try {
      assert.equal((await release.fetch('/_otp/admin')).status, 401);
      assert.equal((await release.fetch('/_otp/admin/app.js')).status, 401, 'the script is not a public asset');
      const auth = { headers: { Authorization: `Bearer ${ADMIN}` } };
      const page = await release.fetch('/_otp/admin', auth);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /edge-otp operator/);
      assert.equal((await release.fetch('/_otp/admin/app.js', auth)).status, 200);
      assert.equal((await release.fetch('/health/deep')).status, 200);
    } finally {
      await release.stop();
    }
  });

  test('in Chromium: sign in, the charts are drawn from the metrics', async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems = [];
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('console', (m) => /Content.Security.Policy/i.test(m.text()) && problems.push(m.text()));
      // Every request of the signed-in page succeeds (the browser's own favicon guess aside).
      page.on('response', (r) => r.status() >= 400 && !r.url().endsWith('/favicon.ico') && r.request().method() !== 'GET' && problems.push(`${r.status()} ${r.url()}`));
      page.on('response', (r) => r.status() >= 400 && /\/_otp\/admin\/./.test(r.url()) && problems.push(`${r.status()} ${r.url()}`));
      await page.goto(`${w.url}/_otp/admin`);
      await page.fill('input[name=token]', ADMIN);
      await page.click('button[type=submit]');
      await page.waitForSelector('body[data-ready=true]');
      assert.equal(await page.locator('[data-metric="sent"] b').textContent(), '3');
      assert.ok(await page.locator('#sent svg polyline').count() >= 1, 'a sends line');
      assert.ok(await page.locator('#countries svg rect').count() >= 2, 'country bars');
      assert.deepEqual(problems, [], 'no script error, no CSP violation');
      if (process.env.ADMIN_SCREENSHOT) await page.screenshot({ path: process.env.ADMIN_SCREENSHOT, fullPage: true });
    } finally {
      await browser.close();
    }
  });
});

describe('health', () => {
  test('/health stays a cheap liveness answer', async () => {
    const res = await w.fetch('/health');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  test('/health/deep: KV, every Durable Object namespace and the secrets answer', async () => {
    const res = await w.fetch('/health/deep');
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(body, {
      status: 'ok',
      checks: {
        kv: 'ok', RECIPIENTS: 'ok', LINKS: 'ok', METRICS: 'ok', IDEMPOTENCY: 'ok', BUDGETS: 'ok',
        INSTANCES: 'ok', OTP_PEPPER: 'ok', API_TOKENS: 'ok', INSTANCE_SECRETS: 'ok', TOKEN_SIGNING_KEYS: 'ok',
      },
    });
  });

  test('/health/deep: 503 naming the parts that fail, and no secret value', async () => {
    const broken = await startWorker({ omit: ['OTP_PEPPER'] });
    try {
      const res = await broken.fetch('/health/deep');
      assert.equal(res.status, 503);
      const body = await res.json();
      assert.equal(body.status, 'fail');
      assert.equal(body.checks.OTP_PEPPER, 'fail');
      assert.equal(body.checks.kv, 'ok');
      assert.equal(body.checks.RECIPIENTS, 'ok');
      const text = JSON.stringify(body);
      for (const s of [w.secrets.tokens[DEMO], JSON.stringify(w.secrets.instances)]) assert.ok(!text.includes(s));
      assert.equal((await broken.fetch('/health')).status, 200, 'liveness answers all the same');
    } finally {
      await broken.stop();
    }
  });
});
