/**
 * validateDocument never throws (issue 11, item 2): hostile and random documents come back as issues.
 * A seeded generator mutates the reference manifests (random values at random paths, deep nesting, long
 * strings, odd keys) and every result must be a plain answer; the selector parser's bounds are checked
 * at their edges.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseManifests, validateDocument, type ValidationResult } from '../../src/api/index.js';
import { MAX_SELECTOR_DEPTH, MAX_SELECTOR_LENGTH } from '../../src/api/selector/parser.js';
import { parseSelector } from '../../src/api/selector/index.js';
import { isEgwError } from '../../src/platform/errors.js';

const LOC = { file: 'fuzz.yaml', documentIndex: 1 };
const SELECTOR = 'egress.projectcalico.org/selector';

/** A small deterministic PRNG (mulberry32): the same seed gives the same documents on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function nest(depth: number, leaf: unknown, wrap: (inner: unknown) => unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = wrap(v);
  return v;
}

const nastyStrings = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  '__proto__',
  'constructor',
  '//[',
  '${x}',
  'a'.repeat(70_000),
  '('.repeat(6000) + "a == 'b'" + ')'.repeat(6000),
  "a == 'b' && ".repeat(3000) + "a == 'b'",
  '!'.repeat(10_000) + 'all()',
  '{'.repeat(1000),
  '["a",'.repeat(2000),
  '10.0.0.0/33',
  '::ffff:10.0.0.1',
  "has(a) || (b in {'x','y',} && !c == 'd')",
];

function randomValue(r: () => number, depth = 0): unknown {
  const pick = Math.floor(r() * 12);
  switch (pick) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return [0, -1, 1.5, 2 ** 53, -0, 1e308, Number.MAX_SAFE_INTEGER, 65536][Math.floor(r() * 8)];
    case 3:
    case 4:
      return nastyStrings[Math.floor(r() * nastyStrings.length)];
    case 5:
      return nest(1 + Math.floor(r() * 5000), 1, (v) => ({ a: v }));
    case 6:
      return nest(1 + Math.floor(r() * 5000), 'x', (v) => [v]);
    case 7:
      return depth > 3 ? {} : Object.fromEntries([...Array(1 + Math.floor(r() * 4)).keys()].map((i) => [nastyStrings[(i * 7 + Math.floor(r() * 99)) % nastyStrings.length]!.slice(0, 300), randomValue(r, depth + 1)]));
    case 8:
      return depth > 3 ? [] : [...Array(Math.floor(r() * 4)).keys()].map(() => randomValue(r, depth + 1));
    case 9:
      return { [SELECTOR]: nastyStrings[Math.floor(r() * nastyStrings.length)] };
    case 10:
      return Object.fromEntries([...Array(2000).keys()].map((i) => [`k${i}`, 'v']));
    default:
      return 'x'.repeat(Math.floor(r() * 300));
  }
}

/** All paths of a JSON value (objects and arrays), to choose where a mutation lands. */
function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

function setAt(root: unknown, path: readonly (string | number)[], v: unknown): unknown {
  if (path.length === 0) return v;
  const copy: unknown = structuredClone(root);
  let cur = copy as Record<string | number, unknown>;
  for (const seg of path.slice(0, -1)) cur = cur[seg] as Record<string | number, unknown>;
  cur[path[path.length - 1]!] = v;
  return copy;
}

function referenceDocuments(): unknown[] {
  const docs: unknown[] = [];
  for (const f of readdirSync('examples/reference').sort()) {
    for (const d of parseManifests(readFileSync(`examples/reference/${f}`, 'utf8'), f).documents) docs.push(d.value);
  }
  docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'n', annotations: { [SELECTOR]: "egress == 'red'" } }, spec: { containers: [{ name: 'c' }] } });
  docs.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n', annotations: { [SELECTOR]: "egress == 'red'" } } });
  return docs;
}

function expectPlainAnswer(r: ValidationResult): void {
  expect(Array.isArray(r.issues)).toBe(true);
  const errors = r.issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) expect(r.resource).toBeUndefined();
  else expect(r.resource).toBeDefined();
  for (const i of r.issues) expect(i.message.length + i.expected.length + i.path.length).toBeLessThan(4000);
}

describe('validateDocument never throws', () => {
  it('a selector nested thousands of levels is an invalid annotation, not a stack overflow', () => {
    for (const [kind, depth, why] of [['Namespace', 5000, 'longer than'], ['Pod', 5000, 'longer than'], ['Pod', 1500, 'nested deeper']] as const) {
      const sel = '('.repeat(depth) + "a == 'b'" + ')'.repeat(depth);
      const metadata = { name: 'x', annotations: { [SELECTOR]: sel } };
      const doc = kind === 'Pod' ? { apiVersion: 'v1', kind, metadata: { ...metadata, namespace: 'n' }, spec: { containers: [{ name: 'c' }] } } : { apiVersion: 'v1', kind, metadata };
      const r = validateDocument(doc, LOC);
      expect(r.resource).toBeUndefined();
      expect(r.issues.map((i) => i.rule)).toContain('annotations.invalid-selector');
      expect(r.issues[0]!.message).toContain(why);
    }
  });

  it('the selector bounds: depth and length at the limit pass, one past fails with InvalidSelector', () => {
    const at = '('.repeat(MAX_SELECTOR_DEPTH) + 'has(a)' + ')'.repeat(MAX_SELECTOR_DEPTH);
    expect(parseSelector(at).evaluate({ a: '' })).toBe(true);
    const past = '(' + at + ')';
    expect(() => parseSelector(past)).toThrow(/nested deeper/);
    const term = "a == 'b' || ";
    const long = term.repeat(Math.floor((MAX_SELECTOR_LENGTH - 6) / term.length)) + 'has(c)';
    const padded = long + ' '.repeat(MAX_SELECTOR_LENGTH - long.length);
    expect(padded.length).toBe(MAX_SELECTOR_LENGTH);
    expect(parseSelector(padded).evaluate({ c: '' })).toBe(true);
    try {
      parseSelector(padded + ' ');
      expect.unreachable();
    } catch (e) {
      expect(isEgwError(e, 'InvalidSelector')).toBe(true);
      // The message quotes only the start of a long selector.
      expect((e as Error).message.length).toBeLessThan(1000);
    }
  });

  it('deeply nested objects and arrays in kept-as-written fields give an answer', () => {
    for (const depth of [10, 1000, 10_000, 100_000]) {
      const deep = nest(depth, 1, (v) => ({ a: v }));
      expectPlainAnswer(validateDocument({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }], extra: deep } }, LOC));
      expectPlainAnswer(validateDocument({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: deep } }, LOC));
      expectPlainAnswer(validateDocument(nest(depth, {}, (v) => [v]), LOC));
    }
  });

  it('2000 seeded random mutations of the reference manifests all come back as issues or a resource', () => {
    const docs = referenceDocuments();
    expect(docs.length).toBeGreaterThan(5);
    const r = rng(11);
    for (let n = 0; n < 2000; n++) {
      const base = docs[Math.floor(r() * docs.length)];
      const ps = paths(base);
      let doc = base;
      for (let m = 0; m < 1 + Math.floor(r() * 3); m++) {
        const where = ps[Math.floor(r() * ps.length)]!;
        try {
          doc = setAt(doc, where, randomValue(r));
        } catch {
          // The path no longer exists after an earlier mutation: keep the document as it is.
        }
      }
      let result: ValidationResult | undefined;
      expect(() => (result = validateDocument(doc, LOC))).not.toThrow();
      expectPlainAnswer(result!);
    }
  });
});
