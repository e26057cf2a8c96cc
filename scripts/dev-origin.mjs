#!/usr/bin/env node
// A tiny stand-in for the site behind the edge middleware in `make dev`: an HTTP server on
// 127.0.0.1:$ORIGIN_PORT (default 8788) that shows what the middleware let through. Needs only
// Node. Routes:
//   /members, /members/*   "Members only" and the X-Verified-Phone it received (HTML-escaped)
//   /members/api/me        {"phone": <X-Verified-Phone or null>} as JSON
//   anything else          404
import http from 'node:http';

const port = Number(process.env.ORIGIN_PORT ?? 8788);

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const server = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://origin.invalid').pathname;
  const phone = req.headers['x-verified-phone'] ?? null;
  if (path === '/members/api/me') {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ phone }));
    return;
  }
  if (path === '/members' || path.startsWith('/members/')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Members only</title></head>
<body><main><h1>Members only</h1>
<p>The edge middleware let you in. The site received <code>X-Verified-Phone: <span id="phone">${escape(phone ?? '(none)')}</span></code>.</p>
<p><a href="/members/api/me">/members/api/me</a> · <a href="/members/billing">/members/billing</a> (asks again after 5 minutes) · <a href="/">demo</a></p>
</main></body></html>`);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`not found on the dev origin: ${path}\n`);
});

server.listen(port, '127.0.0.1', () => {
  console.error(`[dev-origin] the demo site's origin listens on http://127.0.0.1:${port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
