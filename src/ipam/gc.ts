/**
 * One IPAM garbage-collection pass: releases leaked allocations (two observations across the grace
 * period, re-validated from fresh reads just before the release), repairs inconsistent records, releases
 * the affinities of nodes that are gone and empty blocks. Every repair is a compare-and-swap commit on the
 * records it re-read, so GC never undoes an allocation or release that raced with it.
 *
 * The first observation of a leak (or an empty block) is stored as an `IPAMGCMark`, so passes by the
 * controller and by `egw ipam gc` cooperate and a restart does not reset the grace period.
 *
 * In single-object mode (the Kubernetes datastore) each repair writes the decisive object first (the block,
 * or the handle it removes) and the index after it, and a block entry whose handle record is missing gets
 * its handle rebuilt from the block's attributes rather than freed: it may be an allocation whose handle
 * is being written right now (docs/ipam.md, "Two write modes").
 */
import type { Pod } from '../api/kinds/kubernetes.js';
import type { Datastore, WriteOp } from '../datastore/contract.js';
import { EgwError, isEgwError } from '../platform/errors.js';
import { freeOrdinalOps, Ipam } from './allocator.js';
import { findFreeOrdinal } from './block.js';
import { Exclusions } from './exclusions.js';
import type { Finding, IpamSnapshot, PodFacts } from './inspect.js';
import { analyzeIpam, freshHandle, ownerValidity, readIpamSnapshot } from './inspect.js';
import { parseIpv4, parseIpv4Net } from '../platform/ipv4.js';
import type { BlockRecord, GcMarkValue } from './records.js';
import { affinityKey, blockKey, blockMarkKey, handleFromBlock, handleKey, handleMarkKey, json, readBlock } from './records.js';
import type { WriteMode } from './writes.js';
import { writeInOrder, writeModeOf } from './writes.js';

/** Options of one pass. */
export interface GcPassOptions {
  /** Now, in ms since the epoch (from the injected clock). */
  now: number;
  /** How long a leak (or an empty block) must have been seen before it is released; 0 = at once. */
  graceMs: number;
  /** At most this many releases per pass (a guard against a catastrophic misreading; default 1,000). */
  maxReleases?: number;
  /** How repairs write (default: as the store allows; docs/ipam.md, "Two write modes"). */
  writeMode?: WriteMode;
}

/** What a pass did. */
export interface GcReport {
  /** Leaked allocations released. */
  released: { handle: string; ip: string; reason: string }[];
  /** Leaks seen for the first time (released in a later pass once the grace has passed). */
  marked: string[];
  /** Leaks seen before whose grace has not passed yet. */
  waiting: string[];
  /** Inconsistencies repaired. */
  repaired: { kind: Finding['kind']; message: string }[];
  /** Blocks deleted or unclaimed (empty, or of a node that is gone). */
  blocks: string[];
  /** Findings GC does not repair (reported by `egw ipam check`). */
  unrepairable: Finding[];
  /** Repairs skipped because the records changed since they were read (retried next pass). */
  skipped: number;
}

