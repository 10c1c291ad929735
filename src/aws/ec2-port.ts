/**
 * The narrow EC2 port: exactly the EC2 calls egw makes, in egw's own types. One adapter talks to AWS
 * (`SdkEc2`, over `@aws-sdk/client-ec2`); everything above it (the resilience decorator, the fabric
 * reconciler, the controller's subnet facts) depends only on this interface, so tests can wrap it to
 * count calls or inject crashes.
 *
 * {@link EC2_CALLS} maps every method to its EC2 action and the IAM actions it needs: `egw aws iam-policy`
 * is derived from it, so the policy cannot drift from the code.
 */

/** A tag as EC2 stores it. */
export interface Ec2Tag {
  key: string;
  value: string;
}

/** A Describe filter: AND across names, OR within values (EC2's rule). */
export interface Ec2Filter {
  name: string;
  values: readonly string[];
}

/** An Elastic IP association as seen on a private address. */
export interface Ec2IpAssociation {
  publicIp: string;
  allocationId: string | undefined;
  associationId: string | undefined;
}

/** One private IPv4 address of an ENI. */
export interface Ec2PrivateIp {
  ip: string;
  primary: boolean;
  association: Ec2IpAssociation | undefined;
}

/** EC2's attachment states. */
export type Ec2AttachmentStatus = 'attaching' | 'attached' | 'detaching' | 'detached';

/** An ENI's attachment to an instance. */
export interface Ec2Attachment {
  attachmentId: string;
  instanceId: string;
  deviceIndex: number;
  networkCardIndex: number;
  status: Ec2AttachmentStatus;
  deleteOnTermination: boolean;
}

/** EC2's ENI states. */
export type Ec2EniStatus = 'available' | 'attaching' | 'in-use' | 'detaching' | 'associated';

/** An elastic network interface. */
export interface Ec2NetworkInterface {
  id: string;
  subnetId: string;
  vpcId: string;
  availabilityZone: string;
  status: Ec2EniStatus;
  macAddress: string;
  /** Primary address first. */
  privateIps: Ec2PrivateIp[];
  /** Security group IDs. */
  groups: string[];
  description: string;
  attachment: Ec2Attachment | undefined;
  tags: Record<string, string>;
  /** EC2's source/destination check (true unless disabled; `awsSrcDstCheck` sets it on the primary ENI). */
  sourceDestCheck: boolean;
}

/** An Elastic IP of the account. */
export interface Ec2Address {
  allocationId: string;
  publicIp: string;
  associationId: string | undefined;
  networkInterfaceId: string | undefined;
  privateIp: string | undefined;
}

/** A VPC subnet's facts. */
export interface Ec2Subnet {
  id: string;
  cidr: string;
  availabilityZone: string;
  vpcId: string;
}

/** The network limits of an instance type. */
export interface Ec2InstanceTypeInfo {
  instanceType: string;
  /** ENIs on the default network card (`NetworkCards[default].MaximumNetworkInterfaces`): the figure capacity uses. */
  maxEnis: number;
  /** ENIs over all network cards (`MaximumNetworkInterfaces`). */
  maxEnisAllCards: number;
  /** IPv4 addresses per ENI, the primary included. */
  ipv4PerEni: number;
}

/** Per-call options: aborting the signal abandons the call (the awsRequestTimeout). */
export interface Ec2CallOptions {
  signal?: AbortSignal;
}

/** Input of {@link Ec2.createNetworkInterface}. */
export interface CreateNetworkInterfaceInput {
  subnetId: string;
  /** The primary address: egw always chooses it (the workload IP, or an IPAM host-secondary address). */
  privateIp: string;
  /** Secondary addresses assigned at creation (`PrivateIpAddresses.N`, not primary); absent = none. */
  secondaryIps?: readonly string[];
  groups: readonly string[];
  description: string;
  /** Tags applied at creation (TagSpecifications), so the ENI is never untagged. */
  tags: readonly Ec2Tag[];
  /** EC2 idempotency token (≤ 64 ASCII characters): a retry with it never creates a second ENI. */
  clientToken: string;
}

/**
 * Exactly the EC2 calls egw makes. Every method fails with an `EgwError` of code `AwsError` whose
 * `details.awsCode` is EC2's error code and whose `retry` class says whether to retry, back off or give up
 * (see `classifyAwsError`). Describe calls page through every result.
 */
