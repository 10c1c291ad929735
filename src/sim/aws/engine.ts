import { Ec2ApiError, awsErrors } from './api-error.js';
import type { FabricAddress, FabricEni, FabricEvent, FabricInstance, FabricSnapshot } from './fabric.js';
import type { InstanceTypeLimits, InstanceTypeTable } from './instance-types.js';
import { formatIpv4, ipv4NetContains, ipv4NetLast, parseIpv4, parseIpv4Net } from '../../platform/ipv4.js';
import { isAwsReservedInSubnet, usableAddressCount } from './subnet-addresses.js';
import type { AddressRecord, EniRecord, SimState } from './model.js';
import { macFrom } from './model.js';
import { stableHex } from './prng.js';
import type { World, WorldInstance, WorldSubnet } from './world.js';

/** Side effects the engine needs, injected so that it stays deterministic under test. */
export interface EngineDeps {
  /** Current time, epoch ms. */
  now(): number;
  /** Duration of the `attaching` phase of a new attachment, ms (0 = completes within the call). */
  attachDelayMs(): number;
  /** Duration of the `detaching` phase, ms. */
  detachDelayMs(): number;
  /** How long a new ENI's ID stays unknown to other calls, ms (absent or 0 = known at once). */
  createPropagationMs?(): number;
}

/** A tag as given in a request. */
export interface TagInput {
  key: string;
  value: string;
}

/** Input of CreateNetworkInterface (parsed). */
export interface CreateEniInput {
  subnetId: string;
  privateIp: string | undefined;
  /** `PrivateIpAddresses.N`: explicit addresses, at most one of them flagged primary. */
  privateIps?: { ip: string; primary: boolean }[];
  secondaryCount: number | undefined;
  groups: string[];
  description: string | undefined;
  tags: TagInput[];
  clientToken: string | undefined;
  /** The request's parameters, canonicalised, to compare client-token retries. */
  canonical: string;
}

/** Input of AssociateAddress (parsed). */
export interface AssociateInput {
  allocationId: string;
  networkInterfaceId: string | undefined;
  instanceId: string | undefined;
  privateIp: string | undefined;
  /** undefined = not given: reassociation is then automatic, as on AWS. */
  allowReassociation: boolean | undefined;
}

/** The result of CreateNetworkInterface. */
export interface CreateEniResult {
  eni: EniRecord;
  clientToken: string | undefined;
}

/** Modifications of ModifyNetworkInterfaceAttribute (exactly one is set). */
export interface ModifyEniInput {
  networkInterfaceId: string;
  attachment: { attachmentId: string; deleteOnTermination: boolean } | undefined;
  sourceDestCheck: boolean | undefined;
  groups: string[] | undefined;
  description: string | undefined;
}

const CLIENT_TOKEN_TTL_MS = 24 * 3600 * 1000;
const MAX_TAGS = 50;
const MAX_GROUPS_PER_ENI = 5;
const PAST_ASSOCIATIONS_KEPT = 10_000;

/**
 * The EC2 semantics of the emulator: every action as a synchronous transformation of {@link SimState},
 * so that each call is atomic even when HTTP requests interleave. Mutations queue {@link FabricEvent}s
 * (taken with {@link takeEvents} once the change is committed) and mark the state dirty for
 * persistence. Errors are {@link Ec2ApiError}s with AWS's codes; a failed call changes nothing.
 */
export class Ec2Engine {
  private events: FabricEvent[] = [];
  private dirty = false;
  private readonly subnets: Map<string, WorldSubnet>;
  private readonly instances: Map<string, WorldInstance>;

  constructor(
    readonly world: World,
    readonly state: SimState,
    readonly types: InstanceTypeTable,
    private readonly deps: EngineDeps,
  ) {
    this.subnets = new Map(world.subnets.map((s) => [s.id, s]));
    this.instances = new Map(world.instances.map((i) => [i.id, i]));
  }

  // ---------------------------------------------------------------- bookkeeping

  /** The fabric events of the changes made since the last call. */
  takeEvents(): FabricEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  /** Counts changes of the state, so that views of it (the lagging Describe view) know when to refresh. */
  version = 0;

  private touch(): void {
    this.dirty = true;
    this.version++;
  }

  /** True (once) when the state changed since the last call: the caller persists it. */
  takeDirty(): boolean {
    const d = this.dirty;
    this.dirty = false;
    return d;
  }

  /** Completes every attach/detach phase whose time has come. Called before each action and by a timer. */
  tick(): void {
    const now = this.deps.now();
    for (const eni of Object.values(this.state.enis)) {
      const a = eni.attachment;
      if (a?.completesAt === undefined || a.completesAt > now) continue;
      this.completeTransition(eni);
    }
  }

