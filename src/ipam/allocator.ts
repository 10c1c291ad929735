/**
 * The allocator: hands out and releases IPv4 addresses with Calico semantics, on the datastore contract
 * only (so it works unchanged on SQLite and etcd, from any number of processes at once).
 *
 * Every change is one atomic commit with compare-and-swap expectations: an allocation writes the block
 * (create, or update at the revision read), creates the handle, and keeps the node's affinity index in
 * step, all together. A crash between two commits therefore never leaves half an allocation, and two
 * writers can never both take one address: the second commit's expectation fails, and it is retried from
 * fresh reads (counted in {@link IpamStats.conflictsRetried}). docs/ipam.md explains the algorithm.
 */
import { AWS_SECONDARY_IPV4_RESOURCE, CNI_IPV4_POOLS } from '../api/annotations.js';
import { ALLOWED_IPV4_POOLS, describeAllowList, poolsNotAllowed, readAllowList } from '../api/allow-list.js';
import type { AWSSubnet } from '../api/kinds/aws-subnet.js';
import type { IPPool } from '../api/kinds/ip-pool.js';
import type { IPReservation } from '../api/kinds/ip-reservation.js';
import type { Namespace, Node, Pod } from '../api/kinds/kubernetes.js';
import { namespaceLabels, prepareLabels } from '../api/selector/labels.js';
import type { Datastore, ResourceKey, StoredResource, WriteOp } from '../datastore/contract.js';
import type { Clock } from '../platform/clock.js';
import { EgwError, isEgwError } from '../platform/errors.js';
import { findFreeOrdinal, newBlock, usableCount, withAllocation, withoutAllocation } from './block.js';
import { reservationExclusions } from './exclusions.js';
import type { Exclusions } from './exclusions.js';
import { formatIpv4, formatIpv4Net, ipv4Net, ipv4NetContains, parseIpv4, parseIpv4Net, type Ipv4Net } from '../platform/ipv4.js';
import type { CandidatePool, PoolInfo, SkippedPool, SubnetFacts } from './pools.js';
import { choosePools, exhaustionError, poolInfo, requestedPools } from './pools.js';
import type { AffinityValue, AllocationAttributes, AllocationOwner, BlockRecord, BlockValue, HandleRecord, HandleValue, IntendedUse } from './records.js';
import type { WriteMode } from './writes.js';
import { followUp, writeInOrder, writeModeOf } from './writes.js';
import {
  affinityKey,
  BLOCK_AFFINITY_KIND,
  blockKey,
  checkHandleId,
  handleKey,
  IPAM_BLOCK_KIND,
  json,
  readBlock,
  readHandle,
} from './records.js';

/** Side effects of the allocator. */
export interface IpamDeps {
  store: Datastore;
  /** Timestamps of allocations and retry pauses (default: the system clock). */
  clock?: Clock;
  /** Uniform in [0, 1): which free block or address to try (default Math.random). */
  random?: () => number;
}

/** Tuning; the defaults suit production. */
export interface IpamOptions {
  /** Commits tried per call before giving up with `Conflict` (default 100, as Calico). */
  maxAttempts?: number;
  /** When true, a node never borrows from blocks affine to other nodes (Calico's strictAffinity; default false). */
  strictAffinity?: boolean;
  /** Random block (or address) probes in a large pool before listing it whole (default 16). */
  probes?: number;
  /** Pools of at most this many blocks are listed rather than probed (default 128). */
  listLimit?: number;
  /**
   * `atomic` (one multi-key commit per change) or `single-object` (one object per commit, block first);
   * default: `atomic` exactly when `store.capabilities.atomicMultiKey` (docs/ipam.md, "Two write modes").
   */
  writeMode?: WriteMode;
}

/** What to allocate, for whom. */
export interface AllocateRequest {
  /** The handle that owns the address; allocation is idempotent per handle. */
  handle: string;
  /** The node the address is used on (must exist as a Node: its labels drive pool choice). */
  node: string;
  /** Default `Workload`; the agent asks for `HostSecondaryInterface` (ENI primary IPs). */
  use?: IntendedUse;
  /** Recorded on the handle; GC validates it. Default: the pod, else `{ kind: 'None' }`. */
  owner?: AllocationOwner;
  /** The pod the address is for: its (or its namespace's) ipv4pools annotation and its aws-secondary-ipv4 request count. */
  pod?: Pod;
  /** Pools by name or CIDR, in order: used when neither the pod nor its namespace names pools. */
  pools?: readonly string[];
  /** AWS-backed pools wanted. Default: the pod's request of projectcalico.org/aws-secondary-ipv4; true for HostSecondaryInterface. */
  aws?: boolean;
  /** Only pools backed by this AWS subnet. */
  awsSubnetID?: string;
}

