/**
 * Shared fixtures of the fabric tests: an emulator world like the reference document's, started with its
 * IAM allow-list set to exactly `egw aws iam-policy`'s actions (so every fabric test also proves the
 * policy is enough), the real SDK adapter over HTTP, and a stateful in-memory host-IP allocator.
 */
import { SdkEc2 } from '../../src/aws/sdk-ec2.js';
import { iamPolicyActions } from '../../src/aws/iam-policy.js';
import type { FabricDesired, FabricReconciler, FabricReport, FabricWorkload, HostIpAllocator } from '../../src/aws/fabric-reconciler.js';
import { FakeClock, type Clock } from '../../src/platform/clock.js';
import type { InstanceFacts } from '../../src/aws/imds.js';
import { podOwner } from '../../src/aws/ownership.js';
import { startAwsSim } from '../../src/sim/aws/server.js';
import type { AwsSimHandle } from '../../src/sim/aws/server.js';
import type { SimDefinition, WorldDefinition } from '../../src/sim/aws/world.js';
import type { EniRecord } from '../../src/sim/aws/model.js';

export const VPC = 'vpc-0e1a2b3c4d5e6f708';
export const EGRESS_A = 'subnet-0a1b2c3d4e5f60718'; // 100.64.0.0/22, us-west-2a
export const EGRESS_B = 'subnet-0b2c3d4e5f6071829'; // 100.64.4.0/22, us-west-2b
export const NODES_A = 'subnet-0c3d4e5f607182930'; // 100.64.16.0/22, us-west-2a
export const NODES_B = 'subnet-0d4e5f60718293a41'; // 100.64.20.0/22, us-west-2b
export const SG = 'sg-0123456789abcdef0';
export const NODE_A1 = 'i-0a00000000000000a'; // t3.large, us-west-2a
export const NODE_A2 = 'i-0a00000000000000b'; // t3.large, us-west-2a
export const NODE_B1 = 'i-0b00000000000000a'; // t3.large, us-west-2b
export const EIP1 = { allocationId: 'eipalloc-0123456789abcdef0', publicIp: '203.0.113.7' };
export const EIP2 = { allocationId: 'eipalloc-0123456789abcdef1', publicIp: '203.0.113.8' };
export const EIP3 = { allocationId: 'eipalloc-0123456789abcdef2', publicIp: '203.0.113.9' };

/**
 * The emulator as unforgiving as AWS, in the fake clock's milliseconds (tests advance it): attachments
 * and detachments take seconds, Describe shows changes late, a new ENI is NotFound for a while, addresses
 * are random, and the token buckets are small, so throttling happens in small tests too.
 */
export const HARSH: SimDefinition = {
  attachLatencyMs: { fixed: 1500, jitter: 1000 },
  detachLatencyMs: { fixed: 1000, jitter: 1000 },
  describeLagMs: { fixed: 500, jitter: 1500 },
  createPropagationMs: { fixed: 500, jitter: 1500 },
  addressPick: 'random',
  // A tenth of AWS's buckets, and small ones for the calls every pass makes, so that a few gateways on one
  // node already meet RequestLimitExceeded (the crash test checks that they do).
  throttle: { scale: 0.1, buckets: { AttachNetworkInterface: { capacity: 2, refillPerSecond: 0.5 }, DescribeNetworkInterfaces: { capacity: 4, refillPerSecond: 1 } } },
};

/** The kind emulator (everything at once, lowest addresses, no throttling): for tests of exact call counts. */
export const KIND: SimDefinition = {
  attachLatencyMs: 0,
  detachLatencyMs: 0,
  describeLagMs: 0,
  createPropagationMs: 0,
  addressPick: 'lowest',
  throttle: false,
};

/** The start time of the tests' fake clocks. */
export const T0 = Date.parse('2025-01-01T00:00:00Z');

