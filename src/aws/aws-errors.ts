/**
 * EC2 failures, classified at the edge: every error that leaves the EC2 port is an `EgwError` of code
 * `AwsError` with EC2's code in `details.awsCode`, the action in `details.action`, and a retry class:
 *
 * - `throttle`: `RequestLimitExceeded` — the call did not run; slow down and send it again;
 * - `retry`: `InternalError`, `InternalFailure`, `ServiceUnavailable`, `Unavailable` (the codes open-source
 *   Felix retries), any other 5xx, timeouts and network failures — the outcome may be unknown;
 * - `terminal`: everything else (`UnauthorizedOperation`, `InvalidParameterValue`, limits, NotFound…) —
 *   sending the same call again gives the same answer.
 */
import { EgwError, isEgwError } from '../platform/errors.js';

/** EC2's throttling code. */
export const THROTTLE_CODES: ReadonlySet<string> = new Set(['RequestLimitExceeded']);

/** Server-side codes worth retrying (open-source Felix's list, `felix/aws/ec2.go`). */
export const RETRIABLE_CODES: ReadonlySet<string> = new Set(['InternalError', 'InternalFailure', 'ServiceUnavailable', 'Unavailable']);

/** egw's own `awsCode` for a call abandoned after `awsRequestTimeout`. */
export const TIMEOUT_CODE = 'RequestTimeout';
/** egw's own `awsCode` for a failure below HTTP (connection refused, reset, DNS). */
export const NETWORK_CODE = 'NetworkingError';

const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

const HINTS: Record<string, string> = {
  UnauthorizedOperation: 'grant the node role (or the calico-node / egw service account) the policy printed by `egw aws iam-policy`',
  RequestLimitExceeded: 'EC2 is rate-limiting this account; egw backs off and retries',
  AttachmentLimitExceeded: 'the instance type has no free ENI slot: use a larger instance type or fewer AWS-backed gateways per node',
  PrivateIpAddressLimitExceeded: 'the ENI has no free address slot; egw uses another ENI when one is free',
  'InvalidIPAddress.InUse': 'another ENI holds the address (a gateway moving between nodes, or an address outside IPAM): egw retries until it is free',
  InsufficientFreeAddressesInSubnet: 'the subnet is full: free addresses or use a larger subnet',
  'InvalidSubnetID.NotFound': "check the IPPool's awsSubnetID and the region egw uses",
  'Resource.AlreadyAssociated': 'the Elastic IP is held by another address; egw tries the next listed one',
  [TIMEOUT_CODE]: 'EC2 did not answer within awsRequestTimeout; egw retries',
  [NETWORK_CODE]: 'the EC2 endpoint cannot be reached; check the region, endpoint and network',
};

/** The retry class of an EC2 error code (and HTTP status, when known). */
export function retryClassOf(awsCode: string, httpStatus?: number): 'retry' | 'throttle' | 'terminal' {
  if (THROTTLE_CODES.has(awsCode)) return 'throttle';
  if (RETRIABLE_CODES.has(awsCode) || awsCode === TIMEOUT_CODE || awsCode === NETWORK_CODE) return 'retry';
  if (httpStatus !== undefined && httpStatus >= 500) return 'retry';
  return 'terminal';
}

interface SdkLikeError {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: unknown; requestId?: unknown };
  $fault?: unknown;
}

/**
 * The `EgwError` for anything an EC2 call threw. `aborted` says the call was abandoned by egw's own
 * timeout (the SDK reports an abort as `AbortError`). An `EgwError` passes through unchanged.
 */
export function classifyAwsError(err: unknown, action: string, aborted = false): EgwError {
  if (isEgwError(err)) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkLikeError;
  const name = typeof e.name === 'string' ? e.name : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const requestId = typeof e.$metadata?.requestId === 'string' ? e.$metadata.requestId : undefined;
  const errno = typeof e.code === 'string' ? e.code : undefined;
  let awsCode: string;
  if (aborted || name === 'AbortError' || name === 'TimeoutError' || name === 'RequestTimeout') awsCode = TIMEOUT_CODE;
  else if (status !== undefined && name !== '' && name !== 'Error') awsCode = name;
  else if (errno !== undefined && NETWORK_ERRNOS.has(errno)) awsCode = NETWORK_CODE;
  else if (status === undefined && (name === 'Error' || name === '' || name === 'TypeError')) awsCode = NETWORK_CODE;
  else awsCode = name === '' ? 'UnknownError' : name;
  const retry = retryClassOf(awsCode, status);
  const text = awsCode === TIMEOUT_CODE ? 'no answer within the request timeout' : message.split('\n')[0] ?? message;
  return new EgwError('AwsError', `EC2 ${action} failed: ${awsCode}: ${text}`, {
    retry,
    cause: err,
    ...(HINTS[awsCode] === undefined ? {} : { hint: HINTS[awsCode] }),
    details: { awsCode, action, ...(status === undefined ? {} : { httpStatus: status }), ...(requestId === undefined ? {} : { requestId }) },
  });
}

/** EC2's error code of an error from the port, or undefined when it is not an AWS error. */
export function awsCodeOf(err: unknown): string | undefined {
  if (!isEgwError(err, 'AwsError')) return undefined;
  const code = err.details['awsCode'];
  return typeof code === 'string' ? code : undefined;
}
