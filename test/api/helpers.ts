import { readdirSync, readFileSync } from 'node:fs';
import { crossCheck, formatIssue, parseManifests, validateDocument, type AnyResource, type IncomingResource, type Issue, type ValidateOptions } from '../../src/api/index.js';

/** Parses and validates YAML text as `egw validate` would; returns the valid resources and all issues. */
export function validateYaml(text: string, file = 'test.yaml', options: ValidateOptions = {}): { resources: AnyResource[]; incoming: IncomingResource[]; issues: Issue[] } {
  const { documents, issues } = parseManifests(text, file);
  const all = [...issues];
  const incoming: IncomingResource[] = [];
  for (const doc of documents) {
    const r = validateDocument(doc.value, doc, options);
    all.push(...r.issues);
    if (r.resource !== undefined) incoming.push({ resource: r.resource, location: doc });
  }
  return { resources: incoming.map((i) => i.resource), incoming, issues: all };
}

/** The one resource of a single-document text, failing loudly (with the issues) when it is invalid. */
export function valid<T extends AnyResource = AnyResource>(text: string, options: ValidateOptions = {}): T {
  const { resources, issues } = validateYaml(text, 'test.yaml', options);
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length > 0 || resources.length !== 1) throw new Error(`expected one valid resource, got:\n${issues.map(formatIssue).join('\n')}`);
  return resources[0] as T;
}

/** Issues as `severity rule path: message` lines, for compact assertions. */
export function brief(issues: readonly Issue[]): string[] {
  return issues.map((i) => `${i.severity} ${i.rule} ${i.path}: ${i.message}`);
}

/** Every reference manifest, validated, with its location. */
export function referenceIncoming(): IncomingResource[] {
  const out: IncomingResource[] = [];
  for (const f of readdirSync('examples/reference').sort()) {
    const file = `examples/reference/${f}`;
    const { incoming, issues } = validateYaml(readFileSync(file, 'utf8'), file);
    if (issues.length > 0) throw new Error(issues.map(formatIssue).join('\n'));
    out.push(...incoming);
  }
  return out;
}

/** Cross-check issues as sorted formatted lines (order-insensitive comparisons). */
export function crossLines(incoming: readonly IncomingResource[], existing: readonly AnyResource[] = []): string[] {
  return crossCheck(incoming, existing).map(formatIssue).sort();
}

/** A deterministic shuffle (mulberry32), so "any order" tests are reproducible. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Deep-freezes a value so tests catch mutation of inputs. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
