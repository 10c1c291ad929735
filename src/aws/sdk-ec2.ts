/**
 * The one adapter of the EC2 port onto AWS: `@aws-sdk/client-ec2` over HTTP(S). It translates egw's
 * types to the SDK's and back, and classifies every failure into an `EgwError` (see aws-errors.ts).
 * It does not retry (the SDK's own retries are off): retries, backoff and concurrency belong to
 * `ResilientEc2`, which knows which calls are safe to repeat.
 */
import {
  AssignPrivateIpAddressesCommand,
  AssociateAddressCommand,
  AttachNetworkInterfaceCommand,
  CreateNetworkInterfaceCommand,
  DeleteNetworkInterfaceCommand,
  DescribeAddressesCommand,
  DescribeInstanceTypesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSubnetsCommand,
  DetachNetworkInterfaceCommand,
  DisassociateAddressCommand,
  EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  UnassignPrivateIpAddressesCommand,
} from '@aws-sdk/client-ec2';
import type { _InstanceType, Filter, InstanceTypeInfo, NetworkInterface } from '@aws-sdk/client-ec2';
import { EgwError } from '../platform/errors.js';
import { classifyAwsError } from './aws-errors.js';
import type {
  CreateNetworkInterfaceInput,
  Ec2,
  Ec2Address,
  Ec2AttachmentStatus,
  Ec2CallOptions,
  Ec2EniStatus,
  Ec2Filter,
  Ec2InstanceTypeInfo,
  Ec2NetworkInterface,
  Ec2Subnet,
} from './ec2-port.js';

/** How to reach EC2. */
export interface SdkEc2Options {
  /** The region (e.g. us-west-2; from IMDS on EC2). */
  region: string;
  /** Endpoint override (the emulator's URL); default: the region's public endpoint. */
  endpoint?: string;
  /** Static credentials (tests, the lab); default: the SDK's provider chain (env, IRSA, IMDS role…). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** TCP connect timeout of the HTTP handler (default 5 s). The per-call deadline is the caller's signal. */
  connectTimeoutMs?: number;
}

/**
 * The EC2 port on the AWS SDK. One client, keep-alive connections, no SDK retries. Each call honours
 * `options.signal` (abort = abandon the call, classified `RequestTimeout`, retry class `retry`).
 */
export class SdkEc2 implements Ec2 {
  private readonly client: EC2Client;

  constructor(options: SdkEc2Options) {
    this.client = new EC2Client({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      maxAttempts: 1,
      requestHandler: { connectionTimeout: options.connectTimeoutMs ?? 5_000 },
    });
  }

  /** Closes the client's connections. */
  destroy(): void {
    this.client.destroy();
  }

  private async send<T>(action: string, run: (o: { abortSignal?: AbortSignal }) => Promise<T>, options: Ec2CallOptions | undefined): Promise<T> {
    try {
      return await run(options?.signal === undefined ? {} : { abortSignal: options.signal });
    } catch (err) {
      throw classifyAwsError(err, action, options?.signal?.aborted === true);
    }
  }

  async describeInstanceTypes(types: readonly string[], options?: Ec2CallOptions): Promise<Ec2InstanceTypeInfo[]> {
    const out: Ec2InstanceTypeInfo[] = [];
    let token: string | undefined;
    do {
      const page = await this.send(
        'DescribeInstanceTypes',
        (o) => this.client.send(new DescribeInstanceTypesCommand({ InstanceTypes: types as _InstanceType[], ...(token === undefined ? {} : { NextToken: token }) }), o),
        options,
      );
      for (const t of page.InstanceTypes ?? []) out.push(fromInstanceType(t));
      token = page.NextToken === '' ? undefined : page.NextToken;
    } while (token !== undefined);
    return out;
  }

  async describeNetworkInterfaces(filters: readonly Ec2Filter[], options?: Ec2CallOptions): Promise<Ec2NetworkInterface[]> {
    const out: Ec2NetworkInterface[] = [];
    let token: string | undefined;
    do {
      const page = await this.send(
        'DescribeNetworkInterfaces',
        (o) => this.client.send(new DescribeNetworkInterfacesCommand({ Filters: toFilters(filters), MaxResults: 1000, ...(token === undefined ? {} : { NextToken: token }) }), o),
        options,
      );
      for (const n of page.NetworkInterfaces ?? []) out.push(fromNetworkInterface(n));
      token = page.NextToken === '' ? undefined : page.NextToken;
    } while (token !== undefined);
    return out;
  }

