import { EgwError } from '../../platform/errors.js';
import { ipv4NetCovers, parseIpv4Net, requireIpv4Net } from '../../platform/ipv4.js';
import { canonicalMac } from '../net/mac.js';
import { validIfname } from '../ownership.js';

/**
 * The declarative shape of a namespace topology: namespaces joined by veth pairs (and bridges inside
 * namespaces), with addresses, routes and sysctls. Every namespace is created as `<prefix>-<name>`;
 * nothing is ever created in the root namespace, so the host's own network is never touched.
 */
export interface TopologySpec {
  /** 2–8 characters `[a-z][a-z0-9]*`, unique per user (test file, lab): the ownership mark of everything. */
  prefix: string;
  namespaces: NamespaceSpec[];
  bridges: BridgeSpec[];
  links: VethSpec[];
  routes: RouteSpec[];
}

/** A network namespace (a node, a pod, a router, a server). */
export interface NamespaceSpec {
  /** Short name; the namespace is `<prefix>-<name>`. */
  name: string;
  /** Sets net.ipv4.ip_forward=1 (routers, nodes, gateway pods). */
  forwarding?: boolean;
  /** Extra sysctls, e.g. `{ 'net.ipv4.conf.all.rp_filter': 0 }`. */
  sysctls?: Record<string, number>;
}

/** A bridge inside a namespace (an L2 segment, e.g. a VPC subnet). */
export interface BridgeSpec {
  ns: string;
  name: string;
  addresses?: string[];
}

/** One end of a veth pair. */
export interface VethEnd {
  /** Namespace short name. */
  ns: string;
  /** Interface name inside that namespace (≤ 15 characters). */
  ifname: string;
  /** `a.b.c.d/len` addresses. */
  addresses?: string[];
  mac?: string;
  mtu?: number;
  /** Answer ARP for addresses routed elsewhere (the host side of a Calico-style pod link). */
  proxyArp?: boolean;
  /** Enslave to this bridge of the same namespace. */
  master?: string;
}

/** A veth pair between two namespaces (or inside one). */
export interface VethSpec {
  a: VethEnd;
  b: VethEnd;
}

/** A static route inside a namespace. */
export interface RouteSpec {
  ns: string;
  /** `a.b.c.d/len`, a bare address, or `default`. */
  dst: string;
  via?: string;
  dev?: string;
  onlink?: boolean;
  src?: string;
  table?: number;
  /** Route type other than unicast. */
  type?: 'blackhole' | 'unreachable';
}

/**
 * The only address space the topology may use (the project's network-safety rule): private, shared
 * and documentation ranges that never appear on a real network the host talks to.
 */
export const ALLOWED_RANGES = ['10.0.0.0/8', '100.64.0.0/10', '198.18.0.0/15', '192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'].map((c) => requireIpv4Net(c, { hostBits: 'refuse' }));

function allowedAddress(text: string): boolean {
  const p = parseIpv4Net(text, { hostBits: 'clear', bareAddress: true });
  if (p === undefined) return false;
  return ALLOWED_RANGES.some((r) => ipv4NetCovers(r, p));
}

function fail(message: string): never {
  throw new EgwError('InvalidInput', message, { hint: 'fix the topology spec' });
}

/** The full namespace name of a short name. */
export function namespaceName(prefix: string, name: string): string {
  return `${prefix}-${name}`;
}

/**
 * Checks a spec before anything is created: names, lengths, references, and that every address,
 * route destination and next hop lies in {@link ALLOWED_RANGES} (`default` is allowed as a destination:
 * the namespaces are not connected to the host). Throws `InvalidInput` naming the first problem.
 */
