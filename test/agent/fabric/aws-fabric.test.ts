import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AwsFabric } from '../../../src/agent/fabric/aws-fabric.js';
import type { EniRoutingPort } from '../../../src/agent/fabric/ports.js';
import { NODE_AWS_CONDITION, POD_AWS_CONDITION } from '../../../src/agent/fabric/status.js';
import type { Condition } from '../../../src/agent/fabric/status.js';
import { iamPolicyActions } from '../../../src/aws/iam-policy.js';
import { SdkImds } from '../../../src/aws/imds.js';
import type { SdkEc2 } from '../../../src/aws/sdk-ec2.js';
import { getResource } from '../../../src/datastore/resources.js';
import type { EniConfig, EniState } from '../../../src/linux/eni/eni-routing.js';
import { SystemClock } from '../../../src/platform/clock.js';
import { startAwsSim } from '../../../src/sim/aws/server.js';
import type { AwsSimHandle } from '../../../src/sim/aws/server.js';
import type { SimDefinition } from '../../../src/sim/aws/world.js';
import { associations, EGRESS_A, EGRESS_B, EIP1, fabricWorld, instanceFacts, NODE_A1, NODE_A2, nodeView, sdkFor, secondaryEnis } from '../../aws/helpers.js';
import type { TestStore } from './store.js';
import { awsSubnet, eventually, felix, gatewayPod, ipPool, node, openTestStore, put, remove } from './store.js';

const RES = 'projectcalico.org/aws-secondary-ipv4';

/** Records what the Linux side was asked to converge to. */
class RecordingEniRouting implements EniRoutingPort {
  calls: { state: EniState; config: EniConfig }[] = [];
  async apply(state: EniState, config: EniConfig): Promise<{ problems: { object: string; code: string; message: string }[]; failures: { message: string }[] }> {
    this.calls.push({ state: structuredClone(state), config: structuredClone(config) });
    return { problems: [], failures: [] };
  }
  last(): { state: EniState; config: EniConfig } | undefined {
    return this.calls[this.calls.length - 1];
  }
}