/** The reference document's two-zone VPC with three t3.large nodes and three Elastic IPs (harsh emulator by default). */
export function fabricWorld(sim: SimDefinition = {}): WorldDefinition {
  return {
    region: 'us-west-2',
    vpcs: [{ id: VPC, cidr: '100.64.0.0/16' }],
    subnets: [
      { id: EGRESS_A, vpcId: VPC, cidr: '100.64.0.0/22', availabilityZone: 'us-west-2a' },
      { id: EGRESS_B, vpcId: VPC, cidr: '100.64.4.0/22', availabilityZone: 'us-west-2b' },
      { id: NODES_A, vpcId: VPC, cidr: '100.64.16.0/22', availabilityZone: 'us-west-2a' },
      { id: NODES_B, vpcId: VPC, cidr: '100.64.20.0/22', availabilityZone: 'us-west-2b' },
    ],
    securityGroups: [{ id: SG, vpcId: VPC, name: 'cluster-nodes' }],
    instances: [
      { id: NODE_A1, type: 't3.large', subnetId: NODES_A, privateIp: '100.64.16.10', securityGroups: [SG] },
      { id: NODE_A2, type: 't3.large', subnetId: NODES_A, privateIp: '100.64.16.11', securityGroups: [SG] },
      { id: NODE_B1, type: 't3.large', subnetId: NODES_B, privateIp: '100.64.20.10', securityGroups: [SG] },
    ],
    elasticIps: [EIP1, EIP2, EIP3],
    sim: { seed: 11, latencyMs: 0, ...HARSH, allowActions: iamPolicyActions(), ...sim },
  };
}

/**
 * Starts the emulator on a free loopback port, on `clock` (share it with the reconcilers: the emulator's
 * delays, lag and token buckets run on it, and {@link converge} advances it).
 */
export async function startFabricSim(sim: SimDefinition = {}, world?: WorldDefinition, clock?: FakeClock): Promise<AwsSimHandle> {
  return startAwsSim({ world: world ?? fabricWorld(sim), listen: '127.0.0.1:0', ...(world === undefined ? {} : { sim }), ...(clock === undefined ? {} : { clock }) });
}

/** The real adapter, pointed at the emulator. */
export function sdkFor(sim: AwsSimHandle): SdkEc2 {
  return new SdkEc2({ region: 'us-west-2', endpoint: sim.url, credentials: { accessKeyId: 'AKIDEGWTEST', secretAccessKey: 'secret' } });
}

/** Instance facts as IMDS would give them. */
export function instanceFacts(sim: AwsSimHandle, instanceId: string): InstanceFacts {
  const inst = sim.world.instances.find((i) => i.id === instanceId)!;
  const subnet = sim.world.subnets.find((s) => s.id === inst.subnetId)!;
  const primary = Object.values(sim.state().state.enis).find((e) => e.primaryOf === instanceId)!;
  return { instanceId, instanceType: inst.type, availabilityZone: subnet.availabilityZone, region: 'us-west-2', localIpv4: inst.privateIp, primaryMac: primary.macAddress };
}

/** A workload as the agent derives it from a pod. */
export function workload(name: string, ip: string, subnetId: string, elasticIps: string[] = [], uid = `uid-${name}`): FabricWorkload {
  return { id: `default/${name}@${ip}`, pod: `default/${name}`, uid, ip, subnetId, owner: podOwner('default', name, uid), since: '2024-01-01T00:00:00.000Z', elasticIps };
}

/** A stateful host-secondary allocator: addresses from a range per subnet, idempotent per handle. */
export class FakeHostIps implements HostIpAllocator {
  readonly handles = new Map<string, { ip: string; subnetId: string; allocatedAt: string }>();
  constructor(
    private readonly ranges: Record<string, string[]>,
    private readonly now: () => number = () => Date.now(),
  ) {}

  async allocate(handle: string, subnetId: string): Promise<{ ip: string; allocatedAt: string }> {
    const held = this.handles.get(handle);
    if (held !== undefined) return { ip: held.ip, allocatedAt: held.allocatedAt };
    const used = new Set([...this.handles.values()].map((h) => h.ip));
    const ip = (this.ranges[subnetId] ?? []).find((a) => !used.has(a));
    if (ip === undefined) throw new Error(`no host address left in ${subnetId}`);
    const allocatedAt = new Date(this.now()).toISOString();
    this.handles.set(handle, { ip, subnetId, allocatedAt });
    return { ip, allocatedAt };
  }

  async release(handle: string): Promise<void> {
    this.handles.delete(handle);
  }

  async get(handle: string): Promise<{ ip: string; allocatedAt: string } | undefined> {
    const h = this.handles.get(handle);
    return h === undefined ? undefined : { ip: h.ip, allocatedAt: h.allocatedAt };
  }
}

