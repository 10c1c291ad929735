import { AttachNetworkInterfaceCommand, CreateNetworkInterfaceCommand, EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverInstance, SdkImds } from '../../src/aws/imds.js';
import { ImdsAttachWatcher } from '../../src/agent/fabric/ports.js';
import { startAwsSim } from '../../src/sim/aws/server.js';
import type { AwsSimHandle } from '../../src/sim/aws/server.js';
import { FakeClock } from '../../src/platform/clock.js';
import { EGRESS_A, fabricWorld, NODE_A1, NODE_B1, T0 } from './helpers.js';

describe('instance discovery through IMDSv2 (@aws-sdk/ec2-metadata-service against the emulator)', () => {
  let sim: AwsSimHandle;
  const clock = new FakeClock(T0);

  beforeAll(async () => {
    sim = await startAwsSim({ world: fabricWorld(), clock, listen: '127.0.0.1:0', imdsBindings: [{ listen: '127.0.0.1:0', instanceId: NODE_A1 }, { listen: '127.0.0.1:0', instanceId: NODE_B1 }] });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('reads the instance facts the agent needs', async () => {
    const facts = await discoverInstance(new SdkImds({ endpoint: sim.imdsBindingUrls[NODE_A1]! }));
    const primary = Object.values(sim.state().state.enis).find((e) => e.primaryOf === NODE_A1)!;
    expect(facts).toEqual({ instanceId: NODE_A1, instanceType: 't3.large', availabilityZone: 'us-west-2a', region: 'us-west-2', localIpv4: '100.64.16.10', primaryMac: primary.macAddress });
  });

  it('honours AWS_EC2_METADATA_SERVICE_ENDPOINT', async () => {
    const saved = process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'];
    process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] = sim.imdsBindingUrls[NODE_B1]!;
    try {
      expect(await discoverInstance(new SdkImds())).toMatchObject({ instanceId: NODE_B1, availabilityZone: 'us-west-2b' });
    } finally {
      if (saved === undefined) delete process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'];
      else process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] = saved;
    }
  });

  it('fails with AwsError ImdsUnavailable when there is no IMDS', async () => {
    const err: unknown = await discoverInstance(new SdkImds({ endpoint: 'http://127.0.0.1:9', retries: 0, timeoutMs: 200 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AwsError', retry: 'retry', details: { awsCode: 'ImdsUnavailable' } });
  });

  it('sees an attachment complete through the MAC list, without EC2 calls', async () => {
    const watcher = new ImdsAttachWatcher(new SdkImds({ endpoint: sim.imdsBindingUrls[NODE_A1]! }));
    const ec2 = new EC2Client({ endpoint: sim.url, region: 'us-west-2', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.200' }))).NetworkInterface!;
    const calls = (): number => Object.values(sim.state().stats.actions).reduce((n, c) => n + c.calls, 0);
    clock.advance(5_000); // the new ENI's ID propagates
    const before = calls();
    expect((await watcher.attachedMacs()).has(eni.MacAddress!)).toBe(false);
    await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni.NetworkInterfaceId!, InstanceId: NODE_A1, DeviceIndex: 1 }));
    // IMDS lists an ENI once its attachment has completed (seconds on the harsh emulator).
    expect((await watcher.attachedMacs()).has(eni.MacAddress!)).toBe(false);
    clock.advance(3_000);
    expect((await watcher.attachedMacs()).has(eni.MacAddress!)).toBe(true);
    expect(calls() - before).toBe(1);
    ec2.destroy();
  });
});
