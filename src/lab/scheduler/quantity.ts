/**
 * Kubernetes resource quantities (`100m`, `1.5`, `512Mi`, `1e3`, `2`), as the scheduler compares them.
 * Pure.
 */

const BINARY: Readonly<Record<string, number>> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Readonly<Record<string, number>> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/**
 * The value of a quantity in base units (cores, bytes, items), or undefined when it is not a quantity.
 * Numbers are taken as they are; strings follow Kubernetes' grammar: a signed decimal number, then a
 * binary suffix (`Ki`…`Ei`), a decimal suffix (`n`, `u`, `m`, `k`, `M`…`E`) or an exponent (`e3`, `E-2`).
 */
export function parseQuantity(q: unknown): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) ? q : undefined;
  if (typeof q !== 'string') return undefined;
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE]?)$/.exec(q.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  const suffix = m[2] ?? '';
  if (/^[eE]/.test(suffix)) return n * 10 ** Number(suffix.slice(1));
  const factor = BINARY[suffix] ?? DECIMAL[suffix];
  return factor === undefined ? undefined : n * factor;
}

/** The well-known resource names the scheduler scales. */
export const CPU = 'cpu';
export const MEMORY = 'memory';
export const PODS = 'pods';

/**
 * A quantity in the scheduler's integer unit for that resource: millicores for `cpu`, whole units (bytes,
 * items) for everything else, rounded up as Kubernetes rounds requests. Undefined when unparsable or negative.
 */
export function schedulerUnits(resource: string, q: unknown): number | undefined {
  const v = parseQuantity(q);
  if (v === undefined || v < 0) return undefined;
  // A tiny epsilon keeps 0.1 * 1000 from becoming 101 through floating-point noise.
  const scaled = resource === CPU ? v * 1000 : v;
  return Math.ceil(scaled - 1e-9);
}
