import type { IncomingMessage, ServerResponse } from 'node:http';
import { AssociateAddressCommand, AttachNetworkInterfaceCommand, CreateNetworkInterfaceCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { fromInstanceMetadata, getInstanceMetadataEndpoint, httpRequest } from '@smithy/credential-provider-imds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ec2Engine } from '../../../src/sim/aws/engine.js';
import { Imds } from '../../../src/sim/aws/imds.js';
import { builtInInstanceTypes } from '../../../src/sim/aws/instance-types.js';
import { initialState } from '../../../src/sim/aws/model.js';
import type { AwsSimHandle } from '../../../src/sim/aws/server.js';
import { parseWorld } from '../../../src/sim/aws/world.js';
import { clientFor, EGRESS_A, EIP1, NODE_A, NODE_B, NODES_A, SG, startTestSim, testWorld, VPC } from './helpers.js';

describe('aws-sim IMDSv2', () => {
  let sim: AwsSimHandle;
  let ec2: EC2Client;
  let secondaryMac = '';
  let secondaryEni = '';

  beforeAll(async () => {
    sim = await startTestSim({ imdsBindings: [{ listen: '127.0.0.1:0', instanceId: NODE_A }] });
    ec2 = clientFor(sim);
    const eni = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS_A, PrivateIpAddress: '100.64.0.4', SecondaryPrivateIpAddressCount: 1, Groups: [SG] }))).NetworkInterface;
    secondaryEni = eni?.NetworkInterfaceId ?? '';
    secondaryMac = eni?.MacAddress ?? '';
    await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: secondaryEni, InstanceId: NODE_A, DeviceIndex: 1 }));
    await ec2.send(new AssociateAddressCommand({ AllocationId: EIP1, NetworkInterfaceId: secondaryEni }));
  });
  afterAll(async () => {
    ec2.destroy();
    await sim.close();
  });

  /** IMDS over plain fetch, naming the instance with the emulator's header (loopback has no instance address). */
  const imds = async (path: string, init: { method?: string; headers?: Record<string, string> } = {}, instance: string | null = NODE_A): Promise<Response> =>
    fetch(`${sim.imdsUrl}${path}`, { method: init.method ?? 'GET', headers: { ...(instance === null ? {} : { 'X-Egw-Sim-Instance-Id': instance }), ...init.headers } });
  const token = async (instance = NODE_A): Promise<string> =>
    (await imds('/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' } }, instance)).text();

  it('hands out a token for PUT /latest/api/token and echoes its TTL', async () => {
    const res = await imds('/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '21600' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-aws-ec2-metadata-token-ttl-seconds')).toBe('21600');
    expect((await res.text()).length).toBeGreaterThan(20);
  });

  it('answers the instance metadata the agent needs', async () => {
    const t = await token();
    const get = async (path: string): Promise<string> => {
      const res = await imds(`/latest/meta-data/${path}`, { headers: { 'X-aws-ec2-metadata-token': t } });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain');
      return res.text();
    };
    expect(await get('instance-id')).toBe(NODE_A);
    expect(await get('instance-type')).toBe('t3.large');
    expect(await get('placement/availability-zone')).toBe('us-west-2a');
    expect(await get('placement/region')).toBe('us-west-2');
    expect(await get('local-ipv4')).toBe('100.64.16.10');
    const mac = await get('mac');
    expect((await get('network/interfaces/macs/')).split('\n').sort()).toEqual([`${mac}/`, `${secondaryMac}/`].sort());
    const base = `network/interfaces/macs/${secondaryMac}/`;
    expect(await get(`${base}device-number`)).toBe('1');
    expect(await get(`${base}interface-id`)).toBe(secondaryEni);
    expect(await get(`${base}subnet-id`)).toBe(EGRESS_A);
    expect((await get(`${base}local-ipv4s`)).split('\n')).toEqual(['100.64.0.4', '100.64.0.5']);
    expect(await get(`${base}subnet-ipv4-cidr-block`)).toBe('100.64.0.0/22');
    expect(await get(`${base}vpc-id`)).toBe(VPC);
    expect(await get(`${base}security-group-ids`)).toBe(SG);
    expect(await get(`${base}ipv4-associations/203.0.113.7`)).toBe('100.64.0.4');
    expect(await get(`network/interfaces/macs/${mac}/subnet-id`)).toBe(NODES_A);
    expect(await get(`network/interfaces/macs/${mac}/device-number`)).toBe('0');
    expect((await get('')).split('\n')).toEqual(expect.arrayContaining(['instance-id', 'placement/', 'network/', 'mac']));
    const doc = JSON.parse(await (await imds('/latest/dynamic/instance-identity/document', { headers: { 'X-aws-ec2-metadata-token': t } })).text()) as Record<string, string>;
    expect(doc).toMatchObject({ instanceId: NODE_A, region: 'us-west-2', availabilityZone: 'us-west-2a', privateIp: '100.64.16.10' });
  });

  it('answers as EC2 does to bad calls: 401 without or with a foreign token, 400 for a bad TTL, 404 for unknown paths, 403 for strangers', async () => {
    expect((await imds('/latest/meta-data/instance-id')).status).toBe(401);
    expect((await imds('/latest/meta-data/instance-id', { headers: { 'X-aws-ec2-metadata-token': 'forged' } })).status).toBe(401);
    const other = await token(NODE_B);
    expect((await imds('/latest/meta-data/instance-id', { headers: { 'X-aws-ec2-metadata-token': other } })).status).toBe(401);
    for (const ttl of ['0', '21601', 'x']) {
      expect((await imds('/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': ttl } })).status).toBe(400);
    }
    expect((await imds('/latest/api/token', { method: 'PUT' })).status).toBe(400);
    expect((await imds('/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60', 'X-Forwarded-For': '1.2.3.4' } })).status).toBe(403);
    const t = await token();
    expect((await imds('/latest/meta-data/no-such-thing', { headers: { 'X-aws-ec2-metadata-token': t } })).status).toBe(404);
    // Loopback is no instance's address, and no header names one.
    expect((await imds('/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' } }, null)).status).toBe(403);
  });

  it("works with the AWS SDK's own IMDS client through AWS_EC2_METADATA_SERVICE_ENDPOINT", async () => {
    const saved = process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'];
    // The bound listener answers as NODE_A whatever the source address, as the real IMDS does for its instance.
    process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] = sim.imdsBindingUrls[NODE_A];
    try {
      const endpoint = await getInstanceMetadataEndpoint();
      expect(`${endpoint.protocol}//${endpoint.hostname}:${endpoint.port}`).toBe(sim.imdsBindingUrls[NODE_A]);
      const t = (await httpRequest({ hostname: endpoint.hostname, port: endpoint.port, path: '/latest/api/token', method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '300' } })).toString();
      const id = (await httpRequest({ hostname: endpoint.hostname, port: endpoint.port, path: '/latest/meta-data/instance-id', headers: { 'x-aws-ec2-metadata-token': t } })).toString();
      expect(id).toBe(NODE_A);
      // The SDK's instance-profile credential provider runs the whole IMDSv2 flow against the emulator.
      const creds = await fromInstanceMetadata({ maxRetries: 0, timeout: 2000 })();
      expect(creds.accessKeyId).toMatch(/^ASIA[0-9A-F]{16}$/);
      expect(creds.sessionToken).toBeTruthy();
      expect(creds.expiration?.getTime()).toBeGreaterThan(Date.now());
    } finally {
      if (saved === undefined) delete process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'];
      else process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] = saved;
    }
  });

  it('tells the calling instance by its source address (any address of its attached ENIs)', () => {
    const world = parseWorld(testWorld({ imds: { trustInstanceHeader: false } }), 'world', builtInInstanceTypes());
    const engine = new Ec2Engine(world, initialState(world, 1, 0), builtInInstanceTypes(), { now: () => 0, attachDelayMs: () => 0, detachDelayMs: () => 0 });
    const server = new Imds({ engine, now: () => 0 });
    const call = (remoteAddress: string, headers: Record<string, string>, method: string, path: string): { status: number; body: string } => {
      const res = { statusCode: 0, body: '', setHeader: () => undefined, end(b: string) { this.body = b; } };
      const req = { method, headers, socket: { remoteAddress } } as unknown as IncomingMessage;
      server.handle(req, res as unknown as ServerResponse, path, undefined);
      return { status: res.statusCode, body: res.body };
    };
    const t = call('::ffff:100.64.20.10', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, 'PUT', '/latest/api/token');
    expect(t.status).toBe(200);
    expect(call('100.64.20.10', { 'x-aws-ec2-metadata-token': t.body }, 'GET', '/latest/meta-data/instance-id')).toEqual({ status: 200, body: NODE_B });
    // The header is ignored when not trusted, and a stranger's address is refused.
    expect(call('100.64.20.10', { 'x-aws-ec2-metadata-token': t.body, 'x-egw-sim-instance-id': NODE_A }, 'GET', '/latest/meta-data/instance-id').body).toBe(NODE_B);
    expect(call('100.64.99.99', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, 'PUT', '/latest/api/token').status).toBe(403);
  });
});
