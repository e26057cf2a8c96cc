// Fake Cloudflare Turnstile siteverify for end-to-end tests, on 127.0.0.1.
//
// Checks what Cloudflare's `POST /turnstile/v0/siteverify` checks and answers in its shape
// `{success, "error-codes": [...], challenge_ts, hostname, action, cdata}`:
//   - the body is form-encoded (`application/x-www-form-urlencoded`) or JSON;
//   - `secret` is present (`missing-input-secret`) and the site's secret (`invalid-input-secret`);
//   - `response` is present (`missing-input-response`), a token this fake issued
//     (`invalid-input-response`), and not used before (`timeout-or-duplicate`: tokens are
//     single use, and live 300 s);
//   - `remoteip`, when sent, is recorded.
// `issue()` hands out a token, as the Turnstile widget would in the page. Every siteverify call
// it could read is recorded in `requests` (the server under it, fake-server.mjs, sees all).
import { randomBytes } from 'node:crypto';
import { startFakeServer } from './fake-server.mjs';

const TOKEN_TTL_MS = 300_000;

export async function startFakeTurnstile({ secret }) {
  const issued = new Map();
  const requests = [];
  const server = await startFakeServer({
    name: 'fake Turnstile',
    handle(req, res, entry) {
      const raw = entry.rawBody;
      const answer = (status, body) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || entry.path + entry.query !== '/turnstile/v0/siteverify') return answer(405, { success: false, 'error-codes': ['bad-request'] });
      const type = req.headers['content-type'] ?? '';
      let fields;
      if (type.startsWith('application/x-www-form-urlencoded')) fields = Object.fromEntries(new URLSearchParams(raw));
      else if (type.startsWith('application/json')) {
        try {
          fields = JSON.parse(raw);
        } catch {
          return answer(400, { success: false, 'error-codes': ['bad-request'] });
        }
      } else return answer(400, { success: false, 'error-codes': ['bad-request'] });
      requests.push({ contentType: type, fields });
      const errors = [];
      if (!fields.secret) errors.push('missing-input-secret');
      else if (fields.secret !== secret) errors.push('invalid-input-secret');
      if (!fields.response) errors.push('missing-input-response');
      else {
        const at = issued.get(fields.response);
        if (at === undefined) errors.push('invalid-input-response');
        else if (at === null || Date.now() - at > TOKEN_TTL_MS) errors.push('timeout-or-duplicate');
      }
      if (errors.length) return answer(200, { success: false, 'error-codes': errors, messages: [] });
      issued.set(fields.response, null);
      answer(200, {
        success: true,
        'error-codes': [],
        challenge_ts: new Date().toISOString(),
        hostname: 'shop.example',
        action: '',
        cdata: '',
        metadata: { interactive: false },
      });
    },
  });
  return {
    url: `${server.url}/turnstile/v0/siteverify`,
    /** The siteverify calls it could read, `{contentType, fields}`, oldest first. */
    requests,
    /** A fresh token, as the Turnstile widget hands the page. */
    issue() {
      const token = `0.${randomBytes(48).toString('base64url')}`;
      issued.set(token, Date.now());
      return token;
    },
    close: server.close,
  };
}
