// Fake site webhook endpoint for the product's signed callbacks (Standard Webhooks).
//
// Listens on 127.0.0.1 (random port, through fake-server.mjs), accepts POST on any path and records every request,
// whatever its method: `{method, path, headers, rawBody, json, receivedAt, verified,
// verifyError}`. Each body is verified with the `standardwebhooks` package exactly as a site
// would (`new Webhook(secret).verify(rawBody, headers)`: `webhook-id`, `webhook-timestamp`
// within 5 minutes, `webhook-signature` `v1,<base64 HMAC-SHA256(id.timestamp.body)>`); the
// result is recorded, never thrown. Answers 204, or what the knobs say: `failNext` (an error
// status) and `redirectNext` (302 with Location). Non-POST requests get 405.
import { Webhook } from 'standardwebhooks';
import { startFakeServer } from './fake-server.mjs';

/**
 * @param {{secret: string}} options `secret` as given to the product (`whsec_<base64>` or
 *   bare base64).
 */
export async function startCallbackReceiver({ secret } = {}) {
  if (!secret) throw new Error('startCallbackReceiver needs a secret');
  const webhook = new Webhook(secret);
  let plan = []; // queued answers: { status, location? }

  const server = await startFakeServer({
    name: 'callback receiver',
    handle(req, res, entry) {
      let json = null;
      try {
        json = entry.rawBody === '' ? null : JSON.parse(entry.rawBody);
      } catch { /* recorded as null */ }
      let verified = false;
      let verifyError = null;
      try {
        webhook.verify(entry.rawBody, flatHeaders(entry.headers));
        verified = true;
      } catch (err) {
        verifyError = err?.message ?? String(err);
      }
      // A site's log shows the path with its query string.
      Object.assign(entry, { path: entry.path + entry.query, json, verified, verifyError });

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
    },
  });

  return {
    url: server.url,
    secret,
    requests: server.requests,
    /** Answer the next `n` requests with `status`. */
    failNext(n = 1, status = 500) {
      for (let i = 0; i < n; i++) plan.push({ status });
    },
    /** Answer the next `n` requests with a 302 to `location`. */
    redirectNext(n = 1, location) {
      for (let i = 0; i < n; i++) plan.push({ status: 302, location });
    },
    reset() {
      server.reset();
      plan = [];
    },
    /** Resolves with all recorded requests once at least `n` have arrived. */
    waitFor(n = 1, timeoutMs = 10000) {
      return server.waitForRequests(n, undefined, timeoutMs);
    },
    close: server.close,
  };
}

/** node gives repeated headers as arrays (set-cookie) — the webhook headers are single. */
function flatHeaders(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}
