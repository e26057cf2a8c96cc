// docs/openapi.yaml against the running dev Worker: every documented operation is called, every
// documented status that can be produced without waiting is produced, and each real answer is
// checked against the document (body schema, documented headers, content type). The last test
// requires every documented response to have been seen, so a new status or route cannot be
// added to the Worker or the document alone. Set OPENAPI_SLOW=1 to include the 410 test
// (a code must expire: 61 s).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { startWorker, DEMO, OTHER, QUICK, newRecipient } from '../support/worker.mjs';
import {
  spec,
  operations,
  documentedResponses,
  checkedResponses,
  assertMatchesSpec,
  checkRequestBody,
  examples,
  checkAgainst,
  METHODS,
} from '../support/openapi.mjs';

const SLOW = Boolean(process.env.OPENAPI_SLOW);

const RC = '/api/otp/v2/{instance}/request-code';
const VC = '/api/otp/v2/{instance}/validate-code';
const OTP = '/api/otp/v2/{instance}/otps/{uuid}';
const HEALTH = '/health';
const OUTBOX = '/dev/outbox';
const INFO = '/dev/info';

/** Every route the router (src/lib.rs, src/hypersender.rs, src/dev.rs) serves. */
const ROUTES = [
  ['POST', RC],
  ['POST', VC],
  ['GET', OTP],
  ['GET', HEALTH],
  ['GET', OUTBOX],
  ['GET', INFO],
];
const DEV_ROUTES = new Set([OUTBOX, INFO]);

/** Documented responses these tests cannot produce, and why. */
const NOT_PRODUCED = {
  [`POST ${VC} 410`]: SLOW ? null : 'needs a code to expire (at least 60 s); run with OPENAPI_SLOW=1',
  [`GET ${OUTBOX} 503`]: 'needs an invalid INSTANCES binding, which the test harness cannot set',
  [`GET ${INFO} 503`]: 'needs an invalid INSTANCES binding, which the test harness cannot set',
  [`GET ${INFO} 404`]: 'needs a deploy without instances; the harness falls back to [env.dev] INSTANCES',
};

const UNKNOWN_INSTANCE = '99999999-9999-4999-8999-999999999999';
const UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000';

let w;
before(async () => {
  w = await startWorker();
});
after(async () => {
  await w?.stop();
});

const token = (instance = DEMO) => w.secrets.tokens[instance];
const concrete = (template, { instance = DEMO, uuid = UNKNOWN_UUID } = {}) =>
  template.replace('{instance}', instance).replace('{uuid}', uuid);

