/**
 * maxNextHops: which N of a rule's gateways a client uses (docs/egress-calc.md, "maxNextHops"). Pure.
 */
import type { EgressNextHops, NextHopsChoice } from './types.js';

/** FNV-1a (32 bits) of a string: the deterministic tie-break between equally loaded gateways. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** What {@link chooseNextHops} needs. */
export interface NextHopsRequest {
  /** The client's previous choice that is still usable (sticky). */
  readonly keep: readonly string[];
  /** Every usable gateway of the rule (`namespace/name`). */
  readonly candidates: readonly string[];
  /** N. */
  readonly want: number;
  /** The gateway's current load: how many clients, cluster-wide, have chosen it. */
  readonly load: (gateway: string) => number;
  /** The client's identity (pod UID): spreads ties differently for each client. */
  readonly seed: string;
}

/**
 * The gateways a client uses, sorted: the still-usable previous choice, topped up to N with the least
 * loaded other candidates (ties broken by `fnv1a(seed|gateway)`, then by name), so that clients created
 * one after the other spread evenly over the replicas. A choice is never changed while its gateways stay
 * usable; it shrinks only when one goes, and grows back when candidates allow. More than N kept (N was
 * lowered) keeps the first N by name.
 */
export function chooseNextHops(req: NextHopsRequest): string[] {
  const chosen = req.keep.length > 1 ? [...new Set(req.keep)].sort() : [...req.keep];
  if (chosen.length >= req.want) return chosen.length === req.want ? chosen : chosen.slice(0, req.want);
  const taken = new Set(chosen);
  const pool = req.candidates
    .filter((g) => !taken.has(g))
    .map((g) => ({ g, load: req.load(g), tie: fnv1a(`${req.seed}|${g}`) }))
    .sort((a, b) => a.load - b.load || a.tie - b.tie || (a.g < b.g ? -1 : a.g > b.g ? 1 : 0));
  for (const c of pool) {
    if (chosen.length >= req.want) break;
    chosen.push(c.g);
  }
  return chosen.sort();
}

/** True when two records say the same (the agent writes only records that differ). */
export function sameNextHops(a: EgressNextHops | undefined, b: EgressNextHops | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.client !== b.client || a.podUID !== b.podUID || a.node !== b.node) return false;
  const ka = Object.keys(a.rules).sort();
  const kb = Object.keys(b.rules).sort();
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => sameChoice(a.rules[k], b.rules[k]));
}

function sameChoice(a: NextHopsChoice | undefined, b: NextHopsChoice | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.maxNextHops === b.maxNextHops && a.gateways.length === b.gateways.length && a.gateways.every((g, i) => g === b.gateways[i]);
}

/** Adds `sign` to the load of every gateway a record names. */
export function addLoad(load: Map<string, number>, record: EgressNextHops, sign: 1 | -1): void {
  for (const choice of Object.values(record.rules)) {
    for (const g of choice.gateways) {
      const n = (load.get(g) ?? 0) + sign;
      if (n === 0) load.delete(g);
      else load.set(g, n);
    }
  }
}
