import { AttachNetworkInterfaceCommand, CreateNetworkInterfaceCommand, EC2Client, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { iamPolicyActions } from '../../src/aws/iam-policy.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FabricReconciler } from '../../src/aws/fabric-reconciler.js';
import type { FabricDesired } from '../../src/aws/fabric-reconciler.js';
import type { SdkEc2 } from '../../src/aws/sdk-ec2.js';
import { FakeClock } from '../../src/platform/clock.js';
import type { AwsSimHandle } from '../../src/sim/aws/server.js';
import { associations, converge, EGRESS_A, EGRESS_B, EIP1, instanceFacts, mutatingCalls, NODE_A1, KIND, NODE_A2, nodeView, okCalls, sdkFor, secondaryEnis, SG, startFabricSim, T0, workload } from './helpers.js';

const eniMode = (workloads: FabricDesired['workloads'], allowRemovals = true): FabricDesired => ({ mode: 'EnabledENIPerWorkload', workloads, allowRemovals });

describe('fabric reconciler, ENI-per-workload mode (emulator over HTTP)', () => {
  let sim: AwsSimHandle;
  let ec2: SdkEc2;
  let clock: FakeClock;
  const reconciler = (node: string, instance: string, gcCooldownMs = 60_000): FabricReconciler =>
    new FabricReconciler({ ec2, clock }, { cluster: 'test', node, instance: instanceFacts(sim, instance), gcCooldownMs });

  beforeEach(async () => {
    clock = new FakeClock(T0);
    sim = await startFabricSim({}, undefined, clock);
    ec2 = sdkFor(sim);
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

  it('places a gateway on its own ENI with three mutating calls: created with tags and the workload IP, attached, DeleteOnTermination', async () => {
    await kind();
    const r = reconciler('node-a1', NODE_A1);
    const gw = workload('gw1', '100.64.0.5', EGRESS_A);
    const first = await r.reconcile(eniMode([gw]));
    expect(first.mutations).toBe(3);
    expect(mutatingCalls(sim)).toBe(3);
    const report = await converge(r, eniMode([gw]));
    expect(report.workloads).toEqual([expect.objectContaining({ state: 'Ready', ip: '100.64.0.5' })]);
    const [eni, ...rest] = nodeView(sim, NODE_A1);
    expect(rest).toEqual([]);
    expect(eni).toMatchObject({ ips: ['100.64.0.5'], deleteOnTermination: true, status: 'in-use' });
    expect(eni!.tags).toMatchObject({
      'calico:use': 'secondary',
      'calico:instance': NODE_A1,
      'egw:cluster': 'test',
      'egw:node': 'node-a1',
      'egw:mode': 'eni-per-workload',
      'egw:owner': 'pod/default/gw1/uid-gw1',
      'egw:created-at': gw.since,
    });
    const record = sim.state().state.enis[eni!.id]!;
    expect(record.subnetId).toBe(EGRESS_A);
    expect(record.groups).toEqual([SG]);
    expect(record.attachment?.deviceIndex).toBe(1);
    expect(report.interfaces).toEqual([{ networkInterfaceId: eni!.id, mac: record.macAddress, subnetCidr: '100.64.0.0/22', workloadIps: ['100.64.0.5'] }]);
    // Level-triggered: more passes change nothing.
    const before = mutatingCalls(sim);
    expect((await r.reconcile(eniMode([gw]))).mutations).toBe(0);
    expect(mutatingCalls(sim)).toBe(before);
    expect(okCalls(sim, 'CreateNetworkInterface')).toBe(1);
  });

  it('removes the ENI when its workload goes (detach, then delete), and frees the address', async () => {
    const r = reconciler('node-a1', NODE_A1);
    await converge(r, eniMode([workload('gw1', '100.64.0.5', EGRESS_A), workload('gw2', '100.64.0.6', EGRESS_A)]));
    expect(nodeView(sim, NODE_A1).map((e) => e.ips[0])).toEqual(['100.64.0.5', '100.64.0.6']);
    const before = mutatingCalls(sim);
    await converge(r, eniMode([workload('gw2', '100.64.0.6', EGRESS_A)]));
    // Detach and delete; EC2's lag may cost a repeat that changes nothing (an idempotent detach, a delete
    // of an ENI still detaching), never a second removal.
    expect(mutatingCalls(sim) - before).toBeGreaterThanOrEqual(2);
    expect(okCalls(sim, 'DetachNetworkInterface')).toBeGreaterThanOrEqual(1);
    expect(okCalls(sim, 'DeleteNetworkInterface')).toBeGreaterThanOrEqual(1);
    expect(secondaryEnis(sim).map((e) => e.privateIps[0])).toEqual(['100.64.0.6']);
    await converge(r, eniMode([]));
    expect(secondaryEnis(sim)).toEqual([]);
  });

  it('moves a gateway to another node: the new node waits for the address, then takes it', async () => {
    const a1 = reconciler('node-a1', NODE_A1);
    const a2 = reconciler('node-a2', NODE_A2);
    const gw = workload('gw1', '100.64.0.5', EGRESS_A);
    await converge(a1, eniMode([gw]));
    // The pod is rescheduled with the same address before node-a1 has let go of it.
    const moved = { ...gw, uid: 'uid-gw1-new', owner: 'pod/default/gw1/uid-gw1-new' };
    const early = await a2.reconcile(eniMode([moved]));
    expect(early.workloads[0]).toMatchObject({ state: 'Pending', reason: 'AddressInUse' });
    await converge(a1, eniMode([]));
    const report = await converge(a2, eniMode([moved]));
    expect(report.workloads[0]).toMatchObject({ state: 'Ready' });
    expect(nodeView(sim, NODE_A1)).toEqual([]);
    expect(nodeView(sim, NODE_A2).map((e) => e.ips)).toEqual([['100.64.0.5']]);
    expect(secondaryEnis(sim)).toHaveLength(1);
  });

  it('never exceeds the instance: a third gateway on a t3.large is reported NoCapacity and nothing is created for it', async () => {
    const r = reconciler('node-a1', NODE_A1);
    const report = await converge(r, eniMode([workload('gw1', '100.64.0.5', EGRESS_A), workload('gw2', '100.64.0.6', EGRESS_A), workload('gw3', '100.64.0.7', EGRESS_A)]));
    expect(report.workloads.map((w) => [w.ip, w.state, w.reason])).toEqual([
      ['100.64.0.5', 'Ready', 'Ready'],
      ['100.64.0.6', 'Ready', 'Ready'],
      ['100.64.0.7', 'Failed', 'NoCapacity'],
    ]);
    // Nothing for the third: two ENIs (a ClientToken retry under EC2's lag returns the same one), and no
    // attach beyond the instance's limit.
    expect(secondaryEnis(sim).map((e) => e.privateIps[0]).sort()).toEqual(['100.64.0.5', '100.64.0.6']);
    expect(sim.state().stats.actions['AttachNetworkInterface']?.errors['AttachmentLimitExceeded']).toBeUndefined();
  });

  it("a terminated node's ENIs go with it (DeleteOnTermination), so its gateway's address and Elastic IP are free for the new node", async () => {
    // The test terminates an instance itself (not an action of egw's policy).
    ec2.destroy();
    await sim.close();
    sim = await startFabricSim({ allowActions: [...iamPolicyActions(), 'ec2:TerminateInstances'] }, undefined, clock);
    ec2 = sdkFor(sim);
    const gw = workload('gw1', '100.64.0.5', EGRESS_A, [EIP1.publicIp]);
    expect((await converge(reconciler('node-a1', NODE_A1), eniMode([gw]))).workloads[0]).toMatchObject({ state: 'Ready', elasticIp: EIP1.publicIp });
    const raw = new EC2Client({ endpoint: sim.url, region: 'us-west-2', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    await raw.send(new TerminateInstancesCommand({ InstanceIds: [NODE_A1] }));
    raw.destroy();
    expect(associations(sim)).toEqual({});
    // The pod comes back on node-a2 with the same address: no AddressInUse wait, no leak to collect.
    const moved = { ...gw, uid: 'uid-gw1-new', owner: 'pod/default/gw1/uid-gw1-new' };
    const a2 = reconciler('node-a2', NODE_A2);
    const report = await converge(a2, eniMode([moved]));
    expect(report.workloads[0]).toMatchObject({ state: 'Ready', elasticIp: EIP1.publicIp });
    expect(secondaryEnis(sim).map((e) => [e.privateIps[0], e.attachment?.instanceId])).toEqual([['100.64.0.5', NODE_A2]]);
    expect(sim.state().stats.actions['CreateNetworkInterface']?.errors['InvalidIPAddress.InUse']).toBeUndefined();
  });

  it('refuses a workload whose subnet is in another zone without calling EC2 for it', async () => {
    const r = reconciler('node-a1', NODE_A1);
    const report = await converge(r, eniMode([workload('gw1', '100.64.4.5', EGRESS_B)]));
    expect(report.workloads[0]).toMatchObject({ state: 'Failed', reason: 'WrongAvailabilityZone' });
    expect(mutatingCalls(sim)).toBe(0);
  });

  it("leaves other tools' and other clusters' ENIs alone and counts them as foreign", async () => {
    const raw = new EC2Client({ endpoint: sim.url, region: 'us-west-2', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const foreign = (await raw.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.50' }))).NetworkInterface!.NetworkInterfaceId!;
    clock.advance(5_000); // a new ENI's ID takes a while to propagate
    await raw.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: foreign, InstanceId: NODE_A1, DeviceIndex: 1 }));
    const otherCluster = (
      await raw.send(
        new CreateNetworkInterfaceCommand({
          SubnetId: EGRESS_A,
          PrivateIpAddress: '100.64.0.51',
          TagSpecifications: [{ ResourceType: 'network-interface', Tags: [{ Key: 'calico:use', Value: 'secondary' }, { Key: 'calico:instance', Value: NODE_A1 }, { Key: 'egw:cluster', Value: 'other' }, { Key: 'egw:mode', Value: 'eni-per-workload' }] }],
        }),
      )
    ).NetworkInterface!.NetworkInterfaceId!;
    raw.destroy();
    clock.advance(5_000); // their IDs propagate, the foreign attachment completes
    const r = reconciler('node-a1', NODE_A1, 0);
    const report = await converge(r, eniMode([workload('gw1', '100.64.0.5', EGRESS_A)]), clock);
    expect(report.foreignEnis).toBe(1);
    expect(report.workloads[0]).toMatchObject({ state: 'Ready' });
    const enis = sim.state().state.enis;
    expect(enis[foreign]?.attachment?.deviceIndex).toBe(1);
    expect(enis[otherCluster]?.status).toBe('available');
    const ours = nodeView(sim, NODE_A1).find((e) => e.ips[0] === '100.64.0.5')!;
    expect(sim.state().state.enis[ours.id]?.attachment?.deviceIndex).toBe(2);
    // Empty desired state: only our ENI goes.
    await converge(r, eniMode([]), clock);
    expect(Object.keys(sim.state().state.enis)).toEqual(expect.arrayContaining([foreign, otherCluster]));
    expect(secondaryEnis(sim).map((e) => e.id).sort()).toEqual([foreign, otherCluster].sort());
  });

  it('after a restart adopts a half-made ENI of a wanted workload, and deletes an unwanted one only after the cool-down', async () => {
    // A previous incarnation created two ENIs and died before attaching them.
    const crashEc2 = new Proxy(ec2, {
      get: (t, p) => (p === 'attachNetworkInterface' ? () => Promise.reject(new Error('killed')) : Reflect.get(t, p) as unknown),
    });
    const half = new FabricReconciler({ ec2: crashEc2, clock }, { cluster: 'test', node: 'node-a1', instance: instanceFacts(sim, NODE_A1) });
    await half.reconcile(eniMode([workload('gw1', '100.64.0.5', EGRESS_A), workload('gone', '100.64.0.9', EGRESS_A)]));
    expect(secondaryEnis(sim).map((e) => [e.privateIps[0], e.status])).toEqual([
      ['100.64.0.5', 'available'],
      ['100.64.0.9', 'available'],
    ]);
    const made: Record<string, string> = Object.fromEntries(secondaryEnis(sim).map((e) => [e.privateIps[0] ?? '', e.id]));
    clock.advance(5_000); // EC2's view catches up with the dead incarnation's ENIs
    const fresh = reconciler('node-a1', NODE_A1, 60_000);
    const desired = eniMode([workload('gw1', '100.64.0.5', EGRESS_A)]);
    const first = await fresh.reconcile(desired);
    expect(first.wakeInMs).toBeGreaterThan(0);
    // Adopted: attached, not made again; the unwanted one waits for its cool-down.
    await converge(fresh, { ...desired, allowRemovals: false });
    expect(secondaryEnis(sim).map((e) => [e.privateIps[0], e.status, e.id])).toEqual([
      ['100.64.0.5', 'in-use', made['100.64.0.5']],
      ['100.64.0.9', 'available', made['100.64.0.9']],
    ]);
    // Not before in-sync, even after the cool-down.
    clock.advance(61_000);
    await fresh.reconcile({ ...desired, allowRemovals: false });
    expect(secondaryEnis(sim)).toHaveLength(2);
    await converge(fresh, desired, clock);
    expect(secondaryEnis(sim).map((e) => e.id)).toEqual([made['100.64.0.5']]);
  });

  it('removes nothing while the desired state may be incomplete (before in-sync)', async () => {
    const r = reconciler('node-a1', NODE_A1);
    await converge(r, eniMode([workload('gw1', '100.64.0.5', EGRESS_A)]));
    const report = await r.reconcile(eniMode([], false));
    expect(report.mutations).toBe(0);
    expect(nodeView(sim, NODE_A1)).toHaveLength(1);
  });
});