export interface Ec2 {
  /** DescribeInstanceTypes for the given types. */
  describeInstanceTypes(types: readonly string[], options?: Ec2CallOptions): Promise<Ec2InstanceTypeInfo[]>;
  /** DescribeNetworkInterfaces with filters (never IDs, so an ENI that vanished is simply absent). */
  describeNetworkInterfaces(filters: readonly Ec2Filter[], options?: Ec2CallOptions): Promise<Ec2NetworkInterface[]>;
  /** DescribeSubnets by ID; an unknown ID fails the call with `InvalidSubnetID.NotFound`. */
  describeSubnets(ids: readonly string[], options?: Ec2CallOptions): Promise<Ec2Subnet[]>;
  /** DescribeAddresses with filters (an unknown public IP is simply absent). */
  describeAddresses(filters: readonly Ec2Filter[], options?: Ec2CallOptions): Promise<Ec2Address[]>;
  /** CreateNetworkInterface with tags at creation and a ClientToken. */
  createNetworkInterface(input: CreateNetworkInterfaceInput, options?: Ec2CallOptions): Promise<Ec2NetworkInterface>;
  /** AttachNetworkInterface on network card 0. */
  attachNetworkInterface(input: { networkInterfaceId: string; instanceId: string; deviceIndex: number }, options?: Ec2CallOptions): Promise<{ attachmentId: string }>;
  /** ModifyNetworkInterfaceAttribute `Attachment.DeleteOnTermination`. */
  setDeleteOnTermination(input: { networkInterfaceId: string; attachmentId: string; deleteOnTermination: boolean }, options?: Ec2CallOptions): Promise<void>;
  /** ModifyNetworkInterfaceAttribute `SourceDestCheck` (FelixConfiguration `awsSrcDstCheck`, on the node's primary ENI). */
  setSourceDestCheck(input: { networkInterfaceId: string; enabled: boolean }, options?: Ec2CallOptions): Promise<void>;
  /** DetachNetworkInterface. */
  detachNetworkInterface(input: { attachmentId: string; force?: boolean }, options?: Ec2CallOptions): Promise<void>;
  /** DeleteNetworkInterface. */
  deleteNetworkInterface(input: { networkInterfaceId: string }, options?: Ec2CallOptions): Promise<void>;
  /** AssignPrivateIpAddresses of explicit addresses. */
  assignPrivateIpAddresses(input: { networkInterfaceId: string; ips: readonly string[]; allowReassignment: boolean }, options?: Ec2CallOptions): Promise<void>;
  /** UnassignPrivateIpAddresses. */
  unassignPrivateIpAddresses(input: { networkInterfaceId: string; ips: readonly string[] }, options?: Ec2CallOptions): Promise<void>;
  /**
   * AssociateAddress of an Elastic IP with one private address of an ENI, with `AllowReassociation: false`
   * unless `allowReassociation` is set, so an address another node holds fails with
   * `Resource.AlreadyAssociated` instead of being stolen. Only the Elastic IP standby takes one over, and
   * only from a holder that is no longer a live gateway.
   */
  associateAddress(input: { allocationId: string; networkInterfaceId: string; privateIp: string; allowReassociation?: boolean }, options?: Ec2CallOptions): Promise<{ associationId: string }>;
  /** DisassociateAddress (idempotent on EC2). */
  disassociateAddress(input: { associationId: string }, options?: Ec2CallOptions): Promise<void>;
}

/** What one port method is, for IAM, metrics and retries. */
export interface Ec2CallInfo {
  /** The EC2 API action. */
  action: string;
  /** IAM actions the call needs (tag-on-create also needs `ec2:CreateTags`). */
  iam: readonly string[];
  /** Changes state (counted by the `ec2-calls` benchmark). */
  mutating: boolean;
  /**
   * Safe to send again after a 5xx or a timeout whose outcome is unknown: a repeat has the same effect
   * (Describe, ClientToken, idempotent EC2 actions). Throttled calls never ran and are always retried.
   */
  retrySafe: boolean;
}

/** Every method of {@link Ec2} with its action; typed so that a new method cannot lack an entry. */
export const EC2_CALLS: { readonly [K in keyof Ec2]: Ec2CallInfo } = {
  describeInstanceTypes: { action: 'DescribeInstanceTypes', iam: ['ec2:DescribeInstanceTypes'], mutating: false, retrySafe: true },
  describeNetworkInterfaces: { action: 'DescribeNetworkInterfaces', iam: ['ec2:DescribeNetworkInterfaces'], mutating: false, retrySafe: true },
  describeSubnets: { action: 'DescribeSubnets', iam: ['ec2:DescribeSubnets'], mutating: false, retrySafe: true },
  describeAddresses: { action: 'DescribeAddresses', iam: ['ec2:DescribeAddresses'], mutating: false, retrySafe: true },
  createNetworkInterface: { action: 'CreateNetworkInterface', iam: ['ec2:CreateNetworkInterface', 'ec2:CreateTags'], mutating: true, retrySafe: true },
  // A repeated attach fails (the ENI is attached): the reconciler re-reads instead.
  attachNetworkInterface: { action: 'AttachNetworkInterface', iam: ['ec2:AttachNetworkInterface'], mutating: true, retrySafe: false },
  setDeleteOnTermination: { action: 'ModifyNetworkInterfaceAttribute', iam: ['ec2:ModifyNetworkInterfaceAttribute'], mutating: true, retrySafe: true },
  // Setting the same value again changes nothing.
  setSourceDestCheck: { action: 'ModifyNetworkInterfaceAttribute', iam: ['ec2:ModifyNetworkInterfaceAttribute'], mutating: true, retrySafe: true },
  // A repeated detach of a finished detachment is InvalidAttachmentID.NotFound: re-read instead.
  detachNetworkInterface: { action: 'DetachNetworkInterface', iam: ['ec2:DetachNetworkInterface'], mutating: true, retrySafe: false },
  deleteNetworkInterface: { action: 'DeleteNetworkInterface', iam: ['ec2:DeleteNetworkInterface'], mutating: true, retrySafe: false },
  // An address already on the same ENI is skipped by EC2: a repeat is harmless.
  assignPrivateIpAddresses: { action: 'AssignPrivateIpAddresses', iam: ['ec2:AssignPrivateIpAddresses'], mutating: true, retrySafe: true },
  unassignPrivateIpAddresses: { action: 'UnassignPrivateIpAddresses', iam: ['ec2:UnassignPrivateIpAddresses'], mutating: true, retrySafe: false },
  associateAddress: { action: 'AssociateAddress', iam: ['ec2:AssociateAddress'], mutating: true, retrySafe: true },
  disassociateAddress: { action: 'DisassociateAddress', iam: ['ec2:DisassociateAddress'], mutating: true, retrySafe: true },
};

/** The names of the port's methods, in table order. */
export const EC2_METHODS = Object.keys(EC2_CALLS) as (keyof Ec2)[];