  /** The epoch ms of the next pending attach/detach completion, if any. */
  nextTransitionAt(): number | undefined {
    let next: number | undefined;
    for (const eni of Object.values(this.state.enis)) {
      const at = eni.attachment?.completesAt;
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  private completeTransition(eni: EniRecord): void {
    const a = eni.attachment;
    if (a === undefined) return;
    const instance = this.fabricInstance(a.instanceId);
    if (a.status === 'attaching') {
      a.status = 'attached';
      a.completesAt = undefined;
      eni.status = 'in-use';
      this.touch();
      if (instance !== undefined) this.events.push({ kind: 'eniAttached', eni: this.fabricEni(eni), instance });
    } else if (a.status === 'detaching') {
      const before = this.fabricEni(eni);
      eni.attachment = undefined;
      eni.status = 'available';
      this.touch();
      if (instance !== undefined) this.events.push({ kind: 'eniDetached', eni: before, instance });
    }
  }

  private newId(prefix: string): string {
    for (;;) {
      this.state.idCounter++;
      const id = `${prefix}-${stableHex(`${this.state.seed}:${prefix}:${this.state.idCounter}`, 17)}`;
      if (!this.idInUse(id)) return id;
    }
  }

  private idInUse(id: string): boolean {
    if (id in this.state.enis || id in this.state.addresses || id in this.state.tags) return true;
    for (const e of Object.values(this.state.enis)) if (e.attachment?.attachmentId === id) return true;
    for (const a of Object.values(this.state.addresses)) if (a.association?.associationId === id) return true;
    return this.state.pastAssociations.includes(id);
  }

  // ---------------------------------------------------------------- lookups

  /** The instance of the world, or `InvalidInstanceID.NotFound`. */
  instance(id: string): WorldInstance {
    const i = this.instances.get(id);
    if (i === undefined) throw awsErrors.instanceNotFound(id);
    return i;
  }

  /** True once TerminateInstances ended the instance. */
  isTerminated(id: string): boolean {
    return this.state.terminated?.[id] !== undefined;
  }

  /** The instance, running: `IncorrectInstanceState` when terminated. */
  private runningInstance(id: string): WorldInstance {
    const i = this.instance(id);
    if (this.isTerminated(id)) throw awsErrors.incorrectInstanceState(id, 'terminated');
    return i;
  }

  /** The subnet of the world, or `InvalidSubnetID.NotFound`. */
  subnet(id: string): WorldSubnet {
    const s = this.subnets.get(id);
    if (s === undefined) throw awsErrors.subnetNotFound(id);
    return s;
  }

  /**
   * The ENI, or `InvalidNetworkInterfaceID.NotFound` — also for an ENI created so recently that its ID
   * has not propagated yet (EC2's eventual consistency).
   */
  eni(id: string): EniRecord {
    const e = this.state.enis[id];
    if (e === undefined || (e.visibleAt !== undefined && e.visibleAt > this.deps.now())) throw awsErrors.eniNotFound(id);
    return e;
  }

  /** The Elastic IP, or `InvalidAllocationID.NotFound`. */
  address(allocationId: string): AddressRecord {
    const a = this.state.addresses[allocationId];
    if (a === undefined) throw awsErrors.allocationNotFound(allocationId);
    return a;
  }

  /** Limits of the instance's type (validated when the world was loaded). */
  limitsOf(instance: WorldInstance): InstanceTypeLimits {
    const l = this.types.get(instance.type);
    if (l === undefined) throw awsErrors.internalError();
    return l;
  }

  /** Every ENI, in creation order. */
  allEnis(): EniRecord[] {
    return Object.values(this.state.enis);
  }

  /** ENIs attached to the instance (in any attachment phase), by device index. */
  enisOf(instanceId: string): EniRecord[] {
    return this.allEnis()
      .filter((e) => e.attachment?.instanceId === instanceId)
      .sort((a, b) => (a.attachment?.deviceIndex ?? 0) - (b.attachment?.deviceIndex ?? 0));
  }

  /** Tags of a resource (empty when it has none). */
  tagsOf(id: string): Record<string, string> {
    return this.state.tags[id] ?? {};
  }

  /** The Elastic IP associated with a private address, if any. */
  addressOnPrivateIp(privateIp: string): AddressRecord | undefined {
    return Object.values(this.state.addresses).find((a) => a.association?.privateIp === privateIp);
  }

  /** Free addresses left in the subnet (for DescribeSubnets' availableIpAddressCount). */
  availableAddressCount(subnet: WorldSubnet): number {
    const cidr = parseIpv4Net(subnet.cidr, { hostBits: 'refuse' });
    if (cidr === undefined) return 0;
    return usableAddressCount(cidr) - this.usedIps(subnet.id).size;
  }

  private usedIps(subnetId: string): Map<string, EniRecord> {
    const used = new Map<string, EniRecord>();
    for (const e of this.allEnis()) if (e.subnetId === subnetId) for (const ip of e.privateIps) used.set(ip, e);
    return used;
  }

  private ipLimit(eni: EniRecord): number {
    const a = eni.attachment;
    // An unattached ENI is bounded only by what some instance type could hold; AWS checks the real
    // limit when it is attached.
    if (a === undefined) return this.types.maxIpv4PerEni();
    return this.limitsOf(this.instance(a.instanceId)).ipv4PerEni;
  }

  private isRouted(eni: EniRecord): boolean {
    return eni.attachment?.status === 'attached';
  }

  /** Validates a requested address for `subnet`: an IPv4 address inside it, not one AWS reserves. */
  private checkAddressForSubnet(ip: string, subnet: WorldSubnet): void {
    const value = parseIpv4(ip);
    if (value === undefined) throw awsErrors.invalidParameterValue(`Invalid IPv4 address: ${ip}`);
    const cidr = parseIpv4Net(subnet.cidr, { hostBits: 'refuse' });
    if (cidr === undefined || !ipv4NetContains(cidr, value)) throw awsErrors.addressOutsideSubnet(ip, subnet.id);
    if (isAwsReservedInSubnet(cidr, value)) throw awsErrors.reservedAddress(ip);
  }

  /**
   * Free usable addresses of the subnet: random ones (EC2 picks any free address; callers must not
   * expect the lowest), seeded from the state so a run replays, or the lowest with `addressPick: lowest`.
   */
  private pickFree(subnet: WorldSubnet, count: number, alsoTaken: ReadonlySet<string> = new Set()): string[] {
    const cidr = parseIpv4Net(subnet.cidr, { hostBits: 'refuse' });
    if (cidr === undefined) throw awsErrors.internalError();
    const used = this.usedIps(subnet.id);
    const free: string[] = [];
    for (let v = cidr.first + 4; v < ipv4NetLast(cidr); v++) {
      const ip = formatIpv4(v);
      if (!used.has(ip) && !alsoTaken.has(ip)) free.push(ip);
      if (this.world.sim.addressPick === 'lowest' && free.length === count) break;
    }
    if (free.length < count) throw awsErrors.insufficientAddresses();
    if (this.world.sim.addressPick === 'lowest') return free.slice(0, count);
    const picked: string[] = [];
    for (let k = 0; k < count; k++) {
      this.state.addressPicks = (this.state.addressPicks ?? 0) + 1;
      const at = parseInt(stableHex(`${this.state.seed}:address:${this.state.addressPicks}`, 8), 16) % free.length;
      picked.push(...free.splice(at, 1));
    }
    return picked;
  }

  private checkGroups(groups: readonly string[], vpcId: string): void {
    if (groups.length > MAX_GROUPS_PER_ENI) throw awsErrors.securityGroupsPerInterfaceLimit();
    for (const g of groups) {
      const sg = this.world.securityGroups.find((s) => s.id === g);
      if (sg === undefined) throw awsErrors.securityGroupNotFound(g);
      if (sg.vpcId !== vpcId) {
        throw awsErrors.invalidParameter(`Security group ${g} and subnet belong to different networks.`);
      }
    }
  }

  private checkTags(existing: Record<string, string>, tags: readonly TagInput[]): void {
    for (const t of tags) {
      if (t.key === '') throw awsErrors.invalidParameterValue('Tag key must not be empty');
      if (t.key.length > 128) throw awsErrors.invalidParameterValue(`Tag key exceeds the maximum length of 128 characters: ${t.key}`);
      if (t.value.length > 256) throw awsErrors.invalidParameterValue(`Tag value exceeds the maximum length of 256 characters for key ${t.key}`);
      if (t.key.toLowerCase().startsWith('aws:')) {
        throw awsErrors.invalidParameterValue(`Tag keys starting with 'aws:' are reserved for internal use: ${t.key}`);
      }
    }
    const keys = new Set([...Object.keys(existing), ...tags.map((t) => t.key)]);
    if (keys.size > MAX_TAGS) throw awsErrors.tagLimit();
  }

  // ---------------------------------------------------------------- fabric views

  /** The fabric's view of an ENI. */
  fabricEni(eni: EniRecord): FabricEni {
    const subnet = this.subnets.get(eni.subnetId);
    return {
      id: eni.id,
      macAddress: eni.macAddress,
      subnetId: eni.subnetId,
      subnetCidr: subnet?.cidr ?? '',
      vpcId: eni.vpcId,
      availabilityZone: eni.availabilityZone,
      privateIps: [...eni.privateIps],
      instanceId: eni.attachment?.instanceId,
      deviceIndex: eni.attachment?.deviceIndex,
      sourceDestCheck: eni.sourceDestCheck,
    };
  }

  /** The fabric's view of an instance, or undefined if unknown. */
  fabricInstance(id: string): FabricInstance | undefined {
    const i = this.instances.get(id);
    const s = i === undefined ? undefined : this.subnets.get(i.subnetId);
    if (i === undefined || s === undefined) return undefined;
    return { id: i.id, instanceType: i.type, availabilityZone: s.availabilityZone, subnetId: s.id, privateIp: i.privateIp };
  }

  private fabricAddress(a: AddressRecord): FabricAddress | undefined {
    const as = a.association;
    if (as === undefined) return undefined;
    return { allocationId: a.allocationId, publicIp: a.publicIp, associationId: as.associationId, networkInterfaceId: as.networkInterfaceId, privateIp: as.privateIp };
  }

  /** Everything the fabric should currently show. */
  snapshot(): FabricSnapshot {
    return {
      instances: this.world.instances
        .filter((i) => !this.isTerminated(i.id))
        .map((i) => this.fabricInstance(i.id))
        .filter((i): i is FabricInstance => i !== undefined),
      attachedEnis: this.allEnis().filter((e) => this.isRouted(e)).map((e) => this.fabricEni(e)),
      associations: Object.values(this.state.addresses)
        .map((a) => this.fabricAddress(a))
        .filter((a): a is FabricAddress => a !== undefined),
    };
  }

  private disassociate(a: AddressRecord): void {
    const before = this.fabricAddress(a);
    if (before === undefined) return;
    a.association = undefined;
    this.state.pastAssociations.push(before.associationId);
    if (this.state.pastAssociations.length > PAST_ASSOCIATIONS_KEPT) this.state.pastAssociations.shift();
    this.events.push({ kind: 'addressDisassociated', address: before });
  }

  // ---------------------------------------------------------------- actions

  /** CreateNetworkInterface. */
  createNetworkInterface(input: CreateEniInput): CreateEniResult {
    const now = this.deps.now();
    if (input.clientToken !== undefined) {
      if (input.clientToken.length > 64) throw awsErrors.invalidParameterValue('ClientToken must be at most 64 ASCII characters');
      this.pruneClientTokens(now);
      const prior = this.state.clientTokens[input.clientToken];
      if (prior !== undefined) {
        if (prior.action !== 'CreateNetworkInterface' || prior.params !== input.canonical) {
          throw awsErrors.idempotentParameterMismatch(input.clientToken);
        }
        // A retry: the same result, with the ENI as it is now (AWS: "might contain updated information").
        return { eni: this.state.enis[prior.networkInterfaceId] ?? prior.snapshot, clientToken: input.clientToken };
      }
    }
    const subnet = this.subnet(input.subnetId);
    const groups = input.groups.length > 0 ? input.groups : this.defaultGroups(subnet.vpcId);
    this.checkGroups(groups, subnet.vpcId);
    this.checkTags({}, input.tags);
    const secondary = input.secondaryCount ?? 0;
    if (input.secondaryCount !== undefined && input.secondaryCount < 1) {
      throw awsErrors.invalidParameterValue(`Invalid value '${input.secondaryCount}' for SecondaryPrivateIpAddressCount. It must be at least 1.`);
    }
    const listed = input.privateIps ?? [];
    if (input.secondaryCount !== undefined && listed.length > 0) {
      throw awsErrors.invalidParameterCombination('You may specify either secondary private IP addresses or a secondary private IP address count, but not both.');
    }
    const flagged = listed.filter((p) => p.primary);
    if (flagged.length > 1) throw awsErrors.invalidParameterValue('Only one private IP address can be designated as primary.');
    const flaggedPrimary = flagged[0];
    if (flaggedPrimary !== undefined && input.privateIp !== undefined && flaggedPrimary.ip !== input.privateIp) {
      throw awsErrors.invalidParameterCombination('The primary private IP address given in PrivateIpAddress conflicts with the one designated primary in PrivateIpAddresses.');
    }
    // The primary: PrivateIpAddress, else the one flagged primary, else the first listed ([X]), else EC2's pick.
    const requestedPrimary = input.privateIp ?? flaggedPrimary?.ip ?? listed[0]?.ip;
    const listedSecondaries = [...new Set(listed.map((p) => p.ip))].filter((ip) => ip !== requestedPrimary);
    if (listed.length !== new Set(listed.map((p) => p.ip)).size) {
      throw awsErrors.invalidParameterValue('The same private IP address is given more than once.');
    }
    if (1 + secondary + listedSecondaries.length > this.types.maxIpv4PerEni()) throw awsErrors.privateIpLimit();
    const used = this.usedIps(subnet.id);
    for (const ip of requestedPrimary === undefined ? listedSecondaries : [requestedPrimary, ...listedSecondaries]) {
      this.checkAddressForSubnet(ip, subnet);
      if (used.has(ip)) throw awsErrors.addressInUse();
    }
    const primary = requestedPrimary ?? this.pickFree(subnet, 1)[0] ?? '';
    const secondaries = secondary > 0 ? this.pickFree(subnet, secondary, new Set([primary])) : listedSecondaries;
    const id = this.newId('eni');
    const propagation = this.deps.createPropagationMs?.() ?? 0;
    const eni: EniRecord = {
      id,
      subnetId: subnet.id,
      vpcId: subnet.vpcId,
      availabilityZone: subnet.availabilityZone,
      description: input.description ?? '',
      macAddress: macFrom(`${this.state.seed}:${id}`),
      privateIps: [primary, ...secondaries],
      groups: [...groups],
      sourceDestCheck: true,
      status: 'available',
      attachment: undefined,
      primaryOf: undefined,
      ...(propagation > 0 ? { visibleAt: now + propagation } : {}),
    };
    this.state.enis[id] = eni;
    this.state.tags[id] = Object.fromEntries(input.tags.map((t) => [t.key, t.value]));
    if (input.clientToken !== undefined) {
      this.state.clientTokens[input.clientToken] = {
        action: 'CreateNetworkInterface',
        params: input.canonical,
        networkInterfaceId: id,
        snapshot: structuredClone(eni),
        at: now,
      };
    }
    this.touch();
    return { eni, clientToken: input.clientToken };
  }

  private defaultGroups(vpcId: string): string[] {
    const inVpc = this.world.securityGroups.filter((g) => g.vpcId === vpcId);
    const named = inVpc.find((g) => g.name === 'default') ?? inVpc[0];
    return named === undefined ? [] : [named.id];
  }

  private pruneClientTokens(now: number): void {
    for (const [token, rec] of Object.entries(this.state.clientTokens)) {
      if (now - rec.at > CLIENT_TOKEN_TTL_MS) delete this.state.clientTokens[token];
    }
  }

  /** AttachNetworkInterface. */
  attachNetworkInterface(input: { networkInterfaceId: string; instanceId: string; deviceIndex: number; networkCardIndex: number }): {
    attachmentId: string;
    networkCardIndex: number;
  } {
    const eni = this.eni(input.networkInterfaceId);
    const instance = this.runningInstance(input.instanceId);
    if (eni.attachment !== undefined) throw awsErrors.eniInUse(eni.id);
    const subnet = this.subnet(instance.subnetId);
    if (subnet.availabilityZone !== eni.availabilityZone) throw awsErrors.azMismatch();
    if (subnet.vpcId !== eni.vpcId) {
      throw awsErrors.invalidParameterCombination('The network interface and the instance are in different VPCs');
    }
    const limits = this.limitsOf(instance);
    if (input.deviceIndex < 0) throw awsErrors.invalidParameterValue(`Invalid value '${input.deviceIndex}' for deviceIndex.`);
    if (input.networkCardIndex < 0 || input.networkCardIndex >= limits.networkCards) {
      throw awsErrors.invalidParameterValue(`Network card index ${input.networkCardIndex} is not valid for instance type ${instance.type}.`);
    }
    const attached = this.enisOf(instance.id);
    const onCard = attached.filter((e) => e.attachment?.networkCardIndex === input.networkCardIndex);
    if (onCard.some((e) => e.attachment?.deviceIndex === input.deviceIndex)) {
      throw awsErrors.deviceIndexInUse(instance.id, input.deviceIndex);
    }
    // The table gives ENIs on the default card and over all cards; other cards share the rest evenly.
    const cardLimit =
      input.networkCardIndex === 0
        ? limits.maxEnis
        : Math.ceil((limits.maxEnisAllCards - limits.maxEnis) / Math.max(1, limits.networkCards - 1));
    if (onCard.length + 1 > cardLimit || attached.length + 1 > limits.maxEnisAllCards) {
      throw awsErrors.attachmentLimit(input.networkCardIndex === 0 ? onCard.length + 1 : attached.length + 1, instance.type);
    }
    if (eni.privateIps.length > limits.ipv4PerEni) throw awsErrors.privateIpLimit();
    const delay = this.deps.attachDelayMs();
    const now = this.deps.now();
    const attachmentId = this.newId('eni-attach');
    eni.attachment = {
      attachmentId,
      instanceId: instance.id,
      deviceIndex: input.deviceIndex,
      networkCardIndex: input.networkCardIndex,
      status: 'attaching',
      attachTime: new Date(now).toISOString(),
      deleteOnTermination: false,
      completesAt: now + delay,
    };
    eni.status = 'attaching';
    this.touch();
    if (delay <= 0) this.completeTransition(eni);
    return { attachmentId, networkCardIndex: input.networkCardIndex };
  }

  private eniByAttachment(attachmentId: string): EniRecord {
    const eni = this.allEnis().find((e) => e.attachment?.attachmentId === attachmentId);
    if (eni === undefined) throw awsErrors.attachmentNotFound(attachmentId);
    return eni;
  }

  /** DetachNetworkInterface. `force` ends the `detaching` phase at once. */
  detachNetworkInterface(input: { attachmentId: string; force: boolean }): void {
    const eni = this.eniByAttachment(input.attachmentId);
    const a = eni.attachment;
    if (a === undefined) throw awsErrors.attachmentNotFound(input.attachmentId);
    if (a.deviceIndex === 0 && a.networkCardIndex === 0) throw awsErrors.primaryDetach();
    if (a.status === 'detaching' && !input.force) return;
    const delay = input.force ? 0 : this.deps.detachDelayMs();
    a.status = 'detaching';
    a.completesAt = this.deps.now() + delay;
    eni.status = 'detaching';
    this.touch();
    if (delay <= 0) this.completeTransition(eni);
  }

  /** DeleteNetworkInterface. Elastic IPs associated with its addresses are disassociated. */
  deleteNetworkInterface(id: string): void {
    const eni = this.eni(id);
    if (eni.attachment !== undefined || eni.primaryOf !== undefined) throw awsErrors.eniInUse(id);
    for (const a of Object.values(this.state.addresses)) {
      if (a.association?.networkInterfaceId === id) this.disassociate(a);
    }
    for (const rec of Object.values(this.state.clientTokens)) {
      if (rec.networkInterfaceId === id) rec.snapshot = structuredClone(eni);
    }
    delete this.state.enis[id];
    delete this.state.tags[id];
    this.touch();
  }

  /** ModifyNetworkInterfaceAttribute: exactly one attribute per call, as on AWS. */
  modifyNetworkInterfaceAttribute(input: ModifyEniInput): void {
    const eni = this.eni(input.networkInterfaceId);
    const given = [input.attachment, input.sourceDestCheck, input.groups, input.description].filter((x) => x !== undefined).length;
    if (given === 0) throw awsErrors.missingParameter('Attachment, SourceDestCheck, SecurityGroupId or Description');
    if (given > 1) throw awsErrors.invalidParameterCombination('Fields for multiple attribute types specified: only one attribute can be modified at a time');
    if (input.attachment !== undefined) {
      if (eni.attachment?.attachmentId !== input.attachment.attachmentId) throw awsErrors.attachmentNotFound(input.attachment.attachmentId);
      eni.attachment.deleteOnTermination = input.attachment.deleteOnTermination;
    } else if (input.sourceDestCheck !== undefined) {
      const changed = eni.sourceDestCheck !== input.sourceDestCheck;
      eni.sourceDestCheck = input.sourceDestCheck;
      if (changed && this.isRouted(eni)) this.events.push({ kind: 'sourceDestCheckChanged', eni: this.fabricEni(eni) });
    } else if (input.groups !== undefined) {
      if (input.groups.length === 0) throw awsErrors.missingParameter('SecurityGroupId');
      this.checkGroups(input.groups, eni.vpcId);
      eni.groups = [...input.groups];
    } else if (input.description !== undefined) {
      eni.description = input.description;
    }
    this.touch();
  }

  /** AssignPrivateIpAddresses. Returns the addresses assigned by this call. */
  assignPrivateIpAddresses(input: { networkInterfaceId: string; ips: string[]; count: number | undefined; allowReassignment: boolean }): string[] {
    const eni = this.eni(input.networkInterfaceId);
    if (input.ips.length > 0 && input.count !== undefined) {
      throw awsErrors.invalidParameterCombination('You may specify either secondary private IP addresses or a secondary private IP address count, but not both.');
    }
    if (input.ips.length === 0 && input.count === undefined) {
      throw awsErrors.missingParameter('PrivateIpAddress or SecondaryPrivateIpAddressCount');
    }
    if (input.count !== undefined && input.count < 1) {
      throw awsErrors.invalidParameterValue(`Invalid value '${input.count}' for SecondaryPrivateIpAddressCount. It must be at least 1.`);
    }
    const subnet = this.subnet(eni.subnetId);
    const limit = this.ipLimit(eni);
    let toAdd: string[];
    const moves: { ip: string; from: EniRecord }[] = [];
    if (input.count !== undefined) {
      if (eni.privateIps.length + input.count > limit) throw awsErrors.privateIpLimit();
      toAdd = this.pickFree(subnet, input.count);
    } else {
      const used = this.usedIps(subnet.id);
      toAdd = [];
      for (const ip of new Set(input.ips)) {
        this.checkAddressForSubnet(ip, subnet);
        const holder = used.get(ip);
        if (holder === eni) continue;
        if (holder !== undefined) {
          if (!input.allowReassignment) throw awsErrors.addressInUseByOther(ip);
          if (holder.privateIps[0] === ip) {
            throw awsErrors.invalidParameterValue(`Address ${ip} is the primary private IP address of ${holder.id} and cannot be reassigned.`);
          }
          moves.push({ ip, from: holder });
        }
        toAdd.push(ip);
      }
      if (eni.privateIps.length + toAdd.length > limit) throw awsErrors.privateIpLimit();
    }
    // Commit. Moved addresses leave their old ENI first; an Elastic IP on a moved address moves with it.
    for (const { ip, from } of moves) {
      const before = this.fabricEni(from);
      from.privateIps = from.privateIps.filter((x) => x !== ip);
      if (this.isRouted(from)) this.events.push({ kind: 'privateIpUnassigned', eni: before, ip });
    }
    eni.privateIps.push(...toAdd);
    for (const ip of toAdd) {
      if (this.isRouted(eni)) this.events.push({ kind: 'privateIpAssigned', eni: this.fabricEni(eni), ip });
    }
    for (const { ip } of moves) {
      const a = this.addressOnPrivateIp(ip);
      if (a?.association !== undefined) {
        a.association.networkInterfaceId = eni.id;
        const moved = this.fabricAddress(a);
        if (moved !== undefined) this.events.push({ kind: 'addressAssociated', address: moved });
      }
    }
    if (toAdd.length > 0) this.touch();
    return toAdd;
  }

  /** UnassignPrivateIpAddresses. An Elastic IP on an unassigned address is disassociated. */
  unassignPrivateIpAddresses(input: { networkInterfaceId: string; ips: string[] }): void {
    const eni = this.eni(input.networkInterfaceId);
    if (input.ips.length === 0) throw awsErrors.missingParameter('PrivateIpAddress');
    for (const ip of input.ips) {
      if (!eni.privateIps.includes(ip)) {
        throw awsErrors.invalidParameterValue(`Some of the specified addresses are not assigned to interface ${eni.id}`);
      }
      if (eni.privateIps[0] === ip) {
        throw awsErrors.invalidParameterValue(`The primary private IP address ${ip} of ${eni.id} cannot be unassigned`);
      }
    }
    for (const ip of new Set(input.ips)) {
      const a = this.addressOnPrivateIp(ip);
      if (a !== undefined) this.disassociate(a);
      const before = this.fabricEni(eni);
      eni.privateIps = eni.privateIps.filter((x) => x !== ip);
      if (this.isRouted(eni)) this.events.push({ kind: 'privateIpUnassigned', eni: before, ip });
    }
    this.touch();
  }

  /**
   * TerminateInstances (at once: no `shutting-down` phase). Every attachment ends: ENIs with
   * DeleteOnTermination (the primary's included) are deleted, with their Elastic IP associations; the
   * others become `available` and keep theirs. Terminating again is a no-op; the instance stays listed
   * as `terminated`.
   */
  terminateInstances(ids: string[]): { id: string; previous: 'running' | 'terminated' }[] {
    if (ids.length === 0) throw awsErrors.missingParameter('InstanceId');
    for (const id of ids) this.instance(id);
    const out: { id: string; previous: 'running' | 'terminated' }[] = [];
    for (const id of new Set(ids)) {
      if (this.isTerminated(id)) {
        out.push({ id, previous: 'terminated' });
        continue;
      }
      const instance = this.fabricInstance(id);
      for (const eni of this.enisOf(id)) {
        const a = eni.attachment;
        if (a === undefined) continue;
        const before = this.fabricEni(eni);
        if (this.isRouted(eni) && instance !== undefined) this.events.push({ kind: 'eniDetached', eni: before, instance });
        eni.attachment = undefined;
        eni.status = 'available';
        if (!a.deleteOnTermination) continue;
        for (const addr of Object.values(this.state.addresses)) {
          if (addr.association?.networkInterfaceId === eni.id) this.disassociate(addr);
        }
        for (const rec of Object.values(this.state.clientTokens)) {
          if (rec.networkInterfaceId === eni.id) rec.snapshot = structuredClone(eni);
        }
        delete this.state.enis[eni.id];
        delete this.state.tags[eni.id];
      }
      (this.state.terminated ??= {})[id] = new Date(this.deps.now()).toISOString();
      out.push({ id, previous: 'running' });
    }
    this.touch();
    return out;
  }

  /** AllocateAddress (VPC domain), from the configured pool or the requested address in it. */
  allocateAddress(input: { address: string | undefined; tags: TagInput[] }): AddressRecord {
    const all = Object.values(this.state.addresses);
    if (all.length >= this.world.sim.maxElasticIps) throw awsErrors.addressLimit();
    this.checkTags({}, input.tags);
    const pool = parseIpv4Net(this.world.sim.elasticIpPool, { hostBits: 'refuse' });
    if (pool === undefined) throw awsErrors.internalError();
    const taken = new Set(all.map((a) => a.publicIp));
    let publicIp: string | undefined;
    if (input.address !== undefined) {
      const v = parseIpv4(input.address);
      if (v === undefined || !ipv4NetContains(pool, v)) {
        throw awsErrors.invalidParameterValue(`Address ${input.address} is not available for allocation`);
      }
      if (taken.has(input.address)) throw awsErrors.invalidParameterValue(`Address ${input.address} is already allocated`);
      publicIp = input.address;
    } else {
      for (let v = pool.first + 1; v < ipv4NetLast(pool); v++) {
        const ip = formatIpv4(v);
        if (!taken.has(ip)) {
          publicIp = ip;
          break;
        }
      }
    }
    if (publicIp === undefined) throw new Ec2ApiError('InsufficientAddressCapacity', 'Not enough available addresses to satisfy your minimum request.', 500);
    const allocationId = this.newId('eipalloc');
    const rec: AddressRecord = { allocationId, publicIp, association: undefined };
    this.state.addresses[allocationId] = rec;
    this.state.tags[allocationId] = Object.fromEntries(input.tags.map((t) => [t.key, t.value]));
    this.touch();
    return rec;
  }

  /** AssociateAddress. Idempotent for the same target; see docs/aws-sim.md for reassociation. */
  associateAddress(input: AssociateInput): string {
    const address = this.address(input.allocationId);
    if (input.networkInterfaceId !== undefined && input.instanceId !== undefined) {
      throw awsErrors.invalidParameterCombination('You can specify either the instance ID or the network interface ID, but not both.');
    }
    let eni: EniRecord;
    if (input.networkInterfaceId !== undefined) {
      eni = this.eni(input.networkInterfaceId);
    } else if (input.instanceId !== undefined) {
      this.instance(input.instanceId);
      const enis = this.enisOf(input.instanceId);
      if (enis.length !== 1 || enis[0] === undefined) {
        throw new Ec2ApiError(
          'InvalidInstanceID',
          `There are multiple interfaces attached to instance '${input.instanceId}'. Please specify an interface ID for the operation instead.`,
        );
      }
      eni = enis[0];
    } else {
      throw awsErrors.missingParameter('NetworkInterfaceId');
    }
    const privateIp = input.privateIp ?? eni.privateIps[0] ?? '';
    if (!eni.privateIps.includes(privateIp)) {
      throw awsErrors.invalidParameterValue(`The specified private IP address ${privateIp} is not assigned to network interface ${eni.id}`);
    }
    const current = address.association;
    if (current !== undefined && current.networkInterfaceId === eni.id && current.privateIp === privateIp) {
      return current.associationId;
    }
    if (current !== undefined && input.allowReassociation === false) {
      throw awsErrors.alreadyAssociated(address.allocationId, current.associationId);
    }
    if (current !== undefined) this.disassociate(address);
    // The private address may already carry another Elastic IP: AWS replaces it.
    const previous = this.addressOnPrivateIp(privateIp);
    if (previous !== undefined) this.disassociate(previous);
    const associationId = this.newId('eipassoc');
    address.association = { associationId, networkInterfaceId: eni.id, privateIp };
    const fa = this.fabricAddress(address);
    if (fa !== undefined) this.events.push({ kind: 'addressAssociated', address: fa });
    this.touch();
    return associationId;
  }

  /** DisassociateAddress. Idempotent: an association that existed and is gone succeeds again. */
  disassociateAddress(input: { associationId: string | undefined; publicIp: string | undefined }): void {
    if (input.associationId !== undefined) {
      const a = Object.values(this.state.addresses).find((x) => x.association?.associationId === input.associationId);
      if (a !== undefined) {
        this.disassociate(a);
        this.touch();
        return;
      }
      if (this.state.pastAssociations.includes(input.associationId)) return;
      throw awsErrors.associationNotFound(input.associationId);
    }
    if (input.publicIp !== undefined) {
      const a = Object.values(this.state.addresses).find((x) => x.publicIp === input.publicIp);
      if (a === undefined) throw awsErrors.addressNotFound(input.publicIp);
      if (a.association !== undefined) {
        this.disassociate(a);
        this.touch();
      }
      return;
    }
    throw awsErrors.missingParameter('AssociationId');
  }

  /** CreateTags: validates every resource and tag first, then applies all (all or nothing). */
  createTags(resourceIds: string[], tags: TagInput[]): void {
    if (resourceIds.length === 0) throw awsErrors.missingParameter('ResourceId');
    if (tags.length === 0) throw awsErrors.missingParameter('Tag');
    for (const id of resourceIds) {
      this.checkTaggable(id);
      this.checkTags(this.tagsOf(id), tags);
    }
    for (const id of resourceIds) {
      const current = (this.state.tags[id] ??= {});
      for (const t of tags) current[t.key] = t.value;
    }
    this.touch();
  }

  /** The resource type of a taggable ID (for DescribeTags), or the matching NotFound/InvalidID error. */
  checkTaggable(id: string): string {
    const prefix = id.slice(0, id.lastIndexOf('-'));
    switch (prefix) {
      case 'i':
        this.instance(id);
        return 'instance';
      case 'eni':
        this.eni(id);
        return 'network-interface';
      case 'subnet':
        this.subnet(id);
        return 'subnet';
      case 'vpc':
        if (!this.world.vpcs.some((v) => v.id === id)) throw new Ec2ApiError('InvalidVpcID.NotFound', `The vpc ID '${id}' does not exist`);
        return 'vpc';
      case 'sg':
        if (!this.world.securityGroups.some((g) => g.id === id)) throw new Ec2ApiError('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
        return 'security-group';
      case 'eipalloc':
        this.address(id);
        return 'elastic-ip';
      default:
        throw awsErrors.invalidId(id);
    }
  }
}
