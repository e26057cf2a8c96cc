// Self-test of tests/support/wait.mjs and fake-server.mjs: waitFor returns the first truthy
// value and names what it waited for on timeout; assertNothingFor fails as soon as something
// arrives, passes a quiet watch only after its full time, and counts from `since`; the shared
// fake server records raw bodies, delays, filters and times out with its name.
// Run: node --test tests/support/selftest/
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, assertNothingFor, letTimePass } from '../wait.mjs';
import { startFakeServer } from '../fake-server.mjs';

describe('waitFor', () => {
  test('returns the first truthy value, sync or async', async () => {
    let n = 0;
    assert.equal(await waitFor(() => (++n >= 3 ? `at ${n}` : 0), { interval: 1 }), 'at 3');
    assert.deepEqual(await waitFor(async () => [1]), [1]);
  });

  test('times out with what it waited for (a function is called then)', async () => {
    const started = Date.now();
    let seen = 0;
    await assert.rejects(
      waitFor(() => { seen++; return false; }, { timeout: 60, interval: 10, what: () => `seen ${seen > 1 ? 'several' : 'one'}` }),
      /^Error: waited 60 ms for seen several$/,
    );
    assert.ok(Date.now() - started >= 60);
    await assert.rejects(waitFor(() => null, { timeout: 0, what: 'a thing' }), /waited 0 ms for a thing/);
  });

  test('an error in the predicate is not swallowed', async () => {
    await assert.rejects(waitFor(() => { throw new Error('boom'); }), /boom/);
  });
});

describe('assertNothingFor', () => {
  test('passes a quiet watch only after its full time, checking at the end too', async () => {
    const started = Date.now();
    let checks = 0;
    await assertNothingFor(80, () => { checks++; return []; }, 'quiet');
    assert.ok(Date.now() - started >= 80);
    assert.ok(checks >= 2);
  });

  test('fails as soon as something arrives, saying what and why', async () => {
    const arrived = [];
    setTimeout(() => arrived.push({ to: '2012' }), 30);
    const started = Date.now();
    await assert.rejects(
      assertNothingFor(2000, () => arrived, 'nothing is sent to 2012'),
      (err) => err instanceof assert.AssertionError && /^nothing is sent to 2012: got \[\{"to":"2012"\}\] within \d+ ms \(watched for 2000 ms\)$/.test(err.message),
    );
    assert.ok(Date.now() - started < 1000, 'failed early');
  });

  test('something that arrives at the last moment still fails it', async () => {
    let count = 0;
    setTimeout(() => (count = 1), 45);
    await assert.rejects(assertNothingFor(50, () => count, 'late', { interval: 1000 }), /late: got 1/);
  });

  test('counts, booleans and empty values', async () => {
    await assertNothingFor(0, () => 0, 'zero');
    await assertNothingFor(0, () => false, 'false');
    await assertNothingFor(0, async () => null, 'null');
    await assert.rejects(assertNothingFor(0, () => true, 'true'), /true: got true/);
  });

  test('`since` starts the watch earlier', async () => {
    const started = Date.now();
    await assertNothingFor(1000, () => [], 'quiet', { since: started - 950 });
    assert.ok(Date.now() - started < 500);
  });
});

test('letTimePass waits and insists on a reason', async () => {
  const started = Date.now();
  await letTimePass(20, 'a 20 ms limit');
  assert.ok(Date.now() - started >= 19);
  await assert.rejects(letTimePass(1), /say which time limit/);
});

describe('the shared fake server', () => {
  test('records method, path, query, headers and the raw body, then hands them on', async () => {
    const server = await startFakeServer({
      name: 'fake X',
      handle(req, res, entry) {
        entry.seen = true;
        res.writeHead(201, { 'content-type': 'text/plain' });
        res.end(`${entry.method} ${entry.path}${entry.query} ${entry.rawBody}`);
      },
    });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${server.url}/a/b?c=1`, { method: 'POST', headers: { 'x-k': 'v' }, body: 'é=1&x' });
      assert.equal(res.status, 201);
      assert.equal(await res.text(), 'POST /a/b?c=1 é=1&x');
      const [q] = server.requests;
      assert.deepEqual([q.method, q.path, q.query, q.headers['x-k'], q.rawBody, q.seen], ['POST', '/a/b', '?c=1', 'v', 'é=1&x', true]);
      assert.ok(q.receivedAt instanceof Date);
      server.reset();
      assert.equal(server.requests.length, 0);
    } finally {
      await server.close();
    }
  });

  test('waitForRequests filters, resolves on arrival and times out with the name', async () => {
    const server = await startFakeServer({ name: 'fake X', handle: (req, res) => res.end() });
    try {
      const waiting = server.waitForRequests(2, (q) => q.path === '/yes', 2000);
      await fetch(`${server.url}/yes`);
      await fetch(`${server.url}/no`);
      setTimeout(() => fetch(`${server.url}/yes`), 20);
      assert.deepEqual((await waiting).map((q) => q.path), ['/yes', '/yes']);
      await assert.rejects(server.waitForRequests(3, (q) => q.path === '/yes', 40), /^Error: fake X: waited 40 ms for 3 request\(s\), have 2$/);
      assert.equal((await server.waitForRequests(3)).length, 3, 'no filter: every request');
    } finally {
      await server.close();
    }
  });

  test('setDelay holds each request back before it is recorded and handled', async () => {
    const server = await startFakeServer({ name: 'fake X', handle: (req, res) => res.end('ok') });
    try {
      server.setDelay(80);
      const started = Date.now();
      const pending = fetch(server.url);
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(server.requests.length, 0, 'not yet recorded');
      await (await pending).text();
      assert.ok(Date.now() - started >= 80);
      server.setDelay(0);
    } finally {
      await server.close();
    }
  });
});
