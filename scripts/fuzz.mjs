// `make fuzz` (run through scripts/fuzz.sh, which installs schemathesis and builds the dev
// Worker first): starts the dev Worker on 127.0.0.1 (a random port) with a fuzz instance whose
// channels are fake providers on loopback (WhatsApp Cloud API, Twilio SMS as fallback, the
// site's callback receiver), runs schemathesis against it from docs/openapi.yaml with valid
// credentials (scripts/fuzz_hooks.py), and prints one table: requests, statuses, 5xx and
// schema failures per operation. Stops everything it started, also on failure.
//
// Settings: FUZZ_EXAMPLES (generated cases per operation and phase, default 500),
// FUZZ_MIN_REQUESTS (the run fails below it, default 10000), FUZZ_WORKERS (schemathesis
// workers, default 1: with 2 a run is about a quarter faster, but Python 3.11's compiler is not
// thread-safe and hypothesis compiles as it goes, so about one run in ten ends with a
// schemathesis "Runtime Error: AST constructor recursion depth mismatch" that is no finding), FUZZ_SEED (default 12), FUZZ_TIME_LIMIT (seconds, default 1500),
// FUZZ_DEPLOYED_LIMITS=1 (keep the deploy's rate limiters instead of raising them),
// FUZZ_ARGS (more schemathesis options, e.g. `--include-operation-id requestCode`; then the
// operations it leaves out are not required).
// Exit status: 0 when every operation was called, at least FUZZ_MIN_REQUESTS requests were
// made, and no answer was a 5xx or broke the document; 1 otherwise.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import {
  ROOT, DEMO, OTHER, QUICK, startWorker, testInstances, instanceSecretsFor,
} from '../tests/support/worker.mjs';
import { startFakeMeta } from '../tests/support/fake-meta.mjs';
import { startFakeTwilio } from '../tests/support/fake-twilio.mjs';
import { startCallbackReceiver } from '../tests/support/callback-receiver.mjs';

const log = (...a) => console.error('[fuzz]', ...a);
const env = process.env;
const EXAMPLES = Number(env.FUZZ_EXAMPLES ?? 500);
const MIN_REQUESTS = Number(env.FUZZ_MIN_REQUESTS ?? 10000);
const WORKERS = Number(env.FUZZ_WORKERS ?? 1);
const SEED = Number(env.FUZZ_SEED ?? 12);
const TIME_LIMIT_S = Number(env.FUZZ_TIME_LIMIT ?? 1500);
const CHECKS = ['not_a_server_error', 'response_schema_conformance', 'status_code_conformance', 'content_type_conformance'];
const SCHEMA_CHECKS = new Set(CHECKS.slice(1));

/** The instance the fuzzer speaks for: real channels, all of them fakes on 127.0.0.1. */
const FUZZ = '99999999-9999-4999-8999-999999999999';
const PHONE_ID = '100000000000999';
const ORIGIN = 'https://shop.example';
const PUBLISHABLE_KEY = `pk_live_${randomBytes(10).toString('hex')}`;
/** One secret serves as its Hypersender token and its WhatOTP key (the key names the instance). */
const TOKEN = `sk_live_${randomBytes(16).toString('hex')}`;
/** The deploy's rate limiters, raised so that generated requests reach the code behind them. */
const GENEROUS = Object.fromEntries([['WHATOTP_RL', '1001'], ['WIDGET_RL', '1002'], ['WIDGET_POLL_RL', '1003'], ['LINK_RL', '1004']]
  .map(([name, id]) => [name, { type: 'ratelimit', namespace_id: id, simple: { limit: 1_000_000, period: 60 } }]));

const started = []; // things to stop, last first
let child = null;
let stopping = false;

async function stopAll() {
  if (stopping) return;
  stopping = true;
  if (child && child.exitCode === null) {
    try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
  }
  for (const stop of started.reverse()) {
    try { await stop(); } catch (err) { log(`stopping: ${err.message}`); }
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { stopAll().finally(() => process.exit(130)); });
}

