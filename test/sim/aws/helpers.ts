import { EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { expect } from 'vitest';
import { startAwsSim, type AwsSimHandle, type StartAwsSimOptions } from '../../../src/sim/aws/server.js';
import type { SimDefinition, WorldDefinition } from '../../../src/sim/aws/world.js';

export const VPC = 'vpc-0e1a2b3c4d5e6f708';
/** Egress subnets of the reference document, one per zone. */
export const EGRESS_A = 'subnet-0a1b2c3d4e5f60718'; // 100.64.0.0/22, us-west-2a
export const EGRESS_B = 'subnet-0b2c3d4e5f6071829'; // 100.64.4.0/22, us-west-2b
export const NODES_A = 'subnet-0c3d4e5f607182930'; // 100.64.16.0/22, us-west-2a
export const NODES_B = 'subnet-0d4e5f60718293a41'; // 100.64.20.0/22, us-west-2b
export const TINY_A = 'subnet-0e5f60718293a4b52'; // 100.64.24.0/28, us-west-2a
export const SG = 'sg-0123456789abcdef0';
export const SG2 = 'sg-0123456789abcdef1';
export const NODE_A = 'i-0a00000000000000a'; // t3.large in us-west-2a
export const NODE_B = 'i-0b00000000000000a'; // t3.large in us-west-2b
export const MICRO_A = 'i-0c00000000000000a'; // t3.micro in us-west-2a
export const EIP1 = 'eipalloc-0123456789abcdef0';
export const EIP2 = 'eipalloc-0123456789abcdef1';

/** A two-zone world like the reference document's, with small instances for limit tests. */
export function testWorld(sim: SimDefinition = {}): WorldDefinition {
  return {
    region: 'us-west-2',
    vpcs: [{ id: VPC, cidr: '100.64.0.0/16' }],
    subnets: [
      { id: EGRESS_A, vpcId: VPC, cidr: '100.64.0.0/22', availabilityZone: 'us-west-2a', tags: { Name: 'egress-west-1' } },
      { id: EGRESS_B, vpcId: VPC, cidr: '100.64.4.0/22', availabilityZone: 'us-west-2b' },
      { id: NODES_A, vpcId: VPC, cidr: '100.64.16.0/22', availabilityZone: 'us-west-2a' },
      { id: NODES_B, vpcId: VPC, cidr: '100.64.20.0/22', availabilityZone: 'us-west-2b' },
      { id: TINY_A, vpcId: VPC, cidr: '100.64.24.0/28', availabilityZone: 'us-west-2a' },
    ],
    securityGroups: [
      { id: SG, vpcId: VPC, name: 'default' },
      { id: SG2, vpcId: VPC, name: 'gateways' },
    ],
    instances: [
      { id: NODE_A, type: 't3.large', subnetId: NODES_A, privateIp: '100.64.16.10', securityGroups: [SG], tags: { Name: 'node-a' } },
      { id: NODE_B, type: 't3.large', subnetId: NODES_B, privateIp: '100.64.20.10', securityGroups: [SG] },
      { id: MICRO_A, type: 't3.micro', subnetId: NODES_A, privateIp: '100.64.16.20', securityGroups: [SG] },
    ],
    elasticIps: [
      { allocationId: EIP1, publicIp: '203.0.113.7' },
      { allocationId: EIP2, publicIp: '203.0.113.8' },
    ],
    // The kind settings: these tests check one semantic at a time; the harsh defaults have their own tests (consistency.test.ts).
    sim: { seed: 7, latencyMs: 0, attachLatencyMs: 0, detachLatencyMs: 0, describeLagMs: 0, createPropagationMs: 0, addressPick: 'lowest', ...sim },
  };
}

/** A client of the emulator as the agent will build it: real SDK, HTTP, dummy credentials. */
export function clientFor(sim: AwsSimHandle, options: { maxAttempts?: number; retryDelayMs?: number } = {}): EC2Client {
  return new EC2Client({
    endpoint: sim.url,
    region: 'us-west-2',
    credentials: { accessKeyId: 'AKIDEGWTEST', secretAccessKey: 'secret' },
    // Short backoff keeps the tests fast; the retry decisions are still the SDK's own.
    retryStrategy: new ConfiguredRetryStrategy(options.maxAttempts ?? 1, options.retryDelayMs ?? 5),
  });
}

/** Starts an emulator for one test file; `close` it in afterAll/afterEach. */
export async function startTestSim(options: Partial<StartAwsSimOptions> & { simSettings?: SimDefinition } = {}): Promise<AwsSimHandle> {
  const { simSettings, ...rest } = options;
  return startAwsSim({ world: testWorld(simSettings), listen: '127.0.0.1:0', ...rest });
}

/** Awaits a call that must fail with the AWS error `code` (and, optionally, a message part and HTTP status). */
export async function expectAwsError(call: Promise<unknown>, code: string, messagePart?: string, status?: number): Promise<EC2ServiceException> {
  const err: unknown = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(EC2ServiceException);
  const e = err as EC2ServiceException;
  expect(e.name).toBe(code);
  if (messagePart !== undefined) expect(e.message).toContain(messagePart);
  if (status !== undefined) expect(e.$metadata.httpStatusCode).toBe(status);
  return e;
}