/** Runs one GC pass over the whole store. Errors: datastore errors as they come. */
export async function runIpamGcPass(store: Datastore, options: GcPassOptions): Promise<GcReport> {
  const report: GcReport = { released: [], marked: [], waiting: [], repaired: [], blocks: [], unrepairable: [], skipped: 0 };
  const snapshot = await readIpamSnapshot(store);
  const findings = analyzeIpam(snapshot);
  const mode = writeModeOf(store, options.writeMode);
  const ipam = new Ipam({ store }, { writeMode: mode });
  const maxReleases = options.maxReleases ?? 1_000;
  const leakHandles = new Set<string>();
  const rebuilt = new Set<string>();

  for (const f of findings) {
    try {
      switch (f.kind) {
        case 'leak':
          leakHandles.add(f.handle!);
          if (report.released.length < maxReleases) await releaseLeak(store, ipam, snapshot, f, options, report);
          break;
        case 'orphan-allocation': {
          const done = await repairOrphanAllocation(store, mode, f);
          if (done === 'rebuilt') rebuilt.add(f.handle!);
          if (done !== false) report.repaired.push({ kind: f.kind, message: done === 'rebuilt' ? `${f.message}: handle rebuilt from the block` : f.message });
          else report.skipped++;
          break;
        }
        case 'orphan-handle':
          if (await repairOrphanHandle(store, mode, f)) report.repaired.push({ kind: f.kind, message: f.message });
          else report.skipped++;
          break;
        case 'stale-affinity':
        case 'misfiled-affinity':
          if (await refileBlock(store, mode, snapshot, f)) report.repaired.push({ kind: f.kind, message: f.message });
          else report.skipped++;
          break;
        case 'gone-node-affinity':
          if (await releaseGoneNodeBlock(store, mode, f)) report.blocks.push(f.block!.cidr);
          else report.skipped++;
          break;
        case 'orphan-block':
          if (!f.repairable) report.unrepairable.push(f);
          else if (await deleteEmptyBlock(store, mode, f.block!.pool, f.block!.cidr, undefined)) report.blocks.push(f.block!.cidr);
          else report.skipped++;
          break;
        case 'duplicate-address':
        case 'damaged-record':
          report.unrepairable.push(f);
          break;
      }
    } catch (err) {
      // Another writer won a race: this finding is re-examined next pass.
      if (!isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) throw err;
      report.skipped++;
    }
  }

  // Rebuilt handles are ordinary allocations now: those whose owner is gone are leaks of this same pass.
  if (rebuilt.size > 0) {
    const again = await readIpamSnapshot(store);
    for (const f of analyzeIpam(again)) {
      if (f.kind !== 'leak' || !rebuilt.has(f.handle!)) continue;
      leakHandles.add(f.handle!);
      try {
        if (report.released.length < maxReleases) await releaseLeak(store, ipam, again, f, options, report);
      } catch (err) {
        if (!isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) throw err;
        report.skipped++;
      }
    }
  }

  // Marks whose leak is over (the allocation was released, or is valid again) go.
  for (const [name, mark] of snapshot.marks) {
    if (mark.value.target === 'handle' && !leakHandles.has(mark.value.id)) await dropMark(store, name, mark.stored.modRevision);
  }
  await releaseEmptyBlocks(store, mode, snapshot, options, report);
  return report;
}

async function releaseLeak(store: Datastore, ipam: Ipam, s: IpamSnapshot, f: Finding, o: GcPassOptions, report: GcReport): Promise<void> {
  const handle = f.handle!;
  const markKey = handleMarkKey(handle);
  const mark = s.marks.get(markKey.name);
  const due = f.immediate === true || o.graceMs <= 0 || (mark !== undefined && o.now - mark.value.firstSeen >= o.graceMs);
  if (!due) {
    if (mark === undefined) {
      const value: GcMarkValue = { target: 'handle', id: handle, reason: f.message, firstSeen: o.now };
      await store.commit([{ op: 'create', key: markKey, value: json(value) }]);
      report.marked.push(handle);
    } else report.waiting.push(handle);
    return;
  }
  // The second observation: fresh reads of the handle and of what validates it, just before the release.
  const h = await freshHandle(store, handle);
  if (h === undefined) return;
  const [nodeStored, podStored] = await Promise.all([
    store.get({ kind: 'Node', name: h.value.node }),
    h.value.owner.kind === 'Pod' ? store.get({ kind: 'Pod', namespace: h.value.owner.namespace, name: h.value.owner.name }) : Promise.resolve(undefined),
  ]);
  const pods = new Map<string, PodFacts>();
  if (podStored !== undefined && h.value.owner.kind === 'Pod') {
    const p = podStored.value as unknown as Pod;
    pods.set(`${h.value.owner.namespace}/${h.value.owner.name}`, { uid: p.metadata?.uid, nodeName: p.spec?.nodeName, podIP: p.status?.podIP });
  }
  const validity = ownerValidity(h.value, new Set(nodeStored === undefined ? [] : [h.value.node]), pods);
  if (validity.valid) {
    if (mark !== undefined) await dropMark(store, markKey.name, mark.stored.modRevision);
    return;
  }
  const result = await ipam.releaseByHandle(handle, { expectedRevision: h.revision, alsoDelete: mark === undefined ? [] : [markKey] });
  if (result.released) report.released.push({ handle, ip: h.value.ip, reason: validity.reason });
  else report.skipped++;
}

async function readBlockAt(store: Datastore, pool: string, cidr: string): Promise<BlockRecord | undefined> {
  const p = parseIpv4Net(pool, { hostBits: 'clear', bareAddress: true });
  const n = parseIpv4Net(cidr, { hostBits: 'clear', bareAddress: true });
  if (p === undefined || n === undefined) return undefined;
  const stored = await store.get(blockKey(p, n));
  return stored === undefined ? undefined : readBlock(stored);
}

/**
 * A block entry whose handle does not hold it (re-checked on fresh reads, the block before the handle):
 * freed — except, in single-object mode, when the handle record is missing and the block has the
 * allocation's attributes: then the handle is rebuilt (`'rebuilt'`), because the allocation may be one
 * whose handle is being written at this moment; if its owner is gone it is an ordinary leak afterwards.
 */
