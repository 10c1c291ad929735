/**
 * Benchmark `selectors`: 10,000 generated selectors (a realistic mix of Calico operators over pod and
 * namespace labels) against 10,000 generated label sets.
 *
 * Figures: `evalNsP50` (ns per evaluation of a compiled selector, p50 over batches), `parseUsP50` (µs per
 * uncached parse, i.e. tokenize + parse + compile), and ratios measured side by side in the same run:
 * compiled evaluation against a plain AST-walking interpreter (the baseline, written below), and a cached
 * `getSelector` against an uncached parse.
 */
import {
  clearSelectorCache,
  getSelector,
  parseSelector,
  parseSelectorTree,
  prepareLabels,
} from '../src/api/selector/index.js';
import type { Labels, SelectorNode } from '../src/api/selector/index.js';
import type { Benchmark, Figures, Random } from './harness.js';
import { percentile, printTable, round, seededRandom, sink } from './harness.js';

const SELECTORS = 10_000;
const LABEL_SETS = 10_000;

// Evaluation: each batch runs a slice of selectors against a slice of label sets; over all batches every
// selector meets 1,000 label sets and every label set meets 1,000 selectors.
const EVAL_BATCHES = 200;
const EVAL_SELECTORS_PER_BATCH = SELECTORS / EVAL_BATCHES; // 50
const EVAL_LABELS_PER_BATCH = 1_000;
const EVAL_WARMUP_BATCHES = 20;

const PARSE_BATCH = 100;

/** Label keys with their value pools, and how often a pod carries the label. */
const VOCABULARY: readonly (readonly [key: string, values: readonly string[], presence: number])[] = [
  ['app', ['web', 'api', 'db', 'cache', 'frontend', 'backend', 'worker', 'payments', 'search', 'auth', 'egress-gateway'], 0.9],
  ['tier', ['frontend', 'backend', 'data'], 0.5],
  ['env', ['prod', 'staging', 'dev', 'test'], 0.6],
  ['team', ['red', 'blue', 'green', 'platform', 'sre'], 0.4],
  ['version', ['v1', 'v2', 'v3', 'v1.2.3', 'v2.0.0-rc1'], 0.5],
  ['projectcalico.org/namespace', ['default', 'prod', 'staging', 'kube-system', 'egress', 'payments', 'search'], 1],
  ['projectcalico.org/orchestrator', ['k8s'], 1],
  ['projectcalico.org/serviceaccount', ['default', 'web-sa', 'api-sa', 'egress-gateway'], 0.8],
  ['egress-code', ['red', 'blue', 'green'], 0.2],
  ['projectcalico.org/egw', ['egw-red', 'egw-blue', 'egw-green'], 0.1],
  ['app.kubernetes.io/name', ['web', 'api', 'postgres', 'redis', 'nginx'], 0.3],
  ['app.kubernetes.io/component', ['server', 'database', 'cache', 'gateway'], 0.3],
  ['topology.kubernetes.io/zone', ['us-east-1a', 'us-east-1b', 'us-east-1c'], 0.3],
  ['pod-template-hash', ['6d4cf56db6', '7b9f8c6d5', '5c7d8f9b4', '84d6f7c9b8'], 0.7],
];

const KEY_WEIGHTS: readonly (readonly [(typeof VOCABULARY)[number], number])[] = VOCABULARY.map((entry) => [
  entry,
  entry[2] + 0.1,
]);

type Operator = '==' | '!=' | 'in' | 'not in' | 'has' | '!has' | 'contains' | 'starts with' | 'ends with' | 'all';

const OPERATOR_MIX: readonly (readonly [Operator, number])[] = [
  ['==', 35],
  ['!=', 8],
  ['in', 15],
  ['not in', 5],
  ['has', 12],
  ['!has', 5],
  ['contains', 5],
  ['starts with', 5],
  ['ends with', 5],
  ['all', 5],
];

function quoted(r: Random, value: string): string {
  return r.chance(0.7) ? `'${value}'` : `"${value}"`;
}

/** A value from the key's pool, now and then one that no pod has. */
function valueFor(r: Random, pool: readonly string[]): string {
  return r.chance(0.1) ? 'none' : r.pick(pool);
}

