import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { EgwError } from '../../platform/errors.js';
import { formatIpv4Net, ipv4NetContains, ipv4NetCovers, ipv4NetsOverlap, parseIpv4, parseIpv4Net } from '../../platform/ipv4.js';
import { isAwsReservedInSubnet } from './subnet-addresses.js';
import type { InstanceTypeTable } from './instance-types.js';

/** A VPC of the world. */
export interface WorldVpc {
  id: string;
  cidr: string;
}

/** A subnet: one CIDR of its VPC, in one availability zone. */
export interface WorldSubnet {
  id: string;
  vpcId: string;
  cidr: string;
  availabilityZone: string;
  /** Defaults to a zone ID derived from the zone name (`us-west-2a` → `usw2-az1`). */
  availabilityZoneId: string;
  tags: Record<string, string>;
}

/** A security group (rules are not modelled: the lab's fabric does not filter). */
export interface WorldSecurityGroup {
  id: string;
  vpcId: string;
  name: string;
}

/** A running instance; its primary ENI (device index 0) exists from the start. */
export interface WorldInstance {
  id: string;
  type: string;
  subnetId: string;
  privateIp: string;
  securityGroups: string[];
  tags: Record<string, string>;
  /** MAC of the primary ENI; derived from the instance ID when absent. */
  mac: string | undefined;
  /** ID of the primary ENI; derived from the instance ID when absent. */
  primaryEniId: string | undefined;
  /** The role name IMDS reports under iam/security-credentials/. */
  iamRole: string;
}

/** An Elastic IP already allocated to the account. */
export interface WorldElasticIp {
  allocationId: string;
  publicIp: string;
  tags: Record<string, string>;
}

/** A delay: `fixedMs` plus a uniformly random part in [0, `jitterMs`). */
export interface LatencySpec {
  fixedMs: number;
  jitterMs: number;
}

/** A token bucket: `capacity` tokens, refilled at `refillPerSecond`. */
export interface BucketSpec {
  capacity: number;
  refillPerSecond: number;
}

/** The server-side failures that injection can produce. */
export type InjectedFailure = 'InternalError' | 'Unavailable' | 'RequestLimitExceeded';

/** The emulator's realism knobs (the world file's `sim:` section), with defaults applied. */
export interface SimSettings {
  /** Seed of every random stream (IDs, jitter, failures); random when absent, then kept in the state file. */
  seed: number | undefined;
  /** Delay before each EC2 call is processed. */
  latency: LatencySpec;
  /** Per-action delay, replacing `latency` for the named actions. */
  actionLatency: Record<string, LatencySpec>;
  /** Time an ENI spends `attaching` before it is `in-use`. */
  attachLatency: LatencySpec;
  /** Time an ENI spends `detaching` before it is `available`. */
  detachLatency: LatencySpec;
  /**
   * Eventual consistency of Describe calls: each change becomes visible to Describe* this long after
   * the call that made it (0 = at once). Describe answers show the state as it was, never a mix.
   */
  describeLag: LatencySpec;
  /** How long a new ENI's ID is unknown (`…NotFound`) to calls other than a ClientToken retry (0 = never). */
  createPropagation: LatencySpec;
  /** How automatic private addresses are chosen: `random` (like EC2, seeded) or `lowest` free first. */
  addressPick: 'random' | 'lowest';
  /** Request-rate throttling with AWS's published buckets, scaled by `scale`, overridden per action by `buckets`. */
  throttle: { enabled: boolean; scale: number; buckets: Record<string, BucketSpec> };
  /** Probability in [0, 1] that a call fails with one of `failureKinds`. */
  failureRate: number;
  failureKinds: InjectedFailure[];
  /** Share in [0, 1] of injected 5xx failures that happen after the call took effect (a lost reply). */
  failureAfterCommit: number;
  /** When set, failures are injected only into these actions. */
  failureActions: string[] | undefined;
  /** IAM allow-list (`ec2:Action`, wildcards allowed); absent = every action allowed. */
  allowActions: string[] | undefined;
  imds: {
    /** `required`: IMDSv2 only (GETs without a token get 401); `optional`: IMDSv1 GETs are answered too. */
    tokens: 'required' | 'optional';
    /** Honour the `X-Egw-Sim-Instance-Id` header to name the calling instance (for tests on loopback). */
    trustInstanceHeader: boolean;
    /**
     * The PUT response hop limit (`HttpPutResponseHopLimit`, 1…64): a token request from farther away
     * (a container behind the instance) gets no answer.
     */
    hopLimit: number;
  };
  /** Where AllocateAddress takes new public addresses from. */
  elasticIpPool: string;
  /** Elastic IPs the account may hold (AWS's default quota is 5 per Region); at least the world's count. */
  maxElasticIps: number;
  /** A limits TSV to use instead of the built-in table. */
  instanceTypesFile: string | undefined;
  /** How long an API call waits for the fabric driver before answering anyway. */
  fabricTimeoutMs: number;
}

