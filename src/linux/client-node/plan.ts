import type { ErrorCode } from '../../platform/errors.js';
import { EgwError } from '../../platform/errors.js';
import type { BatchCommand } from '../iproute/batch.js';
import type { ObservedAddress } from '../iproute/parse.js';
import type { ObservedFdb, ObservedLink, ObservedNeighbour, ObservedNexthop, ObservedRoute, ObservedRule } from '../iproute/parse.js';
import { MAIN_TABLE } from '../iproute/parse.js';
import { canonicalIpv4Net, formatIpv4, requireIpv4 } from '../../platform/ipv4.js';
import { tunnelMac } from '../net/mac.js';
import type { NftPlan, NftTableSpec, ObservedNftTable } from '../nft/nft-table.js';
import { planNftTable } from '../nft/nft-table.js';
import { DEFAULT_DRAIN_MARK_MASK, EGRESS_ROUTE_PROTOCOL, EGW_NFT_TABLE, EGW_VXLAN_DEVICE, freeTable, tableInRanges, validIfname } from '../ownership.js';
import type { SysctlSetting } from '../sysctl.js';
import { tunnelAddressLines } from '../iproute/tunnel.js';
import { ifaceSysctlKey } from '../sysctl.js';
import type { ClientNodeConfig, ClientNodeState } from './types.js';

/** What the client-node driver read from the kernel (see `readClientNode`). */
export interface ClientNodeObserved {
  /** egw.vxlan, when it exists. */
  link: ObservedLink | undefined;
  /** IPv4 addresses on egw.vxlan. */
  addresses: ObservedAddress[];
  /** `net.ipv4.fib_multipath_hash_policy`. */
  hashPolicy: number | undefined;
  /** `rp_filter` of egw.vxlan. */
  rpFilter: number | undefined;
  /** Neighbour entries on egw.vxlan. */
  neighbours: ObservedNeighbour[];
  /** FDB entries on egw.vxlan. */
  fdb: ObservedFdb[];
  /** Every nexthop object in the namespace (ours are picked by id range and protocol). */
  nexthops: ObservedNexthop[];
  /** Every IPv4 route of every table (ours are picked by protocol and table range). */
  routes: ObservedRoute[];
  /** Every IPv4 rule (ours are picked by priority and protocol). */
  rules: ObservedRule[];
  /** egw's nftables table, when it exists. */
  nft: ObservedNftTable | undefined;
}

/** A desired object that cannot be programmed, with the reason. Other objects are unaffected. */
export interface Problem {
  object: string;
  code: ErrorCode;
  message: string;
}

/** Which kernel table serves which clients after the plan. */
export interface TableAssignment {
  table: number;
  clients: string[];
  /** True for the table holding return routes on a gateway's node. */
  returnPath: boolean;
}

/** The changes, in execution order. Every list may be empty. */
export interface ClientNodePlan {
  /**
   * The VXLAN device exists with attributes that cannot be changed in place. The plan then holds only
   * the interlock and the device removal; the caller executes them, reads again and plans again.
   */
  recreateVtep: boolean;
  /** `ip` lines run before anything else: route every tunnelled prefix to `unreachable` (fail closed). */
  interlock: BatchCommand[];
  /** `ip` lines creating / fixing / (on recreate) deleting the device. */
  link: BatchCommand[];
  sysctls: SysctlSetting[];
  /** `bridge` lines adding FDB entries (before the neighbours and routes that use them). */
  fdbAdd: BatchCommand[];
  /** `ip` lines: neighbours, nexthops, groups, routes, rules, then the removals in reverse order. */
  ip: BatchCommand[];
  /** `bridge` lines deleting FDB entries no longer needed. */
  fdbDel: BatchCommand[];
  /** `ip` lines deleting the device when no tunnel is desired (last). */
  linkDel: BatchCommand[];
  nft: NftPlan;
  assignments: TableAssignment[];
  problems: Problem[];
}

/** True when the plan changes nothing. */
export function isEmptyPlan(plan: ClientNodePlan): boolean {
  return !plan.recreateVtep && plan.interlock.length === 0 && plan.link.length === 0 && plan.sysctls.length === 0
    && plan.fdbAdd.length === 0 && plan.ip.length === 0 && plan.fdbDel.length === 0 && plan.linkDel.length === 0
    && plan.nft.kind === 'none';
}

/** A normalised route: canonical prefix, sorted unique gateways. */
interface NormRoute {
  dst: string;
  kind: 'via' | 'throw' | 'unreachable';
  gateways: string[];
}

interface DesiredGroup {
  key: string;
  /** `from:<cidr>` or `iif:<dev>`. */
  selectors: string[];
  clients: string[];
  returnPath: boolean;
  routes: NormRoute[];
}

const DEV = EGW_VXLAN_DEVICE;
const PROTO = EGRESS_ROUTE_PROTOCOL;

function routesKey(routes: readonly NormRoute[]): string {
  return [...routes]
    .sort((a, b) => (a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0))
    .map((r) => `${r.dst}=${r.kind}${r.kind === 'via' ? `:${r.gateways.join(',')}` : ''}`)
    .join(' ');
}

