import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FabricReconciler } from '../../src/aws/fabric-reconciler.js';
import type { FabricDesired, FabricWorkload } from '../../src/aws/fabric-reconciler.js';
import type { Ec2 } from '../../src/aws/ec2-port.js';
import type { SdkEc2 } from '../../src/aws/sdk-ec2.js';
import { FakeClock } from '../../src/platform/clock.js';
import type { AwsSimHandle } from '../../src/sim/aws/server.js';
import { associations, converge, EGRESS_A, EIP1, EIP2, EIP3, FakeHostIps, instanceFacts, NODE_A1, NODE_A2, okCalls, sdkFor, startFabricSim, T0, workload } from './helpers.js';

const RED = [EIP1.publicIp, EIP2.publicIp];

describe.each([
  ['EnabledENIPerWorkload' as const],
  ['Enabled' as const],
])('fabric reconciler, Elastic IPs (%s)', (mode) => {
  let sim: AwsSimHandle;
  let ec2: SdkEc2;
  let clock: FakeClock;
  let hostIps: FakeHostIps;
  const desired = (workloads: readonly FabricWorkload[]): FabricDesired => ({ mode, workloads, allowRemovals: true, hostSubnets: [EGRESS_A] });
  const reconciler = (node: string, instance: string, port: Ec2 = ec2): FabricReconciler =>
    new FabricReconciler({ ec2: port, clock, hostIps }, { cluster: 'test', node, instance: instanceFacts(sim, instance), gcCooldownMs: 1_000 });

  beforeEach(async () => {
    clock = new FakeClock(T0);
    sim = await startFabricSim({}, undefined, clock);
    ec2 = sdkFor(sim);
    hostIps = new FakeHostIps({ [EGRESS_A]: ['100.64.3.240', '100.64.3.241', '100.64.3.242'] }, () => clock.now());
  });
  afterEach(async () => {
    ec2.destroy();
    await sim.close();
  });

  it('gives each pod one of its listed Elastic IPs, never one another pod holds', async () => {
    const r = reconciler('node-a1', NODE_A1);
    const report = await converge(r, desired([workload('red1', '100.64.0.5', EGRESS_A, RED), workload('red2', '100.64.0.6', EGRESS_A, RED)]));
    expect(report.workloads.map((w) => [w.ip, w.state, w.elasticIp])).toEqual([
      ['100.64.0.5', 'Ready', EIP1.publicIp],
      ['100.64.0.6', 'Ready', EIP2.publicIp],
    ]);
    expect(associations(sim)).toEqual({ [EIP1.publicIp]: '100.64.0.5', [EIP2.publicIp]: '100.64.0.6' });
    // Two associations; a DescribeAddresses that lags may cost an idempotent repeat, never a third address.
    expect(okCalls(sim, 'AssociateAddress')).toBeGreaterThanOrEqual(2);
  });

  it('resolves a race between nodes through the API (AllowReassociation false) and takes the next address', async () => {
    const a1 = reconciler('node-a1', NODE_A1);
    // node-a2 read the addresses while EIP1 was free; node-a1 takes EIP1 before node-a2 associates.
    let raced = false;
    const racing: Ec2 = new Proxy(ec2, {
      get: (t, p) =>
        p === 'associateAddress'
          ? async (input: Parameters<Ec2['associateAddress']>[0]) => {
              if (!raced) {
                raced = true;
                await converge(a1, desired([workload('red1', '100.64.0.5', EGRESS_A, RED)]));
              }
              return t.associateAddress(input);
            }
          : (Reflect.get(t, p) as unknown),
    });
    const a2racing = reconciler('node-a2', NODE_A2, racing);
    const report = await converge(a2racing, desired([workload('red2', '100.64.0.6', EGRESS_A, RED)]));
    expect(report.workloads[0]).toMatchObject({ state: 'Ready', elasticIp: EIP2.publicIp });
    expect(associations(sim)).toEqual({ [EIP1.publicIp]: '100.64.0.5', [EIP2.publicIp]: '100.64.0.6' });
    expect(sim.state().stats.actions['AssociateAddress']?.errors['Resource.AlreadyAssociated']).toBe(1);
  });

  it('reports a pod whose listed Elastic IPs are all taken or unknown, and associates once one frees up', async () => {
    const r = reconciler('node-a1', NODE_A1);
    const w = [workload('red1', '100.64.0.5', EGRESS_A, [EIP1.publicIp]), workload('red2', '100.64.0.6', EGRESS_A, [EIP1.publicIp, '198.51.100.99'])];
    const report = await converge(r, desired(w));
    expect(report.workloads[1]).toMatchObject({ state: 'Pending', reason: 'NoFreeElasticIP' });
    expect(report.workloads[1]!.message).toContain('198.51.100.99');
    const after = await converge(r, desired([w[1]!]));
    expect(after.workloads[0]).toMatchObject({ state: 'Ready', elasticIp: EIP1.publicIp });
    expect(associations(sim)).toEqual({ [EIP1.publicIp]: '100.64.0.6' });
  });

  it('disassociates when the annotation no longer lists the address, and when the pod goes', async () => {
    const r = reconciler('node-a1', NODE_A1);
    await converge(r, desired([workload('red1', '100.64.0.5', EGRESS_A, [EIP3.publicIp])]));
    expect(associations(sim)).toEqual({ [EIP3.publicIp]: '100.64.0.5' });
    await converge(r, desired([workload('red1', '100.64.0.5', EGRESS_A, [])]));
    expect(associations(sim)).toEqual({});
    await converge(r, desired([workload('red1', '100.64.0.5', EGRESS_A, [EIP2.publicIp])]));
    expect(associations(sim)).toEqual({ [EIP2.publicIp]: '100.64.0.5' });
    await converge(r, desired([]), clock);
    expect(associations(sim)).toEqual({});
  });
});