/** Any request; the body comes back parsed when it is JSON. */
async function call(harness, method, p, { auth, body, headers = {} } = {}) {
  const res = await harness.fetch(p, {
    method,
    headers: { Accept: 'application/json', ...(auth ? { Authorization: `Bearer ${auth}` } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: keep the text, the schema check will say so */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** The success schema of each API operation, whose property order the bodies keep. */
const SUCCESS_SCHEMA = { [RC]: 'RequestCodeResponse', [VC]: 'ValidateCodeResponse', [OTP]: 'OtpStatusResponse' };

/**
 * Checks an answer against the document and returns it. API bodies must also keep the
 * documented key order (Hypersender's): `success, message, data[, errors]`, and `data` in the
 * order of its schema's properties.
 */
function conforms(method, template, res) {
  assertMatchesSpec(method, template, res.status, res.body, res.headers);
  if (template.startsWith('/api/')) {
    const top = res.body.errors ? ['success', 'message', 'data', 'errors'] : ['success', 'message', 'data'];
    assert.deepEqual(Object.keys(res.body), top, `${method} ${template} ${res.status}: key order`);
    if (res.status === 200) {
      const order = Object.keys(spec.components.schemas[SUCCESS_SCHEMA[template]].properties.data.properties);
      assert.deepEqual(Object.keys(res.body.data), order, `${method} ${template} 200: data key order`);
    }
  }
  return res;
}

const rc = async (body, opts) => conforms('POST', RC, await w.hs('request-code', body, opts));
const vc = async (body, opts) => conforms('POST', VC, await w.hs('validate-code', body, opts));
const otp = async (uuid, { instance = DEMO, auth = token(instance), harness = w } = {}) =>
  conforms('GET', OTP, await call(harness, 'GET', concrete(OTP, { instance, uuid }), { auth }));

/** A code guaranteed different from `code`, in the same alphabet. */
function wrong(code) {
  const c = code[0];
  const next = /[0-9]/.test(c) ? String((Number(c) + 1) % 10) : c === 'z' ? 'a' : c === 'Z' ? 'A' : String.fromCharCode(c.charCodeAt(0) + 1);
  return next + code.slice(1);
}

/** GET through node:http with a chosen Host header (fetch ignores Host). */
function getWithHost(p, host) {
  const u = new URL(w.url);
  return new Promise((resolve, reject) => {
    http
      .get({ host: u.hostname, port: u.port, path: p, headers: { Host: host, Accept: 'application/json' } }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: JSON.parse(data) }));
      })
      .on('error', reject);
  });
}

// ------------------------------------------------------------------------------------------
// The document itself

test('the document lists exactly the routes the router serves', () => {
  const documented = operations().map(({ method, path }) => `${method} ${path}`).sort();
  const served = ROUTES.map(([m, p]) => `${m} ${p}`).sort();
  assert.deepEqual(documented, served);
  assert.match(spec.openapi, /^3\.1\./);
});

test('operations have unique operationIds, a summary, tags, and dev-only routes are marked', () => {
  const ids = operations().map(({ operation }) => operation.operationId);
  assert.equal(new Set(ids).size, ids.length, `duplicate operationId in ${ids}`);
  for (const { method, path, operation } of operations()) {
    assert.ok(operation.operationId, `${method} ${path}: operationId`);
    assert.ok(operation.summary && operation.description, `${method} ${path}: summary and description`);
    assert.ok(operation.tags?.length, `${method} ${path}: tags`);
    const dev = DEV_ROUTES.has(path);
    assert.equal(operation['x-dev-only'] === true, dev, `${method} ${path}: x-dev-only must be ${dev}`);
    if (dev) assert.match(operation.description, /dev build/);
    if (path.startsWith('/api/')) {
      assert.deepEqual(operation.security, [{ bearer: [] }], `${method} ${path}: bearer auth`);
      for (const s of ['401', '405', '503']) assert.ok(operation.responses[s], `${method} ${path}: ${s} documented`);
    }
  }
  assert.equal(spec.components.securitySchemes.bearer.scheme, 'bearer');
});

test('every example in the document matches its schema', () => {
  const all = examples();
  assert.ok(all.length > 20, `only ${all.length} examples found`);
  for (const ex of all) {
    const { valid, errors } = checkAgainst(ex.pointer, ex.value);
    assert.ok(valid, `${ex.where}:\n${errors}`);
  }
});

test('the checker refuses undocumented statuses, paths and methods, and wrong bodies', () => {
  assert.throws(() => assertMatchesSpec('GET', HEALTH, 404, {}), /GET \/health 404 is not documented/);
  assert.throws(() => assertMatchesSpec('POST', HEALTH, 200, { status: 'ok' }), /POST \/health is not documented/);
  assert.throws(() => assertMatchesSpec('GET', '/nope', 200, {}), /path \/nope is not documented/);
  assert.throws(() => assertMatchesSpec('GET', HEALTH, 200, { status: 'ok', extra: 1 }), /additional properties/);
  assert.throws(
    () => assertMatchesSpec('POST', RC, 429, { success: false, message: 'Too many codes requested for this chat. Try again in 5 seconds.', data: null }, {
      'content-type': 'application/json',
    }),
    /required header Retry-After is missing/,
  );
  assert.throws(
    () => assertMatchesSpec('POST', VC, 422, { success: false, message: 'Invalid OTP code.', data: null }, {
      'content-type': 'application/json',
      'x-otp-attempts-remaining': 'many',
    }),
    /header X-OTP-Attempts-Remaining/,
  );
});

// ------------------------------------------------------------------------------------------
// Routes

test('every documented operation is served (no router 404), and other methods are refused', async () => {
  for (const [method, template] of ROUTES) {
    const p = template === OUTBOX ? `${OUTBOX}?to=${newRecipient()}` : concrete(template);
    const body = method === 'POST' ? {} : undefined;
    const res = conforms(method, template, await call(w, method, p, { body, headers: body ? { 'Content-Type': 'application/json' } : {} }));
    assert.notEqual(res.status, 404, `${method} ${template} answered 404`);
    const secured = (spec.paths[template][method.toLowerCase()].security ?? spec.security ?? []).length > 0;
    assert.equal(res.status, secured ? 401 : 200, `${method} ${template} without a token`);
  }
  // Methods the document does not list: 405 on the API paths (documented there), 404 elsewhere.
  for (const template of Object.keys(spec.paths)) {
    const documented = METHODS.find((x) => spec.paths[template][x]).toUpperCase();
    for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      if (spec.paths[template][m.toLowerCase()]) continue;
      const res = await call(w, m, concrete(template), { auth: token() });
      if (template.startsWith('/api/')) {
        assert.equal(res.status, 405, `${m} ${template}`);
        conforms(documented, template, res);
      } else {
        assert.equal(res.status, 404, `${m} ${template} should not be served`);
      }
    }
  }
});

