// The demo page: both verification flows of the local Worker, end to end, with a simulated
// phone. A. request a code, read it on the phone, validate it. B. "Log in with WhatsApp":
// generate a link, send its prefilled message from the phone through the real inbound webhook
// (signed exactly as Meta's WhatsApp Cloud API signs it), tap the login link the business
// replies with, confirm, and come back here with a verification token in the URL fragment.
// Everything goes through the real HTTP API; the dev-only GET /dev/info hands the page the demo
// instance's token and secrets, and GET /dev/outbox shows what a phone would have received.
const $ = (id) => document.getElementById(id);
const STORE = 'edge-otp-demo';
let info;
// Where the service is mounted: '/_otp' while the edge middleware fronts the demo site (`make dev`
// turns it on; docs/middleware.md), '' when the Worker serves the API at the root.
let base = '';
let digits = ''; // the simulated phone's number, digits only
let rendered = []; // keys of the chat bubbles on screen, in order
let outbox = []; // last GET /dev/outbox answer for `digits`
let synced = false; // whether `outbox` holds a first answer for `digits`

// ---- small helpers ---------------------------------------------------------------------------

const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};
const toDigits = (s) => s.replace(/\D/g, '');
const load = (key, fallback) => {
  try {
    return JSON.parse(localStorage.getItem(`${STORE}.${key}`)) ?? fallback;
  } catch {
    return fallback;
  }
};
const save = (key, value) => localStorage.setItem(`${STORE}.${key}`, JSON.stringify(value));
const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function log(what, request, status, response) {
  const title = el('div', { className: `status${status >= 400 || status === 0 ? ' bad' : ''}`, textContent: `${what} → ${status || 'network error'}` });
  const body = typeof response === 'string' ? response : JSON.stringify(response, null, 2);
  $('log').prepend(el('div', {}, title, el('pre', { textContent: (request ? `${request}\n` : '') + body })));
}

