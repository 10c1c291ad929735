/**
 * IPAM as a whole: a snapshot of every IPAM record and the resources they refer to, the pure analysis of
 * it (leaks and inconsistencies: what `egw ipam check` reports and GC repairs) and the per-pool / per-node
 * summary of `egw ipam show`.
 */
import type { AWSSubnet } from '../api/kinds/aws-subnet.js';
import type { IPPool } from '../api/kinds/ip-pool.js';
import type { IPReservation } from '../api/kinds/ip-reservation.js';
import type { Pod } from '../api/kinds/kubernetes.js';
import type { Datastore, StoredResource } from '../datastore/contract.js';
import { findFreeOrdinal } from './block.js';
import { awsSubnetExclusions, Exclusions, reservationExclusions } from './exclusions.js';
import { formatIpv4, parseIpv4, parseIpv4Net } from '../platform/ipv4.js';
import type { PoolInfo } from './pools.js';
import { poolInfo } from './pools.js';
import type { AffinityValue, BlockRecord, GcMarkValue, HandleRecord, HandleValue } from './records.js';
import {
  BLOCK_AFFINITY_KIND,
  blockKey,
  FULL_BLOCK_AFFINITY_KIND,
  handleKey,
  IPAM_BLOCK_KIND,
  IPAM_GC_MARK_KIND,
  IPAM_HANDLE_KIND,
  readBlock,
  readHandle,
} from './records.js';

/** What the analysis knows of a pod. */
export interface PodFacts {
  uid: string | undefined;
  nodeName: string | undefined;
  podIP: string | undefined;
}

/** An affinity index record as read. */
export interface AffinityRecord {
  stored: StoredResource;
  value: AffinityValue;
  full: boolean;
}

/** Every IPAM record, and the resources IPAM records refer to. Read with {@link readIpamSnapshot}. */
export interface IpamSnapshot {
  pools: PoolInfo[];
  /** Exclusions per pool CIDR (reservations, plus the AWS subnet's reserved addresses). */
  exclusions: Map<string, Exclusions>;
  blocks: BlockRecord[];
  handles: HandleRecord[];
  affinities: AffinityRecord[];
  /** Records that do not decode. */
  damaged: StoredResource[];
  nodes: Set<string>;
  /** By `namespace/name`. */
  pods: Map<string, PodFacts>;
  marks: Map<string, { stored: StoredResource; value: GcMarkValue }>;
}

/** Reads a snapshot (one list per kind, in parallel; not one revision: {@link confirmFinding} re-reads). */
export async function readIpamSnapshot(store: Datastore): Promise<IpamSnapshot> {
  const [pools, reservations, subnets, blocks, handles, room, full, nodes, pods, marks] = await Promise.all([
    store.list('IPPool'),
    store.list('IPReservation'),
    store.list('AWSSubnet'),
    store.list(IPAM_BLOCK_KIND),
    store.list(IPAM_HANDLE_KIND),
    store.list(BLOCK_AFFINITY_KIND),
    store.list(FULL_BLOCK_AFFINITY_KIND),
    store.list('Node'),
    store.list('Pod'),
    store.list(IPAM_GC_MARK_KIND),
  ]);
  const damaged: StoredResource[] = [];
  const reserved = reservationExclusions(reservations.items.flatMap((r) => (r.value as unknown as IPReservation).spec?.reservedCIDRs ?? []));
  const subnetCidr = new Map(subnets.items.map((s) => [s.key.name, (s.value as unknown as AWSSubnet).spec?.cidr]));
  const infos: PoolInfo[] = [];
  const exclusions = new Map<string, Exclusions>();
  for (const p of pools.items) {
    const info = poolInfo(p.value as unknown as IPPool);
    if (info === undefined) continue;
    infos.push(info);
    const subnet = info.awsSubnetID === undefined ? undefined : parseIpv4Net(subnetCidr.get(info.awsSubnetID) ?? '-', { hostBits: 'clear', bareAddress: true });
    exclusions.set(info.cidr, subnet === undefined ? reserved : reserved.union(awsSubnetExclusions(subnet)));
  }
  const decodedBlocks: BlockRecord[] = [];
  for (const s of blocks.items) {
    const b = readBlock(s);
    if (b === undefined) damaged.push(s);
    else decodedBlocks.push(b);
  }
  const decodedHandles: HandleRecord[] = [];
  for (const s of handles.items) {
    const h = readHandle(s);
    if (h === undefined) damaged.push(s);
    else decodedHandles.push(h);
  }
  const affinities: AffinityRecord[] = [
    ...room.items.map((s) => ({ stored: s, value: s.value as unknown as AffinityValue, full: false })),
    ...full.items.map((s) => ({ stored: s, value: s.value as unknown as AffinityValue, full: true })),
  ];
  const podFacts = new Map<string, PodFacts>();
  for (const s of pods.items) {
    const p = s.value as unknown as Pod;
    podFacts.set(`${s.key.namespace ?? ''}/${s.key.name}`, { uid: p.metadata?.uid, nodeName: p.spec?.nodeName, podIP: p.status?.podIP });
  }
  return {
    pools: infos,
    exclusions,
    blocks: decodedBlocks,
    handles: decodedHandles,
    affinities,
    damaged,
    nodes: new Set(nodes.items.map((n) => n.key.name)),
    pods: podFacts,
    marks: new Map(marks.items.map((m) => [m.key.name, { stored: m, value: m.value as unknown as GcMarkValue }])),
  };
}

