// Fake Meta WhatsApp Cloud API (Graph API) for end-to-end tests.
//
// Fakes the send endpoint `POST /{version}/{phoneNumberId}/messages` on 127.0.0.1 and checks
// what Graph checks, answering with Graph's own success and error bodies:
//   - `Authorization: Bearer <accessToken>`: missing -> 401 code 104, wrong -> 401 code 190
//     (type OAuthException, with Graph's `WWW-Authenticate` header);
//   - the path: another version -> 400 code 2500 "Unknown path components", another phone
//     number id -> 400 code 100 subcode 33 "Unsupported post request..." (GraphMethodException);
//   - `Content-Type: application/json` (anything else reads as an empty body, so the first
//     required parameter is reported missing, as Graph does for an unparsed body);
//   - the JSON body: `messaging_product: "whatsapp"`, `to` of 8-15 digits (no `+`), optional
//     `recipient_type: "individual"`, and `type` `text` (`text.body` 1-4096 chars, optional
//     boolean `preview_url`), `template` (`name`, `language.code`, optional `components`), or
//     `interactive` of type `cta_url` (`body.text` 1-1024 chars, `action.name: "cta_url"`,
//     `action.parameters.display_text` 1-20 chars and `url`, https, or http to a loopback host
//     as the local setups use; optional `header` and `footer.text` of at most 60 chars).
//     Templates of another category (when `templates` names them) must carry a body
//     component whose parameter count matches the template's `params` (if given), each
//     `{type:"text", text}` with a non-empty text.
//     Authentication templates (every template, unless `templates` says otherwise) must carry
//     a body component with one text parameter (the code) and a button component with
//     `sub_type: "url"`, `index: "0"` and one text parameter equal to that code, under 15
//     characters. Errors use Graph's shape `{error:{message,type,code,error_data:{
//     messaging_product,details},fbtrace_id}}` with code 100 (bad or missing parameter),
//     132000 (parameter count mismatch), 131009 (parameter value not valid) or 132001
//     (unknown template, when `templates` is given).
// Success: 200 `{messaging_product:"whatsapp", contacts:[{input, wa_id}], messages:[{id}]}`
// (`message_status: "accepted"` added for templates, as the Cloud API does).
//
// Also exports builders for what Meta posts to the product: `inboundTextPayload`,
// `statusPayload`, and `metaSignature` for the `X-Hub-Signature-256` header.
import { createHmac, randomBytes } from 'node:crypto';
import { startFakeServer } from './fake-server.mjs';

const GRAPH_DOCS = 'https://developers.facebook.com/docs/graph-api';
const DIGITS = /^[0-9]{8,15}$/;

/** A Graph `fbtrace_id`: 11 url-safe base64-ish characters, like `AbCdEfGhIjK`. */
function fbtraceId() {
  return randomBytes(9).toString('base64').replace(/[+/=]/g, 'x').slice(0, 11);
}

/**
 * A message id shaped like the real ones: `wamid.` + base64 of a small protobuf-like frame
 * holding the recipient number and a random hex id, e.g. `wamid.HBgLMTY1MDM4Nzk0MzkVAgAR...`.
 */
function wamid(to) {
  const digits = Buffer.from(String(to), 'latin1');
  const rand = Buffer.from(randomBytes(9).toString('hex').toUpperCase(), 'latin1');
  const frame = Buffer.concat([
    Buffer.from([0x1c, 0x18, digits.length]), digits,
    Buffer.from([0x15, 0x02, 0x00, 0x11, 0x18, rand.length]), rand, Buffer.from([0x00]),
  ]);
  return `wamid.${frame.toString('base64')}`;
}

/** Graph's error body. `details` adds WhatsApp's `error_data`. */
function graphError({ message, type = 'OAuthException', code, subcode, details }) {
  const error = { message, type, code };
  if (subcode !== undefined) error.error_subcode = subcode;
  if (details !== undefined) error.error_data = { messaging_product: 'whatsapp', details };
  error.fbtrace_id = fbtraceId();
  return { error };
}

/** A WhatsApp-level error as Graph words it: `(#<code>) <message>`. */
function waError(code, message, details = message) {
  return graphError({ message: `(#${code}) ${message}`, code, details });
}

const missing = (param) => waError(100, `The parameter ${param} is required.`, `The parameter ${param} is required.`);
const invalid = (details) => waError(100, 'Invalid parameter', details);

/**
 * Validates a parsed send body. Returns `null` when it is acceptable, else
 * `{ status, body, reason }` with Graph's answer.
 */
