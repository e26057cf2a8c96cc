// Checks real HTTP answers against docs/openapi.yaml, so the document cannot drift from the
// Worker: `assertMatchesSpec` finds the documented response of an operation and status,
// validates the body (JSON, or the text of a text/plain, text/html or text/xml answer), the
// content type and the documented headers with ajv's JSON Schema 2020-12 (OpenAPI 3.1's
// dialect), and throws a readable error when the status is not documented or the answer
// does not match. It also records what it checked, so a test can require every documented
// response to have been seen.
//
// For what the Worker sends rather than answers: `assertCallbackMatchesSpec` checks a
// received callback (the document's `webhooks`: linkVerified, linkFailed) and
// `checkVerificationToken` decodes the login redirect's JWT and checks its header and claims
// against the documented schemas. Kept out of tests/e2e so `node --test` does not run it.
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const SPEC_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/openapi.yaml');

/** HTTP methods an OpenAPI path item may hold. */
export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** The parsed document. */
export const spec = YAML.parse(readFileSync(SPEC_PATH, 'utf8'));

// The whole document is one schema resource named `openapi`, so `#/components/...` refs
// inside it resolve, and any location in it can be compiled as `openapi#<pointer>`.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false });
addFormats(ajv);
// OpenAPI's top-level fields are not JSON Schema keywords; declare them so strict mode
// accepts the document as a schema resource (nothing under them is compiled unless referred to).
ajv.addVocabulary(['openapi', 'info', 'jsonSchemaDialect', 'servers', 'tags', 'paths', 'components', 'security', 'webhooks', 'externalDocs']);
ajv.addSchema(spec, 'openapi');

const validators = new Map();
function validatorAt(pointer) {
  let v = validators.get(pointer);
  if (!v) {
    v = ajv.compile({ $ref: `openapi${pointer}` });
    validators.set(pointer, v);
  }
  return v;
}

const escapeToken = (t) => encodeURIComponent(String(t).replaceAll('~', '~0').replaceAll('/', '~1'));
/** A URI-fragment JSON pointer (`#/a/b`) from path tokens. */
export const pointer = (...tokens) => `#${tokens.map((t) => `/${escapeToken(t)}`).join('')}`;

/** Follows a local `$ref` (responses, headers, parameters); returns the node and its pointer. */
function deref(node, at) {
  const seen = new Set();
  while (node && typeof node.$ref === 'string') {
    const ref = node.$ref;
    if (!ref.startsWith('#/') || seen.has(ref)) throw new Error(`openapi: cannot follow $ref ${ref} (at ${at})`);
    seen.add(ref);
    at = ref;
    node = ref
      .slice(2)
      .split('/')
      .map((t) => decodeURIComponent(t).replaceAll('~1', '/').replaceAll('~0', '~'))
      .reduce((n, t) => (n == null ? undefined : n[t]), spec);
    if (node === undefined) throw new Error(`openapi: $ref ${ref} points nowhere`);
  }
  return { node, at };
}

/** Every operation: `{ method: 'POST', path, operation }`. */
export function operations() {
  const out = [];
  for (const [p, item] of Object.entries(spec.paths ?? {})) {
    for (const m of METHODS) if (item[m]) out.push({ method: m.toUpperCase(), path: p, operation: item[m] });
  }
  return out;
}

/** Every request the service sends (the document's `webhooks`): `{ name, method, operation }`. */
export function webhookOperations() {
  const out = [];
  for (const [name, item] of Object.entries(spec.webhooks ?? {})) {
    for (const m of METHODS) if (item[m]) out.push({ name, method: m.toUpperCase(), operation: item[m] });
  }
  return out;
}

/** Every documented response, as `"POST /path 200"` keys. */
export function documentedResponses() {
  return operations().flatMap(({ method, path: p, operation }) =>
    Object.keys(operation.responses ?? {}).map((status) => `${method} ${p} ${status}`),
  );
}