/** A validated world: the static topology of the emulated account plus the realism settings. */
export interface World {
  region: string;
  accountId: string;
  vpcs: WorldVpc[];
  subnets: WorldSubnet[];
  securityGroups: WorldSecurityGroup[];
  instances: WorldInstance[];
  elasticIps: WorldElasticIp[];
  sim: SimSettings;
}

/** A delay as written: milliseconds, or a fixed part plus jitter. */
export type LatencyDefinition = number | { fixed?: number; jitter?: number };

/** The `sim:` section as written (see {@link SimSettings} for the meaning of each knob). */
export interface SimDefinition {
  seed?: number;
  latencyMs?: LatencyDefinition;
  actionLatencyMs?: Record<string, LatencyDefinition>;
  attachLatencyMs?: LatencyDefinition;
  detachLatencyMs?: LatencyDefinition;
  describeLagMs?: LatencyDefinition;
  createPropagationMs?: LatencyDefinition;
  addressPick?: 'random' | 'lowest';
  throttle?: boolean | { enabled?: boolean; scale?: number; buckets?: Record<string, BucketSpec> };
  failureRate?: number;
  failureKinds?: InjectedFailure[];
  failureAfterCommit?: number;
  failureActions?: string[];
  allowActions?: string[];
  imds?: { tokens?: 'required' | 'optional'; trustInstanceHeader?: boolean; hopLimit?: number };
  elasticIpPool?: string;
  maxElasticIps?: number;
  instanceTypesFile?: string;
  fabricTimeoutMs?: number;
}

/** A world as written in YAML (or built in code by the lab): the input of {@link parseWorld}. */
export interface WorldDefinition {
  region: string;
  accountId?: string;
  vpcs: { id: string; cidr: string }[];
  subnets: { id: string; vpcId: string; cidr: string; availabilityZone: string; availabilityZoneId?: string; tags?: Record<string, string> }[];
  securityGroups?: { id: string; vpcId: string; name?: string }[];
  instances?: {
    id: string;
    type: string;
    subnetId: string;
    privateIp: string;
    securityGroups?: string[];
    tags?: Record<string, string>;
    mac?: string;
    primaryEniId?: string;
    iamRole?: string;
  }[];
  elasticIps?: { allocationId: string; publicIp: string; tags?: Record<string, string> }[];
  sim?: SimDefinition;
}

/**
 * The defaults of every realism knob: as unforgiving as AWS where AWS's behaviour is known (throttling
 * buckets, Describe lag and new IDs of a few seconds, random addresses, IMDS hop limit 1), no call delay,
 * no failures, everything allowed.
 */