function validateSend(body, templates) {
  const fail = (errBody, reason, status = 400) => ({ status, body: errBody, reason });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return fail(missing('messaging_product'), 'body is not a JSON object');
  }
  if (body.messaging_product === undefined) return fail(missing('messaging_product'), 'messaging_product missing');
  if (body.messaging_product !== 'whatsapp') {
    return fail(invalid("Param messaging_product must be 'whatsapp'"), 'messaging_product is not whatsapp');
  }
  if (body.recipient_type !== undefined && body.recipient_type !== 'individual') {
    return fail(invalid("Param recipient_type must be 'individual'"), 'recipient_type is not individual');
  }
  if (body.to === undefined) return fail(missing('to'), 'to missing');
  if (typeof body.to !== 'string' || !DIGITS.test(body.to)) {
    return fail(invalid(`Param to must be a phone number of 8 to 15 digits without '+', got ${JSON.stringify(body.to)}`), 'to is not 8-15 digits');
  }
  const type = body.type ?? 'text';
  if (type === 'text') {
    const text = body.text;
    if (text === undefined || text === null || typeof text !== 'object') return fail(missing('text'), 'text missing');
    if (text.body === undefined) return fail(missing("text['body']"), 'text.body missing');
    if (typeof text.body !== 'string' || text.body.length === 0) {
      return fail(invalid("Param text['body'] must be a non-empty string"), 'text.body empty or not a string');
    }
    if (text.body.length > 4096) {
      return fail(invalid("Param text['body'] must be at most 4096 characters long."), 'text.body over 4096 characters');
    }
    if (text.preview_url !== undefined && typeof text.preview_url !== 'boolean') {
      return fail(invalid("Param text['preview_url'] must be a boolean"), 'text.preview_url not boolean');
    }
    return null;
  }
  if (type === 'template') return validateTemplate(body.template, templates, fail);
  if (type === 'interactive') return validateInteractive(body.interactive, fail);
  return fail(invalid(`Param type must be one of {text, template, interactive} in this fake, got ${JSON.stringify(type)}`), `unsupported type ${type}`);
}

/** An interactive call-to-action URL button message, as the Cloud API checks it. */
function validateInteractive(interactive, fail) {
  if (interactive === undefined || interactive === null || typeof interactive !== 'object') return fail(missing('interactive'), 'interactive missing');
  if (interactive.type !== 'cta_url') {
    return fail(invalid(`Param interactive['type'] must be one of {button, list, cta_url, ...}; this fake knows cta_url, got ${JSON.stringify(interactive.type)}`), `interactive type ${interactive.type}`);
  }
  const text = interactive.body?.text;
  if (text === undefined) return fail(missing("interactive['body']['text']"), 'interactive.body.text missing');
  if (typeof text !== 'string' || text.length === 0) return fail(invalid("Param interactive['body']['text'] must be a non-empty string"), 'interactive.body.text empty');
  if ([...text].length > 1024) return fail(invalid("Param interactive['body']['text'] must be at most 1024 characters long."), 'interactive.body.text over 1024 characters');
  if (interactive.footer !== undefined && (typeof interactive.footer?.text !== 'string' || [...interactive.footer.text].length > 60)) {
    return fail(invalid("Param interactive['footer']['text'] must be a string of at most 60 characters"), 'interactive.footer.text invalid');
  }
  const action = interactive.action;
  if (action === undefined || action === null || typeof action !== 'object') return fail(missing("interactive['action']"), 'interactive.action missing');
  if (action.name !== 'cta_url') return fail(invalid("Param interactive['action']['name'] must be 'cta_url'"), 'interactive.action.name is not cta_url');
  const p = action.parameters;
  if (p === undefined || p === null || typeof p !== 'object') return fail(missing("interactive['action']['parameters']"), 'interactive.action.parameters missing');
  if (p.display_text === undefined) return fail(missing("interactive['action']['parameters']['display_text']"), 'display_text missing');
  if (typeof p.display_text !== 'string' || p.display_text.length === 0 || [...p.display_text].length > 20) {
    return fail(invalid("Param interactive['action']['parameters']['display_text'] must be 1 to 20 characters long."), 'display_text empty or over 20 characters');
  }
  if (p.url === undefined) return fail(missing("interactive['action']['parameters']['url']"), 'url missing');
  let url;
  try {
    url = new URL(p.url);
  } catch {
    return fail(invalid("Param interactive['action']['parameters']['url'] must be a valid URL"), 'url not a URL');
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    return fail(invalid("Param interactive['action']['parameters']['url'] must be an https URL"), `url ${url.protocol} is not https`);
  }
  return null;
}

