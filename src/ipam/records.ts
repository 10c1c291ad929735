/**
 * The records IPAM keeps in the datastore (internal kinds, in the same store as the resources) and their
 * keys. docs/ipam.md, "Records", explains the layout and why every change is one commit.
 *
 * | kind | namespace | name | holds |
 * |---|---|---|---|
 * | `IPAMBlock` | pool CIDR (`10.0.0.0-16`) | block CIDR (`10.0.0.64-26`) | the block's allocations (ordinal → handle) and its node affinity; the authority |
 * | `IPAMHandle` | — | handle ID | one allocation: address, block, pool, node, use, owner |
 * | `BlockAffinity` | node | block CIDR | index: a block affine to the node that still has a usable address |
 * | `FullBlockAffinity` | node | block CIDR | index: a block affine to the node with no usable address left |
 * | `IPAMGCMark` | — | `h~<handle>` / `b~<pool>~<block>` | GC's first observation of a leak / an empty block |
 *
 * Pure: keys, value types, builders and defensive readers of stored values.
 */
import type { JsonObject, ResourceKey, StoredResource } from '../datastore/contract.js';
import { EgwError } from '../platform/errors.js';
import { formatIpv4, parseIpv4Net, type Ipv4Net } from '../platform/ipv4.js';

export const IPAM_BLOCK_KIND = 'IPAMBlock';
export const IPAM_HANDLE_KIND = 'IPAMHandle';
export const BLOCK_AFFINITY_KIND = 'BlockAffinity';
export const FULL_BLOCK_AFFINITY_KIND = 'FullBlockAffinity';
export const IPAM_GC_MARK_KIND = 'IPAMGCMark';

/** Every internal IPAM kind (for tools that list or wipe IPAM state). */
export const IPAM_KINDS = [IPAM_BLOCK_KIND, IPAM_HANDLE_KIND, BLOCK_AFFINITY_KIND, FULL_BLOCK_AFFINITY_KIND, IPAM_GC_MARK_KIND] as const;

/** What an address is for (an IPPool's `allowedUses` must include it). */
export type IntendedUse = 'Workload' | 'HostSecondaryInterface';

/**
 * Who holds an allocation. GC validates a `Pod` owner against the Pod (exists, same uid, same node,
 * podIP unset or equal); `ENI` and `None` owners are valid while their node exists.
 */
export type AllocationOwner =
  | { kind: 'Pod'; namespace: string; name: string; uid?: string; containerID?: string }
  | { kind: 'ENI'; node: string; eni?: string; description?: string }
  | { kind: 'None'; description?: string };

/** The stored value of an `IPAMBlock`. */
export interface BlockValue {
  /** The block, e.g. `10.0.0.64/26`. */
  cidr: string;
  /** The pool's CIDR (the namespace, in CIDR form). */
  pool: string;
  /** The node the block is affine to; null when none (per-address blocks never have one). */
  affinity: string | null;
  /** Allocated ordinals (offset from the block's first address, as a decimal string) → handle ID. */
  allocations: Record<string, string>;
  /**
   * Per allocated ordinal, what the handle record says besides the address: with it the block alone can
   * rebuild a missing handle record (the Kubernetes datastore writes block and handle one after the other).
   * Absent in blocks written before it existed.
   */
  attributes?: Record<string, AllocationAttributes>;
  /** Where the next search for a free ordinal starts: reuse goes round the block, not lowest-first. */
  next: number;
}

/** What an allocation records besides its handle ID and address: kept in the block and on the handle. */
export interface AllocationAttributes {
  poolName: string;
  node: string;
  use: IntendedUse;
  owner: AllocationOwner;
  awsSubnetID?: string;
  /** RFC 3339 time of the allocation; with the handle ID it identifies one allocation. */
  allocatedAt: string;
}

/** The stored value of an `IPAMHandle`. */
export interface HandleValue extends AllocationAttributes {
  handle: string;
  ip: string;
  /** The block's CIDR; the block key is (pool, block). */
  block: string;
  pool: string;
}

/** The stored value of a `BlockAffinity` / `FullBlockAffinity` index record. */
export interface AffinityValue {
  node: string;
  block: string;
  pool: string;
}

/** The stored value of an `IPAMGCMark`. */
export interface GcMarkValue {
  /** `handle` or `block`. */
  target: 'handle' | 'block';
  /** The handle ID, or `pool/block` CIDRs of an empty block. */
  id: string;
  reason: string;
  /** When GC first saw it (ms since the epoch). */
  firstSeen: number;
}

const HANDLE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,252}$/;

/** The text form of a CIDR usable as a datastore key part (no `/`): `10.0.0.0/26` → `10.0.0.0-26`. */
function blockKeyPart(net: Ipv4Net): string {
  return `${formatIpv4(net.first)}-${net.prefix}`;
}