async function repairOrphanAllocation(store: Datastore, mode: WriteMode, f: Finding): Promise<boolean | 'rebuilt'> {
  const block = await readBlockAt(store, f.block!.pool, f.block!.cidr);
  const stored = await store.get(handleKey(f.handle!));
  const ip = parseIpv4(f.ip!);
  if (block === undefined || ip === undefined) return false;
  const ord = ip - block.net.first;
  if (block.value.allocations[String(ord)] !== f.handle) return false;
  const h = stored === undefined ? undefined : (stored.value as { ip?: string; block?: string });
  if (h !== undefined && h.ip === f.ip && h.block === block.value.cidr) return false; // consistent after all
  const implied = handleFromBlock(block, ord);
  if (mode === 'single-object' && stored === undefined && implied !== undefined) {
    await store.commit([{ op: 'create', key: handleKey(f.handle!), value: json(implied) }]);
    return 'rebuilt';
  }
  const fullIndex = block.value.affinity === null ? undefined : await store.get(affinityKey(block.value.affinity, block.net, true));
  await writeInOrder(store, mode, [...freeOrdinalOps(block, ord, fullIndex), { op: 'check', key: handleKey(f.handle!), expectedRevision: stored?.modRevision ?? 0 }]);
  return true;
}

/** Removes a handle whose block does not record it (re-checked on fresh reads). */
async function repairOrphanHandle(store: Datastore, mode: WriteMode, f: Finding): Promise<boolean> {
  const stored = await store.get(handleKey(f.handle!));
  if (stored === undefined) return false;
  const v = stored.value as { ip?: string; block?: string; pool?: string; handle?: string };
  const block = typeof v.pool === 'string' && typeof v.block === 'string' ? await readBlockAt(store, v.pool, v.block) : undefined;
  const ip = typeof v.ip === 'string' ? parseIpv4(v.ip) : undefined;
  if (block !== undefined && ip !== undefined && block.value.allocations[String(ip - block.net.first)] === f.handle) return false;
  const pool = typeof v.pool === 'string' ? parseIpv4Net(v.pool, { hostBits: 'clear', bareAddress: true }) : undefined;
  const net = typeof v.block === 'string' ? parseIpv4Net(v.block, { hostBits: 'clear', bareAddress: true }) : undefined;
  const ops: WriteOp[] = [{ op: 'delete', key: stored.key, expectedRevision: stored.modRevision }];
  // Single-object mode drops the check: a handle is created only after its block records it, so a handle
  // (at the revision read) that its block, read after it, does not record is never an allocation in flight.
  if (pool !== undefined && net !== undefined) ops.push({ op: 'check', key: blockKey(pool, net), expectedRevision: block?.revision ?? 0 });
  await writeInOrder(store, mode, ops);
  return true;
}

/** Makes a block's affinity index match the block (re-read): filed once, as full or with room, or not at all. */
async function refileBlock(store: Datastore, mode: WriteMode, s: IpamSnapshot, f: Finding): Promise<boolean> {
  const pool = parseIpv4Net(f.block!.pool, { hostBits: 'clear', bareAddress: true });
  const net = parseIpv4Net(f.block!.cidr, { hostBits: 'clear', bareAddress: true });
  if (pool === undefined || net === undefined) return false;
  const stored = await store.get(blockKey(pool, net));
  const block = stored === undefined ? undefined : readBlock(stored);
  const check: WriteOp = { op: 'check', key: blockKey(pool, net), expectedRevision: stored?.modRevision ?? 0 };
  const ops: WriteOp[] = [check];
  const owner = block?.value.affinity ?? null;
  // Index records of other nodes for this block are stale.
  if (f.node !== undefined && f.node !== owner) ops.push({ op: 'delete', key: affinityKey(f.node, net, false) }, { op: 'delete', key: affinityKey(f.node, net, true) });
  if (block !== undefined && owner !== null && s.nodes.has(owner)) {
    const full = findFreeOrdinal(block.value, block.net, s.exclusions.get(block.value.pool) ?? Exclusions.NONE) === undefined;
    ops.push({ op: 'put', key: affinityKey(owner, net, full), value: json({ node: owner, block: block.value.cidr, pool: block.value.pool }) }, { op: 'delete', key: affinityKey(owner, net, !full) });
  }
  if (ops.length === 1) return false;
  await writeInOrder(store, mode, ops);
  return true;
}