/** One allocation, as recorded on its handle. */
export interface Allocation {
  handle: string;
  /** The address, e.g. `100.64.0.5`. */
  ip: string;
  /** The pool's prefix length (the address's network as the pool defines it). */
  prefixLength: number;
  pool: string;
  poolCidr: string;
  block: string;
  node: string;
  use: IntendedUse;
  owner: AllocationOwner;
  awsSubnetID?: string;
  allocatedAt: string;
  /** True when the handle already held this address before the call (an idempotent repeat). */
  existing: boolean;
}

/** What a release did. */
export interface ReleaseResult {
  /** False when there was nothing to release (unknown handle, free address): still a success. */
  released: boolean;
  handle?: string;
  ip?: string;
}

/** Options of {@link Ipam.releaseByHandle}. */
export interface ReleaseOptions {
  /**
   * Release only while the handle is at this revision (GC: the allocation it validated, not a newer one
   * that reuses the handle); otherwise nothing happens (`released: false`).
   */
  expectedRevision?: number;
  /** Keys deleted in the same commit (GC removes its observation mark with the release). */
  alsoDelete?: readonly ResourceKey[];
}

/** Counters, for benchmarks and metrics. */
export interface IpamStats {
  /** Commits that failed an expectation (another writer got there first) and were retried. */
  conflictsRetried: number;
  /** Commits attempted. */
  commits: number;
}

interface Context {
  node: { name: string; labels: Readonly<Record<string, string>> };
  pools: IPPool[];
  reserved: Exclusions;
  subnets: Map<string, SubnetFacts>;
  affinities: AffinityValue[];
  namespace: Namespace | undefined;
}

interface Plan {
  /** The block write first (the decision), then the affinity index ops. */
  ops: WriteOp[];
  ip: number;
  pool: PoolInfo;
  block: Ipv4Net;
}

/** Who an allocation is for: the handle and the attributes recorded with it (they depend on the pool). */
interface Who {
  handle: string;
  attributes(pool: PoolInfo): AllocationAttributes;
}

const DEFAULT_MAX_ATTEMPTS = 100;

/**
 * Allocates and releases addresses. One instance per process is enough; it holds no cache, only
 * counters, so any number of instances in any number of processes may work on one store at once.
 */
export class Ipam {
  /** Counters since construction. */
  readonly stats: IpamStats = { conflictsRetried: 0, commits: 0 };
  private readonly store: Datastore;
  private readonly clock: Clock | undefined;
  private readonly random: () => number;
  private readonly maxAttempts: number;
  private readonly strictAffinity: boolean;
  private readonly probes: number;
  private readonly listLimit: number;
  /** How this instance writes (docs/ipam.md, "Two write modes"). */
  readonly writeMode: WriteMode;

  constructor(deps: IpamDeps, options: IpamOptions = {}) {
    this.store = deps.store;
    this.clock = deps.clock;
    this.random = deps.random ?? Math.random;
    this.maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.strictAffinity = options.strictAffinity ?? false;
    this.probes = options.probes ?? 16;
    this.listLimit = options.listLimit ?? 128;
    this.writeMode = writeModeOf(deps.store, options.writeMode);
  }