function validateTemplate(template, templates, fail) {
  if (template === undefined || template === null || typeof template !== 'object') return fail(missing('template'), 'template missing');
  if (template.name === undefined) return fail(missing("template['name']"), 'template.name missing');
  if (typeof template.name !== 'string' || template.name.length === 0) {
    return fail(invalid("Param template['name'] must be a non-empty string"), 'template.name empty');
  }
  if (template.language === undefined) return fail(missing("template['language']"), 'template.language missing');
  if (typeof template.language !== 'object' || template.language === null || template.language.code === undefined) {
    return fail(missing("template['language']['code']"), 'template.language.code missing');
  }
  const lang = template.language.code;
  if (typeof lang !== 'string' || !/^[a-z]{2,3}(_[A-Z]{2})?$/.test(lang)) {
    return fail(invalid("Param template['language']['code'] must be a language code such as en or en_US"), 'template.language.code malformed');
  }
  let category = 'AUTHENTICATION';
  if (templates) {
    const known = templates[template.name];
    const languages = known ? [].concat(known.language ?? known.languages ?? []) : [];
    if (!known || (languages.length > 0 && !languages.includes(lang))) {
      return fail(
        waError(132001, 'Template name does not exist in the translation', `template name (${template.name}) does not exist in ${lang}`),
        `unknown template ${template.name}/${lang}`, 404,
      );
    }
    category = String(known.category ?? 'AUTHENTICATION').toUpperCase();
  }
  const components = template.components;
  if (components !== undefined && !Array.isArray(components)) {
    return fail(invalid("Param template['components'] must be an array"), 'template.components not an array');
  }
  if (category !== 'AUTHENTICATION') {
    // A utility or marketing template: its body's text parameters fill {{1}}, {{2}}, ...
    const known = templates[template.name];
    const body = (components ?? []).find((c) => c && c.type === 'body');
    const params = body && Array.isArray(body.parameters) ? body.parameters : [];
    if (known.params !== undefined && params.length !== known.params) {
      return fail(waError(132000, 'Number of parameters does not match the expected number of params',
        `body: number of localizable_params (${params.length}) does not match the expected number of params (${known.params})`),
      `template body has ${params.length} parameters, expected ${known.params}`);
    }
    if (params.some((x) => !x || x.type !== 'text' || typeof x.text !== 'string' || x.text.length === 0)) {
      return fail(invalid("Param template['components'][body]['parameters'] must be {type:'text', text:<non-empty>}"), 'body parameter is not a non-empty text parameter');
    }
    return null;
  }

  // Authentication template: body {{1}} = code, URL (copy-code / one-tap) button 0 = code.
  const list = components ?? [];
  const body = list.find((c) => c && c.type === 'body');
  const bodyParams = body && Array.isArray(body.parameters) ? body.parameters : [];
  if (bodyParams.length !== 1) {
    return fail(waError(132000, 'Number of parameters does not match the expected number of params',
      `body: number of localizable_params (${bodyParams.length}) does not match the expected number of params (1)`),
    `authentication template body has ${bodyParams.length} parameters, expected 1`);
  }
  const code = bodyParams[0];
  if (!code || code.type !== 'text' || typeof code.text !== 'string' || code.text.length === 0) {
    return fail(invalid("Param template['components'][0]['parameters'][0] must be {type:'text', text:<code>}"), 'body parameter is not a text parameter');
  }
  const buttons = list.filter((c) => c && c.type === 'button');
  if (buttons.length !== 1) {
    return fail(waError(132000, 'Number of parameters does not match the expected number of params',
      `buttons: number of button components (${buttons.length}) does not match the expected number of buttons (1)`),
    `authentication template has ${buttons.length} button components, expected 1`);
  }
  const button = buttons[0];
  if (button.sub_type !== 'url') {
    return fail(invalid(`Param template['components'][button]['sub_type'] must be 'url' for an authentication template, got ${JSON.stringify(button.sub_type)}`), 'button sub_type is not url');
  }
  if (button.index !== '0') {
    return fail(invalid(`Param template['components'][button]['index'] must be '0', got ${JSON.stringify(button.index)}`), 'button index is not "0"');
  }
  const buttonParams = Array.isArray(button.parameters) ? button.parameters : [];
  if (buttonParams.length !== 1) {
    return fail(waError(132000, 'Number of parameters does not match the expected number of params',
      `button: number of parameters (${buttonParams.length}) does not match the expected number of params (1)`),
    `button has ${buttonParams.length} parameters, expected 1`);
  }
  const p = buttonParams[0];
  if (!p || p.type !== 'text' || typeof p.text !== 'string') {
    return fail(invalid("Param button parameter must be {type:'text', text:<code>}"), 'button parameter is not a text parameter');
  }
  if (p.text.length >= 15) {
    return fail(waError(131009, 'Parameter value is not valid',
      `Button at index 0 of type Url has a parameter value of length ${p.text.length}, the code must be under 15 characters`),
    'code is 15 characters or more');
  }
  if (p.text !== code.text) {
    return fail(waError(131009, 'Parameter value is not valid',
      'The button parameter must be the same one-time code as the body parameter'),
    'button code differs from body code');
  }
  return null;
}