/** The kinds of problem {@link analyzeIpam} finds. */
export type FindingKind =
  /** An allocation whose owner is gone (pod deleted or replaced, node gone): GC releases it after the grace. */
  | 'leak'
  /** A block records an address for a handle that does not hold it: GC frees the address. */
  | 'orphan-allocation'
  /** A handle holds an address its block does not record for it: GC removes the handle. */
  | 'orphan-handle'
  /** An affinity index record for a block that is not affine to that node (or is gone): GC removes it. */
  | 'stale-affinity'
  /** A block affine to a node without its index record, or filed as full/with room wrongly: GC refiles it. */
  | 'misfiled-affinity'
  /** A block affine to a node that no longer exists: GC releases the affinity (and the block once empty). */
  | 'gone-node-affinity'
  /** A block of no current pool: GC deletes it once empty; its allocations stay until released. */
  | 'orphan-block'
  /** One address recorded in two blocks (overlapping blocks after a pool change): not repaired automatically. */
  | 'duplicate-address'
  /** A record that does not decode: not repaired automatically. */
  | 'damaged-record';

export interface Finding {
  kind: FindingKind;
  message: string;
  /** True when GC repairs it (leaks after the grace period). */
  repairable: boolean;
  handle?: string;
  ip?: string;
  node?: string;
  /** `poolKey/blockKey` parts of the block concerned. */
  block?: { pool: string; cidr: string };
  /** Leaks: release without waiting for the grace (the node is gone). */
  immediate?: boolean;
}

/**
 * Whether an allocation's owner still wants it: a Pod owner needs its pod (same uid when recorded, same
 * node when scheduled, and podIP unset or equal to the address); every owner needs its node. Pure.
 */
export function ownerValidity(h: HandleValue, nodes: ReadonlySet<string>, pods: ReadonlyMap<string, PodFacts>): { valid: true } | { valid: false; reason: string; immediate: boolean } {
  if (!nodes.has(h.node)) return { valid: false, reason: `node ${h.node} no longer exists`, immediate: true };
  const o = h.owner;
  if (o.kind !== 'Pod') return { valid: true };
  const p = pods.get(`${o.namespace}/${o.name}`);
  if (p === undefined) return { valid: false, reason: `pod ${o.namespace}/${o.name} no longer exists`, immediate: false };
  if (o.uid !== undefined && p.uid !== undefined && p.uid !== o.uid) return { valid: false, reason: `pod ${o.namespace}/${o.name} was replaced (uid ${p.uid}, allocation for ${o.uid})`, immediate: false };
  if (p.nodeName !== undefined && p.nodeName !== '' && p.nodeName !== h.node) return { valid: false, reason: `pod ${o.namespace}/${o.name} runs on ${p.nodeName}, not ${h.node}`, immediate: false };
  if (p.podIP !== undefined && p.podIP !== '' && p.podIP !== h.ip) return { valid: false, reason: `pod ${o.namespace}/${o.name} has podIP ${p.podIP}, not ${h.ip}`, immediate: false };
  return { valid: true };
}

