import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FabricReconciler } from '../../src/aws/fabric-reconciler.js';
import type { FabricDesired, FabricWorkload } from '../../src/aws/fabric-reconciler.js';
import { hostHandle } from '../../src/aws/ownership.js';
import type { SdkEc2 } from '../../src/aws/sdk-ec2.js';
import { FakeClock } from '../../src/platform/clock.js';
import type { AwsSimHandle } from '../../src/sim/aws/server.js';
import { converge, EGRESS_A, FakeHostIps, instanceFacts, mutatingCalls, KIND, NODE_A1, NODE_A2, nodeView, okCalls, passUntil, sdkFor, secondaryEnis, startFabricSim, T0, workload } from './helpers.js';

const HOST_IPS = ['100.64.3.240', '100.64.3.241', '100.64.3.242', '100.64.3.243'];
const secondary = (workloads: readonly FabricWorkload[], allowRemovals = true): FabricDesired => ({ mode: 'Enabled', workloads, allowRemovals, hostSubnets: [EGRESS_A] });
const gateways = (n: number, from = 10): FabricWorkload[] => Array.from({ length: n }, (_, i) => workload(`gw${from + i}`, `100.64.0.${from + i}`, EGRESS_A));

describe('fabric reconciler, Secondary-IP-per-workload mode (emulator over HTTP)', () => {
  let sim: AwsSimHandle;
  let ec2: SdkEc2;
  let clock: FakeClock;
  let hostIps: FakeHostIps;
  const reconciler = (node = 'node-a1', instance = NODE_A1): FabricReconciler =>
    new FabricReconciler({ ec2, clock, hostIps }, { cluster: 'test', node, instance: instanceFacts(sim, instance), gcCooldownMs: 30_000 });

  beforeEach(async () => {
    clock = new FakeClock(T0);
    sim = await startFabricSim({}, undefined, clock);
    ec2 = sdkFor(sim);
    hostIps = new FakeHostIps({ [EGRESS_A]: HOST_IPS }, () => clock.now());
  });
  afterEach(async () => {
    ec2.destroy();
    await sim.close();
  });
  /** The minimum calls need an EC2 that answers at once: restart on the kind emulator. */
  const kind = async (): Promise<void> => {
    ec2.destroy();
    await sim.close();
    sim = await startFabricSim(KIND, undefined, clock);
    ec2 = sdkFor(sim);
  };

  it('makes the first ENI for the first gateway (host IP from IPAM as its primary, the gateway at creation: 3 calls), then places the next with one assign', async () => {
    await kind();
    const r = reconciler();
    const pass = await r.reconcile(secondary(gateways(1)));
    expect(pass.mutations).toBe(3);
    expect(Object.keys(sim.state().stats.actions).filter((a) => !a.startsWith('Describe')).sort()).toEqual(['AttachNetworkInterface', 'CreateNetworkInterface', 'ModifyNetworkInterfaceAttribute']);
    const first = await converge(r, secondary(gateways(1)));
    expect(first.workloads[0]).toMatchObject({ state: 'Ready' });
    const [eni] = nodeView(sim, NODE_A1);
    expect(eni).toMatchObject({ ips: ['100.64.3.240', '100.64.0.10'], deleteOnTermination: true });
    expect(eni!.tags).toMatchObject({ 'egw:mode': 'secondary-ip', 'egw:owner': `ipam/${hostHandle('node-a1', EGRESS_A, 1)}`, 'calico:use': 'secondary' });
    expect([...hostIps.handles.keys()]).toEqual([hostHandle('node-a1', EGRESS_A, 1)]);
    const before = mutatingCalls(sim);
    const second = await r.reconcile(secondary(gateways(2)));
    expect(second.mutations).toBe(1);
    expect(mutatingCalls(sim) - before).toBe(1);
    expect(second.workloads.map((w) => w.state)).toEqual(['Ready', 'Ready']);
    expect(nodeView(sim, NODE_A1).map((e) => e.ips)).toEqual([['100.64.3.240', '100.64.0.10', '100.64.0.11']]);
  });

  it('fills an ENI before making the next (t3.large: 11 workloads per ENI), and reports NoCapacity beyond 22', async () => {
    const r = reconciler();
    const report = await converge(r, secondary(gateways(23)));
    const view = nodeView(sim, NODE_A1);
    expect(view.map((e) => e.ips.length)).toEqual([12, 12]);
    expect(view.map((e) => e.ips[0])).toEqual(['100.64.3.240', '100.64.3.241']);
    expect(report.workloads.filter((w) => w.state === 'Ready')).toHaveLength(22);
    expect(report.workloads.filter((w) => w.reason === 'NoCapacity').map((w) => w.ip)).toEqual(['100.64.0.32']);
    expect(secondaryEnis(sim)).toHaveLength(2);
  });

  it('converges on the harsh emulator too: the first gateway rides on the new ENI, nothing made twice', async () => {
    const r = reconciler();
    const first = await converge(r, secondary(gateways(3)));
    expect(first.workloads.map((w) => w.state)).toEqual(['Ready', 'Ready', 'Ready']);
    expect(nodeView(sim, NODE_A1).map((e) => e.ips)).toEqual([['100.64.3.240', '100.64.0.10', '100.64.0.11', '100.64.0.12']]);
    expect(sim.state().stats.actions['AssignPrivateIpAddresses']).toBeUndefined();
  });

  it('unassigns the address of a workload that goes and keeps the ENI for the next one', async () => {
    const r = reconciler();
    await converge(r, secondary(gateways(3)));
    const before = mutatingCalls(sim);
    await converge(r, secondary(gateways(2)));
    // One unassign; a read that lags may cost a repeat EC2 refuses (not assigned), never a wrong removal.
    expect(mutatingCalls(sim) - before).toBeGreaterThanOrEqual(1);
    expect(okCalls(sim, 'UnassignPrivateIpAddresses')).toBe(1);
    expect(nodeView(sim, NODE_A1).map((e) => e.ips)).toEqual([['100.64.3.240', '100.64.0.10', '100.64.0.11']]);
    await converge(r, secondary([]));
    expect(nodeView(sim, NODE_A1).map((e) => e.ips)).toEqual([['100.64.3.240']]);
    const again = await converge(r, secondary(gateways(1, 40)));
    expect(again.workloads[0]).toMatchObject({ state: 'Ready' });
    expect(secondaryEnis(sim)).toHaveLength(1);
    expect(hostIps.handles.size).toBe(1);
  });

  it('moves a gateway between nodes: the new node takes the address once the old one unassigns it', async () => {
    const a1 = reconciler('node-a1', NODE_A1);
    const a2 = reconciler('node-a2', NODE_A2);
    await converge(a1, secondary(gateways(2)));
    const [moving, staying] = gateways(2);
    const early = await passUntil(a2, secondary([moving!]), (r) => r.workloads[0]?.reason === 'AddressInUse');
    expect(early.workloads[0]).toMatchObject({ state: 'Pending', reason: 'AddressInUse' });
    await converge(a1, secondary([staying!]));
    const report = await converge(a2, secondary([moving!]));
    expect(report.workloads[0]).toMatchObject({ state: 'Ready' });
    expect(nodeView(sim, NODE_A1).map((e) => e.ips.slice(1))).toEqual([['100.64.0.11']]);
    expect(nodeView(sim, NODE_A2).map((e) => e.ips.slice(1))).toEqual([['100.64.0.10']]);
  });

  it('takes an address over from a stale holder after the reassignment delay (IPAM is the authority)', async () => {
    const a1 = reconciler('node-a1', NODE_A1);
    await converge(a1, secondary(gateways(1)));
    // node-a1's agent is dead: it never unassigns. node-a2 waits, then reassigns.
    const a2 = new FabricReconciler({ ec2, clock, hostIps }, { cluster: 'test', node: 'node-a2', instance: instanceFacts(sim, NODE_A2), reassignAfterMs: 5_000 });
    const waiting = await passUntil(a2, secondary(gateways(1)), (r) => r.workloads[0]?.reason === 'AddressInUse');
    expect(waiting.workloads[0]).toMatchObject({ state: 'Pending', reason: 'AddressInUse' });
    expect(waiting.wakeInMs).toBeGreaterThan(0);
    expect(waiting.wakeInMs).toBeLessThanOrEqual(5_000);
    const report = await converge(a2, secondary(gateways(1)), clock);
    expect(report.workloads[0]).toMatchObject({ state: 'Ready' });
    expect(nodeView(sim, NODE_A2).map((e) => e.ips.slice(1))).toEqual([['100.64.0.10']]);
    expect(nodeView(sim, NODE_A1).map((e) => e.ips.slice(1))).toEqual([[]]);
  });

  it('an address-in-use sighting is forgotten once no workload wants the address (the map returns to zero)', async () => {
    const a1 = reconciler('node-a1', NODE_A1);
    await converge(a1, secondary(gateways(3)));
    // node-a2 waits for three addresses node-a1 still holds, then the three pods are deleted.
    const a2 = new FabricReconciler({ ec2, clock, hostIps }, { cluster: 'test', node: 'node-a2', instance: instanceFacts(sim, NODE_A2), reassignAfterMs: 600_000 });
    await passUntil(a2, secondary(gateways(3)), (r) => r.workloads.every((w) => w.reason === 'AddressInUse'));
    expect(a2.inUseSince.size).toBe(3);
    // (A pass whose read failed — the emulator throttles — keeps everything: it knows nothing new.)
    await passUntil(a2, secondary(gateways(1)), (r) => r.stale !== true);
    expect([...a2.inUseSince.keys()]).toEqual(['100.64.0.10']);
    await passUntil(a2, secondary([]), (r) => r.stale !== true);
    expect(a2.inUseSince.size).toBe(0);
  });

  it('switching to ENI-per-workload removes the shared ENIs (and releases their host addresses), then places one ENI per workload', async () => {
    const r = reconciler();
    await converge(r, secondary(gateways(2)));
    const report = await converge(r, { mode: 'EnabledENIPerWorkload', workloads: gateways(2), allowRemovals: true }, clock);
    expect(report.workloads.map((w) => w.state)).toEqual(['Ready', 'Ready']);
    expect(nodeView(sim, NODE_A1).map((e) => e.ips)).toEqual([['100.64.0.10'], ['100.64.0.11']]);
    expect(hostIps.handles.size).toBe(0);
    expect(secondaryEnis(sim)).toHaveLength(2);
  });

  it('releases a host address no ENI uses (a crash between allocation and create) only after the cool-down', async () => {
    await hostIps.allocate(hostHandle('node-a1', EGRESS_A, 2), EGRESS_A);
    const r = reconciler();
    const first = await r.reconcile(secondary([]));
    expect(first.wakeInMs).toBe(30_000);
    expect(hostIps.handles.size).toBe(1);
    await converge(r, secondary([]), clock);
    expect(hostIps.handles.size).toBe(0);
  });
});
