/**
 * The lab's scenario: what world `egw lab up` builds — zones, the VPC and its subnets, the nodes (EC2
 * instances with their types and zones), the control plane's instance, the external servers, the Elastic
 * IPs, the emulator's realism knobs, FelixConfiguration, and the manifests to apply. Parsing and
 * validation are pure (text in, value or `InvalidInput` out); {@link loadScenario} reads the files.
 * docs/lab.md, "Scenarios", documents every field.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { EgwError } from '../platform/errors.js';
import { formatIpv4, formatIpv4Net, ipv4Net, ipv4NetContains, ipv4NetCovers, parseIpv4, parseIpv4Net, requireIpv4, type Ipv4Net } from '../platform/ipv4.js';
import { ALLOWED_RANGES } from '../linux/topology/spec.js';

/** Where an external server lives. */
export type ServerNetwork = 'internet' | 'onprem' | 'vpc';

/** A VPC subnet. */
export interface ScenarioSubnet {
  id: string;
  /** Short name (the `Name` tag), used to refer to the subnet in the scenario. */
  name: string;
  cidr: string;
  zone: string;
}

/** A Kubernetes node: an EC2 instance with a namespace, `egw agent` and `egw lab kubelet`. */
export interface ScenarioNode {
  /** The Node name (also its namespace's short name). */
  name: string;
  zone: string;
  /** The node subnet its primary ENI sits in (name or ID). */
  subnet: string;
  instanceType: string;
  /** The primary private IP. */
  ip: string;
  /** The EC2 instance ID (default: derived from the name). */
  instanceId: string;
  /** Extra Node labels. */
  labels: Record<string, string>;
}

/** An echo server outside the cluster ("who called"), listening on 8089. */
export interface ScenarioServer {
  name: string;
  network: ServerNetwork;
  ip: string;
  /** For `vpc` servers: the subnet of the instance that runs it. */
  subnet?: string;
  /** For `vpc` servers: the EC2 instance ID (default: derived). */
  instanceId?: string;
}

/** An Elastic IP of the account. */
export interface ScenarioElasticIp {
  allocationId: string;
  publicIp: string;
}

/** The validated scenario. */
export interface Scenario {
  name: string;
  description: string;
  /** The file it came from, or `built-in`. */
  source: string;
  region: string;
  zones: string[];
  vpc: { id: string; cidr: string };
  subnets: ScenarioSubnet[];
  nodes: ScenarioNode[];
  /** The control plane's instance (datastore relay, `egw controller`, `egw lab scheduler`). */
  controlPlane: { subnet: string; ip: string; instanceType: string; instanceId: string };
  /** The address the EC2 API answers on, inside the VPC (on the VPC router). */
  ec2Endpoint: string;
  servers: ScenarioServer[];
  /** The on-premises network, behind the private link (no NAT). */
  onprem: { cidr: string };
  /** The internet side of the internet gateway. */
  internet: { cidr: string };
  elasticIps: ScenarioElasticIp[];
  /** FelixConfiguration `default` spec, merged over the lab's defaults. */
  felix: Record<string, unknown>;
  /** aws-sim `sim:` knobs (docs/aws-sim.md), merged over the lab's defaults. */
  sim: Record<string, unknown>;
  /** Absolute paths of manifest files (directories expanded), in apply order. */
  manifests: string[];
  /** How long `up` waits for gateways and clients (seconds). */
  waitSeconds: number;
}

const TOP_FIELDS = new Set(['name', 'description', 'region', 'zones', 'vpc', 'subnets', 'nodes', 'controlPlane', 'ec2Endpoint', 'servers', 'onprem', 'internet', 'elasticIps', 'felix', 'sim', 'manifests', 'wait']);

