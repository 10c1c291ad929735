/**
 * Every file in examples/invalid is rejected for exactly the reason its header states:
 *   # rule: <rule id>     # path: <field path>     # message: <exact message> (or # message-prefix: …)
 *   # expected: <text the "expected" part contains> (optional)   # stage: parse | validate | cross-check
 *   # errors: <n> (optional, default 1: how many errors the file produces in all)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { crossCheck, formatIssue, parseManifests, validateDocument, type IncomingResource, type Issue } from '../../src/api/index.js';

const dir = 'examples/invalid';
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

function header(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^# ([a-z-]+): (.*)$/.exec(line);
    if (m !== null) out[m[1]!] = m[2]!;
  }
  return out;
}

/** What `egw validate` (stage parse/validate) or `egw apply` into an empty store (cross-check) reports. */
function check(file: string, text: string, stage: string): Issue[] {
  const { documents, issues } = parseManifests(text, file);
  const all = [...issues];
  const incoming: IncomingResource[] = [];
  for (const doc of documents) {
    const result = validateDocument(doc.value, doc);
    all.push(...result.issues);
    if (result.resource !== undefined) incoming.push({ resource: result.resource, location: doc });
  }
  if (stage === 'cross-check') {
    // These files are valid document by document; only the apply-time check rejects them.
    expect(all.filter((i) => i.severity === 'error').map(formatIssue)).toEqual([]);
    expect(incoming).toHaveLength(documents.length);
    all.push(...crossCheck(incoming, []));
  }
  return all;
}

describe('examples/invalid', () => {
  test('there is one file per rejection rule', () => {
    expect(files.length).toBeGreaterThanOrEqual(60);
  });

  test.each(files)('%s is rejected for the stated reason only', (name) => {
    const file = `${dir}/${name}`;
    const text = readFileSync(file, 'utf8');
    const h = header(text);
    expect(h.rule, 'header names the rule').toBeDefined();
    const errors = check(file, text, h.stage ?? 'validate').filter((i) => i.severity === 'error');
    const shown = errors.map(formatIssue);
    expect(errors, shown.join('\n')).toHaveLength(Number.parseInt(h.errors ?? '1', 10));
    const e = errors.find((i) => i.rule === h.rule && i.path === (h.path ?? '') && (h.message === undefined || i.message === h.message));
    expect(e, shown.join('\n')).toBeDefined();
    if (e === undefined) return;
    expect(errors.every((i) => i.rule === h.rule), 'every error is of the stated rule').toBe(true);
    expect(e.file).toBe(file);
    if (h.message !== undefined) expect(e.message).toBe(h.message);
    if (h['message-prefix'] !== undefined) expect(e.message.startsWith(h['message-prefix'])).toBe(true);
    if (h.expected !== undefined) expect(e.expected).toContain(h.expected);
    expect(e.expected.length).toBeGreaterThan(0);
    expect(e.line, 'the issue names a line').toBeGreaterThan(0);
  });
});
