// The two builds: the deploy (release) build has no /dev routes at all, serves a short landing
// page at `/` instead of the demo page, and wrangler accepts its configuration offline
// (`wrangler deploy --dry-run`); the dev build's dev routes answer only on loopback hosts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, startWorker } from '../support/worker.mjs';
import { deployConfig } from '../support/deploy-config.mjs';

/** GET with an explicit Host header (fetch() may not override Host). */
function getWithHost(url, host) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { Host: host } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
  });
}

test('the release build has no /dev routes', async () => {
  const w = await startWorker({ flavour: 'release' });
  try {
    for (const p of ['/dev/info', '/dev/outbox?to=20123456789', '/_otp/dev/info']) {
      const res = await w.fetch(p);
      assert.equal(res.status, 404, p);
      assert.doesNotMatch(await res.text(), /api_token|"to"/);
    }
    const clock = await w.fetch('/dev/clock', { method: 'POST', body: '{"advance_seconds":60}' });
    assert.equal(clock.status, 404, 'POST /dev/clock');
    // The same binary serves the API.
    const res = await w.hs('validate-code', { chatId: '20123456789', code: '123456' });
    assert.equal(res.status, 404);
    assert.equal(res.body.message, 'No active OTP code found for this chat.');
  } finally {
    await w.stop();
  }
});

test('the dev build serves /dev/info on loopback only', async () => {
  const w = await startWorker();
  try {
    const info = await (await w.fetch('/dev/info')).json();
    assert.equal(info.api_token, w.secrets.tokens[info.instance]);
    const local = await getWithHost(`${w.url}/dev/info`, new URL(w.url).host);
    assert.equal(local.status, 200, 'the same request with a loopback Host is served');
    const res = await getWithHost(`${w.url}/dev/info`, 'otp.example.com');
    assert.equal(res.status, 403);
    assert.doesNotMatch(res.body, /api_token/);
  } finally {
    await w.stop();
  }
});

test('the release Wasm holds none of the dev routes\' code, which the dev Wasm does', () => {
  // Names only the `dev` feature compiles in: /dev/info's token field, the dev clock.
  const devOnly = ['DEV_API_TOKEN', 'DEV_CLOCK', 'advance_seconds'];
  const release = fs.readFileSync(path.join(ROOT, 'build/release/index_bg.wasm'));
  const dev = fs.readFileSync(path.join(ROOT, 'build/dev/index_bg.wasm'));
  for (const name of devOnly) {
    assert.ok(dev.includes(name), `the dev build has ${name} (else this check proves nothing)`);
    assert.ok(!release.includes(name), `the release build has no ${name}`);
  }
});

test('the release build serves a short landing page at /, not the demo page; the widget stays', async () => {
  const w = await startWorker({ flavour: 'release' });
  try {
    const res = await w.fetch('/');
    assert.equal(res.status, 200);
    const page = await res.text();
    assert.match(page, /<title>edge-otp<\/title>/);
    assert.doesNotMatch(page, /demo\.js|needs the dev build|simulated phone/);
    for (const p of ['/demo.js', '/demo.css', '/widgets.js', '/landing.html']) {
      assert.equal((await w.fetch(p)).status, 404, `${p} is not deployed`);
    }
    const widget = await w.fetch('/widget/edge-otp.js');
    assert.equal(widget.status, 200);
    assert.match(widget.headers.get('content-type'), /javascript/);
  } finally {
    await w.stop();
  }
});

test('the dev build serves the demo page at /', async () => {
  const w = await startWorker();
  try {
    const page = await (await w.fetch('/')).text();
    assert.match(page, /<title>edge-otp demo<\/title>/);
    assert.match(page, /demo\.js/);
  } finally {
    await w.stop();
  }
});

test('wrangler accepts the deploy configuration offline: deploy --dry-run of the release build', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-otp-dry-run-'));
  // wrangler.toml as it is (its [secrets], no KV id) minus [build]: the release build is made.
  const config = deployConfig(dir);
  const outdir = path.join(dir, 'out');
  const { stdout, stderr } = await promisify(execFile)(
    path.join(ROOT, 'node_modules/.bin/wrangler'),
    ['deploy', '--dry-run', '--outdir', outdir, '--config', config, '--env='],
    { env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_HIDE_BANNER: 'true' } },
  );
  const out = stdout + stderr;
  assert.match(out, /--dry-run: exiting now/);
  assert.match(out, new RegExp(`Read \\d+ files from the assets directory ${path.join(ROOT, 'build/release-assets')}`));
  for (const binding of ['env.CHALLENGES', 'env.RECIPIENTS (RecipientObject)', 'env.WHATOTP_RL', 'env.ASSETS']) {
    assert.ok(out.includes(binding), `${binding} is bound`);
  }
  const files = fs.readdirSync(outdir);
  assert.ok(files.includes('index.js'), files.join(' '));
  const wasm = files.filter((f) => f.endsWith('.wasm'));
  assert.equal(wasm.length, 1, files.join(' '));
  assert.deepEqual(fs.readFileSync(path.join(outdir, wasm[0])), fs.readFileSync(path.join(ROOT, 'build/release/index_bg.wasm')),
    'the bundle carries the release Wasm');
});
