// `make bench` (run by scripts/bench.sh after it built everything): starts edge-otp's dev
// Worker and the floor Worker (bench/floor) on 127.0.0.1, drives each in turn with wrk and
// the full-flow driver (bench/flow.mjs), and prints one markdown table of requests/s, p50
// and p99 beside the floor, then the release Wasm size, then workerd's CPU time per request
// or flow (from /proc, see cpuOf below) beside the floor's. Also writes the tables to
// bench/out/bench.md.
//
// Needs: build/dev and .wrangler.local.toml (scripts/build.sh dev, scripts/wrangler-local.sh),
// build/release/index_bg.wasm, bench/floor/build, wrk and gzip on PATH.
// Settings (environment): BENCH_SECONDS (length of each run, default 8), BENCH_CONNECTIONS
// (wrk -c and flow concurrency, default 16), BENCH_THREADS (wrk -t, default 2).
// Exit status: 0 when the table was printed, whether or not targets were met; 1 when
// something broke (a server did not start, wrk failed, the time limit was hit).
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { unstable_startWorker } from 'wrangler';
import { startWorker, DEMO } from '../tests/support/worker.mjs';
import { runFlows } from './flow.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const OUT = path.join(HERE, 'out');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const FRESH_SECONDS = 6; // request-code run that makes the codes for validate-code
const DEADLINE_S = 270; // the whole run, servers included
const GZIP_BUDGET = 400 * 1000; // bytes

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

const running = { servers: [], children: new Set() };
let cleaning = null;
async function cleanup() {
  cleaning ??= (async () => {
    for (const child of running.children) child.kill('SIGKILL');
    await Promise.allSettled(running.servers.map((s) => s.stop()));
  })();
  return cleaning;
}
// prependListener: wrangler's own handlers would otherwise exit first, without disposing.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.prependListener(sig, () => {
    log(`${sig}: stopping the servers`);
    cleanup().finally(() => process.exit(130));
  });
}
const deadline = setTimeout(() => {
  log(`time limit of ${DEADLINE_S} s reached: stopping`);
  cleanup().finally(() => process.exit(1));
}, DEADLINE_S * 1000);
deadline.unref();

/** Starts the floor Worker (already built) the way tests start edge-otp. */
async function startFloor() {
  const worker = await unstable_startWorker({
    config: path.join(HERE, 'floor/wrangler.toml'),
    envFiles: [],
    dev: {
      server: { hostname: '127.0.0.1', port: 0 },
      inspector: false,
      persist: false,
      watch: false,
      logLevel: 'warn',
    },
  });
  const url = (await worker.url).toString().replace(/\/$/, '');
  return { url, stop: () => worker.dispose() };
}

