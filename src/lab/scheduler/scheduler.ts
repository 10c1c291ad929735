/**
 * The lab's scheduler process: follows Pods, Nodes and Namespaces with an informer, runs the pure
 * decision core ({@link planSchedule}) over the cache, and writes the outcome with compare-and-swap:
 * `spec.nodeName` plus `PodScheduled=True` for a bind, `PodScheduled=False` / `Unschedulable` with
 * Kubernetes' message for a pod that fits nowhere (written only when the message changes).
 *
 * - Level-triggered: every pass looks at every pending pod; a pass runs after each change the informer
 *   sees and every `resyncIntervalMs` (node heartbeats go stale without any event).
 * - Binds the cache has not seen yet are kept as "assumed" (as Kubernetes' scheduler cache does), so a
 *   pass that starts before the informer catches up never places two pods into one free slot.
 * - A bind names the revision it read: a pod the operator deleted or changed meanwhile is never
 *   brought back; the next pass re-reads. After a failed bind the rest of the pass is dropped (its
 *   decisions assumed that bind) and the pass runs again.
 */
import type { Datastore, JsonObject, StoredResource } from '../../datastore/contract.js';
import { Informer } from '../../datastore/informer.js';
import { SystemClock, type Clock } from '../../platform/clock.js';
import { errorMessage, isEgwError } from '../../platform/errors.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { conditionsOf, findCondition, withCondition } from '../../platform/conditions.js';
import { parseNamespaceLabels, parseSchedNode, parseSchedPod, type SchedPod } from './model.js';
import { planSchedule, type SchedulePlan, type SchedulerPolicy, type Snapshot } from './schedule.js';

/** The kinds the scheduler follows. */
export const SCHEDULER_WATCHED_KINDS = ['Pod', 'Node', 'Namespace'] as const;

export interface LabSchedulerDeps {
  store: Datastore;
  clock?: Clock;
  logger?: Logger;
}

export interface LabSchedulerOptions {
  /** See {@link SchedulerPolicy.nodeReadyGraceMs}; default 40 s (Kubernetes' node-monitor grace period). */
  nodeReadyGraceMs?: number;
  /** A pass at least this often, default 5 s. */
  resyncIntervalMs?: number;
  /** Pause before re-running a pass whose bind failed, default 100 ms. */
  retryDelayMs?: number;
}

/** What one pass did. */
export interface PassResult {
  bound: { pod: string; node: string }[];
  unschedulable: { pod: string; message: string }[];
  /** Binds that failed (conflict, gone): the pass will run again. */
  failed: string[];
}

/** The pod condition the scheduler owns. */
const PODSCHEDULED = 'PodScheduled';

/**
 * The snapshot a pass decides on: the informer's pods, nodes and namespaces, with the binds not yet
 * seen by the informer applied. Pure.
 */
export function buildSnapshot(pods: readonly StoredResource[], nodes: readonly StoredResource[], namespaces: readonly StoredResource[], assumed: ReadonlyMap<string, { node: string; revision: number }>): Snapshot {
  const parsedPods: SchedPod[] = [];
  for (const s of pods) {
    const p = parseSchedPod(s.value, s.modRevision);
    if (p === undefined) continue;
    const a = assumed.get(p.key);
    parsedPods.push(a !== undefined && s.modRevision < a.revision && p.nodeName === undefined ? { ...p, nodeName: a.node } : p);
  }
  const ns = new Map<string, Readonly<Record<string, string>>>();
  for (const s of namespaces) {
    const n = parseNamespaceLabels(s.value);
    if (n !== undefined) ns.set(n.name, n.labels);
  }
  return { nodes: nodes.flatMap((s) => parseSchedNode(s.value) ?? []), pods: parsedPods, namespaces: ns };
}

/** The lab scheduler (see the module comment). */
export class LabScheduler {
  private readonly store: Datastore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly policy: SchedulerPolicy;
  private readonly resyncMs: number;
  private readonly retryMs: number;
  private readonly informer: Informer;
  private readonly assumed = new Map<string, { node: string; revision: number }>();
  private readonly stopping = new AbortController();
  private wakers: (() => void)[] = [];
  private dirty = true;
  private loop: Promise<void> | undefined;

  constructor(deps: LabSchedulerDeps, options: LabSchedulerOptions = {}) {
    this.store = deps.store;
    this.clock = deps.clock ?? new SystemClock();
    this.log = deps.logger ?? silentLogger();
    this.policy = { nodeReadyGraceMs: options.nodeReadyGraceMs ?? 40_000 };
    this.resyncMs = options.resyncIntervalMs ?? 5_000;
    this.retryMs = options.retryDelayMs ?? 100;
    this.informer = new Informer(
      { store: this.store, clock: this.clock, logger: this.log },
      { kinds: SCHEDULER_WATCHED_KINDS },
      { onEvent: () => this.kick(), onSync: () => this.kick() },
    );
  }

  /** True once the informer holds a complete picture. */
  get inSync(): boolean {
    return this.informer.inSync;
  }