/** Every leak and inconsistency in a snapshot. Pure. */
export function analyzeIpam(s: IpamSnapshot): Finding[] {
  const findings: Finding[] = [];
  const blockId = (b: BlockRecord): { pool: string; cidr: string } => ({ pool: b.value.pool, cidr: b.value.cidr });
  const poolCidrs = new Set(s.pools.map((p) => p.cidr));
  const handles = new Map(s.handles.map((h) => [h.value.handle, h]));
  const blocksByKey = new Map(s.blocks.map((b) => [`${b.key.namespace ?? ''}/${b.key.name}`, b]));
  const owners = new Map<number, BlockRecord>();

  for (const d of s.damaged) findings.push({ kind: 'damaged-record', message: `${d.key.kind} ${d.key.namespace ?? ''}/${d.key.name} does not decode`, repairable: false });

  for (const b of s.blocks) {
    if (!poolCidrs.has(b.value.pool)) {
      const n = Object.keys(b.value.allocations).length;
      findings.push({
        kind: 'orphan-block',
        message: `block ${b.value.cidr} belongs to no current pool (${b.value.pool})${n > 0 ? `; ${n} addresses in it stay allocated until released` : ''}`,
        repairable: n === 0,
        block: blockId(b),
      });
    }
    for (const [ord, handle] of Object.entries(b.value.allocations)) {
      const ip = b.net.first + Number(ord);
      const other = owners.get(ip);
      if (other !== undefined && other !== b) {
        findings.push({ kind: 'duplicate-address', message: `${formatIpv4(ip)} is recorded in blocks ${other.value.cidr} and ${b.value.cidr}`, repairable: false, ip: formatIpv4(ip) });
      }
      owners.set(ip, b);
      const h = handles.get(handle);
      if (h === undefined || h.value.ip !== formatIpv4(ip) || h.value.block !== b.value.cidr) {
        findings.push({
          kind: 'orphan-allocation',
          message: `block ${b.value.cidr} records ${formatIpv4(ip)} for handle ${handle}, which ${h === undefined ? 'does not exist' : `holds ${h.value.ip}`}`,
          repairable: true,
          handle,
          ip: formatIpv4(ip),
          block: blockId(b),
        });
      }
    }
    const node = b.value.affinity;
    if (node !== null) {
      if (!s.nodes.has(node)) {
        findings.push({ kind: 'gone-node-affinity', message: `block ${b.value.cidr} is affine to node ${node}, which no longer exists`, repairable: true, node, block: blockId(b) });
      } else {
        const excl = s.exclusions.get(b.value.pool) ?? Exclusions.NONE;
        const full = findFreeOrdinal(b.value, b.net, excl) === undefined;
        const filed = s.affinities.filter((a) => a.value.node === node && a.value.block === b.value.cidr);
        if (filed.length !== 1 || filed[0]!.full !== full) {
          findings.push({
            kind: 'misfiled-affinity',
            message: `block ${b.value.cidr} of node ${node} is ${filed.length === 0 ? 'missing from' : `filed as ${filed.map((f) => (f.full ? 'full' : 'with room')).join(' and ')} in`} the node's affinity index (it ${full ? 'is full' : 'has room'})`,
            repairable: true,
            node,
            block: blockId(b),
          });
        }
      }
    }
  }

  for (const a of s.affinities) {
    const net = parseIpv4Net(a.value.block ?? '-', { hostBits: 'clear', bareAddress: true });
    const pool = parseIpv4Net(a.value.pool ?? '-', { hostBits: 'clear', bareAddress: true });
    const b = net === undefined || pool === undefined ? undefined : blocksByKey.get(keyText(blockKey(pool, net)));
    if (b === undefined || b.value.affinity !== a.value.node || a.stored.key.namespace !== a.value.node) {
      findings.push({
        kind: 'stale-affinity',
        message: `affinity index of node ${a.stored.key.namespace ?? '?'} lists block ${a.value.block}, which ${b === undefined ? 'does not exist' : `is affine to ${b.value.affinity ?? 'no node'}`}`,
        repairable: true,
        node: a.stored.key.namespace ?? '',
        block: { pool: a.value.pool, cidr: a.value.block },
      });
    }
  }

  for (const h of s.handles) {
    const pool = parseIpv4Net(h.value.pool, { hostBits: 'clear', bareAddress: true });
    const net = parseIpv4Net(h.value.block, { hostBits: 'clear', bareAddress: true });
    const ip = parseIpv4(h.value.ip);
    const b = pool === undefined || net === undefined ? undefined : blocksByKey.get(keyText(blockKey(pool, net)));
    if (b === undefined || ip === undefined || b.value.allocations[String(ip - b.net.first)] !== h.value.handle) {
      findings.push({
        kind: 'orphan-handle',
        message: `handle ${h.value.handle} holds ${h.value.ip}, which block ${h.value.block} ${b === undefined ? 'does not exist to record' : 'does not record for it'}`,
        repairable: true,
        handle: h.value.handle,
        ip: h.value.ip,
      });
      continue;
    }
    const validity = ownerValidity(h.value, s.nodes, s.pods);
    if (!validity.valid) {
      findings.push({ kind: 'leak', message: `${h.value.ip} (handle ${h.value.handle}) is leaked: ${validity.reason}`, repairable: true, handle: h.value.handle, ip: h.value.ip, node: h.value.node, immediate: validity.immediate });
    }
  }
  return findings;
}