const checked = new Set();
/** The `"METHOD /path status"` keys `assertMatchesSpec` has accepted so far. */
export const checkedResponses = () => new Set(checked);

function findOperation(method, pathTemplate) {
  const item = spec.paths?.[pathTemplate];
  if (!item) {
    throw new Error(`openapi: path ${pathTemplate} is not documented (documented: ${Object.keys(spec.paths ?? {}).join(', ')})`);
  }
  const m = method.toLowerCase();
  if (!item[m]) {
    const has = METHODS.filter((x) => item[x]).map((x) => x.toUpperCase());
    throw new Error(`openapi: ${method.toUpperCase()} ${pathTemplate} is not documented (documented methods: ${has.join(', ')})`);
  }
  return item[m];
}

function describeErrors(errors) {
  return errors
    .map((e) => `  - ${e.instancePath || '(root)'} ${e.message}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''} [${e.schemaPath}]`)
    .join('\n');
}

const headerGetter = (headers) => {
  if (!headers) return null;
  if (typeof headers.get === 'function') return (n) => headers.get(n);
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return (n) => lower[n.toLowerCase()] ?? null;
};

/** A header's text converted to what its schema describes (integers, numbers, booleans). */
function headerValue(text, schema) {
  const type = schema?.type;
  if ((type === 'integer' || type === 'number') && /^-?\d+(\.\d+)?$/.test(text.trim())) return Number(text);
  if (type === 'boolean' && /^(true|false)$/.test(text)) return text === 'true';
  return text;
}

/** The media type of a Content-Type value, lowercased, without parameters. */
const mediaTypeOf = (value) => (value ?? '').split(';')[0].trim().toLowerCase();

/**
 * Which documented media type an answer is: the one its Content-Type names (a problem is
 * reported when that is not documented), else the only one, else JSON for a non-string body.
 */
function chooseMedia(content, body, contentType, problems) {
  const types = Object.keys(content);
  if (contentType !== undefined) {
    const sent = mediaTypeOf(contentType);
    if (types.includes(sent)) return sent;
    problems.push(`content-type is ${JSON.stringify(contentType)}, documented ${types.join(' or ')}`);
  }
  if (types.length === 1) return types[0];
  if (typeof body !== 'string' && types.includes('application/json')) return 'application/json';
  return types.find((t) => !t.endsWith('json')) ?? types[0];
}

/** Checks `headers` against documented header objects; pushes readable problems. */
function checkHeaders(documented, at, get, problems) {
  for (const [name, ref] of Object.entries(documented ?? {})) {
    const { node: header, at: hat } = deref(ref, `${at}/${escapeToken(name)}`);
    const text = get(name);
    if (text == null) {
      if (header.required) problems.push(`required header ${name} is missing`);
      continue;
    }
    if (header.schema) {
      const v = validatorAt(`${hat}/schema`);
      if (!v(headerValue(text, header.schema))) {
        problems.push(`header ${name}: ${JSON.stringify(text)} does not match its schema:\n${describeErrors(v.errors)}`);
      }
    }
  }
}

/**
 * Throws unless `status` is documented for `method pathTemplate` and `body` matches its
 * schema: parsed JSON for JSON answers, the text for text/plain, text/html and text/xml
 * answers, `''` (or undefined) when no content is documented. With `headers` (a fetch
 * Headers or a plain object), also checks that the content type is a documented one and the
 * documented headers (required ones must be present; present ones must match their schema).
 */