/**
 * Starts the fake on 127.0.0.1 (random port).
 * @param {{accessToken: string, phoneNumberId: string, version?: string,
 *          templates?: Record<string, {category?: string, language?: string|string[], params?: number}>}} options
 *   `templates`: when given, only these template names (and languages) exist; a template whose
 *   category is not AUTHENTICATION has its body parameters checked (`params` of them, when
 *   given). Without it every template is treated as an authentication template.
 */
export async function startFakeMeta({ accessToken, phoneNumberId, version = 'v21.0', templates } = {}) {
  if (!accessToken || !phoneNumberId) throw new Error('startFakeMeta needs accessToken and phoneNumberId');
  const messages = [];
  const rejected = [];
  let failures = []; // queued { status, code, message }
  const failingRecipients = new Map();

  function send(res, status, body, headers = {}) {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(text),
      'x-fb-trace-id': fbtraceId(),
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

    // Authentication first, as Graph does before looking at the object.
    const auth = req.headers.authorization;
    const bearer = typeof auth === 'string' && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '') : null;
    if (!bearer) {
      const msg = 'An access token is required to request this resource.';
      return reject(401, graphError({ message: msg, code: 104 }), 'missing bearer token',
        { 'www-authenticate': `OAuth "Facebook Platform" "invalid_request" "${msg}"` });
    }
    if (bearer !== accessToken) {
      const msg = 'Invalid OAuth access token - Cannot parse access token';
      return reject(401, graphError({ message: msg, code: 190 }), 'wrong access token',
        { 'www-authenticate': `OAuth "Facebook Platform" "invalid_token" "${msg}"` });
    }

    const parts = entry.path.split('/').filter(Boolean);
    if (parts.length !== 3 || parts[0] !== version || parts[2] !== 'messages') {
      return reject(400, graphError({ message: `Unknown path components: ${entry.path}`, code: 2500 }),
        `unknown path ${entry.path} (expected /${version}/${phoneNumberId}/messages)`);
    }
    if (parts[1] !== phoneNumberId || req.method !== 'POST') {
      const verb = req.method.toLowerCase();
      const msg = `Unsupported ${verb} request. Object with ID '${parts[1]}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at ${GRAPH_DOCS}`;
      return reject(400, graphError({ message: msg, type: 'GraphMethodException', code: 100, subcode: 33 }),
        req.method !== 'POST' ? `method ${req.method}` : `unknown phone number id ${parts[1]}`);
    }

    // Only a JSON body is read; anything else leaves no parameters, as an unparsed body would.
    const ctype = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    let body = {};
    if (ctype === 'application/json') {
      try {
        body = JSON.parse(raw);
      } catch {
        return reject(400, invalid('Request body is not valid JSON'), 'body is not valid JSON');
      }
    }
    const problem = validateSend(body, templates);
    if (problem) {
      const reason = ctype === 'application/json' ? problem.reason : `content-type ${ctype || '(none)'} is not application/json`;
      const errBody = ctype === 'application/json' ? problem.body
        : invalid(`Content-Type must be application/json, got ${ctype || 'none'}`);
      return reject(problem.status, errBody, reason);
    }

    const type = body.type ?? 'text';
    const permanent = failingRecipients.get(body.to);
    const transient = permanent ? null : failures.shift();
    const failure = permanent ?? transient;
    if (failure) {
      return reject(failure.status, waError(failure.code, failure.message),
        permanent ? `failRecipient ${body.to}` : 'failNext');
    }

    const id = wamid(body.to);
    messages.push({
      id, to: body.to, type,
      text: type === 'text' ? body.text.body : type === 'interactive' ? body.interactive.body.text : undefined,
      interactive: type === 'interactive' ? body.interactive : undefined,
      template: type === 'template' ? body.template : undefined,
      code: type === 'template' ? templateCode(body.template) : undefined,
      body, receivedAt,
    });
    const sent = { id };
    if (type === 'template') sent.message_status = 'accepted';
    send(res, 200, { messaging_product: 'whatsapp', contacts: [{ input: body.to, wa_id: body.to }], messages: [sent] });
  }

  const server = await startFakeServer({ name: 'fake Meta', handle });

  return {
    url: server.url,
    /** The base the product should use in place of `https://graph.facebook.com`. */
    sendUrl: `${server.url}/${version}/${phoneNumberId}/messages`,
    version,
    phoneNumberId,
    accessToken,
    messages,
    rejected,
    requests: server.requests,
    /** The next `count` valid sends fail with this Graph error. */
    failNext(count = 1, { status = 500, code = 131000, message = 'Something went wrong' } = {}) {
      for (let i = 0; i < count; i++) failures.push({ status, code, message });
    },
    /** Every valid send to `to` fails with this Graph error until `clearFailures()`. */
    failRecipient(to, { status = 400, code = 131026, message = 'Message undeliverable' } = {}) {
      failingRecipients.set(String(to).replace(/^\+/, ''), { status, code, message });
    },
    clearFailures() {
      failures = [];
      failingRecipients.clear();
    },
    /** Answer every request `ms` later (for timeout tests); 0 turns it off. */
    setDelay: server.setDelay,
    /** Forgets recorded messages, requests and knobs. */
    reset() {
      messages.length = 0;
      rejected.length = 0;
      server.reset();
      this.clearFailures();
    },
    /** Resolves with the accepted messages (to `to`, if given) once at least `n` exist. */
    waitForMessages(n = 1, { to, timeoutMs = 5000 } = {}) {
      const want = to === undefined ? null : String(to).replace(/^\+/, '');
      const match = () => messages.filter((m) => want === null || m.to === want);
      return server.waitUntil(() => (match().length >= n ? match() : null), timeoutMs,
        () => `${n} message(s)${want ? ` to ${want}` : ''}, have ${match().length} (rejected: ${rejected.map((r) => r.reason).join('; ') || 'none'})`);
    },
    close: server.close,
  };
}

