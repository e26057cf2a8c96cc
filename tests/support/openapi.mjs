// Checks real HTTP answers against docs/openapi.yaml, so the document cannot drift from the
// Worker: `assertMatchesSpec` finds the documented response of an operation and status,
// validates the body (and the documented headers) with ajv's JSON Schema 2020-12 (OpenAPI
// 3.1's dialect), and throws a readable error when the status is not documented or the answer
// does not match. It also records what it checked, so a test can require every documented
// response to have been seen. Kept out of tests/e2e so `node --test` does not run it.
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

/**
 * Throws unless `status` is documented for `method pathTemplate` and `body` (parsed JSON)
 * matches its schema. With `headers` (a fetch Headers or a plain object), also checks the
 * documented headers (required ones must be present; present ones must match their schema)
 * and that the content type is the documented one.
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

  const media = response.content?.['application/json'];
  if (response.content && !media) throw new Error(`openapi: ${label} documents no application/json content`);
  if (media?.schema) {
    const v = validatorAt(`${at}/content/${escapeToken('application/json')}/schema`);
    if (!v(body)) problems.push(`body does not match the schema:\n${describeErrors(v.errors)}`);
  } else if (!response.content && body !== undefined && body !== null && body !== '') {
    problems.push('a body came back but none is documented');
  }

  if (get) {
    const type = get('content-type');
    if (media && !(type ?? '').toLowerCase().startsWith('application/json')) {
      problems.push(`content-type is ${JSON.stringify(type)}, documented application/json`);
    }
    for (const [name, ref] of Object.entries(response.headers ?? {})) {
      const { node: header, at: hat } = deref(ref, `${at}/headers/${escapeToken(name)}`);
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
 * request bodies and responses, and parameter `example`s. `{ where, pointer, value }`.
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
  return out;
}

/** Validates `value` against the schema at `ptr` (a `#/...` pointer into the document). */
export function checkAgainst(ptr, value) {
  const v = validatorAt(ptr);
  const valid = v(value);
  return { valid, errors: valid ? '' : describeErrors(v.errors) };
}
