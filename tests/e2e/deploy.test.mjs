// scripts/deploy.sh (`make deploy`) against a fake wrangler that records what it was asked and
// plays a Cloudflare account from files (tests/support/fake-wrangler.mjs): nothing leaves the
// machine. What it proves: a first deploy puts every required secret, then deploys, and prints
// the webhook URLs and the backend's token; a second run rotates nothing; a new instance or a
// credential added to the state file is put without touching the rest; --rotate replaces only
// what it names; a configuration that cannot deploy stops before any wrangler call. The last
// test runs deploy.sh --dry-run with the real wrangler on the release build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../support/worker.mjs';
import { deployConfig } from '../support/deploy-config.mjs';

const run = promisify(execFile);
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const ACME = '9f1c2d3e-0000-4000-8000-000000000001';
const SHOP = '9f1c2d3e-0000-4000-8000-000000000002';
const SENDER = '9f1c2d3e-0000-4000-8000-000000000003';
const INSTANCES = `
[[vars.INSTANCES]]
id = "${ACME}"
name = "Acme"
channel = "whatsapp"
business_number = "15550001234"
whatsapp = { phone_number_id = "109876543210987" }

[[vars.INSTANCES]]
id = "${SHOP}"
name = "Shop"
channel = "twilio_sms"
twilio = { account_sid = "AC0123", from = "+15550001111" }
`;
const SENDER_INSTANCE = `
[[vars.INSTANCES]]
id = "${SENDER}"
name = "Own sender"
channel = "webhook"
webhook = { url = "https://sender.example/send" }
token_alg = "HS256"
`;
const REQUIRED = ['OTP_PEPPER', 'API_TOKENS', 'INSTANCE_SECRETS', 'TOKEN_SIGNING_KEYS'];

