/**
 * Checks a value against one of our JSON Schemas the way a Kubernetes API server checks a custom resource
 * against its structural schema, but reports every problem with a path, what is wrong and what would be
 * right. Pure.
 *
 * Semantics:
 * - objects are closed unless `x-kubernetes-preserve-unknown-fields` (or `additionalProperties`) allows
 *   more; an unknown field is an error, and it is dropped from the returned value so later checks can run;
 * - `null` for an optional field means "not set" (as in Kubernetes) and is dropped;
 * - enums marked `x-egw-case-insensitive` accept any case (canonicalised later by the defaulting step);
 *   other enums are case-sensitive, with a "did you mean" hint when only the case differs.
 */
import type { PathSegment } from './issues.js';

/** The subset of JSON Schema our schemas use. */
export interface SchemaNode {
  readonly type?: string;
  readonly description?: string;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | SchemaNode;
  readonly items?: SchemaNode;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly anyOf?: readonly SchemaNode[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly uniqueItems?: boolean;
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
  readonly 'x-egw-case-insensitive'?: boolean;
  readonly 'x-egw-format-hint'?: string;
}

/** One problem found by {@link checkStructure}. `fatal` problems make the value unusable for later checks. */
export interface StructuralProblem {
  readonly path: PathSegment[];
  readonly rule: string;
  readonly message: string;
  readonly expected: string;
  readonly fatal: boolean;
}

/** The checked value (unknown fields and nulls dropped) and the problems found. */
export interface StructuralResult {
  readonly value: unknown;
  readonly problems: StructuralProblem[];
}

/** Checks `value` against `schema`. Never throws. */
export function checkStructure(schema: SchemaNode, value: unknown, path: PathSegment[] = []): StructuralResult {
  const problems: StructuralProblem[] = [];
  const checked = walk(schema, value, path, problems);
  return { value: checked, problems };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function walk(schema: SchemaNode, value: unknown, path: PathSegment[], problems: StructuralProblem[]): unknown {
  if (schema.anyOf !== undefined) {
    for (const alt of schema.anyOf) {
      const attempt: StructuralProblem[] = [];
      const out = walk(alt, value, path, attempt);
      if (!attempt.some((p) => p.fatal)) {
        problems.push(...attempt);
        return out;
      }
    }
    problems.push(typeProblem(schema, value, path));
    return value;
  }
  if ('const' in schema && schema.const !== undefined) {
    if (value !== schema.const) {
      problems.push({
        path,
        rule: 'schema.const',
        message: `${describeValue(value)} is not allowed here`,
        expected: JSON.stringify(schema.const),
        fatal: true,
      });
    }
    return value;
  }
  switch (schema.type) {
    case 'object':
      return walkObject(schema, value, path, problems);
    case 'array':
      return walkArray(schema, value, path, problems);
    case 'string':
      if (typeof value !== 'string') {
        problems.push(typeProblem(schema, value, path));
        return value;
      }
      checkString(schema, value, path, problems);
      return value;
    case 'integer':
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value) || (schema.type === 'integer' && !Number.isInteger(value))) {
        problems.push(typeProblem(schema, value, path));
        return value;
      }
      checkRange(schema, value, path, problems);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') problems.push(typeProblem(schema, value, path));
      return value;
    default:
      // No type: any JSON value is accepted and kept as written.
      return value;
  }
}

function walkObject(schema: SchemaNode, value: unknown, path: PathSegment[], problems: StructuralProblem[]): unknown {
  if (!isPlainObject(value)) {
    problems.push(typeProblem(schema, value, path));
    return value;
  }
  const out: Record<string, unknown> = {};
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  for (const [key, v] of Object.entries(value)) {
    const prop = Object.prototype.hasOwnProperty.call(props, key) ? props[key] : undefined;
    if (v === null && !required.has(key)) continue;
    if (prop !== undefined) {
      out[key] = walk(prop, v, [...path, key], problems);
    } else if (typeof schema.additionalProperties === 'object') {
      out[key] = walk(schema.additionalProperties, v, [...path, key], problems);
    } else if (schema.additionalProperties === true || schema['x-kubernetes-preserve-unknown-fields'] === true) {
      out[key] = v;
    } else {
      const known = Object.keys(props);
      const guess = suggest(key, known);
      problems.push({
        path: [...path, key],
        rule: 'schema.unknown-field',
        message: `unknown field "${key}"`,
        expected:
          guess !== undefined
            ? `"${guess}" (did you mean it?)`
            : known.length === 0
              ? 'no fields here'
              : `one of the fields ${known.join(', ')}`,
        fatal: false,
      });
    }
  }
  for (const key of required) {
    if (value[key] === undefined || value[key] === null) {
      const prop = props[key];
      problems.push({
        path: [...path, key],
        rule: 'schema.required',
        message: `required field "${key}" is missing`,
        expected: `${key}: ${prop === undefined ? 'a value' : describeSchema(prop)}`,
        fatal: true,
      });
    }
  }
  return out;
}

function walkArray(schema: SchemaNode, value: unknown, path: PathSegment[], problems: StructuralProblem[]): unknown {
  if (!Array.isArray(value)) {
    problems.push(typeProblem(schema, value, path));
    return value;
  }
  const items = schema.items;
  const out = items === undefined ? [...(value as unknown[])] : value.map((v: unknown, i) => walk(items, v, [...path, i], problems));
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    problems.push({
      path,
      rule: 'schema.items',
      message: value.length === 0 ? 'list is empty' : `list has ${value.length} entries`,
      expected: `at least ${schema.minItems} ${schema.minItems === 1 ? 'entry' : 'entries'}`,
      fatal: true,
    });
  }
  if (schema.maxItems !== undefined && value.length > schema.maxItems) {
    problems.push({
      path,
      rule: 'schema.items',
      message: `list has ${value.length} entries`,
      expected: `at most ${schema.maxItems}`,
      fatal: true,
    });
  }
  if (schema.uniqueItems === true) {
    const seen = new Map<string, number>();
    value.forEach((v: unknown, i) => {
      const k = JSON.stringify(v);
      const first = seen.get(k);
      if (first !== undefined) {
        problems.push({
          path: [...path, i],
          rule: 'schema.duplicate',
          message: `duplicate entry ${JSON.stringify(v)} (also at [${first}])`,
          expected: 'each value once',
          fatal: true,
        });
      } else seen.set(k, i);
    });
  }
  return out;
}

