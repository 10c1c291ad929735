import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AssociateAddressCommand,
  AttachNetworkInterfaceCommand,
  CreateNetworkInterfaceCommand,
  CreateTagsCommand,
  DescribeAddressesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeTagsCommand,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/platform/clock.js';
import { isEgwError } from '../../../src/platform/errors.js';
import { renderAwsSimState } from '../../../src/sim/aws/dump.js';
import { dumpAwsSimState, startAwsSim } from '../../../src/sim/aws/server.js';
import { clientFor, EGRESS_A, EIP1, NODE_A, startTestSim, testWorld } from './helpers.js';

describe('aws-sim state file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egw-aws-sim-persist-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps ENIs, attachments, addresses, tags and client tokens across a restart', async () => {
    const stateFile = join(dir, 'state.json');
    const first = await startTestSim({ stateFile });
    const ec2 = clientFor(first);
    const created = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.4', ClientToken: 'keep-me', TagSpecifications: [{ ResourceType: 'network-interface', Tags: [{ Key: 'egw:owner', Value: 'x' }] }] }));
    const eni = created.NetworkInterface?.NetworkInterfaceId ?? '';
    const { AttachmentId } = await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: NODE_A, DeviceIndex: 1 }));
    const { AssociationId } = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: eni }));
    await ec2.send(new CreateTagsCommand({ Resources: [NODE_A], Tags: [{ Key: 'after', Value: 'restart' }] }));
    ec2.destroy();
    await first.close();
    // Written atomically: no temporary file is left beside the state file.
    expect(await readdir(dir)).toEqual(['state.json']);
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toMatchObject({ format: 'egw-aws-sim-state/v1' });

    const second = await startTestSim({ stateFile });
    const ec2b = clientFor(second);
    try {
      const after = (await ec2b.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eni] }))).NetworkInterfaces?.[0];
      expect(after).toMatchObject({ Status: 'in-use', Attachment: { AttachmentId, InstanceId: NODE_A }, MacAddress: created.NetworkInterface?.MacAddress, TagSet: [{ Key: 'egw:owner', Value: 'x' }] });
      const eip = (await ec2b.send(new DescribeAddressesCommand({ AllocationIds: [EIP1] }))).Addresses?.[0];
      expect(eip?.AssociationId).toBe(AssociationId);
      const tags = await ec2b.send(new DescribeTagsCommand({ Filters: [{ Name: 'key', Values: ['after'] }] }));
      expect(tags.Tags?.[0]?.ResourceId).toBe(NODE_A);
      // The client token still answers with the same ENI; new IDs never collide with old ones.
      const retry = await ec2b.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.4', ClientToken: 'keep-me', TagSpecifications: [{ ResourceType: 'network-interface', Tags: [{ Key: 'egw:owner', Value: 'x' }] }] }));
      expect(retry.NetworkInterface?.NetworkInterfaceId).toBe(eni);
      const fresh = await ec2b.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A }));
      expect(fresh.NetworkInterface?.NetworkInterfaceId).not.toBe(eni);
    } finally {
      ec2b.destroy();
      await second.close();
    }
  });

  it('resumes an attachment that was in flight when the emulator stopped', async () => {
    const stateFile = join(dir, 'state.json');
    const clock = new FakeClock(1_800_000_000_000);
    const first = await startTestSim({ stateFile, clock, simSettings: { attachLatencyMs: 5000 } });
    const ec2 = clientFor(first);
    const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A }))).NetworkInterface?.NetworkInterfaceId ?? '';
    await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: NODE_A, DeviceIndex: 1 }));
    ec2.destroy();
    await first.close();
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toMatchObject({ enis: { [eni]: { status: 'attaching' } } });

    const second = await startTestSim({ stateFile, clock: new FakeClock(1_800_000_000_000 + 6000), simSettings: { attachLatencyMs: 5000 } });
    try {
      expect(second.state().state.enis[eni]?.status).toBe('in-use');
    } finally {
      await second.close();
    }
  });

  it('refuses a state file written for another world, and a file that is not a state file', async () => {
    const stateFile = join(dir, 'state.json');
    const first = await startTestSim({ stateFile });
    await first.close();
    const other = testWorld();
    other.elasticIps = [];
    const err = await startAwsSim({ world: other, listen: '127.0.0.1:0', stateFile }).then(
      async (unexpected) => unexpected.close(),
      (e: unknown) => e,
    );
    expect(isEgwError(err, 'InvalidInput')).toBe(true);
    expect((err as Error).message).toContain('different world');

    const junk = join(dir, 'junk.json');
    await import('node:fs/promises').then((fs) => fs.writeFile(junk, '{"hello": 1}'));
    const err2 = await startTestSim({ stateFile: junk }).then(
      async (unexpected) => unexpected.close(),
      (e: unknown) => e,
    );
    expect(isEgwError(err2, 'InvalidInput')).toBe(true);
  });

  it('dumps the state from a running emulator and from a state file, and renders it as tables', async () => {
    const stateFile = join(dir, 'state.json');
    const sim = await startTestSim({ stateFile });
    const ec2 = clientFor(sim);
    try {
      const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.4' }))).NetworkInterface?.NetworkInterfaceId ?? '';
      await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: NODE_A, DeviceIndex: 1 }));
      await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: eni }));
      await sim.idle();
      const live = await dumpAwsSimState({ url: sim.url });
      expect(live.format).toBe('egw-aws-sim-dump/v1');
      expect(live.state.enis[eni]?.attachment?.instanceId).toBe(NODE_A);
      const text = renderAwsSimState(live);
      expect(text).toContain(`${eni}`);
      expect(text).toContain('100.64.0.4→203.0.113.7');
      expect(text).toMatch(/AttachNetworkInterface\s+1\s+1/);
      const fromFile = await dumpAwsSimState({ stateFile });
      expect(fromFile.state.enis[eni]?.status).toBe('in-use');
      expect(renderAwsSimState(fromFile)).toContain(eni);
    } finally {
      ec2.destroy();
      await sim.close();
    }
    const unreachable = await dumpAwsSimState({ url: sim.url }).catch((e: unknown) => e);
    expect(isEgwError(unreachable, 'AwsError')).toBe(true);
  });
});
