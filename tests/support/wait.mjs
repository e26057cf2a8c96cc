// How end-to-end tests wait. Three ways, and no test sleeps on its own:
//   - `waitFor`: until something happened (a message arrived, a status changed), with a
//     deadline that is only ever reached when the test fails;
//   - `assertNothingFor`: a stated, bounded watch that something did NOT happen (no send, no
//     callback); the call site says why its time is long enough;
//   - `letTimePass`: a real time limit of the Worker (a lockout, a cooldown, the rate
//     limiter's clock minute) has to run out; the call site names it.
// Kept out of tests/e2e so `node --test` does not run it.
import { AssertionError } from 'node:assert';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Polls `predicate` (sync or async) every `interval` ms until it returns a truthy value, and
 * returns that value. After `timeout` ms it throws `waited <timeout> ms for <what>`; `what`
 * may be a function, called then, so the message can say what was seen instead.
 */
export async function waitFor(predicate, { timeout = 5000, interval = 25, what = 'a condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new Error(`waited ${timeout} ms for ${typeof what === 'function' ? what() : what}`);
    }
    await delay(Math.min(interval, left));
  }
}

/**
 * Watches for `ms` ms that nothing arrives: `check` (sync or async) returns what arrived that
 * should not have (a non-empty array or any other truthy value), or nothing (falsy, `0`, `[]`).
 * Fails as soon as something arrives, and checks once more when the time is up, so it asserts
 * at least what "sleep `ms`, then check once" did. `why` names what must stay quiet; the call
 * site's comment says why `ms` is long enough. `since` (a `Date.now()` reading) starts the
 * watch at that moment instead of now, e.g. at the request that could have caused a send.
 */
export async function assertNothingFor(ms, check, why, { since = Date.now(), interval = 10 } = {}) {
  const until = since + ms;
  for (;;) {
    const got = await check();
    if (Array.isArray(got) ? got.length > 0 : Boolean(got)) {
      throw new AssertionError({
        message: `${why}: got ${describe(got)} within ${Date.now() - since} ms (watched for ${ms} ms)`,
        actual: got,
        expected: 'nothing',
        operator: 'assertNothingFor',
      });
    }
    const left = until - Date.now();
    if (left <= 0) return;
    await delay(Math.min(interval, left));
  }
}

/**
 * How long a watch that nothing was sent lasts, from the answer to the request that could have
 * caused the send. The Worker stores a delivery (a code, a reply, a callback) as a job due now
 * in a Durable Object and sets the object's alarm to it; workerd fires an alarm within ~10 ms of
 * its time, and the send reaches a fake on loopback a few ms later. Measured on the dev build
 * (150 sends to the fake Meta, 50 of them at once): every send arrived by 5 ms after the
 * request's answer, most before it. 200 ms is forty times that.
 */
export const SEND_WINDOW_MS = 200;

/**
 * Lets `ms` ms of real time pass, for a time limit of the Worker that only the clock can end
 * (`why` names it: "the 2 s lockout"). Not for waiting on an event: use `waitFor`.
 */
export async function letTimePass(ms, why) {
  if (!why) throw new Error('letTimePass: say which time limit has to pass');
  await delay(ms);
}

/**
 * The local rate limiter counts in fixed windows that reset on every clock minute: when fewer
 * than `needMs` ms remain in this minute, lets the minute turn (plus 250 ms), so a burst that
 * must land in one window does.
 */
export async function awayFromMinuteBoundary(needMs = 8000) {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needMs) await letTimePass(left + 250, 'the rate limiter\'s window resets on the clock minute');
}

function describe(got) {
  try {
    const text = JSON.stringify(got, (k, v) => (typeof v === 'string' && v.length > 200 ? `${v.slice(0, 200)}…` : v));
    return text.length > 600 ? `${text.slice(0, 600)}…` : text;
  } catch {
    return String(got);
  }
}
