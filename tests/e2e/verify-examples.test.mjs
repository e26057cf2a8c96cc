// The backend examples in examples/verify-token (Node with jose, Python with PyJWT, Rust with
// jsonwebtoken) against real tokens: the Worker signs one through the widget's code flow, and
// each example must accept it and print the phone, pick the key by kid from a token_keys object,
// and refuse it with a flipped signature byte, another audience or issuer, an unknown kid, another
// algorithm, and once expired (token.rs's known-answer token, whose exp is long past).
// Needs `make setup` (scripts/setup.sh): the Python venv and the Rust example's build.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { jwtVerify } from 'jose';
import { startWorker, newRecipient, ROOT, DEMO, OTHER, DEMO_PK, SHOP_ORIGIN } from '../support/worker.mjs';

const run = promisify(execFile);
const EX = path.join(ROOT, 'examples/verify-token');
const PYTHON = path.join(ROOT, '.venv-examples/bin/python');
const RUST_DIR = path.join(EX, 'rust');
const RUST_BIN = path.join(RUST_DIR, 'target/release/verify-token-example');

/** How each example is run: argv before `<token> <key> <audience> <issuer>`. */
const EXAMPLES = {
  node: [process.execPath, path.join(EX, 'node/verify.mjs')],
  python: [PYTHON, path.join(EX, 'python/verify.py')],
  rust: [RUST_BIN],
};

/** token.rs's known-answer token: valid from iat 1767225600 until exp 1767226200 (2026-01-01). */
const KAT = {
  token:
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjIwMjYtMDEifQ.eyJpc3MiOiJodHRwczovL290cC5leGFtcGxlLmNvbSIsInN1YiI6IjIwMTIzNDU2Nzg5IiwiYXVkIjoic2hvcC5leGFtcGxlIiwianRpIjoiYTBiNWRmNmEtYjQ5MS00MTkwLTgwYTUtMzhkODVhMmE0ODM2IiwiaWF0IjoxNzY3MjI1NjAwLCJleHAiOjE3NjcyMjYyMDB9.5g5oUHXUQTiNoy97tvNjXFpA6YQGXtCrxQJ30WzsLps',
  key: 'edge-otp-token-key-0123456789abcdef',
  aud: 'shop.example',
  iss: 'https://otp.example.com',
};

/** Fails with what to do when an example's runtime is missing or older than its sources. */
function checkPrerequisites() {
  const setup = 'run `make setup` (scripts/setup.sh) first';
  if (!existsSync(PYTHON)) {
    throw new Error(`the Python example's venv .venv-examples is missing: ${setup}`);
  }
  if (!existsSync(RUST_BIN)) {
    throw new Error(`the Rust example is not built (${path.relative(ROOT, RUST_BIN)}): ${setup}`);
  }
  const built = statSync(RUST_BIN).mtimeMs;
  for (const src of ['src/main.rs', 'Cargo.toml', 'Cargo.lock']) {
    if (statSync(path.join(RUST_DIR, src)).mtimeMs > built) {
      throw new Error(`the Rust example's build is older than its ${src}: ${setup}`);
    }
  }
}