export function assertMatchesSpec(method, pathTemplate, status, body, headers) {
  const op = findOperation(method, pathTemplate);
  const label = `${method.toUpperCase()} ${pathTemplate} ${status}`;
  const code = String(status);
  const responses = op.responses ?? {};
  if (!responses[code]) {
    throw new Error(
      `openapi: ${label} is not documented (documented statuses: ${Object.keys(responses).join(', ')}); body: ${JSON.stringify(body)}`,
    );
  }
  const { node: response, at } = deref(
    responses[code],
    pointer('paths', pathTemplate, method.toLowerCase(), 'responses', code),
  );
  const problems = [];
  const get = headerGetter(headers);

  if (response.content && Object.keys(response.content).length) {
    const type = chooseMedia(response.content, body, get ? (get('content-type') ?? '') : undefined, problems);
    if (response.content[type]?.schema) {
      const v = validatorAt(`${at}/content/${escapeToken(type)}/schema`);
      if (!type.endsWith('json') && typeof body !== 'string') {
        problems.push(`a ${type} answer must be checked as text, got ${typeof body}`);
      } else if (!v(body)) {
        problems.push(`body does not match the ${type} schema:\n${describeErrors(v.errors)}`);
      }
    }
  } else if (body !== undefined && body !== null && body !== '') {
    problems.push('a body came back but none is documented');
  }

  if (get) checkHeaders(response.headers, `${at}/headers`, get, problems);

  if (problems.length) {
    throw new Error(`openapi: ${label} does not match docs/openapi.yaml:\n${problems.join('\n')}\nbody: ${JSON.stringify(body)}`);
  }
  checked.add(`${method.toUpperCase()} ${pathTemplate} ${code}`);
}

/** The request body schema's verdict on `body`: `{ valid, errors }` (errors readable). */
export function checkRequestBody(method, pathTemplate, body) {
  const op = findOperation(method, pathTemplate);
  const { node: rb, at } = deref(op.requestBody, pointer('paths', pathTemplate, method.toLowerCase(), 'requestBody'));
  if (!rb?.content?.['application/json']?.schema) throw new Error(`openapi: ${method} ${pathTemplate} documents no JSON request body`);
  const v = validatorAt(`${at}/content/${escapeToken('application/json')}/schema`);
  const valid = v(body);
  return { valid, errors: valid ? '' : describeErrors(v.errors) };
}

/**
 * Every example of the document with the schema it illustrates: media-type `examples` of
 * request bodies and responses (of paths and webhooks), and parameter `example`s (of paths,
 * operations, webhooks and components). `{ where, pointer, value }`.
 */
export function examples() {
  const out = [];
  const media = (node, at, where) => {
    const { node: n, at: a } = deref(node, at);
    for (const [type, m] of Object.entries(n?.content ?? {})) {
      const schemaAt = `${a}/content/${escapeToken(type)}/schema`;
      if (m.example !== undefined) out.push({ where: `${where} example`, pointer: schemaAt, value: m.example });
      for (const [name, ex] of Object.entries(m.examples ?? {})) {
        out.push({ where: `${where} example ${name}`, pointer: schemaAt, value: deref(ex, '').node.value });
      }
    }
  };
  for (const { method, path: p, operation } of operations()) {
    const at = pointer('paths', p, method.toLowerCase());
    if (operation.requestBody) media(operation.requestBody, `${at}/requestBody`, `${method} ${p} request`);
    for (const [status, r] of Object.entries(operation.responses ?? {})) {
      media(r, `${at}/responses/${status}`, `${method} ${p} ${status}`);
    }
  }
  const params = (list, at, where) =>
    (list ?? []).forEach((p, i) => {
      const { node, at: a } = deref(p, `${at}/parameters/${i}`);
      if (node.example !== undefined) out.push({ where: `${where} parameter ${node.name}`, pointer: `${a}/schema`, value: node.example });
    });
  for (const [p, item] of Object.entries(spec.paths ?? {})) {
    params(item.parameters, pointer('paths', p), p);
    for (const m of METHODS) if (item[m]) params(item[m].parameters, pointer('paths', p, m), `${m.toUpperCase()} ${p}`);
  }
  for (const { name, method, operation } of webhookOperations()) {
    const at = pointer('webhooks', name, method.toLowerCase());
    if (operation.requestBody) media(operation.requestBody, `${at}/requestBody`, `webhook ${name} request`);
    params(operation.parameters, at, `webhook ${name}`);
  }
  for (const [name, p] of Object.entries(spec.components?.parameters ?? {})) {
    if (p.example !== undefined) out.push({ where: `components parameter ${name}`, pointer: `${pointer('components', 'parameters', name)}/schema`, value: p.example });
  }
  return out;
}

