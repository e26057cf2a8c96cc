// HTTP from where a hostile or merely unusual client stands: a body streamed without a
// Content-Length (chunked) that never ends by itself, and several requests on one kept-alive
// HTTP/1.1 connection read off a raw socket. Kept out of tests/e2e so `node --test` does not
// run it.
import net from 'node:net';

/**
 * POSTs a chunked body (no Content-Length) of 64 KB chunks of `fill` to `url` over a raw socket,
 * as fast as the server takes them, until the server answers, closes, or stops taking bytes for
 * 2 s, or `total` bytes are written (then the body ends). Resolves with `{how, status, body,
 * sent, ms}`: `how` is `answered`, `closed`, `error <code>` or `stalled`; `sent` the bytes
 * written by then. A server that reads the whole body before answering answers only once
 * `total` bytes are in.
 */
export function streamChunked(url, { headers = {}, total = 32 * 1024 * 1024, fill = 0x20 } = {}) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(u.port), u.hostname);
    const started = Date.now();
    let sent = 0;
    let got = Buffer.alloc(0);
    let done = false;
    let stall;
    const finish = (how) => {
      if (done) return;
      done = true;
      clearTimeout(stall);
      socket.destroy();
      const text = got.toString('utf8');
      const headEnd = text.indexOf('\r\n\r\n');
      resolve({
        how,
        status: Number(text.split('\r\n')[0].split(' ')[1]) || null,
        body: headEnd >= 0 ? text.slice(headEnd + 4) : '',
        sent,
        ms: Date.now() - started,
      });
    };
    const frame = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(65536, fill), Buffer.from('\r\n')]);
    const pump = () => {
      while (!done && got.length === 0) {
        if (sent >= total) {
          socket.write('0\r\n\r\n');
          return;
        }
        sent += 65536;
        if (!socket.write(frame)) {
          stall = setTimeout(() => finish('stalled'), 2000);
          socket.once('drain', () => {
            clearTimeout(stall);
            setImmediate(pump);
          });
          return;
        }
      }
    };
    const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.on('connect', () => {
      socket.write(`POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n${head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n`);
      pump();
    });
    // The answer is complete once its head and a short body are in (a few hundred bytes).
    socket.on('data', (d) => {
      got = Buffer.concat([got, d]);
      const text = got.toString('utf8');
      const headEnd = text.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, headEnd))?.[1] ?? NaN);
      if (Number.isNaN(length) || got.length - headEnd - 4 >= length) finish('answered');
    });
    // A server that closes while bytes it never read are still arriving resets the connection;
    // an answer whose head came first still counts as answered.
    socket.on('error', (err) => finish(/^HTTP\/1\.1 \d{3}/.test(got.toString('latin1')) ? 'answered' : `error ${err.code}`));
    socket.on('close', () => finish(/^HTTP\/1\.1 \d{3}/.test(got.toString('latin1')) ? 'answered' : 'closed'));
  });
}

/**
 * One raw HTTP/1.1 connection to `url`'s host. `send(text)` writes a request as given;
 * `next(timeoutMs)` resolves with the next complete response on the connection
 * (`{status, headers, body}`), or rejects when none has come within `timeoutMs`.
 */
export async function rawConnection(url) {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffered = Buffer.alloc(0);
  let closed = false;
  const waiters = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  socket.on('data', (d) => {
    buffered = Buffer.concat([buffered, d]);
    wake();
  });
  socket.on('close', () => {
    closed = true;
    wake();
  });
  socket.on('error', () => {});

  /** A complete response at the start of the buffer, consumed; null if not all there yet. */
  function take() {
    const headEnd = buffered.indexOf('\r\n\r\n');
    if (headEnd < 0) return null;
    const [statusLine, ...lines] = buffered.subarray(0, headEnd).toString('latin1').split('\r\n');
    const headers = {};
    for (const line of lines) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const status = Number(statusLine.split(' ')[1]);
    let rest = buffered.subarray(headEnd + 4);
    let body;
    if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
      const parts = [];
      let at = 0;
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', at);
        if (lineEnd < 0) return null;
        const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size');
        if (rest.length < lineEnd + 2 + size + 2) return null;
        if (size === 0) {
          rest = rest.subarray(lineEnd + 4);
          break;
        }
        parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (rest.length < length) return null;
      body = rest.subarray(0, length);
      rest = rest.subarray(length);
    }
    buffered = rest;
    return { status, headers, body: body.toString('utf8') };
  }

  return {
    send(text) {
      socket.write(text);
    },
    async next(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const got = take();
        if (got) return got;
        if (closed) throw new Error('the server closed the connection without a (complete) response');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no response on the kept-alive connection within ${timeoutMs} ms`);
        await new Promise((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
    get closed() {
      return closed;
    },
    close() {
      socket.destroy();
    },
  };
}
