/**
 * From calc's answer to the Linux driver's question: the mapping of a {@link NodeEgressState} onto the
 * client-node driver's {@link ClientNodeState} and {@link ClientNodeConfig}. Pure.
 */
import type { IPPool } from '../api/index.js';
import { parseCidr, formatCidr } from '../api/index.js';
import type { NodeEgressState } from '../calc/index.js';
import type { ClientNodeConfig, ClientNodeState, EgressClient, NatOutgoing } from '../linux/index.js';
import { DEFAULT_CLIENT_NODE_CONFIG } from '../linux/index.js';

/** What the mapping needs besides calc's result. */
export interface DataplaneContext {
  /** `--node-ip`: the tunnel's local address when the Node record has none. */
  nodeIp?: string | undefined;
  /** Every IPPool (natOutgoing sources and exemptions). */
  pools: readonly IPPool[];
  /** Extra cluster destinations (`--cluster-cidr`, e.g. the service CIDR): never masqueraded. */
  extraClusterCidrs: readonly string[];
  /** Program Calico's natOutgoing for the natOutgoing pools (default true). */
  natOutgoing: boolean;
  /** VXLAN device MTU and underlay device (optional). */
  vxlanMtu?: number | undefined;
  vxlanParentDev?: string | undefined;
}

/** The IPv4 CIDRs of the pools, canonical, in the order given. */
function ipv4Cidrs(pools: readonly IPPool[], pick: (p: IPPool) => boolean): string[] {
  const out: string[] = [];
  for (const p of pools) {
    if (!pick(p)) continue;
    const parsed = parseCidr(p.spec.cidr);
    if (parsed !== undefined && parsed.cidr.version === 4) out.push(formatCidr(parsed.cidr));
  }
  return [...new Set(out)];
}

/**
 * The cluster's own destinations for calc (`setClusterCidrs`): every IPv4 pool and the extra CIDRs,
 * sorted and de-duplicated so that an unchanged set compares equal.
 */
export function clusterCidrsOf(pools: readonly IPPool[], extra: readonly string[]): string[] {
  return [...new Set([...ipv4Cidrs(pools, () => true), ...extra])].sort();
}

/**
 * Calico's natOutgoing on this node: sources are the natOutgoing pools (disabled ones too: their pods
 * keep their addresses), exempt are all pools and the extra cluster CIDRs. Undefined when no pool asks
 * for it or the agent was told not to.
 */
export function natOutgoingOf(ctx: DataplaneContext): NatOutgoing | undefined {
  if (!ctx.natOutgoing) return undefined;
  const sources = ipv4Cidrs(ctx.pools, (p) => p.spec.natOutgoing === true);
  if (sources.length === 0) return undefined;
  const exempt = [...new Set([...ipv4Cidrs(ctx.pools, () => true), ...ctx.extraClusterCidrs.filter((c) => !c.includes(':'))])].sort();
  return { sources: sources.sort(), exemptDestinations: exempt };
}

/**
 * The kernel state the node must have for `result`:
 * - `vxlan` from calc's VNI/port and the node address (the Node record's, else `ctx.nodeIp`); none when
 *   egress is disabled or no address is known — the driver then turns every gateway route into
 *   `unreachable` (fail closed) rather than leaving the clients without rules;
 * - every client of every table with the table's routes (the driver groups identical route sets into
 *   shared tables itself; calc's table ids are its own bookkeeping);
 * - the return path on nodes with gateway pods; natOutgoing from the pools.
 *
 * The config carries `routeTableRanges` and `egressIPRoutingRulePriority` from FelixConfiguration.
 */
export function clientNodeStateOf(result: NodeEgressState, ctx: DataplaneContext): { state: ClientNodeState; config: ClientNodeConfig } {
  const localIp = result.vxlan?.localIp ?? ctx.nodeIp;
  const vxlan =
    result.vxlan === undefined || localIp === undefined
      ? undefined
      : {
          vni: result.vxlan.vni,
          port: result.vxlan.port,
          localIp,
          ...(ctx.vxlanMtu === undefined ? {} : { mtu: ctx.vxlanMtu }),
          ...(ctx.vxlanParentDev === undefined ? {} : { parentDev: ctx.vxlanParentDev }),
        };
  const clients: EgressClient[] = [];
  for (const t of result.tables) for (const ip of t.clientIps) clients.push({ ip, routes: t.routes });
  const nat = natOutgoingOf(ctx);
  const state: ClientNodeState = {
    vxlan,
    clients,
    ...(vxlan !== undefined && result.returnPath !== undefined ? { returnPath: result.returnPath } : {}),
    ...(nat === undefined ? {} : { natOutgoing: nat }),
    // With a tunnel, VXLAN is accepted from the cluster's nodes and gateways only (docs/security.md).
    ...(vxlan === undefined ? {} : { vxlanPeers: result.tunnelPeers }),
    // The CNI plugin's placeholders of pods calc does not know yet stay until it does.
    knownPodIps: result.localPodIps,
    // Terminating gateways keep their established flows until they are gone (docs/linux-dataplane.md).
    ...(vxlan === undefined || result.draining.length === 0 ? {} : { draining: result.draining.map((g) => g.ip) }),
  };
  const config: ClientNodeConfig = {
    ...DEFAULT_CLIENT_NODE_CONFIG,
    routeTableRanges: result.routeTableRanges.map((r) => ({ min: r.min, max: r.max })),
    rulePriority: result.rulePriority,
  };
  return { state, config };
}
