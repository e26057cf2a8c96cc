#!/usr/bin/env node
// "Another site" for `make dev` and the browser tests: a page on its own origin that embeds the
// widget exactly as README.md says, from the service's origin, under a strict
// Content-Security-Policy (scripts from itself and the service, 'wasm-unsafe-eval', no
// 'unsafe-inline' for scripts or styles; connections to the service only). It shows what a
// site's page gets: the `verified` event's token and phone, any `error` event, and any CSP
// violation. Needs only Node and a built widget (www/widget/v<version>/sri.json).
//
//   node scripts/another-site.mjs     # 127.0.0.1:$SITE_PORT (default 8789)
//
// Environment: SITE_PORT; SERVICE_URL, the service's base as the widget's `endpoint` (default
// http://127.0.0.1:8787/_otp: `make dev` runs the edge middleware, which serves the service
// under /_otp); PUBLISHABLE_KEY (default the dev demo instance's, whose allowed_origins list
// this origin). Routes: `/` the page, `/site.js` and `/site.css` its own files, `/favicon.ico`
// (empty), else 404.
// Tests import `startAnotherSite` and run it on a free port.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEMO_PK = 'pk_test_edgeotpdemo0000000001';

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The widget build's version and its module's integrity (read at each request: rebuilds show). */
function currentWidget(root) {
  const crate = readFileSync(path.join(root, 'crates/otp-widget/Cargo.toml'), 'utf8');
  const version = /^version = "(.*)"/m.exec(crate)[1];
  const sri = JSON.parse(readFileSync(path.join(root, `www/widget/v${version}/sri.json`), 'utf8'));
  return { version, integrity: sri.files['edge-otp.js'] };
}

/** The page's Content-Security-Policy for a widget served from `service` (an origin). */
export function sitePolicy(service) {
  return [
    "default-src 'none'",
    `script-src 'self' ${service} 'wasm-unsafe-eval'`,
    `connect-src ${service}`,
    "style-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function page({ base, key, version, integrity }) {
  // Exactly the README's snippet: the versioned module with its integrity, then the elements.
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Another site</title>
<link rel="stylesheet" href="/site.css">
<script type="module" src="${escape(base)}/widget/v${escape(version)}/edge-otp.js"
  integrity="${escape(integrity)}" crossorigin="anonymous"></script>
<script type="module" src="/site.js"></script>
</head>
<body>
<main>
<h1>Another site</h1>
<p>A page on its own origin that embeds the widget from <code>${escape(base)}</code>, under a strict
Content-Security-Policy.</p>
<section>
<h2>Code</h2>
<edge-otp id="code" endpoint="${escape(base)}" publishable-key="${escape(key)}" mode="code"></edge-otp>
</section>
<section>
<h2>WhatsApp</h2>
<edge-otp id="link" endpoint="${escape(base)}" publishable-key="${escape(key)}" mode="link"></edge-otp>
</section>
<section aria-live="polite">
<h2>What the page received</h2>
<dl id="result"><dt>verified</dt><dd id="verified">(nothing yet)</dd><dt>phone</dt><dd id="phone"></dd>
<dt>token</dt><dd><code id="token"></code></dd><dt>errors</dt><dd id="errors"></dd>
<dt>CSP violations</dt><dd id="violations"></dd></dl>
</section>
</main>
</body>
</html>
`;
}

// The page's own script: it listens the way a site would, and reports CSP violations.
const SITE_JS = `const $ = (id) => document.getElementById(id);
document.addEventListener('securitypolicyviolation', (e) => {
  $('violations').textContent += \`\${e.effectiveDirective} \${e.blockedURI}; \`;
});
for (const el of document.querySelectorAll('edge-otp')) {
  el.addEventListener('verified', (e) => {
    $('verified').textContent = el.id;
    $('phone').textContent = e.detail.phone;
    $('token').textContent = e.detail.token;
  });
  el.addEventListener('error', (e) => {
    $('errors').textContent += \`\${el.id}: \${e.detail.code}; \`;
  });
}
`;

const SITE_CSS = `body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1c2330;background:#fbf7ef}
h1{font-size:1.5rem}section{margin:1.5rem 0}dd{margin:0 0 .5rem;word-break:break-all}
edge-otp{--edge-otp-accent:#7a3b0b}
`;

/**
 * Serves the page on 127.0.0.1:`port` (0: a free one) for the service at `service` (the
 * widget's `endpoint`: an origin, or an origin and a prefix such as /_otp). Resolves to the
 * server; its origin is `http://127.0.0.1:${server.address().port}`, and
 * `server.setService(url)` points the page at another service (a test learns the service's
 * URL after the site's origin).
 */
export function startAnotherSite({ port = 0, service = 'http://127.0.0.1:8787', publishableKey = DEMO_PK, root = ROOT } = {}) {
  let base;
  let policy;
  const setService = (url) => {
    base = url.replace(/\/$/, '');
    policy = sitePolicy(new URL(base).origin);
  };
  setService(service);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://site.invalid');
    const send = (status, type, body, extra = {}) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...extra });
      res.end(body);
    };
    if (url.pathname === '/') {
      let widget;
      try {
        widget = currentWidget(root);
      } catch (e) {
        send(503, 'text/plain; charset=utf-8', `the widget is not built (bash scripts/build-widget.sh): ${e.message}\n`);
        return;
      }
      send(200, 'text/html; charset=utf-8', page({ base, key: publishableKey, ...widget }), {
        'content-security-policy': policy,
      });
    } else if (url.pathname === '/site.js') {
      send(200, 'text/javascript; charset=utf-8', SITE_JS);
    } else if (url.pathname === '/site.css') {
      send(200, 'text/css; charset=utf-8', SITE_CSS);
    } else if (url.pathname === '/favicon.ico') {
      send(204, 'image/x-icon', '');
    } else {
      send(404, 'text/plain; charset=utf-8', `not found on the other site: ${url.pathname}\n`);
    }
  });
  server.setService = setService;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.SITE_PORT ?? 8789);
  const service = process.env.SERVICE_URL ?? 'http://127.0.0.1:8787/_otp';
  const server = await startAnotherSite({ port, service, publishableKey: process.env.PUBLISHABLE_KEY ?? DEMO_PK });
  console.error(`[another-site] a page embedding the widget from ${service} on http://127.0.0.1:${port}`);
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
}
