/**
 * The agent room's public face (docs/agent.md): the per-node process and its parts.
 *
 * ```ts
 * const agent = new EgressAgent({ store, shell, logger }, { nodeName: 'node-1' });
 * agent.start();           // follows the datastore, programs the node, polls gateways, writes records
 * await agent.stop();      // leaves the data plane in place
 * ```
 */
export { EgressAgent, AGENT_KINDS, defaultPollTimeoutMs, type AgentDeps, type AgentOptions, type AgentSidecar } from './agent.js';
export { KernelLock, LockedEniRouting } from './kernel-lock.js';
export { clientNodeStateOf, clusterCidrsOf, natOutgoingOf, type DataplaneContext } from './dataplane-state.js';
export { GatewayPoller, type PollOutcome, type PollTiming, type ReadinessProbe, type GatewayPollerDeps } from './gateway-poller.js';
export { HttpReadinessProbe, READINESS_PATH } from './http-readiness-probe.js';
export { AgentMetrics, serveMetrics } from './metrics.js';
export { syncNextHops, type NextHopsSyncResult } from './next-hops-writer.js';
export * from './records.js';
export { buildNodeStatus, describeClient, type StatusInputs } from './status.js';
