// Fake site webhook endpoint for the product's signed callbacks (Standard Webhooks).
//
// Listens on 127.0.0.1 (random port), accepts POST on any path and records every request,
// whatever its method: `{method, path, headers, rawBody, json, receivedAt, verified,
// verifyError}`. Each body is verified with the `standardwebhooks` package exactly as a site
// would (`new Webhook(secret).verify(rawBody, headers)`: `webhook-id`, `webhook-timestamp`
// within 5 minutes, `webhook-signature` `v1,<base64 HMAC-SHA256(id.timestamp.body)>`); the
// result is recorded, never thrown. Answers 204, or what the knobs say: `failNext` (an error
// status) and `redirectNext` (302 with Location). Non-POST requests get 405.
import http from 'node:http';
import { EventEmitter } from 'node:events';
import { Webhook } from 'standardwebhooks';

/**
 * @param {{secret: string}} options `secret` as given to the product (`whsec_<base64>` or
 *   bare base64).
 */
export async function startCallbackReceiver({ secret } = {}) {
  if (!secret) throw new Error('startCallbackReceiver needs a secret');
  const webhook = new Webhook(secret);
  const events = new EventEmitter();
  const requests = [];
  let plan = []; // queued answers: { status, location? }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url, 'http://127.0.0.1');
      let json = null;
      try {
        json = rawBody === '' ? null : JSON.parse(rawBody);
      } catch { /* recorded as null */ }
      let verified = false;
      let verifyError = null;
      try {
        webhook.verify(rawBody, flatHeaders(req.headers));
        verified = true;
      } catch (err) {
        verifyError = err?.message ?? String(err);
      }
      requests.push({
        method: req.method, path: url.pathname + url.search, headers: req.headers,
        rawBody, json, receivedAt: new Date(), verified, verifyError,
      });
      events.emit('change');

      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST' });
        return res.end();
      }
      const next = plan.shift();
      if (next?.location) {
        res.writeHead(next.status, { location: next.location });
        return res.end();
      }
      if (next) {
        res.writeHead(next.status, { 'content-type': 'text/plain' });
        return res.end(`receiver: failing on purpose with ${next.status}`);
      }
      res.writeHead(204);
      res.end();
    });
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();

  return {
    url: `http://127.0.0.1:${port}`,
    secret,
    requests,
    /** Answer the next `n` requests with `status`. */
    failNext(n = 1, status = 500) {
      for (let i = 0; i < n; i++) plan.push({ status });
    },
    /** Answer the next `n` requests with a 302 to `location`. */
    redirectNext(n = 1, location) {
      for (let i = 0; i < n; i++) plan.push({ status: 302, location });
    },
    reset() {
      requests.length = 0;
      plan = [];
    },
    /** Resolves with all recorded requests once at least `n` have arrived. */
    waitFor(n = 1, timeoutMs = 10000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (requests.length >= n) {
            cleanup();
            resolve(requests.slice());
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`callback receiver: waited ${timeoutMs} ms for ${n} request(s), have ${requests.length}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          events.off('change', check);
        };
        events.on('change', check);
        check();
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
    },
  };
}

/** node gives repeated headers as arrays (set-cookie) — the webhook headers are single. */
function flatHeaders(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}
