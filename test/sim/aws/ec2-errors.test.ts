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
  DetachNetworkInterfaceCommand,
  DisassociateAddressCommand,
  ModifyNetworkInterfaceAttributeCommand,
  UnassignPrivateIpAddressesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AwsSimHandle } from '../../../src/sim/aws/server.js';
import { clientFor, EGRESS_A, EGRESS_B, EIP1, EIP2, expectAwsError, MICRO_A, NODE_A, NODE_B, SG, startTestSim, TINY_A } from './helpers.js';

/**
 * AWS's documented rules and error codes (docs/aws-sim.md, "Facts and sources"), each driven through
 * @aws-sdk/client-ec2. Every test starts from a fresh world.
 */
describe('aws-sim EC2 API: AWS rules and errors', () => {
  let sim: AwsSimHandle;
  let ec2: EC2Client;

  beforeEach(async () => {
    sim = await startTestSim();
    ec2 = clientFor(sim);
  });
  afterEach(async () => {
    ec2.destroy();
    await sim.close();
  });

  const createEni = async (subnet: string, ip?: string, extra: { count?: number; token?: string } = {}): Promise<string> => {
    const out = await ec2.send(
      new CreateNetworkInterfaceCommand({
        SubnetId: subnet,
        ...(ip === undefined ? {} : { PrivateIpAddress: ip }),
        ...(extra.count === undefined ? {} : { SecondaryPrivateIpAddressCount: extra.count }),
        ...(extra.token === undefined ? {} : { ClientToken: extra.token }),
      }),
    );
    return out.NetworkInterface?.NetworkInterfaceId ?? '';
  };
  const attach = async (eni: string, instance: string, index: number): Promise<string> =>
    (await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: instance, DeviceIndex: index }))).AttachmentId ?? '';
  const ipsOf = async (eni: string): Promise<string[]> =>
    ((await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eni] }))).NetworkInterfaces?.[0]?.PrivateIpAddresses ?? []).map(
      (p) => p.PrivateIpAddress ?? '',
    );

  describe('addresses', () => {
    it("refuses a subnet's first four and last addresses (InvalidParameterValue)", async () => {
      for (const ip of ['100.64.0.0', '100.64.0.1', '100.64.0.2', '100.64.0.3', '100.64.3.255']) {
        await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: ip })), 'InvalidParameterValue', `Address ${ip} is in subnet's reserved address range`, 400);
      }
      await createEni(EGRESS_A, '100.64.0.4');
      await createEni(EGRESS_A, '100.64.3.254');
      const eni = await createEni(EGRESS_B, '100.64.4.4');
      await expectAwsError(ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: ['100.64.7.255'] })), 'InvalidParameterValue', 'reserved');
    });

    it('refuses an address outside the subnet', async () => {
      await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.4.10' })), 'InvalidParameterValue', 'does not fall within');
    });

    it('an address is on only one ENI: InvalidIPAddress.InUse, unless AllowReassignment moves it', async () => {
      // The instance's own primary address is taken.
      await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: 'subnet-0c3d4e5f607182930', PrivateIpAddress: '100.64.16.10' })), 'InvalidIPAddress.InUse', 'already in use');
      const a = await createEni(EGRESS_A, '100.64.0.10');
      const b = await createEni(EGRESS_A, '100.64.0.11');
      await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.10' })), 'InvalidIPAddress.InUse');
      await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: a, PrivateIpAddresses: ['100.64.0.20'] }));
      await expectAwsError(ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: b, PrivateIpAddresses: ['100.64.0.20'] })), 'InvalidIPAddress.InUse', '100.64.0.20');
      // A primary address never moves.
      await expectAwsError(ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: b, PrivateIpAddresses: ['100.64.0.10'], AllowReassignment: true })), 'InvalidParameterValue');
      // With AllowReassignment the address moves, and its Elastic IP moves with it.
      const assoc = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: a, PrivateIpAddress: '100.64.0.20' }));
      await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: b, PrivateIpAddresses: ['100.64.0.20'], AllowReassignment: true }));
      expect(await ipsOf(a)).toEqual(['100.64.0.10']);
      expect(await ipsOf(b)).toEqual(['100.64.0.11', '100.64.0.20']);
      const eip = (await ec2.send(new DescribeAddressesCommand({ AllocationIds: [EIP1] }))).Addresses?.[0];
      expect(eip).toMatchObject({ NetworkInterfaceId: b, PrivateIpAddress: '100.64.0.20', AssociationId: assoc.AssociationId });
    });

    it('InsufficientFreeAddressesInSubnet when the subnet is full', async () => {
      // A /28 has 16 addresses, 11 usable.
      await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: TINY_A, SecondaryPrivateIpAddressCount: 11 })), 'InsufficientFreeAddressesInSubnet');
      await createEni(TINY_A, undefined, { count: 10 });
      await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: TINY_A })), 'InsufficientFreeAddressesInSubnet');
      const subnet = (await ec2.send(new DescribeSubnetsCommand({ SubnetIds: [TINY_A] }))).Subnets?.[0];
      expect(subnet?.AvailableIpAddressCount).toBe(0);
    });

    it('UnassignPrivateIpAddresses refuses the primary and addresses the ENI does not have; it drops the Elastic IP of an address', async () => {
      const eni = await createEni(EGRESS_A, '100.64.0.30', { count: 1 });
      const [primary, secondary] = await ipsOf(eni);
      await expectAwsError(ec2.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: [primary ?? ''] })), 'InvalidParameterValue', 'primary');
      await expectAwsError(ec2.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: ['100.64.0.99'] })), 'InvalidParameterValue', 'not assigned');
      await ec2.send(new AssociateAddressCommand({ AllocationId: EIP2, NetworkInterfaceId: eni, PrivateIpAddress: secondary }));
      await ec2.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: [secondary ?? ''] }));
      const eip = (await ec2.send(new DescribeAddressesCommand({ AllocationIds: [EIP2] }))).Addresses?.[0];
      expect(eip?.AssociationId).toBeUndefined();
    });
  });

  describe('instance-type limits (from the table)', () => {
    it('t3.large: 3 ENIs (the primary included), AttachmentLimitExceeded for the fourth', async () => {
      await attach(await createEni(EGRESS_A), NODE_A, 1);
      await attach(await createEni(EGRESS_A), NODE_A, 2);
      await expectAwsError(attach(await createEni(EGRESS_A), NODE_A, 3), 'AttachmentLimitExceeded', 'Interface count 4 exceeds the limit for t3.large', 400);
    });

    it('t3.micro: 2 ENIs', async () => {
      await attach(await createEni(EGRESS_A), MICRO_A, 1);
      await expectAwsError(attach(await createEni(EGRESS_A), MICRO_A, 2), 'AttachmentLimitExceeded', 'Interface count 3 exceeds the limit for t3.micro');
    });

    it('t3.large: 12 IPv4 addresses per ENI (the primary included), PrivateIpAddressLimitExceeded beyond', async () => {
      const eni = await createEni(EGRESS_A);
      await attach(eni, NODE_A, 1);
      await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: 10 }));
      await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: 1 }));
      expect(await ipsOf(eni)).toHaveLength(12);
      await expectAwsError(ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: 1 })), 'PrivateIpAddressLimitExceeded', 'Number of private addresses will exceed limit.', 400);
      await expectAwsError(ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: ['100.64.2.2'] })), 'PrivateIpAddressLimitExceeded');
    });

    it('t3.micro: 2 addresses per ENI; an ENI with more addresses cannot attach', async () => {
      const big = await createEni(EGRESS_A, undefined, { count: 2 });
      await expectAwsError(attach(big, MICRO_A, 1), 'PrivateIpAddressLimitExceeded');
      const small = await createEni(EGRESS_A);
      await attach(small, MICRO_A, 1);
      await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: small, SecondaryPrivateIpAddressCount: 1 }));
      await expectAwsError(ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: small, SecondaryPrivateIpAddressCount: 1 })), 'PrivateIpAddressLimitExceeded');
    });
  });

  describe('attachments', () => {
    it('an ENI attaches only to an instance in its subnet zone', async () => {
      const eni = await createEni(EGRESS_B);
      await expectAwsError(attach(eni, NODE_A, 1), 'InvalidParameterCombination', 'You may not attach a network interface to an instance if they are not in the same availability zone', 400);
      await attach(eni, NODE_B, 1);
    });

    it('a device index in use is refused', async () => {
      const eni = await createEni(EGRESS_A);
      await expectAwsError(attach(eni, NODE_A, 0), 'InvalidParameterValue', `Instance '${NODE_A}' already has an interface attached at device index '0'.`);
      await attach(eni, NODE_A, 1);
      await expectAwsError(attach(await createEni(EGRESS_A), NODE_A, 1), 'InvalidParameterValue', "device index '1'");
    });

    it('an attached ENI can be neither attached again nor deleted (InvalidNetworkInterface.InUse)', async () => {
      const eni = await createEni(EGRESS_A);
      const attachment = await attach(eni, NODE_A, 1);
      await expectAwsError(attach(eni, MICRO_A, 1), 'InvalidNetworkInterface.InUse');
      await expectAwsError(ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: eni })), 'InvalidNetworkInterface.InUse', eni, 400);
      await ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId: attachment }));
      await ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: eni }));
    });

    it('the primary ENI cannot be detached (OperationNotPermitted) nor deleted', async () => {
      const inst = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [NODE_A] }))).Reservations?.[0]?.Instances?.[0];
      const primary = inst?.NetworkInterfaces?.[0];
      await expectAwsError(ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId: primary?.Attachment?.AttachmentId })), 'OperationNotPermitted');
      await expectAwsError(ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: primary?.NetworkInterfaceId })), 'InvalidNetworkInterface.InUse');
    });

    it('ModifyNetworkInterfaceAttribute takes one attribute per call, and the ENI attachment ID', async () => {
      const eni = await createEni(EGRESS_A);
      await attach(eni, NODE_A, 1);
      await expectAwsError(ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: eni, SourceDestCheck: { Value: false }, Groups: [SG] })), 'InvalidParameterCombination');
      await expectAwsError(
        ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: eni, Attachment: { AttachmentId: 'eni-attach-00000000000000000', DeleteOnTermination: true } })),
        'InvalidAttachmentID.NotFound',
      );
      await expectAwsError(ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: eni, Groups: ['sg-00000000000000000'] })), 'InvalidSecurityGroupID.NotFound');
    });
  });

  describe('Elastic IPs', () => {
    it('an Elastic IP is on one private address: Resource.AlreadyAssociated with AllowReassociation=false', async () => {
      const a = await createEni(EGRESS_A);
      const b = await createEni(EGRESS_A);
      const first = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: a, AllowReassociation: false }));
      // The same association again is idempotent.
      const again = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: a, AllowReassociation: false }));
      expect(again.AssociationId).toBe(first.AssociationId);
      await expectAwsError(
        ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: b, AllowReassociation: false })),
        'Resource.AlreadyAssociated',
        `resource ${EIP1} is already associated with associate-id ${first.AssociationId}`,
        400,
      );
      // AllowReassociation=true moves it (so does leaving it out: AWS documents reassociation as automatic).
      const moved = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: b, AllowReassociation: true }));
      expect(moved.AssociationId).not.toBe(first.AssociationId);
      const back = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: a }));
      const eip = (await ec2.send(new DescribeAddressesCommand({ AllocationIds: [EIP1] }))).Addresses?.[0];
      expect(eip).toMatchObject({ NetworkInterfaceId: a, AssociationId: back.AssociationId });
      await ec2.send(new DisassociateAddressCommand({ AssociationId: first.AssociationId })); // long gone: idempotent
    });

    it('a second Elastic IP on the same private address replaces the first', async () => {
      const a = await createEni(EGRESS_A);
      await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: a }));
      await ec2.send(new AssociateAddressCommand({ AllocationId: EIP2, NetworkInterfaceId: a }));
      const out = await ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'network-interface-id', Values: [a] }] }));
      expect(out.Addresses?.map((x) => x.AllocationId)).toEqual([EIP2]);
    });

    it('deleting an ENI removes the associations of its addresses', async () => {
      const a = await createEni(EGRESS_A, undefined, { count: 1 });
      const [, secondary] = await ipsOf(a);
      await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: a }));
      await ec2.send(new AssociateAddressCommand({ AllocationId: EIP2, NetworkInterfaceId: a, PrivateIpAddress: secondary }));
      await ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: a }));
      const out = await ec2.send(new DescribeAddressesCommand({}));
      expect(out.Addresses?.map((x) => x.AssociationId)).toEqual([undefined, undefined]);
    });

    it('the private address must be on the ENI; InstanceId needs a single-ENI instance', async () => {
      const a = await createEni(EGRESS_A);
      await expectAwsError(ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: a, PrivateIpAddress: '100.64.0.200' })), 'InvalidParameterValue');
      const byInstance = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, InstanceId: NODE_B }));
      expect(byInstance.AssociationId).toMatch(/^eipassoc-/);
      await attach(await createEni(EGRESS_B), NODE_B, 1);
      await expectAwsError(ec2.send(new AssociateAddressCommand({ AllocationId: EIP2, InstanceId: NODE_B })), 'InvalidInstanceID', 'multiple interfaces');
    });

    it('AddressLimitExceeded past the account quota (5 by default)', async () => {
      for (let i = 0; i < 3; i++) await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
      await expectAwsError(ec2.send(new AllocateAddressCommand({ Domain: 'vpc' })), 'AddressLimitExceeded');
    });
  });

  describe('unknown IDs', () => {
    it('answers the NotFound code of each kind of ID', async () => {
      await expectAwsError(ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: ['eni-00000000000000000'] })), 'InvalidNetworkInterfaceID.NotFound', "The networkInterface ID 'eni-00000000000000000' does not exist", 400);
      await expectAwsError(ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: 'eni-00000000000000001' })), 'InvalidNetworkInterfaceID.NotFound');
      await expectAwsError(attach('eni-00000000000000002', NODE_A, 1), 'InvalidNetworkInterfaceID.NotFound');
      await expectAwsError(attach(await createEni(EGRESS_A), 'i-00000000000000000', 1), 'InvalidInstanceID.NotFound', "The instance ID 'i-00000000000000000' does not exist");
      await expectAwsError(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-00000000000000001'] })), 'InvalidInstanceID.NotFound');
      await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: 'subnet-00000000000000000' })), 'InvalidSubnetID.NotFound', "The subnet ID 'subnet-00000000000000000' does not exist");
      await expectAwsError(ec2.send(new DescribeSubnetsCommand({ SubnetIds: ['subnet-00000000000000001'] })), 'InvalidSubnetID.NotFound');
      await expectAwsError(ec2.send(new AssociateAddressCommand({ AllocationId: 'eipalloc-00000000000000000', NetworkInterfaceId: await createEni(EGRESS_A) })), 'InvalidAllocationID.NotFound', "The allocation ID 'eipalloc-00000000000000000' does not exist");
      await expectAwsError(ec2.send(new DescribeAddressesCommand({ AllocationIds: ['eipalloc-00000000000000001'] })), 'InvalidAllocationID.NotFound');
      await expectAwsError(ec2.send(new DisassociateAddressCommand({ AssociationId: 'eipassoc-00000000000000000' })), 'InvalidAssociationID.NotFound', "The association ID 'eipassoc-00000000000000000' does not exist");
      await expectAwsError(ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId: 'eni-attach-00000000000000000' })), 'InvalidAttachmentID.NotFound');
      await expectAwsError(ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['t9.mega' as never] })), 'InvalidInstanceType', 't9.mega');
      await expectAwsError(ec2.send(new CreateTagsCommand({ Resources: ['vol-00000000000000000'], Tags: [{ Key: 'a', Value: 'b' }] })), 'InvalidID');
    });
  });

  describe('request validation', () => {
    it('rejects unknown filters, MaxResults with IDs, MaxResults out of range and bad NextTokens', async () => {
      await expectAwsError(ec2.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'no-such-filter', Values: ['x'] }] })), 'InvalidParameterValue', "The filter 'no-such-filter' is invalid");
      await expectAwsError(ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: ['eni-00000000000000000'], MaxResults: 5 })), 'InvalidParameterCombination');
      await expectAwsError(ec2.send(new DescribeInstancesCommand({ MaxResults: 4 })), 'InvalidParameterValue', 'maxResults');
      await expectAwsError(ec2.send(new DescribeNetworkInterfacesCommand({ NextToken: 'garbage' })), 'InvalidNextToken');
    });

    it('rejects parameters the emulator does not implement (UnknownParameter) instead of ignoring them', async () => {
      const eni = await createEni(EGRESS_A);
      await expectAwsError(ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, Ipv4PrefixCount: 1 })), 'UnknownParameter', 'Ipv4PrefixCount');
    });

    it('needs exactly one of addresses or count for AssignPrivateIpAddresses', async () => {
      const eni = await createEni(EGRESS_A);
      await expectAwsError(ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: ['100.64.0.50'], SecondaryPrivateIpAddressCount: 1 })), 'InvalidParameterCombination');
      await expectAwsError(ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni })), 'MissingParameter');
    });

    it('validates tags: no aws: prefix, at most 50 per resource', async () => {
      await expectAwsError(ec2.send(new CreateTagsCommand({ Resources: [NODE_A], Tags: [{ Key: 'aws:thing', Value: 'x' }] })), 'InvalidParameterValue', 'aws:');
      const tags = Array.from({ length: 50 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
      await ec2.send(new CreateTagsCommand({ Resources: [NODE_B], Tags: tags.slice(0, 49) }));
      await expectAwsError(ec2.send(new CreateTagsCommand({ Resources: [NODE_B], Tags: [{ Key: 'one', Value: '1' }, { Key: 'two', Value: '2' }] })), 'TagLimitExceeded');
      await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'a', Value: 'b' }] }] })), 'InvalidParameterValue', 'taggable resource type');
    });
  });

  describe('ClientToken idempotency (CreateNetworkInterface)', () => {
    it('a retry with the same token and parameters returns the same ENI; different parameters fail', async () => {
      const first = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, Description: 'gw', ClientToken: 'tok-1' }));
      const retry = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, Description: 'gw', ClientToken: 'tok-1' }));
      expect(retry.NetworkInterface?.NetworkInterfaceId).toBe(first.NetworkInterface?.NetworkInterfaceId);
      expect(retry.ClientToken).toBe('tok-1');
      const all = await ec2.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'description', Values: ['gw'] }] }));
      expect(all.NetworkInterfaces).toHaveLength(1);
      await expectAwsError(ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, Description: 'other', ClientToken: 'tok-1' })), 'IdempotentParameterMismatch', undefined, 400);
      // The retry shows the ENI as it is now (AWS: "the result might contain updated information").
      await attach(first.NetworkInterface?.NetworkInterfaceId ?? '', NODE_A, 1);
      const later = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, Description: 'gw', ClientToken: 'tok-1' }));
      expect(later.NetworkInterface?.Status).toBe('in-use');
    });

    it('the SDK sends a token of its own, so its retries after a lost reply create no second ENI', async () => {
      const out = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A }));
      expect(out.ClientToken).toMatch(/^[0-9a-f-]{36}$/);
    });
  });
});