  /**
   * Allocates one IPv4 address for `request.handle`, or returns the one the handle already holds
   * (`existing: true`): a repeated call (a retried CNI ADD, a lost response) never takes a second address.
   * Errors: `InvalidInput` (bad handle, malformed annotation); `NotFound` (the node is not in the store);
   * `AlreadyExists` (the handle holds an address for another use or owner); `NoQualifiedPool` (a requested
   * pool is missing or disabled, or no pool qualifies — the message names each pool and why);
   * `PoolExhausted` (qualified pools are all full); `Conflict` after `maxAttempts` lost races;
   * datastore errors as they come.
   */
  async allocate(request: AllocateRequest): Promise<Allocation> {
    const handle = checkHandleId(request.handle);
    const use: IntendedUse = request.use ?? 'Workload';
    const owner: AllocationOwner =
      request.owner ??
      (request.pod !== undefined
        ? { kind: 'Pod', namespace: request.pod.metadata.namespace ?? 'default', name: request.pod.metadata.name, ...(request.pod.metadata.uid === undefined ? {} : { uid: request.pod.metadata.uid }) }
        : { kind: 'None' });
    const aws = request.aws ?? (use === 'HostSecondaryInterface' ? true : request.pod !== undefined && requestsAwsSecondaryIp(request.pod));
    const subject =
      request.pod !== undefined
        ? `pod ${request.pod.metadata.namespace ?? 'default'}/${request.pod.metadata.name} on node ${request.node}`
        : `handle ${handle} on node ${request.node}`;

    for (let attempt = 0; ; attempt++) {
      const [existing, ctx] = await Promise.all([this.store.get(handleKey(handle)), this.readContext(request, aws)]);
      if (existing !== undefined) {
        // Single-object writes free the block before deleting the handle: a handle its block no longer
        // records is half released (or damaged) and must not be handed out again. Delete it, start over.
        if (this.writeMode === 'atomic' || (await this.blockRecords(existing))) return this.existingAllocation(existing, use, owner);
        await this.tryCommit([{ op: 'delete', key: existing.key, expectedRevision: existing.modRevision }], attempt);
        continue;
      }
      const requested =
        request.pod !== undefined
          ? requestedPools(request.pod.metadata.annotations, ctx.namespace?.metadata.annotations, request.pools)
          : request.pools === undefined || request.pools.length === 0
            ? undefined
            : { pools: request.pools, source: 'request' as const };
      if (requested?.source === 'pod annotation') {
        // The namespace's allow-list (docs/security.md, 7): a pod names only pools its namespace allows.
        const allow = readAllowList(ctx.namespace?.metadata.annotations, ALLOWED_IPV4_POOLS);
        const refused = poolsNotAllowed(requested.pools, allow, ctx.pools.map((p) => ({ name: p.metadata.name, cidr: p.spec.cidr })));
        if (refused.length > 0) {
          throw new EgwError('InvalidInput', `${subject} names IPPool ${refused.join(', ')} in ${CNI_IPV4_POOLS}, which namespace ${ctx.namespace?.metadata.name ?? '?'} does not allow (${ALLOWED_IPV4_POOLS}: ${describeAllowList(allow)})`, {
            hint: `an administrator adds the pool to the namespace's ${ALLOWED_IPV4_POOLS}, or the pod stops naming it`,
          });
        }
      }
      const choice = choosePools({
        pools: ctx.pools,
        node: ctx.node,
        namespace: ctx.namespace === undefined ? undefined : { name: ctx.namespace.metadata.name, labels: namespaceLabels({ name: ctx.namespace.metadata.name, labels: ctx.namespace.metadata.labels }) },
        requested,
        use,
        aws,
        awsSubnetID: request.awsSubnetID,
        subnets: ctx.subnets,
        reserved: ctx.reserved,
      });
      const skipped = [...choice.skipped];
      const allocatedAt = new Date(this.clock?.now() ?? Date.now()).toISOString();
      const who: Who = {
        handle,
        attributes: (pool) => ({ poolName: pool.name, node: request.node, use, owner, ...(pool.awsSubnetID === undefined ? {} : { awsSubnetID: pool.awsSubnetID }), allocatedAt }),
      };
      const plan = await this.plan(ctx, choice.candidates, who, skipped);
      if (plan === undefined) throw exhaustionError(subject, skipped, choice.candidates.length > 0);
      const value: HandleValue = { handle, ip: formatIpv4(plan.ip), block: formatIpv4Net(plan.block), pool: plan.pool.cidr, ...who.attributes(plan.pool) };
      const create: WriteOp = { op: 'create', key: handleKey(handle), value: json(value) };
      if (this.writeMode === 'atomic') {
        if (await this.tryCommit([...plan.ops, create], attempt)) return toAllocation(value, plan.pool.net.prefix, false);
        continue;
      }
      // Single-object: the block write is the allocation; the handle and the index follow it.
      if (!(await this.tryCommit(plan.ops.slice(0, 1), attempt))) continue;
      const result = await this.recordHandle(value, plan, use, owner);
      await followUp(this.store, plan.ops.slice(1));
      return result;
    }
  }

  /**
   * Single-object mode, after the block write: creates the handle record. When it exists already, either
   * GC rebuilt it from the block (same address: done), or a concurrent call with the same handle won (its
   * address is the answer; ours is freed again).
   */
  private async recordHandle(value: HandleValue, plan: Plan, use: IntendedUse, owner: AllocationOwner): Promise<Allocation> {
    try {
      this.stats.commits++;
      await this.store.commit([{ op: 'create', key: handleKey(value.handle), value: json(value) }]);
      return toAllocation(value, plan.pool.net.prefix, false);
    } catch (err) {
      if (!isEgwError(err, 'AlreadyExists')) throw err;
    }
    const stored = await this.store.get(handleKey(value.handle));
    const h = stored === undefined ? undefined : readHandle(stored);
    if (h !== undefined && h.value.ip === value.ip && h.value.block === value.block && h.value.allocatedAt === value.allocatedAt) return toAllocation(h.value, plan.pool.net.prefix, false);
    await this.undoAllocation(value);
    if (stored === undefined) {
      throw new EgwError('Conflict', `IPAM handle ${value.handle} was created and deleted while ${value.ip} was being allocated for it`, { hint: 'retry', retry: 'retry' });
    }
    return this.existingAllocation(stored, use, owner);
  }

