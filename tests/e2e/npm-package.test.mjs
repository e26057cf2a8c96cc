// The widget's npm package as a front-end developer gets it: `npm pack` of the built pkg/,
// installed from that tarball into a scratch project in a temporary directory (offline, the
// registry pointed at a closed loopback port so nothing can leave the machine), then imported
// in Node the way server-side rendering (Next, Nuxt) does: no throw, no element where there is
// no customElements, no Wasm fetched until the first mount (or preload). Its types are checked
// with TypeScript on a small consumer file.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../support/worker.mjs';

const run = promisify(execFile);
const PKG = path.join(ROOT, 'pkg');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
/** npm without the network: a registry on a closed loopback port, no audit, no funding calls. */
const NPM_ENV = { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

let scratch; // the scratch project with the package installed
let tarball;
let files; // what npm pack put in the tarball

/** Runs `code` as an ES module in the scratch project; returns what it printed as JSON. */
async function inScratch(code) {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd: scratch, timeout: 30_000 });
  return JSON.parse(stdout);
}

before(async () => {
  assert.ok(existsSync(path.join(PKG, 'package.json')), 'the widget is not built: run bash scripts/build-widget.sh');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-otp-npm-'));
  const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: PKG, env: NPM_ENV, timeout: 60_000 });
  const [info] = JSON.parse(packed.stdout);
  tarball = path.join(dir, info.filename);
  files = info.files.map((f) => f.path).sort();
  scratch = path.join(dir, 'site');
  await run('mkdir', ['-p', scratch]);
  writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'scratch-site', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-save', tarball], { cwd: scratch, env: NPM_ENV, timeout: 60_000 });
});

