/**
 * The inputs and outputs of egw's egress calculation (docs/egress-calc.md). Plain data: everything here
 * can be compared with deep equality and printed as JSON.
 */
import type { EgressGateway, EgressGatewayPolicy, FelixConfiguration, Namespace, Node, Pod } from '../api/index.js';

/** The resources calc reads, as validated by the agent at the boundary (invalid ones are left out). */
export type CalcResource = Pod | Namespace | Node | EgressGatewayPolicy | EgressGateway | FelixConfiguration;

/** The kinds of {@link CalcResource}. */
export type CalcKind = CalcResource['kind'];

/**
 * The stored maxNextHops choice of one client pod: which gateways each of its gateway rules uses.
 * Written by the agent of the client's node (calc says what to write), read by every agent (the load of
 * each gateway is the number of records naming it, cluster-wide). Kept for the pod's life.
 */
export interface EgressNextHops {
  /** The client pod, `namespace/name`. */
  client: string;
  /** The client pod's `metadata.uid` (its key when it has none): a re-created pod starts afresh. */
  podUID: string;
  /** The node the client runs on; the agent of that node owns the record. */
  node: string;
  /**
   * By selection ({@link selectionKey}): the maxNextHops in force when the choice was first made (later
   * changes of the annotation or policy do not apply to a running pod) and the chosen gateway pods
   * (`namespace/name`, sorted).
   */
  rules: Readonly<Record<string, NextHopsChoice>>;
}

/** One rule's choice in an {@link EgressNextHops} record. */
export interface NextHopsChoice {
  maxNextHops: number;
  gateways: readonly string[];
}

/** The client node's own view of a gateway, from its health polls (see {@link PollTracker}). */
export interface GatewayHealth {
  /** The gateway pod, `namespace/name`. */
  gateway: string;
  /** The address that was polled; a verdict about another address (a re-created pod) is ignored. */
  ip: string;
  /** False after `egressGatewayPollFailureCount` consecutive failed polls; true after one success. */
  up: boolean;
}

/** A table calc chose earlier, fed back so that table ids stay put (see {@link EgressTable.key}). */
export interface TableBinding {
  id: number;
  key: string;
}

/** Everything calc reads, in one object (for {@link computeNodeEgress} and tests). */
export interface EgressCalcSnapshot {
  /** The node whose desired state is computed (its agent). */
  nodeName: string;
  /** Pods, Namespaces, Nodes, EgressGatewayPolicies, FelixConfigurations (`default`, `node.<nodeName>`). */
  resources: readonly CalcResource[];
  /** Every stored {@link EgressNextHops} record of the cluster. */
  nextHops?: readonly EgressNextHops[];
  /**
   * Destinations that belong to the cluster and never go through a gateway: the IP pools, the service
   * CIDR, the node subnets. Node addresses not covered by these are added one by one.
   */
  clusterCidrs?: readonly string[];
  /** This node's poll verdicts. */
  gatewayHealth?: readonly GatewayHealth[];
  /** The tables of the previous result. */
  previousTables?: readonly TableBinding[];
}

/**
 * One LPM route of a client table. The shape of the Linux driver's `EgressRoute`:
 * `via-gateways` through the gateway pod IPs (sorted; never empty here), `throw` back to the main table
 * (normal routing), `unreachable` (fail closed).
 */
export type CalcRoute =
  | { cidr: string; kind: 'via-gateways'; gateways: readonly string[] }
  | { cidr: string; kind: 'throw' }
  | { cidr: string; kind: 'unreachable' };

/** A routing table shared by the local clients whose routes are identical. */
export interface EgressTable {
  /** Kernel table number, from `routeTableRanges`. */
  id: number;
  /** The identity of the route set (feed it back as a {@link TableBinding}). */
  key: string;
  /** Every route of the table: the cluster's `throw` routes first in address order, then the client routes. */
  routes: readonly CalcRoute[];
  /** The client pod IPs whose `ip rule` points here, sorted. */
  clientIps: readonly string[];
}

/** A gateway that a local client's routes name: what the tunnel needs to reach it. */
export interface GatewayPeer {
  /** `namespace/name`. */
  pod: string;
  ip: string;
  nodeName: string;
  /** The gateway node's address (VXLAN FDB destination, Calico style); undefined when unknown. */
  nodeIp: string | undefined;
  /** True when the gateway runs on this node. */
  local: boolean;
}

/** A remote gateway this node must poll: `GET http://ip:port/readiness`. */
export interface PollTarget {
  /** `namespace/name`. */
  gateway: string;
  ip: string;
  /** The container port named `health`. */
  port: number;
}

/** A remote client pod that uses one of this node's gateways, and the node to tunnel its replies to. */
export interface ReturnClient {
  ip: string;
  nodeIp: string;
}

/** Return traffic on a gateway's node (the Linux driver's `ReturnPath`). */
export interface ReturnPath {
  /** The local gateway pods' IPs, sorted. */
  gatewayPodIps: readonly string[];
  /** Remote clients that may send through them, sorted by IP. */
  clients: readonly ReturnClient[];
}

/** Why a rule, or a whole client, is failed closed or skipped. Stable strings for logs and status. */
export type CalcReason =
  | 'policy-not-found'
  | 'policy-has-no-usable-rule'
  | 'invalid-selector'
  | 'invalid-namespace-selector'
  | 'no-gateway-matches'
  | 'no-gateway-ready'
  | 'no-gateway-allowed'
  | 'cluster-destination'
  | 'invalid-destination'
  | 'ipv6-destination'
  | 'duplicate-destination'
  | 'route-tables-exhausted'
  | 'invalid-pod'
  | 'invalid-namespace';