/** Every operation of the document, as schemathesis labels them ("POST /v1/otp/send"). */
function documentedOperations() {
  const spec = YAML.parse(readFileSync(path.join(ROOT, 'docs/openapi.yaml'), 'utf8'));
  const ops = [];
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const m of ['get', 'put', 'post', 'delete', 'options', 'head', 'patch']) {
      if (item[m]) ops.push(`${m.toUpperCase()} ${p}`);
    }
  }
  return ops;
}

async function main() {
  const secrets = {
    instances: Object.fromEntries([...testInstances().map((i) => i.id), FUZZ].map((id) => [id, instanceSecretsFor()])),
  };
  const creds = secrets.instances[FUZZ];
  const twilioSid = `AC${randomBytes(16).toString('hex')}`;
  const meta = await startFakeMeta({ accessToken: creds.whatsapp_access_token, phoneNumberId: PHONE_ID });
  started.push(() => meta.close());
  const twilio = await startFakeTwilio({ accountSid: twilioSid, authToken: creds.twilio_auth_token });
  started.push(() => twilio.close());
  const receiver = await startCallbackReceiver({ secret: creds.webhook_secret });
  started.push(() => receiver.close());

  const fuzzInstance = {
    id: FUZZ,
    name: 'Fuzz shop',
    channel: 'whatsapp',
    fallback: ['twilio_sms'],
    business_number: '15550009999',
    whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url },
    twilio: { account_sid: twilioSid, from: '+15550001111', whatsapp_from: '+15550002222', api_base: twilio.url },
    link: { redirect_url: '/#verified' },
    widget: { publishable_key: PUBLISHABLE_KEY, allowed_origins: [ORIGIN] },
  };
  Object.assign(secrets, {
    pepper: randomBytes(32).toString('hex'),
    tokens: { [DEMO]: `t_${randomBytes(16).toString('hex')}`, [OTHER]: `t_${randomBytes(16).toString('hex')}`, [QUICK]: `t_${randomBytes(16).toString('hex')}`, [FUZZ]: TOKEN },
  });
  const bindings = env.FUZZ_DEPLOYED_LIMITS === '1' ? {} : GENEROUS;
  const worker = await startWorker({ extraInstances: [fuzzInstance], secrets, bindings });
  started.push(() => worker.stop());
  log(`Worker on ${worker.url}; fake Meta ${meta.url}, fake Twilio ${twilio.url}, callback receiver ${receiver.url}`);

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edge-otp-fuzz-'));
  started.push(() => rmSync(tmp, { recursive: true, force: true }));
  const stats = path.join(tmp, 'stats.json');
  const st = path.join(ROOT, '.venv-fuzz/bin/st');
  const args = [
    'run', path.join(ROOT, 'docs/openapi.yaml'),
    '--url', worker.url,
    '--checks', CHECKS.join(','),
    '--phases', 'examples,coverage,fuzzing',
    '--max-examples', String(EXAMPLES),
    '--workers', String(WORKERS),
    '--seed', String(SEED),
    '--request-timeout', '20',
    '--suppress-health-check', 'all',
    '--no-shrink',
    '--continue-on-failure',
    '--generation-database', 'none',
    '--report', 'junit', '--report-junit-path', path.join(tmp, 'junit.xml'),
    ...(env.FUZZ_ARGS ? env.FUZZ_ARGS.split(/\s+/).filter(Boolean) : []),
  ];
  log(`schemathesis: ${EXAMPLES} cases per operation and phase, ${WORKERS} workers, seed ${SEED}`);
  const t0 = Date.now();
  const code = await new Promise((resolve, reject) => {
    child = spawn(st, args, {
      // Its working directory is the run's own: schemathesis keeps a cache (.schemathesis/) there.
      cwd: tmp,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...env,
        NO_COLOR: '1',
        PYTHONPATH: path.join(ROOT, 'scripts'),
        SCHEMATHESIS_HOOKS: 'fuzz_hooks',
        FUZZ_INSTANCE: FUZZ,
        FUZZ_TOKEN: TOKEN,
        FUZZ_PUBLISHABLE_KEY: PUBLISHABLE_KEY,
        FUZZ_ORIGIN: ORIGIN,
        FUZZ_META_APP_SECRET: creds.whatsapp_app_secret,
        FUZZ_META_VERIFY_TOKEN: creds.whatsapp_verify_token,
        FUZZ_TWILIO_AUTH_TOKEN: creds.twilio_auth_token,
        FUZZ_BASE_URL: worker.url,
        FUZZ_STATS: stats,
        FUZZ_SEED: String(SEED),
      },
    });
    const timer = setTimeout(() => {
      log(`time limit of ${TIME_LIMIT_S} s reached: stopping schemathesis`);
      try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
    }, TIME_LIMIT_S * 1000);
    child.on('error', reject);
    child.on('exit', (c, sig) => { clearTimeout(timer); resolve(c ?? (sig ? 128 : 1)); });
  });
  const seconds = (Date.now() - t0) / 1000;

  let data = { operations: {} };
  try { data = JSON.parse(readFileSync(stats, 'utf8')); } catch { log('schemathesis wrote no statistics'); }
  const table = [];
  const total = { requests: 0, s2: 0, s4: 0, s5: 0, schema: 0 };
  const ops = documentedOperations();
  const missing = [];
  for (const op of ops) {
    const d = data.operations[op];
    if (!d || d.requests === 0) {
      if (!env.FUZZ_ARGS) missing.push(op);
      if (!d) continue;
    }
    const statuses = d?.statuses ?? {};
    const by = (lo) => Object.entries(statuses).filter(([s]) => Number(s) >= lo && Number(s) < lo + 100).reduce((n, [, c]) => n + c, 0);
    const schema = Object.entries(d?.failures ?? {}).filter(([k]) => SCHEMA_CHECKS.has(k)).reduce((n, [, c]) => n + c, 0);
    const codes = Object.entries(statuses).sort(([a], [b]) => a - b).map(([k, v]) => `${k}:${v}`).join(' ');
    const row = { op, requests: d?.requests ?? 0, s2: by(200) + by(300), s4: by(400), s5: by(500), schema, codes };
    for (const k of Object.keys(total)) total[k] += row[k];
    table.push(row);
  }
  for (const op of Object.keys(data.operations)) if (!ops.includes(op)) log(`answers for an undocumented operation: ${op}`);

  const w = Math.max(...table.map((r) => r.op.length), 9);
  const line = (a, b, c, d, e, f, g = '') => `${a.padEnd(w)}  ${String(b).padStart(8)}  ${String(c).padStart(7)}  ${String(d).padStart(7)}  ${String(e).padStart(5)}  ${String(f).padStart(15)}  ${g}`;
  console.log();
  console.log(line('operation', 'requests', '2xx-3xx', '4xx', '5xx', 'schema failures', 'statuses'));
  for (const r of table) console.log(line(r.op, r.requests, r.s2, r.s4, r.s5, r.schema, r.codes));
  console.log(line(`total (${table.length} operations)`, total.requests, total.s2, total.s4, total.s5, total.schema));
  console.log(`${total.requests} requests in ${seconds.toFixed(0)} s; schemathesis exit status ${code}`);
  const seeding = Object.entries(data.seeding ?? {}).map(([what, st]) => `${what} ${Object.entries(st).map(([k, v]) => `${k}:${v}`).join(' ')}`);
  if (seeding.length) console.log(`live challenges made for the fuzzer (not counted above): ${seeding.join('; ')}`);

  const problems = [];
  if (missing.length) problems.push(`operations never called: ${missing.join(', ')}`);
  if (total.requests < MIN_REQUESTS) problems.push(`${total.requests} requests, fewer than ${MIN_REQUESTS}`);
  if (total.s5) problems.push(`${total.s5} answers were 5xx`);
  if (total.schema) problems.push(`${total.schema} answers broke docs/openapi.yaml`);
  if (code !== 0) problems.push(`schemathesis exited with ${code}`);
  for (const p of problems) console.log(`FAIL: ${p}`);
  if (!problems.length) console.log('PASS: no 5xx and no answer outside docs/openapi.yaml');
  return problems.length ? 1 : 0;
}

let status = 1;
try {
  status = await main();
} catch (err) {
  log(err.stack ?? err);
} finally {
  await stopAll();
}
process.exit(status);
