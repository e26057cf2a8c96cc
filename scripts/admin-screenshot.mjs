// Makes docs/admin.png: starts the dev Worker (build/dev) with its clock under the script's
// control, sends codes over twelve "hours" to numbers in five countries through an instance whose
// own sender (a server on 127.0.0.1) refuses about one message in eight, which then falls back to
// the outbox with a fresh code (the first one, entered anyway, counts as wrong); enters most codes
// (some wrong first), then opens the operator page in Debian's Chromium and saves its picture. Needs `bash scripts/build.sh dev` and chromium. Usage: node scripts/admin-screenshot.mjs [out.png]
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { startWorker } from '../tests/support/worker.mjs';

const out = process.argv[2] ?? 'docs/admin.png';
const SHOP = '88888888-8888-4888-8888-888888888888';
const ADMIN = `adm_${randomBytes(16).toString('hex')}`;
const COUNTRIES = ['20', '44', '1415', '49', '234'];

// The shop's own sender: refuses about one message in eight for good (400), accepts the rest.
const sender = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(Math.random() < 0.12 ? 400 : 202).end());
});
await new Promise((r) => sender.listen(0, '127.0.0.1', r));

const w = await startWorker({
  adminToken: ADMIN,
  vars: { DEV_CLOCK: 'manual' },
  extraInstances: [{
    id: SHOP,
    name: 'Shop',
    channel: 'webhook',
    fallback: ['outbox'],
    webhook: { url: `http://127.0.0.1:${sender.address().port}/send` },
  }],
  credentials: { [SHOP]: { sender_secret: `whsec_${randomBytes(32).toString('base64')}` } },
});

const LENGTH = { 20: 12, 44: 12, 1415: 11, 49: 12, 234: 13 };
const number = (cc) => `${cc}${String(Math.floor(Math.random() * 1e12)).padStart(12, '0')}`.slice(0, LENGTH[cc]);
const other = (code) => String((Number(code) + 1) % 10 ** code.length).padStart(code.length, '0');
try {
  for (let hour = 0; hour < 12; hour++) {
    const load = 4 + Math.round(6 * Math.sin((hour / 11) * Math.PI)) + Math.floor(Math.random() * 3);
    const sent = [];
    for (let i = 0; i < load; i++) {
      const to = number(COUNTRIES[Math.floor(Math.random() * (i % 3 === 0 ? COUNTRIES.length : 2))]);
      const rc = await w.hs('request-code', { chatId: to }, { instance: SHOP });
      if (rc.status === 200) sent.push([to, rc.body.data.code]);
    }
    const wait = 15 + Math.floor(Math.random() * 60);
    await w.advanceClock(wait);
    for (const [to, code] of sent) {
      const roll = Math.random();
      if (roll < 0.1) await w.hs('validate-code', { chatId: to, code: other(code) }, { instance: SHOP });
      if (roll < 0.8) await w.hs('validate-code', { chatId: to, code }, { instance: SHOP });
    }
    await w.advanceClock(3600 - wait);
  }
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'], headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(`${w.url}/_otp/admin`);
    await page.fill('input[name=token]', ADMIN);
    await page.click('button[type=submit]');
    await page.waitForSelector('body[data-ready=true]');
    await page.selectOption('#instance', SHOP);
    await page.selectOption('#span', '24');
    await page.screenshot({ path: out, fullPage: true });
    console.log(`wrote ${out}`);
  } finally {
    await browser.close();
  }
} finally {
  await w.stop();
  sender.close();
}