/** Secondary ENIs (not primaries) in the emulator. */
export function secondaryEnis(sim: AwsSimHandle): EniRecord[] {
  return Object.values(sim.state().state.enis).filter((e) => e.primaryOf === undefined);
}

/** Elastic IP associations in the emulator: public IP → private IP. */
export function associations(sim: AwsSimHandle): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of Object.values(sim.state().state.addresses)) if (a.association !== undefined) out[a.publicIp] = a.association.privateIp;
  return out;
}

/** Mutating EC2 calls the emulator answered (any answer), by action. */
export function mutatingCalls(sim: AwsSimHandle): number {
  const reads = new Set(['DescribeInstanceTypes', 'DescribeNetworkInterfaces', 'DescribeSubnets', 'DescribeAddresses', 'DescribeInstances', 'DescribeTags']);
  return Object.entries(sim.state().stats.actions)
    .filter(([a]) => !reads.has(a))
    .reduce((n, [, c]) => n + c.calls, 0);
}

/** How far {@link converge} moves the fake clock between passes that wait for EC2 (attachments, lag, throttling). */
export const PASS_GAP_MS = 2_000;

/**
 * Passes until one changes nothing and waits for nothing (or `maxPasses`). The fake clock (`clock`, else
 * the reconciler's own when it is one) moves on between passes as the agent's loop would: to a timed
 * decision (GC cool-down, reassignment, EC2 catching up) when one is due, else by {@link PASS_GAP_MS}
 * while an attachment is in progress, a call failed or changes were made (the next read may lag).
 */
export async function converge(r: FabricReconciler, desired: FabricDesired, clock?: FakeClock, maxPasses = 40): Promise<FabricReport> {
  const fake = clock ?? (r.deps.clock instanceof FakeClock ? r.deps.clock : undefined);
  let last: FabricReport | undefined;
  for (let i = 0; i < maxPasses; i++) {
    last = await r.reconcile(desired);
    if (last.mutations === 0 && last.awaiting.length === 0 && last.wakeInMs === undefined && last.retry === 'none') return last;
    if (fake !== undefined) fake.advance(last.wakeInMs !== undefined ? last.wakeInMs + 1 : PASS_GAP_MS);
  }
  return last!;
}

/** The emulator's view of one node: its secondary ENIs (primary IP, secondaries, DoT, tags). */
export function nodeView(sim: AwsSimHandle, instanceId: string): { id: string; ips: string[]; deleteOnTermination: boolean; status: string; tags: Record<string, string> }[] {
  const dump = sim.state().state;
  return Object.values(dump.enis)
    .filter((e) => e.primaryOf === undefined && e.attachment?.instanceId === instanceId)
    .map((e) => ({ id: e.id, ips: [...e.privateIps], deleteOnTermination: e.attachment?.deleteOnTermination ?? false, status: e.status, tags: dump.tags[e.id] ?? {} }))
    .sort((a, b) => (a.ips[0]! < b.ips[0]! ? -1 : 1));
}

/** Successful calls of one action. */
export function okCalls(sim: AwsSimHandle, action: string): number {
  return sim.state().stats.actions[action]?.ok ?? 0;
}

/**
 * Passes (moving the fake clock on as {@link converge} does) until a report satisfies `until`; the
 * harsh emulator may need a few passes before EC2 answers what a test waits for. Fails after `maxPasses`.
 */
export async function passUntil(r: FabricReconciler, desired: FabricDesired, until: (report: FabricReport) => boolean, maxPasses = 15): Promise<FabricReport> {
  const fake = r.deps.clock instanceof FakeClock ? r.deps.clock : undefined;
  let last: FabricReport | undefined;
  for (let i = 0; i < maxPasses; i++) {
    last = await r.reconcile(desired);
    if (until(last)) return last;
    fake?.advance(last.wakeInMs !== undefined ? Math.min(last.wakeInMs + 1, PASS_GAP_MS) : PASS_GAP_MS);
  }
  throw new Error(`no pass satisfied the condition; last report: ${JSON.stringify(last?.workloads)}`);
}

/**
 * A clock for `ResilientEc2` in fake-time tests: its backoff sleeps move the shared fake clock on at once,
 * so the emulator's token buckets refill while it waits, as they would in real time.
 */
export function skippingClock(fake: FakeClock): Clock {
  return {
    now: () => fake.now(),
    sleep: async (ms: number) => {
      fake.advance(ms);
    },
  };
}