function ip4(text: string, what: string): string {
  try {
    return formatIpv4(requireIpv4(text));
  } catch {
    throw new EgwError('InvalidInput', `${what}: "${text}" is not an IPv4 address`, { hint: 'fix the desired state given to the client-node driver' });
  }
}

function normalizeRoutes(owner: string, routes: ClientNodeState['clients'][number]['routes'], tunnel: boolean): NormRoute[] {
  const seen = new Set<string>();
  const out: NormRoute[] = [];
  for (const r of routes) {
    const dst = canonicalIpv4Net(r.cidr);
    if (seen.has(dst)) throw new EgwError('InvalidInput', `${owner} has two routes for ${dst}`, { hint: 'give each prefix one route' });
    seen.add(dst);
    if (r.kind === 'via-gateways') {
      const byNumber = new Map(r.gateways.map((g) => {
        const n = requireIpv4(ip4(g, `${owner} route ${dst}`));
        return [n, formatIpv4(n)] as const;
      }));
      const gateways = [...byNumber].sort((a, b) => a[0] - b[0]).map(([, g]) => g);
      // No gateway, or no tunnel to reach one: fail closed rather than fall through to the node's IP.
      out.push(gateways.length === 0 || !tunnel ? { dst, kind: 'unreachable', gateways: [] } : { dst, kind: 'via', gateways });
    } else {
      out.push({ dst, kind: r.kind, gateways: [] });
    }
  }
  return out;
}

/** Kind order for adds/replaces: restrictions go in before anything opens a path. */
const KIND_ORDER: Record<NormRoute['kind'], number> = { unreachable: 0, via: 1, throw: 2 };

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort((x, y) => x - y);
  const sb = [...b].sort((x, y) => x - y);
  return sa.every((v, i) => v === sb[i]);
}

/** The set of outer sources a node accepts VXLAN from, and the input chain that enforces it. */
export const VXLAN_PEERS_SET = 'vxlan_peers';
export const VXLAN_INPUT_CHAIN = 'vxlan_input';

/** The rule of {@link VXLAN_INPUT_CHAIN}: VXLAN from anyone else is counted and dropped. */
export function vxlanFilterRule(port: number): string {
  return `udp dport ${port} ip saddr != @${VXLAN_PEERS_SET} counter drop`;
}

/** The drain's marks (docs/linux-dataplane.md, "Draining a terminating gateway"): by gateway IP. */
export interface DrainMarks {
  mask: number;
  /** Every tunnel gateway that has a slot, with its mark (connections through it are marked so). */
  gateways: ReadonlyMap<string, number>;
  /** The draining ones among them. */
  draining: ReadonlyMap<string, number>;
}

