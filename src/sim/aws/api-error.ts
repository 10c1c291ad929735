/**
 * The errors the emulator answers with, as EC2 does: a code, a message and an HTTP status. Codes and
 * messages follow AWS (docs/aws-sim.md, "Facts and sources", says where each one comes from); they
 * are wire data for the SDK client, not egw errors, so they are not {@link EgwError}s.
 */
export class Ec2ApiError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 400) {
    super(message);
    this.name = 'Ec2ApiError';
    this.code = code;
    this.status = status;
  }
}

/** Constructors for every error the emulator returns, so codes and message formats live in one place. */
export const awsErrors = {
  // Common client errors.
  missingAction: () => new Ec2ApiError('MissingAction', 'The request must contain the parameter Action'),
  invalidAction: (action: string) =>
    new Ec2ApiError('InvalidAction', `The action ${action} is not valid for this web service.`),
  missingParameter: (name: string) =>
    new Ec2ApiError('MissingParameter', `The request must contain the parameter ${name}`),
  unknownParameter: (name: string) =>
    new Ec2ApiError('UnknownParameter', `The parameter ${name} is not recognized`),
  invalidParameterValue: (message: string) => new Ec2ApiError('InvalidParameterValue', message),
  invalidParameter: (message: string) => new Ec2ApiError('InvalidParameter', message),
  invalidParameterCombination: (message: string) => new Ec2ApiError('InvalidParameterCombination', message),
  invalidFilter: (name: string) => new Ec2ApiError('InvalidParameterValue', `The filter '${name}' is invalid`),
  invalidNextToken: () => new Ec2ApiError('InvalidNextToken', 'The specified NextToken is not valid.'),
  idempotentParameterMismatch: (token: string) =>
    new Ec2ApiError(
      'IdempotentParameterMismatch',
      `Client token '${token}' was already used with a request whose parameters differ from this one.`,
    ),
  dryRun: () => new Ec2ApiError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412),
  unauthorized: (encoded: string) =>
    new Ec2ApiError(
      'UnauthorizedOperation',
      `You are not authorized to perform this operation. Encoded authorization failure message: ${encoded}`,
      403,
    ),

  // Not found.
  eniNotFound: (id: string) =>
    new Ec2ApiError('InvalidNetworkInterfaceID.NotFound', `The networkInterface ID '${id}' does not exist`),
  instanceNotFound: (id: string) => new Ec2ApiError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`),
  subnetNotFound: (id: string) => new Ec2ApiError('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`),
  securityGroupNotFound: (id: string) =>
    new Ec2ApiError('InvalidSecurityGroupID.NotFound', `The securityGroup ID '${id}' does not exist`),
  allocationNotFound: (id: string) =>
    new Ec2ApiError('InvalidAllocationID.NotFound', `The allocation ID '${id}' does not exist`),
  associationNotFound: (id: string) =>
    new Ec2ApiError('InvalidAssociationID.NotFound', `The association ID '${id}' does not exist`),
  attachmentNotFound: (id: string) =>
    new Ec2ApiError('InvalidAttachmentID.NotFound', `The attachment ID '${id}' does not exist`),
  addressNotFound: (ip: string) => new Ec2ApiError('InvalidAddress.NotFound', `Address '${ip}' not found.`),
  invalidId: (id: string) => new Ec2ApiError('InvalidID', `The ID '${id}' is not valid`),
  invalidInstanceType: (types: string[]) =>
    new Ec2ApiError('InvalidInstanceType', `The following supplied instance types do not exist: [${types.join(', ')}]`),

  incorrectInstanceState: (id: string, state: string) =>
    new Ec2ApiError('IncorrectInstanceState', `The instance '${id}' is not in a state from which it can be used (state: ${state}).`),

  // Network interfaces and addresses.
  eniInUse: (id: string) =>
    new Ec2ApiError('InvalidNetworkInterface.InUse', `Network interface '${id}' is currently in use.`),
  addressInUse: () => new Ec2ApiError('InvalidIPAddress.InUse', 'The specified address is already in use.'),
  addressInUseByOther: (ip: string) => new Ec2ApiError('InvalidIPAddress.InUse', `Address ${ip} is in use.`),
  reservedAddress: (ip: string) =>
    new Ec2ApiError('InvalidParameterValue', `Address ${ip} is in subnet's reserved address range`),
  addressOutsideSubnet: (ip: string, subnetId: string) =>
    new Ec2ApiError('InvalidParameterValue', `Address ${ip} does not fall within the subnet's address range (${subnetId})`),
  azMismatch: () =>
    new Ec2ApiError(
      'InvalidParameterCombination',
      'You may not attach a network interface to an instance if they are not in the same availability zone',
    ),
  deviceIndexInUse: (instanceId: string, index: number) =>
    new Ec2ApiError(
      'InvalidParameterValue',
      `Instance '${instanceId}' already has an interface attached at device index '${index}'.`,
    ),
  attachmentLimit: (count: number, type: string) =>
    new Ec2ApiError('AttachmentLimitExceeded', `Interface count ${count} exceeds the limit for ${type}`),
  privateIpLimit: () => new Ec2ApiError('PrivateIpAddressLimitExceeded', 'Number of private addresses will exceed limit.'),
  insufficientAddresses: () =>
    new Ec2ApiError(
      'InsufficientFreeAddressesInSubnet',
      'The specified subnet does not have enough free addresses to satisfy the request.',
    ),
  primaryDetach: () =>
    new Ec2ApiError(
      'OperationNotPermitted',
      'The network interface at device index 0 and networkCard index 0 cannot be detached.',
    ),
  alreadyAssociated: (allocationId: string, associationId: string) =>
    new Ec2ApiError('Resource.AlreadyAssociated', `resource ${allocationId} is already associated with associate-id ${associationId}`),
  addressLimit: () => new Ec2ApiError('AddressLimitExceeded', 'The maximum number of addresses has been reached.'),
  tagLimit: () => new Ec2ApiError('TagLimitExceeded', 'The maximum number of Tags for a resource has been reached.'),
  securityGroupsPerInterfaceLimit: () =>
    new Ec2ApiError(
      'SecurityGroupsPerInterfaceLimitExceeded',
      'The maximum number of security groups per interface has been reached.',
    ),

  // Server-side and throttling.
  requestLimitExceeded: () => new Ec2ApiError('RequestLimitExceeded', 'Request limit exceeded.', 503),
  internalError: () =>
    new Ec2ApiError('InternalError', 'An internal error has occurred. Retry your request.', 500),
  unavailable: () => new Ec2ApiError('Unavailable', "The server is overloaded and can't handle the request.", 503),
} as const;