async function call(method, path, body) {
  let res;
  try {
    res = await fetch(base + path, {
      method,
      headers: { Authorization: `Bearer ${info.api_token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: body && JSON.stringify(body),
    });
  } catch (e) {
    log(`${method} ${path}`, body && JSON.stringify(body), 0, String(e));
    return { status: 0, json: null };
  }
  const json = await res.json().catch(() => null);
  log(`${method} ${path}`, body && JSON.stringify(body), res.status, json);
  return { status: res.status, json };
}

// ---- the simulated phone -------------------------------------------------------------------

/** Text with its http(s) URLs as links: DOM nodes only, message text never becomes HTML. */
function linkify(text) {
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(/https?:\/\/[^\s<>"']+/g)) {
    let url = m[0].replace(/[.,;:!?)]+$/, '');
    nodes.push(text.slice(last, m.index));
    let href;
    try {
      href = new URL(url);
    } catch {
      href = null;
    }
    nodes.push(href && /^https?:$/.test(href.protocol) ? el('a', { href: href.href, textContent: url }) : url);
    last = m.index + url.length;
  }
  nodes.push(text.slice(last));
  return nodes.filter((n) => n !== '');
}

/** Sent messages live only in this browser (the Worker keeps no copy of inbound texts). */
const sentKey = () => `sent.${digits}`;
const sentMessages = () => load(sentKey(), []);

/** The conversation, oldest first: outbox replies and this phone's own messages. */
function conversation() {
  const second = (iso) => Math.floor(Date.parse(iso) / 1000);
  const counts = new Map();
  const keyed = (m) => {
    const base = `${m.dir}|${m.created_at}|${m.text}`;
    const n = (counts.get(base) ?? 0) + 1;
    counts.set(base, n);
    return { ...m, key: `${base}|${n}` };
  };
  const arrivals = load(`arrived.${digits}`, {});
  const now = Date.now();
  const incoming = [...outbox].reverse().map((m, i) => {
    const msg = keyed({ dir: 'in', text: m.text, created_at: m.created_at, i });
    // The outbox keeps whole seconds, so a message is placed when this phone first saw it;
    // on the first sync, at the end of its second (after the phone's own messages of it).
    msg.at = arrivals[msg.key] ?? (synced ? now : Math.min(now, (second(m.created_at) + 1) * 1000 - 1));
    return msg;
  });
  if (incoming.some((m) => !(m.key in arrivals))) save(`arrived.${digits}`, { ...arrivals, ...Object.fromEntries(incoming.map((m) => [m.key, m.at])) });
  const outgoing = sentMessages().map((m, i) => keyed({ ...m, dir: 'out', i, at: Date.parse(m.created_at) }));
  return [...incoming, ...outgoing].sort((a, b) => a.at - b.at || (a.dir === b.dir ? a.i - b.i : a.dir === 'out' ? -1 : 1));
}

function metaText(m) {
  const state = m.dir === 'out' ? ({ sending: ' · sending…', delivered: ' · ✓ webhook 200', failed: ` · ✗ ${m.error ?? 'failed'}` }[m.state] ?? '') : '';
  return `${time(m.created_at)}${state}`;
}

function update(li, m) {
  li.className = `msg ${m.dir}${m.state === 'failed' ? ' failed' : ''}`;
  li.lastChild.textContent = metaText(m);
}

function bubble(m) {
  const who = el('span', { className: 'visually-hidden', textContent: m.dir === 'in' ? 'Received: ' : 'Sent: ' });
  const li = el('li', {}, who, el('span', { className: 'text' }, ...linkify(m.text)), el('small', { className: 'meta' }));
  update(li, m);
  return li;
}

/** Appends new bubbles and updates sent ones in place, so a screen reader hears only news. */
function renderChat() {
  const list = $('chat');
  const msgs = conversation();
  const keys = msgs.map((m) => m.key);
  const prefix = rendered.length <= keys.length && rendered.every((k, i) => k === keys[i]);
  if (prefix) {
    msgs.slice(0, rendered.length).forEach((m, i) => update(list.children[i], m));
    list.append(...msgs.slice(rendered.length).map(bubble));
  } else {
    list.replaceChildren(...msgs.map(bubble));
  }
  if (!prefix || keys.length > rendered.length) $('chat-scroll').scrollTop = $('chat-scroll').scrollHeight;
  rendered = keys;
  $('chat-empty').hidden = msgs.length > 0;
}

async function pollOutbox() {
  if (digits.length >= 6) {
    const asked = digits;
    try {
      const res = await fetch(`${base}/dev/outbox?to=${encodeURIComponent(asked)}`);
      if (res.ok && asked === digits) {
        const msgs = await res.json();
        if (JSON.stringify(msgs) !== JSON.stringify(outbox) || !synced) {
          outbox = msgs;
          renderChat();
          synced = true;
        }
      }
    } catch {
      // The Worker restarted or stopped: try again on the next tick.
    }
  }
  setTimeout(pollOutbox, 700);
}

function setPhone(value) {
  const next = toDigits(value);
  save('phone', value);
  $('me').textContent = next ? `+${next}` : '(type a number)';
  if (next === digits) return;
  digits = next;
  outbox = [];
  synced = false;
  rendered = [];
  $('chat').replaceChildren();
  renderChat();
}

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

/** HMAC-SHA256 of the exact body bytes with the app secret, as Meta signs its webhooks. */
async function metaSignature(body) {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', enc.encode(info.whatsapp_app_secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return `sha256=${hex(await crypto.subtle.sign('HMAC', key, enc.encode(body)))}`;
}

/** A WhatsApp message id shaped like Meta's (`wamid.` and base64 text). */
function wamid() {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `wamid.${btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, '')}`;
}

/** Sends `text` from the simulated phone: the webhook event Meta would POST for it. */
async function sendFromPhone(text) {
  const from = digits;
  const id = wamid();
  save(sentKey(), [...sentMessages(), { id, text, created_at: new Date().toISOString(), state: 'sending' }]);
  renderChat();
  const event = {
    object: 'whatsapp_business_account',
    entry: [{
      id: '102290129340398',
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: info.whatsapp_number, phone_number_id: info.whatsapp_phone_number_id },
          contacts: [{ profile: { name: 'Demo user' }, wa_id: from }],
          messages: [{ from, id, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
        },
      }],
    }],
  };
  const body = JSON.stringify(event);
  const path = `/webhooks/whatsapp/${info.instance}`;
  let status = 0;
  let answer = '';
  let signature = '';
  try {
    signature = await metaSignature(body);
    const res = await fetch(base + path, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': signature }, body });
    status = res.status;
    answer = await res.text();
  } catch (e) {
    answer = String(e);
  }
  log(`POST ${path}`, `X-Hub-Signature-256: ${signature}\n${JSON.stringify(event, null, 2)}`, status, answer);
  const key = `sent.${from}`;
  const result = status === 200 ? { state: 'delivered' } : { state: 'failed', error: status ? `${status} ${answer}`.trim() : 'network error' };
  save(key, load(key, []).map((m) => (m.id === id ? { ...m, ...result } : m)));
  if (from === digits) renderChat();
}

$('compose').addEventListener('submit', async (e) => {
  e.preventDefault();
  const box = $('compose-text');
  const text = box.value.trim();
  if (!text || !digits) {
    box.focus();
    return;
  }
  box.value = '';
  updateSend();
  await sendFromPhone(text);
});
$('compose-text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    $('compose').requestSubmit();
  }
});
const updateSend = () => {
  $('send').disabled = !$('compose-text').value.trim();
};
$('compose-text').addEventListener('input', updateSend);

// ---- A. one-time code ------------------------------------------------------------------------

$('request').addEventListener('submit', async (e) => {
  e.preventDefault();
  setPhone($('phone').value);
  $('code-result').textContent = '';
  const { status } = await call('POST', `/api/otp/v2/${info.instance}/request-code`, { chatId: $('phone').value, name: 'edge-otp demo' });
  if (status === 200) $('code').focus();
});

$('validate').addEventListener('submit', async (e) => {
  e.preventDefault();
  const { json } = await call('POST', `/api/otp/v2/${info.instance}/validate-code`, { chatId: $('phone').value, code: $('code').value.trim() });
  const result = $('code-result');
  result.className = `result ${json?.success ? 'good' : 'bad'}`;
  result.textContent = json?.success ? `✓ ${json.message ?? 'Verified'}` : `✗ ${json?.message ?? 'Request failed'}`;
});

// ---- B. log in with WhatsApp -----------------------------------------------------------------

const TERMINAL = ['verified', 'failed', 'expired', 'unknown'];

function showBadge(node, status) {
  node.textContent = status;
  node.className = `badge ${status}`;
}

/** One poller per challenge, until it ends: page slots (`link`, `verified`) listen to it. */
const watches = new Map(); // uuid -> { listeners: Map(slot -> fn), data, timer }

function unwatch(slot) {
  for (const [uuid, w] of watches) {
    if (w.listeners.delete(slot) && !w.listeners.size) {
      clearTimeout(w.timer);
      watches.delete(uuid);
    }
  }
}

function watchLink(slot, uuid, onStatus) {
  unwatch(slot);
  let w = watches.get(uuid);
  if (w) {
    w.listeners.set(slot, onStatus);
    if (w.data) onStatus(w.data);
    return;
  }
  w = { listeners: new Map([[slot, onStatus]]) };
  watches.set(uuid, w);
  const path = `/api/otp/v2/${info.instance}/otps/${uuid}`;
  const tick = async () => {
    let data;
    try {
      const res = await fetch(base + path, { headers: { Authorization: `Bearer ${info.api_token}`, Accept: 'application/json' } });
      const json = await res.json();
      // 404: not a challenge of this instance (say, from before the dev state was wiped).
      data = res.status === 404 ? { uuid, status: 'unknown' } : json?.data;
      // Polled every 1.5 s: only the answers that change something go to the log.
      if (data?.status !== w.data?.status) log(`GET ${path}`, null, res.status, json);
    } catch {
      data = null;
    }
    if (watches.get(uuid) !== w) return;
    if (data) {
      w.data = data;
      w.listeners.forEach((fn) => fn(data));
    }
    if (!data || !TERMINAL.includes(data.status)) w.timer = setTimeout(tick, 1500);
  };
  tick();
}

let expiryTimer;
function showLink(link) {
  $('link-result').hidden = false;
  $('wa-link').href = link.whatsapp_link;
  const text = new URL(link.whatsapp_link).searchParams.get('text') ?? '';
  $('prefilled').textContent = text;
  $('link-uuid').textContent = link.uuid;
  showBadge($('link-status'), link.status);
  clearInterval(expiryTimer);
  const expiry = () => {
    const left = Math.round((Date.parse(link.expires_at) - Date.now()) / 1000);
    $('link-expiry').textContent = left > 0 ? `expires in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}` : 'expired';
    if (left <= 0) clearInterval(expiryTimer);
  };
  expiry();
  expiryTimer = setInterval(expiry, 1000);
  watchLink('link', link.uuid, (data) => {
    showBadge($('link-status'), data.status);
    if (TERMINAL.includes(data.status)) {
      clearInterval(expiryTimer);
      $('link-expiry').textContent = data.failure ? `(${data.failure})` : '';
    }
  });
  return text;
}

$('generate').addEventListener('submit', async (e) => {
  e.preventDefault();
  setPhone($('phone').value);
  const body = {
    name: 'edge-otp demo',
    expires: 600,
    message: {
      prompt: 'Give me link to login at edge-otp demo',
      success: 'Here is your login link: {link}',
      failed: 'Login failed. Please try again.',
      expired: 'This link has expired. Please request a new one.',
    },
  };
  if ($('restrict').checked) body.chatId = $('phone').value;
  const { status, json } = await call('POST', `/api/otp/v2/${info.instance}/generate-link`, body);
  if (status !== 200 || !json?.data) return;
  save('link', json.data);
  $('compose-text').value = showLink(json.data);
  updateSend();
});

$('use-phone').addEventListener('click', () => {
  if (!$('compose-text').value.trim()) $('compose-text').value = $('prefilled').textContent;
  updateSend();
  $('compose-text').focus();
});

// ---- back from the confirm page: the verification token --------------------------------------

function decodeJwt(jwt) {
  const part = (s) => {
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(s.length / 4) * 4, '=');
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
  };
  const [header, payload] = jwt.split('.');
  return { header: part(header), payload: part(payload) };
}

/**
 * The check a backend makes, done in the page: the signature against the service's public keys
 * (its JWKS, which anyone may read), for the key the token's `kid` names, with the algorithm
 * pinned to ES256. An HS256 instance's key is a shared secret: the dev build's /dev/info hands
 * the demo it, which a real site never exposes.
 */
async function devCheck(jwt, header) {
  const enc = new TextEncoder();
  const [h, p, sig] = jwt.split('.');
  const raw = Uint8Array.from(atob(sig.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(sig.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
  if (header.alg === 'ES256') {
    const { keys } = await (await fetch(`${base}/.well-known/jwks.json`)).json();
    const jwk = keys.find((k) => k.kid === header.kid);
    if (!jwk) return `Check: no key ${header.kid} in ${base}/.well-known/jwks.json.`;
    const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    const ok = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, raw, enc.encode(`${h}.${p}`));
    return ok
      ? `Check: the ES256 signature matches key ${header.kid} of the service's public JWKS (${base}/.well-known/jwks.json), as a backend checks it.`
      : `Check: the signature does NOT match key ${header.kid} of the service's JWKS.`;
  }
  const key = header.kid === info.token_kid ? info.token_key : null;
  if (!key || header.alg !== 'HS256') return '';
  const k = await crypto.subtle.importKey('raw', enc.encode(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  return (await crypto.subtle.verify('HMAC', k, raw, enc.encode(`${h}.${p}`)))
    ? `Dev build check: the HS256 signature matches the demo instance's shared key ${header.kid} (from /dev/info, which a real site never exposes).`
    : `Dev build check: the signature does NOT match the demo key ${header.kid}.`;
}

async function showVerified(jwt) {
  let decoded;
  try {
    decoded = decodeJwt(jwt);
  } catch {
    log('verification token', null, 400, 'The #token fragment is not a JWT.');
    return;
  }
  const { header, payload } = decoded;
  const exp = new Date(payload.exp * 1000);
  const rows = (list) =>
    list.flatMap(([k, v, note]) => [el('dt', {}, el('code', { textContent: k })), el('dd', {}, el('code', { textContent: v ?? '' }), ' ', el('span', { className: 'hint', textContent: note }))]);
  $('claims').replaceChildren(
    ...rows([
      ['sub', payload.sub, 'the verified phone number'],
      ['aud', payload.aud, 'your instance'],
      ['jti', payload.jti, 'the challenge uuid: refuse it twice'],
      ['exp', `${payload.exp}`, `${exp.toLocaleString()}${exp < new Date() ? ' (expired)' : ''}`],
    ]),
  );
  $('more-claims').replaceChildren(
    ...rows([
      ['alg', header.alg, 'header'],
      ['kid', header.kid, 'header: which instance key'],
      ['iss', payload.iss, 'the service'],
      ['iat', `${payload.iat}`, new Date(payload.iat * 1000).toLocaleString()],
    ]),
  );
  $('kid').textContent = header.kid ?? '?';
  $('raw-token').textContent = jwt;
  $('verified').hidden = false;
  $('verified').focus();
  devCheck(jwt, header).then((t) => ($('devcheck').textContent = t), () => {});
  if (payload.jti) {
    watchLink('verified', payload.jti, (data) => showBadge($('verified-status'), data.status));
  }
}

// The widget pane (widgets.js) hands its tokens over here.
window.addEventListener('demo:token', (e) => {
  sessionStorage.setItem(`${STORE}.token`, e.detail);
  showVerified(e.detail);
});

$('dismiss').addEventListener('click', () => {
  sessionStorage.removeItem(`${STORE}.token`);
  localStorage.removeItem(`${STORE}.link`);
  unwatch('link');
  unwatch('verified');
  clearInterval(expiryTimer);
  $('verified').hidden = true;
  $('link-result').hidden = true;
  $('phone').focus();
});

/** A `token=` in the fragment (`#token=…`, `#verified&token=…`): keep it, clean the address bar. */
function takeToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (token) {
    sessionStorage.setItem(`${STORE}.token`, token);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return token ?? sessionStorage.getItem(`${STORE}.token`);
}

// ---- start -----------------------------------------------------------------------------------

(async () => {
  let res = null;
  for (const mount of ['', '/_otp']) {
    try {
      res = await fetch(`${mount}/dev/info`, { headers: { Accept: 'application/json' } });
    } catch {
      res = null;
    }
    // Behind the middleware, /dev/info at the root is the site's (the dev origin's 404).
    if (res?.ok && (res.headers.get('content-type') ?? '').includes('json')) {
      base = mount;
      break;
    }
  }
  if (!res?.ok) {
    document.querySelector('.layout').replaceChildren(el('p', { className: 'card', textContent: 'This page needs the dev build: run `make dev`.' }));
    return;
  }
  info = await res.json();
  $('instance').textContent = info.instance;
  $('contact').textContent = info.whatsapp_number ? `+${toDigits(info.whatsapp_number)}` : '(no business number)';
  $('contact-sub').textContent = `${info.name ?? 'edge-otp'} · business account`;
  const phone = load('phone', null);
  if (phone) $('phone').value = phone;
  setPhone($('phone').value);
  let typing;
  $('phone').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => setPhone($('phone').value), 400);
  });
  updateSend();
  const token = takeToken();
  const last = load('link', null);
  if (last && Date.parse(last.expires_at) > Date.now() - 3600_000) showLink(last);
  if (token) showVerified(token);
  pollOutbox();
})();
