/**
 * The lab's world, derived from a scenario (pure): namespace names, the static kernel state of the VPC
 * router, the internet gateway and the external networks, the emulator's world definition and the
 * fabric driver's configuration. docs/lab.md, "The world", draws it.
 *
 *   internet (servers) ─ inet ── igw [Elastic IP NAT] ── igw ─ rt (VPC router) ─ onprem ── onprem (servers)
 *                                                             │  one veth per attached ENI (fabric driver)
 *                             node namespaces (eth0 = primary ENI, eth1… = secondary ENIs), cp, vpc servers
 */
import type { WorldDefinition } from '../sim/aws/world.js';
import type { LabFabricConfig } from '../sim/aws/lab-fabric.js';
import { formatIpv4, ipv4NetsOverlap, requireIpv4Net, type Ipv4NetOptions } from '../platform/ipv4.js';

const CIDR: Ipv4NetOptions = { hostBits: 'clear', bareAddress: true };
import { EgwError } from '../platform/errors.js';
import type { Scenario } from './scenario.js';

/** The port every external server listens on (the reference's netcat port). */
export const SERVER_PORT = 8089;
/** Where the emulator listens inside the router's namespace: every local address, port 80. */
export const AWS_SIM_PORT = 80;
/** The router ↔ internet gateway link. */
export const TRANSIT = { cidr: '198.19.255.252/30', router: '198.19.255.253', igw: '198.19.255.254' } as const;
/** The etcd port the control plane's relay listens on (etcd datastores only). */
export const ETCD_RELAY_PORT = 2379;
/** The security group every lab instance is in. */
export const LAB_SECURITY_GROUP = 'sg-0e9f00000000000a1';
/** The IAM role IMDS reports for lab instances (the SDK's default chain gets its credentials there). */
export const LAB_IAM_ROLE = 'egw-lab-node';

/** Namespace names of a lab (as `ip netns list` shows them). */
export interface LabNames {
  prefix: string;
  router: string;
  igw: string;
  inet: string;
  onprem: string;
  /** The control plane's instance. */
  cp: string;
  /** By node name. */
  nodes: Record<string, string>;
  /** VPC servers' instances, by server name. */
  vpcServers: Record<string, string>;
  /** Every namespace the lab makes itself (pods are the kubelets'), in creation order. */
  all: string[];
}

/** The namespace names of a scenario under a prefix. */
export function labNames(prefix: string, scenario: Scenario): LabNames {
  if (!/^[a-z][a-z0-9]{1,7}$/.test(prefix)) throw new EgwError('InvalidInput', `lab prefix "${prefix}" must be 2-8 characters [a-z][a-z0-9]*`, { hint: 'pick a short prefix such as egwlab' });
  const ns = (n: string): string => `${prefix}-${n}`;
  const nodes = Object.fromEntries(scenario.nodes.map((n) => [n.name, ns(n.name)]));
  const vpcServers = Object.fromEntries(scenario.servers.filter((s) => s.network === 'vpc').map((s) => [s.name, ns(s.name)]));
  const names = { prefix, router: ns('rt'), igw: ns('igw'), inet: ns('inet'), onprem: ns('onprem'), cp: ns('cp') };
  return { ...names, nodes, vpcServers, all: [names.router, names.igw, names.inet, names.onprem, names.cp, ...Object.values(nodes), ...Object.values(vpcServers)] };
}

/** The first host address of a CIDR (a subnet's router on AWS; the gateway of the lab's external networks). */
export function routerOf(cidr: string): string {
  return formatIpv4(requireIpv4Net(cidr, CIDR).first + 1);
}

/** The emulator's world: the scenario's VPC, subnets, instances (nodes, control plane, VPC servers) and Elastic IPs. */
export function worldDefinition(scenario: Scenario): WorldDefinition {
  const host = (id: string, name: string, type: string, subnetId: string, privateIp: string, role: string) => ({
    id,
    type,
    subnetId,
    privateIp,
    securityGroups: [LAB_SECURITY_GROUP],
    tags: { Name: name, 'egw-lab/role': role },
    iamRole: LAB_IAM_ROLE,
  });
  return {
    region: scenario.region,
    vpcs: [{ id: scenario.vpc.id, cidr: scenario.vpc.cidr }],
    subnets: scenario.subnets.map((s) => ({ id: s.id, vpcId: scenario.vpc.id, cidr: s.cidr, availabilityZone: s.zone, tags: { Name: s.name } })),
    securityGroups: [{ id: LAB_SECURITY_GROUP, vpcId: scenario.vpc.id, name: 'default' }],
    instances: [
      ...scenario.nodes.map((n) => host(n.instanceId, n.name, n.instanceType, n.subnet, n.ip, 'node')),
      host(scenario.controlPlane.instanceId, 'control-plane', scenario.controlPlane.instanceType, scenario.controlPlane.subnet, scenario.controlPlane.ip, 'control-plane'),
      ...scenario.servers.filter((s) => s.network === 'vpc').map((s) => host(s.instanceId!, s.name, 't3.micro', s.subnet!, s.ip, 'server')),
    ],
    elasticIps: scenario.elasticIps.map((e) => ({ allocationId: e.allocationId, publicIp: e.publicIp })),
    sim: scenario.sim,
  };
}