  /** Frees the ordinal an allocation wrote into its block, if the block still records exactly it. */
  private async undoAllocation(value: HandleValue): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const found = await this.blockOf(value);
      if (found === undefined) return;
      const { block, ord } = found;
      if (block.value.allocations[String(ord)] !== value.handle || block.value.attributes?.[String(ord)]?.allocatedAt !== value.allocatedAt) return;
      const fullIndex = block.value.affinity === null ? undefined : await this.store.get(affinityKey(block.value.affinity, block.net, true));
      if (await this.applyRelease(freeOrdinalOps(block, ord, fullIndex), attempt)) return;
    }
  }

  /** The block a handle value names and the handle's ordinal in it (undefined: malformed or no block). */
  private async blockOf(v: Pick<HandleValue, 'pool' | 'block' | 'ip'>): Promise<{ block: BlockRecord; ord: number } | undefined> {
    const pool = parseIpv4Net(v.pool, { hostBits: 'clear' });
    const net = parseIpv4Net(v.block, { hostBits: 'clear' });
    const ip = parseIpv4(v.ip);
    if (pool === undefined || net === undefined || ip === undefined || !ipv4NetContains(net, ip)) return undefined;
    const stored = await this.store.get(blockKey(pool, net));
    const block = stored === undefined ? undefined : readBlock(stored);
    return block === undefined ? undefined : { block, ord: ip - net.first };
  }

  /** True when the handle's block records the handle's address for it (and, with attributes, this allocation). */
  private async blockRecords(stored: StoredResource): Promise<boolean> {
    const h = readHandle(stored);
    if (h === undefined) return true; // damaged: existingAllocation reports it
    const found = await this.blockOf(h.value);
    return found !== undefined && recordsAllocation(found.block, found.ord, h.value);
  }

  /**
   * Commits release ops whose first op frees the address (the decision): in one commit, or, in
   * single-object mode, that op alone and the rest after it. False when a conflict is to be retried.
   */
  private async applyRelease(ops: WriteOp[], attempt: number): Promise<boolean> {
    if (this.writeMode === 'atomic') return this.tryCommit(ops, attempt);
    if (!(await this.tryCommit(ops.slice(0, 1), attempt))) return false;
    await followUp(this.store, ops.slice(1));
    return true;
  }

  /**
   * Releases the address `handle` holds, in one commit (block and handle together). Idempotent: an
   * unknown handle is `{ released: false }`, not an error. A handle whose block no longer records it
   * (damaged state) is removed all the same.
   */
  async releaseByHandle(handle: string, options: ReleaseOptions = {}): Promise<ReleaseResult> {
    checkHandleId(handle);
    for (let attempt = 0; ; attempt++) {
      const stored = await this.store.get(handleKey(handle));
      if (stored === undefined) return { released: false, handle };
      if (options.expectedRevision !== undefined && stored.modRevision !== options.expectedRevision) return { released: false, handle };
      const h = readHandle(stored);
      const free = h === undefined ? [] : await this.releaseOps(h);
      // The block first (freeing the address is the release), then the handle: a crash in between leaves a
      // handle its block does not record, which GC (or the next allocate with that handle) removes.
      const ops: WriteOp[] = [...free.slice(0, 1), { op: 'delete', key: handleKey(handle), expectedRevision: stored.modRevision }, ...free.slice(1)];
      for (const key of options.alsoDelete ?? []) ops.push({ op: 'delete', key });
      if (await this.applyRelease(ops, attempt)) return { released: true, handle, ...(h === undefined ? {} : { ip: h.value.ip }) };
    }
  }

  /**
   * Releases `ip` whoever holds it (its handle goes too). Idempotent: a free or unknown address is
   * `{ released: false }`. Throws `InvalidInput` for text that is not an IPv4 address.
   */
  async releaseByIp(ip: string): Promise<ReleaseResult> {
    const address = parseIpv4(ip);
    if (address === undefined) throw new EgwError('InvalidInput', `"${ip}" is not an IPv4 address`, { hint: 'e.g. --ip 100.64.0.5' });
    for (let attempt = 0; ; attempt++) {
      const found = await this.findBlockOf(address);
      if (found === undefined) return { released: false, ip };
      const ord = String(address - found.net.first);
      const owner = found.value.allocations[ord];
      if (owner === undefined) return { released: false, ip };
      const storedHandle = await this.store.get(handleKey(owner));
      const h = storedHandle === undefined ? undefined : readHandle(storedHandle);
      if (storedHandle !== undefined && h !== undefined && h.value.ip === ip) {
        const result = await this.releaseByHandle(owner);
        if (result.released) return { released: true, handle: owner, ip };
        continue;
      }
      // The block names a handle that does not hold this address: free the ordinal alone.
      const ops = freeOrdinalOps(found, Number(ord), undefined);
      if (await this.applyRelease(ops, attempt)) return { released: true, handle: owner, ip };
    }
  }

  /** The allocation `handle` holds, or undefined. */
  async getAllocation(handle: string): Promise<Allocation | undefined> {
    checkHandleId(handle);
    const stored = await this.store.get(handleKey(handle));
    const h = stored === undefined ? undefined : readHandle(stored);
    if (h === undefined) return undefined;
    const pool = parseIpv4Net(h.value.pool, { hostBits: 'clear' });
    return toAllocation(h.value, pool?.prefix ?? 32, true);
  }

  // ---------------------------------------------------------------------------------------------------

  /** Everything pool choice needs, read in parallel (one round trip on etcd). */
  private async readContext(request: AllocateRequest, aws: boolean): Promise<Context> {
    const nsName = request.pod?.metadata.namespace ?? (request.pod === undefined ? undefined : 'default');
    const [node, pools, reservations, subnets, affinities, namespace] = await Promise.all([
      this.store.get({ kind: 'Node', name: request.node }),
      this.store.list('IPPool'),
      this.store.list('IPReservation'),
      // Subnet facts matter only to AWS-backed pools, which only AWS requests may use.
      aws ? this.store.list('AWSSubnet') : Promise.resolve({ items: [], revision: 0 }),
      this.store.list(BLOCK_AFFINITY_KIND, { namespace: request.node }),
      nsName === undefined ? Promise.resolve(undefined) : this.store.get({ kind: 'Namespace', name: nsName }),
    ]);
    if (node === undefined) {
      throw new EgwError('NotFound', `node ${request.node} does not exist in the datastore`, {
        hint: 'IPAM reads the Node for its labels (zone, nodeSelector): egw apply the Node first, or pass the right node name',
        details: { node: request.node },
      });
    }
    const nodeValue = node.value as unknown as Node;
    const reserved = reservationExclusions(reservations.items.flatMap((r) => (r.value as unknown as IPReservation).spec?.reservedCIDRs ?? []));
    const subnetMap = new Map<string, SubnetFacts>();
    for (const s of subnets.items) {
      const spec = (s.value as unknown as AWSSubnet).spec;
      if (spec !== undefined) subnetMap.set(s.key.name, { cidr: spec.cidr, availabilityZone: spec.availabilityZone });
    }
    return {
      node: { name: request.node, labels: prepareLabels(nodeValue.metadata?.labels ?? {}) },
      pools: pools.items.map((p) => p.value as unknown as IPPool).filter((p) => p.spec !== undefined),
      reserved,
      subnets: subnetMap,
      affinities: affinities.items.map((a) => a.value as unknown as AffinityValue),
      namespace: namespace === undefined ? undefined : (namespace.value as unknown as Namespace),
    };
  }

  /**
   * The commit that takes one address, trying in Calico's order: blocks affine to the node (any
   * candidate pool, in pool order), then per pool a new block (or, for /32 blocks, a free address),
   * then — unless strictAffinity — a free address in another node's block. Pools that yield nothing get
   * a skip reason. Reads only; the caller commits.
   */
  private async plan(ctx: Context, candidates: readonly CandidatePool[], who: Who, skipped: SkippedPool[]): Promise<Plan | undefined> {
    const node = ctx.node.name;
    // 1. The node's affine blocks with room (the index lists only those: flat however many are full).
    for (const cand of candidates) {
      if (cand.pool.blockSize === 32) continue;
      const mine = shuffle(ctx.affinities.filter((a) => a.pool === cand.pool.cidr), this.random);
      for (const a of mine) {
        const net = parseIpv4Net(a.block, { hostBits: 'clear' });
        if (net === undefined) continue;
        const stored = await this.store.get(blockKey(cand.pool.net, net));
        const block = stored === undefined ? undefined : readBlock(stored);
        if (block === undefined || block.value.affinity !== node) continue; // a stale index entry: GC repairs it
        const ord = findFreeOrdinal(block.value, block.net, cand.exclusions);
        if (ord === undefined) {
          await this.refile(block, node);
          continue;
        }
        return this.updatePlan(block, ord, who, cand, node);
      }
    }
    // 2. and 3. Per pool: a new block or address, else borrow.
    for (const cand of candidates) {
      const plan = cand.pool.blockSize === 32 ? await this.planPerAddress(cand, who, skipped) : await this.planClaim(cand, who, node, skipped);
      if (plan !== undefined) return plan;
    }
    return undefined;
  }

  /** Pools with /32 blocks (AWS-backed): every address its own block, created with its allocation. */
  private async planPerAddress(cand: CandidatePool, who: Who, skipped: SkippedPool[]): Promise<Plan | undefined> {
    const { pool, exclusions } = cand;
    const make = (ip: number): Plan => {
      const net = ipv4Net(ip, 32);
      const value = withAllocation(newBlock(net, pool.net, null, formatIpv4Net), net, 0, who.handle, who.attributes(pool));
      return { ip, pool, block: net, ops: [{ op: 'create', key: blockKey(pool.net, net), value: json(value) }] };
    };
    if (pool.net.size > this.listLimit) {
      for (let i = 0; i < this.probes; i++) {
        const ip = pool.net.first + Math.floor(this.random() * pool.net.size);
        if (exclusions.has(ip)) continue;
        if ((await this.store.get(blockKey(pool.net, ipv4Net(ip, 32)))) === undefined) return make(ip);
      }
    }
    const { items } = await this.store.list(IPAM_BLOCK_KIND, { namespace: blockNamespace(pool) });
    const taken = new Set<number>();
    for (const s of items) {
      const b = readBlock(s);
      if (b !== undefined) for (let ord = 0; ord < b.net.size; ord++) if (b.value.allocations[String(ord)] !== undefined) taken.add(b.net.first + ord);
    }
    const free: number[] = [];
    for (let ip = pool.net.first; ip < pool.net.first + pool.net.size; ip++) if (!taken.has(ip) && !exclusions.has(ip)) free.push(ip);
    if (free.length > 0) return make(free[Math.floor(this.random() * free.length)]!);
    skipped.push(fullReason(pool, exclusions, taken.size));
    return undefined;
  }

  /** Pools with real blocks: claim an unclaimed block (or adopt one without affinity), else borrow. */
  private async planClaim(cand: CandidatePool, who: Who, node: string, skipped: SkippedPool[]): Promise<Plan | undefined> {
    const { pool, exclusions } = cand;
    const blockAddresses = 2 ** (32 - pool.blockSize);
    const blocks = pool.net.size / blockAddresses;
    const netAt = (i: number): Ipv4Net => ipv4Net(pool.net.first + i * blockAddresses, pool.blockSize);
    if (blocks > this.listLimit) {
      for (let i = 0; i < this.probes; i++) {
        const net = netAt(Math.floor(this.random() * blocks));
        if (exclusions.coversAll(net)) continue;
        const stored = await this.store.get(blockKey(pool.net, net));
        if (stored === undefined) return this.claimPlan(net, who, cand, node);
        const block = readBlock(stored);
        if (block !== undefined && block.value.affinity === null) {
          const ord = findFreeOrdinal(block.value, block.net, exclusions);
          if (ord !== undefined) return this.updatePlan(block, ord, who, cand, node, true);
        }
      }
    }
    // The whole pool, listed: exact, and the only way to tell "full" from "unlucky".
    const { items } = await this.store.list(IPAM_BLOCK_KIND, { namespace: blockNamespace(pool) });
    const existing = new Map<number, BlockRecord>();
    for (const s of items) {
      const b = readBlock(s);
      if (b !== undefined) existing.set(b.net.first, b);
    }
    const unclaimed: Ipv4Net[] = [];
    for (let i = 0; i < blocks; i++) {
      const net = netAt(i);
      if (!existing.has(net.first) && !exclusions.coversAll(net)) unclaimed.push(net);
    }
    if (unclaimed.length > 0) return this.claimPlan(unclaimed[Math.floor(this.random() * unclaimed.length)]!, who, cand, node);
    // The node's own blocks (in case the index missed one), then blocks without affinity (adopting one
    // costs nobody), then other nodes' blocks (borrowing, unless strictAffinity).
    const rank = (b: BlockRecord): number => (b.value.affinity === node ? 0 : b.value.affinity === null ? 1 : 2);
    const withRoom = shuffle(
      [...existing.values()].filter((b) => rank(b) < 2 || !this.strictAffinity),
      this.random,
    ).sort((a, b) => rank(a) - rank(b));
    for (const b of withRoom) {
      const ord = findFreeOrdinal(b.value, b.net, exclusions);
      if (ord !== undefined) return this.updatePlan(b, ord, who, cand, node, rank(b) < 2);
    }
    let allocated = 0;
    for (const b of existing.values()) allocated += Object.keys(b.value.allocations).length;
    skipped.push(
      this.strictAffinity && [...existing.values()].some((b) => b.value.affinity !== node && b.value.affinity !== null && usableCount(b.value, b.net, exclusions) > 0)
        ? { name: pool.name, cidr: pool.cidr, reason: 'full', detail: `every block is claimed, and strictAffinity forbids borrowing from other nodes' blocks` }
        : fullReason(pool, exclusions, allocated),
    );
    return undefined;
  }

  /** A new block, affine to `node`, with its first allocation. */
  private claimPlan(net: Ipv4Net, who: Who, cand: CandidatePool, node: string): Plan | undefined {
    const empty = newBlock(net, cand.pool.net, node, formatIpv4Net);
    const ord = findFreeOrdinal(empty, net, cand.exclusions);
    if (ord === undefined) return undefined;
    const value = withAllocation(empty, net, ord, who.handle, who.attributes(cand.pool));
    const full = findFreeOrdinal(value, net, cand.exclusions) === undefined;
    return {
      ip: net.first + ord,
      pool: cand.pool,
      block: net,
      ops: [{ op: 'create', key: blockKey(cand.pool.net, net), value: json(value) }, ...indexOps(node, net, cand.pool.net, full)],
    };
  }

  /** An allocation in an existing block, at the revision read (adopting it when `adopt`). */
  private updatePlan(block: BlockRecord, ord: number, who: Who, cand: CandidatePool, node: string, adopt = false): Plan {
    const value: BlockValue = withAllocation(adopt ? { ...block.value, affinity: node } : block.value, block.net, ord, who.handle, who.attributes(cand.pool));
    const ops: WriteOp[] = [{ op: 'update', key: block.key, value: json(value), expectedRevision: block.revision }];
    const full = findFreeOrdinal(value, block.net, cand.exclusions) === undefined;
    // Keep the affinity index in step: adopted blocks join it; a block that fills moves to the full index.
    if (value.affinity !== null && (adopt || full)) ops.push(...indexOps(value.affinity, block.net, cand.pool.net, full));
    return { ip: block.net.first + ord, pool: cand.pool, block: block.net, ops };
  }

  /** Moves a block with no usable address from the node's room index to its full index (best effort). */
  private async refile(block: BlockRecord, node: string): Promise<void> {
    try {
      // Single-object mode drops the check: the index is advisory, and GC refiles what a race misfiles.
      await writeInOrder(this.store, this.writeMode, [{ op: 'check', key: block.key, expectedRevision: block.revision }, ...indexOps(node, block.net, block.pool, true)]);
    } catch (err) {
      if (!isEgwError(err, 'Conflict')) throw err;
    }
  }

  /** The ops that free a handle's address in its block (none when the block does not record it). */
  private async releaseOps(h: HandleRecord): Promise<WriteOp[]> {
    const pool = parseIpv4Net(h.value.pool, { hostBits: 'clear' });
    const net = parseIpv4Net(h.value.block, { hostBits: 'clear' });
    const ip = parseIpv4(h.value.ip);
    if (pool === undefined || net === undefined || ip === undefined || !ipv4NetContains(net, ip)) return [];
    const stored = await this.store.get(blockKey(pool, net));
    const block = stored === undefined ? undefined : readBlock(stored);
    if (block === undefined) return [];
    const ord = ip - net.first;
    if (!recordsAllocation(block, ord, h.value)) return [];
    const fullIndex = block.value.affinity === null ? undefined : await this.store.get(affinityKey(block.value.affinity, net, true));
    return freeOrdinalOps(block, ord, fullIndex);
  }

  /** The block that holds `address`, found through the pools (or, for addresses of no pool, a scan). */
  private async findBlockOf(address: number): Promise<BlockRecord | undefined> {
    const { items } = await this.store.list('IPPool');
    for (const p of items) {
      const info = poolInfo(p.value as unknown as IPPool);
      if (info === undefined || !ipv4NetContains(info.net, address) || info.blockSize < info.net.prefix || info.blockSize > 32) continue;
      const stored = await this.store.get(blockKey(info.net, ipv4Net(address, info.blockSize)));
      if (stored !== undefined) return readBlock(stored);
    }
    // Not in any current pool's blocks: a deleted pool, or a changed block size. Rare; scan.
    const all = await this.store.list(IPAM_BLOCK_KIND);
    for (const s of all.items) {
      const b = readBlock(s);
      if (b !== undefined && ipv4NetContains(b.net, address)) return b;
    }
    return undefined;
  }

  /** Commits `ops`; false (after a short jittered pause) when another writer won, to be retried. */
  private async tryCommit(ops: WriteOp[], attempt: number): Promise<boolean> {
    this.stats.commits++;
    try {
      await this.store.commit(ops);
      return true;
    } catch (err) {
      if (!isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) throw err;
      this.stats.conflictsRetried++;
      if (attempt + 1 >= this.maxAttempts) {
        throw new EgwError('Conflict', `IPAM gave up after ${this.maxAttempts} attempts lost to concurrent writers`, {
          hint: 'retry; if this persists, the datastore is under unusual contention',
          retry: 'retry',
          cause: err,
        });
      }
      // Writers that collided would collide again in lockstep; a random pause spreads them.
      const pause = this.random() * Math.min(2 ** Math.min(attempt, 5), 20);
      if (this.clock !== undefined) await this.clock.sleep(pause);
      else await new Promise((r) => setTimeout(r, pause));
      return false;
    }
  }

  private existingAllocation(stored: StoredResource, use: IntendedUse, owner: AllocationOwner): Allocation {
    const h = readHandle(stored);
    if (h === undefined) {
      throw new EgwError('AlreadyExists', `IPAM handle ${stored.key.name} exists but is damaged`, { hint: 'run egw ipam check, then egw ipam gc' });
    }
    if (h.value.use !== use || !sameOwner(h.value.owner, owner)) {
      throw new EgwError('AlreadyExists', `IPAM handle ${h.value.handle} already holds ${h.value.ip} for ${describeOwner(h.value.owner)} (${h.value.use})`, {
        hint: 'use another handle, or release this one first',
        details: { handle: h.value.handle, ip: h.value.ip },
      });
    }
    return toAllocation(h.value, parseIpv4Net(h.value.pool, { hostBits: 'clear' })?.prefix ?? 32, true);
  }
}

