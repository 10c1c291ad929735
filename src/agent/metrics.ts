import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EgwError } from '../platform/errors.js';
import { guardedHandler, hardenServer } from '../platform/http-edge.js';

/**
 * The agent's Prometheus metrics, in a registry of its own (no global state, so two agents in one test
 * process do not share counters). Names follow Felix's where Calico has one
 * (`felix_egress_gateway_remote_polls` → `egw_egress_gateway_remote_polls`).
 */
export class AgentMetrics {
  readonly registry = new Registry();
  /** Remote gateways by the node's verdict: `total`, `up`, `probe-failed` (Felix's gauge), plus `pending`. */
  readonly remotePolls = new Gauge({ name: 'egw_egress_gateway_remote_polls', help: 'Remote egress gateways polled by this node, by status', labelNames: ['status'], registers: [this.registry] });
  /** Every poll, by outcome (`up`, `not-ready`, `timeout`, `error`). */
  readonly polls = new Counter({ name: 'egw_agent_gateway_polls_total', help: 'Readiness polls of remote gateways, by outcome', labelNames: ['outcome'], registers: [this.registry] });
  /** Verdict changes (`up`, `down`). */
  readonly verdicts = new Counter({ name: 'egw_agent_gateway_verdict_changes_total', help: 'Changes of the node verdict on a remote gateway', labelNames: ['verdict'], registers: [this.registry] });
  readonly applyDuration = new Histogram({
    name: 'egw_agent_dataplane_apply_seconds',
    help: 'Duration of one data-plane apply (read, plan, execute)',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  /** Applies by result: `changed`, `unchanged` (kernel read, nothing to do), `skipped` (desired state as last applied, no read), `failed`. */
  readonly applies = new Counter({ name: 'egw_agent_dataplane_applies_total', help: 'Data-plane applies, by result', labelNames: ['result'], registers: [this.registry] });
  readonly clients = new Gauge({ name: 'egw_agent_clients', help: 'Local egress clients, by state', labelNames: ['state'], registers: [this.registry] });
  readonly nextHopWrites = new Counter({ name: 'egw_agent_nexthops_writes_total', help: 'maxNextHops record writes, by result', labelNames: ['result'], registers: [this.registry] });
  /** Stored resources the agent follows that failed validation (their clients fail closed). */
  readonly invalidResources = new Gauge({ name: 'egw_agent_invalid_resources', help: 'Stored resources that failed validation (Pods and Namespaces among them fail their clients closed)', registers: [this.registry] });
  /** 1 while the AWS fabric cannot read EC2/IMDS and keeps its last known-good state. */
  readonly awsStale = new Gauge({ name: 'egw_agent_aws_state_stale', help: '1 while AWS cannot be read and the ENI routing runs on the last known-good state', registers: [this.registry] });
  readonly inSync = new Gauge({ name: 'egw_agent_datastore_in_sync', help: '1 while the agent has a complete view of the datastore', registers: [this.registry] });

  /** Sets the per-status gateway gauge. */
  setRemoteGateways(counts: { total: number; up: number; probeFailed: number; pending: number }): void {
    this.remotePolls.set({ status: 'total' }, counts.total);
    this.remotePolls.set({ status: 'up' }, counts.up);
    this.remotePolls.set({ status: 'probe-failed' }, counts.probeFailed);
    this.remotePolls.set({ status: 'pending' }, counts.pending);
  }

  /** Sets the per-state client gauge (states missing from `counts` are 0). */
  setClients(counts: Readonly<Record<string, number>>): void {
    for (const state of ['routed', 'partly-fail-closed', 'fail-closed', 'no-ip', 'no-table']) this.clients.set({ state }, counts[state] ?? 0);
  }
}

/**
 * Serves `GET /metrics` of `registry` on `listen` (`HOST:PORT`, `:PORT` or `PORT`). Resolves once
 * listening; the returned server is closed by the caller.
 */
export async function serveMetrics(registry: Registry, listen: string): Promise<Server> {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(listen.trim());
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw new EgwError('InvalidInput', `--metrics-listen "${listen}" is not HOST:PORT`, { hint: 'e.g. 127.0.0.1:9091 or :9091' });
  }
  const host = m[1] === undefined || m[1] === '' ? '0.0.0.0' : m[1].replace(/^\[(.*)\]$/, '$1');
  const server = hardenServer(
    createServer(
      guardedHandler(async (req, res, { path }) => {
        if (req.method !== 'GET' || path !== '/metrics') {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
          return;
        }
        const text = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType }).end(text);
      }),
    ),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new EgwError('InvalidInput', `cannot listen on ${listen}: ${e.message}`, { cause: e })));
    server.listen(port, host, () => resolve());
  });
  return server;
}