/** A block affine to a node that is gone: deleted when empty, else left without affinity. */
async function releaseGoneNodeBlock(store: Datastore, mode: WriteMode, f: Finding): Promise<boolean> {
  const node = f.node!;
  if ((await store.get({ kind: 'Node', name: node })) !== undefined) return false;
  const block = await readBlockAt(store, f.block!.pool, f.block!.cidr);
  if (block === undefined || block.value.affinity !== node) return false;
  const index: WriteOp[] = [
    { op: 'delete', key: affinityKey(node, block.net, false) },
    { op: 'delete', key: affinityKey(node, block.net, true) },
  ];
  if (Object.keys(block.value.allocations).length === 0) {
    await writeInOrder(store, mode, [{ op: 'delete', key: block.key, expectedRevision: block.revision }, ...index]);
  } else {
    await writeInOrder(store, mode, [{ op: 'update', key: block.key, value: json({ ...block.value, affinity: null }), expectedRevision: block.revision }, ...index]);
  }
  return true;
}

/** Deletes a block (and its index records) if it is still empty and still has the affinity expected. */
async function deleteEmptyBlock(store: Datastore, mode: WriteMode, pool: string, cidr: string, affinity: string | null | undefined, extra: WriteOp[] = []): Promise<boolean> {
  const block = await readBlockAt(store, pool, cidr);
  if (block === undefined || Object.keys(block.value.allocations).length > 0) return false;
  if (affinity !== undefined && block.value.affinity !== affinity) return false;
  const ops: WriteOp[] = [{ op: 'delete', key: block.key, expectedRevision: block.revision }, ...extra];
  if (block.value.affinity !== null) ops.push({ op: 'delete', key: affinityKey(block.value.affinity, block.net, false) }, { op: 'delete', key: affinityKey(block.value.affinity, block.net, true) });
  await writeInOrder(store, mode, ops);
  return true;
}

/**
 * Empty blocks: without affinity they go at once; affine to a live node they go after two observations
 * across the grace — except a node's only block, which it keeps (Calico's rule: releasing it would make
 * the node's next pod pay for a new claim).
 */
async function releaseEmptyBlocks(store: Datastore, mode: WriteMode, s: IpamSnapshot, o: GcPassOptions, report: GcReport): Promise<void> {
  const perNode = new Map<string, number>();
  for (const b of s.blocks) if (b.value.affinity !== null) perNode.set(b.value.affinity, (perNode.get(b.value.affinity) ?? 0) + 1);
  const poolCidrs = new Set(s.pools.map((p) => p.cidr));
  const seenMarks = new Set<string>();
  for (const b of s.blocks) {
    if (Object.keys(b.value.allocations).length > 0 || !poolCidrs.has(b.value.pool)) continue;
    const node = b.value.affinity;
    try {
      if (node === null) {
        if (await deleteEmptyBlock(store, mode, b.value.pool, b.value.cidr, null)) report.blocks.push(b.value.cidr);
        continue;
      }
      if (!s.nodes.has(node)) continue; // handled as gone-node-affinity
      const markKey = blockMarkKey(b.pool, b.net);
      seenMarks.add(markKey.name);
      const mark = s.marks.get(markKey.name);
      if ((perNode.get(node) ?? 0) <= 1) {
        if (mark !== undefined) await dropMark(store, markKey.name, mark.stored.modRevision);
        continue;
      }
      const due = o.graceMs <= 0 || (mark !== undefined && o.now - mark.value.firstSeen >= o.graceMs);
      if (!due) {
        if (mark === undefined) {
          const value: GcMarkValue = { target: 'block', id: `${b.value.pool}|${b.value.cidr}`, reason: `block ${b.value.cidr} of node ${node} is empty`, firstSeen: o.now };
          await store.commit([{ op: 'create', key: markKey, value: json(value) }]);
        }
        continue;
      }
      if (await deleteEmptyBlock(store, mode, b.value.pool, b.value.cidr, node, mark === undefined ? [] : [{ op: 'delete', key: markKey, expectedRevision: mark.stored.modRevision }])) {
        perNode.set(node, (perNode.get(node) ?? 1) - 1);
        report.blocks.push(b.value.cidr);
      } else report.skipped++;
    } catch (err) {
      if (!isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) throw err;
      report.skipped++;
    }
  }
  // Marks of blocks that are no longer empty (or gone) go.
  for (const [name, mark] of s.marks) if (mark.value.target === 'block' && !seenMarks.has(name)) await dropMark(store, name, mark.stored.modRevision);
}

async function dropMark(store: Datastore, name: string, revision: number): Promise<void> {
  try {
    await store.commit([{ op: 'delete', key: { kind: handleMarkKey('x').kind, name }, expectedRevision: revision }]);
  } catch (err) {
    if (!isEgwError(err, 'Conflict')) throw err;
  }
}

/** Throws when the grace is not a sane duration (for callers that parse it). */
export function checkGrace(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new EgwError('InvalidInput', `invalid GC grace period ${ms} ms`, { hint: 'a duration such as 15m, 30s or 0s' });
  return ms;
}
