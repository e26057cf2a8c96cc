// The operator page: reads {page}/metrics (the same counters as the metrics endpoint, for
// every instance) and draws inline SVG charts. No library, no other origin: it runs under the
// page's strict Content-Security-Policy and offline.
const NS = 'http://www.w3.org/2000/svg';
const COLORS = ['#0b7a55', '#2f6fdf', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#65a30d', '#64748b'];
const base = location.pathname.replace(/\/+$/, '');
const $ = (id) => document.getElementById(id);
let data = null;

function el(name, attrs = {}, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

/** `n` UTC hours as metric bucket keys (`YYYY-MM-DDTHH`), oldest first, ending with the current
 * hour or the latest hour with data, whichever is later. */
function hours(n, latest) {
  const last = latest ? Date.parse(`${latest}:00:00Z`) : 0;
  const now = Math.max(Math.floor(Date.now() / 3600e3) * 3600e3, last);
  return Array.from({ length: n }, (_, i) => new Date(now - (n - 1 - i) * 3600e3).toISOString().slice(0, 13));
}

/** Series names of a dimension (`ch` or `cc`) for an event, from the instance's totals. */
function keys(totals, event, dim) {
  const prefix = `code.${event}@${dim}:`;
  return Object.keys(totals).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
}

function legend(host, names) {
  const div = document.createElement('div');
  div.className = 'legend';
  names.forEach((n, i) => {
    const s = document.createElement('span');
    const sw = document.createElement('i');
    sw.style.background = COLORS[i % COLORS.length];
    s.append(sw, n);
    div.append(s);
  });
  host.append(div);
}

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
function nice(max) {
  const p = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= max);
}

/** Grid steps for an axis up to `max` (a `nice` value): whole steps where possible. */
const steps = (max) => (max / 10 ** Math.floor(Math.log10(max)) === 2 ? 4 : 5);

/** An axis label: whole numbers as they are, others with one decimal. */
const label = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

/** A line chart of `series` ([name, values]) over `xs` (hour keys). */
function lines(host, xs, series, { percent = false } = {}) {
  host.replaceChildren();
  const W = 560, H = 200, L = 36, B = 20, T = 8;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' }, host);
  const max = percent ? 1 : nice(Math.max(4, ...series.flatMap(([, v]) => v.filter((x) => x !== null))));
  const x = (i) => L + (i * (W - L - 6)) / Math.max(1, xs.length - 1);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const n = percent ? 4 : steps(max);
  for (let g = 0; g <= n; g++) {
    const v = (max * g) / n;
    el('line', { x1: L, x2: W - 6, y1: y(v), y2: y(v), stroke: '#eef0f3' }, svg);
    el('text', { x: L - 4, y: y(v) + 3, 'text-anchor': 'end' }, svg).textContent = percent ? `${Math.round(v * 100)}%` : label(v);
  }
  const step = Math.ceil(xs.length / 8);
  xs.forEach((h, i) => {
    if (i % step === 0) el('text', { x: x(i), y: H - 5, 'text-anchor': 'middle' }, svg).textContent = `${h.slice(5, 10)} ${h.slice(11)}h`;
  });
  series.forEach(([name, values], s) => {
    const pts = values.map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean);
    const color = COLORS[s % COLORS.length];
    const line = el('polyline', { points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': 2 }, svg);
    el('title', {}, line).textContent = name;
    // Points with a value, so a lone hour shows too.
    values.forEach((v, i) => v !== null && v > 0 && el('circle', { cx: x(i), cy: y(v), r: 2.5, fill: color }, svg));
  });
  if (!series.length) el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, svg).textContent = 'no data yet';
  legend(host, series.map(([n]) => n));
}

/** Grouped bars: per key, one bar per measure. */
function bars(host, groups, measures) {
  host.replaceChildren();
  const W = 560, H = 200, L = 36, B = 20, T = 8;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' }, host);
  const max = nice(Math.max(4, ...groups.flatMap(([, v]) => v)));
  const gw = (W - L - 6) / Math.max(1, groups.length);
  const bw = Math.min(28, (gw - 8) / measures.length);
  const n = steps(max);
  for (let g = 0; g <= n; g++) {
    const v = (max * g) / n;
    const yy = T + (H - T - B) * (1 - v / max);
    el('line', { x1: L, x2: W - 6, y1: yy, y2: yy, stroke: '#eef0f3' }, svg);
    el('text', { x: L - 4, y: yy + 3, 'text-anchor': 'end' }, svg).textContent = label(v);
  }
  groups.forEach(([name, values], gi) => {
    const x0 = L + gi * gw + (gw - bw * measures.length) / 2;
    values.forEach((v, m) => {
      const h = ((H - T - B) * v) / max;
      const r = el('rect', { x: x0 + m * bw, y: H - B - h, width: bw - 2, height: h, fill: COLORS[m % COLORS.length] }, svg);
      el('title', {}, r).textContent = `+${name} ${measures[m]}: ${v}`;
    });
    el('text', { x: L + gi * gw + gw / 2, y: H - 5, 'text-anchor': 'middle' }, svg).textContent = name === 'other' ? 'other' : `+${name}`;
  });
  if (!groups.length) el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, svg).textContent = 'no data yet';
  legend(host, measures);
}

