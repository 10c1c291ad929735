import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { iamPolicyActions } from '../../src/aws/iam-policy.js';
import { AwsSubnetFactsLoop, POOL_SUBNET_CONDITION } from '../../src/controller/aws-subnets.js';
import { listResources } from '../../src/datastore/resources.js';
import { FakeClock } from '../../src/platform/clock.js';
import type { AwsSimHandle } from '../../src/sim/aws/server.js';
import type { SdkEc2 } from '../../src/aws/sdk-ec2.js';
import { EGRESS_A, EGRESS_B, KIND, sdkFor, startFabricSim, VPC } from '../aws/helpers.js';
import type { TestStore } from '../agent/fabric/store.js';
import { awsSubnet, ipPool, openTestStore, put } from '../agent/fabric/store.js';

const UNKNOWN = 'subnet-0000000000000dead';

describe('controller AWS subnet facts', () => {
  let sim: AwsSimHandle;
  let ec2: SdkEc2;
  let t: TestStore;
  const clock = new FakeClock(Date.parse('2025-01-01T00:00:00Z'));

  beforeEach(async () => {
    // The kind emulator: these tests are about the facts, not EC2's lag or throttling (test/aws covers those).
    sim = await startFabricSim(KIND);
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
    // EC2 is eventually consistent: the first NotFound does not remove the record, the second in a row does.
    expect(report).toEqual({ written: [EGRESS_A, EGRESS_B], removed: [], unknownSubnets: [UNKNOWN], outsideSubnet: ['misplaced'] });
    expect((await listResources(t.store, 'AWSSubnet')).map((r) => r.metadata.name)).toContain(UNKNOWN);
    expect(await loop.runOnce()).toEqual({ written: [], removed: [UNKNOWN], unknownSubnets: [UNKNOWN], outsideSubnet: ['misplaced'] });
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

  it('a NotFound not confirmed by the next pass keeps the record', async () => {
    await put(t.store, ipPool('egress-red-west-1', '100.64.0.4/30', EGRESS_A), awsSubnet(UNKNOWN, '100.64.12.0/22', 'us-west-2a'), ipPool('ghost', '100.64.12.0/30', UNKNOWN));
    const loop = new AwsSubnetFactsLoop({ store: t.store, ec2, clock });
    expect((await loop.runOnce()).removed).toEqual([]);
    // The pool goes away (EC2 is not asked about the subnet), then comes back: the count starts again.
    await t.store.commit([{ op: 'delete', key: { kind: 'IPPool', name: 'ghost' } }]);
    expect((await loop.runOnce()).removed).toEqual([]);
    await put(t.store, ipPool('ghost', '100.64.12.0/30', UNKNOWN));
    expect((await loop.runOnce()).removed).toEqual([]);
    expect((await listResources(t.store, 'AWSSubnet')).map((r) => r.metadata.name)).toContain(UNKNOWN);
  });

  it('writes with compare-and-swap: a record changed between read and write is not overwritten in that pass', async () => {
    await put(t.store, ipPool('egress-red-west-1', '100.64.0.4/30', EGRESS_A), awsSubnet(EGRESS_A, '100.64.0.0/24', 'us-west-2b'));
    let raced = false;
    const racing = new Proxy(t.store, {
      get(target, prop, receiver) {
        if (prop !== 'commit') {
          const v: unknown = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        }
        return async (ops: Parameters<typeof target.commit>[0]) => {
          if (!raced && ops.some((o) => o.key.kind === 'AWSSubnet')) {
            raced = true;
            // Another writer (a second controller replica, or the status writer) gets in first.
            const cur = (await target.get({ kind: 'AWSSubnet', name: EGRESS_A }))!;
            await target.commit([{ op: 'put', key: cur.key, value: { ...cur.value, status: { note: 'written meanwhile' } } }]);
          }
          return target.commit(ops);
        };
      },
    });
    const loop = new AwsSubnetFactsLoop({ store: racing, ec2, clock });
    const first = await loop.runOnce();
    expect(first.conflicts).toEqual([EGRESS_A]);
    expect(first.written).toEqual([]);
    const kept = (await listResources(t.store, 'AWSSubnet'))[0]!;
    expect(kept.status).toEqual({ note: 'written meanwhile' });
    // The next pass converges the facts and keeps the other writer's status.
    expect((await loop.runOnce()).written).toEqual([EGRESS_A]);
    const fixed = (await listResources(t.store, 'AWSSubnet'))[0]!;
    expect(fixed.spec).toMatchObject({ cidr: '100.64.0.0/22', availabilityZone: 'us-west-2a' });
    expect(fixed.status).toEqual({ note: 'written meanwhile' });
  });

  it('reports an EC2 refusal with its code on every AWS-backed pool', async () => {
    const denied = await startFabricSim({ ...KIND, allowActions: iamPolicyActions().filter((a) => a !== 'ec2:DescribeSubnets') });
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
