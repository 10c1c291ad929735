import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EGW_CLI } from '../support/dist.js';
import { FabricReconciler } from '../../src/aws/fabric-reconciler.js';
import { EC2_CALLS, EC2_METHODS } from '../../src/aws/ec2-port.js';
import { iamPolicy, iamPolicyActions } from '../../src/aws/iam-policy.js';
import { FakeClock } from '../../src/platform/clock.js';
import { converge, EGRESS_A, EIP1, FakeHostIps, instanceFacts, NODE_A1, sdkFor, startFabricSim, workload } from './helpers.js';

describe('egw aws iam-policy', () => {
  it('lists exactly the actions of the port table, with CreateTags only for tag-on-create', () => {
    const policy = iamPolicy();
    expect(policy.Version).toBe('2012-10-17');
    const direct = policy.Statement[0]!;
    expect(direct.Action).toEqual([...new Set(EC2_METHODS.map((m) => `ec2:${EC2_CALLS[m].action}`))].sort());
    expect(direct.Action).not.toContain('ec2:CreateTags');
    expect(policy.Statement[1]).toEqual({
      Sid: 'EgwTagOnCreate',
      Effect: 'Allow',
      Action: ['ec2:CreateTags'],
      Resource: '*',
      Condition: { StringEquals: { 'ec2:CreateAction': ['CreateNetworkInterface'] } },
    });
    expect(iamPolicyActions()).toEqual([...direct.Action, 'ec2:CreateTags'].sort());
    // Every action the reference document lists for EIPs and ENIs that egw calls is there.
    for (const a of ['DescribeNetworkInterfaces', 'DescribeSubnets', 'DescribeInstanceTypes', 'CreateNetworkInterface', 'AttachNetworkInterface', 'DetachNetworkInterface', 'DeleteNetworkInterface', 'ModifyNetworkInterfaceAttribute', 'AssignPrivateIpAddresses', 'UnassignPrivateIpAddresses', 'DescribeAddresses', 'AssociateAddress', 'DisassociateAddress', 'CreateTags']) {
      expect(iamPolicyActions()).toContain(`ec2:${a}`);
    }
  });

  it('is least privilege: with the emulator allowing exactly it, a full life cycle calls every action in it and is never refused', async () => {
    const clock = new FakeClock(Date.parse('2025-01-01T00:00:00Z'));
    const sim = await startFabricSim({ allowActions: iamPolicyActions() }, undefined, clock);
    const ec2 = sdkFor(sim);
    const hostIps = new FakeHostIps({ [EGRESS_A]: ['100.64.3.240'] }, () => clock.now());
    try {
      const r = new FabricReconciler({ ec2, clock, hostIps }, { cluster: 'iam', node: 'node-a1', instance: instanceFacts(sim, NODE_A1), gcCooldownMs: 1_000 });
      const gw = workload('gw1', '100.64.0.5', EGRESS_A, [EIP1.publicIp]);
      const gw2 = workload('gw2', '100.64.0.6', EGRESS_A);
      for (const mode of ['EnabledENIPerWorkload', 'Enabled'] as const) {
        const up = await converge(r, { mode, workloads: [gw], allowRemovals: true, hostSubnets: [EGRESS_A] }, clock);
        expect(up.workloads[0]?.state).toBe('Ready');
        // A second gateway (Secondary-IP mode: AssignPrivateIpAddresses on the ENI the first one came with).
        const both = await converge(r, { mode, workloads: [gw, gw2], allowRemovals: true, hostSubnets: [EGRESS_A] }, clock);
        expect(both.workloads.map((w) => w.state)).toEqual(['Ready', 'Ready']);
        await converge(r, { mode, workloads: [{ ...gw, elasticIps: [] }], allowRemovals: true, hostSubnets: [EGRESS_A] }, clock);
        await converge(r, { mode, workloads: [], allowRemovals: true, hostSubnets: [EGRESS_A] }, clock);
      }
      await ec2.describeSubnets([EGRESS_A]); // the controller's call
      const stats = sim.state().stats.actions;
      // Never refused (the harsh emulator's NotFound, InUse and throttling answers are EC2 catching up, not IAM).
      const errors = Object.entries(stats).flatMap(([a, c]) => Object.keys(c.errors).map((code) => `${a}: ${code}`));
      expect(errors.filter((e) => /Unauthorized/.test(e))).toEqual([]);
      // CreateTags is authorised through CreateNetworkInterface's TagSpecifications, never called itself.
      expect(Object.keys(stats).map((a) => `ec2:${a}`).sort()).toEqual(iamPolicyActions().filter((a) => a !== 'ec2:CreateTags'));
    } finally {
      ec2.destroy();
      await sim.close();
    }
  });

  it('is what `egw aws iam-policy` prints (JSON), and `--actions` lists the actions', () => {
    const json = spawnSync(process.execPath, [EGW_CLI, 'aws', 'iam-policy'], { encoding: 'utf8' });
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(iamPolicy());
    const actions = spawnSync(process.execPath, [EGW_CLI, 'aws', 'iam-policy', '--actions'], { encoding: 'utf8' });
    expect(actions.stdout.trim().split('\n')).toEqual(iamPolicyActions());
  });
});
