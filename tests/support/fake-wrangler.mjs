#!/usr/bin/env node
// A stand-in for wrangler in scripts/deploy.sh's tests (tests/e2e/deploy.test.mjs): it records
// every command it is given and plays a Cloudflare account from files, never the network.
// FAKE_WRANGLER_DIR holds calls.jsonl (one {args, secrets?} per call; `secrets` is what a
// `secret bulk` uploaded), remote.json (the Worker's secrets by name; absent: no Worker yet) and
// logged-out (present: `whoami` says nobody is logged in). It knows whoami --json, secret list,
// secret bulk and deploy; any other command fails, so a test sees an unexpected call (a real
// `kv namespace create`, `login`, `secret put`). `deploy` refuses like wrangler 4.86 when a secret
// in the configuration's [secrets] required is not set.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.env.FAKE_WRANGLER_DIR ?? process.exit(90);
const args = process.argv.slice(2);
const remoteFile = path.join(dir, 'remote.json');
const remote = () => (fs.existsSync(remoteFile) ? JSON.parse(fs.readFileSync(remoteFile, 'utf8')) : null);
const call = { args };
const out = (s) => process.stdout.write(`${s}\n`);
const fail = (s, code = 1) => {
  process.stderr.write(`X [ERROR] ${s}\n`);
  fs.appendFileSync(path.join(dir, 'calls.jsonl'), `${JSON.stringify(call)}\n`);
  process.exit(code);
};
const option = (name) => {
  const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  return args[i].includes('=') ? args[i].slice(name.length + 1) : args[i + 1];
};
const config = option('--config') ?? option('-c') ?? 'wrangler.toml';

const [cmd, sub] = args;
if (cmd === 'whoami') {
  if (fs.existsSync(path.join(dir, 'logged-out'))) fail('You are not authenticated. Please run `wrangler login`.');
  out(JSON.stringify({ loggedIn: true, authType: 'OAuth Token', email: 'ops@example.com', accounts: [] }));
} else if (cmd === 'secret' && sub === 'list') {
  const r = remote();
  if (!r) fail('Worker "edge-otp" not found.\nIf this is a new Worker, run `wrangler deploy` first to create it.');
  out(JSON.stringify(Object.keys(r).map((name) => ({ name, type: 'secret_text' })), null, '  '));
} else if (cmd === 'secret' && sub === 'bulk') {
  const secrets = JSON.parse(fs.readFileSync(args[2], 'utf8'));
  call.secrets = secrets;
  call.fileMode = (fs.statSync(args[2]).mode & 0o777).toString(8);
  fs.writeFileSync(remoteFile, JSON.stringify({ ...remote(), ...secrets }));
  out(`✨ ${Object.keys(secrets).length} secrets successfully uploaded`);
} else if (cmd === 'deploy') {
  // What deploy.mjs hands the build (scripts/build-widget.sh checks the widget against it).
  const widgets = process.env.EDGE_OTP_DEPLOYED_WIDGETS;
  if (widgets) call.deployedWidgets = JSON.parse(fs.readFileSync(widgets, 'utf8'));
  if (args.includes('--dry-run')) {
    out('--dry-run: exiting now.');
  } else {
    // [secrets] required = [...], read as wrangler.toml writes it (one line).
    const list = /^\[secrets\]\n(?:[^[].*\n|\n)*?required = \[([^\]]*)\]/m.exec(fs.readFileSync(config, 'utf8'));
    const required = list ? JSON.parse(`[${list[1]}]`) : [];
    const missing = required.filter((name) => !(name in (remote() ?? {})));
    if (missing.length) fail(`The following required secrets have not been set: ${missing.join(', ')}`);
    fs.writeFileSync(remoteFile, JSON.stringify(remote() ?? {}));
    out('Deployed edge-otp triggers (0.51 sec)\n  https://edge-otp.acme-ops.workers.dev\nCurrent Version ID: 00000000-0000-4000-8000-000000000000');
  }
} else {
  fail(`fake wrangler: unexpected command: ${args.join(' ')}`, 2);
}
fs.appendFileSync(path.join(dir, 'calls.jsonl'), `${JSON.stringify(call)}\n`);
