// The full-flow driver of `make bench`: request-code for a new recipient, take the code from
// its answer (Hypersender returns it to the server-side caller), then validate-code with it.
// `runFlows` runs `concurrency` such loops for `seconds` and reports flows/s and the latency
// of whole flows (and of each step). A flow with any non-2xx answer counts as one error.
// Plain node:http with keep-alive (cheaper than fetch, so the driver steals less CPU from
// workerd on a 2-core machine). Needs Node 20.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

/** POSTs a JSON body; resolves to { status, body (parsed or null), ms }. */
export function postJson(agent, base, path, token, body) {
  const url = new URL(path, base);
  const payload = JSON.stringify(body);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json',
          'Content-Length': Buffer.byteLength(payload),
        },
        timeout: 10_000,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed = null;
          try {
            parsed = JSON.parse(text);
          } catch {
            // left null: reported as an error by the caller when the status is not 2xx
          }
          resolve({ status: res.statusCode, body: parsed, ms: performance.now() - t0 });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** The p-th percentile (0-100) of a list of numbers, nearest rank. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/**
 * Runs full flows against edge-otp at `base` for `seconds`, `concurrency` at a time.
 * Recipients are "20" + `prefix` (one digit) + an 8-digit counter: new for every flow.
 */
export async function runFlows({ base, instance, token, concurrency, seconds, prefix }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const flows = [];
  const steps = { request: [], validate: [] };
  const statuses = {};
  let errors = 0;
  let counter = 0;
  const fail = (what) => {
    errors += 1;
    statuses[what] = (statuses[what] ?? 0) + 1;
  };
  const start = performance.now();
  const end = start + seconds * 1000;
  async function loop() {
    while (performance.now() < end) {
      counter += 1;
      const chatId = `20${prefix}${String(counter).padStart(8, '0')}`;
      const t0 = performance.now();
      try {
        const rc = await postJson(agent, base, `/api/otp/v2/${instance}/request-code`, token, { chatId });
        const code = rc.body?.data?.code;
        if (rc.status < 200 || rc.status > 299 || typeof code !== 'string') {
          fail(`request-code ${rc.status}`);
          continue;
        }
        const vc = await postJson(agent, base, `/api/otp/v2/${instance}/validate-code`, token, { chatId, code });
        if (vc.status < 200 || vc.status > 299) {
          fail(`validate-code ${vc.status}`);
          continue;
        }
        steps.request.push(rc.ms);
        steps.validate.push(vc.ms);
        flows.push(performance.now() - t0);
      } catch (e) {
        fail(`socket: ${e.message}`);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop));
  const duration = (performance.now() - start) / 1000;
  agent.destroy();
  return {
    requests: flows.length + errors,
    duration_s: duration,
    rps: flows.length / duration,
    p50_ms: percentile(flows, 50),
    p99_ms: percentile(flows, 99),
    errors,
    statuses,
    steps: {
      request_p50_ms: percentile(steps.request, 50),
      request_p99_ms: percentile(steps.request, 99),
      validate_p50_ms: percentile(steps.validate, 50),
      validate_p99_ms: percentile(steps.validate, 99),
    },
  };
}