/** The lab's FelixConfiguration defaults (a scenario's `felix:` is merged over them). */
export const LAB_FELIX_DEFAULTS: Readonly<Record<string, unknown>> = {
  egressIPSupport: 'EnabledPerNamespaceOrPerPod',
  awsSecondaryIPSupport: 'EnabledENIPerWorkload',
  egressGatewayPollInterval: '1s',
  egressGatewayPollFailureCount: 3,
};

/**
 * The lab's emulator defaults: latencies of AWS's order but shorter (an attachment in a few hundred
 * milliseconds rather than seconds), AWS's throttling buckets, IMDS that trusts only source addresses.
 */
export const LAB_SIM_DEFAULTS: Readonly<Record<string, unknown>> = {
  latencyMs: { fixed: 10, jitter: 10 },
  attachLatencyMs: { fixed: 300, jitter: 200 },
  detachLatencyMs: { fixed: 200, jitter: 100 },
  throttle: true,
  imds: { tokens: 'required', trustInstanceHeader: false },
};

function fail(source: string, path: string, message: string): never {
  throw new EgwError('InvalidInput', `${source}: ${path === '' ? '' : `${path}: `}${message}`, { hint: 'fix the scenario (docs/lab.md, "Scenarios")' });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Reader {
  constructor(readonly source: string) {}

  obj(v: unknown, path: string, fields: readonly string[]): Record<string, unknown> {
    if (!isRecord(v)) fail(this.source, path, 'must be a mapping');
    for (const k of Object.keys(v)) if (!fields.includes(k)) fail(this.source, path === '' ? k : `${path}.${k}`, `unknown field (known: ${fields.join(', ')})`);
    return v;
  }

  str(v: unknown, path: string, pattern?: RegExp, what?: string): string {
    if (typeof v !== 'string' || v === '') fail(this.source, path, 'must be a non-empty string');
    if (pattern !== undefined && !pattern.test(v)) fail(this.source, path, `"${v}" is not ${what ?? `of the form ${String(pattern)}`}`);
    return v;
  }

  optStr(v: unknown, path: string, pattern?: RegExp, what?: string): string | undefined {
    return v === undefined ? undefined : this.str(v, path, pattern, what);
  }

  /** A mapping with free keys (labels, knobs). */
  map(v: unknown, path: string): Record<string, unknown> {
    if (!isRecord(v)) fail(this.source, path, 'must be a mapping');
    return v;
  }

  list(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) fail(this.source, path, 'must be a list');
    return v;
  }

  ip(v: unknown, path: string): string {
    const s = this.str(v, path);
    const n = parseIpv4(s);
    if (n === undefined) fail(this.source, path, `"${s}" is not an IPv4 address`);
    return formatIpv4(n);
  }

  cidr(v: unknown, path: string): { text: string; prefix: Ipv4Net } {
    const s = this.str(v, path);
    const p = parseIpv4Net(s, { hostBits: 'clear' });
    if (p === undefined) fail(this.source, path, `"${s}" is not an IPv4 CIDR (a.b.c.d/len)`);
    const canonical = formatIpv4Net(p);
    if (canonical !== s) fail(this.source, path, `${s} has host bits set (did you mean ${canonical}?)`);
    return { text: s, prefix: p };
  }
}

const ZONE = /^[a-z]{2}(-[a-z]+)+-\d[a-z]$/;
const NAME = /^[a-z][a-z0-9-]{0,30}$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8,}$/;
const INSTANCE_ID = /^i-[0-9a-f]{8,}$/;
const ALLOC_ID = /^eipalloc-[0-9a-f]{8,}$/;
const VPC_ID = /^vpc-[0-9a-f]{8,}$/;

/** A stable EC2 instance ID for a lab host name (`i-0` + 16 hex digits). */
export function labInstanceId(name: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const ch of name) {
    const c = ch.charCodeAt(0);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x811c9dc5) >>> 0;
  }
  return `i-0${h1.toString(16).padStart(8, '0')}${h2.toString(16).padStart(8, '0')}`;
}

