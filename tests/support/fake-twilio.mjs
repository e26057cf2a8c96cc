// Fake Twilio Programmable Messaging REST API for end-to-end tests.
//
// Fakes `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` on 127.0.0.1 and checks what
// Twilio checks, answering with Twilio's own bodies (`{code, message, more_info, status}`):
//   - HTTP Basic auth `accountSid:authToken` -> else 401 code 20003 "Authenticate"
//     (with `WWW-Authenticate: Basic realm="Twilio API"`);
//   - the path: another AccountSid in the URL -> 401 code 20003; any other path -> 404 code 20404;
//   - `Content-Type: application/x-www-form-urlencoded` (any other body is not read, so `To`
//     is reported missing, as Twilio does);
//   - form fields: `To` required (21604) and E.164 `+<digits>` or `whatsapp:+<digits>` (21211);
//     `From` or `MessagingServiceSid` required (21603), `From` E.164 / `whatsapp:+...`, or one of
//     `senders` when given (21606), `MessagingServiceSid` `MG` + 32 hex (21701); `To` and `From`
//     on the same channel (21910); `Body` required unless `ContentSid`/`MediaUrl` (21602) and at
//     most 1600 characters (21617); optional `StatusCallback` an http(s) URL (21609).
// Success: 201 with a Message resource (`sid` SM + 32 hex, `status` "queued", or "accepted"
// with a Messaging Service, `date_created` RFC 2822, `uri`, `subresource_uris`, ...).
//
// Also exports `twilioSignature` (X-Twilio-Signature), and the form bodies Twilio posts to the
// product: `inboundWhatsappForm` (incoming WhatsApp message) and `statusCallbackForm`.
import { createHmac, randomBytes } from 'node:crypto';
import { startFakeServer } from './fake-server.mjs';

const API_VERSION = '2010-04-01';
const E164 = /^\+[1-9][0-9]{6,14}$/;

const hex32 = () => randomBytes(16).toString('hex');