export function validateTopologySpec(spec: TopologySpec): void {
  if (!/^[a-z][a-z0-9]{1,7}$/.test(spec.prefix)) fail(`prefix "${spec.prefix}" must be 2-8 characters [a-z][a-z0-9]*`);
  const names = new Set<string>();
  for (const n of spec.namespaces) {
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(n.name)) fail(`namespace name "${n.name}" must be [a-z0-9-], at most 31 characters`);
    if (names.has(n.name)) fail(`namespace "${n.name}" is declared twice`);
    names.add(n.name);
  }
  const ifaces = new Set<string>();
  const claim = (ns: string, ifname: string): void => {
    if (!names.has(ns)) fail(`namespace "${ns}" (of interface ${ifname}) is not declared`);
    if (!validIfname(ifname)) fail(`interface name "${ifname}" must be 1-15 characters [A-Za-z0-9_.-]`);
    const key = `${ns}/${ifname}`;
    if (ifaces.has(key)) fail(`interface ${ifname} appears twice in namespace ${ns}`);
    ifaces.add(key);
  };
  const checkAddresses = (where: string, addresses: string[] | undefined): void => {
    for (const a of addresses ?? []) {
      if (!a.includes('/') || !allowedAddress(a)) fail(`${where}: address ${a} must be a.b.c.d/len inside the allowed test ranges`);
    }
  };
  const bridges = new Set<string>();
  for (const b of spec.bridges) {
    claim(b.ns, b.name);
    bridges.add(`${b.ns}/${b.name}`);
    checkAddresses(`bridge ${b.name}`, b.addresses);
  }
  for (const l of spec.links) {
    for (const end of [l.a, l.b]) {
      claim(end.ns, end.ifname);
      checkAddresses(`${end.ns}/${end.ifname}`, end.addresses);
      if (end.mac !== undefined) canonicalMac(end.mac);
      if (end.master !== undefined && !bridges.has(`${end.ns}/${end.master}`)) fail(`${end.ns}/${end.ifname}: bridge ${end.master} is not declared in ${end.ns}`);
    }
  }
  for (const r of spec.routes) {
    if (!names.has(r.ns)) fail(`route ${r.dst}: namespace "${r.ns}" is not declared`);
    if (r.dst !== 'default' && !allowedAddress(r.dst)) fail(`route ${r.dst} in ${r.ns}: destination outside the allowed test ranges`);
    if (r.via !== undefined && !allowedAddress(r.via)) fail(`route ${r.dst} in ${r.ns}: next hop ${r.via} outside the allowed test ranges`);
    if (r.src !== undefined && !allowedAddress(r.src)) fail(`route ${r.dst} in ${r.ns}: source ${r.src} outside the allowed test ranges`);
    if (r.dev !== undefined && !ifaces.has(`${r.ns}/${r.dev}`)) fail(`route ${r.dst} in ${r.ns}: device ${r.dev} is not declared there`);
  }
}

/** Options of {@link TopologyBuilder.pod}. */
export interface PodOptions {
  /** The node namespace (short name). */
  node: string;
  /** The pod namespace (short name). */
  name: string;
  /** The pod's IP (a /32 on its eth0). */
  ip: string;
  /** Host-side interface name (≤ 15 characters). Default: `v-<name>` truncated. */
  hostIfname?: string;
  /** Address the pod's default route points at (answered by proxy ARP on the host side). */
  gatewayIp: string;
  /** Forwarding inside the pod (gateway pods). */
  forwarding?: boolean;
}

/**
 * Builds a {@link TopologySpec} step by step. Pure: it only collects declarations; nothing is created
 * until `createTopology`. Shapes that recur (a Calico-style pod) have their own method.
 */
export class TopologyBuilder {
  private readonly s: TopologySpec;

  constructor(prefix: string) {
    this.s = { prefix, namespaces: [], bridges: [], links: [], routes: [] };
  }

  /** Declares a namespace. */
  namespace(name: string, options: Omit<NamespaceSpec, 'name'> = {}): this {
    this.s.namespaces.push({ name, ...options });
    return this;
  }

  /** Declares a bridge inside a namespace. */
  bridge(ns: string, name: string, addresses?: string[]): this {
    this.s.bridges.push(addresses === undefined ? { ns, name } : { ns, name, addresses });
    return this;
  }

  /** Declares a veth pair. */
  veth(a: VethEnd, b: VethEnd): this {
    this.s.links.push({ a, b });
    return this;
  }

  /** Declares a route. */
  route(route: RouteSpec): this {
    this.s.routes.push(route);
    return this;
  }

  /**
   * A pod the way Calico wires one: the pod has `ip/32` on eth0 and a default route to `gatewayIp`
   * onlink; the node has `ip/32` routed to the host-side veth, which answers ARP by proxy.
   */
  pod(options: PodOptions): this {
    const hostIf = options.hostIfname ?? `v-${options.name}`.slice(0, 15);
    this.namespace(options.name, options.forwarding === true ? { forwarding: true } : {});
    this.veth({ ns: options.name, ifname: 'eth0', addresses: [`${options.ip}/32`] }, { ns: options.node, ifname: hostIf, proxyArp: true });
    this.route({ ns: options.name, dst: 'default', via: options.gatewayIp, dev: 'eth0', onlink: true });
    this.route({ ns: options.node, dst: `${options.ip}/32`, dev: hostIf });
    return this;
  }

  /** The collected spec (validated). */
  build(): TopologySpec {
    validateTopologySpec(this.s);
    return structuredClone(this.s);
  }
}