/** Runs wrk with a script of bench/wrk and returns the BENCH_RESULT it prints. */
function wrk({ script, url, seconds = SECONDS, connections = CONNECTIONS, threads = THREADS, args = [], env = {} }) {
  const argv = [
    `-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s',
    '-s', path.join(HERE, 'wrk', script), url, ...(args.length ? ['--', ...args] : []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', argv, {
      env: { ...process.env, BENCH_THREADS: String(threads), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      running.children.delete(child);
      const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
      if (code !== 0 || !line) {
        reject(new Error(`wrk ${script} failed (exit ${code}):\n${out}${err}`));
        return;
      }
      resolve(JSON.parse(line.slice('BENCH_RESULT '.length)));
    });
  });
}

/** Waits until GET url answers 200. */
async function waitReady(url) {
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function wasmSize(file) {
  const raw = statSync(file).size;
  const gzip = Number(execFileSync('sh', ['-c', 'gzip -9 -c "$1" | wc -c', 'sh', file]).toString().trim());
  return { raw, gzip };
}

// CPU time of the workerd processes that serve one Worker. Each unstable_startWorker spawns
// two workerd children of this process: wrangler's proxy (it holds the listening socket of
// worker.url and forwards every request) and the runtime that runs the Worker and its Durable
// Objects. Both are counted; the table also shows the split. Other workerd processes on the
// machine (other people's tests) are not descendants of this process and are never counted.
const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** The fields of /proc/<pid>/stat after the command name (index 0 = state, 1 = ppid). */
function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** PIDs of the descendants of this process whose command line contains `workerd`. */
function workerdDescendants() {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(statFields(d)[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  const found = [];
  const queue = [...(children.get(process.pid) ?? [])];
  while (queue.length) {
    const pid = queue.shift();
    queue.push(...(children.get(pid) ?? []));
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('workerd')) found.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return found.sort((a, b) => a - b);
}

/** Which of `pids` holds the listening socket of `url` (wrangler's proxy), if any. */
function listenerOf(pids, url) {
  const port = Number(new URL(url).port).toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(`:${port}`) && f[3] === '0A') inodes.add(`socket:[${f[9]}]`);
    }
  }
  return pids.find((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
}

/** The workerd processes `start()` spawned: the descendant list diffed before/after. */
async function startTracked(name, start) {
  const before = new Set(workerdDescendants());
  const server = await start();
  running.servers.push(server);
  await waitReady(`${server.url}/health`);
  const pids = workerdDescendants().filter((pid) => !before.has(pid));
  if (pids.length === 0) throw new Error(`no new workerd process found for ${name}`);
  const proxy = listenerOf(pids, server.url);
  const roles = Object.fromEntries(pids.map((pid) => [pid, pid === proxy ? 'proxy' : 'runtime']));
  log(`${name}: workerd ${pids.map((pid) => `${pid} (${roles[pid]})`).join(', ')}`);
  server.workerd = { pids, roles }; // not a copy: the test harness is a class instance
  return server;
}

/** utime + stime of each process, in clock ticks. */
function ticksOf(pids) {
  return pids.map((pid) => {
    try {
      const f = statFields(pid);
      return Number(f[11]) + Number(f[12]);
    } catch {
      throw new Error(`workerd process ${pid} is gone`);
    }
  });
}

/** Runs `fn` and adds `cpu` to its result: the CPU milliseconds `server`'s workerd spent. */
async function cpuOf(server, fn) {
  const { pids, roles } = server.workerd;
  const before = ticksOf(pids);
  const result = await fn();
  const after = ticksOf(pids);
  const ms = (i) => ((after[i] - before[i]) * 1000) / CLK_TCK;
  const byPid = Object.fromEntries(pids.map((pid, i) => [pid, ms(i)]));
  const sum = (role) => pids.reduce((t, pid, i) => t + (roles[pid] === role ? ms(i) : 0), 0);
  result.cpu = { ms: pids.reduce((t, _, i) => t + ms(i), 0), proxy_ms: sum('proxy'), runtime_ms: sum('runtime'), by_pid: byPid };
  const untracked = workerdDescendants().filter((pid) => !running.servers.some((s) => s.workerd?.pids.includes(pid)));
  if (untracked.length) log(`  warning: workerd ${untracked.join(', ')} not tracked: CPU figures may miss work`);
  return result;
}

const clamp = (n, lo, hi) => Math.min(hi, Math.max(lo, Number.isFinite(n) ? n : hi));
const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const kb = (bytes) => `${(bytes / 1000).toFixed(1)} KB`;

async function main() {
  mkdirSync(OUT, { recursive: true });
  const loadBefore = loadavg()[0];
  log(`${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ` +
    `each run ${SECONDS} s, wrk -t${THREADS} -c${CONNECTIONS}`);

  log('starting edge-otp (build/dev) and the floor (bench/floor)');
  // One after the other, so that each one's workerd children are told apart.
  const product = await startTracked('edge-otp', () => startWorker());
  const floor = await startTracked('floor', startFloor);
  const token = product.secrets.tokens[DEMO];
  const api = { base: product.url, instance: DEMO, token };
  log(`edge-otp on ${product.url}, floor on ${floor.url}`);

  // Warm-up: compile the Wasm, create the hot object, touch every route once or twice.
  for (let i = 0; i < 20; i++) {
    for (const p of ['/hot', '/new']) {
      const res = await fetch(floor.url + p, { method: 'POST' });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`floor ${p} answered ${res.status}`);
    }
  }
  const warm = await runFlows({ ...api, concurrency: 4, seconds: 1, prefix: 9 });
  if (warm.errors > 0 || warm.requests === 0) {
    throw new Error(`edge-otp warm-up flows failed: ${JSON.stringify(warm.statuses)}`);
  }

  const results = {};
  const apiEnv = { BENCH_INSTANCE: DEMO, BENCH_TOKEN: token };
  const oldCodes = path.join(OUT, 'codes-old.txt');
  const freshCodes = path.join(OUT, 'codes-fresh.txt');
  const show = (r) => log(`  ${fmt(r.rps)}/s, p50 ${fmt(r.p50_ms, 2)} ms, p99 ${fmt(r.p99_ms, 2)} ms, ${r.errors} errors` +
    (r.cpu ? `, workerd CPU ${fmt(r.cpu.ms, 0)} ms` : ''));

  // Each edge-otp run comes right after the floor run it is compared with, so that other
  // load on the machine (builds, tests) weighs on both sides of a ratio alike.
  log('floor: a new Durable Object per request');
  results.floorNew = await cpuOf(floor, () => wrk({ script: 'floor.lua', url: floor.url, args: ['/new'] }));
  show(results.floorNew);

  log('edge-otp: request-code, a new recipient each (its codes are kept for later)');
  results.requestCode = await cpuOf(product, () => wrk({
    script: 'request-code.lua', url: product.url,
    env: { ...apiEnv, BENCH_CODES: oldCodes, BENCH_PREFIX: '0' },
  }));
  const oldCodesAt = Date.now(); // the youngest of them
  show(results.requestCode);

  log('floor: one hot Durable Object');
  results.floorHot = await cpuOf(floor, () => wrk({ script: 'floor.lua', url: floor.url, args: ['/hot'] }));
  show(results.floorHot);

  // validate-code uses each code once, so it needs codes made just before: a short
  // request-code run (not a row of the table), then validate them all while their objects
  // are still in memory (workerd evicts an idle one after some 10-30 s). The run stops when
  // the codes are used up; -d only bounds it.
  log(`edge-otp: ${FRESH_SECONDS} s of request-code to make codes for validate-code`);
  const fresh = await wrk({
    script: 'request-code.lua', url: product.url, seconds: FRESH_SECONDS,
    env: { ...apiEnv, BENCH_CODES: freshCodes, BENCH_PREFIX: String(THREADS) },
  });
  if (fresh.errors > 0) log(`  ${fresh.errors} errors ${JSON.stringify(fresh.statuses)}`);
  const freshBound = clamp(Math.ceil((2 * fresh.codes) / results.floorHot.rps), 2, SECONDS);
  log(`edge-otp: validate-code, each of ${fresh.codes} codes once (objects in memory)`);
  results.validateCode = await cpuOf(product, () => wrk({
    script: 'validate-code.lua', url: product.url, seconds: freshBound,
    env: { ...apiEnv, BENCH_CODES: freshCodes },
  }));
  show(results.validateCode);

  log('floor: a new Durable Object per request, 1 at a time');
  results.floorNew1 = await cpuOf(floor, () => wrk({ script: 'floor.lua', url: floor.url, args: ['/new'], threads: 1, connections: 1 }));
  show(results.floorNew1);

  log('edge-otp: full flow, 1 at a time');
  results.flow1 = await cpuOf(product, () => runFlows({ ...api, concurrency: 1, seconds: SECONDS, prefix: 7 }));
  show(results.flow1);

  log('floor: a new Durable Object per request (again, next to the full flow)');
  results.floorNewAgain = await cpuOf(floor, () => wrk({ script: 'floor.lua', url: floor.url, args: ['/new'] }));
  show(results.floorNewAgain);

  log(`edge-otp: full flow, ${CONNECTIONS} at a time`);
  results.flowN = await cpuOf(product, () => runFlows({ ...api, concurrency: CONNECTIONS, seconds: SECONDS, prefix: 8 }));
  show(results.flowN);

  // The codes of the first request-code run are now old enough for their objects to have
  // been evicted: what a user who types the code half a minute later costs.
  const oldAge = (Date.now() - oldCodesAt) / 1000;
  const oldBound = clamp(Math.ceil(results.requestCode.codes / results.requestCode.rps), 2, SECONDS);
  log(`edge-otp: validate-code, each of ${results.requestCode.codes} codes once, ${oldAge.toFixed(0)}-${(oldAge + SECONDS).toFixed(0)} s old`);
  results.validateOld = await cpuOf(product, () => wrk({
    script: 'validate-code.lua', url: product.url, seconds: oldBound,
    env: { ...apiEnv, BENCH_CODES: oldCodes },
  }));
  show(results.validateOld);
  const loadAfter = loadavg()[0];

  await cleanup();

  const rows = [
    ['request-code (new recipient each)', results.requestCode, 'new DO', results.floorNew, 0.6],
    ['validate-code (code made < 10 s before)', results.validateCode, 'hot DO', results.floorHot, 0.6],
    [`validate-code (code made >= ${oldAge.toFixed(0)} s before, object evicted)`, results.validateOld, 'new DO', results.floorNewAgain, null],
    ['full flow, sequential (flows/s)', results.flow1, 'new DO, 1 at a time', results.floorNew1, null],
    [`full flow, ${CONNECTIONS} at a time (flows/s)`, results.flowN, 'new DO', results.floorNewAgain, 0.4],
  ];
  const lines = [
    '| scenario | req/s | p50 ms | p99 ms | errors | floor | floor req/s | floor p50 ms | floor p99 ms | ratio | target | ok? |',
    '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  let allOk = true;
  for (const [name, r, floorName, f, target] of rows) {
    const ratio = r.rps / f.rps;
    const clean = r.errors === 0 && f.errors === 0;
    const ok = target == null ? '-' : ratio >= target && clean ? 'yes' : 'NO';
    if (ok === 'NO') allOk = false;
    lines.push(
      `| ${name} | ${fmt(r.rps)} | ${fmt(r.p50_ms, 2)} | ${fmt(r.p99_ms, 2)} | ${r.errors} | ${floorName} | ` +
        `${fmt(f.rps)} | ${fmt(f.p50_ms, 2)} | ${fmt(f.p99_ms, 2)} | ${(ratio * 100).toFixed(0)}% | ` +
        `${target == null ? '-' : `>= ${target * 100}%`} | ${ok} |`,
    );
  }
  const rel = wasmSize(path.join(ROOT, 'build/release/index_bg.wasm'));
  const flo = wasmSize(path.join(HERE, 'floor/build/index_bg.wasm'));
  const sizeOk = rel.gzip <= GZIP_BUDGET;
  if (!sizeOk) allOk = false;
  lines.push(
    '',
    '| wasm | raw | gzip -9 | budget (gzip) | ok? |',
    '| --- | ---: | ---: | ---: | --- |',
    `| edge-otp release (build/release/index_bg.wasm) | ${kb(rel.raw)} | ${kb(rel.gzip)} | ${kb(GZIP_BUDGET)} | ${sizeOk ? 'yes' : 'NO'} |`,
    `| floor, for reference (bench/floor/build/index_bg.wasm) | ${kb(flo.raw)} | ${kb(flo.gzip)} | - | - |`,
  );
  const notes = [];
  const named = [['request-code', results.requestCode], ['validate-code (fresh)', results.validateCode],
    ['validate-code (old)', results.validateOld], ['floor new', results.floorNew], ['floor hot', results.floorHot],
    ['floor new 1 at a time', results.floorNew1], ['floor new again', results.floorNewAgain],
    ['full flow 1 at a time', results.flow1], ['full flow n at a time', results.flowN]];
  for (const [name, r] of named) {
    if (r.errors > 0) notes.push(`${name}: ${r.errors} errors ${JSON.stringify(r.statuses)} ${JSON.stringify(r.socket_errors ?? {})}`);
  }
  for (const [name, r, codes] of [['fresh', results.validateCode, fresh.codes], ['old', results.validateOld, results.requestCode.codes]]) {
    notes.push(`validate-code (${name} codes): ${r.validated} of ${codes} codes validated in ${fmt(r.elapsed_s, 2)} s`);
  }
  for (const [name, r] of [['sequential', results.flow1], [`${CONNECTIONS} at a time`, results.flowN]]) {
    const st = r.steps;
    notes.push(`full flow ${name}: request-code p50 ${fmt(st.request_p50_ms, 2)} / p99 ${fmt(st.request_p99_ms, 2)} ms, ` +
      `validate-code p50 ${fmt(st.validate_p50_ms, 2)} / p99 ${fmt(st.validate_p99_ms, 2)} ms`);
  }
  lines.push('', `KB = 1000 bytes (release gzip: ${rel.gzip} bytes of ${GZIP_BUDGET}). ratio = req/s / floor req/s; ` +
    'ok? needs the target and zero errors on both sides.');
  lines.push(`Runs of ${SECONDS} s (validate-code: until its codes are used up), wrk -t${THREADS} -c${CONNECTIONS}, ` +
    `loopback, ${cpus().length} cores, load average ${loadBefore.toFixed(2)} before and ${loadAfter.toFixed(2)} after; ` +
    `each floor run right before the edge-otp run it is compared with; targets ${allOk ? 'all met' : 'NOT all met'}.`);
  for (const n of notes) lines.push(`- ${n}`);

  // CPU per unit of work: far less noisy than requests/s on a shared machine.
  const perUnit = (r, count) => ({
    count,
    ms: r.cpu.ms / count,
    runtime: r.cpu.runtime_ms / count,
    proxy: r.cpu.proxy_ms / count,
  });
  const flowsDone = (r) => r.requests - r.errors;
  const cpuRows = [
    ['request-code (new recipient each), per request', perUnit(results.requestCode, results.requestCode.requests), 'new DO', results.floorNew],
    ['validate-code (code made < 10 s before), per request', perUnit(results.validateCode, results.validateCode.requests), 'hot DO', results.floorHot],
    ['validate-code (object evicted), per request', perUnit(results.validateOld, results.validateOld.requests), 'new DO', results.floorNewAgain],
    ['full flow, sequential, per flow', perUnit(results.flow1, flowsDone(results.flow1)), 'new DO, 1 at a time', results.floorNew1],
    [`full flow, ${CONNECTIONS} at a time, per flow`, perUnit(results.flowN, flowsDone(results.flowN)), 'new DO', results.floorNewAgain],
  ];
  const cpu = {};
  lines.push(
    '',
    '| workerd CPU | done | CPU ms | CPU ms each | runtime + proxy ms each | floor | floor requests | floor CPU ms per request | runtime + proxy ms | x floor |',
    '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
  );
  for (const [name, u, floorName, f] of cpuRows) {
    const fu = perUnit(f, f.requests);
    cpu[name] = { per_unit_ms: u.ms, runtime_ms: u.runtime, proxy_ms: u.proxy, units: u.count,
      floor: floorName, floor_per_request_ms: fu.ms, floor_runtime_ms: fu.runtime, floor_proxy_ms: fu.proxy, ratio: u.ms / fu.ms };
    lines.push(
      `| ${name} | ${u.count} | ${fmt(u.ms * u.count, 0)} | ${fmt(u.ms, 3)} | ${fmt(u.runtime, 3)} + ${fmt(u.proxy, 3)} | ` +
        `${floorName} | ${f.requests} | ${fmt(fu.ms, 3)} | ${fmt(fu.runtime, 3)} + ${fmt(fu.proxy, 3)} | ${fmt(u.ms / fu.ms, 2)}x |`,
    );
  }
  const pidList = (s) => s.workerd.pids.map((pid) => `${pid} ${s.workerd.roles[pid]}`).join(', ');
  lines.push('', `CPU = utime + stime (/proc/<pid>/stat, ${CLK_TCK} ticks/s) of the workerd processes serving each ` +
    `Worker, over each run, divided by requests (floor, request-code, validate-code) or by completed flows; ` +
    `runtime = the workerd that runs the Worker and its Durable Objects, proxy = wrangler's proxy in front of it ` +
    `(edge-otp: ${pidList(product)}; floor: ${pidList(floor)}). x floor = CPU ms each / floor CPU ms per request.`);
  const table = lines.join('\n');
  process.stdout.write(`\n${table}\n`);
  writeFileSync(path.join(OUT, 'bench.md'), `${table}\n`);
  writeFileSync(path.join(OUT, 'results.json'), JSON.stringify({ results, cpu, clk_tck: CLK_TCK, workerd: { edge_otp: product.workerd, floor: floor.workerd }, wasm: { release: rel, floor: flo } }, null, 2));
}

try {
  await main();
  process.exit(0);
} catch (e) {
  log(`failed: ${e.stack ?? e}`);
  await cleanup();
  process.exit(1);
}