/** A fake account: its own directory, config, state directory and fake wrangler. */
function account({ instances = INSTANCES, vars = 'PUBLIC_URL = "https://otp.example.com"', ...rest } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-otp-deploy-'));
  const fake = path.join(dir, 'fake');
  fs.mkdirSync(fake);
  const wrangler = path.join(dir, 'wrangler');
  fs.writeFileSync(wrangler, `#!/bin/sh\nexec node ${JSON.stringify(path.join(ROOT, 'tests/support/fake-wrangler.mjs'))} "$@"\n`, { mode: 0o755 });
  const acct = {
    dir,
    fake,
    state: path.join(dir, 'state'),
    config: deployConfig(path.join(dir, 'cfg'), { instances, vars, ...rest }),
    /** Runs deploy.sh; resolves {code, stdout, stderr, calls} (calls: this run's only). */
    async deploy(...args) {
      const before = acct.calls().length;
      let r;
      try {
        r = { code: 0, ...(await run('bash', [path.join(ROOT, 'scripts/deploy.sh'), '--no-setup', '--config', acct.config, ...args], {
          env: { ...process.env, WRANGLER: wrangler, FAKE_WRANGLER_DIR: fake, DEPLOY_STATE_DIR: acct.state },
        })) };
      } catch (e) {
        r = { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
      return { ...r, calls: acct.calls().slice(before) };
    },
    calls() {
      const f = path.join(fake, 'calls.jsonl');
      return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
    },
    remote() {
      return JSON.parse(fs.readFileSync(path.join(fake, 'remote.json'), 'utf8'));
    },
    stateFile() {
      return path.join(acct.state, 'edge-otp.json');
    },
    readState() {
      return JSON.parse(fs.readFileSync(acct.stateFile(), 'utf8'));
    },
  };
  return acct;
}

/** Each call's command words: `secret bulk`, `deploy` (options and paths left out). */
const commands = (calls) => calls.map((c) => {
  const end = c.args.findIndex((a) => a.startsWith('-'));
  return c.args.slice(0, end < 0 ? undefined : end).filter((a) => !a.includes('/')).join(' ');
});
const bulk = (calls) => calls.filter((c) => c.args[0] === 'secret' && c.args[1] === 'bulk').map((c) => c.secrets);

test('a first deploy puts every required secret, deploys, and prints the webhook URLs and the token', async () => {
  const acct = account();
  const r = await acct.deploy();
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(commands(r.calls), ['whoami', 'secret list', 'secret bulk', 'deploy']);
  const [put] = bulk(r.calls);
  assert.deepEqual(Object.keys(put).sort(), ['API_TOKENS', 'COOKIE_KEY', 'INSTANCE_SECRETS', 'OTP_PEPPER', 'TOKEN_SIGNING_KEYS']);
  for (const name of REQUIRED) assert.ok(name in put, `${name} is put before the deploy`);
  assert.equal(r.calls.find((c) => c.secrets).fileMode, '600', 'the secrets file is private');
  // Every call names the configuration and its top-level environment.
  for (const c of r.calls.slice(1)) {
    assert.ok(c.args.includes(acct.config) && c.args.includes('--env='), c.args.join(' '));
  }

  assert.match(put.OTP_PEPPER, /^[0-9a-f]{64}$/);
  assert.match(put.COOKIE_KEY, /^[0-9a-f]{64}$/);
  assert.notEqual(put.OTP_PEPPER, put.COOKIE_KEY);
  // The token to hand to the backend is printed; API_TOKENS holds only its SHA-256.
  const tokens = JSON.parse(put.API_TOKENS);
  for (const id of [ACME, SHOP]) {
    const printed = new RegExp(`\\(${id}\\): Authorization: Bearer (eotp_[0-9a-f]{64})`).exec(r.stdout);
    assert.ok(printed, `the token of ${id} is printed`);
    assert.deepEqual(tokens[id], [sha256(printed[1])]);
    assert.doesNotMatch(put.API_TOKENS, new RegExp(printed[1]));
  }
  // Verification tokens: one ES256 key (a P-256 private JWK) under the default kid.
  const keys = JSON.parse(put.TOKEN_SIGNING_KEYS);
  assert.deepEqual(Object.keys(keys), ['k1']);
  const key = createPrivateKey({ key: keys.k1, format: 'jwk' });
  assert.equal(key.asymmetricKeyDetails.namedCurve, 'prime256v1');
  // Generated per instance: a callback signing secret each, Meta's verify token for WhatsApp.
  const inst = JSON.parse(put.INSTANCE_SECRETS);
  assert.match(inst[ACME].webhook_secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.match(inst[ACME].whatsapp_verify_token, /^[0-9a-f]{32}$/);
  assert.match(inst[SHOP].webhook_secret, /^whsec_/);
  assert.equal(inst[SHOP].whatsapp_verify_token, undefined);

  // What to paste into Meta and Twilio, from PUBLIC_URL.
  assert.match(r.stdout, new RegExp(`Callback URL  https://otp\\.example\\.com/webhooks/whatsapp/${ACME}\\n`));
  assert.match(r.stdout, new RegExp(`Verify token  ${inst[ACME].whatsapp_verify_token}\\n`));
  assert.match(r.stdout, new RegExp(`https://otp\\.example\\.com/webhooks/twilio/${SHOP}\\n`));
  assert.doesNotMatch(r.stdout, new RegExp(`webhooks/(twilio/${ACME}|whatsapp/${SHOP})`));
  assert.match(r.stdout, /https:\/\/otp\.example\.com\/\.well-known\/jwks\.json/);
  // What cannot be generated is named.
  assert.match(r.stdout, new RegExp(`Acme \\(${ACME}\\): whatsapp_access_token, whatsapp_app_secret`));
  assert.match(r.stdout, new RegExp(`Shop \\(${SHOP}\\): twilio_auth_token`));

  // The state file is private and holds what a later run merges into.
  assert.equal((fs.statSync(acct.stateFile()).mode & 0o777).toString(8), '600');
  const state = acct.readState();
  assert.equal(JSON.stringify(state.INSTANCE_SECRETS), put.INSTANCE_SECRETS);
  assert.equal(state.put.API_TOKENS, sha256(put.API_TOKENS));
  assert.equal(state.OTP_PEPPER, undefined, 'the pepper is never written down');
});

test('a second run rotates nothing: no secret is put, the Worker is deployed again', async () => {
  const acct = account();
  const first = await acct.deploy();
  assert.equal(first.code, 0, first.stderr);
  const remote = acct.remote();
  const again = await acct.deploy();
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(commands(again.calls), ['whoami', 'secret list', 'deploy']);
  assert.deepEqual(acct.remote(), remote);
  assert.doesNotMatch(again.stdout, /eotp_[0-9a-f]{64}/, 'an existing token is not printed again');
  assert.match(again.stdout, /<API token, tokens\.9f1c2d3e-0000-4000-8000-000000000001 in /);
});

test('each deploy records the widget it served, and hands the next deploy\'s build what was served before', async () => {
  const built = JSON.parse(fs.readFileSync(path.join(ROOT, 'www/widget/v0.1.0/sri.json'), 'utf8'));
  const acct = account();
  const first = await acct.deploy();
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(first.calls.find((c) => c.args[0] === 'deploy').deployedWidgets, {});
  assert.deepEqual(acct.readState().widgets, { [built.version]: built.files });
  const again = await acct.deploy();
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(again.calls.find((c) => c.args[0] === 'deploy').deployedWidgets, { [built.version]: built.files });
});

test('the build refuses a widget that changed under a version already deployed', async () => {
  const built = JSON.parse(fs.readFileSync(path.join(ROOT, 'www/widget/v0.1.0/sri.json'), 'utf8'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-otp-widgets-'));
  const build = async (deployed) => {
    const file = path.join(dir, 'deployed.json');
    fs.writeFileSync(file, JSON.stringify(deployed));
    try {
      await run('bash', [path.join(ROOT, 'scripts/build-widget.sh')], { env: { ...process.env, EDGE_OTP_DEPLOYED_WIDGETS: file } });
      return { code: 0 };
    } catch (e) {
      return { code: e.code, stderr: e.stderr };
    }
  };
  const changed = await build({ [built.version]: { ...built.files, 'edge_otp_widget_bg.wasm': 'sha384-another' } });
  assert.notEqual(changed.code, 0);
  assert.match(changed.stderr, new RegExp(`version ${built.version.replace(/\./g, '\\.')} was deployed with other files.*Raise version in crates/otp-widget/Cargo\\.toml`));
  // The same files again, or only other versions deployed before: the build goes on.
  assert.equal((await build({ [built.version]: built.files })).code, 0);
  assert.equal((await build({ '0.0.9': { 'edge-otp.js': 'sha384-old' } })).code, 0);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(ROOT, 'www/widget/v0.1.0/sri.json'), 'utf8')), built, 'the same bytes');
});

test('a new instance gets a token and credentials; the other instances keep theirs', async () => {
  const acct = account();
  assert.equal((await acct.deploy()).code, 0);
  const before = acct.remote();
  acct.config = deployConfig(path.join(acct.dir, 'cfg'), {
    instances: INSTANCES + SENDER_INSTANCE, vars: 'PUBLIC_URL = "https://otp.example.com"',
  });
  const r = await acct.deploy();
  assert.equal(r.code, 0, r.stderr);
  const [put] = bulk(r.calls);
  assert.deepEqual(Object.keys(put).sort(), ['API_TOKENS', 'INSTANCE_SECRETS']);
  const tokens = JSON.parse(put.API_TOKENS);
  const inst = JSON.parse(put.INSTANCE_SECRETS);
  for (const id of [ACME, SHOP]) {
    assert.deepEqual(tokens[id], JSON.parse(before.API_TOKENS)[id]);
    assert.deepEqual(inst[id], JSON.parse(before.INSTANCE_SECRETS)[id]);
  }
  assert.equal(tokens[SENDER].length, 1);
  // The webhook channel's signing secret, and an HS256 key for an instance that asks for HS256.
  assert.match(inst[SENDER].sender_secret, /^whsec_/);
  assert.match(inst[SENDER].token_keys.k1, /^[0-9a-f]{64}$/);
  assert.match(r.stdout, new RegExp(`HS256 token key k1 \\(the backend checks tokens with it\\): ${inst[SENDER].token_keys.k1}`));
  assert.equal(acct.remote().OTP_PEPPER, before.OTP_PEPPER);
  assert.equal(acct.remote().TOKEN_SIGNING_KEYS, before.TOKEN_SIGNING_KEYS);
});

test('a provider credential added to the state file is put on the next run, with the rest unchanged', async () => {
  const acct = account();
  assert.equal((await acct.deploy()).code, 0);
  const before = JSON.parse(acct.remote().INSTANCE_SECRETS);
  const state = acct.readState();
  state.INSTANCE_SECRETS[ACME].whatsapp_access_token = 'EAAGtest';
  state.INSTANCE_SECRETS[ACME].whatsapp_app_secret = 'app-secret';
  fs.writeFileSync(acct.stateFile(), JSON.stringify(state));
  const r = await acct.deploy();
  assert.equal(r.code, 0, r.stderr);
  const [put] = bulk(r.calls);
  assert.deepEqual(Object.keys(put), ['INSTANCE_SECRETS']);
  assert.deepEqual(JSON.parse(put.INSTANCE_SECRETS), {
    ...before,
    [ACME]: { ...before[ACME], whatsapp_access_token: 'EAAGtest', whatsapp_app_secret: 'app-secret' },
  });
  assert.doesNotMatch(r.stdout, /Acme \(.*\): whatsapp_access_token/, 'nothing is left to provide for Acme');
});

test('--rotate replaces only the secrets it names', async () => {
  const acct = account();
  assert.equal((await acct.deploy()).code, 0);
  const before = acct.remote();
  const r = await acct.deploy('--rotate', 'OTP_PEPPER,API_TOKENS');
  assert.equal(r.code, 0, r.stderr);
  const [put] = bulk(r.calls);
  assert.deepEqual(Object.keys(put).sort(), ['API_TOKENS', 'OTP_PEPPER']);
  assert.notEqual(put.OTP_PEPPER, before.OTP_PEPPER);
  const printed = new RegExp(`\\(${ACME}\\): Authorization: Bearer (eotp_[0-9a-f]{64})`).exec(r.stdout);
  assert.deepEqual(JSON.parse(put.API_TOKENS)[ACME], [sha256(printed[1])]);
  assert.notDeepEqual(JSON.parse(put.API_TOKENS)[ACME], JSON.parse(before.API_TOKENS)[ACME]);

  const wrong = await acct.deploy('--rotate', 'PEPPER');
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /--rotate: PEPPER is not one of OTP_PEPPER, COOKIE_KEY, API_TOKENS, INSTANCE_SECRETS, TOKEN_SIGNING_KEYS/);
  assert.deepEqual(wrong.calls, []);
});

test('a signing key rotation with two keys live: add k2, switch token_kid, retire k1', async () => {
  const acct = account();
  assert.equal((await acct.deploy()).code, 0);
  const k1 = JSON.parse(acct.remote().TOKEN_SIGNING_KEYS).k1;
  // (1) k2 is published beside k1; nothing else changes.
  const add = await acct.deploy('--add-signing-key', 'k2');
  assert.equal(add.code, 0, add.stderr);
  const [put] = bulk(add.calls);
  assert.deepEqual(Object.keys(put), ['TOKEN_SIGNING_KEYS']);
  const keys = JSON.parse(put.TOKEN_SIGNING_KEYS);
  assert.deepEqual(Object.keys(keys), ['k1', 'k2']);
  assert.deepEqual(keys.k1, k1);
  // (2) instances sign with k2: the key exists, nothing is put.
  acct.config = deployConfig(path.join(acct.dir, 'cfg'), {
    instances: INSTANCES.replaceAll('name = "Acme"', 'name = "Acme"\ntoken_kid = "k2"').replaceAll('name = "Shop"', 'name = "Shop"\ntoken_kid = "k2"'),
    vars: 'PUBLIC_URL = "https://otp.example.com"',
  });
  assert.deepEqual(bulk((await acct.deploy()).calls), []);
  // (3) k1 is deleted from the state file: the set is put without it.
  const state = acct.readState();
  delete state.TOKEN_SIGNING_KEYS.k1;
  fs.writeFileSync(acct.stateFile(), JSON.stringify(state));
  const retire = await acct.deploy();
  assert.deepEqual(Object.keys(JSON.parse(bulk(retire.calls)[0].TOKEN_SIGNING_KEYS)), ['k2']);

  const bad = await acct.deploy('--add-signing-key', 'k 3');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--add-signing-key: a kid is 1-64 letters/);
});