/**
 * The ops that free `ord` in `block` at the revision read: a per-address block goes; a block filed as full
 * (`fullIndex`, its index record when there is one) returns to the room index.
 */
export function freeOrdinalOps(block: BlockRecord, ord: number, fullIndex: StoredResource | undefined): WriteOp[] {
  if (block.net.size === 1 && block.value.affinity === null) return [{ op: 'delete', key: block.key, expectedRevision: block.revision }];
  const ops: WriteOp[] = [{ op: 'update', key: block.key, value: json(withoutAllocation(block.value, ord)), expectedRevision: block.revision }];
  if (block.value.affinity !== null && fullIndex !== undefined) {
    ops.push({ op: 'delete', key: fullIndex.key, expectedRevision: fullIndex.modRevision }, { op: 'put', key: affinityKey(block.value.affinity, block.net, false), value: json({ node: block.value.affinity, block: block.value.cidr, pool: block.value.pool }) });
  }
  return ops;
}

/**
 * True when `block` records ordinal `ord` for the handle value `h`: same handle ID and, when the block keeps
 * attributes, the same allocation (allocatedAt), not a later one that reuses the handle ID.
 */
export function recordsAllocation(block: BlockRecord, ord: number, h: Pick<HandleValue, 'handle' | 'allocatedAt'>): boolean {
  if (block.value.allocations[String(ord)] !== h.handle) return false;
  const a = block.value.attributes?.[String(ord)];
  return a === undefined || a.allocatedAt === h.allocatedAt;
}

