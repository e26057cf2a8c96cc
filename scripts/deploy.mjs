// `make deploy` (run through scripts/deploy.sh, which checks Rust, Node and the wasm target
// first): puts the secrets a deploy needs, generating what can be generated, then runs
// `wrangler deploy` and prints what to paste into Meta and Twilio and what the backend gets.
//
// Idempotent: a secret that is set stays as it is unless `--rotate NAME` asks. The JSON secrets
// (API_TOKENS, INSTANCE_SECRETS, TOKEN_SIGNING_KEYS) cannot be read back from Cloudflare, so the
// values it put are kept in a state file (.deploy/<worker>.json, mode 600, git-ignored): the next
// run adds what a new instance needs to them, and puts one again only when it changed (say,
// after you added a provider credential to its INSTANCE_SECRETS). docs/deploy.md has the rest.
//
// Options: --dry-run (no network: checks, then `wrangler deploy --dry-run --outdir DIR`),
// --outdir DIR, --rotate NAME[,NAME...], --add-signing-key KID, --config FILE (default
// wrangler.toml).
// Environment: WRANGLER (the wrangler to run, default node_modules/.bin/wrangler),
// DEPLOY_STATE_DIR (default .deploy).
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SECRETS = ['OTP_PEPPER', 'COOKIE_KEY', 'API_TOKENS', 'INSTANCE_SECRETS', 'TOKEN_SIGNING_KEYS'];
/** Secrets that are JSON objects this script merges into (kept in the state file). */
const MERGED = ['API_TOKENS', 'INSTANCE_SECRETS', 'TOKEN_SIGNING_KEYS'];
/** INSTANCE_SECRETS fields this script generates; `--rotate INSTANCE_SECRETS` renews only these. */
const GENERATED_FIELDS = ['webhook_secret', 'whatsapp_verify_token', 'sender_secret', 'token_keys'];
const PLACEHOLDER_KV_ID = /^replace-with/;

class Stop extends Error {}
const stop = (msg) => { throw new Stop(msg); };
const say = (msg = '') => process.stdout.write(`${msg}\n`);
const warn = (msg) => process.stderr.write(`[deploy] warning: ${msg}\n`);
const info = (msg) => process.stderr.write(`[deploy] ${msg}\n`);

// ---- generated values -----------------------------------------------------------------------

const hex = (n) => randomBytes(n).toString('hex');
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const whsec = () => `whsec_${randomBytes(32).toString('base64')}`;
/** A new API token: the backend sends it as `Authorization: Bearer`; API_TOKENS holds its SHA-256. */
const apiToken = () => `eotp_${hex(32)}`;
/**
 * A verification token signing key in the format the Worker reads (src/config.rs,
 * otp-core web/token.rs `parse_signing_keys`): ES256 keys are `TOKEN_SIGNING_KEYS.<kid>`, a
 * P-256 private JWK; an instance with `token_alg = "HS256"` signs with
 * `INSTANCE_SECRETS.<id>.token_keys.<kid>`, a string of at least 32 bytes. Change these two
 * when the formats change.
 */
const es256Key = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const hs256Key = () => hex(32);

// ---- arguments and configuration ------------------------------------------------------------

function parseArgs(argv) {
  const opts = { dryRun: false, outdir: null, rotate: new Set(), addKids: [], config: 'wrangler.toml' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => argv[++i] ?? stop(`${a} needs a value`);
    if (a === '--dry-run') opts.dryRun = true;
    else if (a === '--outdir') opts.outdir = value();
    else if (a === '--config' || a === '-c') opts.config = value();
    else if (a === '--rotate') {
      for (const name of value().split(',').map((s) => s.trim()).filter(Boolean)) {
        if (!SECRETS.includes(name)) stop(`--rotate: ${name} is not one of ${SECRETS.join(', ')}`);
        opts.rotate.add(name);
      }
    } else if (a === '--add-signing-key') {
      const kid = value();
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(kid)) stop(`--add-signing-key: a kid is 1-64 letters, digits, '.', '_' or '-' (${kid})`);
      opts.addKids.push(kid);
    } else if (a === '--no-setup') { /* scripts/deploy.sh's */ } else stop(`unknown option ${a} (see scripts/deploy.sh)`);
  }
  if (opts.dryRun && (opts.rotate.size || opts.addKids.length)) stop('a dry run puts no secret: --rotate and --add-signing-key need a real run');
  opts.config = path.resolve(opts.config);
  return opts;
}

