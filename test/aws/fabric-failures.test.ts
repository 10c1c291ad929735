import { describe, expect, it } from 'vitest';
import { FabricReconciler } from '../../src/aws/fabric-reconciler.js';
import type { FabricDesired, FabricWorkload } from '../../src/aws/fabric-reconciler.js';
import { iamPolicyActions } from '../../src/aws/iam-policy.js';
import { ResilientEc2 } from '../../src/aws/resilient-ec2.js';
import { FakeClock } from '../../src/platform/clock.js';
import type { SimDefinition } from '../../src/sim/aws/world.js';
import { associations, converge, EGRESS_A, EIP1, FakeHostIps, instanceFacts, NODE_A1, NODE_A2, nodeView, sdkFor, secondaryEnis, skippingClock, startFabricSim, T0, workload } from './helpers.js';

const gw = (n: number, eips: string[] = []): FabricWorkload => workload(`gw${n}`, `100.64.0.${n}`, EGRESS_A, eips);

async function run(sim: SimDefinition, mode: FabricDesired['mode'], plan: Record<string, FabricWorkload[]>): Promise<{ sent: number; reports: Awaited<ReturnType<typeof converge>>[]; state: ReturnType<Awaited<ReturnType<typeof startFabricSim>>['state']>; views: Record<string, ReturnType<typeof nodeView>> }> {
  const clock = new FakeClock(T0);
  const handle = await startFabricSim(sim, undefined, clock);
  const raw = sdkFor(handle);
  const ec2 = new ResilientEc2(raw, { clock: skippingClock(clock) }, { retryBaseMs: 5, throttleBaseMs: 50, maxBackoffMs: 1_000, maxAttempts: 10 });
  const hostIps = new FakeHostIps({ [EGRESS_A]: ['100.64.3.240', '100.64.3.241', '100.64.3.242', '100.64.3.243'] }, () => clock.now());
  try {
    const reports = [];
    for (const [node, workloads] of Object.entries(plan)) {
      const instance = node === 'node-a1' ? NODE_A1 : NODE_A2;
      const r = new FabricReconciler({ ec2, clock, hostIps }, { cluster: 'f', node, instance: instanceFacts(handle, instance), gcCooldownMs: 5_000 });
      reports.push(await converge(r, { mode, workloads, allowRemovals: true, hostSubnets: [EGRESS_A] }, clock, 60));
    }
    const sent = Object.values(ec2.stats.sent).reduce((a, b) => a + b, 0);
    return { sent, reports, state: handle.state(), views: { 'node-a1': nodeView(handle, NODE_A1), 'node-a2': nodeView(handle, NODE_A2) } };
  } finally {
    raw.destroy();
    await handle.close();
  }
}

describe('fabric under throttling and injected failures', () => {
  const plan = { 'node-a1': [gw(5, [EIP1.publicIp]), gw(6)], 'node-a2': [gw(7), gw(8)] };

  it.each([['EnabledENIPerWorkload' as const], ['Enabled' as const]])('%s: converges with every ENI made once and a bounded number of requests', async (mode) => {
    const clean = await run({}, mode, plan);
    const rough = await run(
      {
        // A stingy account: a quarter of AWS's bucket sizes and refill rates.
        throttle: { enabled: true, scale: 0.25 },
        failureRate: 0.2,
        failureKinds: ['RequestLimitExceeded', 'InternalError', 'Unavailable'],
        failureAfterCommit: 0.5,
        seed: 5,
      },
      mode,
      plan,
    );
    for (const r of rough.reports) expect(r.workloads.every((w) => w.state === 'Ready'), JSON.stringify(r.workloads)).toBe(true);
    const shape = (views: typeof clean.views): Record<string, { ips: string[]; deleteOnTermination: boolean; status: string }[]> =>
      Object.fromEntries(Object.entries(views).map(([n, v]) => [n, v.map((e) => ({ ips: e.ips, deleteOnTermination: e.deleteOnTermination, status: e.status }))]));
    expect(shape(rough.views)).toEqual(shape(clean.views));
    expect(Object.values(shape(rough.views)).flat().every((e) => e.deleteOnTermination && e.status === 'in-use')).toBe(true);
    expect(Object.values(rough.state.state.enis).filter((e) => e.primaryOf === undefined)).toHaveLength(Object.values(clean.views).flat().length);
    expect(rough.state.stats.throttled + rough.state.stats.injected).toBeGreaterThan(0);
    // Bounded: a small multiple of the clean run, however the failures fell.
    expect(rough.sent).toBeLessThanOrEqual(clean.sent * 4);
  }, 120_000);

  it('reports UnauthorizedOperation with its code on the workload and the node, and makes nothing half', async () => {
    const noAttach = await run({ allowActions: iamPolicyActions().filter((a) => a !== 'ec2:AttachNetworkInterface') }, 'EnabledENIPerWorkload', { 'node-a1': [gw(5)] });
    const w = noAttach.reports[0]!.workloads[0]!;
    expect(w).toMatchObject({ state: 'Failed', reason: 'UnauthorizedOperation' });
    expect(w.message).toContain('egw aws iam-policy');
    expect(noAttach.reports[0]!.retry).toBe('terminal');
    const blind = await run({ allowActions: iamPolicyActions().filter((a) => a !== 'ec2:DescribeInstanceTypes') }, 'EnabledENIPerWorkload', { 'node-a1': [gw(5)] });
    expect(blind.reports[0]!.node).toMatchObject({ state: 'Failed', reason: 'UnauthorizedOperation' });
    expect(blind.reports[0]!.workloads[0]).toMatchObject({ state: 'Failed', reason: 'UnauthorizedOperation' });
    expect(Object.values(blind.state.state.enis).filter((e) => e.primaryOf === undefined)).toEqual([]);
  });

  it('leaves nothing behind after a rough run is wound down', async () => {
    const clock = new FakeClock(T0);
    const handle = await startFabricSim({ failureRate: 0.25, failureKinds: ['InternalError', 'Unavailable', 'RequestLimitExceeded'], failureAfterCommit: 1, seed: 9 }, undefined, clock);
    const raw = sdkFor(handle);
    const ec2 = new ResilientEc2(raw, { clock: skippingClock(clock) }, { retryBaseMs: 2, throttleBaseMs: 5, maxBackoffMs: 40 });
    const r = new FabricReconciler({ ec2, clock }, { cluster: 'f', node: 'node-a1', instance: instanceFacts(handle, NODE_A1), gcCooldownMs: 5_000 });
    try {
      await converge(r, { mode: 'EnabledENIPerWorkload', workloads: [gw(5, [EIP1.publicIp]), gw(6)], allowRemovals: true }, clock, 60);
      await converge(r, { mode: 'EnabledENIPerWorkload', workloads: [], allowRemovals: true }, clock, 60);
      expect(secondaryEnis(handle)).toEqual([]);
      expect(associations(handle)).toEqual({});
    } finally {
      raw.destroy();
      await handle.close();
    }
  });
});
