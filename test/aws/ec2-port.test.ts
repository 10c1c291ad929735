import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyAwsError, retryClassOf } from '../../src/aws/aws-errors.js';
import { EC2_CALLS, EC2_METHODS } from '../../src/aws/ec2-port.js';
import { SdkEc2 } from '../../src/aws/sdk-ec2.js';
import { clientToken, eniTags } from '../../src/aws/ownership.js';
import { EgwError } from '../../src/platform/errors.js';
import type { AwsSimHandle } from '../../src/sim/aws/server.js';
import { EGRESS_A, EIP1, KIND, NODE_A1, NODE_A2, sdkFor, SG, startFabricSim } from './helpers.js';

const id = { cluster: 'c', node: 'n', instanceId: NODE_A1 };

/** Rejects with the EgwError a call failed with. */
async function failure(p: Promise<unknown>): Promise<EgwError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EgwError);
  return err as EgwError;
}

describe('SdkEc2 through the emulator (HTTP, real SDK)', () => {
  let sim: AwsSimHandle;
  let ec2: SdkEc2;

  beforeAll(async () => {
    // The adapter's semantics, one call at a time: the kind emulator (the reconciler's tests run the harsh one).
    sim = await startFabricSim(KIND);
    ec2 = sdkFor(sim);
  });
  afterAll(async () => {
    ec2.destroy();
    await sim.close();
  });

  it('reads the limits of the default network card', async () => {
    expect(await ec2.describeInstanceTypes(['t3.large', 'c5n.18xlarge'])).toEqual(
      expect.arrayContaining([
        { instanceType: 't3.large', maxEnis: 3, maxEnisAllCards: 3, ipv4PerEni: 12 },
        expect.objectContaining({ instanceType: 'c5n.18xlarge', maxEnis: 15, ipv4PerEni: 50 }),
      ]),
    );
  });

  it("finds the endpoint in the SDK's standard AWS_ENDPOINT_URL_EC2 when none is given (the lab's agents)", async () => {
    const saved = process.env['AWS_ENDPOINT_URL_EC2'];
    process.env['AWS_ENDPOINT_URL_EC2'] = sim.url;
    const viaEnv = new SdkEc2({ region: 'us-west-2', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    try {
      expect((await viaEnv.describeInstanceTypes(['t3.large']))[0]?.maxEnis).toBe(3);
    } finally {
      viaEnv.destroy();
      if (saved === undefined) delete process.env['AWS_ENDPOINT_URL_EC2'];
      else process.env['AWS_ENDPOINT_URL_EC2'] = saved;
    }
  });

  it('creates with tags and a ClientToken: the same token returns the same ENI, never a second', async () => {
    const input = { subnetId: EGRESS_A, privateIp: '100.64.0.100', groups: [SG], description: 'port test', tags: eniTags(id, 'eni-per-workload', 'pod/x/y/z', '2025-01-01T00:00:00.000Z'), clientToken: clientToken(id, 'port-test', '100.64.0.100', 0) };
    const a = await ec2.createNetworkInterface(input);
    const b = await ec2.createNetworkInterface(input);
    expect(b.id).toBe(a.id);
    expect(a).toMatchObject({ subnetId: EGRESS_A, status: 'available', groups: [SG], attachment: undefined, privateIps: [{ ip: '100.64.0.100', primary: true, association: undefined }] });
    expect(a.tags).toMatchObject({ 'calico:use': 'secondary', 'egw:mode': 'eni-per-workload' });
    const mismatch = await failure(ec2.createNetworkInterface({ ...input, description: 'other' }));
    expect(mismatch.details).toMatchObject({ awsCode: 'IdempotentParameterMismatch', action: 'CreateNetworkInterface' });
    expect(mismatch.retry).toBe('terminal');
    const listed = await ec2.describeNetworkInterfaces([{ name: 'tag:egw:cluster', values: ['c'] }]);
    expect(listed.map((e) => e.id)).toEqual([a.id]);
    const { attachmentId } = await ec2.attachNetworkInterface({ networkInterfaceId: a.id, instanceId: NODE_A1, deviceIndex: 1 });
    await ec2.setDeleteOnTermination({ networkInterfaceId: a.id, attachmentId, deleteOnTermination: true });
    await ec2.assignPrivateIpAddresses({ networkInterfaceId: a.id, ips: ['100.64.0.101'], allowReassignment: false });
    const { associationId } = await ec2.associateAddress({ allocationId: EIP1.allocationId, networkInterfaceId: a.id, privateIp: '100.64.0.101' });
    const [seen] = await ec2.describeNetworkInterfaces([{ name: 'attachment.instance-id', values: [NODE_A1] }, { name: 'network-interface-id', values: [a.id] }]);
    expect(seen?.attachment).toEqual({ attachmentId, instanceId: NODE_A1, deviceIndex: 1, networkCardIndex: 0, status: 'attached', deleteOnTermination: true });
    expect(seen?.privateIps[1]).toEqual({ ip: '100.64.0.101', primary: false, association: { publicIp: EIP1.publicIp, allocationId: EIP1.allocationId, associationId } });
    expect(await ec2.describeAddresses([{ name: 'public-ip', values: [EIP1.publicIp, '198.51.100.1'] }])).toEqual([
      { allocationId: EIP1.allocationId, publicIp: EIP1.publicIp, associationId, networkInterfaceId: a.id, privateIp: '100.64.0.101' },
    ]);
    // AllowReassociation is always false: another node's claim fails instead of stealing the address.
    const other = await ec2.createNetworkInterface({ ...input, privateIp: '100.64.0.102', clientToken: clientToken(id, 'port-test-2', '100.64.0.102', 0) });
    const taken = await failure(ec2.associateAddress({ allocationId: EIP1.allocationId, networkInterfaceId: other.id, privateIp: '100.64.0.102' }));
    expect(taken.details['awsCode']).toBe('Resource.AlreadyAssociated');
    await ec2.unassignPrivateIpAddresses({ networkInterfaceId: a.id, ips: ['100.64.0.101'] });
    await ec2.disassociateAddress({ associationId });
    await ec2.detachNetworkInterface({ attachmentId });
    await ec2.deleteNetworkInterface({ networkInterfaceId: a.id });
    await ec2.deleteNetworkInterface({ networkInterfaceId: other.id });
    const gone = await failure(ec2.deleteNetworkInterface({ networkInterfaceId: a.id }));
    expect(gone.details['awsCode']).toBe('InvalidNetworkInterfaceID.NotFound');
  });

  it('classifies EC2 errors at the edge: code, action, HTTP status, retry class', async () => {
    const limit = await failure(ec2.attachNetworkInterface({ networkInterfaceId: 'eni-0123456789abcdef0', instanceId: NODE_A2, deviceIndex: 1 }));
    expect(limit).toMatchObject({ code: 'AwsError', retry: 'terminal', details: { awsCode: 'InvalidNetworkInterfaceID.NotFound', action: 'AttachNetworkInterface', httpStatus: 400 } });
    const unknown = await failure(ec2.describeSubnets(['subnet-0000000000000dead']));
    expect(unknown.details['awsCode']).toBe('InvalidSubnetID.NotFound');
    expect(unknown.message).toMatch(/^EC2 DescribeSubnets failed: InvalidSubnetID\.NotFound: /);
    expect(unknown.hint).toContain('awsSubnetID');
  });

  it('classifies throttling, 5xx and unauthorized calls from the emulator', async () => {
    const denied = await startFabricSim({ allowActions: ['ec2:Describe*'] });
    const throttled = await startFabricSim({ failureRate: 1, failureKinds: ['RequestLimitExceeded'] });
    const broken = await startFabricSim({ failureRate: 1, failureKinds: ['InternalError'] });
    const clients = [sdkFor(denied), sdkFor(throttled), sdkFor(broken)];
    try {
      const input = { subnetId: EGRESS_A, privateIp: '100.64.0.110', groups: [SG], description: '', tags: [], clientToken: 'egw-t' };
      const u = await failure(clients[0]!.createNetworkInterface(input));
      expect(u).toMatchObject({ retry: 'terminal', details: { awsCode: 'UnauthorizedOperation', httpStatus: 403 } });
      expect(u.hint).toContain('egw aws iam-policy');
      const t = await failure(clients[1]!.describeSubnets([EGRESS_A]));
      expect(t).toMatchObject({ retry: 'throttle', details: { awsCode: 'RequestLimitExceeded', httpStatus: 503 } });
      const i = await failure(clients[2]!.describeSubnets([EGRESS_A]));
      expect(i).toMatchObject({ retry: 'retry', details: { awsCode: 'InternalError', httpStatus: 500 } });
    } finally {
      for (const c of clients) c.destroy();
      await Promise.all([denied.close(), throttled.close(), broken.close()]);
    }
  });

  it('classifies an abandoned call as RequestTimeout and an unreachable endpoint as NetworkingError, both retryable', async () => {
    // A server that accepts and never answers.
    const sockets = new Set<Socket>();
    const silent = createServer((s) => {
      sockets.add(s);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const hanging = new SdkEc2({ region: 'us-west-2', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    try {
      const t = await failure(hanging.describeSubnets([EGRESS_A], { signal: AbortSignal.timeout(100) }));
      expect(t).toMatchObject({ retry: 'retry', details: { awsCode: 'RequestTimeout', action: 'DescribeSubnets' } });
    } finally {
      hanging.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
    const closed = new SdkEc2({ region: 'us-west-2', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    try {
      const n = await failure(closed.describeSubnets([EGRESS_A]));
      expect(n).toMatchObject({ retry: 'retry', details: { awsCode: 'NetworkingError' } });
    } finally {
      closed.destroy();
    }
  });
});

describe('error classes', () => {
  it('follows the retry classes of the brief and of open-source Felix', () => {
    expect(retryClassOf('RequestLimitExceeded')).toBe('throttle');
    for (const c of ['InternalError', 'InternalFailure', 'ServiceUnavailable', 'Unavailable']) expect(retryClassOf(c)).toBe('retry');
    expect(retryClassOf('SomethingNew', 502)).toBe('retry');
    for (const c of ['UnauthorizedOperation', 'InvalidParameterValue', 'AttachmentLimitExceeded', 'InvalidIPAddress.InUse']) expect(retryClassOf(c, 400)).toBe('terminal');
    const passthrough = new EgwError('AwsError', 'x', { retry: 'retry' });
    expect(classifyAwsError(passthrough, 'X')).toBe(passthrough);
  });

  it('has a table entry for every port method, naming its EC2 action and IAM action', () => {
    for (const m of EC2_METHODS) {
      expect(EC2_CALLS[m].iam).toContain(`ec2:${EC2_CALLS[m].action}`);
      expect(typeof SdkEc2.prototype[m]).toBe('function');
    }
    expect(EC2_METHODS.filter((m) => EC2_CALLS[m].mutating).length).toBe(10);
  });
});