/** Throws `InvalidInput` unless `handle` is a usable handle ID (letters, digits, `_ . : @ -`; ≤ 253). */
export function checkHandleId(handle: string): string {
  if (!HANDLE_PATTERN.test(handle)) {
    throw new EgwError('InvalidInput', `invalid IPAM handle ${JSON.stringify(handle)}`, {
      hint: 'a handle starts with a letter or digit and holds only letters, digits and _ . : @ - (at most 253)',
    });
  }
  return handle;
}

export function blockKey(pool: Ipv4Net, block: Ipv4Net): ResourceKey {
  return { kind: IPAM_BLOCK_KIND, namespace: blockKeyPart(pool), name: blockKeyPart(block) };
}

export function handleKey(handle: string): ResourceKey {
  return { kind: IPAM_HANDLE_KIND, name: handle };
}

export function affinityKey(node: string, block: Ipv4Net, full: boolean): ResourceKey {
  return { kind: full ? FULL_BLOCK_AFFINITY_KIND : BLOCK_AFFINITY_KIND, namespace: node, name: blockKeyPart(block) };
}

export function handleMarkKey(handle: string): ResourceKey {
  return { kind: IPAM_GC_MARK_KIND, name: `h~${handle}` };
}

export function blockMarkKey(pool: Ipv4Net, block: Ipv4Net): ResourceKey {
  return { kind: IPAM_GC_MARK_KIND, name: `b~${blockKeyPart(pool)}~${blockKeyPart(block)}` };
}

/** A stored block, decoded, with its revision and key. */
export interface BlockRecord {
  key: ResourceKey;
  revision: number;
  net: Ipv4Net;
  pool: Ipv4Net;
  value: BlockValue;
}

/** A stored handle, decoded, with its revision. */
export interface HandleRecord {
  key: ResourceKey;
  revision: number;
  value: HandleValue;
}

/** Decodes a stored block; undefined when it is not a well-formed block (reported by `ipam check`). */
export function readBlock(stored: StoredResource): BlockRecord | undefined {
  const v = stored.value as Partial<BlockValue>;
  if (typeof v.cidr !== 'string' || typeof v.pool !== 'string' || typeof v.allocations !== 'object' || v.allocations === null) return undefined;
  const net = parseIpv4Net(v.cidr, { hostBits: 'clear', bareAddress: true });
  const pool = parseIpv4Net(v.pool, { hostBits: 'clear', bareAddress: true });
  if (net === undefined || pool === undefined) return undefined;
  const value: BlockValue = {
    cidr: v.cidr,
    pool: v.pool,
    affinity: typeof v.affinity === 'string' && v.affinity !== '' ? v.affinity : null,
    allocations: v.allocations,
    ...(typeof v.attributes === 'object' && v.attributes !== null ? { attributes: v.attributes } : {}),
    next: typeof v.next === 'number' && Number.isInteger(v.next) && v.next >= 0 ? v.next % net.size : 0,
  };
  return { key: stored.key, revision: stored.modRevision, net, pool, value };
}

/** Decodes a stored handle; undefined when malformed. */
export function readHandle(stored: StoredResource): HandleRecord | undefined {
  const v = stored.value as Partial<HandleValue>;
  if (typeof v.handle !== 'string' || typeof v.ip !== 'string' || typeof v.block !== 'string' || typeof v.pool !== 'string') return undefined;
  if (typeof v.owner !== 'object' || v.owner === null || typeof v.node !== 'string') return undefined;
  return { key: stored.key, revision: stored.modRevision, value: v as HandleValue };
}

/** A value as the datastore stores it. */
export function json(value: BlockValue | HandleValue | AffinityValue | GcMarkValue): JsonObject {
  return value as unknown as JsonObject;
}

/** Number of allocated ordinals of a block. */
export function allocatedCount(block: BlockValue): number {
  return Object.keys(block.allocations).length;
}

/**
 * The handle record a block implies for ordinal `ord`, from its attributes; undefined when the block does
 * not record `ord` or has no attributes for it (blocks written before attributes existed).
 */
export function handleFromBlock(block: BlockRecord, ord: number): HandleValue | undefined {
  const handle = block.value.allocations[String(ord)];
  const a = block.value.attributes?.[String(ord)];
  if (handle === undefined || a === undefined || typeof a !== 'object' || typeof a.node !== 'string' || typeof a.allocatedAt !== 'string') return undefined;
  return {
    handle,
    ip: formatIpv4(block.net.first + ord),
    block: block.value.cidr,
    pool: block.value.pool,
    poolName: a.poolName,
    node: a.node,
    use: a.use,
    owner: a.owner,
    ...(a.awsSubnetID === undefined ? {} : { awsSubnetID: a.awsSubnetID }),
    allocatedAt: a.allocatedAt,
  };
}

/** The attributes part of a handle value (what the block keeps per ordinal). */
export function attributesOf(v: HandleValue): AllocationAttributes {
  return {
    poolName: v.poolName,
    node: v.node,
    use: v.use,
    owner: v.owner,
    ...(v.awsSubnetID === undefined ? {} : { awsSubnetID: v.awsSubnetID }),
    allocatedAt: v.allocatedAt,
  };
}
