/**
 * Benchmark `ec2-calls`: the mutating EC2 calls the fabric reconciler makes to place and to remove one
 * gateway, by mode, measured in the emulator's own call counters (every request it received), against
 * the minimum the API allows:
 *
 * - ENI-per-workload: CreateNetworkInterface (tags at creation) + AttachNetworkInterface +
 *   ModifyNetworkInterfaceAttribute (DeleteOnTermination) = 3; removal DetachNetworkInterface +
 *   DeleteNetworkInterface = 2;
 * - Secondary-IP-per-workload on a node whose ENI has room: AssignPrivateIpAddresses = 1; removal
 *   UnassignPrivateIpAddresses = 1; the first gateway of a subnet (no ENI yet): CreateNetworkInterface
 *   with the gateway's address as a secondary at creation (`PrivateIpAddresses.N`) + attach +
 *   DeleteOnTermination = 3 (the IPAM host address is no EC2 call).
 *
 * Then 30 gateways placed on 10 nodes with 20 % of all EC2 calls answered `RequestLimitExceeded`
 * (`callsPerGatewayThrottled`: requests per gateway, throttled ones included; goal within 2× the
 * minimum). Latencies are 0 here: this counts calls, it does not time them (see `aws-converge`).
 */
import { FabricReconciler } from '../src/aws/fabric-reconciler.js';
import type { FabricDesired, FabricReport, FabricWorkload, HostIpAllocator } from '../src/aws/fabric-reconciler.js';
import { iamPolicyActions } from '../src/aws/iam-policy.js';
import { podOwner } from '../src/aws/ownership.js';
import { ResilientEc2 } from '../src/aws/resilient-ec2.js';
import { SdkEc2 } from '../src/aws/sdk-ec2.js';
import { FakeClock, SystemClock } from '../src/platform/clock.js';
import { startAwsSim } from '../src/sim/aws/server.js';
import type { AwsSimHandle } from '../src/sim/aws/server.js';
import type { SimDefinition, WorldDefinition } from '../src/sim/aws/world.js';
import type { Benchmark, Figures } from './harness.js';
import { printTable, round } from './harness.js';

const VPC = 'vpc-0e1a2b3c4d5e6f708';
const SG = 'sg-0123456789abcdef0';
/** The egress subnets of the reference document, one per zone. */
export const BENCH_EGRESS = ['subnet-0a1b2c3d4e5f60718', 'subnet-0b2c3d4e5f6071829'] as const;
const NODE_SUBNETS = ['subnet-0c3d4e5f607182930', 'subnet-0d4e5f60718293a41'] as const;
const ZONES = ['us-west-2a', 'us-west-2b'] as const;

/** The reference document's VPC with `nodes` instances spread over two zones. */
export function benchWorld(nodes: number, type: string, sim: SimDefinition): WorldDefinition {
  return {
    region: 'us-west-2',
    vpcs: [{ id: VPC, cidr: '100.64.0.0/16' }],
    subnets: [
      { id: BENCH_EGRESS[0], vpcId: VPC, cidr: '100.64.0.0/22', availabilityZone: ZONES[0] },
      { id: BENCH_EGRESS[1], vpcId: VPC, cidr: '100.64.4.0/22', availabilityZone: ZONES[1] },
      { id: NODE_SUBNETS[0], vpcId: VPC, cidr: '100.64.16.0/22', availabilityZone: ZONES[0] },
      { id: NODE_SUBNETS[1], vpcId: VPC, cidr: '100.64.20.0/22', availabilityZone: ZONES[1] },
    ],
    securityGroups: [{ id: SG, vpcId: VPC, name: 'cluster-nodes' }],
    instances: Array.from({ length: nodes }, (_, i) => ({
      id: benchInstance(i),
      type,
      subnetId: NODE_SUBNETS[i % 2]!,
      privateIp: `100.64.${16 + (i % 2) * 4}.${10 + Math.floor(i / 2)}`,
      securityGroups: [SG],
    })),
    elasticIps: [],
    sim: { seed: 17, allowActions: iamPolicyActions(), ...sim },
  };
}

/** Instance ID of bench node `i`. */
export function benchInstance(i: number): string {
  return `i-0${(0x1000 + i).toString(16).padStart(16, '0')}`;
}