test('secrets set without this checkout are left alone; only the missing ones are made', async () => {
  const acct = account();
  const mine = { OTP_PEPPER: 'p'.repeat(64), API_TOKENS: '{"x":["y"]}', INSTANCE_SECRETS: '{}' };
  fs.writeFileSync(path.join(acct.fake, 'remote.json'), JSON.stringify(mine));
  const r = await acct.deploy();
  assert.equal(r.code, 0, r.stderr);
  const [put] = bulk(r.calls);
  assert.deepEqual(Object.keys(put).sort(), ['COOKIE_KEY', 'TOKEN_SIGNING_KEYS']);
  assert.deepEqual({ ...acct.remote(), COOKIE_KEY: undefined, TOKEN_SIGNING_KEYS: undefined }, { ...mine, COOKIE_KEY: undefined, TOKEN_SIGNING_KEYS: undefined });
  assert.match(r.stderr, /API_TOKENS: set, but not by this checkout .*--rotate API_TOKENS/);
});

test('a deploy that is not logged in stops with one line, before any secret or upload', async () => {
  const acct = account();
  fs.writeFileSync(path.join(acct.fake, 'logged-out'), '');
  const r = await acct.deploy();
  assert.equal(r.code, 1);
  assert.deepEqual(commands(r.calls), ['whoami']);
  assert.match(r.stderr, /^\[deploy\] not logged in to Cloudflare: run `npx wrangler login` \(or set CLOUDFLARE_API_TOKEN/m);
  assert.equal(fs.existsSync(acct.stateFile()), false);
});

// A configuration that cannot deploy stops before wrangler is asked anything.
const refused = [
  { why: 'no instance', opts: { instances: '' }, message: /has no instance: add a \[\[vars\.INSTANCES\]\] table/ },
  {
    why: 'a placeholder KV id',
    opts: { replace: [['binding = "CHALLENGES"\n', 'binding = "CHALLENGES"\nid = "replace-with-your-kv-namespace-id"\n']] },
    message: /the CHALLENGES namespace id is a placeholder/,
  },
  { why: 'PUBLIC_URL with a path', opts: { vars: 'PUBLIC_URL = "https://otp.example.com/otp"' }, message: /PUBLIC_URL must be an https origin without a path/ },
  {
    why: 'the middleware on workers.dev, behind assets',
    opts: { vars: `MIDDLEWARE = { instance = "${ACME}", protected = ["/members"] }` },
    message: /MIDDLEWARE is set \(docs\/middleware\.md\): set run_worker_first = true under \[assets\]; add a route for the site's hostname \(routes = \[\.\.\.\]\); set workers_dev = false/,
  },
];
for (const { why, opts, message } of refused) {
  test(`a configuration with ${why} stops before any wrangler call`, async () => {
    const acct = account(opts);
    const r = await acct.deploy();
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, message);
    assert.deepEqual(r.calls, []);
  });
}

