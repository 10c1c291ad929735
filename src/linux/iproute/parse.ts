import { EgwError } from '../../platform/errors.js';
import { formatIpv4Net, isIpv4, parseIpv4Net, type Ipv4NetOptions } from '../../platform/ipv4.js';

/** How the kernel prints a prefix: a /32 as a bare address, 0.0.0.0/0 as `default`. */
const KERNEL_PREFIX: Ipv4NetOptions = { hostBits: 'clear', bareAddress: true, defaultWord: true };

/**
 * Pure parsers for the JSON that iproute2 prints (`ip -json`, `bridge -json`). They accept both the
 * numeric form (`ip -N`) and the named form of protocols, tables, scopes and route types, because a
 * host may name our protocol number in /etc/iproute2/rt_protos.d and iproute2 would then print the name.
 * Unknown names read as -1, which never equals one of our numbers, so a renamed object is never
 * mistaken for ours.
 */

const PROTOCOLS: Record<string, number> = {
  unspec: 0, redirect: 1, kernel: 2, boot: 3, static: 4, gated: 8, ra: 9, mrt: 10, zebra: 11, bird: 12,
  dnrouted: 13, xorp: 14, ntk: 15, dhcp: 16, keepalived: 18, babel: 42, openr: 99, bgp: 186, isis: 187,
  ospf: 188, rip: 189, eigrp: 192,
};
const TABLES: Record<string, number> = { unspec: 0, default: 253, main: 254, local: 255 };
const ROUTE_TYPES = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve'] as const;

/** A kernel route type. */
export type RouteType = (typeof ROUTE_TYPES)[number];

/** Main routing table number. */
export const MAIN_TABLE = 254;

function num(v: unknown, names: Record<string, number>, absent: number): number {
  if (v === undefined || v === null) return absent;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return Number(v);
    if (/^0x[0-9a-f]+$/i.test(v)) return parseInt(v, 16);
    return names[v] ?? -1;
  }
  return -1;
}

function routeType(v: unknown): RouteType {
  if (v === undefined) return 'unicast';
  if (typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v))) return ROUTE_TYPES[Number(v)] ?? 'unspec';
  return (ROUTE_TYPES as readonly string[]).includes(v as string) ? (v as RouteType) : 'unspec';
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function scalar(v: unknown): string | undefined {
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

const SCOPES: Record<string, string> = { '0': 'global', '200': 'site', '253': 'link', '254': 'host', '255': 'nowhere' };

/** Scope as a name, whether iproute2 printed it as a name or (with -N) a number. */
function scopeName(v: unknown): string | undefined {
  const s = scalar(v);
  return s === undefined ? undefined : SCOPES[s] ?? s;
}

function flags(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((f): f is string => typeof f === 'string') : [];
}

/** Parses iproute2 JSON output; empty output (some commands print nothing when there is nothing) is []. */
export function parseJsonArray(text: string, what: string): Record<string, unknown>[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (e) {
    throw new EgwError('Internal', `cannot parse the JSON of ${what}`, { cause: e, details: { text: trimmed.slice(0, 500) } });
  }
  if (!Array.isArray(value)) throw new EgwError('Internal', `the JSON of ${what} is not an array`);
  return value.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null);
}

/** The VXLAN attributes of a link, from `ip -d`. */
export interface VxlanInfo {
  vni: number;
  port: number;
  local: string | undefined;
  /** The parent (underlay) device, when the VXLAN device was bound to one. */
  parent: string | undefined;
  learning: boolean;
}

/** One link from `ip -json [-details] link show`. */
export interface ObservedLink {
  ifindex: number;
  name: string;
  mac: string | undefined;
  mtu: number;
  /** Administratively up (the UP flag). */
  up: boolean;
  kind: string | undefined;
  vxlan: VxlanInfo | undefined;
  master: string | undefined;
}