function tiles(code) {
  const pct = (r) => (r === null ? '–' : `${(r * 100).toFixed(1)}%`);
  const secs = (s) => (s === null ? '–' : `${Math.round(s)} s`);
  const items = [
    ['sent', code.sent], ['delivered', code.delivered], ['verified', code.verified],
    ['conversion', pct(code.conversion_rate)], ['median time to verify', secs(code.median_seconds_to_verify)],
    ['failed', code.failed], ['fallbacks', code.fallbacks], ['wrong attempts', code.wrong_attempts],
    ['lockouts', code.lockouts], ['budget refusals', code.budget_refusals],
  ];
  $('tiles').replaceChildren(...items.map(([label, value]) => {
    const d = document.createElement('div');
    d.className = 'tile';
    d.dataset.metric = label;
    const b = document.createElement('b');
    b.textContent = value;
    const s = document.createElement('span');
    s.textContent = label;
    d.append(b, s);
    return d;
  }));
}

function draw() {
  const inst = data.instances.find((i) => i.id === $('instance').value) ?? data.instances[0];
  if (!inst) return;
  const xs = hours(Number($('span').value), Object.keys(inst.hours).sort().pop());
  const at = (h, name) => inst.hours[h]?.[name] ?? 0;
  tiles(inst.code);
  const channels = keys(inst.totals, 'sent', 'ch');
  lines($('sent'), xs, channels.map((c) => [c, xs.map((h) => at(h, `code.sent@ch:${c}`))]));
  const rate = (h, suffix) => {
    const sent = at(h, `code.sent${suffix}`);
    return sent ? Math.min(1, at(h, `code.verified${suffix}`) / sent) : null;
  };
  lines($('conversion'), xs, [['all channels', xs.map((h) => rate(h, ''))], ...channels.map((c) => [c, xs.map((h) => rate(h, `@ch:${c}`))])], { percent: true });
  const failing = [...new Set([...keys(inst.totals, 'failed', 'ch'), ...keys(inst.totals, 'fallback', 'ch')])];
  lines($('failures'), xs, failing.flatMap((c) => [
    [`${c} failed`, xs.map((h) => at(h, `code.failed@ch:${c}`))],
    [`${c} fell back`, xs.map((h) => at(h, `code.fallback@ch:${c}`))],
  ]));
  const countries = keys(inst.totals, 'sent', 'cc').sort((a, b) => (inst.totals[`code.sent@cc:${b}`] ?? 0) - (inst.totals[`code.sent@cc:${a}`] ?? 0)).slice(0, 12);
  bars($('countries'), countries.map((c) => [c, [inst.totals[`code.sent@cc:${c}`] ?? 0, inst.totals[`code.verified@cc:${c}`] ?? 0]]), ['sent', 'verified']);
}

async function load() {
  try {
    const res = await fetch(`${base}/metrics`, { credentials: 'same-origin', cache: 'no-store' });
    if (res.status === 401) {
      location.reload();
      return;
    }
    if (!res.ok) throw new Error(`metrics answered ${res.status}`);
    data = await res.json();
    const select = $('instance');
    if (!select.options.length) {
      for (const i of data.instances) select.append(new Option(`${i.name} (${i.id.slice(0, 8)})`, i.id));
    }
    draw();
    $('updated').textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
    $('error').textContent = '';
    document.body.dataset.ready = 'true';
  } catch (e) {
    $('error').textContent = String(e.message ?? e);
  }
}

$('instance').addEventListener('change', draw);
$('span').addEventListener('change', draw);
load();
setInterval(load, 60_000);