  /** Starts following the store and scheduling in the background. Idempotent. */
  start(): void {
    if (this.loop !== undefined) return;
    this.informer.start();
    this.loop = this.run().catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'scheduler loop stopped on an unexpected error'));
  }

  /** Stops; waits for the pass in progress. Nothing is written afterwards. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wakeAll();
    await this.loop;
    await this.informer.stop();
  }

  /** Resolves when the informer is in sync. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    return this.informer.waitForSync(signal);
  }

  private kick(): void {
    this.dirty = true;
    this.wakeAll();
  }

  private wakeAll(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      if (!this.informer.inSync) {
        // Without this, a pass-less loop while out of sync never yields to the event loop (the informer's
        // first list over etcd never completes, and SIGTERM is never handled).
        await this.informer.waitForSync(signal).catch(() => undefined);
        continue;
      }
      if (this.dirty && this.informer.inSync) {
        this.dirty = false;
        try {
          const r = await this.pass();
          if (r.failed.length > 0) {
            this.dirty = true;
            await this.sleep(this.retryMs);
            continue;
          }
        } catch (err) {
          this.log.warn({ err: errorMessage(err) }, 'scheduling pass failed');
          this.dirty = true;
          await this.sleep(1_000);
          continue;
        }
      }
      await this.sleep(this.resyncMs, true);
      this.dirty = true;
    }
  }

  /** Sleeps on the clock; a kick (when `wakeable`) or stop ends it early. */
  private async sleep(ms: number, wakeable = false): Promise<void> {
    if (this.stopping.signal.aborted || (wakeable && this.dirty)) return;
    await new Promise<void>((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        this.stopping.signal.removeEventListener('abort', finish);
        resolve();
      };
      this.stopping.signal.addEventListener('abort', finish, { once: true });
      if (wakeable) this.wakers.push(finish);
      this.clock.sleep(ms).then(finish, finish);
    });
  }

  /**
   * One pass over the informer's cache (also callable directly, e.g. in tests, once in sync): plans,
   * then writes each bind and each changed Unschedulable condition with CAS.
   */
  async pass(): Promise<PassResult> {
    const pods = this.informer.list('Pod');
    this.forgetSeenBinds(pods);
    const snapshot = buildSnapshot(pods, this.informer.list('Node'), this.informer.list('Namespace'), this.assumed);
    const now = this.clock.now();
    const plan: SchedulePlan = planSchedule(snapshot, now, this.policy);
    const result: PassResult = { bound: [], unschedulable: [], failed: [] };
    const nowIso = new Date(now).toISOString();
    for (const b of plan.binds) {
      if (this.stopping.signal.aborted) return result;
      const stored = this.informer.get({ kind: 'Pod', namespace: b.pod.namespace, name: b.pod.name });
      if (stored === undefined) {
        result.failed.push(b.pod.key);
        break;
      }
      try {
        const written = await this.bind(stored, b.node, nowIso);
        this.assumed.set(b.pod.key, { node: b.node, revision: written });
        result.bound.push({ pod: b.pod.key, node: b.node });
        this.log.info({ pod: b.pod.key, node: b.node }, 'pod bound');
      } catch (err) {
        if (!isEgwError(err, 'Conflict', 'NotFound')) throw err;
        this.log.debug({ pod: b.pod.key, err: errorMessage(err) }, 'bind lost a race; the pass runs again');
        result.failed.push(b.pod.key);
        // Later decisions of this plan counted this pod on its node: drop them.
        return result;
      }
    }
    for (const u of plan.unschedulable) {
      if (this.stopping.signal.aborted) return result;
      const stored = this.informer.get({ kind: 'Pod', namespace: u.pod.namespace, name: u.pod.name });
      if (stored === undefined) continue;
      try {
        if (await this.markUnschedulable(stored, u.message, nowIso)) {
          result.unschedulable.push({ pod: u.pod.key, message: u.message });
          this.log.info({ pod: u.pod.key, message: u.message }, 'pod unschedulable');
        }
      } catch (err) {
        if (!isEgwError(err, 'Conflict', 'NotFound')) throw err;
        // The pod changed: the event brings another pass.
      }
    }
    return result;
  }

  private forgetSeenBinds(pods: readonly StoredResource[]): void {
    if (this.assumed.size === 0) return;
    const byKey = new Map(pods.map((s) => [`${s.key.namespace ?? ''}/${s.key.name}`, s]));
    for (const [key, a] of [...this.assumed]) {
      const s = byKey.get(key);
      if (s === undefined || s.modRevision >= a.revision) this.assumed.delete(key);
    }
  }

  /** Writes `spec.nodeName` and `PodScheduled=True` on the revision read; returns the new revision. */
  private async bind(stored: StoredResource, node: string, now: string): Promise<number> {
    const value = stored.value as Record<string, unknown>;
    const spec = (value['spec'] ?? {}) as Record<string, unknown>;
    const status = (value['status'] ?? {}) as Record<string, unknown>;
    const conditions = withCondition(conditionsOf(status), { type: PODSCHEDULED, status: 'True', lastProbeTime: null }, now, true) ?? conditionsOf(status);
    const next = { ...value, spec: { ...spec, nodeName: node }, status: { ...status, conditions } } as unknown as JsonObject;
    const r = await this.store.commit([{ op: 'update', key: stored.key, value: next, expectedRevision: stored.modRevision }]);
    return r.revision;
  }

  /** Writes `PodScheduled=False` / `Unschedulable` / message when it differs; true when it wrote. */
  private async markUnschedulable(stored: StoredResource, message: string, now: string): Promise<boolean> {
    const value = stored.value as Record<string, unknown>;
    const status = (value['status'] ?? {}) as Record<string, unknown>;
    const prev = findCondition(status, PODSCHEDULED);
    if (prev?.status === 'False' && prev.reason === 'Unschedulable' && prev.message === message) return false;
    const conditions = withCondition(conditionsOf(status), { type: PODSCHEDULED, status: 'False', reason: 'Unschedulable', message, lastProbeTime: null }, now);
    if (conditions === undefined) return false;
    const next = { ...value, status: { ...status, phase: status['phase'] ?? 'Pending', conditions } } as unknown as JsonObject;
    await this.store.commit([{ op: 'update', key: stored.key, value: next, expectedRevision: stored.modRevision }]);
    return true;
  }
}
