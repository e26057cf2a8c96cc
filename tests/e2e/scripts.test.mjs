// The shell scripts on a machine that is not this one: scripts/setup.sh names everything that is
// missing in one line before it installs anything, and scripts/lib.sh hashes where sha256sum is
// absent (macOS has shasum; elsewhere openssl). Each case runs bash with a PATH of chosen tools.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../support/worker.mjs';

const run = promisify(execFile);
const BASICS = ['bash', 'env', 'dirname', 'basename', 'cat', 'cut', 'tr', 'head', 'od', 'grep', 'sed', 'cmp', 'cp', 'id', 'printf'];

/** A directory of links to `tools` (those found on this machine), and an empty HOME. */
function machine(tools) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edge-otp-path-'));
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.mkdirSync(path.join(dir, 'home'));
  for (const tool of tools) {
    const found = (process.env.PATH ?? '').split(':').map((d) => path.join(d, tool)).find((p) => fs.existsSync(p));
    if (found) fs.symlinkSync(found, path.join(dir, 'bin', tool));
  }
  return { PATH: path.join(dir, 'bin'), HOME: path.join(dir, 'home') };
}

async function bash(env, ...args) {
  try {
    const r = await run(path.join(env.PATH, 'bash'), args, { cwd: ROOT, env });
    return { code: 0, ...r };
  } catch (e) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const cases = [
  {
    name: 'no Rust and no Node',
    tools: BASICS,
    args: ['--build'],
    line: /^\[setup\] missing: Rust \(cargo and rustup; install it with rustup, then open a new shell\); Node\.js 20 or newer with npm\n$/,
  },
  {
    name: 'Node 18',
    tools: BASICS,
    fake: { node: '#!/bin/sh\n[ "$1" = -p ] && echo 18 || echo v18.19.0\n', npm: '#!/bin/sh\n', cargo: '#!/bin/sh\n', rustup: '#!/bin/sh\n' },
    args: ['--build'],
    line: /^\[setup\] missing: Node\.js 20 or newer \(found v18\.19\.0\)\n$/,
  },
  {
    name: 'Debian packages for the browser tests, not root',
    tools: BASICS.filter((t) => t !== 'id'),
    fake: { node: '#!/bin/sh\necho 20\n', npm: '#!/bin/sh\n', cargo: '#!/bin/sh\n', rustup: '#!/bin/sh\n', id: '#!/bin/sh\necho 1000\n', 'apt-get': '#!/bin/sh\nexit 99\n' },
    args: [],
    line: /^\[setup\] missing: .*root for apt-get install .*chromium.* \(browser tests and benchmarks only: run as root, install them yourself, or use --no-apt\)\n$/,
  },
];
for (const c of cases) {
  test(`setup.sh stops with one line naming what is missing: ${c.name}`, async () => {
    const env = machine(c.tools);
    for (const [name, body] of Object.entries(c.fake ?? {})) fs.writeFileSync(path.join(env.PATH, name), body, { mode: 0o755 });
    const r = await bash(env, 'scripts/setup.sh', ...c.args);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, c.line);
    assert.equal(r.stdout, '');
  });
}

for (const hasher of ['sha256sum', 'shasum', 'openssl']) {
  test(`scripts/lib.sh hashes with ${hasher} alone`, async (t) => {
    const env = machine([...BASICS, hasher, 'perl']);
    if (!fs.existsSync(path.join(env.PATH, hasher))) return t.skip(`${hasher} is not on this machine`);
    for (const other of ['sha256sum', 'shasum', 'openssl'].filter((h) => h !== hasher)) {
      assert.equal(fs.existsSync(path.join(env.PATH, other)), false);
    }
    const r = await bash(env, '-c', '. scripts/lib.sh && printf %s "eotp_abc" | sha256_hex && rand_hex 16');
    assert.equal(r.code, 0, r.stderr);
    const [hash, random] = r.stdout.trim().split('\n');
    assert.equal(hash, createHash('sha256').update('eotp_abc').digest('hex'));
    assert.match(random, /^[0-9a-f]{32}$/);
  });
}