  async describeSubnets(ids: readonly string[], options?: Ec2CallOptions): Promise<Ec2Subnet[]> {
    if (ids.length === 0) return [];
    const out = await this.send('DescribeSubnets', (o) => this.client.send(new DescribeSubnetsCommand({ SubnetIds: [...ids] }), o), options);
    return (out.Subnets ?? []).map((s) => ({ id: s.SubnetId ?? '', cidr: s.CidrBlock ?? '', availabilityZone: s.AvailabilityZone ?? '', vpcId: s.VpcId ?? '' }));
  }

  async describeAddresses(filters: readonly Ec2Filter[], options?: Ec2CallOptions): Promise<Ec2Address[]> {
    const out = await this.send('DescribeAddresses', (o) => this.client.send(new DescribeAddressesCommand({ Filters: toFilters(filters) }), o), options);
    return (out.Addresses ?? []).map((a) => ({
      allocationId: a.AllocationId ?? '',
      publicIp: a.PublicIp ?? '',
      associationId: a.AssociationId,
      networkInterfaceId: a.NetworkInterfaceId,
      privateIp: a.PrivateIpAddress,
    }));
  }

  async createNetworkInterface(input: CreateNetworkInterfaceInput, options?: Ec2CallOptions): Promise<Ec2NetworkInterface> {
    const out = await this.send(
      'CreateNetworkInterface',
      (o) => this.client.send(new CreateNetworkInterfaceCommand({
        SubnetId: input.subnetId,
        PrivateIpAddress: input.privateIp,
        // Secondary addresses at creation: a new shared ENI carries its first workloads without an extra
        // AssignPrivateIpAddresses call.
        ...(input.secondaryIps !== undefined && input.secondaryIps.length > 0
          ? { PrivateIpAddresses: input.secondaryIps.map((ip) => ({ PrivateIpAddress: ip, Primary: false })) }
          : {}),
        Groups: [...input.groups],
        Description: input.description,
        ClientToken: input.clientToken,
        TagSpecifications: [{ ResourceType: 'network-interface', Tags: input.tags.map((t) => ({ Key: t.key, Value: t.value })) }],
      }), o),
      options,
    );
    if (out.NetworkInterface === undefined) throw new EgwError('AwsError', 'EC2 CreateNetworkInterface answered without a network interface', { retry: 'retry', details: { awsCode: 'EmptyResponse', action: 'CreateNetworkInterface' } });
    return fromNetworkInterface(out.NetworkInterface);
  }

  async attachNetworkInterface(input: { networkInterfaceId: string; instanceId: string; deviceIndex: number }, options?: Ec2CallOptions): Promise<{ attachmentId: string }> {
    const out = await this.send(
      'AttachNetworkInterface',
      (o) => this.client.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: input.networkInterfaceId, InstanceId: input.instanceId, DeviceIndex: input.deviceIndex, NetworkCardIndex: 0 }), o),
      options,
    );
    return { attachmentId: out.AttachmentId ?? '' };
  }

  async setDeleteOnTermination(input: { networkInterfaceId: string; attachmentId: string; deleteOnTermination: boolean }, options?: Ec2CallOptions): Promise<void> {
    await this.send(
      'ModifyNetworkInterfaceAttribute',
      (o) => this.client.send(new ModifyNetworkInterfaceAttributeCommand({
        NetworkInterfaceId: input.networkInterfaceId,
        Attachment: { AttachmentId: input.attachmentId, DeleteOnTermination: input.deleteOnTermination },
      }), o),
      options,
    );
  }

  async setSourceDestCheck(input: { networkInterfaceId: string; enabled: boolean }, options?: Ec2CallOptions): Promise<void> {
    await this.send(
      'ModifyNetworkInterfaceAttribute',
      (o) => this.client.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: input.networkInterfaceId, SourceDestCheck: { Value: input.enabled } }), o),
      options,
    );
  }

  async detachNetworkInterface(input: { attachmentId: string; force?: boolean }, options?: Ec2CallOptions): Promise<void> {
    await this.send('DetachNetworkInterface', (o) => this.client.send(new DetachNetworkInterfaceCommand({ AttachmentId: input.attachmentId, ...(input.force === true ? { Force: true } : {}) }), o), options);
  }

  async deleteNetworkInterface(input: { networkInterfaceId: string }, options?: Ec2CallOptions): Promise<void> {
    await this.send('DeleteNetworkInterface', (o) => this.client.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: input.networkInterfaceId }), o), options);
  }

  async assignPrivateIpAddresses(input: { networkInterfaceId: string; ips: readonly string[]; allowReassignment: boolean }, options?: Ec2CallOptions): Promise<void> {
    await this.send(
      'AssignPrivateIpAddresses',
      (o) => this.client.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: input.networkInterfaceId, PrivateIpAddresses: [...input.ips], AllowReassignment: input.allowReassignment }), o),
      options,
    );
  }

  async unassignPrivateIpAddresses(input: { networkInterfaceId: string; ips: readonly string[] }, options?: Ec2CallOptions): Promise<void> {
    await this.send('UnassignPrivateIpAddresses', (o) => this.client.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: input.networkInterfaceId, PrivateIpAddresses: [...input.ips] }), o), options);
  }

  async associateAddress(input: { allocationId: string; networkInterfaceId: string; privateIp: string; allowReassociation?: boolean }, options?: Ec2CallOptions): Promise<{ associationId: string }> {
    const out = await this.send(
      'AssociateAddress',
      // Explicitly false: EC2's default is to reassociate, which would take an address from another node.
      (o) => this.client.send(new AssociateAddressCommand({ AllocationId: input.allocationId, NetworkInterfaceId: input.networkInterfaceId, PrivateIpAddress: input.privateIp, AllowReassociation: input.allowReassociation === true }), o),
      options,
    );
    return { associationId: out.AssociationId ?? '' };
  }

  async disassociateAddress(input: { associationId: string }, options?: Ec2CallOptions): Promise<void> {
    await this.send('DisassociateAddress', (o) => this.client.send(new DisassociateAddressCommand({ AssociationId: input.associationId }), o), options);
  }
}

