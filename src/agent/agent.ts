/**
 * `egw agent`: the per-node process (docs/agent.md). Composes an informer over the datastore, the pure
 * egress calculator for the local node, the Linux client-node driver, the remote gateway health polls,
 * the maxNextHops records and the node status record.
 */
import type { IPPool } from '../api/index.js';
import { parseDuration, validateDocument } from '../api/index.js';
import type { CalcKind, CalcResource, GatewayHealth, NodeEgressState } from '../calc/index.js';
import { EgressCalculator, invalidPodFacts, PollTracker } from '../calc/index.js';
import type { Datastore, ResourceKey, StoredResource } from '../datastore/contract.js';
import { formatKey } from '../datastore/contract.js';
import { Informer, type InformerEvent } from '../datastore/informer.js';
import type { ClientNodeApplyResult } from '../linux/index.js';
import { applyClientNode } from '../linux/index.js';
import type { Clock } from '../platform/clock.js';
import { jittered, SystemClock } from '../platform/clock.js';
import { errorMessage } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { silentLogger } from '../platform/logger.js';
import type { Shell } from '../platform/shell.js';
import { clientNodeStateOf, clusterCidrsOf, type DataplaneContext } from './dataplane-state.js';
import { GatewayPoller, type PollOutcome, type ReadinessProbe } from './gateway-poller.js';
import { HttpReadinessProbe } from './http-readiness-probe.js';
import { AgentMetrics } from './metrics.js';
import { syncNextHops } from './next-hops-writer.js';
import { KernelLock } from './kernel-lock.js';
import { NEXT_HOPS_KIND, nextHopsKey, nodeStatusKey, nodeStatusValue, parseNextHops, statusContent, type FabricSummary, type NodeStatus } from './records.js';
import { buildNodeStatus, describeClient } from './status.js';

/** The kinds the agent follows. */
export const AGENT_KINDS = ['FelixConfiguration', 'IPPool', 'Namespace', 'Node', 'EgressGatewayPolicy', 'EgressGateway', 'Pod', NEXT_HOPS_KIND] as const;

const CALC_KINDS: ReadonlySet<string> = new Set<CalcKind>(['Pod', 'Namespace', 'Node', 'EgressGatewayPolicy', 'EgressGateway', 'FelixConfiguration']);

/** Side effects the agent uses, injected. */
export interface AgentDeps {
  store: Datastore;
  /** Runs commands in the node's network namespace (the kernel the driver programs). */
  shell: Shell;
  clock?: Clock;
  logger?: Logger;
  /** Remote readiness polls (default: real HTTP). */
  probe?: ReadinessProbe;
  metrics?: AgentMetrics;
  /** Serialises kernel writers on the node (share it with the fabric's ENI routing). */
  kernelLock?: KernelLock;
  /** A component run beside the data plane, started and stopped with the agent (the AWS fabric). */
  sidecar?: AgentSidecar;
  /** Jitter source of the retry waits (default Math.random). */
  random?: () => number;
}

/** A component the agent process runs beside the egress data plane: the AWS fabric (src/agent/fabric). */
export interface AgentSidecar {
  start(): void;
  stop(): Promise<void>;
  /** Its summary for the node status record. */
  summary(): FabricSummary;
}

/** What the agent does, and how often. */
export interface AgentOptions {
  /** The node this agent runs on (its Node record's name). */
  nodeName: string;
  /** The node's address when its Node record has no IPv4 InternalIP/ExternalIP. */
  nodeIp?: string;
  /** Destinations that belong to the cluster besides the pools (e.g. the service CIDR). */
  clusterCidrs?: readonly string[];
  /** Program natOutgoing for natOutgoing pools (default true). */
  natOutgoing?: boolean;
  /** Events are collected this long before a pass (default 20 ms); health verdicts skip it. */
  debounceMs?: number;
  /** A pass runs at least this often, re-reading the kernel (default 30 s). */
  resyncIntervalMs?: number;
  /** The status record is rewritten at least this often (default 60 s). */
  heartbeatMs?: number;
  /** Per-poll timeout (default half the poll interval, between 50 ms and 2 s). */
  pollTimeoutMs?: number;
  /** Polls in flight at most (default 32). */
  pollConcurrency?: number;
  vxlanMtu?: number;
  vxlanParentDev?: string;
  /** egw's version, for the status record. */
  version?: string;
}

/** The per-poll timeout for an interval when none is configured: half of it, within [50 ms, 2 s]. */
export function defaultPollTimeoutMs(intervalMs: number): number {
  return Math.min(2000, Math.max(50, Math.floor(intervalMs / 2)));
}

