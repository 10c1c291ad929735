import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { iamPolicyActions } from '../../src/aws/iam-policy.js';
import { AwsSubnetFactsLoop, POOL_SUBNET_CONDITION } from '../../src/controller/aws-subnets.js';
import { listResources } from '../../src/datastore/resources.js';
import { FakeClock } from '../../src/platform/clock.js';
import type { AwsSimHandle } from '../../src/sim/aws/server.js';
import type { SdkEc2 } from '../../src/aws/sdk-ec2.js';
import { EGRESS_A, EGRESS_B, sdkFor, startFabricSim, VPC } from '../aws/helpers.js';
import type { TestStore } from '../agent/fabric/store.js';
import { awsSubnet, ipPool, openTestStore, put } from '../agent/fabric/store.js';

const UNKNOWN = 'subnet-0000000000000dead';

describe('controller AWS subnet facts', () => {
  let sim: AwsSimHandle;
  let ec2: SdkEc2;
  let t: TestStore;
  const clock = new FakeClock(Date.parse('2025-01-01T00:00:00Z'));

  beforeEach(async () => {
    sim = await startFabricSim();
    ec2 = sdkFor(sim);
    t = await openTestStore('egw-subnets-');
  });
  afterEach(async () => {
    ec2.destroy();
    await sim.close();
    await t.cleanup();
  });

  const conditionOf = async (pool: string): Promise<unknown> => {
    const p = (await listResources(t.store, 'IPPool')).find((x) => x.metadata.name === pool);
    return ((p?.status as { conditions?: { type: string }[] } | undefined)?.conditions ?? []).find((c) => c.type === POOL_SUBNET_CONDITION);
  };

  it('records each AWS-backed pool subnet (CIDR, zone, VPC), flags pools outside their subnet and unknown subnets', async () => {
    await put(
      t.store,
      ipPool('egress-red-west-1', '100.64.0.4/30', EGRESS_A),
      ipPool('egress-red-west-2', '100.64.4.4/30', EGRESS_B),
      ipPool('misplaced', '100.64.8.0/30', EGRESS_A),
      ipPool('ghost', '100.64.12.0/30', UNKNOWN),
      ipPool('plain', '10.0.0.0/16', undefined),
      awsSubnet(UNKNOWN, '100.64.12.0/22', 'us-west-2a'),
    );
    const loop = new AwsSubnetFactsLoop({ store: t.store, ec2, clock });
    const report = await loop.runOnce();
    expect(report).toEqual({ written: [EGRESS_A, EGRESS_B], removed: [UNKNOWN], unknownSubnets: [UNKNOWN], outsideSubnet: ['misplaced'] });
    const records = await listResources(t.store, 'AWSSubnet');
    expect(records.map((r) => r.spec)).toEqual([
      { subnetID: EGRESS_A, cidr: '100.64.0.0/22', availabilityZone: 'us-west-2a', vpcID: VPC },
      { subnetID: EGRESS_B, cidr: '100.64.4.0/22', availabilityZone: 'us-west-2b', vpcID: VPC },
    ]);
    expect(await conditionOf('egress-red-west-1')).toMatchObject({ status: 'True', reason: 'Valid' });
    expect(await conditionOf('misplaced')).toMatchObject({ status: 'False', reason: 'CIDRNotInSubnet' });
    expect(await conditionOf('ghost')).toMatchObject({ status: 'False', reason: 'InvalidSubnetID.NotFound' });
    expect(await conditionOf('plain')).toBeUndefined();
    // Level-triggered: a second pass writes nothing.
    const revision = await t.store.currentRevision();
    expect(await loop.runOnce()).toEqual({ written: [], removed: [], unknownSubnets: [UNKNOWN], outsideSubnet: ['misplaced'] });
    expect(await t.store.currentRevision()).toBe(revision);
  });

  it('reports an EC2 refusal with its code on every AWS-backed pool', async () => {
    const denied = await startFabricSim({ allowActions: iamPolicyActions().filter((a) => a !== 'ec2:DescribeSubnets') });
    const deniedEc2 = sdkFor(denied);
    try {
      await put(t.store, ipPool('egress-red-west-1', '100.64.0.4/30', EGRESS_A));
      const report = await new AwsSubnetFactsLoop({ store: t.store, ec2: deniedEc2, clock }).runOnce();
      expect(report.error).toMatchObject({ awsCode: 'UnauthorizedOperation' });
      expect(await conditionOf('egress-red-west-1')).toMatchObject({ status: 'Unknown', reason: 'UnauthorizedOperation' });
      expect(await listResources(t.store, 'AWSSubnet')).toEqual([]);
    } finally {
      deniedEc2.destroy();
      await denied.close();
    }
  });

  it('runs at start and then every interval until stopped', async () => {
    await put(t.store, ipPool('egress-red-west-1', '100.64.0.4/30', EGRESS_A));
    const fake = new FakeClock();
    const stop = new AbortController();
    const loop = new AwsSubnetFactsLoop({ store: t.store, ec2, clock: fake }, { intervalMs: 1_000 });
    const running = loop.run(stop.signal);
    await new Promise((r) => setTimeout(r, 200));
    expect((await listResources(t.store, 'AWSSubnet')).map((r) => r.metadata.name)).toEqual([EGRESS_A]);
    await put(t.store, ipPool('egress-red-west-2', '100.64.4.4/30', EGRESS_B));
    fake.advance(1_000);
    await new Promise((r) => setTimeout(r, 200));
    expect((await listResources(t.store, 'AWSSubnet')).map((r) => r.metadata.name)).toEqual([EGRESS_A, EGRESS_B]);
    stop.abort();
    fake.advance(1_000);
    await running;
  });
});
