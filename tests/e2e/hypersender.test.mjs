// The Hypersender OTP API v2 surface end to end, against the built Worker on workerd with
// real KV and Durable Objects: bad inputs, auth, the code flow, single use under
// concurrency, limits and lockout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO, OTHER, QUICK, newRecipient, startWorker } from '../support/worker.mjs';
import { letTimePass, waitFor } from '../support/wait.mjs';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let w;
before(async () => {
  w = await startWorker();
});
after(async () => {
  await w?.stop();
});

function assertFailure(res, status, message) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.success, false);
  assert.equal(res.body.data, null);
  if (message instanceof RegExp) assert.match(res.body.message, message);
  else if (message) assert.equal(res.body.message, message);
}

describe('request-code input', () => {
  const chatId = '20123456789@c.us';
  const rows = [
    ['missing chatId', {}, 'chatId', 'The chat id field is required.'],
    ['empty chatId', { chatId: '' }, 'chatId', 'The chat id field is required.'],
    ['chatId a number', { chatId: 20123456789 }, 'chatId', 'The chat id field must be a string.'],
    ['chatId a group', { chatId: '120363040000000000@g.us' }, 'chatId', /must be a WhatsApp chat id/],
    ['chatId with letters', { chatId: '2012abc6789' }, 'chatId', /must be a WhatsApp chat id/],
    ['chatId too short', { chatId: '+2012' }, 'chatId', /must be a WhatsApp chat id/],
    ['length below 4', { chatId, length: 3 }, 'length', 'The length field must be between 4 and 10.'],
    ['length above 10', { chatId, length: 11 }, 'length', 'The length field must be between 4 and 10.'],
    ['length a fraction', { chatId, length: 6.5 }, 'length', 'The length field must be an integer.'],
    ['length a word', { chatId, length: 'six' }, 'length', 'The length field must be an integer.'],
    ['length an array', { chatId, length: [6] }, 'length', 'The length field must be an integer.'],
    ['expires below 60', { chatId, expires: 59 }, 'expires', 'The expires field must be between 60 and 1800.'],
    ['expires above 1800', { chatId, expires: 1801 }, 'expires', 'The expires field must be between 60 and 1800.'],
    ['useLetter a word', { chatId, useLetter: 'yes' }, 'useLetter', 'The use letter field must be true or false.'],
    ['useNumber an object', { chatId, useNumber: {} }, 'useNumber', 'The use number field must be true or false.'],
    ['allCapital 2', { chatId, allCapital: 2 }, 'allCapital', 'The all capital field must be true or false.'],
    ['no characters allowed', { chatId, useLetter: false, useNumber: false }, 'useNumber', /must be true when use letter is false/],
    ['name a number', { chatId, name: 5 }, 'name', 'The name field must be a string.'],
    ['name too long', { chatId, name: 'x'.repeat(256) }, 'name', 'The name field must not be greater than 255 characters.'],
  ];
  for (const [what, body, field, message] of rows) {
    test(`${what} is a 422 naming ${field}`, async () => {
      const res = await w.hs('request-code', body);
      assertFailure(res, 422, message);
      assert.deepEqual(Object.keys(res.body.errors), [field]);
      if (typeof message === 'string') assert.deepEqual(res.body.errors[field], [message]);
    });
  }

  test('several bad fields are all reported, Laravel style', async () => {
    const res = await w.hs('request-code', { length: 99, expires: 1 });
    assertFailure(res, 422, 'The chat id field is required. (and 2 more errors)');
    assert.deepEqual(Object.keys(res.body.errors).sort(), ['chatId', 'expires', 'length']);
  });

  const malformed = [
    ['not JSON', 'chatId=20123456789', 400],
    ['a JSON array', '[]', 400],
    ['a JSON string', '"20123456789"', 400],
    ['truncated JSON', '{"chatId": "2012', 400],
    ['a huge body', JSON.stringify({ chatId, name: 'x'.repeat(1 << 20) }), 413],
  ];
  for (const [what, raw, status] of malformed) {
    test(`${what} is a ${status} in the envelope`, async () => {
      assertFailure(await w.hs('request-code', raw), status, /./);
    });
  }

  test('the Laravel SDK body (every field, null name, numeric strings) is accepted', async () => {
    const res = await w.hs('request-code', {
      chatId: newRecipient() + '@c.us', length: '8', useLetter: true, useNumber: '0',
      allCapital: 1, name: null, expires: 300,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.match(res.body.data.code, /^[A-Z]{8}$/);
  });
});

describe('authentication', () => {
  const body = { chatId: '20123456789' };
  test('no token is 401', async () => {
    assertFailure(await w.hs('request-code', body, { token: null }), 401, 'Unauthenticated.');
  });
  test('a wrong token is 401', async () => {
    assertFailure(await w.hs('request-code', body, { token: 'nope' }), 401, 'Unauthenticated.');
  });
  test("another instance's token is 401", async () => {
    const res = await w.hs('validate-code', { chatId: '20123456789', code: '123456' }, { token: w.secrets.tokens[OTHER] });
    assertFailure(res, 401, 'Unauthenticated.');
  });
  test('a token that is not Bearer is 401', async () => {
    const res = await w.hs('request-code', body, { token: null, headers: { Authorization: `Basic ${w.secrets.tokens[DEMO]}` } });
    assertFailure(res, 401, 'Unauthenticated.');
  });
  test('an unknown instance is 404', async () => {
    const res = await w.hs('request-code', body, { instance: '99999999-9999-4999-8999-999999999999', token: w.secrets.tokens[DEMO] });
    assertFailure(res, 404, 'Instance not found.');
  });
});

describe('code flow', () => {
  test('request, wrong code, right code, replay', async () => {
    const r = newRecipient();
    const req = await w.hs('request-code', { chatId: `${r}@c.us`, name: 'Acme', expires: 600 });
    assert.equal(req.status, 200);
    assert.deepEqual(Object.keys(req.body), ['success', 'message', 'data']);
    assert.equal(req.body.message, 'OTP code generated and message queued successfully');
    const d = req.body.data;
    assert.deepEqual(Object.keys(d), ['uuid', 'chat_id', 'code', 'status', 'otp_type', 'expires_at', 'created_at']);
    assert.match(d.uuid, UUID);
    assert.equal(d.chat_id, `${r}@c.us`);
    assert.match(d.code, /^\d{6}$/);
    assert.equal(d.status, 'pending');
    assert.equal(d.otp_type, 'code');
    assert.match(d.expires_at, ISO);
    assert.equal(Date.parse(d.expires_at) - Date.parse(d.created_at), 600_000);

    const msg = await w.nextMessage(r);
    assert.equal(msg.text, `${d.code} is your Acme verification code. It expires in 10 minutes.`);
    assert.equal(msg.to, `+${r}`);

    const wrongCode = d.code === '000000' ? '111111' : '000000';
    const wrong = await w.hs('validate-code', { chatId: `+${r}`, code: wrongCode });
    assertFailure(wrong, 422, 'Invalid OTP code.');
    assert.equal(wrong.headers.get('x-otp-attempts-remaining'), '4');

    const right = await w.hs('validate-code', { chatId: r, code: d.code });
    assert.equal(right.status, 200, JSON.stringify(right.body));
    assert.deepEqual(right.body, {
      success: true,
      message: 'OTP code validated successfully',
      data: { uuid: d.uuid, chat_id: `${r}@c.us`, status: 'validated', validated_at: right.body.data.validated_at },
    });
    assert.match(right.body.data.validated_at, ISO);

    assertFailure(await w.hs('validate-code', { chatId: `${r}@c.us`, code: d.code }), 409, 'OTP code has already been used.');
  });

  test('status lookup follows the challenge: sent, then validated', async () => {
    const r = newRecipient();
    const { body } = await w.hs('request-code', { chatId: r });
    await w.nextMessage(r);
    const get = async (id, instance = DEMO) => {
      const res = await w.fetch(`/api/otp/v2/${instance}/otps/${id}`, {
        headers: { Authorization: `Bearer ${w.secrets.tokens[instance]}` },
      });
      return { status: res.status, body: await res.json() };
    };
    let s = await get(body.data.uuid);
    assert.equal(s.status, 200);
    assert.equal(s.body.data.status, 'sent');
    assert.equal(s.body.data.attempts_left, 5);
    assert.match(s.body.data.sent_at, ISO);
    await w.hs('validate-code', { chatId: r, code: body.data.code });
    s = await get(body.data.uuid);
    assert.equal(s.body.data.status, 'validated');
    assert.match(s.body.data.validated_at, ISO);
    assert.equal((await get(body.data.uuid, OTHER)).status, 404, 'another instance cannot see it');
    assert.equal((await get('a0b5df6a-b491-4190-80a5-38d85a2a4836')).status, 404);
  });

  test('letters, capitals and length shape the code; input case and separators do not matter', async () => {
    const r = newRecipient();
    const { body } = await w.hs('request-code', { chatId: r, length: 10, useLetter: true, useNumber: true, allCapital: true });
    assert.match(body.data.code, /^[0-9A-Z]{10}$/);
    const typed = `${body.data.code.slice(0, 5).toLowerCase()}-${body.data.code.slice(5)}`;
    assert.equal((await w.hs('validate-code', { chatId: r, code: typed })).status, 200);
  });

  test('no code for this chat is 404', async () => {
    assertFailure(await w.hs('validate-code', { chatId: newRecipient(), code: '123456' }), 404, 'No active OTP code found for this chat.');
  });

  // An expired code's 410 is in expiry.test.mjs, which waits out the 60-second minimum once.

  test('a second request while the code is live sends the same code again', async () => {
    // Issue 12 item 4 (was: "a new code voids the previous one"): anyone who can have a code
    // sent to a number must not void the one its owner holds, so a request for a number with
    // a live code sends that code again (Twilio Verify's rule), same uuid and expiry.
    const r = newRecipient();
    const first = (await w.hs('request-code', { chatId: r })).body.data;
    const second = (await w.hs('request-code', { chatId: `+${r}` })).body.data;
    assert.deepEqual([second.uuid, second.code, second.expires_at], [first.uuid, first.code, first.expires_at]);
    await waitFor(async () => (await w.outbox(r)).length >= 2, { what: 'the code sent twice' });
    assert.equal((await w.hs('validate-code', { chatId: r, code: first.code })).status, 200);
  });
});

describe('single use and limits', () => {
  test('200 concurrent validations of the right code give exactly one success', async () => {
    const r = newRecipient();
    const { body } = await w.hs('request-code', { chatId: r });
    const results = await Promise.all(
      Array.from({ length: 200 }, () => w.hs('validate-code', { chatId: r, code: body.data.code })),
    );
    const statuses = results.map((x) => x.status);
    assert.equal(statuses.filter((s) => s === 200).length, 1);
    assert.equal(statuses.filter((s) => s === 409).length, 199);
  });

  test('concurrent request-code for one recipient leaves exactly one live code, sent five times', async () => {
    const r = newRecipient();
    const spellings = [r, `+${r}`, `${r}@c.us`, `+${r}@c.us`, `+${r.slice(0, 2)} ${r.slice(2)}`];
    const results = await Promise.all(spellings.map((chatId) => w.hs('request-code', { chatId })));
    assert.deepEqual(results.map((x) => x.status), [200, 200, 200, 200, 200]);
    const statuses = await Promise.all(
      results.map(async (x) => {
        const res = await w.fetch(`/api/otp/v2/${DEMO}/otps/${x.body.data.uuid}`, {
          headers: { Authorization: `Bearer ${w.secrets.tokens[DEMO]}` },
        });
        return (await res.json()).data.status;
      }),
    );
    // The first to reach the object starts the code; the other four send it again.
    assert.equal(new Set(results.map((x) => x.body.data.uuid)).size, 1, 'one challenge');
    assert.ok(statuses.every((s) => s === 'pending' || s === 'sent'), statuses.join());
    const winner = results[0].body.data;
    assert.equal((await w.hs('validate-code', { chatId: r, code: winner.code })).status, 200);
  });

  test('at most 5 codes per recipient per 10 minutes, whatever the spelling', async () => {
    const r = newRecipient();
    for (const chatId of [r, `+${r}`, `${r}@c.us`, r, `+${r}`]) {
      assert.equal((await w.hs('request-code', { chatId })).status, 200);
    }
    const sixth = await w.hs('request-code', { chatId: `${r}@c.us` });
    assertFailure(sixth, 429, /Too many codes requested for this chat/);
    const wait = Number(sixth.headers.get('retry-after'));
    assert.ok(wait > 590 && wait <= 600, `Retry-After ${wait}`);
  });

  test('five wrong codes end the challenge, lock the recipient, and count across resends', async () => {
    const r = newRecipient();
    const opts = { instance: QUICK };
    const first = (await w.hs('request-code', { chatId: r }, opts)).body.data;
    const wrong = first.code === '000000' ? '111111' : '000000';
    for (const left of ['4', '3', '2', '1']) {
      const res = await w.hs('validate-code', { chatId: r, code: wrong }, opts);
      assertFailure(res, 422, 'Invalid OTP code.');
      assert.equal(res.headers.get('x-otp-attempts-remaining'), left);
    }
    const fifth = await w.hs('validate-code', { chatId: r, code: wrong }, opts);
    assertFailure(fifth, 422, 'Invalid OTP code.');
    assert.equal(fifth.headers.get('x-otp-attempts-remaining'), '0');
    assert.equal(fifth.headers.get('retry-after'), '2', 'first lockout: lockout_base');

    // The right code no longer works: the challenge is over and the recipient locked.
    const late = await w.hs('validate-code', { chatId: r, code: first.code }, opts);
    assertFailure(late, 429, /Too many failed attempts/);
    assert.ok(Number(late.headers.get('retry-after')) >= 1);
    const locked = await w.hs('request-code', { chatId: r }, opts);
    assertFailure(locked, 429, /Too many failed attempts for this chat/);

    // After the lockout, a resend gives a new code, but failures keep counting: the next
    // five wrong codes lock for twice as long.
    await letTimePass(2100, "QUICK's first lockout, 2 s (lockout_base)");
    const second = (await w.hs('request-code', { chatId: r }, opts)).body.data;
    const wrong2 = second.code === '000000' ? '111111' : '000000';
    let res;
    for (let i = 0; i < 5; i++) res = await w.hs('validate-code', { chatId: r, code: wrong2 }, opts);
    assert.equal(res.headers.get('retry-after'), '4');

    // A success clears the count.
    await letTimePass(4100, 'the second lockout, twice the first: 4 s');
    const third = (await w.hs('request-code', { chatId: r }, opts)).body.data;
    assert.equal((await w.hs('validate-code', { chatId: r, code: third.code }, opts)).status, 200);
  });
});

describe('configuration', () => {
  test('a Worker without its pepper refuses OTP routes with a 503 that names no setting', async () => {
    const bare = await startWorker({ omit: ['OTP_PEPPER'] });
    try {
      const res = await bare.hs('request-code', { chatId: '20123456789' });
      assertFailure(res, 503, /^The service is not configured for this request\. Its operator's log names the setting\.$/);
      assert.doesNotMatch(JSON.stringify(res.body), /OTP_PEPPER/);
    } finally {
      await bare.stop();
    }
  });
});