/** True when the pod requests (or limits) `projectcalico.org/aws-secondary-ipv4` > 0 in any container. */
export function requestsAwsSecondaryIp(pod: Pod): boolean {
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  return containers.some((c) =>
    [c.resources?.requests?.[AWS_SECONDARY_IPV4_RESOURCE], c.resources?.limits?.[AWS_SECONDARY_IPV4_RESOURCE]].some((q) => {
      const n = typeof q === 'number' ? q : typeof q === 'string' && /^[0-9]+$/.test(q) ? Number(q) : 0;
      return n > 0;
    }),
  );
}

/** A short description of an owner for messages. */
export function describeOwner(owner: AllocationOwner): string {
  switch (owner.kind) {
    case 'Pod':
      return `pod ${owner.namespace}/${owner.name}${owner.uid === undefined ? '' : ` (uid ${owner.uid})`}`;
    case 'ENI':
      return `ENI${owner.eni === undefined ? '' : ` ${owner.eni}`} of node ${owner.node}`;
    case 'None':
      return owner.description ?? 'no owner';
  }
}

function sameOwner(a: AllocationOwner, b: AllocationOwner): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'Pod' && b.kind === 'Pod') return a.namespace === b.namespace && a.name === b.name && (a.uid === undefined || b.uid === undefined || a.uid === b.uid);
  if (a.kind === 'ENI' && b.kind === 'ENI') return a.node === b.node;
  return true;
}

