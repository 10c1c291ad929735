/**
 * Pure operations on one block's value: find a usable ordinal, add or remove an allocation, count.
 * An ordinal is usable when it is neither allocated nor excluded (reserved).
 */
import type { Exclusions } from './exclusions.js';
import type { Ipv4Net } from '../platform/ipv4.js';
import type { AllocationAttributes, BlockValue } from './records.js';

/**
 * The first usable ordinal at or after the block's `next` cursor, wrapping round; undefined when none.
 * Going round (rather than lowest-first) delays the reuse of a just-released address, as Calico's
 * unallocated queue does.
 */
export function findFreeOrdinal(block: BlockValue, net: Ipv4Net, exclusions: Exclusions): number | undefined {
  const size = net.size;
  const start = block.next % size;
  for (let i = 0; i < size; i++) {
    const ord = (start + i) % size;
    if (block.allocations[String(ord)] !== undefined) continue;
    if (!exclusions.empty && exclusions.has(net.first + ord)) continue;
    return ord;
  }
  return undefined;
}

/** Number of usable ordinals of a block. */
export function usableCount(block: BlockValue, net: Ipv4Net, exclusions: Exclusions): number {
  let n = 0;
  for (let ord = 0; ord < net.size; ord++) {
    if (block.allocations[String(ord)] === undefined && (exclusions.empty || !exclusions.has(net.first + ord))) n++;
  }
  return n;
}

/**
 * The block with `ord` allocated to `handle`, with the allocation's attributes when given (a new value;
 * the input is not changed).
 */
export function withAllocation(block: BlockValue, net: Ipv4Net, ord: number, handle: string, attributes?: AllocationAttributes): BlockValue {
  const next: BlockValue = { ...block, allocations: { ...block.allocations, [String(ord)]: handle }, next: (ord + 1) % net.size };
  if (attributes !== undefined) next.attributes = { ...block.attributes, [String(ord)]: attributes };
  return next;
}

/** The block with `ord` freed, its attributes too (a new value). */
export function withoutAllocation(block: BlockValue, ord: number): BlockValue {
  const allocations = { ...block.allocations };
  delete allocations[String(ord)];
  const out: BlockValue = { ...block, allocations };
  if (block.attributes !== undefined) {
    const attributes = { ...block.attributes };
    delete attributes[String(ord)];
    out.attributes = attributes;
  }
  return out;
}

/** A new block value. */
export function newBlock(net: Ipv4Net, pool: Ipv4Net, affinity: string | null, cidrText: (n: Ipv4Net) => string): BlockValue {
  return { cidr: cidrText(net), pool: cidrText(pool), affinity, allocations: {}, next: 0 };
}
