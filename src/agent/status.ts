/**
 * The node status record's content, built from calc's result, the driver's outcome and the node's poll
 * verdicts. Pure.
 */
import type { ClientStatus, GatewayHealth, NodeEgressState, PollTarget } from '../calc/index.js';
import type { ClientNodeApplyResult } from '../linux/index.js';
import type { DataplaneStatus, FabricSummary, GatewayView, NodeStatus } from './records.js';

/** What {@link buildNodeStatus} reads besides calc's result. */
export interface StatusInputs {
  agent: NodeStatus['agent'];
  now: string;
  observedRevision: number;
  /** The tunnel as programmed (undefined: none). */
  vxlan: { vni: number; port: number; localIp: string } | undefined;
  /** The last apply, or the error it threw. */
  apply: ClientNodeApplyResult | { error: string };
  /** Applies since start that changed something, and the commands of the last such one. */
  changes: number;
  lastChangeCommands: number;
  /** The gateways being polled and the verdicts on them. */
  polled: readonly PollTarget[];
  verdicts: readonly GatewayHealth[];
  /** The fabric component's summary, when it runs. */
  fabric?: FabricSummary | undefined;
}

/** The verdict column of a gateway. */
function healthOf(gateway: string, ip: string, local: boolean, polled: ReadonlyMap<string, PollTarget>, verdicts: ReadonlyMap<string, GatewayHealth>): GatewayView['health'] {
  if (local) return 'not-polled';
  const t = polled.get(gateway);
  if (t === undefined || t.ip !== ip) return 'not-polled';
  const v = verdicts.get(gateway);
  if (v === undefined || v.ip !== ip) return 'pending';
  return v.up ? 'up' : 'down';
}

/**
 * The status of the node. Clients carry the kernel table the driver actually gave them (the driver
 * shares tables by content; calc's ids are its bookkeeping). Gateways are those the programmed routes
 * name plus those the node polls and judged down (so that a gateway removed for failing its polls stays
 * visible with `health: down`).
 */
export function buildNodeStatus(result: NodeEgressState, inputs: StatusInputs): NodeStatus {
  const tableOf = new Map<string, number>();
  const dataplane: DataplaneStatus = {
    ok: false,
    failures: [],
    problems: [],
    changes: inputs.changes,
    lastChangeCommands: inputs.lastChangeCommands,
    appliedAt: inputs.now,
  };
  if ('error' in inputs.apply) {
    dataplane.failures = [{ object: 'apply', message: inputs.apply.error }];
  } else {
    for (const a of inputs.apply.assignments) if (!a.returnPath) for (const ip of a.clients) tableOf.set(ip, a.table);
    dataplane.failures = inputs.apply.failures.map((f) => ({ object: f.command.object, message: f.message }));
    dataplane.problems = inputs.apply.problems.map((p) => ({ object: p.object, code: p.code, message: p.message }));
    dataplane.ok = dataplane.failures.length === 0 && dataplane.problems.length === 0;
  }
  const clients: ClientStatus[] = result.clients.map((c) => {
    const table = c.ip === undefined ? undefined : tableOf.get(c.ip);
    return { ...c, table: 'error' in inputs.apply ? c.table : table };
  });
  const polled = new Map(inputs.polled.map((t) => [t.gateway, t]));
  const verdicts = new Map(inputs.verdicts.map((v) => [v.gateway, v]));
  const gateways: GatewayView[] = result.gateways.map((g) => ({
    pod: g.pod,
    ip: g.ip,
    node: g.nodeName,
    nodeIp: g.nodeIp ?? null,
    local: g.local,
    health: healthOf(g.pod, g.ip, g.local, polled, verdicts),
  }));
  const named = new Set(gateways.map((g) => g.pod));
  for (const t of inputs.polled) {
    if (named.has(t.gateway)) continue;
    const v = verdicts.get(t.gateway);
    if (v === undefined || v.ip !== t.ip || v.up) continue;
    gateways.push({ pod: t.gateway, ip: t.ip, node: null, nodeIp: null, local: false, health: 'down' });
  }
  gateways.sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
  return {
    node: result.nodeName,
    agent: inputs.agent,
    heartbeatAt: inputs.now,
    observedRevision: inputs.observedRevision,
    egressIPSupport: result.egressIPSupport,
    vxlan: inputs.vxlan ?? null,
    dataplane,
    clients,
    ignored: [...result.ignored],
    gateways,
    localGateways: [...result.localGateways],
    issues: [...result.issues],
    fabric: inputs.fabric ?? null,
  };
}

/** One line per client for logs: `rule → gateways` or `rule: action (reason)`. */
export function describeClient(c: ClientStatus): string {
  const rules = c.rules.map((r) => {
    if (r.action === 'gateways') return `${r.destination} -> ${r.gateways.map((g) => g.ip).join(',')}`;
    return `${r.destination}: ${r.action}${r.reason === undefined ? '' : ` (${r.reason})`}`;
  });
  return `${c.state}${c.table === undefined ? '' : ` table ${c.table}`}; ${rules.join('; ')}`;
}