function term(r: Random, ops: Map<Operator, number>): string {
  const op = r.weighted(OPERATOR_MIX);
  ops.set(op, (ops.get(op) ?? 0) + 1);
  const [key, pool] = r.weighted(KEY_WEIGHTS);
  switch (op) {
    case 'all':
      return 'all()';
    case 'has':
      return `has(${key})`;
    case '!has':
      return `!has(${key})`;
    case 'in':
    case 'not in': {
      const n = r.between(2, 5);
      const values = Array.from({ length: n }, () => quoted(r, valueFor(r, pool)));
      return `${key} ${op} {${values.join(', ')}}`;
    }
    case 'contains':
    case 'starts with':
    case 'ends with': {
      const v = valueFor(r, pool);
      const cut = Math.max(1, Math.floor(v.length / 2));
      const part = op === 'starts with' ? v.slice(0, cut) : op === 'ends with' ? v.slice(-cut) : v.slice(1, 1 + cut);
      return `${key} ${op} ${quoted(r, part)}`;
    }
    default:
      return `${key} ${op} ${quoted(r, valueFor(r, pool))}`;
  }
}

/** One selector: mostly `&&` of 1–5 terms, sometimes with an `||` group in parentheses or a negation. */
function generateSelector(r: Random, ops: Map<Operator, number>): string {
  const terms = r.weighted([
    [1, 40],
    [2, 35],
    [3, 15],
    [4, 7],
    [5, 3],
  ] as const);
  const parts: string[] = [];
  for (let i = 0; i < terms; i++) {
    if (terms > 1 && r.chance(0.12)) {
      const n = r.between(2, 3);
      const group = Array.from({ length: n }, () => term(r, ops)).join(' || ');
      parts.push(r.chance(0.2) ? `!(${group})` : `(${group})`);
    } else {
      parts.push(term(r, ops));
    }
  }
  return parts.join(' && ');
}

/** Pods come from workloads: the pods of one workload carry the same label keys in the same order. */
const WORKLOADS = 500;