/**
 * What the agent could read of a stored Pod that failed validation: enough to fail its traffic closed
 * (its node and address), never enough to route it. See {@link invalidPodFacts}.
 */
export interface InvalidPod {
  /** `namespace/name`, from the datastore key. */
  key: string;
  namespace: string;
  node: string | undefined;
  /** Its IPv4 address, when one of `status.podIP`/`status.podIPs` is one. */
  ip: string | undefined;
  hostNetwork: boolean;
  finished: boolean;
  /** The stored pod carries egress annotations of its own (or annotations that cannot be read). */
  egressAnnotated: boolean;
  /** Why it is invalid (validation's messages). */
  message: string;
}

/** What one rule of a local client does. */
export interface ClientRuleStatus {
  destination: string;
  /** `skipped`: the rule is not programmed (see `reason`). */
  action: 'gateways' | 'throw' | 'unreachable' | 'skipped';
  /** The gateways used (`gateways`), sorted by IP. */
  gateways: readonly { pod: string; ip: string }[];
  reason?: CalcReason;
  /** The policy rule's description, when it has one. */
  description?: string;
}

/** The egress state of one local client pod, for `egw lab status`, `egw status` and logs. */
export interface ClientStatus {
  /** `namespace/name`. */
  pod: string;
  ip: string | undefined;
  /** Whose annotations apply (for a client failed closed as invalid: the object that is invalid). */
  source: 'namespace' | 'pod';
  /** `invalid`: the Pod or its Namespace failed validation; all its egress drops (reason `invalid-*`). */
  method: 'selector' | 'policy' | 'invalid';
  /** The EgressGatewayPolicy named (method `policy`). */
  policy?: string;
  /** The table its rule points at; undefined while it has no IP or when tables ran out. */
  table: number | undefined;
  /**
   * `routed`: every gateway rule has a gateway; `partly-fail-closed`: some rules drop; `fail-closed`: all
   * egress through gateways drops; `no-ip`: no rule yet; `no-table`: routeTableRanges exhausted and no
   * fail-closed table either.
   */
  state: 'routed' | 'partly-fail-closed' | 'fail-closed' | 'no-ip' | 'no-table';
  rules: readonly ClientRuleStatus[];
  /** Annotations that were ignored and why, in words. */
  notes: readonly string[];
}

/** A local pod with egress annotations that is not a client, and why (troubleshooting). */
export interface IgnoredPod {
  pod: string;
  reason: string;
}

/** A gateway pod on this node. */
export interface LocalGateway {
  pod: string;
  ip: string | undefined;
  /** Datastore readiness (Running, IP, Ready condition, not terminating). */
  ready: boolean;
  /** Why it is not ready. */
  reason?: string;
}

/** A problem of the whole node's calculation (per-client problems are in {@link ClientStatus}). */
export interface CalcIssue {
  code: 'RouteTablesExhausted' | 'NodeAddressUnknown' | 'InvalidClusterCidr' | 'GatewayRefused';
  message: string;
}

/** The VXLAN endpoint (FelixConfiguration `egressIPVXLANVNI`, `egressIPVXLANPort`). */
export interface CalcVxlan {
  vni: number;
  port: number;
  /** This node's address (the Node's InternalIP); undefined when unknown (see issues). */
  localIp: string | undefined;
}

/**
 * The desired egress state of one node. Depends only on the current inputs (the maxNextHops records and
 * table bindings being inputs too). Lists are sorted, so equal inputs give deep-equal results.
 */
export interface NodeEgressState {
  nodeName: string;
  /** FelixConfiguration `egressIPSupport` of `default`. */
  egressIPSupport: 'Disabled' | 'EnabledPerNamespace' | 'EnabledPerNamespaceOrPerPod';
  /** Undefined when egress is disabled: nothing to program. */
  vxlan: CalcVxlan | undefined;
  /** `egressIPRoutingRulePriority`. */
  rulePriority: number;
  /** `routeTableRanges`. */
  routeTableRanges: readonly { min: number; max: number }[];
  /** `egressGatewayPollInterval` (duration text) and `egressGatewayPollFailureCount`. */
  poll: { interval: string; failureCount: number };
  /** The cluster destinations every table throws (never through a gateway), in address order. */
  clusterThrows: readonly string[];
  tables: readonly EgressTable[];
  /** Local clients, by pod key. */
  clients: readonly ClientStatus[];
  ignored: readonly IgnoredPod[];
  /** Gateways named by the tables, sorted by IP. */
  gateways: readonly GatewayPeer[];
  /**
   * Terminating gateways that local clients' rules used and that are not in `gateways`, sorted by IP: they
   * take no new flows (they are in no route) but carry the established ones until they are gone
   * (docs/egress-calc.md, "Gateway maintenance"). Their tunnel (neighbour, FDB, nexthop) must stay.
   */
  draining: readonly GatewayPeer[];
  /**
   * The outer sources this node accepts VXLAN from: every known node address and the gateways in
   * `gateways`, sorted by address (empty when egress is disabled). Anything else is dropped.
   */
  tunnelPeers: readonly string[];
  /** The IPv4 addresses of every pod on this node calc knows (valid or not), sorted: see `knownPodIps` of the driver. */
  localPodIps: readonly string[];
  /** Remote gateways to poll, sorted by pod key. */
  pollTargets: readonly PollTarget[];
  /** Undefined when no gateway runs here. */
  returnPath: ReturnPath | undefined;
  localGateways: readonly LocalGateway[];
  /** The records this node's clients should have (write the ones that differ from the stored ones). */
  nextHops: readonly EgressNextHops[];
  /** Stored records this node owns that should be deleted (`client` keys, sorted). */
  staleNextHops: readonly string[];
  issues: readonly CalcIssue[];
}