/**
 * One node's agent. `start()` begins following the datastore; nothing is applied before the informer
 * is in sync (an incomplete view would remove rules of clients not yet seen: never prune before
 * in-sync). Then every relevant change (debounced), every health verdict change (at once), and a
 * periodic resync each run one pass: calc → kernel (level-triggered, idempotent) → polls → maxNextHops
 * records → status record. A failed pass is retried with backoff (200 ms … 10 s).
 *
 * `stop()` stops following and polling but leaves the kernel as it is, so that a restart (or an agent
 * upgrade) never interrupts traffic; the next agent converges from what it finds.
 */
export class EgressAgent {
  private readonly store: Datastore;
  private readonly shell: Shell;
  private readonly kernelLock: KernelLock;
  private readonly sidecar: AgentSidecar | undefined;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  readonly metrics: AgentMetrics;
  private readonly calc: EgressCalculator;
  private readonly tracker = new PollTracker(3);
  private readonly poller: GatewayPoller;
  private readonly informer: Informer;
  private readonly pools = new Map<string, IPPool>();
  private readonly invalid = new Map<string, string>();
  private readonly opts: Required<Pick<AgentOptions, 'natOutgoing' | 'debounceMs' | 'resyncIntervalMs' | 'heartbeatMs'>> & AgentOptions;
  private readonly startedAt: string;

  private running: Promise<void> | undefined;
  private stopping = false;
  private pending = false;
  private urgent = false;
  private wake: (() => void) | undefined;
  private passWaiters: (() => void)[] = [];

  private changes = 0;
  private lastChangeCommands = 0;
  private lastStatus: NodeStatus | undefined;
  private lastStatusContent: string | undefined;
  private lastStatusWriteAt = -Infinity;
  private lastResultRef: NodeEgressState | undefined;
  private lastApply: ClientNodeApplyResult | undefined;
  private lastApplyKey: string | undefined;
  private lastKernelAt = -Infinity;
  private readonly loggedClients = new Map<string, string>();
  private loggedIssues = new Set<string>();
  private warnedNodeIp = false;

  constructor(deps: AgentDeps, options: AgentOptions) {
    this.store = deps.store;
    this.shell = deps.shell;
    this.kernelLock = deps.kernelLock ?? new KernelLock();
    this.sidecar = deps.sidecar;
    this.clock = deps.clock ?? new SystemClock();
    this.random = deps.random ?? Math.random;
    this.log = (deps.logger ?? silentLogger()).child({ node: options.nodeName });
    this.metrics = deps.metrics ?? new AgentMetrics();
    this.opts = { natOutgoing: true, debounceMs: 20, resyncIntervalMs: 30_000, heartbeatMs: 60_000, ...options };
    this.startedAt = new Date(this.clock.now()).toISOString();
    this.calc = new EgressCalculator(options.nodeName);
    this.calc.setClusterCidrs(clusterCidrsOf([], this.opts.clusterCidrs ?? []));
    this.poller = new GatewayPoller(
      { clock: this.clock, probe: deps.probe ?? new HttpReadinessProbe() },
      (target, outcome) => this.onPoll(target, outcome),
      { concurrency: this.opts.pollConcurrency ?? 32 },
    );
    this.informer = new Informer(
      { store: this.store, clock: this.clock, logger: this.log },
      { kinds: AGENT_KINDS },
      {
        onEvent: (ev) => this.onEvent(ev),
        onSync: (revision) => {
          this.log.info({ revision }, 'datastore in sync');
          this.metrics.inSync.set(1);
          this.schedule(true);
        },
      },
    );
  }

  /** True once the informer has a complete view (and while it keeps it). */
  get inSync(): boolean {
    return this.informer.inSync;
  }

  /** calc's last result (undefined before the first pass). */
  get lastResult(): NodeEgressState | undefined {
    return this.lastResultRef;
  }

  /** The last status written (or attempted). */
  get status(): NodeStatus | undefined {
    return this.lastStatus;
  }

  /** Starts following the datastore and the pass loop. Idempotent. */
  start(): void {
    if (this.running !== undefined) return;
    this.log.info({ version: this.opts.version }, 'agent starting');
    this.informer.start();
    this.sidecar?.start();
    this.running = this.loop();
  }

  /** Stops everything except the kernel state (see the class comment). Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    await this.poller.stop();
    await this.informer.stop();
    await this.sidecar?.stop();
    for (const w of this.passWaiters.splice(0)) w();
    this.log.info({}, 'agent stopped; data plane left in place');
  }

  /** Resolves after the next complete pass (tests and tools). */
  nextPass(): Promise<void> {
    return new Promise((r) => this.passWaiters.push(r));
  }