/** A var that may be written as TOML (an object) or as a JSON string. */
function jsonVar(v, name) {
  if (typeof v !== 'string') return v;
  if (v.trim() === '') return undefined;
  try {
    return JSON.parse(v);
  } catch {
    return stop(`wrangler.toml: ${name} is not valid JSON`);
  }
}

/** The deploy (top-level) configuration, read by wrangler's own parser, checked for a deploy. */
async function readDeployConfig(file) {
  if (!fs.existsSync(file)) stop(`no ${path.basename(file)} at ${file}`);
  const { experimental_readRawConfig: readRawConfig } = await import('wrangler');
  const { rawConfig: raw } = readRawConfig({ config: file });
  const name = raw.name ?? stop(`${path.basename(file)} has no name`);
  const vars = raw.vars ?? {};
  const instances = jsonVar(vars.INSTANCES, 'INSTANCES') ?? [];
  if (!Array.isArray(instances) || instances.length === 0) {
    stop(`${path.basename(file)} has no instance: add a [[vars.INSTANCES]] table (docs/configuration.md)`);
  }
  for (const [i, inst] of instances.entries()) {
    if (typeof inst?.id !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(inst.id)) {
      stop(`instance ${i + 1}: id must be a UUID (e.g. from \`node -p 'crypto.randomUUID()'\`)`);
    }
    if (chain(inst).includes('outbox')) {
      warn(`instance ${inst.name ?? inst.id} uses the outbox channel: on a deploy nothing it sends reaches a phone (it is for make dev)`);
    }
  }
  const kv = (raw.kv_namespaces ?? []).find((k) => k.binding === 'CHALLENGES');
  if (!kv) stop(`${path.basename(file)} has no [[kv_namespaces]] binding CHALLENGES`);
  if (kv.id && PLACEHOLDER_KV_ID.test(kv.id)) {
    stop(`${path.basename(file)}: the CHALLENGES namespace id is a placeholder: delete the id line (wrangler creates the namespace) or put a real id`);
  }
  const publicUrl = typeof vars.PUBLIC_URL === 'string' && vars.PUBLIC_URL.trim() ? vars.PUBLIC_URL.trim().replace(/\/$/, '') : null;
  if (publicUrl && !/^https:\/\/[a-z0-9.-]+(:\d+)?$/i.test(publicUrl)) {
    stop(`PUBLIC_URL must be an https origin without a path, like https://otp.example.com (it is ${publicUrl})`);
  }
  const middleware = jsonVar(vars.MIDDLEWARE, 'MIDDLEWARE');
  const routes = raw.routes ?? (raw.route ? [raw.route] : []);
  if (middleware) {
    // In front of a site every path must reach the Worker, on the site's hostname only.
    const problems = [];
    if (raw.assets?.run_worker_first !== true) problems.push('set run_worker_first = true under [assets]');
    if (routes.length === 0) problems.push('add a route for the site\'s hostname (routes = [...])');
    if (raw.workers_dev !== false) problems.push('set workers_dev = false');
    if (problems.length) stop(`MIDDLEWARE is set (docs/middleware.md): ${problems.join('; ')}`);
  }
  return { name, instances, publicUrl, middleware, routes, kvId: kv.id ?? null };
}

function chain(inst) {
  return [inst.channel, ...(inst.fallback ?? [])];
}
const usesWhatsapp = (inst) => chain(inst).includes('whatsapp') || Boolean(inst.business_number) || Boolean(inst.whatsapp);
const usesTwilio = (inst) => chain(inst).some((c) => c === 'twilio_sms' || c === 'twilio_whatsapp');
const label = (inst) => `${inst.name ?? 'instance'} (${inst.id})`;
const tokenAlg = (inst) => inst.token_alg ?? 'ES256';
const tokenKid = (inst) => inst.token_kid ?? 'k1';

// ---- the state file -------------------------------------------------------------------------

function stateFile(name) {
  return path.resolve(process.env.DEPLOY_STATE_DIR || path.join(ROOT, '.deploy'), `${name}.json`);
}

function loadState(file) {
  if (!fs.existsSync(file)) return { put: {}, tokens: {} };
  const mode = fs.statSync(file).mode & 0o077;
  if (mode) warn(`${file} can be read by other users: chmod 600 it`);
  try {
    const s = JSON.parse(fs.readFileSync(file, 'utf8'));
    return { ...s, put: s.put ?? {}, tokens: s.tokens ?? {} };
  } catch (e) {
    return stop(`${file} is not valid JSON (${e.message}): fix it, or move it away to start afresh`);
  }
}