function generateWorkload(r: Random): (typeof VOCABULARY)[number][] {
  const entries = VOCABULARY.filter(([, , presence]) => r.chance(presence));
  // Users write keys in any order, and the order fixes the object's shape in V8.
  for (let i = entries.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return entries;
}

/** A pod's labels as the datastore hands them over: a plain object parsed from JSON. */
function generateLabels(r: Random, workload: readonly (typeof VOCABULARY)[number][]): Labels {
  const labels: Record<string, string> = {};
  for (const [key, pool] of workload) labels[key] = r.pick(pool);
  return JSON.parse(JSON.stringify(labels)) as Labels;
}

/** The baseline: a straightforward interpreter that walks the tree and switches on node kinds. */
function interpret(node: SelectorNode, labels: Labels): boolean {
  switch (node.kind) {
    case 'all':
    case 'global':
      return true;
    case 'has':
      return labels[node.label] !== undefined;
    case 'eq':
      return labels[node.label] === node.value;
    case 'ne':
      return labels[node.label] !== node.value;
    case 'contains': {
      const v = labels[node.label];
      return v !== undefined && v.includes(node.value);
    }
    case 'startsWith': {
      const v = labels[node.label];
      return v !== undefined && v.startsWith(node.value);
    }
    case 'endsWith': {
      const v = labels[node.label];
      return v !== undefined && v.endsWith(node.value);
    }
    case 'in': {
      const v = labels[node.label];
      return v !== undefined && node.values.includes(v);
    }
    case 'notIn': {
      const v = labels[node.label];
      return v === undefined || !node.values.includes(v);
    }
    case 'not':
      return !interpret(node.operand, labels);
    case 'and':
      for (const operand of node.operands) if (!interpret(operand, labels)) return false;
      return true;
    case 'or':
      for (const operand of node.operands) if (interpret(operand, labels)) return true;
      return false;
  }
}

/** One way of evaluating a selector (by index) against a label set. */
type Evaluator = (selector: number, labels: Labels) => boolean;

interface Variant {
  readonly name: string;
  readonly evaluate: Evaluator;
  readonly labelSets: readonly Labels[];
}

interface VariantResult {
  readonly name: string;
  readonly nsPerEval: number[];
  readonly matches: number;
}

/**
 * Runs every variant on the same batch before moving to the next batch, so they all see the same machine
 * state (side by side); ratios are taken per batch.
 */
function measureEvaluation(variants: readonly Variant[]): { results: VariantResult[]; evaluations: number } {
  const nsPerEval = variants.map(() => [] as number[]);
  const matches = variants.map(() => 0);
  let evaluations = 0;
  const ops = EVAL_SELECTORS_PER_BATCH * EVAL_LABELS_PER_BATCH;
  for (let b = -EVAL_WARMUP_BATCHES; b < EVAL_BATCHES; b++) {
    const batch = (b + EVAL_BATCHES) % EVAL_BATCHES;
    const s0 = batch * EVAL_SELECTORS_PER_BATCH;
    const l0 = (batch * EVAL_LABELS_PER_BATCH) % LABEL_SETS;
    variants.forEach((v, i) => {
      const evaluate = v.evaluate;
      const sets = v.labelSets;
      let m = 0;
      const start = process.hrtime.bigint();
      for (let s = s0; s < s0 + EVAL_SELECTORS_PER_BATCH; s++) {
        for (let l = l0; l < l0 + EVAL_LABELS_PER_BATCH; l++) if (evaluate(s, sets[l]!)) m++;
      }
      const ns = Number(process.hrtime.bigint() - start) / ops;
      if (b >= 0) {
        nsPerEval[i]!.push(ns);
        matches[i]! += m;
      }
    });
    if (b >= 0) evaluations += ops;
  }
  return { results: variants.map((v, i) => ({ name: v.name, nsPerEval: nsPerEval[i]!, matches: matches[i]! })), evaluations };
}

/** p50 over batches of the per-batch ratio baseline/ours. */
function pairedRatio(baseline: readonly number[], ours: readonly number[]): number {
  return percentile(
    ours.map((o, i) => baseline[i]! / o),
    50,
  );
}

/** µs per uncached parse (tokenize + parse + compile), one sample per batch of {@link PARSE_BATCH}. */
function measureParse(texts: readonly string[]): number[] {
  const out: number[] = [];
  for (let pass = 0; pass < 2; pass++) {
    // The first pass warms the JIT up and is not recorded.
    for (let i = 0; i < texts.length; i += PARSE_BATCH) {
      const start = process.hrtime.bigint();
      for (let j = i; j < i + PARSE_BATCH; j++) sink(parseSelector(texts[j]!) !== undefined);
      const ns = Number(process.hrtime.bigint() - start);
      if (pass === 1) out.push(ns / PARSE_BATCH / 1000);
    }
  }
  return out;
}

/** ns per cached `getSelector` hit, one sample per batch. */
function measureCached(texts: readonly string[]): number[] {
  clearSelectorCache();
  for (const t of texts) getSelector(t);
  const out: number[] = [];
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < texts.length; i += PARSE_BATCH) {
      const start = process.hrtime.bigint();
      for (let j = i; j < i + PARSE_BATCH; j++) sink(getSelector(texts[j]!) !== undefined);
      const ns = Number(process.hrtime.bigint() - start);
      if (pass === 1) out.push(ns / PARSE_BATCH);
    }
  }
  return out;
}

