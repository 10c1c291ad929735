import { createHash } from 'node:crypto';
import { stableHex } from './prng.js';
import type { World, WorldInstance } from './world.js';

/** An ENI's attachment to an instance. */
export interface EniAttachment {
  attachmentId: string;
  instanceId: string;
  deviceIndex: number;
  networkCardIndex: number;
  status: 'attaching' | 'attached' | 'detaching';
  /** ISO 8601 time of the AttachNetworkInterface call. */
  attachTime: string;
  deleteOnTermination: boolean;
  /** Epoch ms at which the current `attaching`/`detaching` phase ends. */
  completesAt: number | undefined;
}

/** An elastic network interface. */
export interface EniRecord {
  id: string;
  subnetId: string;
  vpcId: string;
  availabilityZone: string;
  description: string;
  macAddress: string;
  /** Private IPv4 addresses; index 0 is the primary, which never changes. */
  privateIps: string[];
  groups: string[];
  sourceDestCheck: boolean;
  status: 'available' | 'attaching' | 'in-use' | 'detaching';
  attachment: EniAttachment | undefined;
  /** The instance whose primary ENI this is (created with the instance, never detachable). */
  primaryOf: string | undefined;
  /**
   * Epoch ms from which the ENI's ID is known to every call (EC2's eventual consistency: right after
   * CreateNetworkInterface other calls may answer `InvalidNetworkInterfaceID.NotFound`). Absent: known.
   */
  visibleAt?: number;
}

/** An Elastic IP held by the account. */
export interface AddressRecord {
  allocationId: string;
  publicIp: string;
  association: { associationId: string; networkInterfaceId: string; privateIp: string } | undefined;
}

/** What a client token bought: CreateNetworkInterface's result, for idempotent retries. */
export interface ClientTokenRecord {
  action: string;
  /** The request's parameters, canonicalised, to detect reuse with different parameters. */
  params: string;
  networkInterfaceId: string;
  /** The ENI as it was last seen, to answer a retry after the ENI has been deleted. */
  snapshot: EniRecord;
  /** Epoch ms of first use; tokens are forgotten 24 h later. */
  at: number;
}

/** The emulator's whole mutable state (the world's topology is fixed; this is what the API changes). */
export interface SimState {
  format: 'egw-aws-sim-state/v1';
  /** Hash of the world's topology; a state file only loads against the world it was made with. */
  worldHash: string;
  seed: number;
  /** ISO 8601 time the world was first started (the instances' launch time). */
  createdAt: string;
  /** Counter behind generated IDs, so IDs stay unique across restarts. */
  idCounter: number;
  enis: Record<string, EniRecord>;
  addresses: Record<string, AddressRecord>;
  /** Tags of every taggable resource by ID (instances, ENIs, subnets, VPCs, groups, Elastic IPs). */
  tags: Record<string, Record<string, string>>;
  clientTokens: Record<string, ClientTokenRecord>;
  /** Association IDs that existed and were removed (DisassociateAddress is idempotent for them). */
  pastAssociations: string[];
  /** Terminated instances: ID → ISO 8601 time of TerminateInstances (absent in older state files). */
  terminated?: Record<string, string>;
  /** Counter behind seeded random address picks, so picks stay reproducible across restarts. */
  addressPicks?: number;
}

/** A stable hash of what the state depends on in the world (topology, not the realism knobs). */
export function worldHash(world: World): string {
  const topology = { ...world, sim: undefined };
  return createHash('sha256').update(JSON.stringify(topology)).digest('hex').slice(0, 16);
}

/** The primary ENI ID of an instance: from the world, or derived from the instance ID. */
export function primaryEniIdOf(instance: WorldInstance): string {
  return instance.primaryEniId ?? `eni-${stableHex(`primary-eni:${instance.id}`, 17)}`;
}

/** A locally administered unicast MAC derived from `seed` (AWS MACs of VPC ENIs start with 02 or 0a…). */
export function macFrom(seed: string): string {
  const hex = stableHex(`mac:${seed}`, 10);
  return ['02', ...(hex.match(/../g) ?? [])].join(':');
}

/** The state of a freshly started world: each instance with its primary ENI, Elastic IPs unassociated. */
export function initialState(world: World, seed: number, now: number): SimState {
  const enis: Record<string, EniRecord> = {};
  const tags: Record<string, Record<string, string>> = {};
  const subnets = new Map(world.subnets.map((s) => [s.id, s]));
  for (const v of world.vpcs) tags[v.id] = {};
  for (const s of world.subnets) tags[s.id] = { ...s.tags };
  for (const g of world.securityGroups) tags[g.id] = {};
  for (const inst of world.instances) {
    const subnet = subnets.get(inst.subnetId);
    if (subnet === undefined) continue;
    const eniId = primaryEniIdOf(inst);
    enis[eniId] = {
      id: eniId,
      subnetId: subnet.id,
      vpcId: subnet.vpcId,
      availabilityZone: subnet.availabilityZone,
      description: '',
      macAddress: inst.mac ?? macFrom(inst.id),
      privateIps: [inst.privateIp],
      groups: [...inst.securityGroups],
      sourceDestCheck: true,
      status: 'in-use',
      attachment: {
        attachmentId: `eni-attach-${stableHex(`primary-attach:${inst.id}`, 17)}`,
        instanceId: inst.id,
        deviceIndex: 0,
        networkCardIndex: 0,
        status: 'attached',
        attachTime: new Date(now).toISOString(),
        deleteOnTermination: true,
        completesAt: undefined,
      },
      primaryOf: inst.id,
    };
    tags[inst.id] = { ...inst.tags };
    tags[eniId] = {};
  }
  const addresses: Record<string, AddressRecord> = {};
  for (const e of world.elasticIps) {
    addresses[e.allocationId] = { allocationId: e.allocationId, publicIp: e.publicIp, association: undefined };
    tags[e.allocationId] = { ...e.tags };
  }
  return {
    format: 'egw-aws-sim-state/v1',
    worldHash: worldHash(world),
    seed,
    createdAt: new Date(now).toISOString(),
    idCounter: 0,
    enis,
    addresses,
    tags,
    clientTokens: {},
    pastAssociations: [],
  };
}