/** The fabric driver's configuration: the router, the internet gateway, each instance's namespace. */
export function fabricConfig(names: LabNames, scenario: Scenario): LabFabricConfig {
  const instances: Record<string, { netns: string }> = {};
  for (const n of scenario.nodes) instances[n.instanceId] = { netns: names.nodes[n.name]! };
  instances[scenario.controlPlane.instanceId] = { netns: names.cp };
  for (const s of scenario.servers) if (s.network === 'vpc' && s.instanceId !== undefined) instances[s.instanceId] = { netns: names.vpcServers[s.name] ?? '' };
  return { routerNetns: names.router, igw: { netns: names.igw, vpc: 'vpc', internet: 'inet' }, instances };
}

/** The lab is IPv4 only (as egw): no IPv6 on the links the lab makes. */
const NO_IPV6 = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];

/** The kernel state of one namespace the lab makes: sysctls, then `ip -batch` lines. */
export interface NamespaceBuild {
  netns: string;
  sysctls: string[];
  /** Lines that create links (run first, in every namespace, before any address or route). */
  links: string[];
  /** Addresses, link state and routes. */
  config: string[];
}

/**
 * The static world (everything but the ENI links, which the fabric driver makes): the router with every
 * subnet's router address, the EC2 endpoint and IMDS on its loopback, an `unreachable` route for the
 * VPC (an address EC2 does not know goes nowhere), the private link to on-prem and the link to the
 * internet gateway; the gateway and the internet; on-prem; empty instance namespaces.
 */
export function staticWorld(names: LabNames, scenario: Scenario): NamespaceBuild[] {
  for (const [what, cidr] of [['the VPC', scenario.vpc.cidr], ['onprem', scenario.onprem.cidr], ['internet', scenario.internet.cidr]] as const) {
    const a = requireIpv4Net(cidr, CIDR);
    const t = requireIpv4Net(TRANSIT.cidr, CIDR);
    if (ipv4NetsOverlap(a, t)) throw new EgwError('InvalidInput', `${what} (${cidr}) overlaps the lab's router↔internet-gateway link ${TRANSIT.cidr}`, { hint: 'choose another range in the scenario' });
  }
  const onpremLen = requireIpv4Net(scenario.onprem.cidr, CIDR).prefix;
  const inetLen = requireIpv4Net(scenario.internet.cidr, CIDR).prefix;
  const onpremGw = routerOf(scenario.onprem.cidr);
  const inetGw = routerOf(scenario.internet.cidr);
  const instanceSysctls = ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=2', 'net.ipv4.conf.default.rp_filter=2', ...NO_IPV6];
  const router: NamespaceBuild = {
    netns: names.router,
    // proxy_arp on every new link: the VPC answers ARP for any address it routes elsewhere (instances
    // in one subnet reach each other through it); rp_filter off: the source check is the fabric's nft table.
    sysctls: ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv4.conf.default.proxy_arp=1', ...NO_IPV6],
    links: [
      `link add igw type veth peer name vpc netns ${names.igw}`,
      `link add onprem type veth peer name eth0 netns ${names.onprem}`,
    ],
    config: [
      'link set dev lo up',
      ...scenario.subnets.map((s) => `addr add ${routerOf(s.cidr)}/32 dev lo`),
      `addr add ${scenario.ec2Endpoint}/32 dev lo`,
      `addr add ${TRANSIT.router}/30 dev igw`,
      'link set dev igw up',
      `addr add ${onpremGw}/${onpremLen} dev onprem`,
      'link set dev onprem up',
      `route add unreachable ${scenario.vpc.cidr}`,
      `route add default via ${TRANSIT.igw} dev igw`,
    ],
  };
  const igw: NamespaceBuild = {
    netns: names.igw,
    sysctls: ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', ...NO_IPV6],
    links: [`link add inet type veth peer name eth0 netns ${names.inet}`],
    config: [
      'link set dev lo up',
      `addr add ${TRANSIT.igw}/30 dev vpc`,
      'link set dev vpc up',
      `addr add ${inetGw}/${inetLen} dev inet`,
      'link set dev inet up',
      `route add ${scenario.vpc.cidr} via ${TRANSIT.router} dev vpc`,
    ],
  };
  // A network without servers has no address, hence no default route either.
  const network = (netns: string, kind: 'internet' | 'onprem', len: number, gw: string): NamespaceBuild => {
    const addrs = scenario.servers.filter((s) => s.network === kind).map((s) => `addr add ${s.ip}/${len} dev eth0`);
    return { netns, sysctls: NO_IPV6, links: [], config: ['link set dev lo up', ...addrs, 'link set dev eth0 up', ...(addrs.length === 0 ? [] : [`route add default via ${gw} dev eth0`])] };
  };
  const inet = network(names.inet, 'internet', inetLen, inetGw);
  const onprem = network(names.onprem, 'onprem', onpremLen, onpremGw);
  const instance = (netns: string): NamespaceBuild => ({ netns, sysctls: instanceSysctls, links: [], config: ['link set dev lo up'] });
  return [router, igw, inet, onprem, instance(names.cp), ...Object.values(names.nodes).map(instance), ...Object.values(names.vpcServers).map(instance)];
}
