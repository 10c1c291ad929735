/**
 * Shared helpers for benchmarks (`npm run bench -- NAME`): the benchmark contract, monotonic timing,
 * percentiles, a seeded random source for generated workloads, an aligned table printer and the final
 * one-line JSON of figures. See bench/main.ts for how a benchmark is registered.
 */

/** The figures a benchmark reports; printed as one JSON object on the last line of its output. */
export type Figures = Record<string, number | string | boolean>;

/** A benchmark: `run()` prints its readable table(s) and resolves to its figures. */
export interface Benchmark {
  /** The NAME of `npm run bench -- NAME`: lower-case, no spaces. */
  readonly name: string;
  /** One line for the list of benchmarks. */
  readonly description: string;
  run(): Promise<Figures>;
}

/** Monotonic now in nanoseconds. */
export function nowNs(): bigint {
  return process.hrtime.bigint();
}

/** Nanoseconds since `start` (from {@link nowNs}) as a number. */
export function elapsedNs(start: bigint): number {
  return Number(process.hrtime.bigint() - start);
}

/** Runs `fn` once and returns how long it took, in nanoseconds. */
export function timeNs(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start);
}

/** Runs `fn` once and returns how long it took, in nanoseconds. */
export async function timeNsAsync(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start);
}

/**
 * The p-th percentile (0..100) of `values`, linearly interpolated between the closest ranks.
 * NaN for an empty list. Does not modify `values`.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

/** The usual summary of a list of samples. */
export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Summarises samples (min, p50, p90, p99, max, mean). */
export function summarize(values: readonly number[]): Summary {
  const n = values.length;
  return {
    n,
    min: values.reduce((a, b) => Math.min(a, b), n === 0 ? NaN : Infinity),
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: values.reduce((a, b) => Math.max(a, b), n === 0 ? NaN : -Infinity),
    mean: n === 0 ? NaN : values.reduce((a, b) => a + b, 0) / n,
  };
}

/**
 * Runs `batch` `batches` times after `warmup` unrecorded runs; each run returns how many operations it
 * did. Returns nanoseconds per operation for each recorded batch (take percentiles over them).
 */
export function perOpNs(batches: number, warmup: number, batch: (index: number) => number): number[] {
  for (let i = 0; i < warmup; i++) batch(i);
  const out: number[] = [];
  for (let i = 0; i < batches; i++) {
    const start = process.hrtime.bigint();
    const ops = batch(i);
    const ns = Number(process.hrtime.bigint() - start);
    out.push(ns / Math.max(1, ops));
  }
  return out;
}

/** Rounds to `digits` significant digits (for figures that should not pretend to more precision). */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  return Number(value.toPrecision(digits));
}

/** A number for a table cell: up to 3 significant digits, thousands grouped for large values. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return String(round(value, 3));
}

/** A deterministic pseudo-random source (mulberry32), so every run benchmarks the same workload. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Integer in [min, max] inclusive. */
  between(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** One element of a list of [item, weight] pairs, by weight. */
  weighted<T>(items: readonly (readonly [T, number])[]): T;
}

/** A {@link Random} seeded with `seed`. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    between: (min, max) => min + int(max - min + 1),
    chance: (p) => next() < p,
    pick: (items) => items[int(items.length)]!,
    weighted: (items) => {
      const total = items.reduce((sum, [, w]) => sum + w, 0);
      let r = next() * total;
      for (const [item, w] of items) {
        r -= w;
        if (r < 0) return item;
      }
      return items[items.length - 1]![0];
    },
  };
}

let sinkValue = 0;

/**
 * Consumes a result so the optimiser cannot drop the work that produced it. Returns a running value
 * that a benchmark may print or report.
 */
export function sink(value: number | boolean): number {
  sinkValue = (sinkValue + (typeof value === 'boolean' ? (value ? 1 : 0) : value)) | 0;
  return sinkValue;
}

/** A table cell: numbers are formatted with {@link formatNumber}. */
export type Cell = string | number | boolean;

/**
 * Prints an aligned table: a title line, a header row, a rule, then the rows. Numbers are right-aligned,
 * text left-aligned.
 */
export function printTable(title: string, header: readonly string[], rows: readonly (readonly Cell[])[]): void {
  const text = (c: Cell): string => (typeof c === 'number' ? formatNumber(c) : String(c));
  const cells = rows.map((r) => r.map(text));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log('');
  console.log(title);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells) console.log(line(r));
}

/** The last line of a benchmark's output: one JSON object of its figures. */
export function figuresLine(name: string, figures: Figures): string {
  return JSON.stringify({ benchmark: name, ...figures });
}