export function defaultSimSettings(): SimSettings {
  return {
    seed: undefined,
    latency: { fixedMs: 0, jitterMs: 0 },
    actionLatency: {},
    attachLatency: { fixedMs: 0, jitterMs: 0 },
    detachLatency: { fixedMs: 0, jitterMs: 0 },
    describeLag: { fixedMs: 1000, jitterMs: 2000 },
    createPropagation: { fixedMs: 1000, jitterMs: 2000 },
    addressPick: 'random',
    throttle: { enabled: true, scale: 1, buckets: {} },
    failureRate: 0,
    failureKinds: ['InternalError', 'Unavailable', 'RequestLimitExceeded'],
    failureAfterCommit: 0,
    failureActions: undefined,
    allowActions: undefined,
    imds: { tokens: 'required', trustInstanceHeader: true, hopLimit: 1 },
    elasticIpPool: '198.51.100.0/24',
    maxElasticIps: 5,
    instanceTypesFile: undefined,
    fabricTimeoutMs: 10_000,
  };
}

/** Reads and validates a world YAML file. Throws `InvalidInput` naming the file and the field. */
export function loadWorld(path: string, types: InstanceTypeTable): World {
  return parseWorld(readWorldDefinition(path), path, types);
}

/** Reads a world YAML file without validating it. Throws `InvalidInput` when unreadable or not YAML. */
export function readWorldDefinition(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new EgwError('InvalidInput', `cannot read world file ${path}: ${(e as Error).message}`, {
      hint: 'pass an existing YAML file to --world',
      cause: e,
    });
  }
  try {
    return parseYaml(text) as unknown;
  } catch (e) {
    throw new EgwError('InvalidInput', `${path}: not valid YAML: ${(e as Error).message}`, {
      hint: 'fix the YAML syntax at the position given',
      cause: e,
    });
  }
}

/**
 * Validates a world given as data (a parsed {@link WorldDefinition}); `source` names it in error
 * messages (a file path, or "world"). Throws `InvalidInput` naming the field and what to do.
 */
export function parseWorld(input: unknown, source: string, types: InstanceTypeTable): World {
  return new WorldReader(source, types).read(input);
}

const ID_RE = (prefix: string): RegExp => new RegExp(`^${prefix}-[0-9a-f]{8,}$`);
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d+$/;

type Obj = Record<string, unknown>;

class WorldReader {
  constructor(
    private readonly source: string,
    private readonly types: InstanceTypeTable,
  ) {}

  private fail(path: string, message: string, hint: string): never {
    throw new EgwError('InvalidInput', `${this.source}: ${path}: ${message}`, { hint });
  }

