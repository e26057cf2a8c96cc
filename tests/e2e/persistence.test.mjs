// State on disk: a challenge survives a restart of the Worker, and nothing persisted (KV,
// Durable Object SQLite files) ever holds a plain code, even though the outbox shows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newRecipient, startWorker } from '../support/worker.mjs';

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('an active challenge stays valid across a restart with persisted state', async () => {
  const persist = mkdtempSync(path.join(os.tmpdir(), 'edge-otp-state-'));
  const first = await startWorker({ persist });
  const r = newRecipient();
  let code;
  try {
    const res = await first.hs('request-code', { chatId: r });
    assert.equal(res.status, 200);
    code = res.body.data.code;
    await first.nextMessage(r);
    const wrong = code === '000000' ? '111111' : '000000';
    assert.equal((await first.hs('validate-code', { chatId: r, code: wrong })).status, 422);
  } finally {
    await first.stop();
  }
  const second = await startWorker({ persist, secrets: first.secrets });
  try {
    const msgs = await second.outbox(r);
    assert.equal(msgs.length, 1, 'the outbox survived too');
    const again = second.hs('validate-code', { chatId: r, code: 'ZZZZZZ' });
    const res = await again;
    assert.equal(res.headers.get('x-otp-attempts-remaining'), '3', 'attempts survived');
    assert.equal((await second.hs('validate-code', { chatId: r, code })).status, 200);
    assert.equal((await second.hs('validate-code', { chatId: r, code })).status, 409);
  } finally {
    await second.stop();
  }
});

test('persisted KV and Durable Object files never contain a plain code', async () => {
  const persist = mkdtempSync(path.join(os.tmpdir(), 'edge-otp-state-'));
  const w = await startWorker({ persist });
  const codes = [];
  try {
    for (let i = 0; i < 6; i++) {
      const r = newRecipient();
      // Ten characters from 0-9A-Z: a chance match anywhere in the files is negligible.
      const res = await w.hs('request-code', { chatId: r, length: 10, useLetter: true, allCapital: true });
      assert.equal(res.status, 200);
      codes.push(res.body.data.code);
      const msg = await w.nextMessage(r);
      assert.ok(msg.text.includes(res.body.data.code), 'the phone sees the code');
      if (i % 2 === 0) assert.equal((await w.hs('validate-code', { chatId: r, code: res.body.data.code })).status, 200);
    }
  } finally {
    await w.stop();
  }
  const files = filesUnder(persist);
  assert.ok(files.some((f) => f.endsWith('.sqlite')), `Durable Object databases persisted: ${files.join(', ')}`);
  assert.ok(files.some((f) => f.includes('kv')), 'KV persisted');
  const uuidSeen = files.some((f) => readFileSync(f).includes(Buffer.from('challenge:')));
  assert.ok(uuidSeen, 'the KV record keys are on disk, so the scan reads the right files');
  for (const f of files) {
    const bytes = readFileSync(f);
    for (const code of codes) {
      for (const form of [code, code.toLowerCase()]) {
        assert.equal(bytes.includes(Buffer.from(form)), false, `${form} found in ${f}`);
        assert.equal(bytes.includes(Buffer.from(form, 'utf16le')), false, `${form} (UTF-16) found in ${f}`);
      }
    }
  }
});
