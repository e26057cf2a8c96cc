// The product in a real browser: headless Debian Chromium (playwright-core) against the dev
// Worker on workerd. The demo page's widget runs the code flow (the code read from the dev
// outbox) and the WhatsApp flow through the simulated phone; a page on an origin that is not
// on the instance's list cannot use the widget API (CORS, enforced by the browser itself); the
// edge middleware in front of a site: protected page -> verification page -> cookie -> the
// origin sees X-Verified-Phone, a forged header and a tampered cookie do not pass, and an
// open-redirect attempt stays on the site.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { startWorker, newRecipient, DEMO, DEMO_PK, ROOT } from '../support/worker.mjs';
import { waitFor } from '../support/wait.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** The flags a closed network needs (no background calls home), as root, headless. */
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

/** A second instance whose allowlist holds exactly the test page server's origin. */
const PAGES = '55555555-5555-4555-8555-555555555555';
const PAGES_PK = 'pk_test_browserpagesinstance01';

let w;
let browser;
let pages;
let pagesOrigin;

/** Serves one HTML page on 127.0.0.1 (another origin than the Worker's). */
function startPageServer() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>another site</title><p>another site</p>');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run make setup`);
  assert.ok(existsSync(`${ROOT}/www/widget/edge-otp.js`), 'the widget is not built: run bash scripts/build-widget.sh');
  pages = await startPageServer();
  pagesOrigin = `http://127.0.0.1:${pages.address().port}`;
  w = await startWorker({
    extraInstances: [{ id: PAGES, name: 'Pages', channel: 'outbox', widget: { publishable_key: PAGES_PK, allowed_origins: [pagesOrigin] } }],
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
});

after(async () => {
  await browser?.close();
  await w?.stop();
  await new Promise((r) => (pages ? pages.close(r) : r()));
});

