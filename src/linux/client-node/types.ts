import type { IdRange } from '../ownership.js';
import { DEFAULT_EGRESS_RULE_PRIORITY, DEFAULT_NEXTHOP_ID_RANGE, DEFAULT_ROUTE_TABLE_RANGES } from '../ownership.js';

/** egw's VXLAN tunnel endpoint on a node (FelixConfiguration `egressIPVXLANVNI` / `egressIPVXLANPort`). */
export interface VxlanSpec {
  vni: number;
  port: number;
  /**
   * The node's own underlay address: the outer source of what it sends, and the address its peers
   * tunnel to. The device's MAC is derived from it ({@link tunnelMac}).
   */
  localIp: string;
  /** Bind the tunnel to this underlay device (optional). */
  parentDev?: string;
  /** Device MTU. Default: the kernel's choice when `parentDev` is given, else 1450 (1500 − 50 bytes of VXLAN). */
  mtu?: number;
}

/**
 * One LPM route of a client's table.
 * - `via-gateways`: through these gateway pod IPs over the tunnel (one gateway: a single nexthop;
 *   several: a resilient nexthop group). An empty list means no usable gateway: the route becomes
 *   `unreachable` (fail closed).
 * - `throw`: leave this table and continue with the next rules (main table: the normal way, natOutgoing).
 * - `unreachable`: drop with "no route to host" (fail closed).
 */
export type EgressRoute =
  | { cidr: string; kind: 'via-gateways'; gateways: readonly string[] }
  | { cidr: string; kind: 'throw' }
  | { cidr: string; kind: 'unreachable' };

/** A local client pod with egress configured: one `ip rule from <ip>` to a table holding `routes`. */
export interface EgressClient {
  ip: string;
  routes: readonly EgressRoute[];
}

/** A client pod that uses one of this node's gateways, and the node it lives on. */
export interface ReturnClient {
  ip: string;
  nodeIp: string;
}

/**
 * Return traffic on a gateway's node: replies leaving the local gateway pods towards client pods are
 * tunnelled back to the client's node. The driver finds each gateway pod's host-side interface from the
 * main table's route to the pod IP and adds `ip rule iif <that interface>` to the return table.
 */
export interface ReturnPath {
  gatewayPodIps: readonly string[];
  clients: readonly ReturnClient[];
}

/**
 * Calico's `natOutgoing` on this node: traffic from `sources` (natOutgoing pools) to anything outside
 * `exemptDestinations` (all pools, cluster CIDRs) is masqueraded to the node's address. Tunnelled
 * egress traffic is never masqueraded.
 */
export interface NatOutgoing {
  sources: readonly string[];
  exemptDestinations: readonly string[];
}

/**
 * Everything egw wants in a node's network namespace. The driver owns only what is described in
 * src/linux/ownership.ts; anything else is left alone.
 */
export interface ClientNodeState {
  /** Undefined: no tunnel (every `via-gateways` route becomes `unreachable`, return paths are dropped). */
  vxlan: VxlanSpec | undefined;
  clients: readonly EgressClient[];
  returnPath?: ReturnPath;
  natOutgoing?: NatOutgoing;
  /**
   * The only outer sources the node accepts VXLAN (UDP `vxlan.port`) from: the cluster's nodes and
   * gateway pods. With a tunnel, every other source is dropped and counted in the input chain of egw's
   * nft table (the set `vxlan_peers`), so a host that reaches the port cannot inject decapsulated
   * packets with spoofed inner sources. Undefined: no filter (only for tests that build a state by
   * hand; the agent always sets it).
   */
  vxlanPeers?: readonly string[];
  /**
   * The addresses of the pods on this node that the caller knows (clients or not). A fail-closed
   * placeholder rule (`from <ip> unreachable`, the CNI plugin's) for an address outside this list is
   * kept: its pod is not known yet. Undefined: every placeholder that is not a desired client goes.
   */
  knownPodIps?: readonly string[];
  /**
   * Gateways that take no new flows but keep carrying the established ones (a terminating gateway in its
   * grace period; calc's `draining`): connections whose conntrack mark says they went through one of them
   * are routed to it by a fwmark rule before the client rules; everything else follows the client tables,
   * where it no longer is. Ignored for an address that is also in a route (it is in use).
   */
  draining?: readonly string[];
}

/** Resilient nexthop group parameters (see `ip-nexthop(8)`). */
export interface ResilientSpec {
  /** Buckets per group; fixed at creation (the kernel refuses to change it later). */
  buckets: number;
  /** Seconds a bucket must be idle before it may move to a new or underweight gateway. */
  idleTimer: number;
  /** Seconds after which an unbalanced group is rebalanced even if that moves busy buckets; 0 = never. */
  unbalancedTimer: number;
}

/** The ownership parameters of the client-node driver (from FelixConfiguration and egw's constants). */
export interface ClientNodeConfig {
  /** FelixConfiguration `routeTableRanges`. */
  routeTableRanges: readonly IdRange[];
  /** FelixConfiguration `egressIPRoutingRulePriority`. */
  rulePriority: number;
  nexthopIds: IdRange;
  resilient: ResilientSpec;
  /** The mark bits of the drain (contiguous; one slot per value); default DEFAULT_DRAIN_MARK_MASK (src/linux/ownership.ts). */
  drainMarkMask?: number;
}

/** Calico's defaults plus egw's choices. */
export const DEFAULT_CLIENT_NODE_CONFIG: ClientNodeConfig = {
  routeTableRanges: DEFAULT_ROUTE_TABLE_RANGES,
  rulePriority: DEFAULT_EGRESS_RULE_PRIORITY,
  nexthopIds: DEFAULT_NEXTHOP_ID_RANGE,
  resilient: { buckets: 128, idleTimer: 120, unbalancedTimer: 0 },
};