  // ---------------------------------------------------------------- events

  private onEvent(ev: InformerEvent): void {
    const stored = ev.resource;
    const key = stored.key;
    if (ev.type === 'deleted') this.forget(key);
    else this.absorb(stored);
    this.metrics.invalidResources.set(this.invalid.size);
    this.schedule(false);
  }

  private forget(key: ResourceKey): void {
    this.invalid.delete(formatKey(key));
    this.markInvalid(key, undefined);
    if (key.kind === 'IPPool') {
      if (this.pools.delete(key.name)) this.calc.setClusterCidrs(clusterCidrsOf([...this.pools.values()], this.opts.clusterCidrs ?? []));
    } else if (key.kind === NEXT_HOPS_KIND) {
      this.calc.deleteNextHops(`${key.namespace ?? 'default'}/${key.name}`);
    } else if (CALC_KINDS.has(key.kind)) {
      this.calc.delete(key.kind as CalcKind, key.name, key.namespace);
    }
  }

  private absorb(stored: StoredResource): void {
    const key = stored.key;
    if (key.kind === NEXT_HOPS_KIND) {
      const record = parseNextHops(stored);
      // A malformed record counts as absent; the owner rewrites it.
      if (record === undefined) this.calc.deleteNextHops(`${key.namespace ?? 'default'}/${key.name}`);
      else this.calc.upsertNextHops(record);
      return;
    }
    // Parse at the boundary: an invalid stored resource is reported and never opens a path. It is
    // absent for calc, and an invalid Pod or Namespace fails its clients closed (docs/security.md).
    const id = formatKey(key);
    const { resource, issues } = validateDocument(stored.value, { file: `datastore:${id}`, documentIndex: 1 });
    if (resource === undefined || resource.kind !== key.kind) {
      const message = issues.filter((i) => i.severity === 'error').map((i) => `${i.path === '' ? '' : `${i.path}: `}${i.message}`).join('; ').slice(0, 2000) || 'not a valid resource';
      if (this.invalid.get(id) !== message) this.log.warn({ key: id, message }, 'invalid resource: its clients fail closed');
      this.forget(key);
      this.invalid.set(id, message);
      this.markInvalid(key, { value: stored.value, message });
      return;
    }
    this.invalid.delete(id);
    this.markInvalid(key, undefined);
    if (resource.kind === 'IPPool') {
      this.pools.set(key.name, resource);
      this.calc.setClusterCidrs(clusterCidrsOf([...this.pools.values()], this.opts.clusterCidrs ?? []));
    } else if (CALC_KINDS.has(resource.kind)) {
      this.calc.upsert(resource as CalcResource);
    }
  }

  /** Tells calc that a stored Pod or Namespace is invalid (with what could be read of it), or no longer. */
  private markInvalid(key: ResourceKey, invalid: { value: unknown; message: string } | undefined): void {
    if (key.kind === 'Pod') {
      const ns = key.namespace ?? 'default';
      this.calc.setInvalidPod(`${ns}/${key.name}`, invalid === undefined ? undefined : invalidPodFacts(ns, key.name, invalid.value, invalid.message));
    } else if (key.kind === 'Namespace') {
      this.calc.setInvalidNamespace(key.name, invalid?.message);
    }
  }

  private onPoll(target: { gateway: string; ip: string }, outcome: PollOutcome): void {
    this.metrics.polls.inc({ outcome: outcome.ok ? 'up' : outcome.reason });
    const verdict = this.tracker.record(target, outcome.ok);
    if (!outcome.ok) this.log.debug({ gateway: target.gateway, ip: target.ip, reason: outcome.reason, detail: outcome.detail }, 'gateway poll failed');
    if (verdict === undefined) return;
    this.metrics.verdicts.inc({ verdict: verdict.up ? 'up' : 'down' });
    this.log.info({ gateway: verdict.gateway, ip: verdict.ip, up: verdict.up, ...(outcome.ok ? {} : { reason: outcome.reason, detail: outcome.detail }) }, 'gateway verdict changed');
    this.calc.setGatewayHealth(verdict);
    this.schedule(true);
  }

  // ---------------------------------------------------------------- the pass loop

  private schedule(urgent: boolean): void {
    this.pending = true;
    if (urgent) this.urgent = true;
    this.wake?.();
  }