/** Zone index of bench node `i`. */
export function benchZone(i: number): 0 | 1 {
  return (i % 2) as 0 | 1;
}

/** The `k`-th gateway address in zone `z` (inside the egress subnet, past its reserved addresses). */
export function benchGatewayIp(z: 0 | 1, k: number): string {
  return `100.64.${z * 4 + Math.floor((k + 16) / 256)}.${(k + 16) % 256}`;
}

function gateway(name: string, ip: string, subnetId: string): FabricWorkload {
  return { id: `default/${name}@${ip}`, pod: `default/${name}`, uid: `uid-${name}`, ip, subnetId, owner: podOwner('default', name, `uid-${name}`), since: '2025-01-01T00:00:00.000Z', elasticIps: [] };
}

/** A host-secondary allocator for the benchmark (the component uses IPAM; here only counts matter). */
class BenchHostIps implements HostIpAllocator {
  private readonly held = new Map<string, string>();
  private next = 0;
  async allocate(handle: string, subnetId: string): Promise<{ ip: string; allocatedAt: string }> {
    let ip = this.held.get(handle);
    if (ip === undefined) {
      const z = subnetId === BENCH_EGRESS[0] ? 0 : 4;
      ip = `100.64.${z + 3}.${200 + this.next++}`;
      this.held.set(handle, ip);
    }
    return { ip, allocatedAt: '2025-01-01T00:00:00.000Z' };
  }
  async release(handle: string): Promise<void> {
    this.held.delete(handle);
  }
  async get(handle: string): Promise<{ ip: string; allocatedAt: string } | undefined> {
    const ip = this.held.get(handle);
    return ip === undefined ? undefined : { ip, allocatedAt: '2025-01-01T00:00:00.000Z' };
  }
}

const READS = new Set(['DescribeInstanceTypes', 'DescribeNetworkInterfaces', 'DescribeSubnets', 'DescribeAddresses']);

/** Requests of mutating actions the emulator received (answered or refused). */
function mutating(sim: AwsSimHandle): number {
  return Object.entries(sim.state().stats.actions)
    .filter(([a]) => !READS.has(a))
    .reduce((n, [, c]) => n + c.calls, 0);
}

interface Lab {
  sim: AwsSimHandle;
  reconcilers: FabricReconciler[];
  clock: FakeClock;
  close(): Promise<void>;
}