async function run(): Promise<Figures> {
  const r = seededRandom(20240601);
  const ops = new Map<Operator, number>();
  // Through JSON, as selectors arrive from the datastore (flat strings, not concatenation ropes).
  const texts = JSON.parse(JSON.stringify(Array.from({ length: SELECTORS }, () => generateSelector(r, ops)))) as string[];
  const workloads = Array.from({ length: WORKLOADS }, () => generateWorkload(r));
  const labelSets = Array.from({ length: LABEL_SETS }, () => generateLabels(r, r.pick(workloads)));
  const prepared = labelSets.map(prepareLabels);
  const distinct = new Set(texts).size;

  const parseUs = measureParse(texts);
  const cachedNs = measureCached(texts);

  const selectors = texts.map((t) => parseSelector(t));
  const trees = texts.map((t) => parseSelectorTree(t));
  const compiled: Evaluator = (s, labels) => selectors[s]!.evaluate(labels);
  const interpreted: Evaluator = (s, labels) => interpret(trees[s]!, labels);
  const { results, evaluations } = measureEvaluation([
    { name: 'compiled closures, labels as parsed', evaluate: compiled, labelSets },
    { name: 'AST interpreter (baseline), labels as parsed', evaluate: interpreted, labelSets },
    { name: 'compiled closures, prepareLabels()', evaluate: compiled, labelSets: prepared },
    { name: 'AST interpreter (baseline), prepareLabels()', evaluate: interpreted, labelSets: prepared },
  ]);
  const [plainCompiled, plainInterpreted, preparedCompiled, preparedInterpreted] = results as [
    VariantResult,
    VariantResult,
    VariantResult,
    VariantResult,
  ];
  const agree = results.every((v) => v.matches === plainCompiled.matches);

  const evalNsP50 = percentile(plainCompiled.nsPerEval, 50);
  const parseUsP50 = percentile(parseUs, 50);
  const cachedNsP50 = percentile(cachedNs, 50);
  const matchRate = plainCompiled.matches / evaluations;
  const totalTerms = [...ops.values()].reduce((a, b) => a + b, 0);
  const speedupPlain = pairedRatio(plainInterpreted.nsPerEval, plainCompiled.nsPerEval);
  const speedupPrepared = pairedRatio(preparedInterpreted.nsPerEval, preparedCompiled.nsPerEval);
  const preparedGain = pairedRatio(plainCompiled.nsPerEval, preparedCompiled.nsPerEval);

  printTable(
    'workload',
    ['item', 'value'],
    [
      ['selectors (distinct)', `${SELECTORS} (${distinct})`],
      ['label sets (workload shapes)', `${LABEL_SETS} (${WORKLOADS})`],
      ['terms per selector (mean)', round(totalTerms / SELECTORS, 3)],
      ['operator mix', OPERATOR_MIX.map(([op]) => `${op} ${Math.round(((ops.get(op) ?? 0) / totalTerms) * 100)}%`).join(', ')],
      ['evaluations timed per variant', evaluations],
      ['match rate', `${round(matchRate * 100, 3)}%`],
      ['all variants agree', agree],
    ],
  );

  const row = (name: string, samples: readonly number[], unit: string): (string | number)[] => [
    name,
    percentile(samples, 50),
    percentile(samples, 90),
    percentile(samples, 99),
    unit,
  ];
  printTable(
    'timings (percentiles over batches)',
    ['measure', 'p50', 'p90', 'p99', 'unit'],
    [
      ...results.map((v) => row(`evaluate: ${v.name}`, v.nsPerEval, 'ns/eval')),
      row('parseSelector, uncached (tokenize + parse + compile)', parseUs, 'µs/parse'),
      row('getSelector, cached hit', cachedNs, 'ns/lookup'),
    ],
  );

  printTable(
    'side by side (same run; ratio = baseline / ours, p50 of per-batch ratios)',
    ['comparison', 'baseline p50', 'ours p50', 'ratio'],
    [
      ['interpreter vs compiled, labels as parsed (ns)', percentile(plainInterpreted.nsPerEval, 50), evalNsP50, round(speedupPlain)],
      ['interpreter vs compiled, prepared labels (ns)', percentile(preparedInterpreted.nsPerEval, 50), percentile(preparedCompiled.nsPerEval, 50), round(speedupPrepared)],
      ['labels as parsed vs prepared, compiled (ns)', evalNsP50, percentile(preparedCompiled.nsPerEval, 50), round(preparedGain)],
      ['uncached parse vs cached getSelector (ns)', parseUsP50 * 1000, cachedNsP50, round((parseUsP50 * 1000) / cachedNsP50)],
    ],
  );

  return {
    selectors: SELECTORS,
    labelSets: LABEL_SETS,
    evaluationsPerVariant: evaluations,
    evalNsP50: round(evalNsP50),
    evalNsP90: round(percentile(plainCompiled.nsPerEval, 90)),
    evalPreparedNsP50: round(percentile(preparedCompiled.nsPerEval, 50)),
    interpretedEvalNsP50: round(percentile(plainInterpreted.nsPerEval, 50)),
    compiledVsInterpretedSpeedup: round(speedupPlain),
    compiledVsInterpretedSpeedupPrepared: round(speedupPrepared),
    preparedVsPlainLabelsSpeedup: round(preparedGain),
    parseUsP50: round(parseUsP50),
    parseUsP90: round(percentile(parseUs, 90)),
    cachedGetNsP50: round(cachedNsP50),
    cachedVsUncachedSpeedup: round((parseUsP50 * 1000) / cachedNsP50),
    matchRate: round(matchRate, 4),
    agree,
  };
}

/** The `selectors` benchmark (issue 2, part 4). */
export const selectorsBenchmark: Benchmark = {
  name: 'selectors',
  description: '10,000 selectors x 10,000 label sets: compiled evaluation, parse, cache (vs AST interpreter)',
  run,
};
