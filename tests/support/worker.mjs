// Starts the built dev Worker (build/dev) on workerd through wrangler's unstable_startWorker,
// on 127.0.0.1 with a random port, with test instances and fresh secrets, and returns small
// helpers for calling its APIs. Kept out of tests/e2e so `node --test` does not run it.
import { unstable_DevEnv } from 'wrangler';
import { createRemoteJWKSet } from 'jose';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { waitFor } from './wait.mjs';
import { inboundTextPayload, metaSignature } from './fake-meta.mjs';

process.env.WRANGLER_SEND_METRICS = 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
process.env.WRANGLER_HIDE_BANNER = 'true';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The demo instance of [env.dev] and a second instance with its own token. */
export const DEMO = '11111111-1111-4111-8111-111111111111';
export const OTHER = '22222222-2222-4222-8222-222222222222';
/** An instance with short lockouts, so lockout tests need not wait a minute. */
export const QUICK = '33333333-3333-4333-8333-333333333333';
/** The demo instance's publishable key (widget API), and an origin on its allowlist. */
export const DEMO_PK = 'pk_test_edgeotpdemo0000000001';
export const SHOP_ORIGIN = 'https://shop.example';
/** The "another site" `make dev` serves (scripts/another-site.mjs), on the demo's list as in wrangler.toml. */
export const ANOTHER_SITE_ORIGINS = ['http://127.0.0.1:8789', 'http://localhost:8789'];

/** The demo instance's message templates, as in wrangler.toml. */
export const DEMO_TEMPLATES = {
  welcome: { text: 'Welcome to {app}, {name}!', text_by_locale: { 'pt-BR': 'Bem-vindo ao {app}, {name}!' } },
  order_shipped: { whatsapp: { name: 'order_shipped', language: 'en_US', parameters: ['name', 'order'] } },
};

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const random = (n) => randomBytes(n).toString('hex');

export function testInstances() {
  return [
    {
      id: DEMO,
      name: 'edge-otp demo',
      channel: 'outbox',
      business_number: '15550001234',
      whatsapp: { phone_number_id: '100000000000001' },
      link: { redirect_url: '/#verified' },
      templates: DEMO_TEMPLATES,
      widget: { publishable_key: DEMO_PK, allowed_origins: [SHOP_ORIGIN, 'https://*.brand.example', ...ANOTHER_SITE_ORIGINS] },
    },
    { id: OTHER, name: 'Other', channel: 'outbox' },
    {
      id: QUICK,
      name: 'Quick',
      channel: 'outbox',
      limits: { lockout_base: 2, lockout_max: 8, max_sends: 50 },
    },
  ];
}

/**
 * A fresh ES256 signing key as a private JWK (what TOKEN_SIGNING_KEYS holds per kid). Tests
 * sign their own tokens with it (jose's `importJWK(jwk, 'ES256')`); backends only ever see
 * its public half, from /.well-known/jwks.json.
 */
export function newSigningKey() {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
}

/** Fresh per-instance credentials (INSTANCE_SECRETS entry) for an instance; `token_keys` is for
 * instances that opt into HS256 (`token_alg = "HS256"`). */
export function instanceSecretsFor() {
  return {
    whatsapp_app_secret: random(16),
    whatsapp_verify_token: random(12),
    whatsapp_access_token: `EAAG${random(20)}`,
    twilio_auth_token: random(16),
    webhook_secret: `whsec_${randomBytes(32).toString('base64')}`,
    token_keys: { k1: random(32) },
  };
}

/**
 * Starts the Worker. Options: `persist` (a directory, to keep state across restarts),
 * `secrets` (to reuse the secrets of an earlier start), `omit` (binding names to leave out),
 * `flavour` ('dev', the default, or 'release': the deploy build, top-level config),
 * `extraInstances` (instance tables added to the test ones, with tokens and credentials made
 * for them), `credentials` ({instance: {...}} merged into the generated INSTANCE_SECRETS),
 * `vars` (extra vars, e.g. CALLBACK_RETRY_SCALE; an object value is a JSON var, e.g. MIDDLEWARE;
 * `DEV_CLOCK: 'manual'` gives the dev build a clock that `advanceClock` moves), `signingKeys`
 * (TOKEN_SIGNING_KEYS, {kid: private JWK}; kept in `secrets.signingKeys`, a fresh `k1` by default),
 * `bindings` (wrangler bindings put over the config's, e.g. a `ratelimit` with a higher limit),
 * `port` (0, the default, for a free one; a fixed one to restart a Worker on the same address),
 * `tokens` ({instance: API token} instead of a generated `t_…` one, e.g. a WhatOTP `sk_live_…`
 * key, which serves both APIs), `adminToken` (an operator token: ADMIN_TOKEN holds its SHA-256; without it the operator page
 * does not exist), `logLevel` (wrangler's: 'log' lets the Worker's own log lines through to
 * this process's console, where a test can read them).
 */
