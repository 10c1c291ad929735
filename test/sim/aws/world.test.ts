import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EgwError} from '../../../src/platform/errors.js';
import { isEgwError } from '../../../src/platform/errors.js';
import { INSTANCE_TYPE_LIMITS_TSV } from '../../../src/sim/aws/instance-types-data.js';
import { builtInInstanceTypes, parseInstanceTypeTable } from '../../../src/sim/aws/instance-types.js';
import { formatIpv4, ipv4NetContains, parseIpv4, parseIpv4Net } from '../../../src/platform/ipv4.js';
import { isAwsReservedInSubnet, usableAddressCount } from '../../../src/sim/aws/subnet-addresses.js';
import { loadWorld, parseWorld, zoneIdFor, type WorldDefinition } from '../../../src/sim/aws/world.js';
import { testWorld } from './helpers.js';

const types = builtInInstanceTypes();

function invalid(mutate: (w: WorldDefinition & Record<string, unknown>) => void): EgwError {
  const w = structuredClone(testWorld()) as WorldDefinition & Record<string, unknown>;
  mutate(w);
  try {
    parseWorld(w, 'worlds/bad.yaml', types);
  } catch (e) {
    expect(isEgwError(e, 'InvalidInput')).toBe(true);
    return e as EgwError;
  }
  throw new Error('expected the world to be rejected');
}