/** The code carried by an authentication template (its body's first text parameter). */
function templateCode(template) {
  const body = template?.components?.find?.((c) => c && c.type === 'body');
  return body?.parameters?.[0]?.text;
}

/**
 * The webhook Meta posts for a text message a user sends to the business number, as in
 * Meta's "messages webhook reference" example.
 */
export function inboundTextPayload({
  phoneNumberId,
  displayNumber = '15550783881',
  from,
  body,
  id = wamid(from),
  timestamp = Math.floor(Date.now() / 1000),
  name = 'Test User',
  wabaId = '102290129340398',
}) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: String(wabaId),
        changes: [
          {
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: String(displayNumber), phone_number_id: String(phoneNumberId) },
              contacts: [{ profile: { name }, wa_id: String(from) }],
              messages: [
                { from: String(from), id, timestamp: String(timestamp), type: 'text', text: { body } },
              ],
            },
            field: 'messages',
          },
        ],
      },
    ],
  };
}

/**
 * The webhook Meta posts when a sent message changes status (`sent`, `delivered`, `read`,
 * `failed`). `errors` (for `failed`) is an array of `{code, title, message?, details?}`;
 * missing `message`/`error_data`/`href` are filled as Meta does.
 */
export function statusPayload({
  phoneNumberId,
  id,
  status,
  recipientId,
  timestamp = Math.floor(Date.now() / 1000),
  errors,
  displayNumber = '15550783881',
  wabaId = '102290129340398',
  category = 'authentication',
}) {
  const item = { id, status, timestamp: String(timestamp), recipient_id: String(recipientId) };
  if (status === 'sent' || status === 'delivered' || status === 'read') {
    item.pricing = { billable: true, pricing_model: 'PMP', category, type: 'regular' };
  }
  if (errors && errors.length) {
    item.errors = errors.map((e) => ({
      code: e.code,
      title: e.title ?? e.message,
      message: e.message ?? e.title,
      error_data: { details: e.details ?? e.error_data?.details ?? e.message ?? e.title },
      href: e.href ?? 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/',
    }));
  }
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: String(wabaId),
        changes: [
          {
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: String(displayNumber), phone_number_id: String(phoneNumberId) },
              statuses: [item],
            },
            field: 'messages',
          },
        ],
      },
    ],
  };
}

/** `X-Hub-Signature-256` for a webhook body: `sha256=<hex HMAC-SHA256(appSecret, rawBody)>`. */
export function metaSignature(appSecret, rawBody) {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;
}
