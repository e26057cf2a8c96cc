// The widget on someone else's site, from where a front-end developer stands: a page on its own
// origin (scripts/another-site.mjs, the page `make dev` serves on :8789) embeds the widget
// exactly as README.md says, from the service's origin, with `integrity`, under a strict
// Content-Security-Policy. In headless Debian Chromium (playwright-core) it runs the code flow
// and the WhatsApp flow and checks the `verified` event's token, in the plain service layout
// and behind the edge middleware (/_otp). Over HTTP: the widget's files answer cross-origin
// loads (CORS, MIME types, CORP, caching) in both layouts and in the deploy build's assets, and
// the served module is the one sri.json pins. A widget whose files cannot load says so: `error` event, message, `ready`
// rejected, `onError`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startWorker, newRecipient, DEMO, ROOT } from '../support/worker.mjs';
import { waitFor } from '../support/wait.mjs';
import { startAnotherSite, sitePolicy } from '../../scripts/another-site.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** The flags a closed network needs (no background calls home), as root, headless. */
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

/** The other site's instance: its allowlist holds exactly the other site's origins. */
const SITE = '66666666-6666-4666-8666-666666666666';
const SITE_PK = 'pk_test_anothersite0000000001';
const SITE_BUSINESS = '15550006666';
const SITE_PHONE_ID = '100000000000066';

const VERSION = /^version = "(.*)"/m.exec(readFileSync(path.join(ROOT, 'crates/otp-widget/Cargo.toml'), 'utf8'))[1];
const SRI_FILE = path.join(ROOT, `www/widget/v${VERSION}/sri.json`);

let browser;
/** The plain service and the one behind the edge middleware, each with its other site. */
const layouts = {};
/** The deploy build, which serves build/release-assets/ (only its files' headers are checked). */
let release;

function siteInstance(origins) {
  return {
    id: SITE,
    name: 'Another site',
    channel: 'outbox',
    business_number: SITE_BUSINESS,
    whatsapp: { phone_number_id: SITE_PHONE_ID },
    link: { redirect_url: '/#verified' },
    widget: { publishable_key: SITE_PK, allowed_origins: origins },
  };
}