test('paths the document does not list are not served', async () => {
  // Hypersender and WhatOTP endpoints that are not implemented (yet), and near misses.
  const candidates = [
    ['POST', `/api/otp/v2/${DEMO}/generate-link`],
    ['POST', `/api/otp/v2/${DEMO}/otps`],
    ['GET', `/api/otp/v2/${DEMO}`],
    ['GET', '/api/otp/v2'],
    ['POST', '/v1/otp/send'],
    ['POST', '/v1/otp/verify'],
    ['POST', '/v1/messages/send'],
    ['GET', '/dev'],
    ['GET', '/dev/state'],
  ];
  // Other paths (`/`, `/demo.js`, ...) are static files of www/ served by the assets layer
  // before the Worker runs (wrangler.toml `run_worker_first`): not part of the API.
  for (const [m, p] of candidates) {
    const res = await call(w, m, p, { body: m === 'POST' ? '{}' : undefined });
    assert.equal(res.status, 404, `${m} ${p} is served but not documented`);
    assert.equal(res.body.success, false);
    assert.equal(res.body.message, 'Not found.');
  }
});

// Envelope consistency outside the Hypersender handlers.

test('the router-level 404 keeps the envelope key order', async () => {
  const res = await call(w, 'GET', '/api/otp/v2');
  assert.equal(res.status, 404);
  assert.deepEqual(Object.keys(res.body), ['success', 'message', 'data']);
});

test('dev outbox answers JSON when OTP_PEPPER is missing', async () => {
  const broken = await startWorker({ omit: ['OTP_PEPPER'] });
  try {
    const res = await call(broken, 'GET', `${OUTBOX}?to=${newRecipient()}`);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.notEqual(res.status, 500);
  } finally {
    await broken.stop();
  }
});

// ------------------------------------------------------------------------------------------
// request-code

test('request-code: success, every chat id spelling prints as <digits>@c.us', async () => {
  const digits = newRecipient();
  for (const chatId of [`${digits}@c.us`, `+${digits}`, digits, `+${digits.slice(0, 2)} ${digits.slice(2, 5)}-${digits.slice(5)}`, `${digits}@s.whatsapp.net`]) {
    const body = { chatId };
    assert.ok(checkRequestBody('POST', RC, body).valid, `request schema refuses ${chatId}`);
    const res = await rc(body);
    assert.equal(res.status, 200);
    assert.equal(res.body.data.chat_id, `${digits}@c.us`);
    assert.match(res.body.data.code, /^[0-9]{6}$/);
  }
});

