// Expiry, which needs the clock to pass a code's shortest lifetime (60 s, the APIs' minimum):
// the Worker runs on its dev clock (DEV_CLOCK=manual) and the test moves it 61 s ahead
// instead of waiting, one move for both kinds. A code answers 410 after its deadline; a link
// challenge expires from its Durable Object's scheduler, sends the callback with status
// `expired`, and a late message gets the `expired` reply while its login URL no longer verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker, newRecipient, DEMO } from '../support/worker.mjs';
import { startFakeMeta } from '../support/fake-meta.mjs';
import { startCallbackReceiver } from '../support/callback-receiver.mjs';
import { SEND_WINDOW_MS, assertNothingFor } from '../support/wait.mjs';

const WA = '55555555-5555-4555-8555-555555555555';
const PHONE_ID = '109876543210999';
const ACCESS_TOKEN = `EAAG${randomBytes(12).toString('hex')}`;

test('codes and links expire on time', async () => {
  const meta = await startFakeMeta({ accessToken: ACCESS_TOKEN, phoneNumberId: PHONE_ID });
  const receiver = await startCallbackReceiver({ secret: `whsec_${randomBytes(32).toString('base64')}` });
  const w = await startWorker({
    extraInstances: [{
      id: WA, name: 'Acme', channel: 'whatsapp', business_number: '15550007777',
      whatsapp: { phone_number_id: PHONE_ID, api_base: meta.url },
    }],
    credentials: { [WA]: { whatsapp_access_token: ACCESS_TOKEN, webhook_secret: receiver.secret } },
    vars: { DEV_CLOCK: 'manual' },
  });
  try {
    // A code, and two links: one claimed (its login URL sent) and one never answered.
    const phone = newRecipient();
    const code = (await w.hs('request-code', { chatId: phone, expires: 60 })).body.data;
    const link = async () => {
      const res = await w.hs('generate-link', {
        expires: 60,
        message: { expired: 'Too late, ask again.' },
        callback: { failed: `${receiver.url}/failed` },
      }, { instance: WA });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.data;
    };
    const claimed = await link();
    const unanswered = await link();
    const user = newRecipient();
    const send = async (data, id) => {
      const res = await w.sendWhatsApp(WA, {
        phoneNumberId: PHONE_ID, from: user, id,
        body: new URL(data.whatsapp_link).searchParams.get('text'),
      });
      assert.equal(res.status, 200);
    };
    await send(claimed, 'wamid.first');
    const [reply] = await meta.waitForMessages(1, { to: user });
    const login = reply.text.match(/\/login\/[A-Za-z0-9_-]+/)[0];

    // All three were made with 60 s to live, a moment ago: 61 s later every one is past due.
    assert.ok(Date.parse(code.expires_at) - Date.parse(code.created_at) <= 60_000);
    assert.equal(await w.advanceClock(61), 61);

    const late = await w.hs('validate-code', { chatId: phone, code: code.code });
    assert.equal(late.status, 410);
    assert.equal(late.body.message, 'OTP code has expired.');

    // Both links expire from their objects' schedulers (on the dev clock their alarms wake at
    // least every second): two callbacks to the failed URL with the seed's status `expired`.
    const got = await receiver.waitFor(2, 15_000);
    const bodies = got.map((r) => r.json).sort((a, b) => a.uuid.localeCompare(b.uuid));
    const expected = [claimed.uuid, unanswered.uuid].sort();
    assert.deepEqual(bodies.map((b) => b.uuid), expected);
    for (const b of bodies) {
      assert.deepEqual(Object.keys(b), ['uuid', 'code', 'chat_id', 'status', 'expired_at']);
      assert.equal(b.status, 'expired');
      assert.equal(Date.parse(b.expired_at), Date.parse(b.uuid === claimed.uuid ? claimed.expires_at : unanswered.expires_at));
    }
    assert.ok(got.every((r) => r.verified));
    // The user who got a login URL but never confirmed hears that it expired.
    const msgs = await meta.waitForMessages(2, { to: user });
    assert.equal(msgs[1].text, 'Too late, ask again.');

    const post = await w.fetch(login, { method: 'POST', redirect: 'manual' });
    assert.equal(post.status, 410);
    assert.match(await post.text(), /expired/);

    await send(unanswered, 'wamid.late');
    const lateAt = Date.now();
    const all = await meta.waitForMessages(3, { to: user });
    assert.equal(all[2].text, 'Too late, ask again.');

    const status = await w.fetch(`/api/otp/v2/${WA}/otps/${unanswered.uuid}`, {
      headers: { Authorization: `Bearer ${w.secrets.tokens[WA]}` },
    });
    const data = (await status.json()).data;
    assert.equal(data.status, 'expired');
    assert.equal(data.failure, 'expired');
    assert.equal(data.callbacks.failed, 'delivered');
    // A callback for the late message would be a job of the object that sent the reply above:
    // one send window (200 ms) from the answer to that message covers it.
    await assertNothingFor(SEND_WINDOW_MS, () => receiver.requests.slice(2), 'no more callbacks after the late message', { since: lateAt });
    assert.equal(receiver.requests.length, 2, 'no more callbacks after the late message');
  } finally {
    await w.stop();
    await meta.close();
    await receiver.close();
  }
});