async function lab(nodes: number, type: string, sim: SimDefinition): Promise<Lab> {
  // The minimum is a property of an EC2 that answers at once: no lag, no NotFound after creation, no
  // delays (the reconciler's tests cover the harsh emulator; here only calls are counted).
  const kind: SimDefinition = { latencyMs: 0, attachLatencyMs: 0, detachLatencyMs: 0, describeLagMs: 0, createPropagationMs: 0, throttle: false };
  const handle = await startAwsSim({ world: benchWorld(nodes, type, { ...kind, ...sim }), listen: '127.0.0.1:0' });
  const raw = new SdkEc2({ region: 'us-west-2', endpoint: handle.url, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  const ec2 = new ResilientEc2(raw, { clock: new SystemClock() }, { retryBaseMs: 2, throttleBaseMs: 4, maxBackoffMs: 50, maxAttempts: 12 });
  const clock = new FakeClock(Date.parse('2025-01-01T00:00:00Z'));
  const hostIps = new BenchHostIps();
  const dump = handle.state();
  const reconcilers = dump.world.instances.map((inst, i) => {
    const primary = Object.values(dump.state.enis).find((e) => e.primaryOf === inst.id)!;
    return new FabricReconciler(
      { ec2, clock, hostIps },
      { cluster: 'bench', node: `node-${i}`, instance: { instanceId: inst.id, instanceType: inst.type, availabilityZone: ZONES[benchZone(i)], region: 'us-west-2', localIpv4: inst.privateIp, primaryMac: primary.macAddress } },
    );
  });
  return {
    sim: handle,
    reconcilers,
    clock,
    close: async () => {
      raw.destroy();
      await handle.close();
    },
  };
}

async function settle(r: FabricReconciler, desired: FabricDesired): Promise<FabricReport> {
  let report = await r.reconcile(desired);
  for (let i = 0; i < 30 && (report.mutations > 0 || report.awaiting.length > 0 || report.retry !== 'none'); i++) report = await r.reconcile(desired);
  return report;
}

/** Mutating calls of placing `gw` (after `before` is in place), and of removing it again. */
async function placeAndRemove(mode: FabricDesired['mode'], before: FabricWorkload[], gw: FabricWorkload): Promise<{ place: number; remove: number; setup: number }> {
  const l = await lab(1, 't3.large', {});
  try {
    const r = l.reconcilers[0]!;
    const d = (ws: FabricWorkload[]): FabricDesired => ({ mode, workloads: ws, allowRemovals: true, hostSubnets: [BENCH_EGRESS[0]] });
    await settle(r, d(before));
    const setup = mutating(l.sim);
    await settle(r, d([...before, gw]));
    const placed = mutating(l.sim);
    await settle(r, d(before));
    return { setup, place: placed - setup, remove: mutating(l.sim) - placed };
  } finally {
    await l.close();
  }
}

export const ec2CallsBenchmark: Benchmark = {
  name: 'ec2-calls',
  description: 'mutating EC2 calls to place / remove one gateway by mode, against the API minimum; placement under 20% throttling',
  async run(): Promise<Figures> {
    const subnet = BENCH_EGRESS[0];
    const eni = await placeAndRemove('EnabledENIPerWorkload', [], gateway('gw1', benchGatewayIp(0, 0), subnet));
    const firstShared = await placeAndRemove('Enabled', [], gateway('gw1', benchGatewayIp(0, 0), subnet));
    const shared = await placeAndRemove('Enabled', [gateway('gw0', benchGatewayIp(0, 1), subnet)], gateway('gw1', benchGatewayIp(0, 0), subnet));

    // 30 gateways on 10 nodes (m5.xlarge: 3 secondary ENIs each), 20 % of calls throttled.
    const nodes = 10;
    const perNode = 3;
    const throttled = await lab(nodes, 'm5.xlarge', { failureRate: 0.2, failureKinds: ['RequestLimitExceeded'], seed: 23 });
    let gateways = 0;
    let ready = 0;
    try {
      const counters = [0, 0];
      await Promise.all(
        throttled.reconcilers.map(async (r, i) => {
          const z = benchZone(i);
          const ws = Array.from({ length: perNode }, () => {
            const k = counters[z]!++;
            return gateway(`gw-${i}-${k}`, benchGatewayIp(z, k), BENCH_EGRESS[z]);
          });
          gateways += ws.length;
          const report = await settle(r, { mode: 'EnabledENIPerWorkload', workloads: ws, allowRemovals: true });
          ready += report.workloads.filter((w) => w.state === 'Ready').length;
        }),
      );
    } finally {
      await throttled.close();
    }
    const dump = throttled.sim.state();
    const throttledRequests = Object.values(dump.stats.actions).reduce((n, c) => n + (c.errors['RequestLimitExceeded'] ?? 0), 0);
    const perGatewayThrottled = mutating(throttled.sim) / gateways;

    printTable(
      'mutating EC2 calls per gateway (emulator counters)',
      ['case', 'measured', 'API minimum'],
      [
        ['ENI-per-workload: place', eni.place, 3],
        ['ENI-per-workload: remove', eni.remove, 2],
        ['Secondary-IP: place, ENI with room', shared.place, 1],
        ['Secondary-IP: remove', shared.remove, 1],
        ['Secondary-IP: first gateway (new ENI)', firstShared.place, 3],
        ['ENI-per-workload, 20% throttled: place', round(perGatewayThrottled, 3), 3],
      ],
    );
    printTable('throttled run', ['gateways', 'ready', 'requests throttled', 'mutating requests'], [[gateways, ready, throttledRequests, mutating(throttled.sim)]]);
    return {
      callsPerGatewayEniMode: eni.place,
      minimumEniMode: 3,
      callsPerGatewaySecondaryIpMode: shared.place,
      minimumSecondaryIpMode: 1,
      removeCallsEniMode: eni.remove,
      removeCallsSecondaryIpMode: shared.remove,
      callsFirstGatewaySecondaryIpMode: firstShared.place,
      minimumFirstGatewaySecondaryIpMode: 3,
      callsPerGatewayThrottled: round(perGatewayThrottled, 3),
      throttledWithin2x: perGatewayThrottled <= 6,
      throttledGatewaysReady: ready,
      throttledGateways: gateways,
      throttledRequests,
    };
  },
};