describe('AwsFabric component (datastore → EC2 emulator → status)', () => {
  let sim: AwsSimHandle;
  let ec2: SdkEc2;
  let t: TestStore;
  let fabric: AwsFabric | undefined;
  let linux: RecordingEniRouting;

  const start = async (sim2: SimDefinition = {}): Promise<void> => {
    // The harsh emulator in real time: AWS's buckets at a tenth (the tiny per-action buckets of HARSH are for
    // the fake-clock tests, where a pass costs no time).
    sim = await startAwsSim({ world: fabricWorld({ throttle: { scale: 0.1 }, ...sim2 }), listen: '127.0.0.1:0', imdsBindings: [{ listen: '127.0.0.1:0', instanceId: NODE_A1 }] });
    ec2 = sdkFor(sim);
  };
  const fabricFor = (): AwsFabric =>
    new AwsFabric(
      { store: t.store, ec2, imds: new SdkImds({ endpoint: sim.imdsBindingUrls[NODE_A1]! }), linux, clock: new SystemClock() },
      { nodeName: 'node-a1', cluster: 'test', gcCooldownMs: 500, resyncIntervalMs: 2_000, ec2Policy: { retryBaseMs: 5, throttleBaseMs: 20, maxBackoffMs: 200 }, retryBaseMs: 50, retryMaxMs: 200 },
    );
  const podCondition = async (name: string): Promise<Condition | undefined> => {
    const p = await getResource(t.store, 'Pod', name, 'default');
    return ((p?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === POD_AWS_CONDITION);
  };
  type NodeFabricStatus = { capacity?: Record<string, unknown>; allocatable?: Record<string, unknown>; conditions?: Condition[] };
  const nodeStatus = async (): Promise<NodeFabricStatus> => {
    const status: unknown = (await getResource(t.store, 'Node', 'node-a1'))?.status;
    return (status ?? {});
  };

  beforeEach(async () => {
    t = await openTestStore();
    linux = new RecordingEniRouting();
    await put(
      t.store,
      node('node-a1', 'us-west-2a'),
      awsSubnet(EGRESS_A, '100.64.0.0/22', 'us-west-2a'),
      awsSubnet(EGRESS_B, '100.64.4.0/22', 'us-west-2b'),
      ipPool('egress-red-west-1', '100.64.0.4/30', EGRESS_A),
      ipPool('egress-blue-west-1', '100.64.0.8/30', EGRESS_A),
    );
  });
  afterEach(async () => {
    await fabric?.stop();
    fabric = undefined;
    ec2.destroy();
    await sim.close();
    await t.cleanup();
  });

  it('ENI-per-workload: places gateways, reports them Ready on the pods, publishes capacity, programs Linux, and removes what goes', async () => {
    await start();
    await put(
      t.store,
      felix('default', { awsSecondaryIPSupport: 'EnabledENIPerWorkload', awsSecondaryIPRoutingRulePriority: 150 }),
      gatewayPod('red-1', 'node-a1', '100.64.0.5', { 'cni.projectcalico.org/awsElasticIPs': `["${EIP1.publicIp}"]` }),
      gatewayPod('blue-1', 'node-a1', '100.64.0.9'),
      gatewayPod('elsewhere', 'node-a2', '100.64.0.10'),
    );
    fabric = fabricFor();
    fabric.start();
    const red = await eventually(async () => ((await podCondition('red-1'))?.status === 'True' ? podCondition('red-1') : undefined), 15_000, 'red-1 ready');
    expect(red).toMatchObject({ reason: 'Ready' });
    expect(red?.message).toContain(EIP1.publicIp);
    await eventually(async () => ((await podCondition('blue-1'))?.status === 'True' ? true : undefined), 15_000, 'blue-1 ready');
    expect(await podCondition('elsewhere')).toBeUndefined();
    expect(nodeView(sim, NODE_A1).map((e) => e.ips)).toEqual([['100.64.0.5'], ['100.64.0.9']]);
    expect(associations(sim)).toEqual({ [EIP1.publicIp]: '100.64.0.5' });
    const status = await nodeStatus();
    expect(status.capacity?.[RES]).toBe('2');
    expect(status.allocatable?.[RES]).toBe('2');
    expect(status.conditions?.find((c) => c.type === NODE_AWS_CONDITION)).toMatchObject({ status: 'True' });
    const programmed = await eventually(async () => (linux.last()?.state.interfaces.length === 2 ? linux.last() : undefined), 10_000, 'linux');
    expect(programmed.config).toEqual({ routeTableRanges: [{ min: 1, max: 250 }], rulePriority: 150 });
    expect(programmed.state.interfaces.map((i) => `${i.subnetCidr} ${i.workloadIps.join()}`).sort()).toEqual(['100.64.0.0/22 100.64.0.5', '100.64.0.0/22 100.64.0.9']);
    const macs = Object.values(sim.state().state.enis).filter((e) => e.primaryOf === undefined).map((e) => e.macAddress).sort();
    expect(programmed.state.interfaces.map((i) => i.mac).sort()).toEqual(macs);
    // The gateway goes: its ENI (and Elastic IP) go.
    await remove(t.store, 'Pod', 'red-1', 'default');
    await eventually(async () => (secondaryEnis(sim).length === 1 ? true : undefined), 15_000, 'red ENI removed');
    expect(associations(sim)).toEqual({});
    await eventually(async () => (linux.last()?.state.interfaces.map((i) => i.workloadIps).flat().join() === '100.64.0.9' ? true : undefined), 10_000, 'linux follows');
  });

  it('a restarted agent adopts what is there and changes nothing', async () => {
    await start();
    await put(t.store, felix('default', { awsSecondaryIPSupport: 'EnabledENIPerWorkload' }), gatewayPod('red-1', 'node-a1', '100.64.0.5'));
    fabric = fabricFor();
    fabric.start();
    await eventually(async () => ((await podCondition('red-1'))?.status === 'True' ? true : undefined), 15_000, 'ready');
    await fabric.stop();
    const mutating = (): number => Object.entries(sim.state().stats.actions).filter(([a]) => !a.startsWith('Describe')).reduce((n, [, c]) => n + c.calls, 0);
    const before = mutating();
    let passes = 0;
    fabric = new AwsFabric(
      { store: t.store, ec2, imds: new SdkImds({ endpoint: sim.imdsBindingUrls[NODE_A1]! }), linux },
      { nodeName: 'node-a1', cluster: 'test', onPass: () => passes++ },
    );
    fabric.start();
    await eventually(async () => (passes > 0 ? true : undefined), 10_000, 'a pass');
    expect(fabric.status().report?.mutations).toBe(0);
    expect(mutating()).toBe(before);
    expect(fabric.status().instance).toEqual(instanceFacts(sim, NODE_A1));
  });

  it('Secondary-IP mode: the shared ENI takes its primary address from the HostSecondaryInterface pool through IPAM', async () => {
    await start();
    await put(
      t.store,
      felix('default', { awsSecondaryIPSupport: 'Enabled' }),
      ipPool('egress-hosts-west-1', '100.64.3.240/28', EGRESS_A, { allowedUses: ['HostSecondaryInterface'] }),
      gatewayPod('red-1', 'node-a1', '100.64.0.5'),
      gatewayPod('blue-1', 'node-a1', '100.64.0.9'),
    );
    fabric = fabricFor();
    fabric.start();
    for (const p of ['red-1', 'blue-1']) await eventually(async () => ((await podCondition(p))?.status === 'True' ? true : undefined), 15_000, `${p} ready`);
    const [eni, ...more] = nodeView(sim, NODE_A1);
    expect(more).toEqual([]);
    expect(eni!.ips.slice(1).sort()).toEqual(['100.64.0.5', '100.64.0.9']);
    const handles = (await t.store.list('IPAMHandle')).items.map((h) => h.value as { ip: string; use: string; owner: { kind: string; node: string } });
    expect(handles.map((h) => [h.ip, h.use, h.owner.kind, h.owner.node])).toEqual([[eni!.ips[0], 'HostSecondaryInterface', 'ENI', 'node-a1']]);
    expect((await nodeStatus()).capacity?.[RES]).toBe('22');
  });

  it('Disabled: no EC2 call at all, capacity 0', async () => {
    await start();
    await put(t.store, felix('default', { awsSecondaryIPSupport: 'Disabled' }), gatewayPod('red-1', 'node-a1', '100.64.0.5'));
    fabric = fabricFor();
    fabric.start();
    const status = await eventually(async () => ((await nodeStatus()).capacity?.[RES] === '0' ? nodeStatus() : undefined), 10_000, 'capacity 0');
    expect(status.allocatable?.[RES]).toBe('0');
    expect(Object.keys(sim.state().stats.actions)).toEqual([]);
    expect(await podCondition('red-1')).toBeUndefined();
  });

  it('awsSrcDstCheck: Disable turns the primary ENI\'s check off (even with awsSecondaryIPSupport Disabled), Enable turns it back on, DoNothing makes no call', async () => {
    await start();
    const primary = (): { id: string; sourceDestCheck: boolean } => {
      const e = Object.values(sim.state().state.enis).find((x) => x.primaryOf === NODE_A1)!;
      return { id: e.id, sourceDestCheck: e.sourceDestCheck };
    };
    await put(t.store, felix('default', { awsSecondaryIPSupport: 'Disabled', awsSrcDstCheck: 'DoNothing' }));
    fabric = fabricFor();
    fabric.start();
    await eventually(async () => ((await nodeStatus()).capacity?.[RES] === '0' ? true : undefined), 10_000, 'first pass');
    expect(Object.keys(sim.state().stats.actions)).toEqual([]);
    expect(fabric.status().srcDstCheck).toBeUndefined();

    await put(t.store, felix('default', { awsSecondaryIPSupport: 'Disabled', awsSrcDstCheck: 'Disable' }));
    await eventually(async () => (primary().sourceDestCheck ? undefined : true), 10_000, 'check disabled');
    await eventually(async () => (fabric!.status().srcDstCheck?.state === 'Applied' ? true : undefined), 10_000, 'status applied');
    expect(fabric.status().srcDstCheck).toMatchObject({ want: 'Disable', networkInterfaceId: primary().id });
    expect(sim.state().stats.actions['ModifyNetworkInterfaceAttribute']?.calls).toBe(1);

    await put(t.store, felix('default', { awsSecondaryIPSupport: 'EnabledENIPerWorkload', awsSrcDstCheck: 'Enable' }));
    await eventually(async () => (primary().sourceDestCheck ? true : undefined), 10_000, 'check enabled');
    // Level-triggered: a pass that finds the wanted value changes nothing.
    await put(t.store, felix('default', { awsSecondaryIPSupport: 'EnabledENIPerWorkload', awsSrcDstCheck: 'Enable', awsRequestTimeout: '20s' }));
    await eventually(async () => (fabric!.status().srcDstCheck?.want === 'Enable' && fabric!.status().srcDstCheck?.state === 'Applied' ? true : undefined), 10_000, 'enabled applied');
    expect(sim.state().stats.actions['ModifyNetworkInterfaceAttribute']?.calls).toBe(2);
  });

  it('awsSrcDstCheck without the IAM permission: the failure is on the status and retried, nothing else stops', async () => {
    await start({ allowActions: iamPolicyActions().filter((a) => a !== 'ec2:ModifyNetworkInterfaceAttribute') });
    await put(t.store, felix('default', { awsSecondaryIPSupport: 'Disabled', awsSrcDstCheck: 'Disable' }));
    fabric = fabricFor();
    fabric.start();
    const st = await eventually(async () => (fabric!.status().srcDstCheck?.state === 'Failed' ? fabric!.status().srcDstCheck : undefined), 10_000, 'failure reported');
    expect(st?.message).toContain('UnauthorizedOperation');
    expect((await nodeStatus()).capacity?.[RES]).toBe('0');
  });

  it('Elastic IP standby: a replica without one takes it over from a holder that is no longer a live gateway, and the old holder does not take it back', async () => {
    sim = await startAwsSim({
      // AWS's own request budget (not a tenth): two agents share it here, and the takeover is under test.
      world: fabricWorld({ throttle: { scale: 1 } }),
      listen: '127.0.0.1:0',
      imdsBindings: [{ listen: '127.0.0.1:0', instanceId: NODE_A1 }, { listen: '127.0.0.1:0', instanceId: NODE_A2 }],
    });
    ec2 = sdkFor(sim);
    const on = (nodeName: string, instanceId: string): AwsFabric =>
      new AwsFabric(
        { store: t.store, ec2, imds: new SdkImds({ endpoint: sim.imdsBindingUrls[instanceId]! }), linux: new RecordingEniRouting(), clock: new SystemClock() },
        { nodeName, cluster: 'test', gcCooldownMs: 500, resyncIntervalMs: 2_000, ec2Policy: { retryBaseMs: 5, throttleBaseMs: 20, maxBackoffMs: 200 }, retryBaseMs: 50, retryMaxMs: 200 },
      );
    const standby = { 'cni.projectcalico.org/awsElasticIPs': `["${EIP1.publicIp}"]`, 'egw.io/elastic-ip-standby': 'true' };
    const notReady = (p: ReturnType<typeof gatewayPod>): ReturnType<typeof gatewayPod> => ({ ...p, status: { ...(p.status as object), conditions: [{ type: 'Ready', status: 'False' }] } });
    await put(t.store, node('node-a2', 'us-west-2a'), felix('default', { awsSecondaryIPSupport: 'EnabledENIPerWorkload' }), gatewayPod('red-1', 'node-a1', '100.64.0.5', standby));
    fabric = on('node-a1', NODE_A1);
    fabric.start();
    await eventually(async () => ((await podCondition('red-1'))?.status === 'True' ? true : undefined), 30_000, 'red-1 holds the Elastic IP');
    expect(associations(sim)).toEqual({ [EIP1.publicIp]: '100.64.0.5' });

    await put(t.store, gatewayPod('red-2', 'node-a2', '100.64.0.6', standby));
    const second = on('node-a2', NODE_A2);
    second.start();
    try {
      await eventually(async () => ((await podCondition('red-2'))?.reason === 'NoFreeElasticIP' ? true : undefined), 30_000, 'red-2 on standby');
      // red-1's node goes: its agent stops, its pod stops being Ready (as the node controller marks it).
      await fabric.stop();
      fabric = undefined;
      await put(t.store, notReady(gatewayPod('red-1', 'node-a1', '100.64.0.5', standby)));
      await eventually(async () => (associations(sim)[EIP1.publicIp] === '100.64.0.6' ? true : undefined), 30_000, 'the standby took the Elastic IP over');
      await eventually(async () => ((await podCondition('red-2'))?.status === 'True' ? true : undefined), 30_000, 'red-2 ready');
      // red-1 comes back Ready: the Elastic IP is held by a live gateway now, so red-1 waits as the standby.
      await put(t.store, gatewayPod('red-1', 'node-a1', '100.64.0.5', standby));
      fabric = on('node-a1', NODE_A1);
      fabric.start();
      await eventually(async () => ((await podCondition('red-1'))?.reason === 'NoFreeElasticIP' ? true : undefined), 30_000, 'red-1 now the standby');
      const passes = fabric.status().passes;
      await eventually(async () => (fabric!.status().passes >= passes + 2 ? true : undefined), 30_000, 'more passes');
      expect(associations(sim)).toEqual({ [EIP1.publicIp]: '100.64.0.6' });
      expect(sim.state().stats.actions['AssociateAddress']?.calls).toBe(2);
    } finally {
      await second.stop();
    }
  }, 120_000);

  it('reports an AWS refusal with its code on the pod and the node', async () => {
    await start({ allowActions: iamPolicyActions().filter((a) => a !== 'ec2:CreateNetworkInterface') });
    await put(t.store, felix('default', { awsSecondaryIPSupport: 'EnabledENIPerWorkload' }), gatewayPod('red-1', 'node-a1', '100.64.0.5'));
    fabric = fabricFor();
    fabric.start();
    const c = await eventually(async () => ((await podCondition('red-1'))?.reason === 'UnauthorizedOperation' ? podCondition('red-1') : undefined), 15_000, 'refusal reported');
    expect(c).toMatchObject({ status: 'False' });
    expect(c?.message).toContain('egw aws iam-policy');
  });
});
