// The loopback HTTP server under every fake (Meta, Twilio, the site's callback receiver,
// Turnstile): listens on 127.0.0.1 (a random port), reads each request's raw body, records it
// in `requests`, then hands it to the fake's handler; and waits until what a test expects has
// arrived. A fake adds only what its provider checks and answers.
// Kept out of tests/e2e so `node --test` does not run it.
import http from 'node:http';
import { waitFor } from './wait.mjs';

/**
 * Starts a server. `handle(req, res, entry)` answers; `entry` is the recorded request,
 * `{method, path, query, headers, rawBody, receivedAt}` (`path` without the query string,
 * `query` the `?…` part or ''), already in `requests`; a fake may add fields to it.
 * `name` prefixes the timeout errors ("fake Meta: waited 50 ms for …").
 */
export async function startFakeServer({ name, handle }) {
  const requests = [];
  let delayMs = 0;

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const run = () => {
        const url = new URL(req.url, 'http://127.0.0.1');
        const entry = {
          method: req.method, path: url.pathname, query: url.search, headers: req.headers, rawBody, receivedAt: new Date(),
        };
        requests.push(entry);
        handle(req, res, entry);
      };
      if (delayMs > 0) setTimeout(run, delayMs); else run();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();

  /** `waitFor` with this server's name on its timeout error, polling often (the lists are in memory). */
  async function waitUntil(check, timeoutMs, what) {
    try {
      return await waitFor(check, { timeout: timeoutMs, interval: 5, what });
    } catch (err) {
      err.message = `${name}: ${err.message}`;
      throw err;
    }
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    waitUntil,
    /** Handle (and record) every request `ms` later, for timeout tests; 0 turns it off. */
    setDelay(ms) {
      delayMs = ms;
    },
    /** Resolves with the recorded requests passing `filter` once at least `n` of them arrived. */
    waitForRequests(n = 1, filter = () => true, timeoutMs = 5000) {
      const match = () => requests.filter(filter);
      return waitUntil(() => (match().length >= n ? match() : null), timeoutMs,
        () => `${n} request(s), have ${match().length}`);
    },
    /** Forgets the recorded requests and the delay. */
    reset() {
      requests.length = 0;
      delayMs = 0;
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
    },
  };
}