describe('world definition', () => {
  it('loads the example worlds', () => {
    const world = loadWorld('examples/aws-sim/world.yaml', types);
    expect(world.subnets.map((s) => s.cidr)).toEqual(['100.64.0.0/22', '100.64.4.0/22', '100.64.16.0/22', '100.64.20.0/22']);
    expect(world.instances.every((i) => i.type === 't3.large')).toBe(true);
    expect(world.sim).toMatchObject({ seed: 42, latency: { fixedMs: 40, jitterMs: 40 }, attachLatency: { fixedMs: 2000, jitterMs: 1500 }, throttle: { enabled: true, scale: 1 } });
    const minimal = loadWorld('examples/aws-sim/minimal.yaml', types);
    expect(minimal.instances[0]).toMatchObject({ id: 'i-0123456789abcdef0', securityGroups: ['sg-0123456789abcdef0'] });
    expect(minimal.sim.maxElasticIps).toBe(5);
  });

  it('applies defaults', () => {
    const w = parseWorld({ region: 'eu-central-1', vpcs: [{ id: 'vpc-01234567', cidr: '10.0.0.0/16' }], subnets: [{ id: 'subnet-01234567', vpcId: 'vpc-01234567', cidr: '10.0.1.0/24', availabilityZone: 'eu-central-1b' }] }, 'w', types);
    expect(w.accountId).toBe('123456789012');
    expect(w.instances).toEqual([]);
    expect(w.subnets[0]?.availabilityZoneId).toBe('euc1-az2');
    expect(w.sim).toMatchObject({ failureRate: 0, allowActions: undefined, throttle: { enabled: true }, imds: { tokens: 'required' } });
  });

  it.each([
    ['a missing region', (w: Record<string, unknown>) => delete w['region'], '(top level).region: is required'],
    ['an unknown field', (w: Record<string, unknown>) => (w['vpc'] = []), '(top level).vpc: is not a known field'],
    ['a bad VPC CIDR', (w: WorldDefinition) => (w.vpcs[0]!.cidr = '100.64.0.1/16'), 'vpcs[0].cidr'],
    ['a subnet outside its VPC', (w: WorldDefinition) => (w.subnets[1]!.cidr = '10.0.0.0/24'), 'subnets[1].cidr: 10.0.0.0/24 is not inside'],
    ['overlapping subnets', (w: WorldDefinition) => (w.subnets[1]!.cidr = '100.64.2.0/24'), 'subnets[1].cidr: 100.64.2.0/24 overlaps'],
    ['a subnet of an unknown VPC', (w: WorldDefinition) => (w.subnets[0]!.vpcId = 'vpc-0000000000000000f'), 'subnets[0].vpcId: names vpc-0000000000000000f'],
    ['a zone of another region', (w: WorldDefinition) => (w.subnets[0]!.availabilityZone = 'eu-west-1a'), 'subnets[0].availabilityZone'],
    ['an unknown instance type', (w: WorldDefinition) => (w.instances![0]!.type = 't9.huge'), 'instances[0].type: t9.huge is not in the instance-type table'],
    ['an instance address outside its subnet', (w: WorldDefinition) => (w.instances![0]!.privateIp = '100.64.0.10'), 'instances[0].privateIp: 100.64.0.10 is not inside'],
    ['an instance on a reserved address', (w: WorldDefinition) => (w.instances![0]!.privateIp = '100.64.16.1'), 'reserves'],
    ['two instances on one address', (w: WorldDefinition) => (w.instances![1]!.subnetId = w.instances![0]!.subnetId, w.instances![1]!.privateIp = '100.64.16.10'), 'instances[1].privateIp'],
    ['an unknown security group', (w: WorldDefinition) => (w.instances![0]!.securityGroups = ['sg-0000000000000000f']), 'instances[0].securityGroups[0]'],
    ['a duplicate ID', (w: WorldDefinition) => (w.elasticIps![1]!.allocationId = w.elasticIps![0]!.allocationId), 'elasticIps[1].allocationId: ID'],
    ['a malformed ID', (w: WorldDefinition) => (w.instances![0]!.id = 'node-1'), 'instances[0].id'],
    ['a failure rate above 1', (w: WorldDefinition) => (w.sim = { failureRate: 2 }), 'sim.failureRate'],
    ['an unknown injected failure', (w: WorldDefinition) => (w.sim = { failureKinds: ['Boom' as never] }), 'sim.failureKinds[0]'],
    ['a bad latency', (w: WorldDefinition) => (w.sim = { latencyMs: -1 }), 'sim.latencyMs'],
    ['a bucket without capacity', (w: WorldDefinition) => (w.sim = { throttle: { buckets: { CreateTags: { capacity: 0, refillPerSecond: 1 } } } }), 'sim.throttle.buckets.CreateTags.capacity'],
  ])('rejects %s, naming the file and the field', (_name, mutate, part) => {
    const err = invalid(mutate);
    expect(err.message).toContain('worlds/bad.yaml: ');
    expect(err.message).toContain(part);
    expect(err.hint).toBeTruthy();
  });

  it('names the file for unreadable or non-YAML files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'egw-aws-sim-world-'));
    try {
      const bad = join(dir, 'bad.yaml');
      await writeFile(bad, 'region: [unclosed');
      expect(() => loadWorld(bad, types)).toThrow(bad);
      expect(() => loadWorld(join(dir, 'missing.yaml'), types)).toThrow('cannot read world file');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('derives zone IDs', () => {
    expect(zoneIdFor('us-west-2', 'us-west-2a')).toBe('usw2-az1');
    expect(zoneIdFor('ap-southeast-1', 'ap-southeast-1c')).toBe('apse1-az3');
    expect(zoneIdFor('eu-central-1', 'eu-central-1a')).toBe('euc1-az1');
    expect(zoneIdFor('ap-south-1', 'ap-south-1b')).toBe('aps1-az2');
  });
});

describe('instance-type table', () => {
  it('is a verbatim copy of shared/data/aws-instance-eni-limits.tsv', () => {
    const shared = '../shared/data/aws-instance-eni-limits.tsv';
    if (!existsSync(shared)) return; // outside the workspace layout there is nothing to compare with
    expect(INSTANCE_TYPE_LIMITS_TSV).toBe(readFileSync(shared, 'utf8'));
  });

  it('answers the limits of the reference document and of a few types', () => {
    expect(types.get('t3.large')).toMatchObject({ maxEnis: 3, ipv4PerEni: 12, networkCards: 1 });
    expect(types.get('t3.micro')).toMatchObject({ maxEnis: 2, ipv4PerEni: 2 });
    expect(types.get('m5.large')).toMatchObject({ maxEnis: 3, ipv4PerEni: 10 });
    expect(types.get('p4d.24xlarge')).toMatchObject({ maxEnis: 15, ipv4PerEni: 50, networkCards: 4, maxEnisAllCards: 60 });
    expect(types.all().length).toBeGreaterThan(1000);
    expect(types.maxIpv4PerEni()).toBe(64);
  });

  it('rejects a malformed table with the line number', () => {
    expect(() => parseInstanceTypeTable('instance_type\tmax_enis\n', 'x.tsv')).toThrow('x.tsv: header lacks');
    const header = 'instance_type\tmax_enis\tipv4_per_eni\tnetwork_cards\tmax_enis_all_cards\thypervisor\tbare_metal';
    expect(() => parseInstanceTypeTable(`# c\n${header}\nt3.x\tthree\t1\t1\t1\tnitro\tfalse\n`, 'x.tsv')).toThrow('x.tsv:3');
  });
});

describe('IPv4 helpers', () => {
  it('parses, formats and reserves as AWS does', () => {
    expect(parseIpv4('100.64.3.255')).toBe(0x644003ff);
    expect(parseIpv4('1.2.3.04')).toBeUndefined();
    expect(parseIpv4('256.1.1.1')).toBeUndefined();
    expect(formatIpv4(0x644003ff)).toBe('100.64.3.255');
    expect(parseIpv4Net('100.64.0.1/22', { hostBits: 'refuse' })).toBeUndefined();
    const s = parseIpv4Net('100.64.0.0/22', { hostBits: 'refuse' })!;
    expect(ipv4NetContains(s, parseIpv4('100.64.3.255')!)).toBe(true);
    expect(['100.64.0.0', '100.64.0.1', '100.64.0.2', '100.64.0.3', '100.64.3.255'].every((ip) => isAwsReservedInSubnet(s, parseIpv4(ip)!))).toBe(true);
    expect(isAwsReservedInSubnet(s, parseIpv4('100.64.0.4')!)).toBe(false);
    expect(usableAddressCount(s)).toBe(1019);
  });
});
