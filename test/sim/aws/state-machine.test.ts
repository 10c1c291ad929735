import {
  AssignPrivateIpAddressesCommand,
  AssociateAddressCommand,
  AttachNetworkInterfaceCommand,
  CreateNetworkInterfaceCommand,
  DeleteNetworkInterfaceCommand,
  DescribeNetworkInterfacesCommand,
  DetachNetworkInterfaceCommand,
  DisassociateAddressCommand,
  UnassignPrivateIpAddressesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/platform/clock.js';
import { Ec2Engine } from '../../../src/sim/aws/engine.js';
import type { FabricAddress, FabricDriver, FabricEni, FabricInstance, FabricSnapshot } from '../../../src/sim/aws/fabric.js';
import { builtInInstanceTypes } from '../../../src/sim/aws/instance-types.js';
import { initialState } from '../../../src/sim/aws/model.js';
import type { AwsSimHandle } from '../../../src/sim/aws/server.js';
import { parseWorld } from '../../../src/sim/aws/world.js';
import { clientFor, EGRESS_A, EIP1, expectAwsError, NODE_A, startTestSim, testWorld } from './helpers.js';

/** A fabric driver that records what it is told, and can be made to fail. */
class RecordingFabric implements FabricDriver {
  log: string[] = [];
  syncs: FabricSnapshot[] = [];
  failNext = 0;

  private record(line: string): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new Error('link busy'));
    }
    this.log.push(line);
    return Promise.resolve();
  }
  sync(snapshot: FabricSnapshot): Promise<void> {
    this.syncs.push(snapshot);
    return Promise.resolve();
  }
  eniAttached(eni: FabricEni, instance: FabricInstance): Promise<void> {
    return this.record(`attached ${eni.id} ${instance.id} #${eni.deviceIndex ?? '-'} [${eni.privateIps.join(' ')}] ${eni.macAddress.length}`);
  }
  eniDetached(eni: FabricEni, instance: FabricInstance): Promise<void> {
    return this.record(`detached ${eni.id} ${instance.id}`);
  }
  privateIpAssigned(eni: FabricEni, ip: string): Promise<void> {
    return this.record(`assigned ${eni.id} ${ip}`);
  }
  privateIpUnassigned(eni: FabricEni, ip: string): Promise<void> {
    return this.record(`unassigned ${eni.id} ${ip}`);
  }
  addressAssociated(a: FabricAddress): Promise<void> {
    return this.record(`associated ${a.publicIp} ${a.privateIp} ${a.networkInterfaceId}`);
  }
  addressDisassociated(a: FabricAddress): Promise<void> {
    return this.record(`disassociated ${a.publicIp} ${a.privateIp}`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('aws-sim ENI state machine and fabric hook', () => {
  let sim: AwsSimHandle | undefined;
  let ec2: EC2Client | undefined;
  afterEach(async () => {
    ec2?.destroy();
    await sim?.close();
    sim = undefined;
  });

  it('available → attaching → in-use after the attach latency; detaching → available after the detach latency', async () => {
    // A fake clock makes the phases exact: every call first completes what is due at "now".
    const clock = new FakeClock();
    const fabric = new RecordingFabric();
    sim = await startTestSim({ fabric, clock, simSettings: { attachLatencyMs: 2000, detachLatencyMs: 1500 } });
    ec2 = clientFor(sim);
    const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.4' }))).NetworkInterface?.NetworkInterfaceId ?? '';
    const status = async (): Promise<[string | undefined, string | undefined]> => {
      const n = (await ec2!.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eni] }))).NetworkInterfaces?.[0];
      return [n?.Status, n?.Attachment?.Status];
    };
    expect(await status()).toEqual(['available', undefined]);
    const { AttachmentId } = await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: NODE_A, DeviceIndex: 1 }));
    expect(await status()).toEqual(['attaching', 'attaching']);
    // While attaching, the device index is taken and the ENI cannot be deleted.
    await expectAwsError(ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: eni })), 'InvalidNetworkInterface.InUse');
    clock.advance(1999);
    expect(await status()).toEqual(['attaching', 'attaching']);
    await sim.idle();
    expect(fabric.log).toEqual([]);
    clock.advance(1);
    expect(await status()).toEqual(['in-use', 'attached']);
    await sim.idle();
    expect(fabric.log).toEqual([`attached ${eni} ${NODE_A} #1 [100.64.0.4] 17`]);

    await ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId }));
    expect(await status()).toEqual(['detaching', 'detaching']);
    await ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId })); // again while detaching: no error
    clock.advance(1500);
    expect(await status()).toEqual(['available', undefined]);
    await sim.idle();
    expect(fabric.log.at(-1)).toBe(`detached ${eni} ${NODE_A}`);
    await expectAwsError(ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId })), 'InvalidAttachmentID.NotFound');
  });

  it('completes an attachment on its own timer, without further calls', async () => {
    const fabric = new RecordingFabric();
    sim = await startTestSim({ fabric, simSettings: { attachLatencyMs: 30 } });
    ec2 = clientFor(sim);
    const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A }))).NetworkInterface?.NetworkInterfaceId ?? '';
    await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: NODE_A, DeviceIndex: 1 }));
    for (let i = 0; i < 200 && fabric.log.length === 0; i++) await sleep(10);
    expect(fabric.log).toHaveLength(1);
    expect(sim.state().state.enis[eni]?.status).toBe('in-use');
  });

  it('Force detaches at once', async () => {
    sim = await startTestSim({ simSettings: { detachLatencyMs: 60_000 } });
    ec2 = clientFor(sim);
    const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A }))).NetworkInterface?.NetworkInterfaceId ?? '';
    const { AttachmentId } = await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: NODE_A, DeviceIndex: 1 }));
    await ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId, Force: true }));
    await ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: eni }));
  });

  it('calls the driver after each committed change, in order, with only attached ENIs routed', async () => {
    const fabric = new RecordingFabric();
    sim = await startTestSim({ fabric });
    ec2 = clientFor(sim);
    const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.4' }))).NetworkInterface?.NetworkInterfaceId ?? '';
    // Not attached yet: no routing event for its address, but the Elastic IP mapping is reported.
    await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: ['100.64.0.5'] }));
    const { AssociationId } = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: eni, PrivateIpAddress: '100.64.0.5' }));
    const { AttachmentId } = await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: NODE_A, DeviceIndex: 1 }));
    await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: ['100.64.0.6'] }));
    await ec2.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: ['100.64.0.6'] }));
    await ec2.send(new DisassociateAddressCommand({ AssociationId }));
    await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: eni }));
    await ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId }));
    await ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: eni }));
    await sim.idle();
    expect(fabric.log).toEqual([
      `associated 203.0.113.7 100.64.0.5 ${eni}`,
      `attached ${eni} ${NODE_A} #1 [100.64.0.4 100.64.0.5] 17`,
      `assigned ${eni} 100.64.0.6`,
      `unassigned ${eni} 100.64.0.6`,
      'disassociated 203.0.113.7 100.64.0.5',
      `associated 203.0.113.7 100.64.0.4 ${eni}`,
      `detached ${eni} ${NODE_A}`,
      'disassociated 203.0.113.7 100.64.0.4',
    ]);
    // The driver was synced with the whole state at start: the instances and their primary ENIs.
    expect(fabric.syncs[0]?.attachedEnis.map((e) => e.instanceId)).toEqual(expect.arrayContaining([NODE_A]));
  });

  it('retries a failing driver and keeps the EC2 state; a later sync repairs the fabric', async () => {
    const fabric = new RecordingFabric();
    sim = await startTestSim({ fabric });
    ec2 = clientFor(sim);
    const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A }))).NetworkInterface?.NetworkInterfaceId ?? '';
    fabric.failNext = 2; // two failures, then the third attempt succeeds
    await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: NODE_A, DeviceIndex: 1 }));
    await sim.idle();
    expect(fabric.log).toHaveLength(1);
    expect(sim.state().fabric).toMatchObject({ failures: 0, degraded: false });

    fabric.failNext = 10; // give up on the event, then sync
    await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: 1 }));
    await sim.idle();
    expect(sim.state().fabric.failures).toBe(1);
    const eniNow = (await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eni] }))).NetworkInterfaces?.[0];
    expect(eniNow?.PrivateIpAddresses).toHaveLength(2); // the API state was not rolled back
    for (let i = 0; i < 50 && sim.state().fabric.degraded; i++) await sleep(20);
    expect(sim.state().fabric.degraded).toBe(false);
    expect(fabric.syncs.at(-1)?.attachedEnis.find((e) => e.id === eni)?.privateIps).toHaveLength(2);
  });
});