/** Validates `value` against the schema at `ptr` (a `#/...` pointer into the document). */
export function checkAgainst(ptr, value) {
  const v = validatorAt(ptr);
  const valid = v(value);
  return { valid, errors: valid ? '' : describeErrors(v.errors) };
}

/**
 * Throws unless a request the Worker sent to a callback URL matches the document's webhook
 * `name` (`linkVerified`, `linkFailed`): its JSON body (the raw text or parsed) matches the
 * request schema, and its headers (a fetch Headers, or node's `req.headers`) the documented
 * header parameters (`webhook-id`, `webhook-timestamp`, `webhook-signature`) and
 * `Content-Type: application/json`; a raw-text body must also keep the documented key order
 * (Hypersender's). Checks shape only; verify the signature with `standardwebhooks`. Returns
 * the parsed body.
 */
export function assertCallbackMatchesSpec(name, { headers, body, method = 'POST' }) {
  const item = spec.webhooks?.[name];
  if (!item) throw new Error(`openapi: webhook ${name} is not documented (documented: ${Object.keys(spec.webhooks ?? {}).join(', ')})`);
  const op = item[method.toLowerCase()];
  if (!op) throw new Error(`openapi: webhook ${name} documents no ${method.toUpperCase()}`);
  const at = pointer('webhooks', name, method.toLowerCase());
  const problems = [];
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      problems.push('the body is not JSON');
    }
  }
  const { node: rb, at: rbAt } = deref(op.requestBody, `${at}/requestBody`);
  const schema = rb?.content?.['application/json']?.schema;
  if (schema && !problems.length) {
    const v = validatorAt(`${rbAt}/content/${escapeToken('application/json')}/schema`);
    if (!v(parsed)) problems.push(`body does not match the schema:\n${describeErrors(v.errors)}`);
    const { node: resolved } = deref(schema, '');
    const order = Object.keys(resolved.properties ?? {});
    if (typeof body === 'string' && parsed && order.length && Object.keys(parsed).join() !== order.join()) {
      problems.push(`keys are ${Object.keys(parsed).join(', ')}; documented order ${order.join(', ')}`);
    }
  }
  const get = headerGetter(headers ?? {});
  const type = get('content-type');
  if (mediaTypeOf(type) !== 'application/json') problems.push(`content-type is ${JSON.stringify(type)}, documented application/json`);
  const documented = {};
  (op.parameters ?? []).forEach((p, i) => {
    const { node, at: pAt } = deref(p, `${at}/parameters/${i}`);
    if (node.in === 'header') documented[node.name] = { $ref: pAt };
  });
  checkHeaders(documented, `${at}/parameters`, get, problems);
  if (problems.length) {
    throw new Error(`openapi: webhook ${name} does not match docs/openapi.yaml:\n${problems.join('\n')}\nbody: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
  }
  return parsed;
}

const b64urlJson = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

/**
 * Decodes a verification token (the login redirect's `#token=`) and checks its header and
 * claims against the document's `VerificationTokenHeader` and `VerificationTokenClaims`
 * (shape only: verify the signature with a JWT library). Returns `{ header, claims }`.
 */
export function checkVerificationToken(jwt) {
  const parts = String(jwt).split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
    throw new Error(`openapi: verification token is not three base64url parts: ${jwt}`);
  }
  const header = b64urlJson(parts[0]);
  const claims = b64urlJson(parts[1]);
  const problems = [];
  for (const [what, value] of [['VerificationTokenHeader', header], ['VerificationTokenClaims', claims]]) {
    const { valid, errors } = checkAgainst(pointer('components', 'schemas', what), value);
    if (!valid) problems.push(`${what}:\n${errors}`);
  }
  if (problems.length) throw new Error(`openapi: verification token does not match docs/openapi.yaml:\n${problems.join('\n')}`);
  return { header, claims };
}
