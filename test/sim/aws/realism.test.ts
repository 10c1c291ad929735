import {
  AttachNetworkInterfaceCommand,
  CreateNetworkInterfaceCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSubnetsCommand,
  DetachNetworkInterfaceCommand,
  EC2ServiceException,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/platform/clock.js';
import { SeededRandom } from '../../../src/sim/aws/prng.js';
import { AllowList, FailureInjector, sampleLatency } from '../../../src/sim/aws/realism.js';
import type { AwsSimHandle } from '../../../src/sim/aws/server.js';
import { bucketFor, Throttle } from '../../../src/sim/aws/throttle.js';
import type { SimDefinition } from '../../../src/sim/aws/world.js';
import { clientFor, EGRESS_A, expectAwsError, NODE_A, startTestSim } from './helpers.js';

describe('aws-sim realism knobs', () => {
  const sims: AwsSimHandle[] = [];
  const clients: EC2Client[] = [];
  const start = async (simSettings: SimDefinition, clock?: FakeClock, client: { maxAttempts?: number; retryDelayMs?: number } = {}): Promise<[AwsSimHandle, EC2Client]> => {
    const sim = await startTestSim({ simSettings, ...(clock === undefined ? {} : { clock }) });
    sims.push(sim);
    const ec2 = clientFor(sim, client);
    clients.push(ec2);
    return [sim, ec2];
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await Promise.all(sims.splice(0).map((s) => s.close()));
  });

  describe('throttling', () => {
    it("uses AWS's bucket sizes: 50 mutating calls, then RequestLimitExceeded (HTTP 503)", async () => {
      const [, ec2] = await start({ throttle: true }, new FakeClock());
      // DetachNetworkInterface is a plain mutating action (bucket 50, refill 5/s); the time is frozen.
      for (let i = 0; i < 50; i++) {
        await expectAwsError(ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId: `eni-attach-${String(i).padStart(17, '0')}` })), 'InvalidAttachmentID.NotFound');
      }
      await expectAwsError(ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId: 'eni-attach-00000000000000099' })), 'RequestLimitExceeded', 'Request limit exceeded.', 503);
      // Buckets are per action: another action is not affected.
      await ec2.send(new DescribeSubnetsCommand({}));
    });

    it('has a smaller bucket for unfiltered, unpaginated DescribeInstances (50), separate from the filtered one', async () => {
      const clock = new FakeClock();
      const [sim, ec2] = await start({ throttle: true }, clock);
      for (let i = 0; i < 50; i++) await ec2.send(new DescribeInstancesCommand({}));
      await expectAwsError(ec2.send(new DescribeInstancesCommand({})), 'RequestLimitExceeded');
      await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: [NODE_A] }] }));
      await ec2.send(new DescribeInstancesCommand({ MaxResults: 5 }));
      // Refill: 10 tokens per second.
      clock.advance(100);
      await ec2.send(new DescribeInstancesCommand({}));
      await expectAwsError(ec2.send(new DescribeInstancesCommand({})), 'RequestLimitExceeded');
      expect(sim.state().stats.throttled).toBe(2);
    });

    it("is retried by the SDK: the throttled call succeeds on the SDK's next attempt", async () => {
      const [sim, ec2] = await start({ throttle: { buckets: { CreateTags: { capacity: 2, refillPerSecond: 100 } } } }, undefined, { maxAttempts: 8, retryDelayMs: 20 });
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => ec2.send(new CreateTagsCommand({ Resources: [NODE_A], Tags: [{ Key: `k${i}`, Value: 'v' }] }))));
      expect(sim.state().stats.throttled).toBeGreaterThan(0);
      expect(Math.max(...results.map((r) => r.$metadata.attempts ?? 1))).toBeGreaterThan(1);
      expect(sim.state().stats.actions['CreateTags']?.errors['RequestLimitExceeded']).toBe(sim.state().stats.throttled);
    });

    it('can be turned off', async () => {
      const [sim, ec2] = await start({ throttle: false }, new FakeClock());
      for (let i = 0; i < 60; i++) await ec2.send(new DescribeInstancesCommand({}));
      expect(sim.state().stats.throttled).toBe(0);
    });

    it('maps actions to their published buckets', () => {
      expect(bucketFor('DescribeNetworkInterfaces', true)).toEqual({ key: 'DescribeNetworkInterfaces:unfiltered', spec: { capacity: 50, refillPerSecond: 10 } });
      expect(bucketFor('DescribeNetworkInterfaces', false).spec).toEqual({ capacity: 100, refillPerSecond: 20 });
      expect(bucketFor('DescribeSubnets', true).spec).toEqual({ capacity: 100, refillPerSecond: 20 });
      expect(bucketFor('AttachNetworkInterface', false).spec).toEqual({ capacity: 50, refillPerSecond: 5 });
      expect(bucketFor('AssociateAddress', false).spec).toEqual({ capacity: 50, refillPerSecond: 5 });
      expect(bucketFor('CreateNetworkInterface', false).spec).toEqual({ capacity: 100, refillPerSecond: 5 });
      expect(bucketFor('AssignPrivateIpAddresses', false).spec).toEqual({ capacity: 100, refillPerSecond: 5 });
      expect(bucketFor('CreateTags', false).spec).toEqual({ capacity: 100, refillPerSecond: 10 });
      const t = new Throttle(0.1, {});
      expect([t.take('AttachNetworkInterface', false, 0), ...Array.from({ length: 4 }, () => t.take('AttachNetworkInterface', false, 0))]).toEqual([true, true, true, true, true]);
      expect(t.take('AttachNetworkInterface', false, 0)).toBe(false);
      expect(t.take('AttachNetworkInterface', false, 2000)).toBe(true); // 0.5 tokens/s scaled
    });
  });

  describe('failure injection', () => {
    const outcomes = async (seed: number): Promise<string[]> => {
      const [, ec2] = await start({ seed, failureRate: 0.4 });
      const out: string[] = [];
      for (let i = 0; i < 40; i++) {
        out.push(await ec2.send(new DescribeSubnetsCommand({})).then(() => 'ok', (e: unknown) => (e instanceof EC2ServiceException ? `${e.name}/${e.$metadata.httpStatusCode}` : 'crash')));
      }
      return out;
    };

    it('is deterministic for a seed, and fails with InternalError/500, Unavailable/503 or RequestLimitExceeded/503', async () => {
      const a = await outcomes(11);
      const b = await outcomes(11);
      const c = await outcomes(12);
      expect(a).toEqual(b);
      expect(a).not.toEqual(c);
      const failed = a.filter((x) => x !== 'ok');
      expect(failed.length).toBeGreaterThan(5);
      expect(failed.length).toBeLessThan(30);
      for (const f of failed) expect(['InternalError/500', 'Unavailable/503', 'RequestLimitExceeded/503']).toContain(f);
    });

    it('can lose the reply after the call took effect (failureAfterCommit)', async () => {
      const [sim, ec2] = await start({ failureRate: 1, failureKinds: ['InternalError'], failureAfterCommit: 1, failureActions: ['CreateNetworkInterface'] });
      await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.9' })), 'InternalError', undefined, 500);
      const enis = await ec2.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'private-ip-address', Values: ['100.64.0.9'] }] }));
      expect(enis.NetworkInterfaces).toHaveLength(1);
      expect(sim.state().stats.injected).toBe(1);
    });

    it('draws the same random numbers whatever the verdict (so verdicts replay)', () => {
      const inj = (actions?: string[]): FailureInjector =>
        new FailureInjector({ failureRate: 0.5, failureKinds: ['InternalError', 'Unavailable'], failureAfterCommit: 0, failureActions: actions }, new SeededRandom(3));
      const all = inj();
      const some = inj(['AttachNetworkInterface']);
      const seq = ['AttachNetworkInterface', 'DescribeSubnets', 'AttachNetworkInterface', 'AttachNetworkInterface', 'DescribeSubnets', 'AttachNetworkInterface'];
      const a = seq.map((x) => all.decide(x));
      const b = seq.map((x) => some.decide(x));
      seq.forEach((x, i) => {
        if (x === 'AttachNetworkInterface') expect(b[i]).toEqual(a[i]);
        else expect(b[i]).toBeUndefined();
      });
    });
  });

  describe('IAM allow-list', () => {
    it('answers UnauthorizedOperation (403) with an encoded authorization message for actions outside the list', async () => {
      const [, ec2] = await start({ allowActions: ['ec2:Describe*', 'ec2:CreateNetworkInterface'] });
      await ec2.send(new DescribeInstancesCommand({}));
      const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A }))).NetworkInterface?.NetworkInterfaceId;
      const err = await expectAwsError(ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: NODE_A, DeviceIndex: 1 })), 'UnauthorizedOperation', 'You are not authorized to perform this operation. Encoded authorization failure message: ', 403);
      const encoded = err.message.split('message: ')[1] ?? '';
      const decoded = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as { context: { action: string; principal: string } };
      expect(decoded.context.action).toBe('ec2:AttachNetworkInterface');
      expect(decoded.context.principal).toContain('AKIDEGWTEST');
    });

    it('matches IAM-style patterns, case-insensitively', () => {
      const list = new AllowList(['ec2:Describe*', 'AssociateAddress', 'ec2:?nassignPrivateIpAddresses']);
      expect(list.allows('DescribeTags')).toBe(true);
      expect(list.allows('AssociateAddress')).toBe(true);
      expect(list.allows('UnassignPrivateIpAddresses')).toBe(true);
      expect(list.allows('DisassociateAddress')).toBe(false);
      expect(new AllowList(['EC2:describeinstances']).allows('DescribeInstances')).toBe(true);
      expect(new AllowList(['*']).allows('CreateTags')).toBe(true);
      expect(new AllowList(undefined).allows('CreateTags')).toBe(true);
      expect(new AllowList([]).allows('CreateTags')).toBe(false);
    });

    it('DryRun answers DryRunOperation (412) when allowed, UnauthorizedOperation when not, and changes nothing', async () => {
      const [sim, ec2] = await start({ allowActions: ['ec2:CreateNetworkInterface'] });
      await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, DryRun: true })), 'DryRunOperation', undefined, 412);
      await expectAwsError(ec2.send(new DescribeInstancesCommand({ DryRun: true })), 'UnauthorizedOperation');
      expect(Object.keys(sim.state().state.enis)).toHaveLength(3); // the three primary ENIs only
    });
  });

  describe('latency', () => {
    it('samples fixed + jitter from its own seeded stream', () => {
      const r1 = new SeededRandom(5);
      const r2 = new SeededRandom(5);
      const a = Array.from({ length: 20 }, () => sampleLatency({ fixedMs: 40, jitterMs: 10 }, r1));
      const b = Array.from({ length: 20 }, () => sampleLatency({ fixedMs: 40, jitterMs: 10 }, r2));
      expect(a).toEqual(b);
      for (const x of a) expect(x >= 40 && x < 50).toBe(true);
      expect(sampleLatency({ fixedMs: 7, jitterMs: 0 }, r1)).toBe(7);
    });
  });
});