describe('Ec2Engine transitions under a fake clock', () => {
  it('completes an attachment exactly when its latency has passed', () => {
    let now = 1_000_000;
    const world = parseWorld(testWorld(), 'world', builtInInstanceTypes());
    const engine = new Ec2Engine(world, initialState(world, 1, now), builtInInstanceTypes(), {
      now: () => now,
      attachDelayMs: () => 5000,
      detachDelayMs: () => 1000,
    });
    const { eni } = engine.createNetworkInterface({ subnetId: EGRESS_A, privateIp: undefined, secondaryCount: undefined, groups: [], description: undefined, tags: [], clientToken: undefined, canonical: '' });
    engine.attachNetworkInterface({ networkInterfaceId: eni.id, instanceId: NODE_A, deviceIndex: 1, networkCardIndex: 0 });
    expect(engine.nextTransitionAt()).toBe(now + 5000);
    now += 4999;
    engine.tick();
    expect(engine.eni(eni.id).status).toBe('attaching');
    expect(engine.takeEvents()).toEqual([]);
    now += 1;
    engine.tick();
    expect(engine.eni(eni.id).status).toBe('in-use');
    expect(engine.takeEvents().map((e) => e.kind)).toEqual(['eniAttached']);
    expect(engine.nextTransitionAt()).toBeUndefined();
  });
});