function saveState(file, state) {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const body = {
    about: 'made by scripts/deploy.sh: the secrets it put (they cannot be read back from Cloudflare). Private: it holds credentials. Add provider credentials under INSTANCE_SECRETS.<instance>, then run make deploy again (docs/deploy.md).',
    ...state,
  };
  fs.writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

// ---- the plan: which secrets to put ---------------------------------------------------------

/**
 * Decides the secrets to put. `remote`: the names already set on the Worker. Returns the values
 * to put, what was generated (to show once), and what the operator still has to provide.
 */
function plan({ instances, remote, state, rotate, addKids, file }) {
  const put = {};
  const shown = [];
  const todo = [];
  const keep = (name, why) => info(`${name}: ${why}`);

  for (const name of ['OTP_PEPPER', 'COOKIE_KEY']) {
    if (!remote.has(name) || rotate.has(name)) put[name] = hex(32);
    else keep(name, 'set, kept');
  }

  const merged = {
    API_TOKENS(base) {
      for (const inst of instances) {
        if (base[inst.id]?.length) continue;
        const token = apiToken();
        base[inst.id] = [sha256(token)];
        state.tokens[inst.id] = token;
        shown.push({ inst, what: 'API token', value: token });
      }
      return base;
    },
    TOKEN_SIGNING_KEYS(base) {
      // The kids instances sign with, and any published ahead of a rotation (--add-signing-key).
      const kids = new Set([...instances.filter((i) => tokenAlg(i) === 'ES256').map(tokenKid), ...addKids]);
      if (kids.size === 0) kids.add('k1');
      for (const kid of kids) base[kid] ??= es256Key();
      return base;
    },
    INSTANCE_SECRETS(base) {
      for (const inst of instances) {
        const s = (base[inst.id] ??= {});
        const gen = (field, make, what) => {
          if (s[field] !== undefined) return;
          s[field] = make();
          shown.push({ inst, what, value: s[field] });
        };
        gen('webhook_secret', whsec, 'callback signing secret (webhook_secret: checks the signed callbacks)');
        if (usesWhatsapp(inst)) gen('whatsapp_verify_token', () => hex(16), 'WhatsApp verify token (for Meta\'s webhook form)');
        if (chain(inst).includes('webhook')) gen('sender_secret', whsec, 'sender secret (checks the messages the webhook channel posts)');
        if (tokenAlg(inst) === 'HS256' && !s.token_keys?.[tokenKid(inst)]) {
          s.token_keys = { ...s.token_keys, [tokenKid(inst)]: hs256Key() };
          shown.push({ inst, what: `HS256 token key ${tokenKid(inst)} (the backend checks tokens with it)`, value: s.token_keys[tokenKid(inst)] });
        }
        const need = [];
        if (chain(inst).includes('whatsapp')) need.push('whatsapp_access_token');
        if (usesWhatsapp(inst)) need.push('whatsapp_app_secret');
        if (usesTwilio(inst)) need.push('twilio_auth_token');
        if (inst.widget?.turnstile) need.push('turnstile_secret');
        const lacking = need.filter((f) => !s[f]);
        if (lacking.length) todo.push({ inst, lacking });
      }
      return base;
    },
  };

  for (const name of MERGED) {
    let base;
    if (rotate.has(name)) {
      base = {};
      if (name === 'INSTANCE_SECRETS') {
        // Renew what this script made; keep the provider credentials the operator added.
        for (const [id, s] of Object.entries(state[name] ?? {})) {
          base[id] = Object.fromEntries(Object.entries(s).filter(([k]) => !GENERATED_FIELDS.includes(k)));
        }
      }
      if (name === 'API_TOKENS') state.tokens = {};
    } else if (state[name]) {
      base = structuredClone(state[name]);
    } else if (remote.has(name)) {
      keep(name, `set, but not by this checkout (${file} does not hold it): left as it is; --rotate ${name} replaces it with one this script manages`);
      continue;
    } else {
      base = {};
    }
    const value = merged[name](base);
    state[name] = value;
    const json = JSON.stringify(value);
    if (!remote.has(name) || rotate.has(name) || state.put[name] !== sha256(json)) put[name] = json;
    else keep(name, 'unchanged, kept');
  }
  return { put, shown, todo };
}

// ---- wrangler --------------------------------------------------------------------------------

function wranglerCmd() {
  return process.env.WRANGLER || path.join(ROOT, 'node_modules/.bin/wrangler');
}

/** Runs wrangler and returns {status, stdout, stderr}; `echo` also shows its output as it comes. */
function wrangler(args, { echo = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(wranglerCmd(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; if (echo) process.stderr.write(c); });
    child.stderr.on('data', (c) => { stderr += c; if (echo) process.stderr.write(c); });
    child.on('error', (e) => reject(new Stop(`cannot run wrangler (${wranglerCmd()}): ${e.message}; run scripts/setup.sh --build`)));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const lastLines = (r) => `${r.stderr}\n${r.stdout}`.trim().split('\n').filter((l) => l.trim()).slice(-6).join('\n');

async function checkLogin() {
  const r = await wrangler(['whoami', '--json']);
  let who = null;
  try {
    who = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  } catch { /* not JSON: not logged in, or an older wrangler */ }
  if (r.status !== 0 || !who?.loggedIn) {
    stop('not logged in to Cloudflare: run `npx wrangler login` (or set CLOUDFLARE_API_TOKEN, and CLOUDFLARE_ACCOUNT_ID when the token sees several accounts), then run this again');
  }
  info(`logged in${who.email ? ` as ${who.email}` : ''}`);
}

/** The names of the secrets set on the Worker; an empty set when the Worker does not exist yet. */
async function remoteSecrets(common) {
  const r = await wrangler(['secret', 'list', '--format', 'json', ...common]);
  if (r.status !== 0) {
    if (/not found\.[\s\S]*If this is a new Worker/.test(r.stdout + r.stderr)) {
      info('the Worker does not exist yet: this is its first deploy');
      return new Set();
    }
    stop(`wrangler secret list failed:\n${lastLines(r)}`);
  }
  const json = r.stdout.slice(r.stdout.indexOf('['));
  try {
    return new Set(JSON.parse(json).map((s) => s.name));
  } catch {
    return stop(`wrangler secret list printed no JSON list:\n${lastLines(r)}`);
  }
}

async function putSecrets(put, common) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-otp-secrets-'));
  const file = path.join(dir, 'secrets.json');
  try {
    fs.writeFileSync(file, JSON.stringify(put), { mode: 0o600 });
    const r = await wrangler(['secret', 'bulk', file, ...common], { echo: true });
    if (r.status !== 0) stop('wrangler secret bulk failed (above): nothing is deployed yet; run this again');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- where it answers -----------------------------------------------------------------------

/** Notes the widget version this deploy served and its files' hashes (www/widget/v<version>/sri.json). */
function recordWidget(state) {
  const dir = path.join(ROOT, 'www/widget');
  const current = /\.\/v([^/]+)\/edge-otp\.js/.exec(fs.existsSync(path.join(dir, 'edge-otp.js')) ? fs.readFileSync(path.join(dir, 'edge-otp.js'), 'utf8') : '');
  if (!current) return warn('no widget in www/widget: nothing recorded');
  const sri = JSON.parse(fs.readFileSync(path.join(dir, `v${current[1]}`, 'sri.json'), 'utf8'));
  state.widgets = { ...state.widgets, [sri.version]: sri.files };
}

function baseUrl(cfg, deployOutput) {
  if (cfg.publicUrl) return cfg.publicUrl;
  for (const r of cfg.routes) {
    const pattern = typeof r === 'string' ? r : r.pattern;
    const host = pattern?.replace(/^https?:\/\//, '').replace(/\/.*$/, '').replace(/^\*\.?/, '');
    if (host) return `https://${host}`;
  }
  const dev = /https:\/\/[a-z0-9.-]+\.workers\.dev/i.exec(deployOutput ?? '');
  return dev ? dev[0] : null;
}

/** Where the service's own routes are: the middleware moves them under its prefix or hostname. */
function serviceUrl(cfg, base) {
  const mw = cfg.middleware;
  if (!mw) return base;
  if (mw.hostname) return `https://${mw.hostname}`;
  return `${base}${mw.prefix ?? '/_otp'}`;
}

function summary(cfg, { base, state, shown, todo, file, dryRun }) {
  const svc = base ? serviceUrl(cfg, base) : '<your Worker\'s address>';
  say();
  say(dryRun ? `Dry run: ${cfg.name} builds and wrangler accepts its configuration (nothing was uploaded).`
    : `${cfg.name} is deployed${base ? ` at ${base}` : ''}.`);
  if (!cfg.publicUrl) {
    say('  Set PUBLIC_URL under [vars] to the address you give out: Twilio signs the exact URL it calls,');
    say('  and it is the issuer (iss) of verification tokens. Then run make deploy again.');
  }
  const wa = cfg.instances.filter(usesWhatsapp);
  const tw = cfg.instances.filter(usesTwilio);
  if (wa.length) {
    say();
    say('Meta (your app > WhatsApp > Configuration > Webhook; subscribe to "messages"):');
    for (const inst of wa) {
      say(`  ${label(inst)}`);
      say(`    Callback URL  ${svc}/webhooks/whatsapp/${inst.id}`);
      const verify = state.INSTANCE_SECRETS?.[inst.id]?.whatsapp_verify_token;
      say(`    Verify token  ${verify ?? `INSTANCE_SECRETS.${inst.id}.whatsapp_verify_token`}`);
    }
  }
  if (tw.length) {
    say();
    say('Twilio (Phone Numbers > your number > Messaging > "A message comes in", HTTP POST):');
    for (const inst of tw) say(`  ${label(inst)}  ${svc}/webhooks/twilio/${inst.id}`);
  }
  say();
  say('Your backend:');
  say(`  Hypersender OTP API  ${svc}/api/otp/v2/<instance>/...   WhatOTP API  ${svc}/v1/...`);
  for (const inst of cfg.instances) {
    const fresh = shown.find((s) => s.inst === inst && s.what === 'API token');
    const where = state.tokens?.[inst.id] ? `tokens.${inst.id} in ${file}` : 'made with scripts/new-token.sh';
    say(`  ${label(inst)}: Authorization: Bearer ${fresh ? `${fresh.value}   (new: hand it to the backend)` : `<API token, ${where}>`}`);
    say(`    verification tokens: ${tokenAlg(inst) === 'HS256'
      ? `HS256 with INSTANCE_SECRETS.${inst.id}.token_keys.${tokenKid(inst)}`
      : `ES256, keys at ${svc}/.well-known/jwks.json`}, aud ${inst.id}, iss ${base ? svc : 'PUBLIC_URL'}`);
  }
  const made = shown.filter((s) => s.what !== 'API token');
  if (made.length) {
    say();
    say(`Made by this run (kept in ${file}):`);
    for (const s of made) say(`  ${label(s.inst)}: ${s.what}: ${s.value}`);
  }
  if (todo.length) {
    say();
    say(`Still to provide, in INSTANCE_SECRETS of ${file}, then make deploy again:`);
    for (const t of todo) say(`  ${label(t.inst)}: ${t.lacking.join(', ')}`);
  }
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const cfg = await readDeployConfig(opts.config);
  const common = ['--config', opts.config, '--env='];
  const file = stateFile(cfg.name);
  info(`${cfg.name}: ${cfg.instances.length} instance(s), KV namespace ${cfg.kvId ?? 'created by wrangler on the first deploy'}`);

  if (opts.dryRun) {
    const outdir = path.resolve(opts.outdir ?? path.join(ROOT, 'build/deploy-dry-run'));
    const r = await wrangler(['deploy', '--dry-run', '--outdir', outdir, ...common], { echo: true });
    if (r.status !== 0) stop('wrangler deploy --dry-run failed (above)');
    const state = fs.existsSync(file) ? loadState(file) : { tokens: {} };
    summary(cfg, { base: baseUrl(cfg, ''), state, shown: [], todo: [], file, dryRun: true });
    say(`The bundle is in ${outdir}. Secrets are checked and put by a run without --dry-run.`);
    return;
  }

  await checkLogin();
  const remote = await remoteSecrets(common);
  const state = loadState(file);
  const { put, shown, todo } = plan({ instances: cfg.instances, remote, state, rotate: opts.rotate, addKids: opts.addKids, file });
  // Saved before anything is put: a failed put loses nothing, the next run puts the same values.
  saveState(file, state);
  const names = Object.keys(put);
  if (names.length) {
    info(`putting ${names.join(', ')}`);
    await putSecrets(put, common);
    for (const name of MERGED) if (put[name]) state.put[name] = sha256(put[name]);
    saveState(file, state);
  } else {
    info('every secret is set: none put');
  }

  // The widget versions deployed before, for the build's check (scripts/build-widget.sh).
  const widgets = path.join(path.dirname(file), `${cfg.name}.widgets.json`);
  fs.writeFileSync(widgets, `${JSON.stringify(state.widgets ?? {})}\n`);
  process.env.EDGE_OTP_DEPLOYED_WIDGETS = widgets;
  const r = await wrangler(['deploy', ...common], { echo: true });
  if (r.status !== 0) stop('wrangler deploy failed (above); the secrets are in place, run this again once it is fixed');
  recordWidget(state);
  saveState(file, state);
  summary(cfg, { base: baseUrl(cfg, r.stdout + r.stderr), state, shown, todo, file, dryRun: false });
}

main().catch((e) => {
  if (!(e instanceof Stop)) throw e;
  process.stderr.write(`[deploy] ${e.message}\n`);
  process.exit(1);
});