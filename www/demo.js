// The demo page: request a code for a number, watch the dev outbox as the phone would, and
// validate the code, all through the real Hypersender-compatible API of the local Worker.
// It uses the demo instance's dev token from GET /dev/info, which exists only in dev builds.
const $ = (id) => document.getElementById(id);
let info;
let phone = '';
let seen = -1;

async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${info.api_token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: body && JSON.stringify(body),
  });
  const json = await res.json();
  log(`${method} ${path}`, body, res.status, json);
  return { status: res.status, json };
}

function log(what, body, status, json) {
  const entry = document.createElement('div');
  const title = document.createElement('div');
  title.className = `status${status >= 400 ? ' bad' : ''}`;
  title.textContent = `${what} → ${status}`;
  const pre = document.createElement('pre');
  pre.textContent = (body ? `${JSON.stringify(body)}\n` : '') + JSON.stringify(json, null, 2);
  entry.append(title, pre);
  $('log').prepend(entry);
}

async function pollOutbox() {
  if (phone) {
    const res = await fetch(`/dev/outbox?to=${encodeURIComponent(phone)}`);
    if (res.ok) {
      const msgs = await res.json();
      if (msgs.length !== seen) {
        seen = msgs.length;
        const list = $('outbox');
        list.replaceChildren(
          ...(msgs.length
            ? msgs.map((m) => {
                const li = document.createElement('li');
                const when = document.createElement('small');
                when.textContent = `to ${m.to} · ${m.created_at}`;
                li.append(m.text, when);
                return li;
              })
            : [Object.assign(document.createElement('li'), { className: 'empty', textContent: 'No messages yet.' })]),
        );
      }
    }
  }
  setTimeout(pollOutbox, 700);
}

$('request').addEventListener('submit', async (e) => {
  e.preventDefault();
  phone = $('phone').value;
  seen = -1;
  await call('POST', `/api/otp/v2/${info.instance}/request-code`, { chatId: phone, name: 'edge-otp demo' });
  $('code').focus();
});

$('validate').addEventListener('submit', async (e) => {
  e.preventDefault();
  await call('POST', `/api/otp/v2/${info.instance}/validate-code`, { chatId: phone || $('phone').value, code: $('code').value });
});

(async () => {
  const res = await fetch('/dev/info');
  if (!res.ok) {
    document.querySelector('main').textContent = 'This page needs the dev build: run `make dev`.';
    return;
  }
  info = await res.json();
  $('instance').textContent = info.instance;
  pollOutbox();
})();