/** Starts a Worker (with `vars`) and the other site for it; `prefix` is where the service is. */
async function startLayout(prefix, vars = {}) {
  // The instance's allowlist needs the site's origin, and the site the service's URL: the site
  // starts first and learns the service's URL once the Worker is up.
  const server = await startAnotherSite({ publishableKey: SITE_PK });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const worker = await startWorker({ extraInstances: [siteInstance([origin])], vars });
  const service = `${worker.url}${prefix}`;
  server.setService(service);
  return { worker, server, origin, service, prefix };
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run make setup`);
  assert.ok(existsSync(SRI_FILE), 'the widget is not built: run bash scripts/build-widget.sh');
  layouts.plain = await startLayout('');
  layouts.middleware = await startLayout('/_otp', {
    MIDDLEWARE: { instance: DEMO, origin: 'http://127.0.0.1:9', protected: ['/members', '/members/*'] },
  });
  release = await startWorker({ flavour: 'release' });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
});

after(async () => {
  await browser?.close();
  await release?.stop();
  for (const l of Object.values(layouts)) {
    await l.worker?.stop();
    await new Promise((r) => (l.server ? l.server.close(r) : r()));
  }
});

const sha384 = (bytes) => `sha384-${createHash('sha384').update(bytes).digest('base64')}`;

describe('the widget files answer cross-origin loads', () => {
  const IMMUTABLE = 'public, max-age=31536000, immutable';
  const SHORT = 'public, max-age=300';
  // One row per file and layout: where it is, its type, its caching.
  const rows = [
    ['plain', `/widget/v${VERSION}/edge-otp.js`, /^text\/javascript/, IMMUTABLE],
    ['plain', `/widget/v${VERSION}/edge_otp_widget_bg.wasm`, /^application\/wasm$/, IMMUTABLE],
    ['plain', `/widget/v${VERSION}/sri.json`, /^application\/json/, IMMUTABLE],
    ['plain', '/widget/edge-otp.js', /^text\/javascript/, SHORT],
    ['middleware', `/_otp/widget/v${VERSION}/edge-otp.js`, /^text\/javascript/, IMMUTABLE],
    ['middleware', `/_otp/widget/v${VERSION}/edge_otp_widget_bg.wasm`, /^application\/wasm$/, IMMUTABLE],
    ['middleware', '/_otp/widget/edge-otp.js', /^text\/javascript/, SHORT],
    ['release', `/widget/v${VERSION}/edge-otp.js`, /^text\/javascript/, IMMUTABLE],
    ['release', `/widget/v${VERSION}/edge_otp_widget_bg.wasm`, /^application\/wasm$/, IMMUTABLE],
    ['release', '/widget/edge-otp.js', /^text\/javascript/, SHORT],
  ];
  for (const [layout, file, type, cache] of rows) {
    test(`${layout} ${file}: CORS *, no credentials, its MIME type, CORP cross-origin, ${cache === SHORT ? 'a short' : 'an immutable'} cache`, async () => {
      const worker = layout === 'release' ? release : layouts[layout].worker;
      const res = await worker.fetch(file, { headers: { Origin: 'https://some-other-site.example' } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(res.headers.get('access-control-allow-credentials'), null);
      assert.match(res.headers.get('content-type'), type);
      assert.equal(res.headers.get('cross-origin-resource-policy'), 'cross-origin');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('cache-control'), cache);
    });
  }

  test('the served module and Wasm are the ones sri.json pins, and the moving URL re-exports them', async () => {
    const sri = JSON.parse(readFileSync(SRI_FILE, 'utf8'));
    assert.equal(sri.version, VERSION);
    for (const { worker, prefix } of Object.values(layouts)) {
      for (const [file, hash] of Object.entries(sri.files)) {
        const res = await worker.fetch(`${prefix}/widget/v${VERSION}/${file}`);
        assert.equal(sha384(Buffer.from(await res.arrayBuffer())), hash, `${prefix}/widget/v${VERSION}/${file}`);
      }
      const moving = await (await worker.fetch(`${prefix}/widget/edge-otp.js`)).text();
      assert.match(moving, new RegExp(`export \\* from "\\./v${VERSION.replaceAll('.', '\\.')}/edge-otp\\.js"`));
    }
    // The module checks the Wasm itself: its hash is inside.
    const module = readFileSync(path.join(ROOT, `www/widget/v${VERSION}/edge-otp.js`), 'utf8');
    assert.ok(module.includes(sri.files['edge_otp_widget_bg.wasm']));
  });
});

/** The service's published keys (under the prefix behind the middleware, else at the root). */
async function jwks(worker, prefix) {
  for (const base of [prefix, '']) {
    const res = await worker.fetch(`${base}/.well-known/jwks.json`);
    if (res.ok && (res.headers.get('content-type') ?? '').includes('json')) return res.json();
  }
  throw new Error('no /.well-known/jwks.json');
}

/** Checks a verification token's signature and claims the way a site's backend would. */
async function checkToken(token, { worker, prefix = '', phone }) {
  const { alg, kid } = decodeProtectedHeader(token);
  const key = alg === 'HS256'
    ? new TextEncoder().encode(worker.secrets.instances[SITE].token_keys[kid])
    : createLocalJWKSet(await jwks(worker, prefix));
  const { payload } = await jwtVerify(token, key, { algorithms: [alg], audience: SITE });
  assert.equal(payload.sub, phone);
}

/** The other site's page in a fresh context; collects the page's console errors. */
async function openSite(layout) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(`${m.text()} (${m.location().url})`));
  const res = await page.goto(`${layout.origin}/`);
  assert.equal(res.headers()['content-security-policy'], sitePolicy(new URL(layout.service).origin));
  // Fail fast, and say why, when the module cannot load (a CORS refusal is a console error).
  await page.waitForFunction(() => customElements.get('edge-otp') !== undefined, null, { timeout: 10_000 })
    .catch(() => assert.fail(`the widget's module did not load on ${layout.origin}: ${errors.join('; ')}`));
  return { context, page, errors };
}