  /** Waits up to `ms`, or until woken (any schedule, or only an urgent one), or stop. */
  private async waitWake(ms: number, onlyUrgent: boolean): Promise<void> {
    const abort = new AbortController();
    const woken = new Promise<void>((resolve) => {
      this.wake = () => {
        if (this.stopping || !onlyUrgent || this.urgent) resolve();
      };
    });
    try {
      await Promise.race([woken, this.clock.sleep(ms, abort.signal).catch(() => undefined)]);
    } finally {
      abort.abort();
      this.wake = undefined;
    }
  }

  private async loop(): Promise<void> {
    let backoff = 0;
    while (!this.stopping) {
      // Retries are jittered: after an outage the agents of a cluster do not all come back at once.
      if (!this.pending) await this.waitWake(backoff > 0 ? jittered(backoff, this.random) : this.opts.resyncIntervalMs, false);
      if (this.stopping) break;
      // Collect a burst of events into one pass; a health verdict does not wait.
      if (this.pending && !this.urgent && this.opts.debounceMs > 0) await this.waitWake(this.opts.debounceMs, true);
      if (this.stopping) break;
      this.pending = false;
      this.urgent = false;
      let ok = false;
      try {
        ok = await this.pass();
      } catch (e) {
        this.log.error({ err: errorMessage(e) }, 'agent pass failed');
      }
      backoff = ok ? 0 : Math.min(10_000, Math.max(200, backoff * 2));
      for (const w of this.passWaiters.splice(0)) w();
    }
  }

  /** One pass; true when everything converged (false schedules a retry with backoff). */
  private async pass(): Promise<boolean> {
    if (!this.informer.inSync) {
      this.metrics.inSync.set(0);
      return true;
    }
    const result = this.calc.result();
    this.lastResultRef = result;
    const ctx: DataplaneContext = {
      nodeIp: this.opts.nodeIp,
      pools: [...this.pools.values()],
      extraClusterCidrs: this.opts.clusterCidrs ?? [],
      natOutgoing: this.opts.natOutgoing,
      vxlanMtu: this.opts.vxlanMtu,
      vxlanParentDev: this.opts.vxlanParentDev,
    };
    if (!this.warnedNodeIp && this.opts.nodeIp !== undefined && result.vxlan?.localIp !== undefined && result.vxlan.localIp !== this.opts.nodeIp) {
      this.warnedNodeIp = true;
      this.log.warn({ nodeIp: this.opts.nodeIp, recordIp: result.vxlan.localIp }, 'node address differs from the Node record; the record wins (peers use it)');
    }
    const { state, config } = clientNodeStateOf(result, ctx);

    // 1. The kernel: when the desired state changed, after a failure, and at least every resync
    // interval (to repair what someone else changed). An unchanged desired state skips the read.
    const started = this.clock.now();
    const desiredKey = JSON.stringify([state, config]);
    let apply: ClientNodeApplyResult | { error: string };
    let ok = true;
    if (this.lastApply !== undefined && desiredKey === this.lastApplyKey && started - this.lastKernelAt < this.opts.resyncIntervalMs) {
      apply = { ...this.lastApply, changed: false, commands: 0 };
      this.metrics.applies.inc({ result: 'skipped' });
    } else {
      try {
        const r = await this.kernelLock.run(() => applyClientNode(this.shell, state, config));
        apply = r;
        const seconds = (this.clock.now() - started) / 1000;
        this.metrics.applyDuration.observe(seconds);
        const failed = r.failures.length > 0 || r.problems.length > 0;
        this.metrics.applies.inc({ result: failed ? 'failed' : r.changed ? 'changed' : 'unchanged' });
        if (r.changed) {
          this.changes++;
          this.lastChangeCommands = r.commands;
        }
        if (r.changed || failed) {
          this.log.info(
            { changed: r.changed, commands: r.commands, durationMs: Math.round(seconds * 1000), failures: r.failures.map((f) => `${f.command.line}: ${f.message}`), problems: r.problems },
            'dataplane applied',
          );
        }
        // Problems (tables exhausted, a gateway's interface not there yet) are retried too.
        ok = !failed;
        this.lastKernelAt = started;
        this.lastApply = ok ? r : undefined;
        this.lastApplyKey = ok ? desiredKey : undefined;
      } catch (e) {
        apply = { error: errorMessage(e) };
        this.metrics.applies.inc({ result: 'failed' });
        this.log.error({ err: apply.error }, 'dataplane apply failed');
        ok = false;
        this.lastApply = undefined;
        this.lastApplyKey = undefined;
      }
    }
    this.calc.setPreviousTables(result.tables.map((t) => ({ id: t.id, key: t.key })));

    // 2. Polls: the remote gateways the local clients use (and those judged down, to see them return).
    const intervalMs = parseDuration(result.poll.interval) ?? 10_000;
    this.tracker.setFailureCount(result.poll.failureCount);
    this.poller.update(result.pollTargets, { intervalMs, timeoutMs: this.opts.pollTimeoutMs ?? defaultPollTimeoutMs(intervalMs) });
    let cleared = false;
    for (const g of this.tracker.retain(result.pollTargets)) {
      this.calc.clearGatewayHealth(g);
      cleared = true;
    }
    if (cleared) this.schedule(false);

    // 3. maxNextHops records (CAS). The informer brings our own writes back; calc then agrees.
    if (result.nextHops.length > 0 || result.staleNextHops.length > 0) {
      const nh = await syncNextHops(this.store, result.nextHops, result.staleNextHops, (client) => this.informer.get(nextHopsKey(client)), this.opts.nodeName);
      if (nh.written > 0) this.metrics.nextHopWrites.inc({ result: 'written' }, nh.written);
      if (nh.deleted > 0) this.metrics.nextHopWrites.inc({ result: 'deleted' }, nh.deleted);
      if (nh.conflicts > 0) this.metrics.nextHopWrites.inc({ result: 'conflict' }, nh.conflicts);
      if (nh.failed.length > 0) {
        this.metrics.nextHopWrites.inc({ result: 'failed' }, nh.failed.length);
        this.log.warn({ failed: nh.failed }, 'maxNextHops records not written');
        ok = false;
      }
    }

    // 4. Status: the record (when its content changed, or as a heartbeat), metrics and logs.
    const verdicts: GatewayHealth[] = this.tracker.verdicts();
    const polled = this.poller.targets();
    const status = buildNodeStatus(result, {
      agent: { version: this.opts.version ?? 'unknown', pid: process.pid, startedAt: this.startedAt },
      now: new Date(this.clock.now()).toISOString(),
      observedRevision: this.informer.revision,
      vxlan: state.vxlan === undefined ? undefined : { vni: state.vxlan.vni, port: state.vxlan.port, localIp: state.vxlan.localIp },
      apply,
      changes: this.changes,
      lastChangeCommands: this.lastChangeCommands,
      polled,
      verdicts,
      fabric: this.sidecar?.summary(),
    });
    this.observe(status);
    this.metrics.awsStale.set(typeof status.fabric?.staleSince === 'string' ? 1 : 0);
    if (!(await this.writeStatus(status))) ok = false;
    return ok;
  }