test('npm pack holds the module, its types, the Wasm, the README and the license, nothing else', () => {
  assert.deepEqual(files, ['LICENSE', 'README.md', 'edge-otp.d.ts', 'edge-otp.js', 'edge_otp_widget_bg.wasm', 'package.json']);
  const readme = readFileSync(path.join(scratch, 'node_modules/edge-otp-widget/README.md'), 'utf8');
  for (const part of ['## Install', '## The element', '## `mount(element, options)`', '## Events', '## Theming', '## Content-Security-Policy']) {
    assert.ok(readme.includes(part), `README: ${part}`);
  }
  assert.match(readFileSync(path.join(scratch, 'node_modules/edge-otp-widget/LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/);
});

test('package.json: browser ESM exports, types, files, sideEffects, repository, license', () => {
  const pkg = JSON.parse(readFileSync(path.join(scratch, 'node_modules/edge-otp-widget/package.json'), 'utf8'));
  const crate = readFileSync(path.join(ROOT, 'crates/otp-widget/Cargo.toml'), 'utf8');
  assert.equal(pkg.name, 'edge-otp-widget');
  assert.equal(pkg.version, /^version = "(.*)"/m.exec(crate)[1]);
  assert.equal(pkg.type, 'module');
  assert.deepEqual(pkg.exports['.'], { types: './edge-otp.d.ts', browser: './edge-otp.js', import: './edge-otp.js', default: './edge-otp.js' });
  assert.equal(pkg.types, 'edge-otp.d.ts');
  assert.deepEqual(pkg.sideEffects, ['./edge-otp.js']);
  assert.equal(pkg.license, 'Apache-2.0');
  assert.equal(pkg.repository.type, 'git');
  assert.equal(pkg.repository.directory, 'crates/otp-widget');
  assert.deepEqual(pkg.dependencies ?? {}, {});
});

test('importing it in Node (server-side rendering) throws nothing, defines nothing, fetches nothing', async () => {
  const seen = await inScratch(`
    const fetched = [];
    globalThis.fetch = async (url) => { fetched.push(String(url)); throw new Error('no network'); };
    const widget = await import('edge-otp-widget');
    console.log(JSON.stringify({ exports: Object.keys(widget).sort(), fetched, customElements: typeof customElements }));
  `);
  assert.deepEqual(seen, { exports: ['mount', 'preload'], fetched: [], customElements: 'undefined' });
});

test('the element is defined where customElements exists, with the attributes it follows', async () => {
  const seen = await inScratch(`
    const defined = {};
    globalThis.HTMLElement = class {};
    globalThis.customElements = { get: (n) => defined[n], define: (n, c) => { defined[n] = c; } };
    await import('edge-otp-widget');
    const E = defined['edge-otp'];
    console.log(JSON.stringify({ names: Object.keys(defined), observed: E.observedAttributes }));
  `);
  assert.deepEqual(seen.names, ['edge-otp']);
  assert.deepEqual(seen.observed, ['endpoint', 'publishable-key', 'mode', 'locale', 'theme', 'phone', 'default-country', 'nonce']);
});

test('the Wasm loads on first use, once, from beside the module, with its integrity', async () => {
  const wasm = readFileSync(path.join(scratch, 'node_modules/edge-otp-widget/edge_otp_widget_bg.wasm'));
  const integrity = `sha384-${createHash('sha384').update(wasm).digest('base64')}`;
  const seen = await inScratch(`
    import { readFileSync } from 'node:fs';
    const fetched = [];
    globalThis.fetch = async (url, init) => {
      fetched.push({ url: String(url), integrity: init?.integrity });
      const bytes = readFileSync(new URL(url));
      return new Response(bytes, { headers: { 'content-type': 'application/wasm' } });
    };
    const { preload } = await import('edge-otp-widget');
    const before = fetched.length;
    await preload();
    await preload();
    console.log(JSON.stringify({ before, fetched }));
  `);
  assert.equal(seen.before, 0);
  assert.equal(seen.fetched.length, 1);
  assert.match(seen.fetched[0].url, /^file:.*\/node_modules\/edge-otp-widget\/edge_otp_widget_bg\.wasm$/);
  assert.equal(seen.fetched[0].integrity, integrity);
});

test('its types check: the element, its events, the strings keys, the handle\'s ready', async () => {
  assert.ok(existsSync(TSC), 'typescript is not installed: run make setup');
  writeFileSync(path.join(scratch, 'consumer.ts'), `
import { mount, preload, type StringKey, type WidgetHandle } from "edge-otp-widget";

const el = document.createElement("edge-otp");
el.setAttribute("publishable-key", "pk_test_0000000000000000");
el.addEventListener("verified", (e) => { const token: string = e.detail.token; void token; });
el.addEventListener("error", (e) => { const code: string = e.detail.code; void code; });
el.strings = { send_code: "Text me", load_failed: "Oops" };
const found: HTMLElementTagNameMap["edge-otp"] | null = document.querySelector("edge-otp");
void found;

const div = document.createElement("div");
div.addEventListener("verified", (e) => { const phone: string = e.detail.phone; void phone; });
const handle: WidgetHandle = mount(div, { publishableKey: "pk_test_x", defaultCountry: "ES", onError: ({ code }) => void code });
handle.ready.then((h: WidgetHandle) => h.destroy(), () => undefined);
void preload();

const key: StringKey = "country";
void key;
// @ts-expect-error: not a key of the widget's texts
const wrong: StringKey = "send-code";
void wrong;
// @ts-expect-error: strings keys are checked
mount(div, { publishableKey: "pk_test_x", strings: { sendcode: "x" } });
// @ts-expect-error: the mode is "code" or "link"
mount(div, { publishableKey: "pk_test_x", mode: "sms" });
`);
  const { stdout, stderr } = await run(process.execPath, [
    TSC, '--noEmit', '--strict', '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler',
    '--lib', 'es2022,dom', 'consumer.ts',
  ], { cwd: scratch, timeout: 60_000 }).catch((e) => e);
  assert.equal(stdout + stderr, '', 'tsc reports nothing');
});
