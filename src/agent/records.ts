/**
 * The agent's internal records in the datastore (kinds of egw's own, beside the resources), their keys,
 * stored forms and defensive readers. Pure.
 *
 * | kind | namespace | name | holds | written by |
 * |---|---|---|---|---|
 * | `EgressNextHops` | the client pod's namespace | the client pod's name | calc's maxNextHops choice of that client ({@link EgressNextHops}) | the agent of the client's node (CAS) |
 * | `EgressNodeStatus` | — | the node name | what the node's agent programmed and why ({@link NodeStatus}) | the agent of that node (put) |
 *
 * docs/agent.md, "Records", explains the choices.
 */
import type { CalcIssue, ClientStatus, EgressNextHops, IgnoredPod, LocalGateway, NextHopsChoice } from '../calc/index.js';
import type { JsonObject, ResourceKey, StoredResource } from '../datastore/contract.js';

/** Kind of the stored maxNextHops choices. */
export const NEXT_HOPS_KIND = 'EgressNextHops';
/** Kind of the per-node status records. */
export const NODE_STATUS_KIND = 'EgressNodeStatus';
/** apiVersion of egw's internal records. */
export const EGW_RECORD_API_VERSION = 'egw.io/v1';

/** The datastore key of a client's {@link EgressNextHops} record (`client` is `namespace/name`). */
export function nextHopsKey(client: string): ResourceKey {
  const slash = client.indexOf('/');
  return slash < 0
    ? { kind: NEXT_HOPS_KIND, namespace: 'default', name: client }
    : { kind: NEXT_HOPS_KIND, namespace: client.slice(0, slash), name: client.slice(slash + 1) };
}

