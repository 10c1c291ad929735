/**
 * Who am I on EC2: the instance facts the agent needs, from the instance metadata service (IMDSv2)
 * through `@aws-sdk/ec2-metadata-service`, which honours `AWS_EC2_METADATA_SERVICE_ENDPOINT` (the
 * emulator's IMDS in the lab and in tests).
 */
import { MetadataService } from '@aws-sdk/ec2-metadata-service';
import { EgwError } from '../platform/errors.js';

/** The facts of the instance the agent runs on. */
export interface InstanceFacts {
  instanceId: string;
  instanceType: string;
  availabilityZone: string;
  region: string;
  /** The primary private IPv4 address. */
  localIpv4: string;
  /** MAC of the primary ENI (lower case). */
  primaryMac: string;
}

/** The IMDS port: GET of a path under `/latest/` (IMDSv2 token handling is the implementation's). */
export interface ImdsClient {
  /** The text at `/latest/<path>`; fails with `AwsError` (awsCode `ImdsUnavailable`) when it cannot be read. */
  get(path: string): Promise<string>;
}

/** Options of {@link SdkImds}. */
export interface SdkImdsOptions {
  /** IMDS base URL; default `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else `http://169.254.169.254`. */
  endpoint?: string;
  /** Per-request timeout (default 2 s). */
  timeoutMs?: number;
  /** Attempts after the first (default 3). */
  retries?: number;
}

/** IMDSv2 through the SDK's metadata-service client (token first, then the GET; IMDSv1 is never used). */
export class SdkImds implements ImdsClient {
  private readonly service: MetadataService;

  constructor(options: SdkImdsOptions = {}) {
    const endpoint = options.endpoint ?? process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'];
    this.service = new MetadataService({
      ...(endpoint === undefined || endpoint === '' ? {} : { endpoint: endpoint.replace(/\/+$/, '') }),
      httpOptions: { timeout: options.timeoutMs ?? 2_000 },
      retries: options.retries ?? 3,
      backoff: (n: number) => 0.1 * 2 ** n,
      ec2MetadataV1Disabled: true,
      tokenTtl: 21_600,
    });
  }

  async get(path: string): Promise<string> {
    try {
      // The client joins the endpoint URL's path ("/") and this one.
      return (await this.service.request(`latest/${path}`, {})).trim();
    } catch (err) {
      throw new EgwError('AwsError', `instance metadata ${path} could not be read: ${err instanceof Error ? err.message : String(err)}`, {
        retry: 'retry',
        cause: err,
        hint: 'run on an EC2 instance with IMDSv2 enabled, or point AWS_EC2_METADATA_SERVICE_ENDPOINT at the emulator',
        details: { awsCode: 'ImdsUnavailable', path },
      });
    }
  }
}

/**
 * Reads the instance facts (instance-id, instance-type, zone, region, local-ipv4, mac). The region comes
 * from `placement/region`, or from the zone minus its letter when that path is missing (older IMDS).
 * Errors: `AwsError` from the client; `InvalidInput` when an answer is malformed.
 */
export async function discoverInstance(imds: ImdsClient): Promise<InstanceFacts> {
  const [instanceId, instanceType, availabilityZone, localIpv4, mac] = await Promise.all([
    imds.get('meta-data/instance-id'),
    imds.get('meta-data/instance-type'),
    imds.get('meta-data/placement/availability-zone'),
    imds.get('meta-data/local-ipv4'),
    imds.get('meta-data/mac'),
  ]);
  let region: string;
  try {
    region = await imds.get('meta-data/placement/region');
  } catch {
    region = availabilityZone.replace(/[a-z]$/, '');
  }
  if (!/^i-[0-9a-f]{8,}$/.test(instanceId)) {
    throw new EgwError('InvalidInput', `instance metadata returned "${instanceId}" as the instance ID`, { hint: 'check AWS_EC2_METADATA_SERVICE_ENDPOINT' });
  }
  return { instanceId, instanceType, availabilityZone, region, localIpv4, primaryMac: mac.toLowerCase() };
}