test('request-code: the request schema and the Worker agree on what is valid', async () => {
  // [body (chatId added unless present), valid?]
  const cases = [
    [{ length: 4 }, true],
    [{ length: 10 }, true],
    [{ length: '8' }, true],
    [{ length: ' 10 ' }, true],
    [{ length: null, expires: null, name: null, useLetter: null, useNumber: null, allCapital: null }, true],
    [{ expires: 60 }, true],
    [{ expires: '1800' }, true],
    [{ expires: '600' }, true],
    [{ useLetter: true, useNumber: false }, true],
    [{ useLetter: '1', useNumber: 0, allCapital: 1 }, true],
    [{ useLetter: 1, useNumber: '1', allCapital: '0' }, true],
    [{ name: 'x'.repeat(255) }, true],
    [{ chatId: '+20 (123) 456.789' }, true],
    [{ chatId: '201234567890123' }, true],
    [{ extra: 'ignored' }, true],
    [{ chatId: undefined }, false],
    [{ chatId: '' }, false],
    [{ chatId: 20123456789 }, false],
    [{ chatId: 'abc' }, false],
    [{ chatId: '120363040000000000@g.us' }, false],
    [{ chatId: '0123456789' }, false],
    [{ chatId: '1234567' }, false],
    [{ chatId: '1234567890123456' }, false],
    [{ length: 3 }, false],
    [{ length: 11 }, false],
    [{ length: '11' }, false],
    [{ length: 6.5 }, false],
    [{ length: 'six' }, false],
    [{ length: true }, false],
    [{ expires: 59 }, false],
    [{ expires: 1801 }, false],
    [{ expires: '59' }, false],
    [{ useLetter: 'yes' }, false],
    [{ useLetter: 2 }, false],
    [{ useNumber: false }, false],
    [{ useLetter: false, useNumber: '0' }, false],
    [{ name: ['x'] }, false],
    [{ name: 'x'.repeat(256) }, false],
  ];
  for (const [extra, expected] of cases) {
    const body = { chatId: newRecipient(), ...extra };
    if (body.chatId === undefined) delete body.chatId;
    const { valid, errors } = checkRequestBody('POST', RC, body);
    const res = await rc(body, { instance: QUICK });
    assert.equal(res.status, expected ? 200 : 422, `Worker on ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
    assert.equal(valid, expected, `request schema on ${JSON.stringify(body)}${errors ? `:\n${errors}` : ''}`);
  }
});

test('request-code: letters, lengths and the alphabet flags give codes of the documented shape', async () => {
  for (const [flags, re] of [
    [{ useLetter: true, useNumber: false }, /^[a-z]{8}$/],
    [{ useLetter: true, useNumber: false, allCapital: true }, /^[A-Z]{8}$/],
    [{ useLetter: true, useNumber: true }, /^[0-9a-z]{8}$/],
    [{ useLetter: '1', useNumber: '1', allCapital: 1 }, /^[0-9A-Z]{8}$/],
  ]) {
    const res = await rc({ chatId: newRecipient(), length: 8, ...flags });
    assert.match(res.body.data.code, re);
  }
});

test('request-code: 400, 401, 404, 405, 413, 422', async () => {
  const to = newRecipient();
  for (const raw of ['{bad json', '[1,2]', '"text"', 'null']) {
    const res = await rc(raw);
    assert.equal(res.status, 400, raw);
  }
  let res = await rc({ chatId: to }, { token: null });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer');
  res = await rc({ chatId: to }, { token: 'wrong' });
  assert.equal(res.status, 401);
  res = await rc({ chatId: to }, { token: token(OTHER) });
  assert.equal(res.status, 401, "another instance's token");
  res = await rc({ chatId: to }, { instance: UNKNOWN_INSTANCE, token: token() });
  assert.equal(res.status, 404);
  assert.equal(res.body.message, 'Instance not found.');
  for (const m of ['GET', 'PUT', 'DELETE']) {
    res = conforms('POST', RC, await call(w, m, concrete(RC), { auth: token() }));
    assert.equal(res.status, 405, m);
  }
  res = await rc(JSON.stringify({ chatId: to, name: 'x'.repeat(17 * 1024) }));
  assert.equal(res.status, 413);
  res = await rc('');
  assert.equal(res.status, 422, 'an empty body is {}');
  assert.deepEqual(res.body.errors, { chatId: ['The chat id field is required.'] });
  res = await rc({ length: 99, expires: 1 });
  assert.equal(res.status, 422);
  assert.equal(res.body.message, 'The chat id field is required. (and 2 more errors)');
});

test('request-code: 429 when the send cap is reached', async () => {
  const to = newRecipient();
  for (let i = 0; i < 5; i++) assert.equal((await rc({ chatId: to })).status, 200);
  const res = await rc({ chatId: `+${to}` });
  assert.equal(res.status, 429);
  assert.match(res.body.message, /^Too many codes requested for this chat\./);
  assert.ok(Number(res.headers.get('retry-after')) > 0);
});

// ------------------------------------------------------------------------------------------
// validate-code

test('validate-code: success, then 409 for the used code', async () => {
  const to = newRecipient();
  const sent = await rc({ chatId: to });
  const code = sent.body.data.code;
  const body = { chatId: `${to}@c.us`, code: `${code.slice(0, 3)} ${code.slice(3)}` };
  assert.ok(checkRequestBody('POST', VC, body).valid);
  let res = await vc(body);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.data.uuid, sent.body.data.uuid);
  assert.equal(res.body.data.chat_id, `${to}@c.us`);
  res = await vc({ chatId: to, code });
  assert.equal(res.status, 409);
});

test('validate-code: 400, 401, 404 (instance, no code), 405, 413, 422 (fields)', async () => {
  const to = newRecipient();
  let res = await vc('{nope');
  assert.equal(res.status, 400);
  res = await vc({ chatId: to, code: '123456' }, { token: null });
  assert.equal(res.status, 401);
  res = await vc({ chatId: to, code: '123456' }, { instance: UNKNOWN_INSTANCE, token: token() });
  assert.equal(res.status, 404);
  assert.equal(res.body.message, 'Instance not found.');
  res = await vc({ chatId: to, code: '123456' });
  assert.equal(res.status, 404);
  assert.equal(res.body.message, 'No active OTP code found for this chat.');
  res = conforms('POST', VC, await call(w, 'GET', concrete(VC), { auth: token() }));
  assert.equal(res.status, 405);
  res = await vc(JSON.stringify({ chatId: to, code: '1'.repeat(20 * 1024) }));
  assert.equal(res.status, 413);
  for (const body of [{}, { chatId: to }, { code: 123456 }, { chatId: 'x', code: '1' }, { chatId: to, code: '   ' }, { chatId: to, code: '1'.repeat(65) }]) {
    res = await vc(body);
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.ok(res.body.errors, JSON.stringify(res.body));
    assert.equal(checkRequestBody('POST', VC, body).valid, false, `request schema accepts ${JSON.stringify(body)}`);
  }
});

test('validate-code: wrong codes (422 with attempts left), then 429 once used up, then a lockout', async () => {
  const to = newRecipient();
  const sent = await rc({ chatId: to }, { instance: QUICK });
  const bad = wrong(sent.body.data.code);
  for (let left = 4; left >= 0; left--) {
    const res = await vc({ chatId: to, code: bad }, { instance: QUICK });
    assert.equal(res.status, 422);
    assert.equal(res.body.message, 'Invalid OTP code.');
    assert.equal(res.headers.get('x-otp-attempts-remaining'), String(left));
    // The fifth wrong code in a row also locks the recipient out (QUICK: 2 s).
    assert.equal(res.headers.has('retry-after'), left === 0);
  }
  let res = await vc({ chatId: to, code: sent.body.data.code }, { instance: QUICK });
  assert.equal(res.status, 429, 'attempts used up');
  assert.equal(res.body.message, 'Too many failed attempts. Request a new code.');
  assert.equal(res.headers.get('x-otp-attempts-remaining'), '0');
  res = await rc({ chatId: to }, { instance: QUICK });
  assert.equal(res.status, 429, 'locked out: no new code');
  assert.match(res.body.message, /^Too many failed attempts for this chat\. Try again in \d+ seconds\.$/);

  const status = await otp(sent.body.data.uuid, { instance: QUICK });
  assert.equal(status.status, 200);
  assert.equal(status.body.data.status, 'failed');
  assert.equal(status.body.data.failure, 'attempts');
  assert.equal(status.body.data.attempts_left, 0);
});

test('validate-code: 429 while the recipient is locked out with an open code', async () => {
  const to = newRecipient();
  const first = await rc({ chatId: to }, { instance: QUICK });
  for (let i = 0; i < 3; i++) assert.equal((await vc({ chatId: to, code: wrong(first.body.data.code) }, { instance: QUICK })).status, 422);
  const second = await rc({ chatId: to }, { instance: QUICK });
  for (let i = 0; i < 2; i++) assert.equal((await vc({ chatId: to, code: wrong(second.body.data.code) }, { instance: QUICK })).status, 422);
  const res = await vc({ chatId: to, code: second.body.data.code }, { instance: QUICK });
  assert.equal(res.status, 429);
  assert.match(res.body.message, /^Too many failed attempts for this chat\. Try again in \d+ seconds\.$/);
  assert.ok(!res.headers.has('x-otp-attempts-remaining'));
  assert.equal((await otp(first.body.data.uuid, { instance: QUICK })).body.data.status, 'superseded');
  assert.match((await otp(second.body.data.uuid, { instance: QUICK })).body.data.status, /^(pending|sent)$/);
});

test('validate-code: 410 for an expired code', { skip: !SLOW && 'needs 61 s; set OPENAPI_SLOW=1' }, async () => {
  const to = newRecipient();
  const sent = await rc({ chatId: to, expires: 60 });
  await new Promise((r) => setTimeout(r, 61_000));
  const res = await vc({ chatId: to, code: sent.body.data.code });
  assert.equal(res.status, 410);
  assert.equal((await otp(sent.body.data.uuid)).body.data.status, 'expired');
});

// ------------------------------------------------------------------------------------------
// otps/{uuid}

test('otps/{uuid}: sent, validated; 401, 404 (instance, uuid, not a uuid, other instance), 405', async () => {
  const to = newRecipient();
  const sent = await rc({ chatId: `+${to}` });
  const uuid = sent.body.data.uuid;
  await w.nextMessage(to);
  let res = await otp(uuid);
  for (const deadline = Date.now() + 2000; res.body.data.status === 'pending' && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 25));
    res = await otp(uuid);
  }
  assert.equal(res.status, 200);
  assert.equal(res.body.data.status, 'sent');
  assert.ok(res.body.data.sent_at);
  assert.equal(res.body.data.chat_id, `${to}@c.us`);
  assert.equal(res.body.data.attempts_left, 5);
  assert.equal(res.body.data.expires_at, sent.body.data.expires_at);
  res = await otp(uuid.toUpperCase());
  assert.equal(res.status, 200, 'either letter case');
  await vc({ chatId: to, code: sent.body.data.code });
  res = await otp(uuid);
  assert.equal(res.body.data.status, 'validated');
  assert.ok(res.body.data.validated_at);

  res = await otp(uuid, { auth: null });
  assert.equal(res.status, 401);
  res = await otp(uuid, { instance: UNKNOWN_INSTANCE, auth: token() });
  assert.equal(res.status, 404);
  assert.equal(res.body.message, 'Instance not found.');
  for (const other of [UNKNOWN_UUID, randomUUID(), 'not-a-uuid']) {
    res = await otp(other);
    assert.equal(res.status, 404, other);
    assert.equal(res.body.message, 'Not found.');
  }
  res = await otp(uuid, { instance: OTHER });
  assert.equal(res.status, 404, "another instance's code");
  res = conforms('GET', OTP, await call(w, 'POST', concrete(OTP, { uuid }), { auth: token(), body: '{}' }));
  assert.equal(res.status, 405);
});

// ------------------------------------------------------------------------------------------
// 503: a deploy with a secret missing

test('503 when OTP_PEPPER is not set (request-code, validate-code)', async () => {
  const broken = await startWorker({ omit: ['OTP_PEPPER'] });
  try {
    const to = newRecipient();
    const auth = broken.secrets.tokens[DEMO];
    let res = conforms('POST', RC, await broken.hs('request-code', { chatId: to }));
    assert.equal(res.status, 503);
    assert.match(res.body.message, /OTP_PEPPER/);
    res = conforms('POST', VC, await broken.hs('validate-code', { chatId: to, code: '123456' }));
    assert.equal(res.status, 503);
    // The lookup needs no pepper: it still answers.
    res = await otp(UNKNOWN_UUID, { harness: broken, auth });
    assert.equal(res.status, 404);
  } finally {
    await broken.stop();
  }
});

test('503 when API_TOKENS is not set (every API operation)', async () => {
  const broken = await startWorker({ omit: ['API_TOKENS'] });
  try {
    const to = newRecipient();
    let res = conforms('POST', RC, await broken.hs('request-code', { chatId: to }, { token: 'any' }));
    assert.equal(res.status, 503);
    assert.match(res.body.message, /API_TOKENS/);
    res = conforms('POST', VC, await broken.hs('validate-code', { chatId: to, code: '1234' }, { token: 'any' }));
    assert.equal(res.status, 503);
    res = await otp(UNKNOWN_UUID, { harness: broken, auth: 'any' });
    assert.equal(res.status, 503);
  } finally {
    await broken.stop();
  }
});

// ------------------------------------------------------------------------------------------
// health and the dev routes

test('health', async () => {
  const res = conforms('GET', HEALTH, await call(w, 'GET', HEALTH));
  assert.deepEqual(res.body, { status: 'ok' });
});

test('dev outbox: messages newest first, 422 without a valid `to`, 403 off loopback', async () => {
  const to = newRecipient();
  let res = conforms('GET', OUTBOX, await call(w, 'GET', `${OUTBOX}?to=${to}`));
  assert.deepEqual(res.body, []);
  const first = await rc({ chatId: to });
  await w.nextMessage(to);
  const second = await rc({ chatId: `${to}@c.us` });
  await w.nextMessage(to, 1);
  res = conforms('GET', OUTBOX, await call(w, 'GET', `${OUTBOX}?to=${encodeURIComponent(`+${to}`)}`));
  assert.equal(res.body.length, 2);
  assert.ok(res.body[0].text.includes(second.body.data.code), 'newest first');
  assert.ok(res.body[1].text.includes(first.body.data.code));
  assert.equal(res.body[0].to, `+${to}`);
  for (const q of ['', '?to=', '?to=abc']) {
    res = conforms('GET', OUTBOX, await call(w, 'GET', `${OUTBOX}${q}`));
    assert.equal(res.status, 422, q);
  }
  res = conforms('GET', OUTBOX, await getWithHost(`${OUTBOX}?to=${to}`, 'otp.example.com'));
  assert.equal(res.status, 403);
});

test('dev info: the demo instance and its token; 403 off loopback', async () => {
  let res = conforms('GET', INFO, await call(w, 'GET', INFO));
  assert.equal(res.status, 200);
  assert.equal(res.body.instance, DEMO);
  assert.equal(res.body.api_token, token(DEMO));
  res = conforms('GET', INFO, await getWithHost(INFO, 'otp.example.com'));
  assert.equal(res.status, 403);
});

// ------------------------------------------------------------------------------------------
// Coverage: every documented response was produced by some test above (run last).

test('every documented response was produced and checked', (t) => {
  const seen = checkedResponses();
  const missing = documentedResponses().filter((key) => !seen.has(key) && !NOT_PRODUCED[key]);
  assert.deepEqual(missing, [], `documented but never produced: ${missing.join('; ')}`);
  for (const [key, why] of Object.entries(NOT_PRODUCED)) {
    if (!why) continue;
    assert.ok(documentedResponses().includes(key), `NOT_PRODUCED lists ${key}, which is not documented`);
    t.diagnostic(`not produced: ${key} (${why})`);
  }
});