  private observe(status: NodeStatus): void {
    const counts: Record<string, number> = {};
    for (const c of status.clients) counts[c.state] = (counts[c.state] ?? 0) + 1;
    this.metrics.setClients(counts);
    const remote = status.gateways.filter((g) => g.health !== 'not-polled');
    this.metrics.setRemoteGateways({
      total: remote.length,
      up: remote.filter((g) => g.health === 'up').length,
      probeFailed: remote.filter((g) => g.health === 'down').length,
      pending: remote.filter((g) => g.health === 'pending').length,
    });
    const seen = new Set<string>();
    for (const c of status.clients) {
      seen.add(c.pod);
      const line = describeClient(c);
      if (this.loggedClients.get(c.pod) === line) continue;
      this.loggedClients.set(c.pod, line);
      this.log.info({ pod: c.pod, ip: c.ip, state: c.state, table: c.table, egress: line }, 'client egress');
    }
    for (const pod of [...this.loggedClients.keys()]) {
      if (seen.has(pod)) continue;
      this.loggedClients.delete(pod);
      this.log.info({ pod }, 'client egress removed');
    }    // calc's issues (tables exhausted, refused gateways…): each logged once while it lasts; the set holds
    // only the current ones, so it never grows past the (bounded) issue list.
    const current = new Set(status.issues.map((i) => `${i.code}: ${i.message}`));
    for (const i of status.issues) {
      const line = `${i.code}: ${i.message}`;
      if (this.loggedIssues.has(line)) continue;
      this.log.warn({ code: i.code }, i.message);
    }
    this.loggedIssues = current;
  }

  private async writeStatus(status: NodeStatus): Promise<boolean> {
    this.lastStatus = status;
    const content = statusContent(status);
    const now = this.clock.now();
    if (content === this.lastStatusContent && now - this.lastStatusWriteAt < this.opts.heartbeatMs) return true;
    try {
      await this.store.commit([{ op: 'put', key: nodeStatusKey(this.opts.nodeName), value: nodeStatusValue(status) }]);
      this.lastStatusContent = content;
      this.lastStatusWriteAt = now;
      return true;
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, 'status record not written');
      return false;
    }
  }
}
