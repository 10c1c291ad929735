import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AssociateAddressCommand,
  AttachNetworkInterfaceCommand,
  CreateNetworkInterfaceCommand,
  DescribeAddressesCommand,
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  ModifyNetworkInterfaceAttributeCommand,
  TerminateInstancesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/platform/clock.js';
import { renderAwsSimState } from '../../../src/sim/aws/dump.js';
import { Ec2Engine } from '../../../src/sim/aws/engine.js';
import { Imds } from '../../../src/sim/aws/imds.js';
import { builtInInstanceTypes } from '../../../src/sim/aws/instance-types.js';
import { initialState } from '../../../src/sim/aws/model.js';
import type { AwsSimHandle } from '../../../src/sim/aws/server.js';
import { defaultSimSettings, parseWorld } from '../../../src/sim/aws/world.js';
import type { SimDefinition } from '../../../src/sim/aws/world.js';
import { clientFor, EGRESS_A, EIP1, EIP2, expectAwsError, NODE_A, NODE_B, startTestSim, testWorld } from './helpers.js';

// The behaviours that make the emulator as unforgiving as AWS, each on its own (the other tests of this
// directory switch them off to check one semantic at a time).

const T0 = Date.parse('2025-01-01T00:00:00Z');

describe('aws-sim, as unforgiving as AWS', () => {
  let sim: AwsSimHandle | undefined;
  let ec2: EC2Client | undefined;
  let clock: FakeClock;
  const start = async (simSettings: SimDefinition): Promise<EC2Client> => {
    clock = new FakeClock(T0);
    sim = await startTestSim({ simSettings, clock });
    ec2 = clientFor(sim);
    return ec2;
  };
  afterEach(async () => {
    ec2?.destroy();
    await sim?.close();
    sim = undefined;
    ec2 = undefined;
  });
  const inSubnet = async (c: EC2Client): Promise<string[]> =>
    ((await c.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'subnet-id', Values: [EGRESS_A] }] }))).NetworkInterfaces ?? []).map(
      (e) => `${e.PrivateIpAddress ?? ''} ${e.Status ?? ''}`,
    );

  it('is harsh by default: Describe lag and new IDs of seconds, random addresses, IMDS hop limit 1', () => {
    const s = defaultSimSettings();
    expect(s.describeLag).toEqual({ fixedMs: 1000, jitterMs: 2000 });
    expect(s.createPropagation).toEqual({ fixedMs: 1000, jitterMs: 2000 });
    expect(s.addressPick).toBe('random');
    expect(s.imds.hopLimit).toBe(1);
    expect(s.throttle.enabled).toBe(true);
    const w = parseWorld(testWorld({ describeLagMs: 0, createPropagationMs: { fixed: 5 }, addressPick: 'lowest', imds: { hopLimit: 2 } }), 'world', builtInInstanceTypes());
    expect([w.sim.describeLag, w.sim.createPropagation, w.sim.addressPick, w.sim.imds.hopLimit]).toEqual([{ fixedMs: 0, jitterMs: 0 }, { fixedMs: 5, jitterMs: 0 }, 'lowest', 2]);
    expect(() => parseWorld(testWorld({ addressPick: 'highest' as 'lowest' }), 'w.yaml', builtInInstanceTypes())).toThrow(/sim.addressPick: must be random or lowest/);
    expect(() => parseWorld(testWorld({ imds: { hopLimit: 0 } }), 'w.yaml', builtInInstanceTypes())).toThrow(/sim.imds.hopLimit/);
  });

  it('shows a change to Describe calls only after the lag, in order, never half of a call', async () => {
    const c = await start({ describeLagMs: { fixed: 2000 }, createPropagationMs: 0 });
    await c.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.10', SecondaryPrivateIpAddressCount: 2 }));
    expect(await inSubnet(c)).toEqual([]);
    clock.advance(1000);
    const eni = (await c.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.11' }))).NetworkInterface!;
    clock.advance(1001);
    // The first call is visible, the second not yet; the first one with all its addresses.
    const [first, ...rest] = (await c.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'subnet-id', Values: [EGRESS_A] }] }))).NetworkInterfaces ?? [];
    expect(rest).toEqual([]);
    expect(first?.PrivateIpAddresses).toHaveLength(3);
    // Describe by ID is NotFound too while the ENI is not visible (EC2's documented example).
    await expectAwsError(c.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eni.NetworkInterfaceId!] })), 'InvalidNetworkInterfaceID.NotFound');
    clock.advance(1000);
    expect(await inSubnet(c)).toHaveLength(2);
    // An attachment shows late too: EC2 is the truth, Describe its lagging picture.
    await c.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni.NetworkInterfaceId!, InstanceId: NODE_A, DeviceIndex: 1 }));
    expect(sim!.state().state.enis[eni.NetworkInterfaceId!]?.status).toBe('in-use');
    expect(await inSubnet(c)).toContain('100.64.0.11 available');
    clock.advance(2001);
    expect(await inSubnet(c)).toContain('100.64.0.11 in-use');
  });

  it("answers NotFound for a new ENI's ID until it has propagated; its ClientToken still finds it", async () => {
    const c = await start({ describeLagMs: 0, createPropagationMs: { fixed: 1500 } });
    const input = { SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.10', ClientToken: 'harsh-1' };
    const eni = (await c.send(new CreateNetworkInterfaceCommand(input))).NetworkInterface!;
    const attach = new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni.NetworkInterfaceId!, InstanceId: NODE_A, DeviceIndex: 1 });
    await expectAwsError(c.send(attach), 'InvalidNetworkInterfaceID.NotFound', eni.NetworkInterfaceId, 400);
    await expectAwsError(
      c.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: eni.NetworkInterfaceId!, SourceDestCheck: { Value: false } })),
      'InvalidNetworkInterfaceID.NotFound',
    );
    expect((await c.send(new CreateNetworkInterfaceCommand(input))).NetworkInterface?.NetworkInterfaceId).toBe(eni.NetworkInterfaceId);
    clock.advance(1500);
    expect((await c.send(attach)).AttachmentId).toMatch(/^eni-attach-/);
  });

  it('hands out random free addresses, the same ones for the same seed', async () => {
    const picks = async (simSettings: SimDefinition): Promise<string[]> => {
      const c = await start({ describeLagMs: 0, createPropagationMs: 0, seed: 5, ...simSettings });
      const a = (await c.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, SecondaryPrivateIpAddressCount: 2 }))).NetworkInterface!;
      const b = (await c.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A }))).NetworkInterface!;
      ec2?.destroy();
      await sim?.close();
      sim = undefined;
      ec2 = undefined;
      return [...(a.PrivateIpAddresses ?? []).map((p) => p.PrivateIpAddress ?? ''), b.PrivateIpAddress ?? ''];
    };
    const random = await picks({ addressPick: 'random' });
    expect(new Set(random).size).toBe(4);
    expect(random).not.toEqual(['100.64.0.4', '100.64.0.5', '100.64.0.6', '100.64.0.7']);
    for (const ip of random) expect(ip).toMatch(/^100\.64\.[0-3]\.\d+$/);
    expect(await picks({ addressPick: 'random' })).toEqual(random);
    expect(await picks({ addressPick: 'lowest' })).toEqual(['100.64.0.4', '100.64.0.5', '100.64.0.6', '100.64.0.7']);
  });

  it('creates an ENI with its secondary addresses (PrivateIpAddresses.N), validated like the primary', async () => {
    const c = await start({ describeLagMs: 0, createPropagationMs: 0 });
    const eni = (
      await c.send(
        new CreateNetworkInterfaceCommand({
          SubnetId: EGRESS_A,
          PrivateIpAddress: '100.64.0.10',
          PrivateIpAddresses: [{ PrivateIpAddress: '100.64.0.20', Primary: false }, { PrivateIpAddress: '100.64.0.21' }],
        }),
      )
    ).NetworkInterface!;
    expect(eni.PrivateIpAddresses?.map((p) => [p.PrivateIpAddress, p.Primary])).toEqual([
      ['100.64.0.10', true],
      ['100.64.0.20', false],
      ['100.64.0.21', false],
    ]);
    // The primary may be flagged in the list instead.
    const flagged = (await c.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddresses: [{ PrivateIpAddress: '100.64.0.31' }, { PrivateIpAddress: '100.64.0.30', Primary: true }] }))).NetworkInterface!;
    expect(flagged.PrivateIpAddress).toBe('100.64.0.30');
    await expectAwsError(c.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.40', PrivateIpAddresses: [{ PrivateIpAddress: '100.64.0.20' }] })), 'InvalidIPAddress.InUse');
    await expectAwsError(c.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddresses: [{ PrivateIpAddress: '100.64.0.41' }], SecondaryPrivateIpAddressCount: 1 })), 'InvalidParameterCombination');
    await expectAwsError(
      c.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddresses: [{ PrivateIpAddress: '100.64.0.42', Primary: true }, { PrivateIpAddress: '100.64.0.43', Primary: true }] })),
      'InvalidParameterValue',
    );
    await expectAwsError(c.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.44', PrivateIpAddresses: [{ PrivateIpAddress: '100.64.3.255' }] })), 'InvalidParameterValue', 'reserved');
    // A failed call took nothing.
    expect(Object.values(sim!.state().state.enis).flatMap((e) => e.privateIps).filter((ip) => ip.startsWith('100.64.0.4'))).toEqual([]);
  });

  it('terminates an instance: DeleteOnTermination ENIs go with their Elastic IPs, the others detach and keep theirs', async () => {
    const c = await start({ describeLagMs: 0, createPropagationMs: 0 });
    const make = async (ip: string, index: number, deleteOnTermination: boolean, allocationId: string): Promise<string> => {
      const id = (await c.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: ip }))).NetworkInterface!.NetworkInterfaceId!;
      const { AttachmentId } = await c.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: id, InstanceId: NODE_A, DeviceIndex: index }));
      await c.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: id, Attachment: { AttachmentId, DeleteOnTermination: deleteOnTermination } }));
      await c.send(new AssociateAddressCommand({ AllocationId: allocationId, NetworkInterfaceId: id, AllowReassociation: false }));
      return id;
    };
    const going = await make('100.64.0.10', 1, true, EIP1);
    const staying = await make('100.64.0.11', 2, false, EIP2);
    const out = await c.send(new TerminateInstancesCommand({ InstanceIds: [NODE_A] }));
    expect(out.TerminatingInstances?.map((i) => [i.InstanceId, i.PreviousState?.Name, i.CurrentState?.Name, i.CurrentState?.Code])).toEqual([[NODE_A, 'running', 'terminated', 48]]);
    const enis = sim!.state().state.enis;
    expect(enis[going]).toBeUndefined();
    expect(Object.values(enis).some((e) => e.primaryOf === NODE_A)).toBe(false);
    expect(enis[staying]).toMatchObject({ status: 'available', attachment: undefined });
    const addresses = (await c.send(new DescribeAddressesCommand({}))).Addresses ?? [];
    expect(addresses.map((a) => [a.AllocationId, a.NetworkInterfaceId ?? null]).sort()).toEqual([
      [EIP1, null],
      [EIP2, staying],
    ]);
    const described = (await c.send(new DescribeInstancesCommand({ InstanceIds: [NODE_A] }))).Reservations?.[0]?.Instances?.[0];
    expect([described?.State?.Name, described?.NetworkInterfaces ?? []]).toEqual(['terminated', []]);
    await expectAwsError(c.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: staying, InstanceId: NODE_A, DeviceIndex: 1 })), 'IncorrectInstanceState');
    // Again: a no-op that says so. Other instances are untouched.
    expect((await c.send(new TerminateInstancesCommand({ InstanceIds: [NODE_A] }))).TerminatingInstances?.[0]?.PreviousState?.Name).toBe('terminated');
    expect(Object.values(sim!.state().state.enis).some((e) => e.primaryOf === NODE_B)).toBe(true);
    expect(renderAwsSimState(sim!.state())).toMatch(new RegExp(`${NODE_A}.*terminated`));
  });

  it('answers an IMDSv2 token request only within the hop limit (a pod behind the instance is one hop farther)', () => {
    const world = parseWorld(testWorld({ imds: { trustInstanceHeader: false } }), 'world', builtInInstanceTypes());
    const engine = new Ec2Engine(world, initialState(world, 1, 0), builtInInstanceTypes(), { now: () => 0, attachDelayMs: () => 0, detachDelayMs: () => 0 });
    const eni = engine.createNetworkInterface({ subnetId: EGRESS_A, privateIp: '100.64.0.10', secondaryCount: undefined, groups: [], description: undefined, tags: [], clientToken: undefined, canonical: '' }).eni;
    engine.attachNetworkInterface({ networkInterfaceId: eni.id, instanceId: NODE_A, deviceIndex: 1, networkCardIndex: 0 });
    const put = (hopLimit: number, remoteAddress: string): string => {
      world.sim.imds.hopLimit = hopLimit;
      const server = new Imds({ engine, now: () => 0 });
      let outcome = 'no answer';
      const res = { statusCode: 0, setHeader: () => undefined, end() { outcome = String(this.statusCode); } };
      const req = { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, socket: { remoteAddress, destroy: () => (outcome = 'dropped') } } as unknown as IncomingMessage;
      server.handle(req, res as unknown as ServerResponse, '/latest/api/token', undefined);
      return outcome;
    };
    // The node itself (its primary address) is one hop away; a gateway pod on a secondary ENI two.
    expect(put(1, '100.64.16.10')).toBe('200');
    expect(put(1, '100.64.0.10')).toBe('dropped');
    expect(put(2, '100.64.0.10')).toBe('200');
  });
});