/** The stored form of a record: a resource-like envelope, so that generic tools can print it. */
export function nextHopsValue(record: EgressNextHops): JsonObject {
  const key = nextHopsKey(record.client);
  const rules: JsonObject = {};
  for (const [sel, choice] of Object.entries(record.rules)) rules[sel] = { maxNextHops: choice.maxNextHops, gateways: [...choice.gateways] };
  return {
    apiVersion: EGW_RECORD_API_VERSION,
    kind: NEXT_HOPS_KIND,
    metadata: { name: key.name, namespace: key.namespace ?? 'default' },
    spec: { client: record.client, podUID: record.podUID, node: record.node, rules },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads a stored `EgressNextHops` value; undefined when it is malformed (a malformed record counts as
 * absent: the owner rewrites it on its next pass).
 */
export function parseNextHops(stored: StoredResource): EgressNextHops | undefined {
  const spec = (stored.value as { spec?: unknown }).spec;
  if (!isRecord(spec)) return undefined;
  const { client, podUID, node, rules } = spec;
  if (typeof client !== 'string' || typeof podUID !== 'string' || typeof node !== 'string' || !isRecord(rules)) return undefined;
  const out: Record<string, NextHopsChoice> = {};
  for (const [sel, c] of Object.entries(rules)) {
    if (!isRecord(c)) return undefined;
    const { maxNextHops, gateways } = c;
    if (typeof maxNextHops !== 'number' || !Array.isArray(gateways) || !gateways.every((g) => typeof g === 'string')) return undefined;
    out[sel] = { maxNextHops, gateways };
  }
  return { client, podUID, node, rules: out };
}

/** The datastore key of a node's status record. */
export function nodeStatusKey(node: string): ResourceKey {
  return { kind: NODE_STATUS_KIND, name: node };
}

/** A remote gateway as the node sees it: from the datastore and from its own polls. */
export interface GatewayView {
  /** `namespace/name`. */
  pod: string;
  ip: string;
  /** The gateway's node; null for a gateway only known from the node's polls. */
  node: string | null;
  nodeIp: string | null;
  local: boolean;
  /**
   * The node's own verdict: `up` / `down` from its polls (`down` after `egressGatewayPollFailureCount`
   * consecutive failures), `pending` while polled without a verdict yet, `not-polled` for local gateways
   * and gateways without a port named `health` (the datastore's readiness alone counts).
   */
  health: 'up' | 'down' | 'pending' | 'not-polled';
}

/** The outcome of the last data-plane apply. */
export interface DataplaneStatus {
  /** False when the kernel refused a line or a desired object could not be planned (see below). */
  ok: boolean;
  /** Lines the kernel refused: the object they serve and the kernel's message. */
  failures: { object: string; message: string }[];
  /** Desired objects that could not be planned (tables exhausted, gateway interface missing). */
  problems: { object: string; code: string; message: string }[];
  /** Applies since the agent started that changed something in the kernel. */
  changes: number;
  /** Kernel commands the last changing apply ran. */
  lastChangeCommands: number;
  /** ISO time of the last apply (refreshed only when the record is written for another reason). */
  appliedAt: string;
}

/** The `status` of an `EgressNodeStatus` record: what one agent programmed and why. */
export interface NodeStatus {
  node: string;
  agent: { version: string; pid: number; startedAt: string };
  /** ISO time of this write; the agent rewrites the record at least every heartbeat interval. */
  heartbeatAt: string;
  /** The datastore revision the content was computed from, at the time of this write. */
  observedRevision: number;
  egressIPSupport: string;
  /** The node's tunnel endpoint; null when egress is disabled or the node has no address. */
  vxlan: { vni: number; port: number; localIp: string } | null;
  dataplane: DataplaneStatus;
  /** Local clients: per rule, the gateways used, or why the rule is fail-closed or skipped. */
  clients: ClientStatus[];
  ignored: IgnoredPod[];
  /** Gateways the local clients' routes name, with the node's verdict on each. */
  gateways: GatewayView[];
  localGateways: LocalGateway[];
  issues: CalcIssue[];
  /** The AWS fabric component's summary; null when the agent runs without it (`--no-aws-fabric`). */
  fabric: FabricSummary | null;
}

/** What the node status says about the AWS fabric (details are on the Node's and Pods' conditions). */
export interface FabricSummary {
  /** FelixConfiguration `awsSecondaryIPSupport` in force. */
  mode: string;
  /** The EC2 instance, once discovered through IMDS. */
  instanceId: string | null;
  /** Why the last pass did not converge; null when it did. */
  lastError: string | null;
  /**
   * Since when AWS (EC2 or IMDS) could not be read and the fabric runs on its last known-good state
   * (ISO time); null while AWS answers. Absent in records of older agents.
   */
  staleSince?: string | null;
  /** FelixConfiguration `awsSrcDstCheck` on the primary ENI; null while DoNothing. Absent in records of older agents. */
  srcDstCheck?: { want: string; state: string; eni: string | null; message: string } | null;
}

/** The stored form of a node's status record. */
export function nodeStatusValue(status: NodeStatus): JsonObject {
  return {
    apiVersion: EGW_RECORD_API_VERSION,
    kind: NODE_STATUS_KIND,
    metadata: { name: status.node },
    status: JSON.parse(JSON.stringify(status)) as JsonObject,
  };
}

/** Reads a stored status record (the shape is trusted: only agents write it); undefined when it has none. */
export function parseNodeStatus(stored: StoredResource | undefined): NodeStatus | undefined {
  const status = (stored?.value as { status?: unknown } | undefined)?.status;
  return isRecord(status) && typeof status['node'] === 'string' ? (status as unknown as NodeStatus) : undefined;
}

/**
 * The part of a status that says something: what is compared to decide whether the record must be
 * rewritten (times, counters of no-op applies and the revision are left out, so that a quiet node
 * writes nothing but its heartbeat).
 */
export function statusContent(status: NodeStatus): string {
  const { heartbeatAt: _h, observedRevision: _r, dataplane, ...rest } = status;
  const { appliedAt: _a, ...dp } = dataplane;
  return JSON.stringify({ ...rest, dataplane: dp });
}