  private object(value: unknown, path: string, allowed: readonly string[]): Obj {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, `must be a mapping, got ${describe(value)}`, 'see examples/aws-sim/world.yaml for the shape');
    }
    const obj = value as Obj;
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        this.fail(`${path === '' ? '' : `${path}.`}${key}`, 'is not a known field', `allowed here: ${allowed.join(', ')}`);
      }
    }
    return obj;
  }

  private array(value: unknown, path: string, optional = false): unknown[] {
    if (value === undefined && optional) return [];
    if (!Array.isArray(value)) this.fail(path, `must be a list, got ${describe(value)}`, 'write it as a YAML list');
    return value;
  }

  private str(obj: Obj, key: string, path: string, re?: RegExp, example?: string): string {
    const value = obj[key];
    if (typeof value !== 'string' || value === '') {
      this.fail(`${path}.${key}`, value === undefined ? 'is required' : `must be a string, got ${describe(value)}`, example === undefined ? 'give a value' : `for example ${example}`);
    }
    if (re !== undefined && !re.test(value)) {
      this.fail(`${path}.${key}`, `"${value}" is not valid`, example === undefined ? `it must match ${re.source}` : `write it like ${example}`);
    }
    return value;
  }

  private optStr(obj: Obj, key: string, path: string, re?: RegExp, example?: string): string | undefined {
    return obj[key] === undefined ? undefined : this.str(obj, key, path, re, example);
  }

  private tags(obj: Obj, path: string): Record<string, string> {
    const value = obj['tags'];
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(`${path}.tags`, `must be a mapping of tag keys to values, got ${describe(value)}`, 'write tags as {Key: value}');
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value as Obj)) {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        this.fail(`${path}.tags.${k}`, 'must be a scalar', 'tag values are strings');
      }
      out[k] = String(v);
    }
    return out;
  }

  read(input: unknown): World {
    const root = this.object(input, '(top level)', ['region', 'accountId', 'vpcs', 'subnets', 'securityGroups', 'instances', 'elasticIps', 'sim']);
    const region = this.str(root, 'region', '(top level)', REGION_RE, 'us-west-2');
    const accountId = this.optStr(root, 'accountId', '(top level)', /^\d{12}$/, '123456789012') ?? '123456789012';

    const seen = new Map<string, string>();
    const unique = (id: string, path: string): void => {
      const prior = seen.get(id);
      if (prior !== undefined) this.fail(path, `ID ${id} is already used at ${prior}`, 'give every object its own ID');
      seen.set(id, path);
    };

    const vpcs = this.array(root['vpcs'], 'vpcs').map((v, i): WorldVpc => {
      const p = `vpcs[${i}]`;
      const o = this.object(v, p, ['id', 'cidr']);
      const id = this.str(o, 'id', p, ID_RE('vpc'), 'vpc-0e1a2b3c4d5e6f708');
      unique(id, `${p}.id`);
      const cidr = this.str(o, 'cidr', p, undefined, '100.64.0.0/16');
      if (parseIpv4Net(cidr, { hostBits: 'refuse' }) === undefined) this.fail(`${p}.cidr`, `"${cidr}" is not an IPv4 CIDR with no host bits`, 'write it like 100.64.0.0/16');
      return { id, cidr };
    });
    const vpcById = new Map(vpcs.map((v) => [v.id, v]));

    const subnets = this.array(root['subnets'], 'subnets').map((s, i): WorldSubnet => {
      const p = `subnets[${i}]`;
      const o = this.object(s, p, ['id', 'vpcId', 'cidr', 'availabilityZone', 'availabilityZoneId', 'tags']);
      const id = this.str(o, 'id', p, ID_RE('subnet'), 'subnet-0a1b2c3d4e5f60718');
      unique(id, `${p}.id`);
      const vpcId = this.str(o, 'vpcId', p);
      const vpc = vpcById.get(vpcId);
      if (vpc === undefined) this.fail(`${p}.vpcId`, `names ${vpcId}, which is not in vpcs`, 'add the VPC or fix the ID');
      const cidrText = this.str(o, 'cidr', p, undefined, '100.64.0.0/22');
      const cidr = parseIpv4Net(cidrText, { hostBits: 'refuse' });
      if (cidr === undefined) this.fail(`${p}.cidr`, `"${cidrText}" is not an IPv4 CIDR with no host bits`, 'write it like 100.64.0.0/22');
      if (cidr.prefix < 16 || cidr.prefix > 28) this.fail(`${p}.cidr`, `${cidrText}: a subnet must be between /16 and /28`, 'AWS allows subnet sizes /16 to /28');
      const vpcCidr = parseIpv4Net(vpc.cidr, { hostBits: 'refuse' });
      if (vpcCidr === undefined || !ipv4NetCovers(vpcCidr, cidr)) this.fail(`${p}.cidr`, `${cidrText} is not inside ${vpc.id} (${vpc.cidr})`, 'a subnet takes its addresses from its VPC');
      const az = this.str(o, 'availabilityZone', p, undefined, `${region}a`);
      if (!az.startsWith(region)) this.fail(`${p}.availabilityZone`, `${az} is not a zone of ${region}`, `zones of ${region} are named ${region}a, ${region}b, …`);
      const azId = this.optStr(o, 'availabilityZoneId', p) ?? zoneIdFor(region, az);
      return { id, vpcId, cidr: formatIpv4Net(cidr), availabilityZone: az, availabilityZoneId: azId, tags: this.tags(o, p) };
    });
    for (let a = 0; a < subnets.length; a++) {
      for (let b = a + 1; b < subnets.length; b++) {
        const sa = subnets[a], sb = subnets[b];
        if (sa === undefined || sb === undefined || sa.vpcId !== sb.vpcId) continue;
        const ca = parseIpv4Net(sa.cidr, { hostBits: 'refuse' }), cb = parseIpv4Net(sb.cidr, { hostBits: 'refuse' });
        if (ca !== undefined && cb !== undefined && ipv4NetsOverlap(ca, cb)) {
          this.fail(`subnets[${b}].cidr`, `${sb.cidr} overlaps ${sa.id} (${sa.cidr})`, 'subnets of one VPC must not overlap');
        }
      }
    }
    const subnetById = new Map(subnets.map((s) => [s.id, s]));

    const securityGroups = this.array(root['securityGroups'], 'securityGroups', true).map((g, i): WorldSecurityGroup => {
      const p = `securityGroups[${i}]`;
      const o = this.object(g, p, ['id', 'vpcId', 'name']);
      const id = this.str(o, 'id', p, ID_RE('sg'), 'sg-0123456789abcdef0');
      unique(id, `${p}.id`);
      const vpcId = this.str(o, 'vpcId', p);
      if (!vpcById.has(vpcId)) this.fail(`${p}.vpcId`, `names ${vpcId}, which is not in vpcs`, 'add the VPC or fix the ID');
      return { id, vpcId, name: this.optStr(o, 'name', p) ?? id };
    });
    const sgById = new Map(securityGroups.map((g) => [g.id, g]));

    const usedIps = new Map<string, string>();
    const instances = this.array(root['instances'], 'instances', true).map((n, i): WorldInstance => {
      const p = `instances[${i}]`;
      const o = this.object(n, p, ['id', 'type', 'subnetId', 'privateIp', 'securityGroups', 'tags', 'mac', 'primaryEniId', 'iamRole']);
      const id = this.str(o, 'id', p, ID_RE('i'), 'i-0123456789abcdef0');
      unique(id, `${p}.id`);
      const type = this.str(o, 'type', p, undefined, 't3.large');
      if (this.types.get(type) === undefined) this.fail(`${p}.type`, `${type} is not in the instance-type table`, 'use an instance type of aws-instance-eni-limits.tsv, e.g. t3.large');
      const subnetId = this.str(o, 'subnetId', p);
      const subnet = subnetById.get(subnetId);
      if (subnet === undefined) this.fail(`${p}.subnetId`, `names ${subnetId}, which is not in subnets`, 'add the subnet or fix the ID');
      const privateIp = this.str(o, 'privateIp', p, undefined, '100.64.16.10');
      const ip = parseIpv4(privateIp);
      const cidr = parseIpv4Net(subnet.cidr, { hostBits: 'refuse' });
      if (ip === undefined) this.fail(`${p}.privateIp`, `"${privateIp}" is not an IPv4 address`, 'write it like 100.64.16.10');
      if (cidr === undefined || !ipv4NetContains(cidr, ip)) this.fail(`${p}.privateIp`, `${privateIp} is not inside ${subnet.id} (${subnet.cidr})`, 'pick an address of the instance subnet');
      if (isAwsReservedInSubnet(cidr, ip)) this.fail(`${p}.privateIp`, `${privateIp} is one of the five addresses AWS reserves in ${subnet.cidr}`, 'skip the first four and the last address of the subnet');
      const prior = usedIps.get(privateIp);
      if (prior !== undefined) this.fail(`${p}.privateIp`, `${privateIp} is already the address of ${prior}`, 'give each instance its own address');
      usedIps.set(privateIp, id);
      const groups = this.array(o['securityGroups'], `${p}.securityGroups`, true).map((g, j) => {
        if (typeof g !== 'string') this.fail(`${p}.securityGroups[${j}]`, `must be a security group ID, got ${describe(g)}`, 'list sg-… IDs');
        const sg = sgById.get(g);
        if (sg === undefined) this.fail(`${p}.securityGroups[${j}]`, `names ${g}, which is not in securityGroups`, 'add the group or fix the ID');
        if (sg.vpcId !== subnet.vpcId) this.fail(`${p}.securityGroups[${j}]`, `${g} belongs to ${sg.vpcId}, the instance to ${subnet.vpcId}`, 'use a group of the instance VPC');
        return g;
      });
      const mac = this.optStr(o, 'mac', p, MAC_RE, '02:1a:2b:3c:4d:5e');
      const primaryEniId = this.optStr(o, 'primaryEniId', p, ID_RE('eni'), 'eni-0123456789abcdef0');
      if (primaryEniId !== undefined) unique(primaryEniId, `${p}.primaryEniId`);
      return { id, type, subnetId, privateIp, securityGroups: groups, tags: this.tags(o, p), mac, primaryEniId, iamRole: this.optStr(o, 'iamRole', p) ?? 'egw-node' };
    });

    const publicIps = new Map<string, string>();
    const elasticIps = this.array(root['elasticIps'], 'elasticIps', true).map((e, i): WorldElasticIp => {
      const p = `elasticIps[${i}]`;
      const o = this.object(e, p, ['allocationId', 'publicIp', 'tags']);
      const allocationId = this.str(o, 'allocationId', p, ID_RE('eipalloc'), 'eipalloc-0123456789abcdef0');
      unique(allocationId, `${p}.allocationId`);
      const publicIp = this.str(o, 'publicIp', p, undefined, '203.0.113.7');
      if (parseIpv4(publicIp) === undefined) this.fail(`${p}.publicIp`, `"${publicIp}" is not an IPv4 address`, 'write it like 203.0.113.7');
      const prior = publicIps.get(publicIp);
      if (prior !== undefined) this.fail(`${p}.publicIp`, `${publicIp} is already the address of ${prior}`, 'give each Elastic IP its own address');
      publicIps.set(publicIp, allocationId);
      return { allocationId, publicIp, tags: this.tags(o, p) };
    });

    const sim = this.sim(root['sim'], elasticIps.length);
    return { region, accountId, vpcs, subnets, securityGroups, instances, elasticIps, sim };
  }

  private latency(value: unknown, path: string): LatencySpec {
    if (typeof value === 'number') return { fixedMs: this.nonNegative(value, path), jitterMs: 0 };
    const o = this.object(value, path, ['fixed', 'jitter']);
    return {
      fixedMs: o['fixed'] === undefined ? 0 : this.nonNegative(o['fixed'], `${path}.fixed`),
      jitterMs: o['jitter'] === undefined ? 0 : this.nonNegative(o['jitter'], `${path}.jitter`),
    };
  }

  private nonNegative(value: unknown, path: string): number {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      this.fail(path, `must be a number ≥ 0, got ${describe(value)}`, 'milliseconds, e.g. 50');
    }
    return value;
  }

  private fraction(value: unknown, path: string): number {
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) this.fail(path, `must be a number between 0 and 1, got ${describe(value)}`, 'e.g. 0.2 for 20%');
    return value;
  }

  private strings(value: unknown, path: string): string[] {
    return this.array(value, path).map((v, i) => {
      if (typeof v !== 'string') this.fail(`${path}[${i}]`, `must be a string, got ${describe(v)}`, 'list names');
      return v;
    });
  }

  private sim(value: unknown, worldEips: number): SimSettings {
    const s = defaultSimSettings();
    s.maxElasticIps = Math.max(s.maxElasticIps, worldEips);
    if (value === undefined) return s;
    const p = 'sim';
    const o = this.object(value, p, [
      'seed', 'latencyMs', 'actionLatencyMs', 'attachLatencyMs', 'detachLatencyMs', 'describeLagMs', 'createPropagationMs',
      'addressPick', 'throttle', 'failureRate',
      'failureKinds', 'failureAfterCommit', 'failureActions', 'allowActions', 'imds', 'elasticIpPool', 'maxElasticIps',
      'instanceTypesFile', 'fabricTimeoutMs',
    ]);
    if (o['seed'] !== undefined) {
      if (typeof o['seed'] !== 'number' || !Number.isInteger(o['seed'])) this.fail(`${p}.seed`, `must be an integer, got ${describe(o['seed'])}`, 'e.g. 42');
      s.seed = o['seed'] >>> 0;
    }
    if (o['latencyMs'] !== undefined) s.latency = this.latency(o['latencyMs'], `${p}.latencyMs`);
    if (o['attachLatencyMs'] !== undefined) s.attachLatency = this.latency(o['attachLatencyMs'], `${p}.attachLatencyMs`);
    if (o['detachLatencyMs'] !== undefined) s.detachLatency = this.latency(o['detachLatencyMs'], `${p}.detachLatencyMs`);
    if (o['describeLagMs'] !== undefined) s.describeLag = this.latency(o['describeLagMs'], `${p}.describeLagMs`);
    if (o['createPropagationMs'] !== undefined) s.createPropagation = this.latency(o['createPropagationMs'], `${p}.createPropagationMs`);
    if (o['addressPick'] !== undefined) {
      if (o['addressPick'] !== 'random' && o['addressPick'] !== 'lowest') {
        this.fail(`${p}.addressPick`, `must be random or lowest, got ${describe(o['addressPick'])}`, 'random is what EC2 does; lowest for hand-checked examples');
      }
      s.addressPick = o['addressPick'];
    }
    if (o['actionLatencyMs'] !== undefined) {
      const per = this.object(o['actionLatencyMs'], `${p}.actionLatencyMs`, Object.keys(o['actionLatencyMs'] as Obj));
      for (const [action, spec] of Object.entries(per)) s.actionLatency[action] = this.latency(spec, `${p}.actionLatencyMs.${action}`);
    }
    const throttle = o['throttle'];
    if (typeof throttle === 'boolean') {
      s.throttle.enabled = throttle;
    } else if (throttle !== undefined) {
      const t = this.object(throttle, `${p}.throttle`, ['enabled', 'scale', 'buckets']);
      if (t['enabled'] !== undefined) {
        if (typeof t['enabled'] !== 'boolean') this.fail(`${p}.throttle.enabled`, 'must be true or false', 'e.g. true');
        s.throttle.enabled = t['enabled'];
      }
      if (t['scale'] !== undefined) {
        const scale = this.nonNegative(t['scale'], `${p}.throttle.scale`);
        if (scale === 0) this.fail(`${p}.throttle.scale`, 'must be > 0', 'use throttle: false to turn throttling off');
        s.throttle.scale = scale;
      }
      if (t['buckets'] !== undefined) {
        const b = this.object(t['buckets'], `${p}.throttle.buckets`, Object.keys(t['buckets'] as Obj));
        for (const [action, spec] of Object.entries(b)) {
          const bp = `${p}.throttle.buckets.${action}`;
          const bo = this.object(spec, bp, ['capacity', 'refillPerSecond']);
          const capacity = this.nonNegative(bo['capacity'], `${bp}.capacity`);
          const refill = this.nonNegative(bo['refillPerSecond'], `${bp}.refillPerSecond`);
          if (capacity < 1) this.fail(`${bp}.capacity`, 'must be ≥ 1', 'a bucket holds at least one token');
          s.throttle.buckets[action] = { capacity, refillPerSecond: refill };
        }
      }
    }
    if (o['failureRate'] !== undefined) s.failureRate = this.fraction(o['failureRate'], `${p}.failureRate`);
    if (o['failureAfterCommit'] !== undefined) s.failureAfterCommit = this.fraction(o['failureAfterCommit'], `${p}.failureAfterCommit`);
    if (o['failureKinds'] !== undefined) {
      const kinds = this.strings(o['failureKinds'], `${p}.failureKinds`);
      const allowed: InjectedFailure[] = ['InternalError', 'Unavailable', 'RequestLimitExceeded'];
      kinds.forEach((k, i) => {
        if (!(allowed as string[]).includes(k)) this.fail(`${p}.failureKinds[${i}]`, `${k} is not an injectable failure`, `use ${allowed.join(', ')}`);
      });
      if (kinds.length === 0) this.fail(`${p}.failureKinds`, 'must not be empty', `use ${allowed.join(', ')}`);
      s.failureKinds = kinds as InjectedFailure[];
    }
    if (o['failureActions'] !== undefined) s.failureActions = this.strings(o['failureActions'], `${p}.failureActions`);
    if (o['allowActions'] !== undefined) s.allowActions = this.strings(o['allowActions'], `${p}.allowActions`);
    if (o['imds'] !== undefined) {
      const im = this.object(o['imds'], `${p}.imds`, ['tokens', 'trustInstanceHeader', 'hopLimit']);
      if (im['hopLimit'] !== undefined) {
        const h = im['hopLimit'];
        if (typeof h !== 'number' || !Number.isInteger(h) || h < 1 || h > 64) this.fail(`${p}.imds.hopLimit`, `must be a whole number 1…64, got ${describe(h)}`, '1 (AWS default): only the instance itself; 2: containers too');
        s.imds.hopLimit = h;
      }
      if (im['tokens'] !== undefined) {
        if (im['tokens'] !== 'required' && im['tokens'] !== 'optional') this.fail(`${p}.imds.tokens`, `must be required or optional, got ${describe(im['tokens'])}`, 'required = IMDSv2 only');
        s.imds.tokens = im['tokens'];
      }
      if (im['trustInstanceHeader'] !== undefined) {
        if (typeof im['trustInstanceHeader'] !== 'boolean') this.fail(`${p}.imds.trustInstanceHeader`, 'must be true or false', 'false in a lab where nodes must not impersonate each other');
        s.imds.trustInstanceHeader = im['trustInstanceHeader'];
      }
    }
    if (o['elasticIpPool'] !== undefined) {
      const pool = this.str(o, 'elasticIpPool', p, undefined, '198.51.100.0/24');
      if (parseIpv4Net(pool, { hostBits: 'refuse' }) === undefined) this.fail(`${p}.elasticIpPool`, `"${pool}" is not an IPv4 CIDR with no host bits`, 'e.g. 198.51.100.0/24');
      s.elasticIpPool = pool;
    }
    if (o['maxElasticIps'] !== undefined) {
      const max = this.nonNegative(o['maxElasticIps'], `${p}.maxElasticIps`);
      if (!Number.isInteger(max) || max < worldEips) this.fail(`${p}.maxElasticIps`, `must be a whole number ≥ the ${worldEips} Elastic IPs of the world`, 'raise it or remove elasticIps');
      s.maxElasticIps = max;
    }
    s.instanceTypesFile = this.optStr(o, 'instanceTypesFile', p);
    if (o['fabricTimeoutMs'] !== undefined) s.fabricTimeoutMs = this.nonNegative(o['fabricTimeoutMs'], `${p}.fabricTimeoutMs`);
    return s;
  }
}

/**
 * A zone ID for a zone name: `us-west-2a` → `usw2-az1`. AWS maps names to IDs per account; the
 * emulator only needs IDs that are stable and distinct per zone.
 */
export function zoneIdFor(region: string, zone: string): string {
  const parts = region.split('-');
  // Direction words abbreviate by their compass letters: southeast → se, central → c.
  const abbreviate = (w: string): string => w.replace(/north|south|east|west|central/g, (d) => d[0] ?? '');
  const short = `${parts[0] ?? ''}${parts.slice(1, -1).map(abbreviate).join('')}${parts[parts.length - 1] ?? ''}`;
  const letter = zone.slice(region.length);
  const index = letter.length === 1 ? letter.charCodeAt(0) - 96 : 0;
  return index >= 1 && index <= 26 ? `${short}-az${index}` : `${short}-${letter.replace(/^-/, '')}`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}