function inAllowed(p: Ipv4Net): boolean {
  return ALLOWED_RANGES.some((r) => ipv4NetCovers(r, p));
}

/**
 * Validates a parsed scenario document (pure). `baseDir` resolves relative manifest paths; `listDir`
 * expands directories (injected so that validation stays pure in tests). Throws `InvalidInput` naming
 * the file and the field for the first problem.
 */
export function parseScenario(input: unknown, source: string, baseDir: string, files: ScenarioFiles = nodeFiles): Scenario {
  const r = new Reader(source);
  const top = r.obj(input, '', [...TOP_FIELDS]);
  const name = r.str(top['name'], 'name', NAME, 'a name of [a-z0-9-] starting with a letter');
  const description = r.optStr(top['description'], 'description') ?? '';
  const region = r.str(top['region'], 'region', /^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region such as us-west-2');
  const zones = r.list(top['zones'], 'zones').map((z, i) => {
    const s = r.str(z, `zones[${i}]`, ZONE, 'an availability zone such as us-west-2a');
    if (!s.startsWith(region)) fail(source, `zones[${i}]`, `${s} is not a zone of ${region}`);
    return s;
  });
  if (zones.length === 0) fail(source, 'zones', 'needs at least one zone');
  if (new Set(zones).size !== zones.length) fail(source, 'zones', 'lists a zone twice');

  const vpcIn = r.obj(top['vpc'], 'vpc', ['id', 'cidr']);
  const vpcCidr = r.cidr(vpcIn['cidr'], 'vpc.cidr');
  if (!inAllowed(vpcCidr.prefix)) fail(source, 'vpc.cidr', `${vpcCidr.text} is outside the lab's address ranges (10/8, 100.64/10, 198.18/15, the documentation /24s)`);
  const vpc = { id: r.str(vpcIn['id'], 'vpc.id', VPC_ID, 'a VPC ID (vpc- and at least 8 hex digits)'), cidr: vpcCidr.text };

  const subnets: ScenarioSubnet[] = [];
  const subnetPrefixes: Ipv4Net[] = [];
  r.list(top['subnets'], 'subnets').forEach((s, i) => {
    const p = `subnets[${i}]`;
    const o = r.obj(s, p, ['id', 'name', 'cidr', 'zone']);
    const c = r.cidr(o['cidr'], `${p}.cidr`);
    if (!ipv4NetCovers(vpcCidr.prefix, c.prefix)) fail(source, `${p}.cidr`, `${c.text} is not inside the VPC ${vpc.cidr}`);
    if (c.prefix.prefix < 16 || c.prefix.prefix > 28) fail(source, `${p}.cidr`, 'AWS subnets are /16 to /28');
    const overlap = subnetPrefixes.findIndex((q) => ipv4NetCovers(q, c.prefix) || ipv4NetCovers(c.prefix, q));
    if (overlap >= 0) fail(source, `${p}.cidr`, `${c.text} overlaps subnets[${overlap}]`);
    subnetPrefixes.push(c.prefix);
    const zone = r.str(o['zone'], `${p}.zone`);
    if (!zones.includes(zone)) fail(source, `${p}.zone`, `${zone} is not one of zones (${zones.join(', ')})`);
    const sub: ScenarioSubnet = { id: r.str(o['id'], `${p}.id`, SUBNET_ID, 'a subnet ID (subnet- and at least 8 hex digits)'), name: r.str(o['name'], `${p}.name`, NAME, 'a name of [a-z0-9-]'), cidr: c.text, zone };
    if (subnets.some((x) => x.id === sub.id || x.name === sub.name)) fail(source, p, `subnet ${sub.name} (${sub.id}) is declared twice`);
    subnets.push(sub);
  });
  const subnetOf = (ref: string, path: string): ScenarioSubnet => {
    const s = subnets.find((x) => x.name === ref || x.id === ref);
    if (s === undefined) fail(source, path, `no subnet named ${ref}`);
    return s;
  };
  const taken = new Map<string, string>();
  const hostIp = (subnet: ScenarioSubnet, ip: string, path: string, owner: string): void => {
    const pfx = parseIpv4Net(subnet.cidr, { hostBits: 'clear' })!;
    const n = requireIpv4(ip);
    if (!ipv4NetContains(pfx, n)) fail(source, path, `${ip} is not inside subnet ${subnet.name} (${subnet.cidr})`);
    const offset = n - pfx.first;
    if (offset < 4 || offset === pfx.size - 1) fail(source, path, `${ip} is one of the five addresses AWS reserves in ${subnet.cidr}`);
    const other = taken.get(ip);
    if (other !== undefined) fail(source, path, `${ip} is already used by ${other}`);
    taken.set(ip, owner);
  };

  const nextIp = new Map<string, number>();
  const autoIp = (subnet: ScenarioSubnet): string => {
    const pfx = parseIpv4Net(subnet.cidr, { hostBits: 'clear' })!;
    let n = nextIp.get(subnet.id) ?? pfx.first + 10;
    while (taken.has(formatIpv4(n))) n++;
    nextIp.set(subnet.id, n + 1);
    return formatIpv4(n);
  };

  const hostNames = new Set<string>();
  // Nodes and VPC servers get namespaces of their own, so they cannot take the lab's fixed ones.
  const RESERVED = ['rt', 'igw', 'inet', 'onprem', 'cp'];
  const claimName = (n: string, path: string, namespaced: boolean): void => {
    if (hostNames.has(n)) fail(source, path, `the name ${n} is used twice (nodes and servers share names)`);
    if (namespaced && RESERVED.includes(n)) fail(source, path, `the name ${n} is the lab's own (${RESERVED.join(', ')})`);
    hostNames.add(n);
  };

  const nodesIn = r.list(top['nodes'], 'nodes');
  if (nodesIn.length === 0) fail(source, 'nodes', 'needs at least one node');
  const pendingNodes = nodesIn.map((n, i) => {
    const p = `nodes[${i}]`;
    const o = r.obj(n, p, ['name', 'zone', 'subnet', 'instanceType', 'ip', 'instanceId', 'labels']);
    const nodeName = r.str(o['name'], `${p}.name`, /^[a-z][a-z0-9-]{0,20}$/, 'a node name of [a-z0-9-], at most 21 characters');
    claimName(nodeName, `${p}.name`, true);
    const subnet = subnetOf(r.str(o['subnet'], `${p}.subnet`), `${p}.subnet`);
    const zone = r.optStr(o['zone'], `${p}.zone`) ?? subnet.zone;
    if (zone !== subnet.zone) fail(source, `${p}.zone`, `${zone} differs from the zone of subnet ${subnet.name} (${subnet.zone})`);
    const labels: Record<string, string> = {};
    if (o['labels'] !== undefined) {
      for (const [k, v] of Object.entries(r.map(o['labels'], `${p}.labels`))) labels[k] = r.str(v, `${p}.labels.${k}`);
    }
    const ip = o['ip'] === undefined ? undefined : r.ip(o['ip'], `${p}.ip`);
    if (ip !== undefined) hostIp(subnet, ip, `${p}.ip`, `node ${nodeName}`);
    return {
      name: nodeName,
      zone,
      subnet: subnet.id,
      instanceType: r.str(o['instanceType'], `${p}.instanceType`, /^[a-z0-9]+[a-z0-9-]*\.[a-z0-9]+$/, 'an instance type such as t3.large'),
      ip,
      instanceId: r.optStr(o['instanceId'], `${p}.instanceId`, INSTANCE_ID, 'an instance ID (i- and at least 8 hex digits)') ?? labInstanceId(nodeName),
      labels,
      subnetRef: subnet,
    };
  });

  const cpIn = r.obj(top['controlPlane'], 'controlPlane', ['subnet', 'ip', 'instanceType', 'instanceId']);
  const cpSubnet = subnetOf(r.str(cpIn['subnet'], 'controlPlane.subnet'), 'controlPlane.subnet');
  const cpIp = cpIn['ip'] === undefined ? undefined : r.ip(cpIn['ip'], 'controlPlane.ip');
  if (cpIp !== undefined) hostIp(cpSubnet, cpIp, 'controlPlane.ip', 'the control plane');

  const onpremCidr = r.cidr(r.obj(top['onprem'], 'onprem', ['cidr'])['cidr'], 'onprem.cidr');
  const internetCidr = r.cidr(r.obj(top['internet'], 'internet', ['cidr'])['cidr'], 'internet.cidr');
  for (const [what, c] of [['onprem.cidr', onpremCidr], ['internet.cidr', internetCidr]] as const) {
    if (!inAllowed(c.prefix)) fail(source, what, `${c.text} is outside the lab's address ranges`);
    if (ipv4NetCovers(vpcCidr.prefix, c.prefix) || ipv4NetCovers(c.prefix, vpcCidr.prefix)) fail(source, what, `${c.text} overlaps the VPC ${vpc.cidr}`);
    if (c.prefix.prefix > 30) fail(source, what, 'needs room for a router and servers (/30 or larger)');
  }
  if (ipv4NetCovers(onpremCidr.prefix, internetCidr.prefix) || ipv4NetCovers(internetCidr.prefix, onpremCidr.prefix)) fail(source, 'internet.cidr', 'overlaps onprem.cidr');

  const servers: ScenarioServer[] = [];
  const pendingServers: { server: ScenarioServer; subnet?: ScenarioSubnet; path: string; auto: boolean }[] = [];
  r.list(top['servers'], 'servers').forEach((s, i) => {
    const p = `servers[${i}]`;
    const o = r.obj(s, p, ['name', 'network', 'ip', 'subnet', 'instanceId']);
    const serverName = r.str(o['name'], `${p}.name`, /^[a-z][a-z0-9-]{0,20}$/, 'a server name of [a-z0-9-], at most 21 characters');
    const network = r.str(o['network'], `${p}.network`) as ServerNetwork;
    if (!['internet', 'onprem', 'vpc'].includes(network)) fail(source, `${p}.network`, `"${network}" is not one of internet, onprem, vpc`);
    claimName(serverName, `${p}.name`, network === 'vpc');
    if (network === 'vpc') {
      const subnet = subnetOf(r.str(o['subnet'], `${p}.subnet`), `${p}.subnet`);
      const ip = o['ip'] === undefined ? undefined : r.ip(o['ip'], `${p}.ip`);
      if (ip !== undefined) hostIp(subnet, ip, `${p}.ip`, `server ${serverName}`);
      const server: ScenarioServer = { name: serverName, network, ip: ip ?? '', subnet: subnet.id, instanceId: r.optStr(o['instanceId'], `${p}.instanceId`, INSTANCE_ID) ?? labInstanceId(serverName) };
      pendingServers.push({ server, subnet, path: p, auto: ip === undefined });
    } else {
      if (o['subnet'] !== undefined) fail(source, `${p}.subnet`, 'only vpc servers sit in a subnet');
      const ip = r.ip(o['ip'], `${p}.ip`);
      const net = network === 'internet' ? internetCidr : onpremCidr;
      const n = requireIpv4(ip);
      if (!ipv4NetContains(net.prefix, n)) fail(source, `${p}.ip`, `${ip} is not inside ${network}.cidr (${net.text})`);
      if (n === net.prefix.first + 1 || n === net.prefix.first) fail(source, `${p}.ip`, `${ip} is the network or router address of ${net.text}`);
      if (taken.has(ip)) fail(source, `${p}.ip`, `${ip} is already used by ${taken.get(ip) ?? ''}`);
      taken.set(ip, `server ${serverName}`);
      pendingServers.push({ server: { name: serverName, network, ip }, path: p, auto: false });
    }
  });

  // Addresses not given are handed out after every explicit one is known.
  const nodes: ScenarioNode[] = pendingNodes.map(({ subnetRef, ip, ...n }) => {
    const chosen = ip ?? autoIp(subnetRef);
    if (ip === undefined) hostIp(subnetRef, chosen, `nodes (${n.name})`, `node ${n.name}`);
    return { ...n, ip: chosen };
  });
  const cpChosen = cpIp ?? autoIp(cpSubnet);
  if (cpIp === undefined) hostIp(cpSubnet, cpChosen, 'controlPlane', 'the control plane');
  for (const ps of pendingServers) {
    if (ps.auto && ps.subnet !== undefined) {
      ps.server.ip = autoIp(ps.subnet);
      hostIp(ps.subnet, ps.server.ip, ps.path, `server ${ps.server.name}`);
    }
    servers.push(ps.server);
  }
  const controlPlane = {
    subnet: cpSubnet.id,
    ip: cpChosen,
    instanceType: r.optStr(cpIn['instanceType'], 'controlPlane.instanceType') ?? 't3.medium',
    instanceId: r.optStr(cpIn['instanceId'], 'controlPlane.instanceId', INSTANCE_ID) ?? labInstanceId('control-plane'),
  };
  const ids = [...nodes.map((n) => n.instanceId), controlPlane.instanceId, ...servers.flatMap((s) => (s.instanceId === undefined ? [] : [s.instanceId]))];
  if (new Set(ids).size !== ids.length) fail(source, 'nodes', 'two hosts have the same instance ID');

  let ec2Endpoint: string;
  if (top['ec2Endpoint'] === undefined) {
    // AWS keeps the VPC's second address (its DNS resolver) for itself; the lab puts its EC2 API there.
    ec2Endpoint = formatIpv4(vpcCidr.prefix.first + 2);
  } else {
    ec2Endpoint = r.ip(top['ec2Endpoint'], 'ec2Endpoint');
    if (!ipv4NetContains(vpcCidr.prefix, requireIpv4(ec2Endpoint))) fail(source, 'ec2Endpoint', `${ec2Endpoint} is not inside the VPC ${vpc.cidr}`);
  }
  if (taken.has(ec2Endpoint)) fail(source, 'ec2Endpoint', `${ec2Endpoint} is already used by ${taken.get(ec2Endpoint) ?? ''}`);
  const endpointSubnet = subnets.find((x) => ipv4NetContains(parseIpv4Net(x.cidr, { hostBits: 'clear' })!, requireIpv4(ec2Endpoint)));
  if (endpointSubnet !== undefined) {
    // Inside a subnet only on an address AWS keeps for itself (.1 router, .2 DNS, .3 reserved): no instance can get it.
    const offset = requireIpv4(ec2Endpoint) - parseIpv4Net(endpointSubnet.cidr, { hostBits: 'clear' })!.first;
    if (offset < 1 || offset > 3) fail(source, 'ec2Endpoint', `${ec2Endpoint} lies in subnet ${endpointSubnet.name}; use an address outside every subnet or one AWS reserves (its second to fourth)`);
  }
  const elasticIps: ScenarioElasticIp[] = r.list(top['elasticIps'] ?? [], 'elasticIps').map((e, i) => {
    const p = `elasticIps[${i}]`;
    const o = r.obj(e, p, ['allocationId', 'publicIp']);
    const publicIp = r.ip(o['publicIp'], `${p}.publicIp`);
    const n = requireIpv4(publicIp);
    if (!inAllowed(ipv4Net(n, 32))) fail(source, `${p}.publicIp`, `${publicIp} is outside the lab's address ranges`);
    for (const [what, c] of [['the VPC', vpcCidr], ['onprem.cidr', onpremCidr], ['internet.cidr', internetCidr]] as const) {
      if (ipv4NetContains(c.prefix, n)) fail(source, `${p}.publicIp`, `${publicIp} lies in ${what} (${c.text}); Elastic IPs are public addresses of their own`);
    }
    return { allocationId: r.str(o['allocationId'], `${p}.allocationId`, ALLOC_ID, 'an allocation ID (eipalloc- and at least 8 hex digits)'), publicIp };
  });
  if (new Set(elasticIps.map((e) => e.publicIp)).size !== elasticIps.length) fail(source, 'elasticIps', 'lists an address twice');

  const felix = top['felix'] === undefined ? {} : r.map(top['felix'], 'felix');
  const sim = top['sim'] === undefined ? {} : r.map(top['sim'], 'sim');
  const manifests = r.list(top['manifests'] ?? [], 'manifests').flatMap((m, i) => {
    const rel = r.str(m, `manifests[${i}]`);
    const path = isAbsolute(rel) ? rel : resolve(baseDir, rel);
    const expanded = files.expand(path);
    if (expanded === undefined) fail(source, `manifests[${i}]`, `${rel} does not exist (relative paths are relative to the scenario file)`);
    return expanded;
  });
  const waitIn = top['wait'] === undefined ? {} : r.obj(top['wait'], 'wait', ['timeoutSeconds']);
  const waitSeconds = waitIn['timeoutSeconds'] === undefined ? 120 : Number(waitIn['timeoutSeconds']);
  if (!Number.isInteger(waitSeconds) || waitSeconds < 1) fail(source, 'wait.timeoutSeconds', 'must be a positive integer');

  return {
    name,
    description,
    source,
    region,
    zones,
    vpc,
    subnets,
    nodes,
    controlPlane,
    ec2Endpoint,
    servers,
    onprem: { cidr: onpremCidr.text },
    internet: { cidr: internetCidr.text },
    elasticIps,
    felix: { ...LAB_FELIX_DEFAULTS, ...felix },
    sim: { ...LAB_SIM_DEFAULTS, ...sim },
    manifests,
    waitSeconds,
  };
}

/** How manifest paths are expanded (a file → itself; a directory → its .yaml/.yml/.json files, sorted). */
export interface ScenarioFiles {
  /** The files a path stands for, or undefined when it does not exist. */
  expand(path: string): string[] | undefined;
}

const nodeFiles: ScenarioFiles = {
  expand(path: string): string[] | undefined {
    if (!existsSync(path)) return undefined;
    if (!statSync(path).isDirectory()) return [path];
    return readdirSync(path)
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .sort()
      .map((f) => join(path, f));
  },
};

/** The repository's examples/lab directory (the scenarios shipped with egw). */
export function examplesDir(): string {
  // dist/src/lab/scenario.js and src/lab/scenario.ts both sit three levels below the package root.
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(here, '../../../examples/lab'), resolve(here, '../../examples/lab')];
  return candidates.find((c) => existsSync(join(c, 'reference.yaml'))) ?? candidates[0]!;
}

/** The built-in default scenario: the reference document's example, ENI-per-workload mode. */
export function defaultScenarioPath(): string {
  return join(examplesDir(), 'reference.yaml');
}

/**
 * Reads and validates a scenario file (the default one when `path` is undefined). Throws
 * `InvalidInput` for a missing file, bad YAML or an invalid scenario, naming the file and the field.
 */
export function loadScenario(path?: string): Scenario {
  const file = resolve(path ?? defaultScenarioPath());
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new EgwError('InvalidInput', `cannot read scenario ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, {
      hint: 'pass --scenario FILE (see examples/lab/)',
    });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (e) {
    throw new EgwError('InvalidInput', `${file}: YAML syntax error: ${(e as Error).message}`, { hint: 'fix the scenario file' });
  }
  return parseScenario(doc, file, dirname(file));
}