function checkString(schema: SchemaNode, value: string, path: PathSegment[], problems: StructuralProblem[]): void {
  if (schema.enum !== undefined) {
    const allowed = schema.enum.filter((e): e is string => typeof e === 'string');
    const caseInsensitive = schema['x-egw-case-insensitive'] === true;
    const exact = allowed.includes(value);
    const folded = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
    if (!exact && !(caseInsensitive && folded !== undefined)) {
      const guess = folded ?? suggest(value, allowed);
      problems.push({
        path,
        rule: 'schema.enum',
        message: `"${value}" is not an allowed value${caseInsensitive ? '' : ' (values are case-sensitive)'}`,
        expected: `one of ${allowed.join(', ')}${guess !== undefined ? ` (did you mean "${guess}"?)` : ''}`,
        fatal: true,
      });
    }
    return;
  }
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    problems.push({
      path,
      rule: 'schema.length',
      message: value.length === 0 ? 'value is empty' : `value is ${value.length} characters long`,
      expected: `at least ${schema.minLength} characters${hint(schema)}`,
      fatal: true,
    });
  }
  if (schema.maxLength !== undefined && value.length > schema.maxLength) {
    problems.push({
      path,
      rule: 'schema.length',
      message: `value is ${value.length} characters long`,
      expected: `at most ${schema.maxLength} characters`,
      fatal: true,
    });
  }
  if (schema.pattern !== undefined && !compiled(schema.pattern).test(value)) {
    problems.push({
      path,
      rule: 'schema.format',
      message: `"${value}" is not in the expected format`,
      expected: schema['x-egw-format-hint'] ?? `a string matching /${schema.pattern}/`,
      fatal: true,
    });
  }
}

/** Schema patterns are few and fixed: compile each once. */
const patterns = new Map<string, RegExp>();
function compiled(pattern: string): RegExp {
  let re = patterns.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern, 'u');
    patterns.set(pattern, re);
  }
  return re;
}

function hint(schema: SchemaNode): string {
  return schema['x-egw-format-hint'] === undefined ? '' : ` (${schema['x-egw-format-hint']})`;
}

function checkRange(schema: SchemaNode, value: number, path: PathSegment[], problems: StructuralProblem[]): void {
  const below = schema.minimum !== undefined && value < schema.minimum;
  const above = schema.maximum !== undefined && value > schema.maximum;
  if (below || above) {
    problems.push({
      path,
      rule: 'schema.range',
      message: below ? `${value} is below the minimum ${schema.minimum}` : `${value} is above the maximum ${schema.maximum}`,
      expected: describeSchema(schema),
      fatal: true,
    });
  }
}

function typeProblem(schema: SchemaNode, value: unknown, path: PathSegment[]): StructuralProblem {
  const want = describeSchema(schema);
  return {
    path,
    rule: 'schema.type',
    message: `must be ${want}, not ${describeValue(value)}`,
    expected: want,
    fatal: true,
  };
}

/** Human description of what a schema accepts, e.g. "an integer from 0 to 2147483647". */
export function describeSchema(schema: SchemaNode): string {
  if (schema.anyOf !== undefined) return schema.anyOf.map(describeSchema).join(' or ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum !== undefined) return `one of ${schema.enum.map(String).join(', ')}`;
  switch (schema.type) {
    case 'string':
      return schema['x-egw-format-hint'] ?? 'a string';
    case 'integer':
    case 'number': {
      const noun = schema.type === 'integer' ? 'an integer' : 'a number';
      if (schema.minimum !== undefined && schema.maximum !== undefined) return `${noun} from ${schema.minimum} to ${schema.maximum}`;
      if (schema.minimum !== undefined) return `${noun} of at least ${schema.minimum}`;
      if (schema.maximum !== undefined) return `${noun} of at most ${schema.maximum}`;
      return noun;
    }
    case 'boolean':
      return 'true or false';
    case 'array':
      return schema.items === undefined ? 'a list' : `a list of ${plural(describeSchema(schema.items))}`;
    case 'object':
      if (typeof schema.additionalProperties === 'object' && schema.properties === undefined) {
        return `a map of ${plural(describeSchema(schema.additionalProperties))}`;
      }
      return 'a mapping';
    default:
      return 'a value';
  }
}

function plural(description: string): string {
  return description.replace(/^(a|an) (\w+)/, (_m, _a: string, noun: string) => `${noun}s`);
}

/** Human description of a value, e.g. `the string "2"`, `a list`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return `the string ${JSON.stringify(value)}`;
    case 'number':
      return `the number ${value}`;
    case 'boolean':
      return String(value);
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

/**
 * The candidate closest to `word` when it is plausibly a typo of it: equal ignoring case, or within an
 * edit distance of 2 (1 for short words).
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const folded = candidates.find((c) => c.toLowerCase() === lower);
  if (folded !== undefined) return folded;
  const limit = word.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase(), limit);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const v = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      cur.push(v);
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin > limit) return limit + 1;
    prev = cur;
  }
  return prev[b.length] ?? limit + 1;
}