function keyText(k: { namespace?: string | undefined; name: string }): string {
  return `${k.namespace ?? ''}/${k.name}`;
}

/** One pool's numbers in `egw ipam show`. */
export interface PoolSummary {
  name: string;
  cidr: string;
  blockSize: number;
  size: number;
  reserved: number;
  allocated: number;
  free: number;
  awsSubnetID: string | undefined;
  disabled: boolean;
}

/** One node's blocks in `egw ipam show`. */
export interface NodeSummary {
  node: string;
  /** Blocks affine to the node: CIDR, allocated, size. */
  blocks: { cidr: string; pool: string; allocated: number; size: number }[];
  /** Addresses held on the node (all pools, per-address blocks included). */
  addresses: number;
}

/** Per pool: size, reserved, allocated, free; per node: its blocks. Pure. */
export function summarizeIpam(s: IpamSnapshot): { pools: PoolSummary[]; nodes: NodeSummary[] } {
  const byPool = new Map<string, BlockRecord[]>();
  for (const b of s.blocks) byPool.set(b.value.pool, [...(byPool.get(b.value.pool) ?? []), b]);
  const pools = s.pools.map((p): PoolSummary => {
    const excl = s.exclusions.get(p.cidr) ?? Exclusions.NONE;
    const reserved = excl.countIn(p.net.first, p.net.size);
    let allocated = 0;
    let allocatedReserved = 0;
    for (const b of byPool.get(p.cidr) ?? []) {
      for (const ord of Object.keys(b.value.allocations)) {
        allocated++;
        if (excl.has(b.net.first + Number(ord))) allocatedReserved++;
      }
    }
    return { name: p.name, cidr: p.cidr, blockSize: p.blockSize, size: p.net.size, reserved, allocated, free: Math.max(0, p.net.size - reserved - allocated + allocatedReserved), awsSubnetID: p.awsSubnetID, disabled: p.disabled };
  });
  const nodes = new Map<string, NodeSummary>();
  const nodeOf = (name: string): NodeSummary => {
    let n = nodes.get(name);
    if (n === undefined) nodes.set(name, (n = { node: name, blocks: [], addresses: 0 }));
    return n;
  };
  for (const b of s.blocks) {
    if (b.value.affinity !== null) nodeOf(b.value.affinity).blocks.push({ cidr: b.value.cidr, pool: b.value.pool, allocated: Object.keys(b.value.allocations).length, size: b.net.size });
  }
  for (const h of s.handles) nodeOf(h.value.node).addresses++;
  const sorted = [...nodes.values()].sort((a, b) => (a.node < b.node ? -1 : 1));
  for (const n of sorted) n.blocks.sort((a, b) => (a.cidr < b.cidr ? -1 : 1));
  return { pools, nodes: sorted };
}

/** The handle record of a finding, read fresh (for re-validation). */
export async function freshHandle(store: Datastore, handle: string): Promise<HandleRecord | undefined> {
  const stored = await store.get(handleKey(handle));
  return stored === undefined ? undefined : readHandle(stored);
}