export const EGRESS_MARK_CHAIN = 'egress_mark';
export const DRAIN_ROUTE_CHAIN = 'drain_route';

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * The nftables table of a client node: natOutgoing (Calico's pool option), and with a tunnel, the
 * VXLAN source filter (only `vxlanPeers` may send to the tunnel port; the rest is counted and dropped)
 * and, given `marks`, the drain's two chains: every new connection that leaves through the tunnel has its
 * gateway's mark put in its conntrack entry (only a connection nobody else marked); the packets of an
 * established connection through a draining gateway get that mark as packet mark, for the fwmark rule.
 */
export function nodeNftSpec(state: ClientNodeState, marks?: DrainMarks): NftTableSpec | undefined {
  const nat = state.natOutgoing;
  const peers = state.vxlan === undefined ? undefined : state.vxlanPeers;
  const drain = state.vxlan !== undefined && marks !== undefined && marks.gateways.size > 0 ? marks : undefined;
  if (nat === undefined && peers === undefined && drain === undefined) return undefined;
  const sets: NftTableSpec['sets'][number][] = [];
  const chains: NftTableSpec['chains'][number][] = [];
  if (drain !== undefined) {
    const byIp = [...drain.gateways].sort((a, b) => requireIpv4(a[0]) - requireIpv4(b[0]));
    const inv = (~drain.mask >>> 0) & 0xffffffff;
    // `rt ip nexthop`: the gateway the route (the resilient group's bucket) chose for this packet. Then the
    // drain's packet mark is cleared: the VXLAN device routes the outer packet with the inner one's mark,
    // and the fwmark rule would send the outer packet into the tunnel again.
    chains.push({
      name: EGRESS_MARK_CHAIN, type: 'filter', hook: 'postrouting', priority: -150, policy: 'accept',
      rules: [
        `oifname "${DEV}" ct mark 0 ct mark set rt ip nexthop map { ${byIp.map(([ip, m]) => `${ip} : ${hex(m)}`).join(', ')} }`,
        `oifname "${DEV}" meta mark and ${hex(drain.mask)} != 0 meta mark set meta mark and ${hex(inv >>> 0)}`,
      ],
    });
    const draining = [...drain.draining].sort((a, b) => a[1] - b[1]);
    // Other mark bits are kept: they may be kube-proxy's or Calico's.
    chains.push({
      name: DRAIN_ROUTE_CHAIN, type: 'filter', hook: 'prerouting', priority: -150, policy: 'accept',
      rules: draining.map(([, m]) => `iifname != "${DEV}" ct direction original ct mark and ${hex(drain.mask)} == ${hex(m)} meta mark set meta mark and ${hex(inv >>> 0)} or ${hex(m)}`),
    });
  }
  if (peers !== undefined && state.vxlan !== undefined) {
    sets.push({ name: VXLAN_PEERS_SET, interval: false, elements: [...new Set(peers)] });
    // A drop in any base chain is final whatever other chains accept, so the priority is not a matter of
    // security; 0 is the filter priority everybody expects.
    chains.push({ name: VXLAN_INPUT_CHAIN, type: 'filter', hook: 'input', priority: 0, policy: 'accept', rules: [vxlanFilterRule(state.vxlan.port)] });
  }
  if (nat !== undefined) {
    sets.push({ name: 'nat_sources', interval: true, elements: nat.sources }, { name: 'nat_exempt', interval: true, elements: nat.exemptDestinations });
    chains.push(natChain());
  }
  return { name: EGW_NFT_TABLE, sets, chains };
}

function natChain(): NftTableSpec['chains'][number] {
  return {
    name: 'postrouting',
    type: 'nat',
    hook: 'postrouting',
    priority: 100,
    policy: 'accept',
    rules: [
      // The inner packets of the tunnel keep the pod's source: the gateway SNATs them, not the node.
      `oifname "${DEV}" return`,
      'ip saddr @nat_sources ip daddr != @nat_exempt masquerade',
    ],
  };
}

/**
 * Plans the changes that bring a node's namespace from `observed` to `desired`, touching only what
 * egw owns (src/linux/ownership.ts). Pure and deterministic: the same inputs give the same plan, and
 * planning against the state the plan produces gives an empty plan.
 *
 * Clients with identical routes share one table. Which kernel table serves a set of clients is decided
 * by where their rules point now (most rules wins), then by identical content, then the lowest free
 * table of the range, so a restart with no memory keeps every table, nexthop group and therefore every
 * flow where it is. A route through several gateways keeps its resilient group id for its whole life;
 * membership changes replace the group in place, which moves only the buckets that must move.
 *
 * Throws `InvalidInput` for a malformed desired state and `NexthopIdsExhausted` when the id range is
 * full; tables running out is reported per client in `problems` (those clients keep what they had).
 */
export function planClientNode(desired: ClientNodeState, observed: ClientNodeObserved, config: ClientNodeConfig): ClientNodePlan {
  const plan: ClientNodePlan = {
    recreateVtep: false, interlock: [], link: [], sysctls: [], fdbAdd: [], ip: [], fdbDel: [], linkDel: [],
    nft: { kind: 'none' }, assignments: [], problems: [],
  };
  const ranges = config.routeTableRanges;
  const vx = desired.vxlan;
  const ourRoutes = observed.routes.filter((r) => r.protocol === PROTO && tableInRanges(r.table, ranges));

  // ---- 1. The tunnel endpoint.
  if (vx !== undefined) {
    const localIp = ip4(vx.localIp, 'vxlan.localIp');
    const mac = tunnelMac(localIp);
    const mtu = vx.mtu ?? (vx.parentDev === undefined ? 1450 : undefined);
    if (vx.parentDev !== undefined && !validIfname(vx.parentDev)) throw new EgwError('InvalidInput', `vxlan.parentDev "${vx.parentDev}" is not an interface name`);
    const link = observed.link;
    if (link === undefined) {
      plan.link.push(
        { line: `link add ${DEV} address ${mac}${mtu === undefined ? '' : ` mtu ${mtu}`} type vxlan id ${vx.vni} dstport ${vx.port} local ${localIp} nolearning${vx.parentDev === undefined ? '' : ` dev ${vx.parentDev}`}`, object: 'vxlan' },
        { line: `link set dev ${DEV} up`, object: 'vxlan' },
      );
    } else {
      const v = link.vxlan;
      if (v === undefined || v.vni !== vx.vni || v.port !== vx.port || v.local !== localIp || v.learning || v.parent !== vx.parentDev) {
        // These cannot change in place. Deleting the device drops every route through it, and a client
        // table left with only `throw` or nothing would fall through to the node's IP: close first.
        plan.recreateVtep = true;
        for (const r of ourRoutes) {
          if (r.nhid !== undefined || r.dev === DEV) {
            plan.interlock.push({ line: `route replace unreachable ${r.dst} table ${r.table} proto ${PROTO}`, object: `table ${r.table}` });
          }
        }
        plan.link.push({ line: `link del ${DEV}`, object: 'vxlan', okIfMissing: true });
        return plan;
      }
      const fix: string[] = [];
      if (link.mac !== mac) fix.push(`address ${mac}`);
      if (mtu !== undefined && link.mtu !== mtu) fix.push(`mtu ${mtu}`);
      if (!link.up || fix.length > 0) plan.link.push({ line: `link set dev ${DEV} ${[...fix, 'up'].join(' ')}`, object: 'vxlan' });
    }
    plan.link.push(...tunnelAddressLines(localIp, link === undefined ? [] : observed.addresses));
    // L4 hashing so that flows, not host pairs, spread over the gateways.
    if (observed.hashPolicy !== 1) plan.sysctls.push({ key: 'net.ipv4.fib_multipath_hash_policy', value: 1 });
    // Decapsulated replies carry the external server's address as source; strict reverse-path
    // filtering on the tunnel would drop them. Loose mode still drops unroutable sources.
    if (observed.rpFilter !== 2) plan.sysctls.push({ key: ifaceSysctlKey(DEV, 'rp_filter'), value: 2 });
  } else if (observed.link !== undefined) {
    plan.linkDel.push({ line: `link del ${DEV}`, object: 'vxlan', okIfMissing: true });
  }
  const tunnel = vx !== undefined;
  const localIp = vx === undefined ? undefined : ip4(vx.localIp, 'vxlan.localIp');

  // ---- 2. Desired groups of clients with identical routes.
  const groups = new Map<string, DesiredGroup>();
  const clientSeen = new Set<string>();
  for (const c of desired.clients) {
    const ip = ip4(c.ip, 'client');
    if (clientSeen.has(ip)) throw new EgwError('InvalidInput', `client ${ip} appears twice`, { hint: 'give each client pod one entry' });
    clientSeen.add(ip);
    const routes = normalizeRoutes(`client ${ip}`, c.routes, tunnel);
    const key = `client|${routesKey(routes)}`;
    const g = groups.get(key) ?? { key, selectors: [], clients: [], returnPath: false, routes };
    g.selectors.push(`from:${ip}/32`);
    g.clients.push(ip);
    groups.set(key, g);
  }
  if (tunnel && desired.returnPath !== undefined) {
    const byIp = new Map<string, string>();
    for (const c of desired.returnPath.clients) {
      const ip = ip4(c.ip, 'return client');
      const node = ip4(c.nodeIp, `return client ${ip} nodeIp`);
      // A client on this very node is reached through the main table; never tunnel to ourselves.
      if (node !== localIp) byIp.set(ip, node);
    }
    const selectors: string[] = [];
    for (const gw of desired.returnPath.gatewayPodIps) {
      const ip = ip4(gw, 'gateway pod');
      const host = observed.routes.find((r) => r.table === MAIN_TABLE && r.dst === `${ip}/32` && r.type === 'unicast' && r.dev !== undefined && r.gateway === undefined);
      if (host?.dev === undefined) {
        plan.problems.push({ object: `gateway pod ${ip}`, code: 'InterfaceNotFound', message: `no main-table route to gateway pod ${ip} names its host interface; its replies are not tunnelled back yet` });
      } else {
        selectors.push(`iif:${host.dev}`);
      }
    }
    if (byIp.size > 0 && selectors.length > 0) {
      const routes: NormRoute[] = [...byIp].map(([ip, node]) => ({ dst: `${ip}/32`, kind: 'via', gateways: [node] }));
      const key = `return|${routesKey(routes)}`;
      groups.set(key, { key, selectors: [...new Set(selectors)].sort(), clients: [...byIp.keys()], returnPath: true, routes });
    }
  }
  // Draining gateways (not in any route): a table each, looked up by a fwmark rule, through the gateway's
  // own nexthop — which exists since the gateway was in use. Its mark is the slot of that nexthop's id.
  const mask = config.drainMarkMask ?? DEFAULT_DRAIN_MARK_MASK;
  const shift = Math.max(0, 31 - Math.clz32(mask & -mask));
  const slots = mask >>> shift;
  const inRangeEarly = (id: number): boolean => id >= config.nexthopIds.min && id <= config.nexthopIds.max;
  const markOfId = (id: number): number | undefined => {
    const slot = id - config.nexthopIds.min + 1;
    return slot >= 1 && slot <= slots ? (slot << shift) >>> 0 : undefined;
  };
  const inUse = new Set<string>();
  for (const g of groups.values()) if (!g.returnPath) for (const r of g.routes) for (const gw of r.gateways) inUse.add(gw);
  const drainMarks = new Map<string, number>();
  if (tunnel) {
    for (const d of desired.draining ?? []) {
      const ip = ip4(d, 'draining gateway');
      if (inUse.has(ip)) continue;
      const nh = observed.nexthops.filter((n) => n.protocol === PROTO && inRangeEarly(n.id) && n.group === undefined && n.gateway === ip).sort((a, b) => a.id - b.id)[0];
      const mark = nh === undefined ? undefined : markOfId(nh.id);
      // Without a marked nexthop its connections cannot be told apart: nothing to keep.
      if (mark === undefined) continue;
      drainMarks.set(ip, mark);
      const key = `drain|${ip}`;
      groups.set(key, { key, selectors: [`fwmark:${hex(mark)}/${hex(mask)}`], clients: [], returnPath: false, routes: [{ dst: '0.0.0.0/0', kind: 'via', gateways: [ip] }] });
    }
  }
  const groupList = [...groups.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const groupOfSelector = new Map<string, DesiredGroup>();
  for (const g of groupList) for (const s of g.selectors) groupOfSelector.set(s, g);

  // ---- 3. What is ours and what is not.
  const inRange = (id: number): boolean => id >= config.nexthopIds.min && id <= config.nexthopIds.max;
  const ourNh = observed.nexthops.filter((n) => n.protocol === PROTO && inRange(n.id));
  const ourSingles = ourNh.filter((n) => n.group === undefined);
  const ourGroups = new Map(ourNh.filter((n) => n.group !== undefined).map((n) => [n.id, n]));
  const gatewayOfNh = new Map(ourSingles.filter((n) => n.gateway !== undefined).map((n) => [n.id, n.gateway!]));
  const usedIds = new Set(observed.nexthops.map((n) => n.id));
  const drainPriority = config.rulePriority - 1;
  const isDrainRule = (r: ObservedRule): boolean => r.priority === drainPriority && r.protocol === PROTO && r.fwmark !== undefined && r.from === undefined && r.iif === undefined && r.to === undefined && r.oif === undefined;
  const ourRules = observed.rules.filter((r) => (r.priority === config.rulePriority && r.protocol === PROTO) || isDrainRule(r));
  const ourRuleSet = new Set(ourRules);
  const foreignTables = new Set<number>();
  for (const r of observed.routes) if (r.protocol !== PROTO && tableInRanges(r.table, ranges)) foreignTables.add(r.table);
  for (const r of observed.rules) if (!ourRuleSet.has(r) && r.table !== undefined) foreignTables.add(r.table);
  const tablesInUse = new Set<number>([...observed.routes.map((r) => r.table), ...observed.rules.flatMap((r) => (r.table === undefined ? [] : [r.table]))]);
  const candidates = new Set<number>();
  for (const r of ourRoutes) if (!foreignTables.has(r.table)) candidates.add(r.table);
  for (const r of ourRules) if (r.table !== undefined && tableInRanges(r.table, ranges) && !foreignTables.has(r.table)) candidates.add(r.table);
  const routesOfTable = new Map<number, ObservedRoute[]>();
  for (const r of ourRoutes) routesOfTable.set(r.table, [...(routesOfTable.get(r.table) ?? []), r]);

  const observedContent = (t: number): string => {
    const rs: NormRoute[] = (routesOfTable.get(t) ?? []).map((r) => {
      if (r.type === 'throw') return { dst: r.dst, kind: 'throw', gateways: [] };
      if (r.type === 'unreachable') return { dst: r.dst, kind: 'unreachable', gateways: [] };
      const members = r.nhid === undefined ? [] : ourGroups.get(r.nhid)?.group ?? [r.nhid];
      const gws = members.map((m) => gatewayOfNh.get(m) ?? `nhid:${m}`).sort((a, b) => (isIp(a) && isIp(b) ? requireIpv4(a) - requireIpv4(b) : a < b ? -1 : 1));
      return { dst: r.dst, kind: 'via', gateways: gws };
    });
    return routesKey(rs);
  };

  const selectorOfRule = (r: ObservedRule): string | undefined => {
    if (isDrainRule(r) && r.table !== undefined) return `fwmark:${normalMark(r.fwmark!)}`;
    if (r.to !== undefined || r.oif !== undefined || r.fwmark !== undefined || r.table === undefined) return undefined;
    if (r.iif !== undefined && r.from === undefined) return `iif:${r.iif}`;
    if (r.from !== undefined && r.iif === undefined) return `from:${r.from}`;
    return undefined;
  };

  // ---- 4. Table per group: most rules already pointing there, then identical content, then free.
  const assigned = new Map<DesiredGroup, number>();
  const taken = new Set<number>();
  const votes: { g: DesiredGroup; t: number; n: number; same: boolean }[] = [];
  const voteMap = new Map<string, { g: DesiredGroup; t: number; n: number; same: boolean }>();
  for (const r of ourRules) {
    const sel = selectorOfRule(r);
    const g = sel === undefined ? undefined : groupOfSelector.get(sel);
    if (g === undefined || r.table === undefined || !candidates.has(r.table)) continue;
    const k = `${g.key}#${r.table}`;
    const v = voteMap.get(k) ?? { g, t: r.table, n: 0, same: observedContent(r.table) === routesKey(g.routes) };
    v.n++;
    voteMap.set(k, v);
  }
  votes.push(...voteMap.values());
  votes.sort((a, b) => b.n - a.n || Number(b.same) - Number(a.same) || (a.g.key < b.g.key ? -1 : a.g.key > b.g.key ? 1 : 0) || a.t - b.t);
  for (const v of votes) {
    if (assigned.has(v.g) || taken.has(v.t)) continue;
    assigned.set(v.g, v.t);
    taken.add(v.t);
  }
  const retainedSelectors = new Set<string>();
  const contentTables = [...candidates].sort((a, b) => a - b);
  for (const g of groupList) {
    if (assigned.has(g)) continue;
    const want = routesKey(g.routes);
    let t = contentTables.find((c) => !taken.has(c) && observedContent(c) === want);
    t ??= freeTable(ranges, new Set([...tablesInUse, ...taken]));
    if (t === undefined) {
      for (const s of g.selectors) retainedSelectors.add(s);
      plan.problems.push(...g.clients.map((c) => ({
        object: g.returnPath ? `return route ${c}` : `client ${c}`,
        code: 'RouteTablesExhausted' as const,
        message: 'no free route table in routeTableRanges; the client keeps its previous routing',
      })));
      continue;
    }
    assigned.set(g, t);
    taken.add(t);
  }
  // Tables still used by the rules of clients we could not place are left exactly as they are.
  const retainedTables = new Set<number>();
  const retainedRules = new Set<ObservedRule>();
  for (const r of ourRules) {
    const sel = selectorOfRule(r);
    if (sel !== undefined && retainedSelectors.has(sel) && r.table !== undefined) {
      retainedRules.add(r);
      if (!taken.has(r.table)) retainedTables.add(r.table);
    }
  }

  // ---- 5. Peers (tunnel endpoints) and their nexthops.
  const peers = new Set<string>();
  for (const [g] of assigned) for (const r of g.routes) for (const gw of r.gateways) peers.add(gw);
  const retainedNh = new Set<number>();
  for (const t of retainedTables) {
    for (const r of routesOfTable.get(t) ?? []) {
      if (r.nhid === undefined) continue;
      retainedNh.add(r.nhid);
      for (const m of ourGroups.get(r.nhid)?.group ?? []) retainedNh.add(m);
    }
  }
  // A peer's nexthop id gives its drain slot, so peers take the first `slots` ids and groups the rest
  // (either falls back to the other part when its own is full; a peer without a slot cannot drain).
  const allocate = (peer = false): number => {
    const split = Math.min(config.nexthopIds.max + 1, config.nexthopIds.min + slots);
    const order = peer ? [[config.nexthopIds.min, split - 1], [split, config.nexthopIds.max]] : [[split, config.nexthopIds.max], [config.nexthopIds.min, split - 1]];
    for (const [lo, hi] of order) {
      for (let id = lo!; id <= hi!; id++) {
        if (!usedIds.has(id)) {
          usedIds.add(id);
          return id;
        }
      }
    }
    throw new EgwError('NexthopIdsExhausted', `no free nexthop id in ${config.nexthopIds.min}-${config.nexthopIds.max}`, {
      hint: 'widen the nexthop id range or reduce the number of distinct gateway sets',
    });
  };
  const nhLines: BatchCommand[] = [];
  const peerId = new Map<string, number>();
  const keptSingles = new Set<number>();
  const sortedPeers = [...peers].sort((a, b) => requireIpv4(a) - requireIpv4(b));
  for (const p of sortedPeers) {
    const existing = ourSingles.filter((n) => n.gateway === p).sort((a, b) => a.id - b.id)[0];
    if (existing !== undefined) {
      peerId.set(p, existing.id);
      keptSingles.add(existing.id);
      if (existing.dev !== DEV || !existing.onlink || existing.blackhole) {
        nhLines.push({ line: `nexthop replace id ${existing.id} via ${p} dev ${DEV} onlink proto ${PROTO}`, object: `peer ${p}` });
      }
    } else {
      const id = allocate(true);
      peerId.set(p, id);
      keptSingles.add(id);
      nhLines.push({ line: `nexthop add id ${id} via ${p} dev ${DEV} onlink proto ${PROTO}`, object: `peer ${p}` });
    }
  }

  // ---- 6. Routes, groups and rules per assigned table.
  const res = config.resilient;
  const groupLines: BatchCommand[] = [];
  const routeSets: { kind: NormRoute['kind']; cmd: BatchCommand }[] = [];
  const routeDels: BatchCommand[] = [];
  const keptGroups = new Set<number>();
  const ruleAdds: BatchCommand[] = [];
  const drainRuleAdds: BatchCommand[] = [];
  const drainRouteSets: BatchCommand[] = [];
  const ruleDels: BatchCommand[] = [];
  const desiredRuleKeys = new Set<string>();
  for (const [g, t] of [...assigned].sort((a, b) => a[1] - b[1])) {
    const object = g.returnPath ? `return table ${t}` : `table ${t}`;
    const sorted = g.clients.map((c) => [requireIpv4(c), c] as const).sort((a, b) => a[0] - b[0]).map(([, c]) => c);
    if (!g.key.startsWith('drain|')) plan.assignments.push({ table: t, clients: sorted, returnPath: g.returnPath });
    const have = new Map((routesOfTable.get(t) ?? []).filter((r) => r.metric === 0).map((r) => [r.dst, r]));
    for (const r of g.routes) {
      const o = have.get(r.dst);
      let target: string;
      let nhid: number | undefined;
      if (r.kind === 'via' && r.gateways.length === 1) {
        nhid = peerId.get(r.gateways[0]!)!;
        target = `${r.dst} table ${t} proto ${PROTO} nhid ${nhid}`;
      } else if (r.kind === 'via') {
        const members = r.gateways.map((gw) => peerId.get(gw)!);
        const current = o?.nhid === undefined ? undefined : ourGroups.get(o.nhid);
        const reusable = current !== undefined && !keptGroups.has(current.id) && current.groupType === 'resilient' && current.resilient !== undefined;
        if (reusable) {
          nhid = current.id;
          const ra = current.resilient!;
          if (!sameMembers(current.group ?? [], members) || ra.idleTimer !== res.idleTimer || ra.unbalancedTimer !== res.unbalancedTimer) {
            // In place: same id, same bucket count (the kernel cannot change it), so the routes and the
            // buckets of the members that stay are untouched.
            groupLines.push({ line: `nexthop replace id ${nhid} group ${members.join('/')} type resilient buckets ${ra.buckets} idle_timer ${res.idleTimer} unbalanced_timer ${res.unbalancedTimer} proto ${PROTO}`, object });
          }
        } else {
          nhid = allocate();
          groupLines.push({ line: `nexthop add id ${nhid} group ${members.join('/')} type resilient buckets ${res.buckets} idle_timer ${res.idleTimer} unbalanced_timer ${res.unbalancedTimer} proto ${PROTO}`, object });
        }
        keptGroups.add(nhid);
        target = `${r.dst} table ${t} proto ${PROTO} nhid ${nhid}`;
      } else {
        target = `${r.kind} ${r.dst} table ${t} proto ${PROTO}`;
      }
      const same = o !== undefined && (r.kind === 'via' ? o.type === 'unicast' && o.nhid === nhid : o.type === r.kind);
      if (!same) {
        if (g.key.startsWith('drain|')) drainRouteSets.push({ line: `route replace ${target}`, object: `drain table ${t}` });
        else routeSets.push({ kind: r.kind, cmd: { line: `route replace ${target}`, object } });
      }
      have.delete(r.dst);
    }
    for (const o of routesOfTable.get(t) ?? []) {
      if (o.metric !== 0 || have.has(o.dst)) routeDels.push(routeDel(o, object));
    }
    for (const s of g.selectors) {
      desiredRuleKeys.add(`${s}|${t}`);
    }
  }
  // Tables of ours that no group uses any more (and nobody we could not place still needs).
  for (const [t, rs] of routesOfTable) {
    if (taken.has(t) || retainedTables.has(t)) continue;
    for (const o of rs) routeDels.push(routeDel(o, `table ${t}`));
  }
  // Rules: add what is missing, remove what is not desired (and duplicates).
  const seenRuleKeys = new Set<string>();
  for (const r of ourRules) {
    if (retainedRules.has(r)) continue;
    if (r.table === undefined && ruleAction(r) === 'unreachable' && r.from !== undefined) {
      // A fail-closed placeholder (the CNI plugin's). It stays while it is the only thing between a pod
      // and the main table: for a client that could not be placed, and for an address no known pod has
      // yet (the Pod record shows its IP only after the CNI ADD). It goes once the client's rule replaces
      // it, or once the pod with that address is known not to be a client.
      if (retainedSelectors.has(`from:${r.from}`)) continue;
      const replaced = [...desiredRuleKeys].some((k) => k.startsWith(`from:${r.from}|`));
      const ip = r.from.endsWith('/32') ? r.from.slice(0, -3) : r.from;
      if (!replaced && desired.knownPodIps !== undefined && !desired.knownPodIps.includes(ip)) continue;
    }
    const sel = selectorOfRule(r);
    const key = sel === undefined ? undefined : `${sel}|${r.table}`;
    if (key !== undefined && desiredRuleKeys.has(key) && !seenRuleKeys.has(key)) {
      seenRuleKeys.add(key);
      continue;
    }
    ruleDels.push({ line: ruleDelLine(r), object: sel ?? `rule ${r.priority}`, okIfMissing: true });
  }
  for (const key of [...desiredRuleKeys].sort()) {
    if (seenRuleKeys.has(key)) continue;
    const [sel, table] = key.split('|') as [string, string];
    const [kind, value] = [sel.slice(0, sel.indexOf(':')), sel.slice(sel.indexOf(':') + 1)];
    if (kind === 'fwmark') drainRuleAdds.push({ line: `rule add priority ${drainPriority} fwmark ${value} table ${table} protocol ${PROTO}`, object: `drain ${value}` });
    else ruleAdds.push({ line: `rule add priority ${config.rulePriority} ${kind === 'iif' ? `iif ${value}` : `from ${value}`} table ${table} protocol ${PROTO}`, object: sel });
  }

  // ---- 7. Neighbours and FDB of the peers.
  const neighSets: BatchCommand[] = [];
  const neighDels: BatchCommand[] = [];
  const keepPeerIps = new Set([...peers, ...[...retainedNh].flatMap((id) => { const g = gatewayOfNh.get(id); return g === undefined ? [] : [g]; })]);
  if (tunnel) {
    for (const p of sortedPeers) {
      const mac = tunnelMac(p);
      const n = observed.neighbours.find((x) => x.ip === p);
      if (n === undefined || n.mac !== mac || !n.permanent) {
        neighSets.push({ line: `neigh replace ${p} lladdr ${mac} dev ${DEV} nud permanent`, object: `peer ${p}` });
      }
      const entries = observed.fdb.filter((f) => f.mac === mac);
      if (!entries.some((f) => f.dst === p)) {
        plan.fdbAdd.push({ line: `fdb replace ${mac} dev ${DEV} dst ${p} self permanent`, object: `peer ${p}` });
      }
      for (const f of entries) {
        if (f.dst !== p) plan.fdbDel.push({ line: `fdb del ${mac} dev ${DEV}${f.dst === undefined ? '' : ` dst ${f.dst}`} self`, object: `peer ${p}`, okIfMissing: true });
      }
    }
    const keepMacs = new Set([...keepPeerIps].map(tunnelMac));
    for (const n of observed.neighbours) {
      if (!keepPeerIps.has(n.ip)) neighDels.push({ line: `neigh del ${n.ip} dev ${DEV}`, object: `peer ${n.ip}`, okIfMissing: true });
    }
    for (const f of observed.fdb) {
      if (!keepMacs.has(f.mac)) plan.fdbDel.push({ line: `fdb del ${f.mac} dev ${DEV}${f.dst === undefined ? '' : ` dst ${f.dst}`} self`, object: `fdb ${f.mac}`, okIfMissing: true });
    }
  }

  // ---- 8. Nexthops nobody needs any more: groups first, then the single nexthops they contained.
  const nhDels: BatchCommand[] = [];
  for (const n of [...ourGroups.values()].sort((a, b) => a.id - b.id)) {
    if (!keptGroups.has(n.id) && !retainedNh.has(n.id)) nhDels.push({ line: `nexthop del id ${n.id}`, object: `nexthop ${n.id}`, okIfMissing: true });
  }
  for (const n of [...ourSingles].sort((a, b) => a.id - b.id)) {
    if (!keptSingles.has(n.id) && !retainedNh.has(n.id)) nhDels.push({ line: `nexthop del id ${n.id}`, object: `nexthop ${n.id}`, okIfMissing: true });
  }

  routeSets.sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
  plan.ip = [
    ...neighSets,
    ...nhLines,
    // A draining gateway's table and rule go in before the group change that takes it out of the new-flow
    // selection, so that its established connections never see a moment without it.
    ...drainRouteSets,
    ...drainRuleAdds,
    ...groupLines,
    ...routeSets.map((r) => r.cmd),
    ...ruleAdds,
    ...ruleDels,
    ...routeDels,
    ...nhDels,
    ...neighDels,
  ];
  if (!tunnel) {
    // The device goes last and takes its neighbours and FDB with it.
    plan.fdbDel = [];
  }
  const gatewayMarks = new Map<string, number>();
  for (const [p, id] of peerId) {
    const m = markOfId(id);
    if (m !== undefined) gatewayMarks.set(p, m);
  }
  plan.nft = planNftTable(nodeNftSpec(desired, { mask, gateways: gatewayMarks, draining: drainMarks }), observed.nft, EGW_NFT_TABLE);
  return plan;
}

/** `0x100/0x3f00` as iproute2 prints it, in our canonical form (lower-case hex, no padding). */
function normalMark(text: string): string {
  const [v, m] = text.split('/');
  const n = (t: string | undefined): string => (t === undefined ? '' : hex(Number(t) >>> 0));
  return m === undefined ? n(v) : `${n(v)}/${n(m)}`;
}

function isIp(text: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(text);
}

function routeDel(o: ObservedRoute, object: string): BatchCommand {
  const type = o.type === 'unicast' ? '' : `${o.type} `;
  return { line: `route del ${type}${o.dst} table ${o.table} proto ${o.protocol} metric ${o.metric}`, object, okIfMissing: true };
}

/**
 * The drop action of a rule without a table (`ip -N` prints the kernel's number: 6 blackhole,
 * 7 unreachable, 8 prohibit), or undefined.
 */
function ruleAction(r: ObservedRule): 'blackhole' | 'unreachable' | 'prohibit' | undefined {
  switch (r.action) {
    case 'blackhole':
    case '6':
      return 'blackhole';
    case 'unreachable':
    case '7':
      return 'unreachable';
    case 'prohibit':
    case '8':
      return 'prohibit';
    default:
      return undefined;
  }
}

function ruleDelLine(r: ObservedRule): string {
  const parts = [`rule del priority ${r.priority}`];
  if (r.from !== undefined) parts.push(`from ${r.from}`);
  if (r.to !== undefined) parts.push(`to ${r.to}`);
  if (r.iif !== undefined) parts.push(`iif ${r.iif}`);
  if (r.oif !== undefined) parts.push(`oif ${r.oif}`);
  if (r.fwmark !== undefined) parts.push(`fwmark ${r.fwmark}`);
  if (r.table !== undefined) parts.push(`table ${r.table}`);
  parts.push(`protocol ${r.protocol}`);
  // A rule with another action (the CNI plugin's fail-closed placeholder is `unreachable`) is named by
  // its action, so that the delete can never match the table rule just added for the same source.
  const action = ruleAction(r);
  if (r.table === undefined && action !== undefined) parts.push(action);
  return parts.join(' ');
}
