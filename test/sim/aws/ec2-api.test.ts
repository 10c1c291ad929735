import {
  AllocateAddressCommand,
  AssignPrivateIpAddressesCommand,
  AssociateAddressCommand,
  AttachNetworkInterfaceCommand,
  CreateNetworkInterfaceCommand,
  CreateTagsCommand,
  DeleteNetworkInterfaceCommand,
  DescribeAddressesCommand,
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSubnetsCommand,
  DescribeTagsCommand,
  DetachNetworkInterfaceCommand,
  DisassociateAddressCommand,
  ModifyNetworkInterfaceAttributeCommand,
  UnassignPrivateIpAddressesCommand,
  paginateDescribeInstances,
  paginateDescribeInstanceTypes,
  paginateDescribeNetworkInterfaces,
  paginateDescribeTags,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AwsSimHandle } from '../../../src/sim/aws/server.js';
import { clientFor, EGRESS_A, EGRESS_B, EIP1, EIP2, NODE_A, NODE_B, NODES_A, SG, SG2, startTestSim, VPC } from './helpers.js';

/** Every action's happy path, through @aws-sdk/client-ec2 over HTTP. */
describe('aws-sim EC2 API: happy paths', () => {
  let sim: AwsSimHandle;
  let ec2: EC2Client;

  beforeAll(async () => {
    sim = await startTestSim();
    ec2 = clientFor(sim);
  });
  afterAll(async () => {
    ec2.destroy();
    await sim.close();
  });

  it('DescribeInstances shows each instance with its primary ENI at device index 0', async () => {
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [NODE_A] }));
    const inst = out.Reservations?.[0]?.Instances?.[0];
    expect(inst).toMatchObject({
      InstanceId: NODE_A,
      InstanceType: 't3.large',
      PrivateIpAddress: '100.64.16.10',
      SubnetId: NODES_A,
      VpcId: VPC,
      Placement: { AvailabilityZone: 'us-west-2a' },
      State: { Name: 'running', Code: 16 },
      Tags: [{ Key: 'Name', Value: 'node-a' }],
    });
    expect(inst?.NetworkInterfaces).toHaveLength(1);
    expect(inst?.NetworkInterfaces?.[0]).toMatchObject({
      PrivateIpAddress: '100.64.16.10',
      Groups: [{ GroupId: SG }],
      Attachment: { DeviceIndex: 0, Status: 'attached', DeleteOnTermination: true },
      Status: 'in-use',
    });
    const filtered = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'availability-zone', Values: ['us-west-2b'] }] }));
    expect(filtered.Reservations?.flatMap((r) => r.Instances?.map((i) => i.InstanceId))).toEqual([NODE_B]);
    const tagged = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:Name', Values: ['node-*'] }] }));
    expect(tagged.Reservations?.flatMap((r) => r.Instances?.map((i) => i.InstanceId))).toEqual([NODE_A]);
  });

  it('DescribeInstanceTypes answers the limits of the table', async () => {
    const out = await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['t3.large', 'm5.large'] }));
    const byName = new Map((out.InstanceTypes ?? []).map((t) => [t.InstanceType ?? '', t.NetworkInfo]));
    expect(byName.get('t3.large')).toMatchObject({ MaximumNetworkInterfaces: 3, Ipv4AddressesPerInterface: 12 });
    expect(byName.get('t3.large')?.NetworkCards?.[0]).toMatchObject({ NetworkCardIndex: 0, MaximumNetworkInterfaces: 3 });
    expect(byName.get('m5.large')).toMatchObject({ MaximumNetworkInterfaces: 3, Ipv4AddressesPerInterface: 10 });
  });

  it('DescribeInstanceTypes pages through the whole table with the SDK paginator', async () => {
    let count = 0;
    let pages = 0;
    for await (const page of paginateDescribeInstanceTypes({ client: ec2, pageSize: 100 }, {})) {
      count += page.InstanceTypes?.length ?? 0;
      pages++;
    }
    expect(count).toBeGreaterThan(1000);
    expect(pages).toBe(Math.ceil(count / 100));
  });

  it('DescribeSubnets reports zone, CIDR, VPC and free addresses (size minus the five AWS keeps)', async () => {
    const out = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: [EGRESS_A] }));
    expect(out.Subnets?.[0]).toMatchObject({
      SubnetId: EGRESS_A,
      VpcId: VPC,
      CidrBlock: '100.64.0.0/22',
      AvailabilityZone: 'us-west-2a',
      AvailableIpAddressCount: 1019,
      State: 'available',
    });
    const byZone = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'availability-zone', Values: ['us-west-2b'] }, { Name: 'cidr-block', Values: ['100.64.4.0/22'] }] }));
    expect(byZone.Subnets?.map((s) => s.SubnetId)).toEqual([EGRESS_B]);
  });

  it('CreateNetworkInterface with address, secondary count, groups, description and tags', async () => {
    const out = await ec2.send(
      new CreateNetworkInterfaceCommand({
        SubnetId: EGRESS_A,
        PrivateIpAddress: '100.64.0.4',
        SecondaryPrivateIpAddressCount: 2,
        Groups: [SG, SG2],
        Description: 'egw gateway red-1',
        TagSpecifications: [{ ResourceType: 'network-interface', Tags: [{ Key: 'egw:owner', Value: 'test' }, { Key: 'egw:node', Value: NODE_A }] }],
      }),
    );
    const eni = out.NetworkInterface;
    expect(eni).toMatchObject({
      SubnetId: EGRESS_A,
      VpcId: VPC,
      AvailabilityZone: 'us-west-2a',
      Status: 'available',
      PrivateIpAddress: '100.64.0.4',
      Description: 'egw gateway red-1',
      SourceDestCheck: true,
      Groups: [{ GroupId: SG }, { GroupId: SG2 }],
      TagSet: [{ Key: 'egw:owner', Value: 'test' }, { Key: 'egw:node', Value: NODE_A }],
    });
    expect(eni?.MacAddress).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    // The lowest free addresses after the requested primary (the first four are AWS's).
    expect(eni?.PrivateIpAddresses?.map((p) => [p.PrivateIpAddress, p.Primary])).toEqual([
      ['100.64.0.4', true],
      ['100.64.0.5', false],
      ['100.64.0.6', false],
    ]);
    const defaults = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_B }));
    expect(defaults.NetworkInterface?.Groups?.map((g) => g.GroupId)).toEqual([SG]); // the VPC's "default" group
    expect(defaults.NetworkInterface?.PrivateIpAddress).toBe('100.64.4.4');
  });

  it('attach → in-use with DeviceIndex/NetworkCardIndex, modify, detach → available, delete', async () => {
    const eniId = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.100' }))).NetworkInterface?.NetworkInterfaceId ?? '';
    const att = await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eniId, InstanceId: NODE_A, DeviceIndex: 1, NetworkCardIndex: 0 }));
    expect(att.AttachmentId).toMatch(/^eni-attach-[0-9a-f]{17}$/);
    expect(att.NetworkCardIndex).toBe(0);
    const described = await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eniId] }));
    expect(described.NetworkInterfaces?.[0]).toMatchObject({
      Status: 'in-use',
      Attachment: { AttachmentId: att.AttachmentId, InstanceId: NODE_A, DeviceIndex: 1, NetworkCardIndex: 0, Status: 'attached', DeleteOnTermination: false },
    });

    await ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: eniId, Attachment: { AttachmentId: att.AttachmentId, DeleteOnTermination: true } }));
    await ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: eniId, SourceDestCheck: { Value: false } }));
    await ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: eniId, Groups: [SG2] }));
    const modified = (await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eniId] }))).NetworkInterfaces?.[0];
    expect(modified).toMatchObject({ SourceDestCheck: false, Groups: [{ GroupId: SG2 }], Attachment: { DeleteOnTermination: true } });

    const inst = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [NODE_A] }))).Reservations?.[0]?.Instances?.[0];
    expect(inst?.NetworkInterfaces?.map((n) => [n.NetworkInterfaceId, n.Attachment?.DeviceIndex])).toContainEqual([eniId, 1]);

    await ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId: att.AttachmentId }));
    const detached = (await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eniId] }))).NetworkInterfaces?.[0];
    expect(detached?.Status).toBe('available');
    expect(detached?.Attachment).toBeUndefined();

    await ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: eniId }));
    const all = await ec2.send(new DescribeNetworkInterfacesCommand({}));
    expect(all.NetworkInterfaces?.map((n) => n.NetworkInterfaceId)).not.toContain(eniId);
  });

  it('DescribeNetworkInterfaces filters: attachment.instance-id, subnet-id, tag:KEY, tag-key, status, network-interface-id', async () => {
    const mk = async (ip: string, tags: Record<string, string>): Promise<string> =>
      (
        await ec2.send(
          new CreateNetworkInterfaceCommand({
            SubnetId: EGRESS_B,
            PrivateIpAddress: ip,
            TagSpecifications: [{ ResourceType: 'network-interface', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }],
          }),
        )
      ).NetworkInterface?.NetworkInterfaceId ?? '';
    const a = await mk('100.64.4.200', { 'egw:node': NODE_B, role: 'gw' });
    const b = await mk('100.64.4.201', { 'egw:node': NODE_B });
    await mk('100.64.4.202', { other: 'x' });
    await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: a, InstanceId: NODE_B, DeviceIndex: 1 }));
    const ids = async (filters: { Name: string; Values: string[] }[]): Promise<string[]> =>
      ((await ec2.send(new DescribeNetworkInterfacesCommand({ Filters: filters }))).NetworkInterfaces ?? []).map((n) => n.NetworkInterfaceId ?? '');

    expect(await ids([{ Name: 'attachment.instance-id', Values: [NODE_B] }])).toEqual([expect.stringMatching(/^eni-/), a]);
    expect(await ids([{ Name: 'tag:egw:node', Values: [NODE_B] }])).toEqual([a, b]);
    expect(await ids([{ Name: 'tag-key', Values: ['role'] }])).toEqual([a]);
    expect(await ids([{ Name: 'tag:egw:node', Values: [NODE_B] }, { Name: 'status', Values: ['available'] }])).toEqual([b]);
    expect(await ids([{ Name: 'subnet-id', Values: [EGRESS_B] }, { Name: 'network-interface-id', Values: [a, b] }])).toEqual([a, b]);
    expect(await ids([{ Name: 'private-ip-address', Values: ['100.64.4.20?'] }])).toHaveLength(3);
  });

  it('DescribeNetworkInterfaces pages with MaxResults/NextToken (SDK paginator)', async () => {
    const all = (await ec2.send(new DescribeNetworkInterfacesCommand({}))).NetworkInterfaces ?? [];
    const seen: string[] = [];
    for await (const page of paginateDescribeNetworkInterfaces({ client: ec2, pageSize: 5 }, {})) {
      expect(page.NetworkInterfaces?.length).toBeLessThanOrEqual(5);
      seen.push(...(page.NetworkInterfaces ?? []).map((n) => n.NetworkInterfaceId ?? ''));
    }
    expect(seen).toEqual(all.map((n) => n.NetworkInterfaceId));
  });

  it('Assign/UnassignPrivateIpAddresses with explicit addresses and with a count', async () => {
    const eniId = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.1.4' }))).NetworkInterface?.NetworkInterfaceId ?? '';
    await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eniId, InstanceId: NODE_A, DeviceIndex: 2 }));
    const explicit = await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eniId, PrivateIpAddresses: ['100.64.1.10', '100.64.1.11'] }));
    expect(explicit.NetworkInterfaceId).toBe(eniId);
    expect(explicit.AssignedPrivateIpAddresses?.map((a) => a.PrivateIpAddress)).toEqual(['100.64.1.10', '100.64.1.11']);
    const counted = await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eniId, SecondaryPrivateIpAddressCount: 2 }));
    expect(counted.AssignedPrivateIpAddresses).toHaveLength(2);
    await ec2.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: eniId, PrivateIpAddresses: ['100.64.1.10'] }));
    const eni = (await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eniId] }))).NetworkInterfaces?.[0];
    expect(eni?.PrivateIpAddresses?.map((p) => p.PrivateIpAddress)).toEqual([
      '100.64.1.4',
      '100.64.1.11',
      ...(counted.AssignedPrivateIpAddresses ?? []).map((a) => a.PrivateIpAddress),
    ]);
  });

  it('DescribeInstances and DescribeTags page with the SDK paginators', async () => {
    const instances: string[] = [];
    for await (const page of paginateDescribeInstances({ client: ec2, pageSize: 5 }, {})) {
      instances.push(...(page.Reservations ?? []).flatMap((r) => (r.Instances ?? []).map((i) => i.InstanceId ?? '')));
    }
    expect(instances).toHaveLength(3);
    await ec2.send(new CreateTagsCommand({ Resources: [NODE_A], Tags: Array.from({ length: 12 }, (_, i) => ({ Key: `page-${String(i).padStart(2, '0')}`, Value: 'x' })) }));
    const keys: string[] = [];
    let pages = 0;
    for await (const page of paginateDescribeTags({ client: ec2, pageSize: 5 }, { Filters: [{ Name: 'key', Values: ['page-*'] }] })) {
      keys.push(...(page.Tags ?? []).map((t) => t.Key ?? ''));
      pages++;
    }
    expect(pages).toBe(3);
    expect(keys).toEqual(Array.from({ length: 12 }, (_, i) => `page-${String(i).padStart(2, '0')}`));
  });

  it('CreateTags and DescribeTags (filters key, resource-id, resource-type)', async () => {
    await ec2.send(new CreateTagsCommand({ Resources: [NODE_B, EGRESS_B], Tags: [{ Key: 'team', Value: 'net' }, { Key: 'empty', Value: '' }] }));
    const out = await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'key', Values: ['team'] }] }));
    expect(out.Tags?.map((t) => [t.ResourceId, t.ResourceType, t.Value])).toEqual([
      [NODE_B, 'instance', 'net'],
      [EGRESS_B, 'subnet', 'net'],
    ].sort((x, y) => ((x[0] ?? '') < (y[0] ?? '') ? -1 : 1)));
    const one = await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [NODE_B] }, { Name: 'resource-type', Values: ['instance'] }] }));
    expect(one.Tags?.map((t) => [t.Key, t.Value])).toEqual([
      ['empty', ''],
      ['team', 'net'],
    ]);
    // An existing key is overwritten.
    await ec2.send(new CreateTagsCommand({ Resources: [NODE_B], Tags: [{ Key: 'team', Value: 'ops' }] }));
    const again = await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [NODE_B] }, { Name: 'key', Values: ['team'] }] }));
    expect(again.Tags?.[0]?.Value).toBe('ops');
  });

  it('AllocateAddress, AssociateAddress, DescribeAddresses (filters, IDs), DisassociateAddress', async () => {
    const alloc = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: [{ ResourceType: 'elastic-ip', Tags: [{ Key: 'gw', Value: 'red' }] }] }));
    expect(alloc.AllocationId).toMatch(/^eipalloc-[0-9a-f]{17}$/);
    expect(alloc.PublicIp).toBe('198.51.100.1');
    expect(alloc.Domain).toBe('vpc');

    const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.2.4', SecondaryPrivateIpAddressCount: 1 }))).NetworkInterface;
    const eniId = eni?.NetworkInterfaceId ?? '';
    const secondary = eni?.PrivateIpAddresses?.[1]?.PrivateIpAddress ?? '';
    // Elastic IPs associate with an ENI whether or not it is attached (AWS keeps the mapping).
    const assoc1 = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: eniId }));
    const assoc2 = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP2, NetworkInterfaceId: eniId, PrivateIpAddress: secondary, AllowReassociation: false }));
    expect(assoc1.AssociationId).toMatch(/^eipassoc-[0-9a-f]{17}$/);

    const byEni = await ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'network-interface-id', Values: [eniId] }] }));
    expect(byEni.Addresses?.map((a) => [a.AllocationId, a.PrivateIpAddress, a.AssociationId])).toEqual([
      [EIP1, '100.64.2.4', assoc1.AssociationId],
      [EIP2, secondary, assoc2.AssociationId],
    ]);
    const byId = await ec2.send(new DescribeAddressesCommand({ AllocationIds: [alloc.AllocationId ?? ''] }));
    expect(byId.Addresses?.[0]).toMatchObject({ PublicIp: '198.51.100.1', Tags: [{ Key: 'gw', Value: 'red' }] });
    const byIp = await ec2.send(new DescribeAddressesCommand({ PublicIps: ['203.0.113.7'] }));
    expect(byIp.Addresses?.[0]?.AllocationId).toBe(EIP1);
    // The ENI shows the association of its primary address.
    const described = (await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eniId] }))).NetworkInterfaces?.[0];
    expect(described?.Association).toMatchObject({ PublicIp: '203.0.113.7', AllocationId: EIP1, AssociationId: assoc1.AssociationId });
    expect(described?.PrivateIpAddresses?.[1]?.Association?.PublicIp).toBe('203.0.113.8');

    await ec2.send(new DisassociateAddressCommand({ AssociationId: assoc1.AssociationId }));
    await ec2.send(new DisassociateAddressCommand({ AssociationId: assoc2.AssociationId }));
    const after = await ec2.send(new DescribeAddressesCommand({ AllocationIds: [EIP1, EIP2] }));
    expect(after.Addresses?.map((a) => a.AssociationId)).toEqual([undefined, undefined]);
    // Idempotent, as documented: disassociating again succeeds.
    await ec2.send(new DisassociateAddressCommand({ AssociationId: assoc1.AssociationId }));
  });
});
