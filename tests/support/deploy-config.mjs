// Deploy configurations for tests: wrangler.toml as a deploy reads it (top-level tables, its
// [secrets] kept), without [build] (the tests run after the build) and with absolute paths, so
// it can live in a temporary directory. Kept out of tests/e2e so `node --test` does not run it.
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './worker.mjs';

/**
 * Writes `<dir>/wrangler.toml` and returns its path. `instances`: TOML text of
 * `[[vars.INSTANCES]]` tables (replacing `INSTANCES = []`); `vars`: lines added to [vars];
 * `top`: top-level keys (routes, workers_dev); `replace`: [from, to] edits of the text.
 */
export function deployConfig(dir, { instances = '', vars = '', top = '', replace = [] } = {}) {
  let text = fs.readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8');
  const lines = [];
  let skip = false;
  for (const line of text.split('\n')) {
    if (/^\[(env\.[a-z]+\.)?build\]/.test(line)) { skip = true; continue; }
    if (/^\[/.test(line)) skip = false;
    if (!skip) lines.push(line);
  }
  text = lines.join('\n')
    .replace(/^main = "(.*)"$/gm, (_, p) => `main = "${path.join(ROOT, p)}"`)
    .replace(/^directory = "(.*)"$/gm, (_, p) => `directory = "${path.join(ROOT, p)}"`)
    .replace(/^(compatibility_date = .*)$/m, `$1\n${top}`)
    .replace(/^INSTANCES = \[\]$/m, instances ? vars : `INSTANCES = []\n${vars}`);
  for (const [from, to] of replace) {
    if (!text.includes(from)) throw new Error(`deployConfig: ${from} is not in wrangler.toml`);
    text = text.replace(from, to);
  }
  const file = path.join(dir, 'wrangler.toml');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, `${text}\n${instances}\n`);
  return file;
}