/** What the page's own script saw (scripts/another-site.mjs shows it in #result). */
async function pageSaw(page) {
  return page.evaluate(() => Object.fromEntries(
    ['verified', 'phone', 'token', 'errors', 'violations'].map((id) => [id, document.getElementById(id).textContent]),
  ));
}

/** Code flow on the other site: the country selector, the code from the outbox, the token. */
async function codeFlow(layout) {
  const { worker, prefix } = layout;
  // Egypt (20); the national number starts with 1 as Egyptian mobiles do (a leading 0 would be
  // the trunk prefix, dropped).
  const phone = `201${newRecipient().slice(3)}`;
  const { context, page, errors } = await openSite(layout);
  const widget = page.locator('#code');
  // A national number with the country picked, as a person in Egypt would type it.
  await widget.getByLabel('Country').selectOption('EG');
  await widget.getByLabel('Phone number').fill(phone.slice(2));
  await widget.getByText(`The code goes to +20 ${phone.slice(2)}`).waitFor();
  await widget.getByRole('button', { name: 'Send code' }).click();
  const code = await waitFor(async () => {
    const msgs = await (await worker.fetch(`${prefix}/dev/outbox?to=${phone}`)).json();
    return msgs[0]?.text.match(/\b(\d{6})\b/)?.[1];
  }, { what: `a code for ${phone} in the dev outbox` });
  await widget.locator('input[autocomplete="one-time-code"]').pressSequentially(code);
  await page.locator('#verified').filter({ hasText: 'code' }).waitFor();
  const saw = await pageSaw(page);
  assert.equal(saw.phone, `+${phone}`);
  await checkToken(saw.token, { worker, prefix, phone: `+${phone}` });
  // Styled by its constructed sheet under `style-src 'self'`, in the page's own accent.
  const accent = await widget.locator('.eo-done').evaluate((el) => getComputedStyle(el).color);
  assert.equal(accent, 'rgb(122, 59, 11)');
  assert.equal(saw.violations, '', 'no CSP violation');
  assert.equal(saw.errors, '');
  assert.deepEqual(errors, []);
  await context.close();
}