/** Twilio's REST error body. */
function twilioError(status, code, message) {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

/** RFC 2822 date as Twilio writes it: `Thu, 24 Aug 2023 05:01:45 +0000`. */
function rfc2822(date) {
  return date.toUTCString().replace('GMT', '+0000');
}

/** Splits `whatsapp:+1555...` into `{ channel: 'whatsapp', number: '+1555...' }`. */
function address(value) {
  const m = /^([a-z]+):(.*)$/.exec(value);
  return m ? { channel: m[1], number: m[2] } : { channel: 'sms', number: value };
}

/**
 * Validates the form. Returns `null` or `{ status, body, reason }` with Twilio's answer.
 */
function validateSend(form, senders) {
  const fail = (code, message, reason, status = 400) => ({ status, body: twilioError(status, code, message), reason });
  const to = form.get('To');
  const from = form.get('From');
  const service = form.get('MessagingServiceSid');
  const body = form.get('Body');
  if (to === null || to === '') return fail(21604, "A 'To' phone number is required.", 'To missing');
  const toAddr = address(to);
  if (!['sms', 'whatsapp'].includes(toAddr.channel) || !E164.test(toAddr.number)) {
    return fail(21211, `The 'To' number ${to} is not a valid phone number.`, `To ${to} is not E.164 or whatsapp:+E.164`);
  }
  if ((from === null || from === '') && (service === null || service === '')) {
    return fail(21603, "A 'From' phone number is required.", 'From and MessagingServiceSid both missing');
  }
  if (service !== null && service !== '' && !/^MG[0-9a-f]{32}$/.test(service)) {
    return fail(21701, `The Messaging Service Sid ${service} is invalid.`, `MessagingServiceSid ${service} malformed`);
  }
  if (from !== null && from !== '') {
    const fromAddr = address(from);
    const known = senders ? senders.includes(from) : ['sms', 'whatsapp'].includes(fromAddr.channel) && E164.test(fromAddr.number);
    if (!known) {
      return fail(21606, `The From phone number ${from} is not a valid, SMS-capable inbound phone number or short code for your account.`, `From ${from} not a sender of this account`);
    }
    if (fromAddr.channel !== toAddr.channel) {
      return fail(21910, 'Invalid From and To pair. From and To should be of the same channel', `From ${from} and To ${to} on different channels`);
    }
  }
  const hasContent = form.get('ContentSid') || form.get('MediaUrl');
  if ((body === null || body === '') && !hasContent) return fail(21602, 'Message body is required.', 'Body missing');
  if (body !== null && body.length > 1600) {
    return fail(21617, 'The concatenated message body exceeds the 1600 character limit.', `Body is ${body.length} characters`);
  }
  const callback = form.get('StatusCallback');
  if (callback !== null) {
    let ok = false;
    try {
      const u = new URL(callback);
      ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && !u.hostname.includes('_');
    } catch { /* not a URL */ }
    if (!ok) return fail(21609, "Invalid 'StatusCallback'", `StatusCallback ${callback} is not an http(s) URL`);
  }
  return null;
}

/**
 * Starts the fake on 127.0.0.1 (random port).
 * @param {{accountSid: string, authToken: string, senders?: string[]}} options
 *   `senders`: when given, the only `From` values this account owns (else any E.164 or
 *   `whatsapp:+E.164` is accepted).
 */
export async function startFakeTwilio({ accountSid, authToken, senders } = {}) {
  if (!accountSid || !authToken) throw new Error('startFakeTwilio needs accountSid and authToken');
  const messages = [];
  const rejected = [];
  let failures = [];
  const failingRecipients = new Map();
  const expectedAuth = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`;

  function send(res, status, body, headers = {}) {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'twilio-request-id': `RQ${hex32()}`,
      ...headers,
    });
    res.end(text);
  }

  function handle(req, res, entry) {
    const { rawBody: raw, receivedAt } = entry;
    const reject = (status, body, reason, headers) => {
      rejected.push({ ...entry, status, reason, response: body });
      send(res, status, body, headers);
    };

    if (req.headers.authorization !== expectedAuth) {
      return reject(401, twilioError(401, 20003, 'Authenticate'),
        req.headers.authorization ? 'wrong Basic credentials' : 'missing Basic auth',
        { 'www-authenticate': 'Basic realm="Twilio API"' });
    }
    const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(entry.path);
    if (!m || req.method !== 'POST') {
      const status = m ? 405 : 404;
      const body = m ? twilioError(405, 20004, 'Method not allowed')
        : twilioError(404, 20404, `The requested resource ${entry.path} was not found`);
      return reject(status, body, m ? `method ${req.method}` : `unknown path ${entry.path}`);
    }
    if (m[1] !== accountSid) {
      return reject(401, twilioError(401, 20003, 'Authenticate'), `path AccountSid ${m[1]} is not ${accountSid}`,
        { 'www-authenticate': 'Basic realm="Twilio API"' });
    }

    const ctype = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const form = ctype === 'application/x-www-form-urlencoded' ? new URLSearchParams(raw) : new URLSearchParams();
    const problem = validateSend(form, senders);
    if (problem) {
      const reason = ctype === 'application/x-www-form-urlencoded' ? problem.reason
        : `content-type ${ctype || '(none)'} is not application/x-www-form-urlencoded`;
      return reject(problem.status, problem.body, reason);
    }

    const to = form.get('To');
    const permanent = failingRecipients.get(to) ?? failingRecipients.get(address(to).number);
    const failure = permanent ?? failures.shift();
    if (failure) {
      return reject(failure.status, twilioError(failure.status, failure.code, failure.message),
        permanent ? `failRecipient ${to}` : 'failNext');
    }

    const sid = `SM${hex32()}`;
    const service = form.get('MessagingServiceSid') || null;
    const from = form.get('From') || null;
    const body = form.get('Body') ?? '';
    const date = rfc2822(receivedAt);
    const uri = `/${API_VERSION}/Accounts/${accountSid}/Messages/${sid}.json`;
    const resource = {
      account_sid: accountSid,
      api_version: API_VERSION,
      body,
      date_created: date,
      date_sent: null,
      date_updated: date,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from,
      messaging_service_sid: service,
      num_media: form.get('MediaUrl') ? String(form.getAll('MediaUrl').length) : '0',
      num_segments: service ? '0' : String(body.length <= 160 ? 1 : Math.ceil(body.length / 153)),
      price: null,
      price_unit: 'USD',
      sid,
      status: service && !from ? 'accepted' : 'queued',
      subresource_uris: { media: `/${API_VERSION}/Accounts/${accountSid}/Messages/${sid}/Media.json` },
      to,
      uri,
    };
    messages.push({
      sid, to, from, messagingServiceSid: service, body,
      statusCallback: form.get('StatusCallback'),
      params: Object.fromEntries(form), resource, receivedAt,
    });
    send(res, 201, resource);
  }

  const server = await startFakeServer({ name: 'fake Twilio', handle });

  return {
    url: server.url,
    /** The send URL the product should call in place of `https://api.twilio.com/...`. */
    sendUrl: `${server.url}/${API_VERSION}/Accounts/${accountSid}/Messages.json`,
    accountSid,
    authToken,
    messages,
    rejected,
    requests: server.requests,
    /** The next `count` valid sends fail with this Twilio error. */
    failNext(count = 1, { status = 500, code = 20500, message = 'Internal Server Error' } = {}) {
      for (let i = 0; i < count; i++) failures.push({ status, code, message });
    },
    /** Every valid send to `to` (`+E.164` or `whatsapp:+E.164`) fails with this error. */
    failRecipient(to, { status = 400, code = 21610, message = 'Attempt to send to unsubscribed recipient' } = {}) {
      failingRecipients.set(String(to), { status, code, message });
    },
    clearFailures() {
      failures = [];
      failingRecipients.clear();
    },
    /** Answer every request `ms` later (for timeout tests); 0 turns it off. */
    setDelay: server.setDelay,
    reset() {
      messages.length = 0;
      rejected.length = 0;
      server.reset();
      this.clearFailures();
    },
    /**
     * Resolves with the accepted messages (to `to`, if given; `+1555...` also matches
     * `whatsapp:+1555...`) once at least `n` exist.
     */
    waitForMessages(n = 1, { to, timeoutMs = 5000 } = {}) {
      const match = () => messages.filter((msg) => to === undefined || msg.to === to || address(msg.to).number === to);
      return server.waitUntil(() => (match().length >= n ? match() : null), timeoutMs,
        () => `${n} message(s)${to ? ` to ${to}` : ''}, have ${match().length} (rejected: ${rejected.map((r) => r.reason).join('; ') || 'none'})`);
    },
    close: server.close,
  };
}

