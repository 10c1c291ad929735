/**
 * Which kernel table serves which route set (docs/egress-calc.md, "Tables"). Pure.
 */
import type { TableBinding } from './types.js';

/** The kernel's own tables (unspec, default, main, local): never taken even when a range covers them. */
const RESERVED = new Set([0, 253, 254, 255]);

function inRanges(id: number, ranges: readonly { min: number; max: number }[]): boolean {
  return !RESERVED.has(id) && ranges.some((r) => id >= r.min && id <= r.max);
}

/** The result of {@link allocateTables}. */
export interface TableAllocation {
  /** Table id by route-set key. */
  readonly ids: ReadonlyMap<string, number>;
  /** Keys left without a table, in order. */
  readonly unallocated: readonly string[];
}

/**
 * Gives each route-set key a table from `ranges`: a key keeps the id it had in `previous` (when still
 * in range and not claimed twice), so tables do not move when unrelated clients come and go; new keys get
 * the lowest free ids, `first` (the fail-closed set, when tables are short) before the others in key
 * order. Keys that find no id are returned in `unallocated` (the caller reports them).
 */
export function allocateTables(
  keys: readonly string[],
  previous: readonly TableBinding[],
  ranges: readonly { min: number; max: number }[],
  first?: string,
): TableAllocation {
  const wanted = new Set(keys);
  const ids = new Map<string, number>();
  const used = new Set<number>();
  const prev = [...previous].sort((a, b) => a.id - b.id || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const b of prev) {
    if (!wanted.has(b.key) || ids.has(b.key) || used.has(b.id) || !inRanges(b.id, ranges)) continue;
    ids.set(b.key, b.id);
    used.add(b.id);
  }
  const fresh = [...wanted].filter((k) => !ids.has(k)).sort();
  if (first !== undefined && fresh.includes(first)) {
    fresh.splice(fresh.indexOf(first), 1);
    fresh.unshift(first);
  }
  const sortedRanges = [...ranges].sort((a, b) => a.min - b.min);
  let range = 0;
  let next = sortedRanges[0]?.min ?? 0;
  const unallocated: string[] = [];
  for (const key of fresh) {
    let id: number | undefined;
    while (range < sortedRanges.length) {
      const r = sortedRanges[range]!;
      if (next < r.min) next = r.min;
      if (next > r.max) {
        range++;
        continue;
      }
      const candidate = next++;
      if (!RESERVED.has(candidate) && !used.has(candidate)) {
        id = candidate;
        break;
      }
    }
    if (id === undefined) unallocated.push(key);
    else {
      ids.set(key, id);
      used.add(id);
    }
  }
  return { ids, unallocated };
}

/** The number of usable tables in `ranges` (for exhaustion messages). */
export function tableCapacity(ranges: readonly { min: number; max: number }[]): number {
  let n = 0;
  for (const r of ranges) {
    if (r.max < r.min) continue;
    n += r.max - r.min + 1;
    for (const t of RESERVED) if (t >= r.min && t <= r.max) n--;
  }
  return n;
}