describe('another site embeds the widget from the service under a strict CSP', () => {
  test('code flow, plain service: selector, code, verified event with a valid token', async () => {
    await codeFlow(layouts.plain);
  });

  test('code flow, behind the edge middleware (/_otp)', async () => {
    await codeFlow(layouts.middleware);
  });

  test('WhatsApp flow: the message from the phone, the login link confirmed, the token', async () => {
    const layout = layouts.plain;
    const { worker } = layout;
    const phone = newRecipient();
    const { context, page, errors } = await openSite(layout);
    const widget = page.locator('#link');
    await widget.getByRole('button', { name: 'Verify with WhatsApp' }).click();
    await widget.locator('svg.eo-qr').waitFor();
    const href = await widget.getByRole('link', { name: 'Open WhatsApp' }).getAttribute('href');
    const text = new URL(href).searchParams.get('text');
    // The phone sends the prefilled message: Meta's webhook, signed with the app secret.
    const hook = await worker.sendWhatsApp(SITE, { phoneNumberId: SITE_PHONE_ID, displayNumber: SITE_BUSINESS, from: phone, body: text });
    assert.equal(hook.status, 200);
    const login = await waitFor(async () => {
      const msgs = await worker.outbox(phone);
      return msgs[0]?.text.match(/https?:\/\/\S+\/login\/[A-Za-z0-9_-]+/)?.[0];
    }, { timeout: 20_000, what: `a login link for ${phone}` });
    const phoneBrowser = await context.newPage();
    await phoneBrowser.goto(login);
    await phoneBrowser.getByRole('button', { name: 'Confirm login' }).click();
    await phoneBrowser.getByText('You are verified').waitFor();
    // The other site's page was polling the service: it completes by itself.
    await page.locator('#verified').filter({ hasText: 'link' }).waitFor({ timeout: 20_000 });
    const saw = await pageSaw(page);
    assert.equal(saw.phone, `+${phone}`);
    await checkToken(saw.token, { worker, phone: `+${phone}` });
    assert.equal(saw.violations, '');
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe('the element follows its attributes after connection (as React and Vue set them)', () => {
  test('mode and locale re-mount it, theme only repaints, several changes re-mount once', async () => {
    const { context, page, errors } = await openSite(layouts.plain);
    const widget = page.locator('#code');
    await widget.getByLabel('Phone number').fill('+34 612 345 678');
    const configs = [];
    page.on('request', (r) => r.url().includes('/widget/v1/config') && configs.push(r.url()));
    // theme: a repaint, the number typed so far stays.
    await page.evaluate(() => document.getElementById('code').setAttribute('theme', 'dark'));
    assert.equal(await widget.getAttribute('data-theme'), 'dark');
    assert.equal(await widget.getByLabel('Phone number').inputValue(), '+34 612 345 678');
    // mode and locale in one task: one re-mount, in Spanish, in WhatsApp mode.
    await page.evaluate(() => {
      const el = document.getElementById('code');
      el.setAttribute('mode', 'link');
      el.setAttribute('locale', 'es');
    });
    await widget.getByRole('button', { name: 'Verificar con WhatsApp' }).waitFor();
    await page.evaluate(() => document.getElementById('code').ready);
    assert.equal(configs.length, 1, 'one re-mount reads the config once');
    // A property (React 19 sets known properties): strings re-mount it with the new text.
    await page.evaluate(() => { document.getElementById('code').strings = { whatsapp_button: 'Por WhatsApp' }; });
    await widget.getByRole('button', { name: 'Por WhatsApp' }).waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe('a widget whose files cannot load says so', () => {
  test('a Wasm that is not the pinned one: message in the box, error events, ready rejects, onError', async () => {
    const layout = layouts.plain;
    const context = await browser.newContext();
    const page = await context.newPage();
    // A swapped Wasm (one byte changed): the module's integrity check refuses it.
    await page.route('**/edge_otp_widget_bg.wasm', async (route) => {
      const res = await route.fetch();
      const body = Buffer.from(await res.body());
      body[body.length - 1] ^= 1;
      await route.fulfill({ response: res, body });
    });
    await page.goto(`${layout.origin}/`);
    const box = page.locator('#code [role=alert]');
    await box.waitFor();
    assert.match(await box.textContent(), /could not load/);
    await page.locator('#errors').filter({ hasText: 'link: load_failed' }).waitFor();
    assert.match(await page.locator('#errors').textContent(), /code: load_failed/);
    // The same through mount(): its handle's ready rejects and onError hears why.
    const viaMount = await page.evaluate(async (src) => {
      const { mount } = await import(src);
      const div = document.body.appendChild(document.createElement('div'));
      const seen = [];
      const handle = mount(div, { publishableKey: 'pk_test_anothersite0000000001', locale: 'es', onError: (e) => seen.push(e.code) });
      const outcome = await handle.ready.then(() => 'resolved', (e) => `rejected: ${e.name}`);
      return { outcome, seen, text: div.textContent };
    }, `${layout.service}/widget/v${VERSION}/edge-otp.js`);
    assert.match(viaMount.outcome, /^rejected/);
    assert.deepEqual(viaMount.seen, ['load_failed']);
    assert.match(viaMount.text, /No se pudo cargar/);
    await context.close();
  });
});