/** Parses `ip -json -details link show`. */
export function parseLinks(text: string): ObservedLink[] {
  return parseJsonArray(text, 'ip link').map((l) => {
    const info = (l['linkinfo'] ?? {}) as Record<string, unknown>;
    const kind = str(info['info_kind']);
    const data = (info['info_data'] ?? {}) as Record<string, unknown>;
    return {
      ifindex: typeof l['ifindex'] === 'number' ? l['ifindex'] : -1,
      name: str(l['ifname']) ?? '',
      mac: str(l['address'])?.toLowerCase(),
      mtu: typeof l['mtu'] === 'number' ? l['mtu'] : 0,
      up: flags(l['flags']).includes('UP'),
      kind,
      master: str(l['master']),
      vxlan: kind === 'vxlan'
        ? {
            vni: typeof data['id'] === 'number' ? data['id'] : -1,
            port: typeof data['port'] === 'number' ? data['port'] : -1,
            local: str(data['local']),
            parent: str(data['link']),
            learning: data['learning'] === true,
          }
        : undefined,
    };
  });
}

/** One IPv4 address of a link, from `ip -json addr show`. */
export interface ObservedAddress {
  ifname: string;
  /** `a.b.c.d/len` as configured (host bits kept). */
  address: string;
  scope: string | undefined;
  noprefixroute: boolean;
}

/** Parses `ip -json -4 addr show`. */
export function parseAddresses(text: string): ObservedAddress[] {
  const out: ObservedAddress[] = [];
  for (const l of parseJsonArray(text, 'ip addr')) {
    const infos = Array.isArray(l['addr_info']) ? (l['addr_info'] as Record<string, unknown>[]) : [];
    for (const a of infos) {
      if (a['family'] !== 'inet') continue;
      out.push({
        ifname: str(l['ifname']) ?? '',
        address: `${str(a['local']) ?? ''}/${scalar(a['prefixlen']) ?? '32'}`,
        scope: scopeName(a['scope']),
        noprefixroute: a['noprefixroute'] === true,
      });
    }
  }
  return out;
}

/** One IPv4 route, from `ip -json -N route show table all`. */
export interface ObservedRoute {
  table: number;
  /** Canonical `a.b.c.d/len`. */
  dst: string;
  type: RouteType;
  protocol: number;
  metric: number;
  nhid: number | undefined;
  gateway: string | undefined;
  dev: string | undefined;
  onlink: boolean;
  scope: string | undefined;
}

/** Parses `ip -json [-N] -4 route show ...`. Routes without a `table` field are in main. */
export function parseRoutes(text: string): ObservedRoute[] {
  const out: ObservedRoute[] = [];
  for (const r of parseJsonArray(text, 'ip route')) {
    const dst = parseIpv4Net(str(r['dst']) ?? '', KERNEL_PREFIX);
    if (dst === undefined) continue;
    out.push({
      table: num(r['table'], TABLES, MAIN_TABLE),
      dst: formatIpv4Net(dst),
      type: routeType(r['type']),
      protocol: num(r['protocol'], PROTOCOLS, 3),
      metric: typeof r['metric'] === 'number' ? r['metric'] : 0,
      nhid: typeof r['nhid'] === 'number' ? r['nhid'] : undefined,
      gateway: str(r['gateway']),
      dev: str(r['dev']),
      onlink: flags(r['flags']).includes('onlink'),
      scope: scopeName(r['scope']),
    });
  }
  return out;
}

/** One IPv4 policy rule, from `ip -json -N rule show`. */
export interface ObservedRule {
  priority: number;
  /** Canonical source prefix, or undefined for `from all`. */
  from: string | undefined;
  to: string | undefined;
  iif: string | undefined;
  oif: string | undefined;
  fwmark: string | undefined;
  /** Table looked up, or undefined for rules with another action (goto, unreachable, …). */
  table: number | undefined;
  action: string | undefined;
  protocol: number;
}

function prefixOf(addr: unknown, len: unknown): string | undefined {
  const a = str(addr);
  if (a === undefined || a === 'all') return undefined;
  const p = parseIpv4Net(`${a}/${typeof len === 'number' ? len : 32}`, KERNEL_PREFIX);
  return p === undefined ? a : formatIpv4Net(p);
}