function toFilters(filters: readonly Ec2Filter[]): Filter[] {
  return filters.map((f) => ({ Name: f.name, Values: [...f.values] }));
}

function fromInstanceType(t: InstanceTypeInfo): Ec2InstanceTypeInfo {
  const info = t.NetworkInfo;
  const defaultCard = info?.DefaultNetworkCardIndex ?? 0;
  const card = info?.NetworkCards?.find((c) => (c.NetworkCardIndex ?? 0) === defaultCard);
  const all = info?.MaximumNetworkInterfaces ?? 0;
  return {
    instanceType: t.InstanceType ?? '',
    maxEnis: card?.MaximumNetworkInterfaces ?? all,
    maxEnisAllCards: all,
    ipv4PerEni: info?.Ipv4AddressesPerInterface ?? 0,
  };
}

const ATTACHMENT_STATUSES: readonly Ec2AttachmentStatus[] = ['attaching', 'attached', 'detaching', 'detached'];
const ENI_STATUSES: readonly Ec2EniStatus[] = ['available', 'attaching', 'in-use', 'detaching', 'associated'];

/** The port's view of an SDK NetworkInterface. */
export function fromNetworkInterface(n: NetworkInterface): Ec2NetworkInterface {
  const a = n.Attachment;
  const attStatus = ATTACHMENT_STATUSES.find((s) => s === a?.Status);
  const status = ENI_STATUSES.find((s) => s === n.Status) ?? 'available';
  const primary = n.PrivateIpAddress;
  const ips = (n.PrivateIpAddresses ?? []).map((p) => ({
    ip: p.PrivateIpAddress ?? '',
    primary: p.Primary === true || (p.Primary === undefined && p.PrivateIpAddress === primary),
    association:
      p.Association?.PublicIp === undefined
        ? undefined
        : { publicIp: p.Association.PublicIp, allocationId: p.Association.AllocationId, associationId: p.Association.AssociationId },
  }));
  ips.sort((x, y) => Number(y.primary) - Number(x.primary));
  if (ips.length === 0 && primary !== undefined) ips.push({ ip: primary, primary: true, association: undefined });
  return {
    id: n.NetworkInterfaceId ?? '',
    subnetId: n.SubnetId ?? '',
    vpcId: n.VpcId ?? '',
    availabilityZone: n.AvailabilityZone ?? '',
    status,
    macAddress: (n.MacAddress ?? '').toLowerCase(),
    privateIps: ips,
    groups: (n.Groups ?? []).flatMap((g) => (g.GroupId === undefined ? [] : [g.GroupId])),
    description: n.Description ?? '',
    attachment:
      a === undefined || a.AttachmentId === undefined || attStatus === undefined || attStatus === 'detached'
        ? undefined
        : {
            attachmentId: a.AttachmentId,
            instanceId: a.InstanceId ?? '',
            deviceIndex: a.DeviceIndex ?? 0,
            networkCardIndex: a.NetworkCardIndex ?? 0,
            status: attStatus,
            deleteOnTermination: a.DeleteOnTermination === true,
          },
    tags: Object.fromEntries((n.TagSet ?? []).flatMap((t) => (t.Key === undefined ? [] : [[t.Key, t.Value ?? '']]))),
    // EC2 omits nothing here, but an absent field is read as EC2's default (enabled).
    sourceDestCheck: n.SourceDestCheck !== false,
  };
}
