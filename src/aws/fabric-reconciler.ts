/**
 * The AWS fabric reconciler of one node: makes EC2 hold every local AWS-backed workload IP on a secondary
 * ENI attached to this instance (ENI-per-workload or Secondary-IP-per-workload), with one of its listed
 * Elastic IPs, and removes what no workload needs. Level-triggered: every pass reads EC2 (our ENIs by tag
 * and everything attached to the instance, and the Elastic IPs wanted), diffs against the desired state
 * and makes the smallest change. It never branches on what happened before, so a fresh reconciler after a
 * crash converges from whatever half-made state it finds:
 *
 * - an ENI is tagged at creation and created with a ClientToken derived from the intent, so a crash
 *   before or after CreateNetworkInterface yields exactly one ENI, which the next pass adopts (attaches);
 * - a missing DeleteOnTermination is set on the next pass; a half-done removal is finished;
 * - detached ENIs of ours that no workload wants are deleted only after `gcCooldownMs` of being seen so
 *   (and never when the caller says the desired state is not complete: `allowRemovals: false`).
 *
 * Failures never escape a pass: each lands on the workload (or the node) it concerns, with EC2's code.
 */
import type { Clock } from '../platform/clock.js';
import { EgwError, errorMessage, isEgwError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { awsCodeOf } from './aws-errors.js';
import type { AwsSecondaryIpMode } from './capacity.js';
import type { Ec2, Ec2Address, Ec2InstanceTypeInfo, Ec2NetworkInterface } from './ec2-port.js';
import type { InstanceFacts } from './imds.js';
import { ipv4NetContains, parseIpv4, parseIpv4Net } from '../platform/ipv4.js';
import type { EniKind, OwnerIdentity } from './ownership.js';
import {
  clientToken,
  createdAtOf,
  eniTags,
  handleOfOwner,
  hostHandle,
  ipamOwner,
  isOurs,
  kindOf,
  ourEniFilters,
  slotOfHandle,
  TAG_OWNER,
} from './ownership.js';

/** A subnet's facts (from the datastore's AWSSubnet records, else DescribeSubnets). */
export interface SubnetInfo {
  cidr: string;
  availabilityZone: string;
}

/** One local workload IP that must live in the AWS fabric. */
export interface FabricWorkload {
  /** Unique per workload IP (e.g. `ns/name@ip`). */
  id: string;
  /** Where its status goes (e.g. the pod's `ns/name`). */
  pod: string;
  /** Identity of the workload instance (the pod UID): part of its ENI's ClientToken. */
  uid: string;
  ip: string;
  /** The AWS subnet of the pool the IP came from. */
  subnetId: string;
  /** `egw:owner` of its ENI in ENI-per-workload mode. */
  owner: string;
  /** RFC 3339 start of the intent (the pod's creation): the stable `egw:created-at`. */
  since: string;
  /** Public IPs of the Elastic IPs it may take, in preference order (empty: none). */
  elasticIps: readonly string[];
  /**
   * Set when the workload is an Elastic IP standby (`egw.io/elastic-ip-standby`): with none of its
   * Elastic IPs free, it takes one over (AllowReassociation) from a holder whose private address lies in
   * `poolCidrs` (an egw gateway's address, never a foreign resource's) and is not in `liveHolders` (the
   * addresses of live gateways that list that Elastic IP). Both lists come from the datastore.
   */
  standby?: { liveHolders: readonly string[]; poolCidrs: readonly string[] };
}

/** What the node should look like. */
export interface FabricDesired {
  mode: Exclude<AwsSecondaryIpMode, 'Disabled'>;
  workloads: readonly FabricWorkload[];
  /** Subnet facts known already (AWSSubnet records); others are looked up with DescribeSubnets. */
  subnets?: ReadonlyMap<string, SubnetInfo>;
  /** False while the desired state may be incomplete (datastore not in sync): nothing is removed. */
  allowRemovals: boolean;
  /**
   * Subnets of the HostSecondaryInterface pools (Secondary-IP mode): where host addresses of this node
   * may be held, so that ones no ENI uses any more are found and released.
   */
  hostSubnets?: readonly string[];
}

/**
 * Host-secondary addresses from IPAM (Secondary-IP mode: the primary IPs of shared ENIs). Handles are
 * deterministic per node, subnet and slot, so a repeated allocate returns the address already held.
 */
export interface HostIpAllocator {
  /** Allocates (or returns the held) address of `handle` from a HostSecondaryInterface pool of `subnetId`. */
  allocate(handle: string, subnetId: string): Promise<{ ip: string; allocatedAt: string }>;
  /** Releases `handle`'s address; idempotent. */
  release(handle: string): Promise<void>;
  /** The address `handle` holds, or undefined. */
  get(handle: string): Promise<{ ip: string; allocatedAt: string } | undefined>;
}

/** Side effects of the reconciler. */
export interface FabricReconcilerDeps {
  ec2: Ec2;
  clock: Clock;
  /** Needed in Secondary-IP mode. */
  hostIps?: HostIpAllocator;
  logger?: Logger;
}

/** Identity and tuning. */
export interface FabricReconcilerOptions {
  /** Cluster name (tag `egw:cluster`). */
  cluster: string;
  /** Node name (tag `egw:node`, IPAM handles). */
  node: string;
  instance: InstanceFacts;
  /** A detached ENI of ours that nothing wants is deleted after being seen so this long (default 120 s). */
  gcCooldownMs?: number;
  /** Workload chains run in parallel at most (default 4; the EC2 port bounds calls too). */
  concurrency?: number;
  /** An address another ENI still holds is taken over (AllowReassignment) after this long (default 60 s). */
  reassignAfterMs?: number;
  /**
   * How long an ENI named by our ClientToken may be `NotFound` before it counts as deleted (a new token
   * then); shorter gaps are EC2's eventual consistency (default 60 s).
   */
  propagationGraceMs?: number;
}

/** Where a workload stands. */
export type FabricState = 'Ready' | 'Pending' | 'Failed';

/** The fabric status of one workload IP. */
export interface WorkloadFabricStatus {
  id: string;
  pod: string;
  ip: string;
  state: FabricState;
  /** `Ready`, a waiting reason (`Attaching`, `AddressInUse`, `NoCapacity`…) or EC2's error code. */
  reason: string;
  message: string;
  networkInterfaceId?: string;
  elasticIp?: string;
}

/** An attached ENI of ours and the workload IPs routed through it (for the Linux side). */
export interface FabricInterface {
  networkInterfaceId: string;
  mac: string;
  subnetCidr: string;
  workloadIps: string[];
}

/** The outcome of one pass. */
export interface FabricReport {
  workloads: WorkloadFabricStatus[];
  /** Node-level state: a failed read, missing limits, a failed removal. */
  node: { state: FabricState; reason: string; message: string };
  interfaces: FabricInterface[];
  limits: Ec2InstanceTypeInfo | undefined;
  /** ENIs attached to this instance that are neither the primary nor ours. */
  foreignEnis: number;
  /** MACs whose attachment (true) or detachment (false) is in progress: pass again once it is done. */
  awaiting: { mac: string; attached: boolean }[];
  /**
   * True when reading EC2 (instance limits, ENIs, subnets) failed: `interfaces`, `limits` and
   * `foreignEnis` are then not an answer but what could not be read — never program them as "none"
   * (the caller keeps its last known-good state; docs/security.md, static stability).
   */
  stale: boolean;
  /** The worst retry class of this pass's failures (`none` when nothing failed). */
  retry: 'none' | 'retry' | 'throttle' | 'terminal';
  /** A timed decision (GC cool-down, reassignment) falls due in this many ms. */
  wakeInMs: number | undefined;
  /** Mutating EC2 calls made by this pass (IPAM excluded). */
  mutations: number;
}

const DEFAULT_GC_COOLDOWN_MS = 120_000;
/**
 * EC2 is eventually consistent: a new ENI's ID may be unknown to other calls for a while, and Describe
 * may show a change late. An ENI a ClientToken named that stays unknown this long was deleted since.
 */
const DEFAULT_PROPAGATION_GRACE_MS = 60_000;
/** When EC2's answers contradict what this pass read, pass again this soon (the view catches up). */
const PROPAGATION_RETRY_MS = 2_000;
/** How long this process's own ENI changes win over a read that does not show them yet. */
const OWN_CHANGES_WINDOW_MS = 30_000;
const DEFAULT_REASSIGN_AFTER_MS = 60_000;
/** How long an unknown subnet is not asked about again. */
const UNKNOWN_SUBNET_TTL_MS = 300_000;

/**
 * One node's fabric reconciler. Holds only caches (instance limits, subnet facts) and hints that make
 * passes cheaper or safer (ClientToken generations, ENIs it detached itself, first sightings of orphans);
 * losing them (a restart) costs at most one cool-down or one extra call, never a leak.
 */
export class FabricReconciler {
  readonly identity: OwnerIdentity;
  /** @internal */ limits: Ec2InstanceTypeInfo | undefined;
  /** @internal */ readonly subnetCache = new Map<string, SubnetInfo>();
  /** @internal Subnets EC2 said it does not know, and when (asked again after {@link UNKNOWN_SUBNET_TTL_MS}). */
  readonly unknownSubnetCache = new Map<string, { err: EgwError; at: number }>();
  /** @internal */ readonly generations = new Map<string, number>();
  /** @internal */ readonly detachedByUs = new Set<string>();
  /** @internal */ readonly orphanSince = new Map<string, number>();
  /** @internal */ readonly inUseSince = new Map<string, number>();
  /**
   * @internal ENIs this process created or attached moments ago, as it left them: a read that lags does
   * not show them yet (see {@link OWN_CHANGES_WINDOW_MS}).
   */
  readonly ownChanges = new Map<string, { eni: Ec2NetworkInterface; at: number }>();
  /** @internal Elastic IPs this process associated or disassociated moments ago, by allocation ID. */
  readonly ownAssociations = new Map<string, { associationId: string | undefined; networkInterfaceId: string | undefined; privateIp: string | undefined; at: number }>();
  /** @internal ENIs EC2 answered NotFound for, and since when (eventual consistency or deleted). */
  readonly notFoundSince = new Map<string, number>();
  /** @internal */ readonly propagationGraceMs: number;
  /** @internal */ readonly gcCooldownMs: number;
  /** @internal */ readonly reassignAfterMs: number;
  /** @internal */ readonly concurrency: number;

  constructor(
    /** @internal */ readonly deps: FabricReconcilerDeps,
    /** @internal */ readonly options: FabricReconcilerOptions,
  ) {
    this.identity = { cluster: options.cluster, node: options.node, instanceId: options.instance.instanceId };
    this.gcCooldownMs = options.gcCooldownMs ?? DEFAULT_GC_COOLDOWN_MS;
    this.reassignAfterMs = options.reassignAfterMs ?? DEFAULT_REASSIGN_AFTER_MS;
    this.propagationGraceMs = options.propagationGraceMs ?? DEFAULT_PROPAGATION_GRACE_MS;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
  }

  /** The instance type's limits (DescribeInstanceTypes once, then cached). Errors: the port's. */
  async instanceLimits(): Promise<Ec2InstanceTypeInfo> {
    if (this.limits !== undefined) return this.limits;
    const type = this.options.instance.instanceType;
    const found = (await this.deps.ec2.describeInstanceTypes([type])).find((t) => t.instanceType === type);
    if (found === undefined || found.maxEnis < 1) {
      throw new EgwError('AwsError', `EC2 does not describe the instance type ${type}`, { details: { awsCode: 'InvalidInstanceType', action: 'DescribeInstanceTypes' } });
    }
    this.limits = found;
    return found;
  }

  /** One pass: read, diff, act. Never throws for EC2 or IPAM failures (they are in the report). */
  async reconcile(desired: FabricDesired): Promise<FabricReport> {
    return new Pass(this, desired).run();
  }

  /** @internal The ClientToken generation of an intent. */
  generation(key: string): number {
    return this.generations.get(key) ?? 0;
  }

  /** @internal Moves an intent to a new ClientToken (EC2's answer for the old one is no use). */
  bumpGeneration(key: string): void {
    this.generations.set(key, this.generation(key) + 1);
  }
}

type Outcome = { ok: true } | { ok: false; err: EgwError };

interface SlotClaim {
  subnetId: string;
  slot: number;
}

/** The state of one pass; thrown away afterwards. */
class Pass {
  private readonly ec2: Ec2;
  private readonly id: OwnerIdentity;
  private readonly now: number;
  private readonly log: Logger | undefined;
  private limits: Ec2InstanceTypeInfo | undefined;
  /** Every ENI seen (ours and attached ones), updated as actions succeed. */
  private readonly enis = new Map<string, Ec2NetworkInterface>();
  private primary: Ec2NetworkInterface | undefined;
  private readonly subnets = new Map<string, SubnetInfo>();
  private readonly unknownSubnets = new Map<string, EgwError>();
  private addresses: Ec2Address[] = [];
  private readonly status = new Map<string, { state: FabricState; reason: string; message: string }>();
  private nodeStatus: { state: FabricState; reason: string; message: string } | undefined;
  private retry: FabricReport['retry'] = 'none';
  private wakeAt: number | undefined;
  private mutations = 0;
  private readFailed = false;
  private freeIndexes: number[] = [];
  private freeSlots = 0;
  private valid: FabricWorkload[] = [];
  /**
   * ENIs this pass made or tried to attach: never collected in the same pass. (An attach that failed
   * because EC2 had not caught up leaves a new shared ENI detached, which looks like an orphan.)
   */
  private readonly placing = new Set<string>();

  constructor(
    private readonly r: FabricReconciler,
    private readonly desired: FabricDesired,
  ) {
    this.ec2 = r.deps.ec2;
    this.id = r.identity;
    this.now = r.deps.clock.now();
    this.log = r.deps.logger;
  }

  async run(): Promise<FabricReport> {
    try {
      this.limits = await this.r.instanceLimits();
      await this.read();
    } catch (err) {
      this.readFailed = true;
      this.failNode(err, 'read');
      return this.report();
    }
    this.validate();
    this.forgetGoneWorkloads();
    this.computeSlots();
    if (this.desired.mode === 'EnabledENIPerWorkload') await this.placeEniPerWorkload();
    else await this.placeSecondaryIp();
    await this.associateElasticIps();
    if (this.desired.allowRemovals) {
      await this.disassociateUnwanted();
      await this.removeUnwanted();
      if (this.desired.mode === 'Enabled') await this.collectHostHandles();
    }
    return this.report();
  }

  /**
   * The first "address in use" sighting of an address is kept only while a workload wants it: a pod
   * deleted while it waited would otherwise be held for as long as the agent runs (docs/security.md, 11).
   */
  private forgetGoneWorkloads(): void {
    const wanted = new Set(this.desired.workloads.map((w) => w.ip));
    for (const ip of [...this.r.inUseSince.keys()]) if (!wanted.has(ip)) this.r.inUseSince.delete(ip);
  }

  // ------------------------------------------------------------------------------------------ read

  private async read(): Promise<void> {
    const [attached, ours] = await Promise.all([
      this.ec2.describeNetworkInterfaces([{ name: 'attachment.instance-id', values: [this.id.instanceId] }]),
      this.ec2.describeNetworkInterfaces(ourEniFilters(this.id)),
    ]);
    for (const e of [...attached, ...ours]) this.enis.set(e.id, structuredClone(e));
    this.overlayOwnChanges();
    this.primary = attached.find((e) => e.attachment?.deviceIndex === 0 && e.attachment.networkCardIndex === 0);
    if (this.primary === undefined) {
      throw new EgwError('AwsError', `EC2 shows no primary ENI attached to ${this.id.instanceId}`, { retry: 'retry', details: { awsCode: 'PrimaryEniNotFound' } });
    }
    // Subnets: the datastore's facts first, then EC2 for the rest (once; facts do not change).
    const needed = new Set<string>([...this.desired.workloads.map((w) => w.subnetId), ...[...this.enis.values()].filter((e) => this.ours(e)).map((e) => e.subnetId)]);
    for (const s of needed) {
      const known = this.desired.subnets?.get(s) ?? this.r.subnetCache.get(s);
      if (known !== undefined) this.subnets.set(s, known);
    }
    for (const s of needed) {
      const unknown = this.r.unknownSubnetCache.get(s);
      if (unknown !== undefined && this.now - unknown.at < UNKNOWN_SUBNET_TTL_MS && !this.subnets.has(s)) this.unknownSubnets.set(s, unknown.err);
    }
    const missing = [...needed].filter((s) => !this.subnets.has(s) && !this.unknownSubnets.has(s)).sort();
    if (missing.length > 0) await this.lookUpSubnets(missing);
    const wanted = [...new Set(this.desired.workloads.flatMap((w) => w.elasticIps))].sort();
    if (wanted.length > 0) this.addresses = await this.ec2.describeAddresses([{ name: 'public-ip', values: wanted }]);
    for (const a of this.addresses) {
      const own = this.r.ownAssociations.get(a.allocationId);
      if (own === undefined) continue;
      if (this.now - own.at >= OWN_CHANGES_WINDOW_MS || a.associationId === own.associationId) this.r.ownAssociations.delete(a.allocationId);
      else Object.assign(a, { associationId: own.associationId, networkInterfaceId: own.networkInterfaceId, privateIp: own.privateIp });
    }
  }

  /**
   * EC2's reads lag (eventual consistency): an ENI this process created or attached moments ago may be
   * missing from the read, or shown detached, or without DeleteOnTermination. Within a short window its own
   * change wins, so the pass does not create, attach or hand out a device index again; once the read
   * agrees (or shows something else happened), the read is the truth again.
   */
  private overlayOwnChanges(): void {
    for (const [id, own] of this.r.ownChanges) {
      if (this.now - own.at >= OWN_CHANGES_WINDOW_MS) {
        this.r.ownChanges.delete(id);
        continue;
      }
      const seen = this.enis.get(id);
      if (seen === undefined) {
        this.enis.set(id, structuredClone(own.eni));
        continue;
      }
      const mine = own.eni.attachment;
      let behind = false;
      if (mine !== undefined && seen.attachment === undefined && seen.status === 'available' && mine.status !== 'detaching') {
        seen.attachment = { ...mine };
        seen.status = own.eni.status;
        behind = true;
      } else if (mine !== undefined && seen.attachment !== undefined && seen.attachment.attachmentId !== mine.attachmentId) {
        // Something else happened to it since: EC2's word.
        this.r.ownChanges.delete(id);
        continue;
      } else if (mine !== undefined && seen.attachment !== undefined) {
        if (mine.status === 'detaching' && seen.attachment.status !== 'detaching') {
          seen.attachment.status = 'detaching';
          seen.status = 'detaching';
          behind = true;
        }
        if (mine.deleteOnTermination && !seen.attachment.deleteOnTermination) {
          seen.attachment.deleteOnTermination = true;
          behind = true;
        }
      }
      const addresses = (e: Ec2NetworkInterface): string => e.privateIps.map((p) => `${p.ip}=${p.association?.associationId ?? ''}`).join(',');
      if (addresses(seen) !== addresses(own.eni)) {
        seen.privateIps = structuredClone(own.eni.privateIps);
        behind = true;
      }
      if (!behind) this.r.ownChanges.delete(id);
    }
  }

  /** Records what this process just made an ENI look like (see {@link overlayOwnChanges}). */
  private rememberOwn(eni: Ec2NetworkInterface): void {
    this.r.ownChanges.set(eni.id, { eni: structuredClone(eni), at: this.now });
  }

  private async lookUpSubnets(ids: string[]): Promise<void> {
    try {
      for (const s of await this.ec2.describeSubnets(ids)) this.remember(s.id, { cidr: s.cidr, availabilityZone: s.availabilityZone });
    } catch (err) {
      if (awsCodeOf(err) !== 'InvalidSubnetID.NotFound' || !isEgwError(err)) throw err;
      // One unknown ID fails the whole call: ask one by one to tell which.
      for (const id of ids) {
        try {
          for (const s of await this.ec2.describeSubnets([id])) this.remember(s.id, { cidr: s.cidr, availabilityZone: s.availabilityZone });
        } catch (e) {
          if (awsCodeOf(e) === 'InvalidSubnetID.NotFound' && isEgwError(e)) {
            this.unknownSubnets.set(id, e);
            this.r.unknownSubnetCache.set(id, { err: e, at: this.now });
          } else {
            throw e;
          }
        }
      }
    }
  }

  private remember(id: string, info: SubnetInfo): void {
    this.subnets.set(id, info);
    this.r.subnetCache.set(id, info);
    this.r.unknownSubnetCache.delete(id);
  }

  // ------------------------------------------------------------------------------------- helpers

  private ours(e: Ec2NetworkInterface): boolean {
    return isOurs(e, this.id);
  }

  private attachedHere(e: Ec2NetworkInterface): boolean {
    return e.attachment !== undefined && e.attachment.instanceId === this.id.instanceId;
  }

  private ourEnis(kind?: EniKind): Ec2NetworkInterface[] {
    return [...this.enis.values()].filter((e) => this.ours(e) && (kind === undefined || kindOf(e) === kind)).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  private set(w: FabricWorkload, state: FabricState, reason: string, message: string): void {
    const prev = this.status.get(w.id);
    // A failure already recorded in this pass is the more useful message.
    if (prev !== undefined && prev.state === 'Failed' && state !== 'Failed') return;
    this.status.set(w.id, { state, reason, message });
  }

  private fail(w: FabricWorkload, err: unknown, what: string): void {
    const e = isEgwError(err) ? err : new EgwError('Internal', errorMessage(err), { cause: err });
    const code = awsCodeOf(e) ?? e.code;
    this.noteRetry(e.retry);
    const state: FabricState = e.retry === 'terminal' ? 'Failed' : 'Pending';
    this.status.set(w.id, { state, reason: code, message: `${what}: ${e.describe()}` });
    this.log?.warn({ workload: w.pod, ip: w.ip, awsCode: code, err: e.message }, 'aws fabric action failed');
  }

  private failNode(err: unknown, what: string): void {
    const e = isEgwError(err) ? err : new EgwError('Internal', errorMessage(err), { cause: err });
    const code = awsCodeOf(e) ?? e.code;
    this.noteRetry(e.retry);
    if (this.nodeStatus === undefined || this.nodeStatus.state !== 'Failed') {
      this.nodeStatus = { state: e.retry === 'terminal' ? 'Failed' : 'Pending', reason: code, message: `${what}: ${e.describe()}` };
    }
    this.log?.warn({ awsCode: code, err: e.message, what }, 'aws fabric node action failed');
  }

  private noteRetry(c: 'retry' | 'throttle' | 'terminal'): void {
    const rank = { none: 0, terminal: 1, retry: 2, throttle: 3 } as const;
    if (rank[c] > rank[this.retry]) this.retry = c;
  }

  private wake(at: number): void {
    this.wakeAt = this.wakeAt === undefined ? at : Math.min(this.wakeAt, at);
  }

  /**
   * EC2 answered something this pass's read did not foresee because its read lagged (EC2's eventual
   * consistency): wait a little and pass again, as a retry rather than a failure.
   */
  private lagging(w: readonly FabricWorkload[] | undefined, err: EgwError, what: string): void {
    this.noteRetry('retry');
    this.wake(this.now + PROPAGATION_RETRY_MS);
    const code = awsCodeOf(err) ?? err.code;
    if (w === undefined) {
      this.log?.debug({ awsCode: code, what }, 'aws fabric: EC2 has not caught up yet');
      return;
    }
    for (const x of w) this.set(x, 'Pending', 'Propagating', `${what}: EC2 has not caught up with earlier changes yet (${code}: ${err.message}); passing again`);
  }

  /** Runs a mutating call, counting it; errors are returned, not thrown. */
  private async act(fn: () => Promise<unknown>): Promise<Outcome> {
    this.mutations++;
    try {
      await fn();
      return { ok: true };
    } catch (err) {
      return { ok: false, err: isEgwError(err) ? err : new EgwError('Internal', errorMessage(err), { cause: err }) };
    }
  }

  private async parallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const item = items[next++]!;
        await fn(item);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.r.concurrency, items.length) }, worker));
  }

  // ------------------------------------------------------------------------------------ validate

  private validate(): void {
    const zone = this.r.options.instance.availabilityZone;
    const seen = new Set<string>();
    for (const w of this.desired.workloads) {
      if (seen.has(w.ip)) {
        this.set(w, 'Failed', 'DuplicateAddress', `address ${w.ip} is claimed by two local workloads`);
        continue;
      }
      seen.add(w.ip);
      const unknown = this.unknownSubnets.get(w.subnetId);
      if (unknown !== undefined) {
        this.set(w, 'Failed', 'InvalidSubnetID.NotFound', `subnet ${w.subnetId} of the workload's pool: ${unknown.describe()}`);
        continue;
      }
      const subnet = this.subnets.get(w.subnetId);
      if (subnet === undefined) {
        this.set(w, 'Pending', 'SubnetUnknown', `the facts of subnet ${w.subnetId} are not known yet`);
        continue;
      }
      if (subnet.availabilityZone !== zone) {
        this.set(w, 'Failed', 'WrongAvailabilityZone', `subnet ${w.subnetId} is in ${subnet.availabilityZone}, this node (${this.id.instanceId}) is in ${zone}: EC2 cannot attach its ENI here`);
        continue;
      }
      const subnetNet = parseIpv4Net(subnet.cidr, { hostBits: 'clear' });
      const address = parseIpv4(w.ip);
      if (subnetNet === undefined || address === undefined || !ipv4NetContains(subnetNet, address)) {
        this.set(w, 'Failed', 'AddressNotInSubnet', `address ${w.ip} is not inside subnet ${w.subnetId} (${subnet.cidr}): check the pool's CIDR and awsSubnetID`);
        continue;
      }
      this.valid.push(w);
    }
  }

  /** Device indexes free on card 0 and how many more ENIs the instance takes. */
  private computeSlots(): void {
    const attached = [...this.enis.values()].filter((e) => this.attachedHere(e) && e.attachment?.networkCardIndex === 0);
    const taken = new Set(attached.map((e) => e.attachment?.deviceIndex ?? 0));
    const max = this.limits?.maxEnis ?? 0;
    this.freeSlots = Math.max(0, max - attached.length);
    this.freeIndexes = [];
    for (let i = 1; this.freeIndexes.length < this.freeSlots && i < max + attached.length + 1; i++) if (!taken.has(i)) this.freeIndexes.push(i);
  }

  private claimIndex(): number | undefined {
    if (this.freeSlots <= 0) return undefined;
    this.freeSlots--;
    return this.freeIndexes.shift();
  }

  // ------------------------------------------------------------------------- ENI-per-workload

  private async placeEniPerWorkload(): Promise<void> {
    const byPrimary = new Map<string, Ec2NetworkInterface>();
    for (const e of this.ourEnis('eni-per-workload')) byPrimary.set(e.privateIps[0]?.ip ?? '', e);
    const jobs: { w: FabricWorkload; eni: Ec2NetworkInterface | undefined; index: number | undefined }[] = [];
    for (const w of this.valid) {
      const eni = byPrimary.get(w.ip);
      if (eni !== undefined && eni.subnetId === w.subnetId) {
        if (eni.attachment === undefined) {
          const index = this.claimIndex();
          if (index === undefined) this.noCapacity(w);
          else jobs.push({ w, eni, index });
        } else {
          jobs.push({ w, eni, index: undefined });
        }
        continue;
      }
      const index = this.claimIndex();
      if (index === undefined) {
        this.noCapacity(w);
        continue;
      }
      jobs.push({ w, eni: undefined, index });
    }
    await this.parallel(jobs, (j) => this.ensureWorkloadEni(j.w, j.eni, j.index));
  }

  private noCapacity(w: FabricWorkload): void {
    const max = this.limits?.maxEnis ?? 0;
    const perEni = this.desired.mode === 'Enabled' ? ` with ${Math.max(0, (this.limits?.ipv4PerEni ?? 1) - 1)} workload addresses each` : '';
    this.set(w, 'Failed', 'NoCapacity', `instance ${this.id.instanceId} (${this.r.options.instance.instanceType}) has no room left: ${max} ENIs at most, the primary included${perEni}`);
  }

  /** Create (if needed) → attach (if needed) → DeleteOnTermination (if needed), one workload. */
  private async ensureWorkloadEni(w: FabricWorkload, found: Ec2NetworkInterface | undefined, index: number | undefined): Promise<void> {
    let eni = found;
    const intent = `w:${w.uid}:${w.ip}`;
    if (eni === undefined) {
      const created = await this.createEni(w.subnetId, w.ip, 'eni-per-workload', w.owner, w.since, `egw gateway ${w.pod}`, intent);
      if (!created.ok) {
        if (awsCodeOf(created.err) === 'InvalidIPAddress.InUse') {
          // Another ENI holds the address (a gateway moving between nodes): wait for it to let go.
          this.noteRetry('retry');
          this.set(w, 'Pending', 'AddressInUse', `address ${w.ip} is still held by another ENI (a gateway moving between nodes?): ${created.err.describe()}`);
          return;
        }
        this.fail(w, created.err, 'create ENI');
        return;
      }
      eni = created.eni;
    }
    await this.attachAndProtect(eni, index, intent, (err, what) => this.fail(w, err, what), (err, what) => this.lagging([w], err, what));
  }

  private async createEni(
    subnetId: string,
    ip: string,
    kind: EniKind,
    owner: string,
    since: string,
    description: string,
    intent: string,
    secondaryIps: readonly string[] = [],
  ): Promise<{ ok: true; eni: Ec2NetworkInterface } | { ok: false; err: EgwError }> {
    const groups = this.primary?.groups ?? [];
    const token = clientToken(this.id, intent, ip, this.r.generation(intent));
    let eni: Ec2NetworkInterface | undefined;
    const out = await this.act(async () => {
      eni = await this.ec2.createNetworkInterface({
        subnetId,
        privateIp: ip,
        ...(secondaryIps.length > 0 ? { secondaryIps } : {}),
        groups,
        description,
        tags: eniTags(this.id, kind, owner, since),
        clientToken: token,
      });
    });
    if (!out.ok) {
      // Parameters changed since this token was first used (e.g. the primary ENI's groups): a new token.
      if (awsCodeOf(out.err) === 'IdempotentParameterMismatch') this.r.bumpGeneration(intent);
      return out;
    }
    const made = structuredClone(eni!);
    this.enis.set(made.id, made);
    this.rememberOwn(made);
    return { ok: true, eni: made };
  }

  /**
   * Attaches a detached ENI at `index` and sets DeleteOnTermination when it is not set. `index`
   * undefined: the ENI is attached already (or none was free).
   */
  private async attachAndProtect(
    eni: Ec2NetworkInterface,
    index: number | undefined,
    intent: string | undefined,
    onError: (err: EgwError, what: string) => void,
    onLag: (err: EgwError, what: string) => void,
  ): Promise<boolean> {
    this.placing.add(eni.id);
    if (eni.attachment === undefined) {
      if (index === undefined) {
        onError(new EgwError('AwsError', 'no free device index', { details: { awsCode: 'NoCapacity' } }), 'attach ENI');
        return false;
      }
      let attachmentId = '';
      const out = await this.act(async () => {
        attachmentId = (await this.ec2.attachNetworkInterface({ networkInterfaceId: eni.id, instanceId: this.id.instanceId, deviceIndex: index })).attachmentId;
      });
      if (!out.ok) {
        const code = awsCodeOf(out.err);
        const what = `attach ${eni.id} at device index ${index}`;
        if (code === 'InvalidNetworkInterfaceID.NotFound') {
          // Right after its creation an ENI's ID may not have propagated; one that stays unknown was
          // deleted since the token named it: the next pass creates a new one under a new token.
          const since = this.r.notFoundSince.get(eni.id) ?? this.now;
          this.r.notFoundSince.set(eni.id, since);
          if (this.now - since < this.r.propagationGraceMs || intent === undefined) {
            onLag(out.err, what);
            return false;
          }
          this.r.notFoundSince.delete(eni.id);
          this.r.bumpGeneration(intent);
          this.enis.delete(eni.id);
          this.r.ownChanges.delete(eni.id);
          onError(out.err, what);
          return false;
        }
        if (code === 'InvalidNetworkInterface.InUse' || code === 'InvalidParameterValue' || code === 'AttachmentLimitExceeded') {
          // The read lagged: the ENI is attached already (an earlier attach), or the device index or the
          // last slot was taken by an attachment the read did not show yet.
          onLag(out.err, what);
          return false;
        }
        onError(out.err, what);
        return false;
      }
      this.r.notFoundSince.delete(eni.id);
      eni.attachment = { attachmentId, instanceId: this.id.instanceId, deviceIndex: index, networkCardIndex: 0, status: 'attaching', deleteOnTermination: false };
      eni.status = 'attaching';
      this.rememberOwn(eni);
    }
    const a = eni.attachment;
    if (a.instanceId !== this.id.instanceId) {
      onError(new EgwError('AwsError', `ENI ${eni.id} is attached to ${a.instanceId}`, { details: { awsCode: 'InvalidNetworkInterface.InUse' } }), 'attach');
      return false;
    }
    if (!a.deleteOnTermination && a.status !== 'detaching') {
      // Without it, an instance that dies leaks the ENI (Calico's documented leak case).
      const out = await this.act(() => this.ec2.setDeleteOnTermination({ networkInterfaceId: eni.id, attachmentId: a.attachmentId, deleteOnTermination: true }));
      if (!out.ok) {
        const code = awsCodeOf(out.err);
        // An attachment the read showed that has ended since, or an ENI not propagated yet.
        if (code === 'InvalidAttachmentID.NotFound' || code === 'InvalidNetworkInterfaceID.NotFound') onLag(out.err, `set DeleteOnTermination on ${eni.id}`);
        else onError(out.err, `set DeleteOnTermination on ${eni.id}`);
        return false;
      }
      a.deleteOnTermination = true;
      this.rememberOwn(eni);
    }
    return true;
  }

  // ------------------------------------------------------------------------ Secondary-IP mode

  private async placeSecondaryIp(): Promise<void> {
    const perEni = Math.max(0, (this.limits?.ipv4PerEni ?? 1) - 1);
    const bySubnet = new Map<string, FabricWorkload[]>();
    for (const w of this.valid) bySubnet.set(w.subnetId, [...(bySubnet.get(w.subnetId) ?? []), w]);
    const wantedIps = new Set(this.valid.map((w) => w.ip));
    const tasks: (() => Promise<void>)[] = [];
    for (const subnetId of [...bySubnet.keys()].sort()) {
      const workloads = bySubnet.get(subnetId)!;
      const slotOf = (e: Ec2NetworkInterface): number => {
        const h = handleOfOwner(e.tags[TAG_OWNER]);
        return (h === undefined ? undefined : slotOfHandle(h, this.id.node, subnetId)) ?? Number.MAX_SAFE_INTEGER;
      };
      const shared = this.ourEnis('secondary-ip')
        .filter((e) => e.subnetId === subnetId)
        .sort((a, b) => slotOf(a) - slotOf(b) || (a.id < b.id ? -1 : 1));
      // Attached here (not leaving), or detached (adoptable: a crash between create and attach).
      const usable = shared.filter((e) => e.attachment === undefined || (this.attachedHere(e) && e.attachment.status !== 'detaching'));
      const location = new Map<string, Ec2NetworkInterface>();
      for (const e of usable) for (const p of e.privateIps.slice(1)) location.set(p.ip, e);
      const index = new Map<Ec2NetworkInterface, number>();
      const touched = new Set<Ec2NetworkInterface>();
      const add = new Map<Ec2NetworkInterface, FabricWorkload[]>();
      const room = new Map<Ec2NetworkInterface, number>();
      const adopt = (e: Ec2NetworkInterface): boolean => {
        if (e.attachment !== undefined || index.has(e)) return true;
        const i = this.claimIndex();
        if (i === undefined) return false;
        index.set(e, i);
        return true;
      };
      for (const e of usable) {
        const stays = e.privateIps.slice(1).filter((p) => wantedIps.has(p.ip) || !this.desired.allowRemovals).length;
        room.set(e, perEni - stays);
      }
      const unplaced: FabricWorkload[] = [];
      for (const w of workloads) {
        const e = location.get(w.ip);
        if (e === undefined) unplaced.push(w);
        else if (adopt(e)) touched.add(e);
        else this.noCapacity(w);
      }
      // Pack: attached ENIs first, in slot order ("the next ENI only when the current is full"), then
      // detached ones of ours (adopted), then new ones.
      const ordered = [...usable.filter((e) => e.attachment !== undefined), ...usable.filter((e) => e.attachment === undefined)];
      for (const e of ordered) {
        if (unplaced.length === 0) break;
        if ((room.get(e) ?? 0) <= 0 || !adopt(e)) continue;
        const batch = unplaced.splice(0, room.get(e) ?? 0);
        add.set(e, batch);
        touched.add(e);
      }
      for (const e of usable) {
        if (this.desired.allowRemovals && e.privateIps.slice(1).some((p) => !wantedIps.has(p.ip))) touched.add(e);
        if (e.attachment !== undefined && !e.attachment.deleteOnTermination) touched.add(e);
      }
      for (const e of touched) {
        const remove = this.desired.allowRemovals ? e.privateIps.slice(1).map((p) => p.ip).filter((ip) => !wantedIps.has(ip)) : [];
        tasks.push(() => this.ensureSharedEni(e, index.get(e), add.get(e) ?? [], remove, workloads));
      }
      // New ENIs for the rest, as far as the instance has slots.
      const usedSlots = new Set(shared.map(slotOf));
      let slot = 1;
      while (unplaced.length > 0 && perEni > 0) {
        while (usedSlots.has(slot)) slot++;
        const i = this.claimIndex();
        if (i === undefined) break;
        usedSlots.add(slot);
        const batch = unplaced.splice(0, perEni);
        const claim: SlotClaim = { subnetId, slot };
        tasks.push(() => this.newSharedEni(claim, i, batch));
      }
      for (const w of unplaced) this.noCapacity(w);
    }
    // Shared ENIs in subnets no workload uses any more: their addresses still go.
    if (this.desired.allowRemovals) {
      for (const e of this.ourEnis('secondary-ip')) {
        if (bySubnet.has(e.subnetId) || !this.attachedHere(e) || e.attachment?.status === 'detaching') continue;
        const remove = e.privateIps.slice(1).map((p) => p.ip).filter((ip) => !wantedIps.has(ip));
        if (remove.length > 0) tasks.push(() => this.ensureSharedEni(e, undefined, [], remove, []));
      }
    }
    await this.parallel(tasks, (t) => t());
  }

  /** One shared ENI: attach if detached, unassign the unwanted, assign the new, in that order. */
  private async ensureSharedEni(eni: Ec2NetworkInterface, index: number | undefined, add: readonly FabricWorkload[], remove: readonly string[], all: readonly FabricWorkload[]): Promise<void> {
    const onIps = new Set(eni.privateIps.map((p) => p.ip));
    const affected = all.filter((w) => onIps.has(w.ip) || add.includes(w));
    if (remove.length > 0) {
      const out = await this.act(() => this.ec2.unassignPrivateIpAddresses({ networkInterfaceId: eni.id, ips: remove }));
      // "Not assigned": an earlier unassign (or a move) the read did not show yet.
      if (!out.ok && awsCodeOf(out.err) === 'InvalidParameterValue') this.lagging(undefined, out.err, `unassign ${remove.join(', ')} from ${eni.id}`);
      else if (!out.ok) this.failNode(out.err, `unassign ${remove.join(', ')} from ${eni.id}`);
      else {
        eni.privateIps = eni.privateIps.filter((p) => !remove.includes(p.ip));
        this.rememberOwn(eni);
      }
    }
    const handle = handleOfOwner(eni.tags[TAG_OWNER]);
    const ok = await this.attachAndProtect(
      eni,
      index,
      handle === undefined ? undefined : `h:${handle}`,
      (err, what) => {
        for (const w of affected) this.fail(w, err, what);
      },
      (err, what) => this.lagging(affected, err, what),
    );
    if (!ok || add.length === 0) return;
    await this.assign(eni, add);
  }

  /**
   * Allocate the host IP → create with the batch as secondary addresses → attach → DeleteOnTermination:
   * three EC2 calls for the first gateway of a subnet (the batch is assigned separately only when one of
   * its addresses is still held elsewhere).
   */
  private async newSharedEni(claim: SlotClaim, index: number, batch: readonly FabricWorkload[]): Promise<void> {
    const hostIps = this.r.deps.hostIps;
    if (hostIps === undefined) {
      for (const w of batch) this.set(w, 'Failed', 'HostIpamUnavailable', 'Secondary-IP mode needs IPAM host-secondary addresses, and the agent has no IPAM');
      return;
    }
    const handle = hostHandle(this.id.node, claim.subnetId, claim.slot);
    let host: { ip: string; allocatedAt: string };
    try {
      host = await hostIps.allocate(handle, claim.subnetId);
    } catch (err) {
      for (const w of batch) this.fail(w, err, `allocate a host-secondary address in ${claim.subnetId}`);
      return;
    }
    this.r.orphanSince.delete(handle);
    const intent = `h:${handle}`;
    const description = `egw shared ENI ${this.id.node} slot ${claim.slot}`;
    const owner = ipamOwner(handle);
    let created = await this.createEni(claim.subnetId, host.ip, 'secondary-ip', owner, host.allocatedAt, description, intent, batch.map((w) => w.ip));
    if (!created.ok && awsCodeOf(created.err) === 'InvalidIPAddress.InUse') {
      // An address of the batch (or the host address) is still held elsewhere: the ENI alone, under a new
      // token (its parameters differ), and the batch through AssignPrivateIpAddresses and its takeover rule.
      this.r.bumpGeneration(intent);
      created = await this.createEni(claim.subnetId, host.ip, 'secondary-ip', owner, host.allocatedAt, description, intent);
    }
    if (!created.ok) {
      for (const w of batch) this.fail(w, created.err, `create shared ENI with host address ${host.ip}`);
      return;
    }
    const eni = created.eni;
    const ok = await this.attachAndProtect(
      eni,
      eni.attachment === undefined ? index : undefined,
      intent,
      (err, what) => {
        for (const w of batch) this.fail(w, err, what);
      },
      (err, what) => this.lagging(batch, err, what),
    );
    if (!ok) return;
    const onEni = new Set(eni.privateIps.map((p) => p.ip));
    const missing = batch.filter((w) => !onEni.has(w.ip));
    if (missing.length > 0) await this.assign(eni, missing);
  }

  /** AssignPrivateIpAddresses of a batch; on "address in use" per address, reassigning after a while. */
  private async assign(eni: Ec2NetworkInterface, batch: readonly FabricWorkload[]): Promise<void> {
    const attempt = async (ws: readonly FabricWorkload[], allowReassignment: boolean): Promise<Outcome> => {
      const out = await this.act(() => this.ec2.assignPrivateIpAddresses({ networkInterfaceId: eni.id, ips: ws.map((w) => w.ip), allowReassignment }));
      if (out.ok) {
        for (const w of ws) {
          this.r.inUseSince.delete(w.ip);
          if (!eni.privateIps.some((p) => p.ip === w.ip)) eni.privateIps.push({ ip: w.ip, primary: false, association: undefined });
        }
        this.rememberOwn(eni);
      }
      return out;
    };
    const first = await attempt(batch, false);
    if (first.ok) return;
    const firstCode = awsCodeOf(first.err);
    if (firstCode === 'PrivateIpAddressLimitExceeded' || firstCode === 'InvalidNetworkInterfaceID.NotFound') {
      // The read showed room that is gone (or an ENI not propagated yet): pass again with a fresh read.
      this.lagging(batch, first.err, `assign ${batch.map((w) => w.ip).join(', ')} to ${eni.id}`);
      return;
    }
    if (firstCode !== 'InvalidIPAddress.InUse') {
      for (const w of batch) this.fail(w, first.err, `assign ${w.ip} to ${eni.id}`);
      return;
    }
    // One address held elsewhere fails the whole batch: go one by one.
    for (const w of batch) {
      const since = this.r.inUseSince.get(w.ip) ?? this.now;
      this.r.inUseSince.set(w.ip, since);
      // IPAM is the authority: once the old holder has had its time to let go, take the address over.
      const reassign = this.now - since >= this.r.reassignAfterMs;
      const out = batch.length === 1 && !reassign ? first : await attempt([w], reassign);
      if (out.ok) continue;
      if (awsCodeOf(out.err) === 'InvalidIPAddress.InUse') {
        this.noteRetry('retry');
        this.wake(since + this.r.reassignAfterMs);
        this.set(w, 'Pending', 'AddressInUse', `address ${w.ip} is still held by another ENI (a gateway moving between nodes?); taken over after ${Math.round(this.r.reassignAfterMs / 1000)} s`);
      } else {
        this.fail(w, out.err, `assign ${w.ip} to ${eni.id}`);
      }
    }
  }

  // ------------------------------------------------------------------------------ Elastic IPs

  private async associateElasticIps(): Promise<void> {
    const byPublic = new Map(this.addresses.map((a) => [a.publicIp, a]));
    // Sequential: a few calls, and two local pods must not race for the same address.
    for (const w of this.valid) {
      if (w.elasticIps.length === 0) continue;
      const eni = this.eniHolding(w.ip);
      // Only once the ENI is attached here: an attach that failed in this pass (EC2 not caught up, no
      // room) would make the association a wasted call, or one EC2 does not know the ENI for yet.
      if (eni === undefined || eni.attachment === undefined) continue;
      const current = this.addresses.find((a) => a.privateIp === w.ip && a.networkInterfaceId === eni.id);
      if (current !== undefined && w.elasticIps.includes(current.publicIp)) continue;
      const unknown = w.elasticIps.filter((ip) => !byPublic.has(ip));
      let done = false;
      const held: string[] = [];
      for (const publicIp of w.elasticIps) {
        const a = byPublic.get(publicIp);
        if (a === undefined) continue;
        if (a.associationId !== undefined) {
          held.push(`${publicIp} (on ${a.privateIp ?? a.networkInterfaceId ?? 'another resource'})`);
          continue;
        }
        let associationId = '';
        const out = await this.act(async () => {
          associationId = (await this.ec2.associateAddress({ allocationId: a.allocationId, networkInterfaceId: eni.id, privateIp: w.ip })).associationId;
        });
        if (out.ok) {
          this.associated(a, eni, w.ip, associationId);
          done = true;
          break;
        }
        if (awsCodeOf(out.err) === 'InvalidNetworkInterfaceID.NotFound') {
          this.lagging([w], out.err, `associate Elastic IP ${publicIp} with ${w.ip}`);
          done = true;
          break;
        }
        if (awsCodeOf(out.err) === 'Resource.AlreadyAssociated') {
          // Another node won the race for it: the next one.
          held.push(`${publicIp} (taken meanwhile)`);
          a.associationId = a.associationId ?? 'unknown';
          continue;
        }
        this.fail(w, out.err, `associate Elastic IP ${publicIp} with ${w.ip}`);
        done = true;
        break;
      }
      if (!done && w.standby !== undefined) done = await this.takeOverElasticIp(w, eni, byPublic);
      if (!done) {
        const parts = [held.length > 0 ? `in use: ${held.join(', ')}` : '', unknown.length > 0 ? `not found in this account/region: ${unknown.join(', ')}` : ''].filter((p) => p !== '');
        this.noteRetry('retry');
        this.set(w, 'Pending', 'NoFreeElasticIP', `none of the Elastic IPs [${w.elasticIps.join(', ')}] is free (${parts.join('; ')})`);
      }
    }
  }

  /**
   * The Elastic IP standby: none of `w`'s Elastic IPs is free, so take over the first (in its listed
   * order) whose holder is an egw gateway address (in `poolCidrs`) that is no longer a live gateway
   * listing it — pod gone, not Ready, terminating, or its node's agent gone with it. Two standbys may both
   * try: EC2's last association wins and the other then sees a live holder and waits, so they never
   * fight. True when the workload is done for this pass (associated, or failed).
   */
  private async takeOverElasticIp(w: FabricWorkload, eni: Ec2NetworkInterface, byPublic: Map<string, Ec2Address>): Promise<boolean> {
    const standby = w.standby!;
    const pools = standby.poolCidrs.flatMap((c) => {
      const n = parseIpv4Net(c, { hostBits: 'clear' });
      return n === undefined ? [] : [n];
    });
    for (const publicIp of w.elasticIps) {
      const a = byPublic.get(publicIp);
      const holder = a?.privateIp;
      if (a === undefined || a.associationId === undefined || holder === undefined || holder === w.ip) continue;
      const holderIp = parseIpv4(holder);
      if (holderIp === undefined || !pools.some((p) => ipv4NetContains(p, holderIp)) || standby.liveHolders.includes(holder)) continue;
      let associationId = '';
      const out = await this.act(async () => {
        associationId = (await this.ec2.associateAddress({ allocationId: a.allocationId, networkInterfaceId: eni.id, privateIp: w.ip, allowReassociation: true })).associationId;
      });
      if (!out.ok) {
        if (awsCodeOf(out.err) === 'InvalidNetworkInterfaceID.NotFound') this.lagging([w], out.err, `take over Elastic IP ${publicIp} for ${w.ip}`);
        else this.fail(w, out.err, `take over Elastic IP ${publicIp} for ${w.ip}`);
        return true;
      }
      this.log?.info({ publicIp, from: holder, to: w.ip, pod: w.pod }, 'elastic ip standby: took over from a holder that is no longer a live gateway');
      this.associated(a, eni, w.ip, associationId);
      return true;
    }
    return false;
  }

  /** Records a successful AssociateAddress of `a` with `ip` on `eni` in this pass's view and the memory of our own associations. */
  private associated(a: Ec2Address, eni: Ec2NetworkInterface, ip: string, associationId: string): void {
    // EC2 replaces an Elastic IP the private address had.
    for (const other of this.addresses) {
      if (other.privateIp === ip && other !== a) Object.assign(other, { associationId: undefined, networkInterfaceId: undefined, privateIp: undefined });
    }
    Object.assign(a, { associationId, networkInterfaceId: eni.id, privateIp: ip });
    const slot = eni.privateIps.find((p) => p.ip === ip);
    if (slot !== undefined) slot.association = { publicIp: a.publicIp, allocationId: a.allocationId, associationId };
    this.r.ownAssociations.set(a.allocationId, { associationId, networkInterfaceId: eni.id, privateIp: ip, at: this.now });
    this.rememberOwn(eni);
  }

  /** The ENI of ours of the current mode (attached here, or detached) that holds workload address `ip`. */
  private eniHolding(ip: string): Ec2NetworkInterface | undefined {
    const kind: EniKind = this.desired.mode === 'EnabledENIPerWorkload' ? 'eni-per-workload' : 'secondary-ip';
    return this.ourEnis(kind).find(
      (e) => (e.attachment === undefined || this.attachedHere(e)) && (kind === 'eni-per-workload' ? e.privateIps[0]?.ip === ip : e.privateIps.slice(1).some((p) => p.ip === ip)),
    );
  }

  private async disassociateUnwanted(): Promise<void> {
    const want = new Map(this.valid.map((w) => [w.ip, w]));
    for (const e of this.ourEnis()) {
      for (const p of e.privateIps) {
        if (p.association?.associationId === undefined) continue;
        const w = want.get(p.ip);
        // Workload gone: the unassign or the ENI's deletion takes the Elastic IP along.
        if (w === undefined || w.elasticIps.includes(p.association.publicIp)) continue;
        const mine = this.addresses.find((a) => a.privateIp === p.ip && a.networkInterfaceId === e.id);
        if (mine !== undefined && w.elasticIps.includes(mine.publicIp)) continue; // replaced in this pass
        const assoc = p.association.associationId;
        const out = await this.act(() => this.ec2.disassociateAddress({ associationId: assoc }));
        if (!out.ok) {
          this.fail(w, out.err, `disassociate ${p.association.publicIp} from ${p.ip}`);
        } else {
          if (p.association.allocationId !== undefined) this.r.ownAssociations.set(p.association.allocationId, { associationId: undefined, networkInterfaceId: undefined, privateIp: undefined, at: this.now });
          p.association = undefined;
          this.rememberOwn(e);
        }
      }
    }
  }

  // -------------------------------------------------------------------------- removal and GC

  /** True when an ENI of ours is still wanted in the current mode. */
  private wanted(e: Ec2NetworkInterface): boolean {
    const kind = kindOf(e);
    if (this.desired.mode === 'EnabledENIPerWorkload') {
      return kind === 'eni-per-workload' && this.valid.some((w) => w.ip === e.privateIps[0]?.ip && w.subnetId === e.subnetId);
    }
    // Shared ENIs stay, empty or not, while attached (kept for the next workload).
    return kind === 'secondary-ip' && this.attachedHere(e);
  }

  private async removeUnwanted(): Promise<void> {
    const tasks: (() => Promise<void>)[] = [];
    for (const e of this.ourEnis()) {
      if (this.wanted(e) || this.placing.has(e.id)) {
        this.r.orphanSince.delete(e.id);
        continue;
      }
      const a = e.attachment;
      if (a !== undefined) {
        if (a.instanceId !== this.id.instanceId) continue; // tagged ours but attached elsewhere: not ours to pull
        if (a.status === 'detaching') continue; // awaited below
        tasks.push(async () => {
          const out = await this.act(() => this.ec2.detachNetworkInterface({ attachmentId: a.attachmentId }));
          if (!out.ok) {
            if (awsCodeOf(out.err) !== 'InvalidAttachmentID.NotFound') this.failNode(out.err, `detach ${e.id}`);
            return;
          }
          this.r.detachedByUs.add(e.id);
          a.status = 'detaching';
          e.status = 'detaching';
          this.rememberOwn(e);
        });
        continue;
      }
      // Detached and unwanted. Ours to delete at once if this process detached it; otherwise a leak
      // (a crash between create and attach, or between detach and delete): delete after the cool-down.
      if (!this.r.detachedByUs.has(e.id)) {
        const first = this.r.orphanSince.get(e.id) ?? this.now;
        this.r.orphanSince.set(e.id, first);
        const created = createdAtOf(e) ?? first;
        const due = Math.max(first, created) + this.r.gcCooldownMs;
        if (this.now < due) {
          this.wake(due);
          continue;
        }
      }
      tasks.push(() => this.deleteEni(e));
    }
    await this.parallel(tasks, (t) => t());
  }

  private async deleteEni(e: Ec2NetworkInterface): Promise<void> {
    const out = await this.act(() => this.ec2.deleteNetworkInterface({ networkInterfaceId: e.id }));
    if (!out.ok && awsCodeOf(out.err) === 'InvalidNetworkInterface.InUse') {
      // Its detachment has not completed where the delete looked (the read was ahead, or lagged).
      this.lagging(undefined, out.err, `delete ${e.id}`);
      return;
    }
    if (!out.ok && awsCodeOf(out.err) !== 'InvalidNetworkInterfaceID.NotFound') {
      this.failNode(out.err, `delete ${e.id}`);
      return;
    }
    this.enis.delete(e.id);
    this.r.detachedByUs.delete(e.id);
    this.r.ownChanges.delete(e.id);
    this.r.orphanSince.delete(e.id);
    const handle = handleOfOwner(e.tags[TAG_OWNER]);
    if (handle !== undefined && kindOf(e) === 'secondary-ip' && this.r.deps.hostIps !== undefined) {
      try {
        await this.r.deps.hostIps.release(handle);
      } catch (err) {
        // The handle stays; collectHostHandles releases it on a later pass.
        this.failNode(err, `release host address of ${handle}`);
      }
    }
  }

  /**
   * Releases host-secondary addresses of this node that no ENI of ours uses (a crash between the IPAM
   * allocation and the create, or between the delete and the release), after the cool-down. Handles are
   * deterministic (node, subnet, slot), so they are looked up, not listed.
   */
  private async collectHostHandles(): Promise<void> {
    const hostIps = this.r.deps.hostIps;
    if (hostIps === undefined) return;
    const subnets = new Set<string>([...(this.desired.hostSubnets ?? []), ...this.valid.map((w) => w.subnetId), ...this.ourEnis('secondary-ip').map((e) => e.subnetId)]);
    const used = new Set(this.ourEnis('secondary-ip').map((e) => handleOfOwner(e.tags[TAG_OWNER])));
    const maxSlot = Math.max(1, (this.limits?.maxEnis ?? 2) - 1);
    for (const subnetId of [...subnets].sort()) {
      for (let slot = 1; slot <= maxSlot; slot++) {
        const handle = hostHandle(this.id.node, subnetId, slot);
        if (used.has(handle)) {
          this.r.orphanSince.delete(handle);
          continue;
        }
        let held: { ip: string; allocatedAt: string } | undefined;
        try {
          held = await hostIps.get(handle);
        } catch (err) {
          this.failNode(err, `read host address of ${handle}`);
          return;
        }
        if (held === undefined) {
          this.r.orphanSince.delete(handle);
          continue;
        }
        const first = this.r.orphanSince.get(handle) ?? this.now;
        this.r.orphanSince.set(handle, first);
        const allocated = Date.parse(held.allocatedAt);
        const due = Math.max(first, Number.isNaN(allocated) ? first : allocated) + this.r.gcCooldownMs;
        if (this.now < due) {
          this.wake(due);
          continue;
        }
        try {
          await hostIps.release(handle);
          this.r.orphanSince.delete(handle);
        } catch (err) {
          this.failNode(err, `release host address of ${handle}`);
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------- report

  private report(): FabricReport {
    const workloads: WorkloadFabricStatus[] = [];
    const interfaces = new Map<string, FabricInterface>();
    const awaiting: FabricReport['awaiting'] = [];
    const nodeFailed = this.nodeStatus !== undefined && this.limits === undefined;
    for (const w of this.desired.workloads) {
      const recorded = this.status.get(w.id);
      const eni = this.limits === undefined ? undefined : this.eniHolding(w.ip);
      const eip = eni === undefined ? undefined : this.addresses.find((a) => a.privateIp === w.ip && a.networkInterfaceId === eni.id && w.elasticIps.includes(a.publicIp));
      const base = { id: w.id, pod: w.pod, ip: w.ip, ...(eni === undefined ? {} : { networkInterfaceId: eni.id }), ...(eip === undefined ? {} : { elasticIp: eip.publicIp }) };
      if (recorded !== undefined) {
        workloads.push({ ...base, ...recorded });
        continue;
      }
      if (nodeFailed || eni === undefined) {
        const n = this.nodeStatus;
        workloads.push({ ...base, state: n?.state ?? 'Pending', reason: n?.reason ?? 'Pending', message: n?.message ?? 'not on an ENI yet' });
        continue;
      }
      const a = eni.attachment;
      if (a === undefined || a.status === 'attaching') {
        workloads.push({ ...base, state: 'Pending', reason: 'Attaching', message: `ENI ${eni.id} is being attached` });
        continue;
      }
      if (!a.deleteOnTermination) {
        workloads.push({ ...base, state: 'Pending', reason: 'DeleteOnTermination', message: `ENI ${eni.id} does not have DeleteOnTermination yet` });
        continue;
      }
      workloads.push({ ...base, state: 'Ready', reason: 'Ready', message: `on ${eni.id}${eip === undefined ? '' : ` with Elastic IP ${eip.publicIp}`}` });
    }
    const wantedIps = new Set(this.valid.map((w) => w.ip));
    for (const e of this.enis.values()) {
      if (!this.ours(e) || !this.attachedHere(e)) continue;
      const a = e.attachment!;
      if (a.status === 'attaching') awaiting.push({ mac: e.macAddress, attached: true });
      if (a.status === 'detaching') awaiting.push({ mac: e.macAddress, attached: false });
      if (a.status !== 'attached') continue;
      const subnet = this.subnets.get(e.subnetId);
      if (subnet === undefined) continue;
      const kind = kindOf(e);
      const ips = kind === 'eni-per-workload' ? [e.privateIps[0]?.ip ?? ''].filter((ip) => wantedIps.has(ip)) : e.privateIps.slice(1).map((p) => p.ip).filter((ip) => wantedIps.has(ip));
      if (kind === 'eni-per-workload' && !this.wanted(e)) continue;
      interfaces.set(e.id, { networkInterfaceId: e.id, mac: e.macAddress, subnetCidr: subnet.cidr, workloadIps: ips });
    }
    const foreign = [...this.enis.values()].filter((e) => this.attachedHere(e) && !this.ours(e) && e !== this.primary && e.id !== this.primary?.id).length;
    return {
      workloads,
      node: this.nodeStatus ?? { state: 'Ready', reason: 'Ready', message: `${this.ourEnis().length} ENI(s) of ours on ${this.id.instanceId}` },
      interfaces: [...interfaces.values()].sort((a, b) => (a.networkInterfaceId < b.networkInterfaceId ? -1 : 1)),
      limits: this.limits,
      foreignEnis: foreign,
      awaiting,
      stale: this.readFailed,
      retry: this.retry,
      wakeInMs: this.wakeAt === undefined ? undefined : Math.max(0, this.wakeAt - this.now),
      mutations: this.mutations,
    };
  }
}