/** Runs an example; resolves with its exit code, stdout and stderr (never rejects on exit 1). */
async function verifyWith(name, token, key, audience, issuer) {
  const [cmd, ...args] = EXAMPLES[name];
  try {
    const { stdout, stderr } = await run(cmd, [...args, token, key, audience, issuer], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** `token` with the first byte of its signature flipped. */
function flipSignatureByte(token) {
  const [h, c, s] = token.split('.');
  const sig = Buffer.from(s, 'base64url');
  sig[0] ^= 0x01;
  return `${h}.${c}.${b64url(sig)}`;
}

/** `token`'s claims re-signed with `key` under another header (e.g. another `alg`). */
function resign(token, header, key, hash = 'sha256') {
  const claims = token.split('.')[1];
  const input = `${b64url(JSON.stringify(header))}.${claims}`;
  return `${input}.${b64url(createHmac(hash, key).update(input).digest())}`;
}

let w;
let live; // { token, phone, key, aud, iss }

before(async () => {
  checkPrerequisites();
  w = await startWorker();
  const phone = `+${newRecipient()}`;
  const post = async (route, body) => {
    const res = await w.fetch(`/widget/v1/${route}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: SHOP_ORIGIN },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, `${route}: ${res.status}`);
    return res.json();
  };
  const started = await post('start', { publishable_key: DEMO_PK, phone });
  const msg = await w.nextMessage(phone);
  const code = msg.text.match(/\b([0-9]{6})\b/)?.[1];
  assert.ok(code, `no code in ${msg.text}`);
  const verified = await post('verify', { publishable_key: DEMO_PK, session: started.session, code });
  assert.equal(verified.status, 'verified');
  live = { token: verified.token, phone, key: w.secrets.instances[DEMO].token_keys.k1, aud: DEMO, iss: w.url };
});
after(async () => {
  await w?.stop();
});

test('the Worker token is what the examples assume: HS256, kid k1, claims in order', () => {
  const [h, c] = live.token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url')));
  assert.deepEqual(h, { alg: 'HS256', typ: 'JWT', kid: 'k1' });
  assert.deepEqual(Object.keys(c), ['iss', 'sub', 'aud', 'jti', 'iat', 'exp']);
  assert.deepEqual([c.iss, c.sub, c.aud, c.exp - c.iat], [live.iss, live.phone, DEMO, 600]);
});

test('the known-answer token is valid before its exp, so refusing it below is about expiry', async () => {
  const { payload } = await jwtVerify(KAT.token, new TextEncoder().encode(KAT.key), {
    algorithms: ['HS256'], audience: KAT.aud, issuer: KAT.iss, currentDate: new Date(1767225700 * 1000),
  });
  assert.equal(payload.sub, '20123456789');
  assert.ok(Date.now() / 1000 > payload.exp);
});

for (const name of Object.keys(EXAMPLES)) {
  describe(`${name} example`, () => {
    /** Asserts a refusal: exit 1, nothing on stdout, the library's error matching `why`. */
    const refused = (r, why) => {
      assert.equal(r.code, 1, `exit ${r.code}; stdout ${r.stdout}; stderr ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, why);
    };

    test('accepts the Worker token and prints the phone', async () => {
      const r = await verifyWith(name, live.token, live.key, live.aud, live.iss);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${live.phone}\n`);
    });

    test('picks the key by kid from a token_keys object (rotation)', async () => {
      const keys = JSON.stringify({ k0: 'an-older-key-0123456789abcdef0123', k1: live.key });
      const r = await verifyWith(name, live.token, keys, live.aud, live.iss);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${live.phone}\n`);
      const onlyOld = JSON.stringify({ k0: live.key });
      refused(await verifyWith(name, live.token, onlyOld, live.aud, live.iss), /kid/i);
    });

    test('refuses a flipped signature byte', async () => {
      refused(await verifyWith(name, flipSignatureByte(live.token), live.key, live.aud, live.iss), /signature/i);
    });

    test('refuses another audience and another issuer', async () => {
      refused(await verifyWith(name, live.token, live.key, OTHER, live.iss), /aud/i);
      refused(await verifyWith(name, live.token, live.key, live.aud, 'https://otp.example.com'), /iss/i);
    });

    test('refuses the token under another key', async () => {
      refused(await verifyWith(name, live.token, 'not-the-key-0123456789abcdef0123', live.aud, live.iss), /signature/i);
    });

    test('refuses an expired token', async () => {
      refused(await verifyWith(name, KAT.token, KAT.key, KAT.aud, KAT.iss), /expired/i);
    });

    test('refuses any algorithm but HS256, even signed with the right key', async () => {
      const hs512 = resign(live.token, { alg: 'HS512', typ: 'JWT', kid: 'k1' }, live.key, 'sha512');
      refused(await verifyWith(name, hs512, live.key, live.aud, live.iss), /alg/i);
      const [, claims] = live.token.split('.');
      const none = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT', kid: 'k1' }))}.${claims}.`;
      refused(await verifyWith(name, none, live.key, live.aud, live.iss), /./);
    });
  });
}