export async function startWorker({
  persist = false, secrets, omit = [], flavour = 'dev', extraInstances = [], credentials = {}, vars = {}, signingKeys,
  bindings: extraBindings = {}, port = 0, adminToken, logLevel = 'warn', tokens = {},
} = {}) {
  // Its own copy: `make dev` watches .wrangler.local.toml and must not see it change.
  const config = path.join(ROOT, '.wrangler.test.toml');
  if (!existsSync(path.join(ROOT, `build/${flavour}/index.js`))) {
    throw new Error(`build the Worker first: bash scripts/build.sh ${flavour}`);
  }
  // wrangler.toml without [build], written fresh so a binding added there is never missed.
  execFileSync('bash', [path.join(ROOT, 'scripts/wrangler-local.sh'), '.wrangler.test.toml']);
  const instances = [...testInstances(), ...extraInstances];
  secrets ??= {
    pepper: random(32),
    tokens: Object.fromEntries(instances.map((i) => [i.id, tokens[i.id] ?? `t_${random(16)}`])),
    instances: Object.fromEntries(instances.map((i) => [i.id, { ...instanceSecretsFor(), ...credentials[i.id] }])),
  };
  if (signingKeys) secrets.signingKeys = signingKeys;
  const bindings = {
    ALLOW_LOOPBACK_CALLBACKS: { type: 'plain_text', value: 'true' },
    // [env.dev] turns the edge middleware on for `make dev`; tests get the plain service unless
    // they pass `vars.MIDDLEWARE` (an object) themselves.
    MIDDLEWARE: { type: 'plain_text', value: '' },
    ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [
      k,
      typeof v === 'object' ? { type: 'json', value: v } : { type: 'plain_text', value: String(v) },
    ])),
    INSTANCES: { type: 'json', value: instances },
    INSTANCE_SECRETS: { type: 'secret_text', value: JSON.stringify(secrets.instances) },
    OTP_PEPPER: { type: 'secret_text', value: secrets.pepper },
    // The deploy's ES256 token keys (docs/configuration.md), public at /.well-known/jwks.json.
    TOKEN_SIGNING_KEYS: { type: 'secret_text', value: JSON.stringify((secrets.signingKeys ??= { k1: newSigningKey() })) },
    DEV_API_TOKEN: { type: 'secret_text', value: secrets.tokens[DEMO] },
    // The edge middleware's cookie key (docs/middleware.md).
    COOKIE_KEY: { type: 'secret_text', value: (secrets.cookieKey ??= random(32)) },
    // The demo's WhatOTP test key (GET /dev/info `whatotp_key`), beside its API token.
    DEV_WHATOTP_KEY: { type: 'secret_text', value: (secrets.whatotpKey ??= `sk_test_${random(16)}`) },
    API_TOKENS: {
      type: 'secret_text',
      value: JSON.stringify(Object.fromEntries(Object.entries(secrets.tokens).map(([id, t]) => [
        id,
        id === DEMO ? [sha256(t), sha256(secrets.whatotpKey)] : [sha256(t)],
      ]))),
    },
  };
  if (adminToken) bindings.ADMIN_TOKEN = { type: 'secret_text', value: sha256(adminToken) };
  Object.assign(bindings, extraBindings);
  for (const name of omit) delete bindings[name];
  // wrangler's unstable_startWorker, with the runtime's own address noted as it comes up (see
  // Harness.directUrl).
  const devEnv = new unstable_DevEnv();
  let reloaded;
  const direct = new Promise((resolve) => { reloaded = resolve; });
  const onReloadComplete = devEnv.proxy.onReloadComplete.bind(devEnv.proxy);
  devEnv.proxy.onReloadComplete = (event) => {
    const u = event?.proxyData?.userWorkerUrl;
    if (u) reloaded(`${u.protocol}//${u.hostname}:${u.port}`);
    return onReloadComplete(event);
  };
  const worker = await devEnv.startWorker({
    config,
    env: flavour === 'dev' ? 'dev' : undefined,
    // An empty env file, so a developer's .dev.vars never leaks into a test.
    envFiles: [emptyEnvFile()],
    bindings,
    dev: {
      server: { hostname: '127.0.0.1', port },
      inspector: false,
      persist,
      watch: false,
      logLevel,
    },
  });
  const url = (await worker.url).toString().replace(/\/$/, '');
  const harness = new Harness(worker, url, secrets);
  harness.directUrl = await direct;
  return harness;
}