/** Parses `ip -json -N rule show`. */
export function parseRules(text: string): ObservedRule[] {
  return parseJsonArray(text, 'ip rule').map((r) => ({
    priority: typeof r['priority'] === 'number' ? r['priority'] : 0,
    from: prefixOf(r['src'], r['srclen']),
    to: prefixOf(r['dst'], r['dstlen']),
    iif: str(r['iif']),
    oif: str(r['oif']),
    fwmark: scalar(r['fwmark']) === undefined ? undefined : `${scalar(r['fwmark'])}${scalar(r['fwmask']) === undefined ? '' : `/${scalar(r['fwmask'])}`}`,
    table: r['table'] === undefined ? undefined : num(r['table'], TABLES, -1),
    action: str(r['action']),
    protocol: num(r['protocol'], PROTOCOLS, 0),
  }));
}

/** The resilient-hashing arguments of a nexthop group. */
export interface ResilientArgs {
  buckets: number;
  idleTimer: number;
  unbalancedTimer: number;
}

/** One nexthop object, from `ip -json -N nexthop show`. */
export interface ObservedNexthop {
  id: number;
  protocol: number;
  gateway: string | undefined;
  dev: string | undefined;
  onlink: boolean;
  blackhole: boolean;
  /** Member ids (in kernel order) when this is a group. */
  group: number[] | undefined;
  groupType: string | undefined;
  resilient: ResilientArgs | undefined;
}

/** Parses `ip -json -N nexthop show`. */
export function parseNexthops(text: string): ObservedNexthop[] {
  return parseJsonArray(text, 'ip nexthop').map((n) => {
    const g = Array.isArray(n['group']) ? (n['group'] as Record<string, unknown>[]) : undefined;
    const ra = n['resilient_args'] as Record<string, unknown> | undefined;
    return {
      id: typeof n['id'] === 'number' ? n['id'] : -1,
      protocol: num(n['protocol'], PROTOCOLS, 0),
      gateway: str(n['gateway']),
      dev: str(n['dev']),
      onlink: flags(n['flags']).includes('onlink'),
      blackhole: n['blackhole'] !== undefined,
      group: g?.map((m) => (typeof m['id'] === 'number' ? m['id'] : -1)),
      groupType: g === undefined ? undefined : str(n['type']) ?? 'mpath',
      resilient: ra === undefined
        ? undefined
        : {
            buckets: Number(ra['buckets'] ?? 0),
            idleTimer: Number(ra['idle_timer'] ?? 0),
            unbalancedTimer: Number(ra['unbalanced_timer'] ?? 0),
          },
    };
  });
}

/** One bucket of a resilient group, from `ip -json nexthop bucket show`. */
export interface ObservedBucket {
  group: number;
  index: number;
  nhid: number;
  idleTime: number;
}

/** Parses `ip -json nexthop bucket show`. */
export function parseBuckets(text: string): ObservedBucket[] {
  return parseJsonArray(text, 'ip nexthop bucket').map((b) => {
    const bucket = (b['bucket'] ?? {}) as Record<string, unknown>;
    return {
      group: Number(b['id'] ?? -1),
      index: Number(bucket['index'] ?? -1),
      nhid: Number(bucket['nhid'] ?? -1),
      idleTime: Number(bucket['idle_time'] ?? 0),
    };
  });
}

/** One neighbour entry, from `ip -json neigh show`. */
export interface ObservedNeighbour {
  ip: string;
  mac: string | undefined;
  dev: string | undefined;
  permanent: boolean;
}

/** Parses `ip -json neigh show` (IPv4 entries only). */
export function parseNeighbours(text: string): ObservedNeighbour[] {
  const out: ObservedNeighbour[] = [];
  for (const n of parseJsonArray(text, 'ip neigh')) {
    const ip = str(n['dst']);
    if (ip === undefined || !isIpv4(ip)) continue;
    out.push({
      ip,
      mac: str(n['lladdr'])?.toLowerCase(),
      dev: str(n['dev']),
      permanent: flags(n['state']).includes('PERMANENT'),
    });
  }
  return out;
}

/** One forwarding-database entry, from `bridge -json fdb show`. */
export interface ObservedFdb {
  mac: string;
  dst: string | undefined;
  dev: string | undefined;
  permanent: boolean;
}

/** Parses `bridge -json fdb show`. */
export function parseFdb(text: string): ObservedFdb[] {
  return parseJsonArray(text, 'bridge fdb').map((f) => ({
    mac: (str(f['mac']) ?? '').toLowerCase(),
    dst: str(f['dst']),
    dev: str(f['ifname']),
    permanent: f['state'] === 'permanent',
  }));
}