/**
 * `X-Twilio-Signature`: base64 HMAC-SHA1(authToken, url + each param name and value, names
 * sorted). `params` is an object (string or string[] values), a URLSearchParams or an array
 * of [name, value] pairs; repeated names contribute their values sorted, as Twilio's SDKs do.
 */
export function twilioSignature(authToken, url, params = {}) {
  const grouped = new Map();
  const entries = params instanceof URLSearchParams || Array.isArray(params) ? [...params] : Object.entries(params);
  for (const [k, v] of entries) {
    for (const value of [].concat(v)) {
      if (!grouped.has(k)) grouped.set(k, []);
      grouped.get(k).push(String(value));
    }
  }
  let data = url;
  for (const key of [...grouped.keys()].sort()) {
    for (const value of grouped.get(key).sort()) data += key + value;
  }
  return createHmac('sha1', authToken).update(Buffer.from(data, 'utf8')).digest('base64');
}

const whatsapp = (n) => (String(n).startsWith('whatsapp:') ? String(n) : `whatsapp:${n}`);

/**
 * The form Twilio posts to the product's incoming-message webhook for a WhatsApp text,
 * field for field as Twilio sends it. `from`/`to` may be given with or without `whatsapp:`.
 */
export function inboundWhatsappForm({
  from,
  to,
  body,
  messageSid = `SM${hex32()}`,
  accountSid,
  profileName = 'Test User',
  messagingServiceSid,
}) {
  const sender = whatsapp(from);
  const form = {
    SmsMessageSid: messageSid,
    NumMedia: '0',
    ProfileName: profileName,
    MessageType: 'text',
    SmsSid: messageSid,
    WaId: sender.replace(/^whatsapp:\+?/, ''),
    SmsStatus: 'received',
    Body: body,
    To: whatsapp(to),
    NumSegments: '1',
    ReferralNumMedia: '0',
    MessageSid: messageSid,
    AccountSid: accountSid,
    From: sender,
    ApiVersion: API_VERSION,
  };
  if (messagingServiceSid) form.MessagingServiceSid = messagingServiceSid;
  return form;
}

/**
 * The form Twilio posts to a message's `StatusCallback`. A `whatsapp:` recipient gets the
 * WhatsApp channel fields; `errorCode` (e.g. 30008) is added for failed/undelivered.
 */
export function statusCallbackForm({ messageSid, status, to, accountSid, errorCode, from }) {
  const isWhatsapp = String(to).startsWith('whatsapp:');
  const form = {};
  if (errorCode !== undefined && errorCode !== null) form.ErrorCode = String(errorCode);
  if (isWhatsapp) {
    form.ChannelPrefix = 'whatsapp';
    form.ApiVersion = API_VERSION;
    form.MessageStatus = status;
    form.SmsSid = messageSid;
    form.SmsStatus = status;
    form.ChannelInstallSid = `XE${hex32()}`;
    form.To = to;
    if (from) form.From = from;
    form.MessageSid = messageSid;
    form.StructuredMessage = 'false';
    form.AccountSid = accountSid;
    form.ChannelToAddress = String(to).replace(/^whatsapp:/, '');
  } else {
    form.SmsSid = messageSid;
    form.SmsStatus = status;
    form.MessageStatus = status;
    form.To = to;
    form.MessageSid = messageSid;
    form.AccountSid = accountSid;
    if (from) form.From = from;
    form.ApiVersion = API_VERSION;
  }
  return form;
}