test('behind the middleware, the webhook URLs are under its prefix on the site\'s hostname', async () => {
  const acct = account({
    vars: `MIDDLEWARE = { instance = "${ACME}", protected = ["/members"] }`,
    top: 'routes = [{ pattern = "www.example.com/*", zone_name = "example.com" }]\nworkers_dev = false',
    replace: [[/run_worker_first = \[[^\]]*\]\n/.exec(fs.readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8'))[0], 'run_worker_first = true\n']],
  });
  const r = await acct.deploy();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Callback URL  https://www\\.example\\.com/_otp/webhooks/whatsapp/${ACME}\\n`));
  assert.match(r.stdout, /Set PUBLIC_URL under \[vars\]/);
});

test('without PUBLIC_URL or routes, the URLs are the workers.dev address wrangler printed', async () => {
  const acct = account({ vars: '' });
  const r = await acct.deploy();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`https://edge-otp\\.acme-ops\\.workers\\.dev/webhooks/twilio/${SHOP}\\n`));
});

test('deploy.sh --dry-run builds the bundle with the real wrangler, offline, and puts nothing', async () => {
  for (const f of ['build/release/index.js', 'build/release-assets/index.html']) {
    assert.ok(fs.existsSync(path.join(ROOT, f)), `build the release Worker first (bash scripts/build.sh release): ${f}`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-otp-dry-'));
  const config = deployConfig(path.join(dir, 'cfg'), { instances: INSTANCES, vars: 'PUBLIC_URL = "https://otp.example.com"' });
  const outdir = path.join(dir, 'out');
  const { stdout } = await run('bash', [path.join(ROOT, 'scripts/deploy.sh'), '--no-setup', '--dry-run', '--config', config, '--outdir', outdir], {
    env: { ...process.env, DEPLOY_STATE_DIR: path.join(dir, 'state'), WRANGLER: '' },
  });
  assert.match(stdout, /Dry run: edge-otp builds and wrangler accepts its configuration/);
  assert.match(stdout, new RegExp(`https://otp\\.example\\.com/webhooks/whatsapp/${ACME}`));
  const files = fs.readdirSync(outdir);
  assert.ok(files.includes('index.js'), files.join(' '));
  assert.ok(files.some((f) => f.endsWith('.wasm')), files.join(' '));
  assert.equal(fs.existsSync(path.join(dir, 'state')), false, 'a dry run writes no state');
});