function toAllocation(v: HandleValue, prefixLength: number, existing: boolean): Allocation {
  return {
    handle: v.handle,
    ip: v.ip,
    prefixLength,
    pool: v.poolName,
    poolCidr: v.pool,
    block: v.block,
    node: v.node,
    use: v.use,
    owner: v.owner,
    ...(v.awsSubnetID === undefined ? {} : { awsSubnetID: v.awsSubnetID }),
    allocatedAt: v.allocatedAt,
    existing,
  };
}

/** The index ops for a block affine to `node`: filed under room or full, removed from the other. */
function indexOps(node: string, net: Ipv4Net, pool: Ipv4Net, full: boolean): WriteOp[] {
  const value = json({ node, block: formatIpv4Net(net), pool: formatIpv4Net(pool) });
  return [
    { op: 'put', key: affinityKey(node, net, full), value },
    { op: 'delete', key: affinityKey(node, net, !full) },
  ];
}

function fullReason(pool: PoolInfo, exclusions: Exclusions, allocated: number): SkippedPool {
  const reserved = exclusions.countIn(pool.net.first, pool.net.size);
  if (reserved === pool.net.size) return { name: pool.name, cidr: pool.cidr, reason: 'reserved', detail: `every one of its ${pool.net.size} addresses is reserved` };
  const usable = pool.net.size - reserved;
  return {
    name: pool.name,
    cidr: pool.cidr,
    reason: 'full',
    detail: `${allocated} of ${usable} usable addresses allocated${reserved > 0 ? ` (${reserved} reserved)` : ''}`,
  };
}

function blockNamespace(pool: PoolInfo): string {
  return blockKey(pool.net, pool.net).namespace!;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