/** A fresh page on the demo, with the simulated phone set to `phone` (digits). */
async function demoPage(phone) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${w.url}/`);
  await page.fill('#phone', `+${phone}`);
  await page.dispatchEvent('#phone', 'input');
  // The simulated phone takes the number after a short debounce: wait until it is its own.
  await page.waitForFunction((me) => document.getElementById('me')?.textContent === me, `+${phone}`);
  return { context, page };
}

describe('the demo page', () => {
  test('code flow: type the number, the code from the phone, and the page is verified', async () => {
    const phone = newRecipient();
    const { context, page } = await demoPage(phone);
    const widget = page.locator('#widget-code-slot');
    await widget.locator('input[type=tel]').fill(`+${phone}`);
    await widget.getByRole('button', { name: 'Send code' }).click();
    const code = (await w.nextMessage(phone)).text.match(/\b(\d{6})\b/)[1];
    const input = widget.locator('input[autocomplete="one-time-code"]');
    await input.waitFor();
    assert.equal(await input.getAttribute('inputmode'), 'numeric');
    await input.pressSequentially(code);
    await page.locator('#verified').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#claims dd code').first().textContent(), `+${phone}`);
    assert.match(await widget.textContent(), new RegExp(`Verified \\+${phone}`));
    // The page checks the token as a backend does: ES256 against the public JWKS.
    await page.waitForFunction(() => document.getElementById('devcheck')?.textContent !== '');
    assert.match(await page.locator('#devcheck').textContent(), /ES256 signature matches key k1 of the service's public JWKS/);
    await context.close();
  });

  test('WhatsApp flow: the simulated phone sends the message and confirms; the page is verified', async () => {
    const phone = newRecipient();
    const { context, page } = await demoPage(phone);
    const widget = page.locator('#widget-link-slot');
    await widget.getByRole('button', { name: 'Verify with WhatsApp' }).click();
    // A desktop browser gets the QR code and the link.
    await widget.locator('svg.eo-qr').waitFor();
    await widget.getByRole('link', { name: 'Open WhatsApp' }).click();
    assert.match(await page.inputValue('#compose-text'), /[A-Z]{8}/);
    await page.click('#send');
    // The reply carries the one-time login link; the phone opens it and confirms.
    const loginLink = page.locator('#chat a[href*="/login/"]');
    await loginLink.waitFor({ timeout: 20_000 });
    const href = await loginLink.getAttribute('href');
    const phoneBrowser = await context.newPage();
    await phoneBrowser.goto(href);
    await phoneBrowser.getByRole('button', { name: 'Confirm login' }).click();
    await phoneBrowser.getByText('You are verified').waitFor();
    // The page that started it was polling: it completes by itself.
    await page.locator('#verified').waitFor({ state: 'visible', timeout: 20_000 });
    assert.equal(await page.locator('#claims dd code').first().textContent(), `+${phone}`);
    await context.close();
  });

  test("WhatsApp flow: \"This wasn't me\" on the phone cancels the login and the page that started it gets nothing", async () => {
    const phone = newRecipient();
    const { context, page } = await demoPage(phone);
    const widget = page.locator('#widget-link-slot');
    await widget.getByRole('button', { name: 'Verify with WhatsApp' }).click();
    await widget.getByRole('link', { name: 'Open WhatsApp' }).click();
    await page.click('#send');
    const loginLink = page.locator('#chat a[href*="/login/"]');
    await loginLink.waitFor({ timeout: 20_000 });
    const phoneBrowser = await context.newPage();
    await phoneBrowser.goto(await loginLink.getAttribute('href'));
    // The page names the browser that started the login (this headless Chromium on Linux).
    assert.equal(await phoneBrowser.locator('#started-with').textContent(), 'Chrome on Linux');
    await phoneBrowser.getByRole('button', { name: "This wasn't me" }).click();
    await phoneBrowser.getByText('Login cancelled').waitFor();
    // The polling page learns the session failed and offers to start again; it is never verified.
    await widget.getByRole('button', { name: 'Try again' }).waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('#verified').isVisible(), false);
    await context.close();
  });
});

describe('CORS in the browser', () => {
  /** Runs a widget-API start from a page on `origin` with `key`; returns the fetch outcome. */
  async function startFrom(pageUrl, key, phone) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(pageUrl);
    const outcome = await page.evaluate(async ({ url, key, phone }) => {
      try {
        const res = await fetch(`${url}/widget/v1/start`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ publishable_key: key, phone }),
        });
        return { status: res.status };
      } catch (e) {
        return { blocked: e.name };
      }
    }, { url: w.url, key, phone: `+${phone}` });
    await context.close();
    return outcome;
  }

  test('a page on an origin on the list can start a verification', async () => {
    const phone = newRecipient();
    assert.deepEqual(await startFrom(`${pagesOrigin}/`, PAGES_PK, phone), { status: 200 });
    assert.equal((await w.nextMessage(phone)).text.length > 0, true);
  });

  test('a page on another origin is refused by the browser, and nothing is sent', async () => {
    const phone = newRecipient();
    assert.deepEqual(await startFrom(`${pagesOrigin}/`, DEMO_PK, phone), { blocked: 'TypeError' });
    assert.deepEqual(await w.outbox(phone), []);
  });
});

describe('the edge middleware in front of a site', () => {
  let site;
  let origin;
  let seen;

  /** The site behind the middleware: records the X-Verified-Phone each request brought. */
  function startOrigin() {
    seen = [];
    const server = http.createServer((req, res) => {
      const phone = req.headers['x-verified-phone'] ?? null;
      // The browser's own favicon request is not what these tests look at.
      if (req.url !== '/favicon.ico') seen.push({ path: req.url, phone, cookie: req.headers.cookie ?? null });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>Members</title><h1>Members only</h1><p id="phone">${phone ?? '(none)'}</p>`);
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
  }

  before(async () => {
    origin = await startOrigin();
    site = await startWorker({
      vars: {
        MIDDLEWARE: {
          instance: DEMO,
          origin: `http://127.0.0.1:${origin.address().port}`,
          protected: ['/members', '/members/*'],
        },
      },
    });
  });
  after(async () => {
    await site?.stop();
    await new Promise((r) => (origin ? origin.close(r) : r()));
  });

  /** The code the dev outbox holds for `phone` (service routes live under /_otp here). */
  async function codeFor(phone) {
    return waitFor(async () => {
      const msgs = await (await site.fetch(`/_otp/dev/outbox?to=${phone}`)).json();
      return msgs[0]?.text.match(/\b(\d{6})\b/)?.[1];
    }, { timeout: 5000, interval: 50, what: `a code for ${phone} in the dev outbox` });
  }

  /** Verifies `phone` on the verification page `page` shows; returns once back on the site. */
  async function verifyOnPage(page, phone) {
    const widget = page.locator('edge-otp');
    await widget.locator('input[type=tel]').fill(`+${phone}`);
    await widget.getByRole('button', { name: 'Send code' }).click();
    const code = await codeFor(phone);
    await widget.locator('input[autocomplete="one-time-code"]').pressSequentially(code);
  }

  test('protected page -> verification -> cookie -> the origin sees X-Verified-Phone', async () => {
    const phone = newRecipient();
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));
    const first = await page.goto(`${site.url}/members`);
    assert.equal(first.status(), 401);
    assert.equal(seen.length, 0, 'the origin was reached before verification');
    await verifyOnPage(page, phone);
    await page.waitForURL(`${site.url}/members`);
    await page.locator('#phone').waitFor();
    assert.equal(await page.locator('#phone').textContent(), `+${phone}`);
    const [cookie] = await context.cookies();
    assert.equal(cookie.name, 'edge_otp');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(seen.at(-1).phone, `+${phone}`);
    assert.doesNotMatch(seen.at(-1).cookie ?? '', /edge_otp=/, 'the origin never sees the cookie');

    // A forged header from the client never reaches the origin.
    await page.setExtraHTTPHeaders({ 'X-Verified-Phone': '+19990000000' });
    await page.goto(`${site.url}/members/profile`);
    assert.equal(seen.at(-1).phone, `+${phone}`);

    // A tampered cookie is worth nothing: back to the verification page.
    const tampered = { ...cookie, value: cookie.value.slice(0, -2) + (cookie.value.endsWith('AA') ? 'BB' : 'AA') };
    await context.clearCookies();
    await context.addCookies([tampered]);
    const before = seen.length;
    const again = await page.goto(`${site.url}/members`);
    assert.equal(again.status(), 401);
    assert.equal(seen.length, before);
    await context.close();
  });

  test('without a cookie, a forged X-Verified-Phone gets the verification page, never the origin', async () => {
    const context = await browser.newContext({ extraHTTPHeaders: { 'X-Verified-Phone': '+19990000000' } });
    const page = await context.newPage();
    const before = seen.length;
    const res = await page.goto(`${site.url}/members`);
    assert.equal(res.status(), 401);
    await page.locator('edge-otp').waitFor();
    assert.equal(seen.length, before);
    // An open path reaches the origin, without the forged header.
    await page.goto(`${site.url}/about`);
    assert.equal(seen.at(-1).path, '/about');
    assert.equal(seen.at(-1).phone, null);
    await context.close();
  });

  test('an open-redirect attempt stays on the site', async () => {
    const phone = newRecipient();
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${site.url}/_otp/verify?next=${encodeURIComponent('//evil.example/steal')}`);
    await verifyOnPage(page, phone);
    await page.waitForURL((u) => u.pathname !== '/_otp/verify', { waitUntil: 'commit' });
    const landed = new URL(page.url());
    assert.equal(landed.origin, site.url);
    assert.equal(landed.pathname, '/');
    await context.close();
  });
});
