// The two builds: the deploy (release) build has no /dev routes at all; the dev build's dev
// routes answer only on loopback hosts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startWorker } from '../support/worker.mjs';

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
    for (const p of ['/dev/info', '/dev/outbox?to=20123456789']) {
      const res = await w.fetch(p);
      assert.equal(res.status, 404, p);
      assert.doesNotMatch(await res.text(), /api_token|"to"/);
    }
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