function emptyEnvFile() {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'edge-otp-env-')), 'empty.vars');
  writeFileSync(file, '');
  return file;
}

export class Harness {
  /**
   * `url` is what a client reaches: wrangler's local dev proxy in front of the runtime.
   * `directUrl` is the runtime itself (workerd's entry, as Cloudflare's edge would hand a
   * request to the Worker): for the few tests about how a connection ends (a body cut off by an
   * early answer), which the dev proxy, a local-only part, turns into its own 503.
   */
  constructor(worker, url, secrets) {
    this.worker = worker;
    this.url = url;
    this.secrets = secrets;
  }

  /** The Worker's public keys as a backend fetches them (jose's remote JWKS, for `jwtVerify`). */
  keySet(base = '') {
    this.keySets ??= new Map();
    if (!this.keySets.has(base)) this.keySets.set(base, createRemoteJWKSet(new URL(`${this.url}${base}/.well-known/jwks.json`)));
    return this.keySets.get(base);
  }

  /** fetch() against the Worker's loopback address. */
  fetch(p, init) {
    return fetch(this.url + p, init);
  }

  /** POST a Hypersender endpoint; `body` is JSON-encoded unless it is a string. */
  async hs(endpoint, body, { instance = DEMO, token = this.secrets.tokens[instance], headers = {} } = {}) {
    const res = await this.fetch(`/api/otp/v2/${instance}/${endpoint}`, {
      method: 'POST',
      headers: {
        Accept: 'application/json',
        'Content-Type': 'application/json',
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: await res.json() };
  }

  /**
   * What Meta posts when a user writes to `instance`'s WhatsApp number: a text message (the
   * fields of fake-meta's `inboundTextPayload`: `phoneNumberId`, `from`, `body`, ...) signed with
   * the instance's app secret (or `secret`). Resolves with the webhook's Response.
   */
  sendWhatsApp(instance, { secret = this.secrets.instances[instance]?.whatsapp_app_secret, ...message }) {
    const raw = JSON.stringify(inboundTextPayload(message));
    return this.fetch(`/webhooks/whatsapp/${instance}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': metaSignature(secret, raw) },
      body: raw,
    });
  }

  /** The dev outbox of a recipient, newest first. */
  async outbox(to) {
    const res = await this.fetch(`/dev/outbox?to=${encodeURIComponent(to)}`);
    return res.json();
  }

  /** Waits until the outbox holds a message for `to` newer than `after` messages; returns it. */
  async nextMessage(to, after = 0, timeoutMs = 5000) {
    const msgs = await waitFor(async () => {
      const m = await this.outbox(to);
      return m.length > after && m;
    }, { timeout: timeoutMs, what: `message ${after + 1} for ${to} in the dev outbox` });
    return msgs[0];
  }

  /**
   * Moves the Worker's clock `seconds` ahead (a dev build started with `vars: {DEV_CLOCK:
   * 'manual'}`): every clock reading in the Worker and its Durable Objects is that much later,
   * and the objects' alarms wake at least every second, so what fell due runs. Returns the
   * total offset in seconds.
   */
  async advanceClock(seconds) {
    const res = await this.fetch('/dev/clock', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ advance_seconds: seconds }),
    });
    const text = await res.text();
    if (res.status !== 200) {
      throw new Error(`POST /dev/clock answered ${res.status} (${text.slice(0, 200)}): this Worker has no dev clock (a dev build started with vars: {DEV_CLOCK: 'manual'} has one)`);
    }
    const { offset_seconds: offset } = JSON.parse(text);
    if (typeof offset !== 'number') throw new Error(`POST /dev/clock: no offset_seconds in ${text}`);
    return offset;
  }

  async stop() {
    await this.worker.dispose();
  }
}

/** A fresh random recipient in E.164 digits (country code 20, Egypt, as in the docs). */
export function newRecipient() {
  return `20${String(Math.floor(Math.random() * 1e9)).padStart(9, '0')}`;
}
