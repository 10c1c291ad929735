/**
 * The operator's reconciler: every EgressGateway becomes the set of gateway Pod records a Deployment and
 * its ReplicaSet would keep (the lab has no Kubernetes; its scheduler and pod runtime take it from there),
 * with the operator's validation, default write-back and status.
 *
 * Contract (docs/operator.md has the details):
 * - Level-triggered and idempotent: each pass re-reads the EgressGateway, its namespace's pods, the IP
 *   pools and FelixConfiguration `default` from the store, computes the pods that should exist, and
 *   writes only the difference. A second pass over an unchanged store writes nothing.
 * - Crash-safe: every decision depends on the store alone (no memory between passes), so a pass that
 *   stopped between two commits is completed by the next one.
 * - Optimistic: every write names the revision it read (pods, the EgressGateway); a Conflict restarts
 *   the pass from a fresh read.
 * - Ownership: it only touches pods whose controlling owner reference is an EgressGateway
 *   (`operator.tigera.io/v1`), never pods that merely carry matching labels.
 * - Deleting a pod: an unscheduled pod's record is deleted; a scheduled pod gets
 *   `metadata.deletionTimestamp` (now + its grace period) and `deletionGracePeriodSeconds`, and the pod
 *   runtime removes the record once the pod has stopped. Terminating pods are left alone otherwise.
 * - Running: one key per EgressGateway (`namespace/name`) on the reconcile engine (src/reconcile/), so
 *   queueing, backoff with jitter, resync, the in-sync gate and terminal errors are the engine's.
 */
import { defaultEgressGateway, validateDocument, type EgressGateway, type FelixConfiguration, type IPPool, type Pod } from '../../api/index.js';
import type { Datastore, StoredResource, WriteOp } from '../../datastore/contract.js';
import { MAX_COMMIT_OPS } from '../../datastore/contract.js';
import { Informer, type InformerEvent } from '../../datastore/informer.js';
import { fromStored, listResources, stableJson, writeOpFor } from '../../datastore/resources.js';
import { SystemClock, type Clock } from '../../platform/clock.js';
import { EgwError, errorMessage, isEgwError } from '../../platform/errors.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { ReconcileRunner, type KeyStatus, type ReconcileMetrics } from '../../reconcile/index.js';
import { RandomIds, type IdSource } from './ids.js';
import { defaultGatewayImage } from './image.js';
import { planRollout } from './plan.js';
import { controllingGateway, hasEnded, isActive, isPodReady, isScheduled, isTerminating, newGatewayPod, podFacts, templateHash, DEFAULT_TERMINATION_GRACE_SECONDS } from './pods.js';
import { ownerReferenceTo, renderPodTemplate, type RenderContext } from './render.js';
import { nextStatus, type ReplicaCounts, type Verdict } from './status.js';
import { operatorValidationError, VALIDATION_MESSAGE_PREFIX } from './validate.js';

/** The side effects the operator uses, injected. */
export interface OperatorDeps {
  store: Datastore;
  /** Default: the system clock. Used for timestamps, backoff and the periodic resync. */
  clock?: Clock;
  /** Default: random suffixes and UUIDs. */
  ids?: IdSource;
  /** Default: silent. */
  logger?: Logger;
  /** A number in [0, 1) for the retry and resync jitter; default Math.random. */
  random?: () => number;
  /** Queue depth, pass outcomes and durations, retries; default none. */
  metrics?: ReconcileMetrics;
}

/** Tuning of the operator. */
export interface OperatorOptions {
  /** Image of the gateway containers; default `ghcr.io/egw-project/egw:<egw version>`. */
  image?: string;
  /** Main container command; default `["egw", "gateway"]`. */
  command?: readonly string[];
  /** Init container command; default `["egw", "gateway", "init"]`. */
  initCommand?: readonly string[];
  /** Full pass over every EgressGateway this often while running (ms, plus up to 10 % jitter); default 60,000; 0 turns it off. */
  resyncIntervalMs?: number;
  /**
   * Retry delays of a failing EgressGateway: full jitter under a ceiling that starts at the initial
   * value and doubles per failure up to the maximum; defaults 200 / 10,000 ms. Also the informer's backoff.
   */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Passes tried when writes meet a Conflict before the error is returned; default 8. */
  conflictRetries?: number;
}

/** What one reconcile of one EgressGateway did. */
export interface GatewayResult {
  namespace: string;
  name: string;
  /** `Absent` when the EgressGateway does not exist (its pods are being removed); `Error` when the pass failed. */
  state: 'Absent' | 'Ready' | 'Progressing' | 'Degraded' | 'Error';
  /** The Degraded message or the error. */
  message?: string;
  /** Pods created by this call. */
  created: string[];
  /** Pods deleted or set terminating by this call. */
  deleted: string[];
  /** True when anything was written (pods or the EgressGateway). */
  wrote: boolean;
}

/** The kinds whose changes can change what the operator must do. */
export const OPERATOR_WATCHED_KINDS = ['EgressGateway', 'IPPool', 'FelixConfiguration', 'Pod'] as const;

interface Owned {
  stored: StoredResource;
  pod: Pod;
}

/**
 * The EgressGateway operator. Use {@link reconcile} / {@link reconcileAll} for one-shot passes (tests,
 * tools), or {@link start} / {@link stop} to run it: it lists and watches EgressGateways, IP pools,
 * FelixConfigurations and pods, reconciles each affected EgressGateway one at a time (an EgressGateway
 * that fails is retried with backoff and never blocks the others), and makes a full pass every
 * `resyncIntervalMs`.
 */
export class EgressGatewayOperator {
  private readonly store: Datastore;
  private readonly clock: Clock;
  private readonly ids: IdSource;
  private readonly log: Logger;
  private readonly random: (() => number) | undefined;
  private readonly metrics: ReconcileMetrics | undefined;
  private readonly render: RenderContext;
  private readonly resyncIntervalMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly conflictRetries: number;

  private informer: Informer | undefined;
  private runner: ReconcileRunner | undefined;

  constructor(deps: OperatorDeps, options: OperatorOptions = {}) {
    this.store = deps.store;
    this.clock = deps.clock ?? new SystemClock();
    this.ids = deps.ids ?? new RandomIds();
    this.log = deps.logger ?? silentLogger();
    this.random = deps.random;
    this.metrics = deps.metrics;
    this.render = {
      image: options.image ?? defaultGatewayImage(),
      ...(options.command === undefined ? {} : { command: options.command }),
      ...(options.initCommand === undefined ? {} : { initCommand: options.initCommand }),
    };
    this.resyncIntervalMs = options.resyncIntervalMs ?? 60_000;
    this.backoffInitialMs = options.backoffInitialMs ?? 200;
    this.backoffMaxMs = options.backoffMaxMs ?? 10_000;
    this.conflictRetries = options.conflictRetries ?? 8;
  }

  /** True while running and the watch has a complete picture (false before the first list). */
  get inSync(): boolean {
    return this.informer?.inSync ?? false;
  }

  /**
   * EgressGateways whose last pass failed while running: `terminal` ones (invalid, shown Degraded in
   * their status) wait for a change or the resync; `retrying` ones back off. Empty when stopped.
   */
  failures(): KeyStatus[] {
    return this.runner?.failing() ?? [];
  }

  /**
   * Starts watching and reconciling in the background. Idempotent. Once the watch is in sync, reconciles
   * every EgressGateway, then the owners of owned pods that no longer have one (so that their pods go),
   * then each one whose EgressGateway, pods, pools or Felix settings change, and all of them every
   * `resyncIntervalMs`.
   */
  start(): void {
    if (this.runner !== undefined) return;
    const informer = new Informer(
      { store: this.store, clock: this.clock, logger: this.log },
      { kinds: OPERATOR_WATCHED_KINDS, backoffInitialMs: this.backoffInitialMs, backoffMaxMs: this.backoffMaxMs },
      // A re-list (history compacted) may have missed anything: look at every EgressGateway again.
      { onEvent: (e) => this.onEvent(e), onSync: () => this.runner?.resync() },
    );
    this.informer = informer;
    this.runner = new ReconcileRunner(
      {
        reconcile: (key) => this.reconcileKey(key),
        listKeys: () => informer.list('EgressGateway').map((g) => keyString(g.key.namespace ?? 'default', g.key.name)),
        listActualKeys: () => ownerKeys(informer.list('Pod')),
        waitForSync: (signal) => informer.waitForSync(signal),
      },
      {
        clock: this.clock,
        logger: this.log,
        ...(this.random === undefined ? {} : { random: this.random }),
        ...(this.metrics === undefined ? {} : { metrics: this.metrics }),
      },
      {
        name: 'operator',
        concurrency: 1,
        resyncPeriodMs: this.resyncIntervalMs,
        backoff: { baseMs: this.backoffInitialMs, capMs: Math.max(this.backoffMaxMs, this.backoffInitialMs), jitter: 'full' },
      },
    );
    informer.start();
    this.runner.start();
    this.log.info({ image: this.render.image }, 'operator started');
  }

  /** Stops watching; waits for the reconcile in progress to finish. Safe to call twice or before start. */
  async stop(): Promise<void> {
    const runner = this.runner;
    if (runner === undefined) return;
    // The runner first: it refuses new keys and waits for the pass in flight; then the watch.
    await runner.stop();
    await this.informer?.stop();
    this.runner = undefined;
    this.log.info({}, 'operator stopped');
  }

  /**
   * One full pass: every EgressGateway in the store, and every EgressGateway named as the controller of
   * a pod (so that the pods of a deleted one are removed). One EgressGateway's failure is reported in
   * its result and does not stop the others.
   */
  async reconcileAll(): Promise<GatewayResult[]> {
    const keys = new Set<string>();
    for (const s of (await this.store.list('EgressGateway')).items) keys.add(keyString(s.key.namespace ?? 'default', s.key.name));
    for (const s of (await this.store.list('Pod')).items) {
      const owner = controllingGateway(s.value as unknown as Pod);
      if (owner !== undefined) keys.add(keyString(s.key.namespace ?? 'default', owner.name));
    }
    const results: GatewayResult[] = [];
    for (const k of [...keys].sort()) {
      const { namespace, name } = parseKeyString(k);
      try {
        results.push(await this.reconcile(namespace, name));
      } catch (err) {
        results.push({ namespace, name, state: 'Error', message: err instanceof Error ? err.message : String(err), created: [], deleted: [], wrote: false });
      }
    }
    return results;
  }

  /**
   * Reconciles one EgressGateway (or, when it no longer exists, removes the pods it controlled).
   * Retries the whole pass on Conflict (someone wrote between our read and our write) up to
   * `conflictRetries` times; other errors (store unavailable…) are thrown.
   */
  async reconcile(namespace: string, name: string): Promise<GatewayResult> {
    const total: GatewayResult = { namespace, name, state: 'Error', created: [], deleted: [], wrote: false };
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.pass(namespace, name, total);
        return { ...r, created: total.created, deleted: total.deleted, wrote: total.wrote || r.wrote };
      } catch (err) {
        if (attempt < this.conflictRetries && isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) {
          this.log.debug({ namespace, name, attempt, err: err.message }, 'operator pass met a concurrent write; retrying');
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * One pass of the running operator over the key `namespace/name`, classified for the engine: an
   * invalid EgressGateway (already shown Degraded in its status) is a terminal error, so it is not
   * retried until something changes; Conflict-like errors left after `conflictRetries` are retried with
   * backoff; any other terminal error is shown Degraded in the EgressGateway's status (best effort).
   */
  private async reconcileKey(key: string): Promise<undefined> {
    const { namespace, name } = parseKeyString(key);
    let result: GatewayResult;
    try {
      result = await this.reconcile(namespace, name);
    } catch (err) {
      if (isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) {
        throw new EgwError('Conflict', `EgressGateway ${key}: concurrent writes outlasted ${this.conflictRetries} passes`, { retry: 'retry', cause: err });
      }
      if (err instanceof EgwError && err.retry === 'terminal') await this.showError(namespace, name, err);
      throw err;
    }
    if (result.state === 'Degraded') {
      throw new EgwError('InvalidInput', result.message ?? 'invalid EgressGateway', {
        retry: 'terminal',
        hint: 'fix the EgressGateway or the IP pools it names; it is looked at again on any change',
        details: { namespace, name },
      });
    }
    return undefined;
  }

  /** Writes Degraded with `err` into the EgressGateway's status (one CAS try; a failure is only logged). */
  private async showError(namespace: string, name: string, err: EgwError): Promise<void> {
    try {
      const stored = await this.store.get({ kind: 'EgressGateway', namespace, name });
      if (stored === undefined) return;
      const egw = fromStored<EgressGateway>(stored);
      const previous = (egw.status ?? {}) as Partial<ReplicaCounts>;
      const counts: ReplicaCounts = {
        replicas: previous.replicas ?? 0,
        updatedReplicas: previous.updatedReplicas ?? 0,
        readyReplicas: previous.readyReplicas ?? 0,
        availableReplicas: previous.availableReplicas ?? 0,
      };
      const message = `Error reconciling egress gateway err = ${err.describe()}`;
      const status = nextStatus(egw.status, { state: 'Degraded', message }, counts, egw.metadata.generation ?? 1, new Date(this.clock.now()).toISOString());
      if (stableJson(status) === stableJson(egw.status)) return;
      await this.store.commit([writeOpFor({ ...egw, status }, stored)]);
    } catch (writeErr) {
      this.log.debug({ namespace, name, err: errorMessage(writeErr) }, 'could not show a reconcile error in the EgressGateway status');
    }
  }

  private async pass(namespace: string, name: string, total: GatewayResult): Promise<GatewayResult> {
    const stored = await this.store.get({ kind: 'EgressGateway', namespace, name });
    const podsInNamespace = (await this.store.list('Pod', { namespace })).items;
    const owned: Owned[] = podsInNamespace.map((s) => ({ stored: s, pod: fromStored<Pod>(s) })).filter((o) => controllingGateway(o.pod)?.name === name);
    const nowMs = this.clock.now();
    const now = new Date(nowMs).toISOString();
    const podOps: WriteOp[] = [];
    const removing: string[] = [];
    const remove = (o: Owned): void => {
      const op = this.deletionOp(o, nowMs);
      if (op !== undefined) {
        podOps.push(op);
        removing.push(o.pod.metadata.name);
      }
    };

    if (stored === undefined) {
      for (const o of owned) remove(o);
      // Guarded by "the EgressGateway is still absent": a new one of the same name waits for the next pass.
      await this.commitPods(podOps, 0, total, [], removing);
      if (removing.length > 0) this.log.info({ namespace, name, pods: removing }, 'removing pods of a deleted EgressGateway');
      return { namespace, name, state: 'Absent', created: [], deleted: [], wrote: podOps.length > 0 };
    }

    const egw = fromStored<EgressGateway>(stored);
    const uid = egw.metadata.uid;
    const mine: Owned[] = [];
    for (const o of owned) {
      // A pod controlled by an earlier EgressGateway of the same name (deleted and created again while
      // we were not looking) is an orphan: garbage-collect it, as Kubernetes would.
      if (controllingGateway(o.pod)?.uid === uid) mine.push(o);
      else remove(o);
    }
    // Ended pods never run again, and terminating unscheduled ones have nothing to stop: clear them.
    for (const o of mine) if (hasEnded(o.pod) || (isTerminating(o.pod) && !isScheduled(o.pod))) remove(o);
    const active = mine.filter((o) => isActive(o.pod));

    const pools = await listResources(this.store, 'IPPool');
    const felixStored = await this.store.get({ kind: 'FelixConfiguration', name: 'default' });
    const felix = felixStored === undefined ? undefined : fromStored<FelixConfiguration>(felixStored);
    const problem = this.problemWith(egw, stored, pools);
    const defaulted = defaultEgressGateway(egw);

    const creating: string[] = [];
    let verdict: Verdict;
    let counts: ReplicaCounts;
    if (problem !== undefined) {
      // Invalid: nothing is rendered and the pods stay as they are (as the operator leaves the Deployment).
      verdict = { state: 'Degraded', message: `${VALIDATION_MESSAGE_PREFIX}${problem}` };
      const previousUpdated = (egw.status as { updatedReplicas?: unknown } | undefined)?.updatedReplicas;
      counts = countReplicas(active.map((o) => o.pod), typeof previousUpdated === 'number' ? Math.min(previousUpdated, active.length) : 0);
    } else {
      const template = renderPodTemplate(defaulted, { ...this.render, felix });
      const hash = templateHash(template);
      const replicas = defaulted.spec.replicas ?? 1;
      const plan = planRollout(
        replicas,
        hash,
        active.map((o) => podFacts(o.pod, o.stored.createRevision)),
      );
      const byName = new Map(active.map((o) => [o.pod.metadata.name, o]));
      for (const podName of plan.remove) {
        const o = byName.get(podName);
        if (o !== undefined) remove(o);
      }
      const owner = ownerReferenceTo(egw);
      const newPods: Pod[] = [];
      const taken = new Set(podsInNamespace.map((p) => p.key.name));
      for (let i = 0; i < plan.create; i++) {
        let pod = newGatewayPod({ template, hash, namespace, owner, suffix: this.ids.podSuffix(), uid: this.ids.uid(), now });
        // A name already in use would fail the whole commit: draw again (one created since our read
        // still fails with AlreadyExists, and the pass is retried with new suffixes).
        for (let tries = 0; taken.has(pod.metadata.name) && tries < 10; tries++) {
          pod = newGatewayPod({ template, hash, namespace, owner, suffix: this.ids.podSuffix(), uid: this.ids.uid(), now });
        }
        taken.add(pod.metadata.name);
        newPods.push(pod);
        podOps.push(writeOpFor(pod, undefined));
        creating.push(pod.metadata.name);
      }
      verdict = plan.complete ? { state: 'Ready' } : { state: 'Progressing' };
      const removed = new Set(plan.remove);
      const remaining = [...active.map((o) => o.pod).filter((p) => !removed.has(p.metadata.name)), ...newPods];
      counts = countReplicas(remaining, remaining.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash).length);
    }

    await this.commitPods(podOps, stored.modRevision, total, creating, removing);
    if (creating.length > 0 || removing.length > 0) {
      this.log.info({ namespace, name, created: creating, deleted: removing, state: verdict.state }, 'gateway pods reconciled');
    }

    // Write back the defaults (only when valid, as the operator does) and the status, in one CAS update.
    const spec = problem === undefined ? defaulted.spec : egw.spec;
    const specChanged = stableJson(spec) !== stableJson(egw.spec);
    const generation = (egw.metadata.generation ?? 1) + (specChanged ? 1 : 0);
    const status = nextStatus(egw.status, verdict, counts, generation, now);
    let wrote = podOps.length > 0;
    if (specChanged || stableJson(status) !== stableJson(egw.status)) {
      const next = { ...egw, metadata: { ...egw.metadata, generation }, spec, status } as EgressGateway;
      await this.store.commit([writeOpFor(next, stored)]);
      total.wrote = true;
      wrote = true;
      const before = (egw.status as { state?: unknown } | undefined)?.state;
      if (before !== verdict.state) {
        const fields = { namespace, name, state: verdict.state, ...(verdict.state === 'Degraded' ? { message: verdict.message } : {}) };
        if (verdict.state === 'Degraded') this.log.warn(fields, 'EgressGateway is degraded');
        else this.log.info(fields, 'EgressGateway state changed');
      }
    }
    return {
      namespace,
      name,
      state: verdict.state,
      ...(verdict.state === 'Degraded' ? { message: verdict.message } : {}),
      created: [],
      deleted: [],
      wrote,
    };
  }

  /** The operator's validation message, else the first error of egw's own validation of the stored value. */
  private problemWith(egw: EgressGateway, stored: StoredResource, pools: readonly IPPool[]): string | undefined {
    const operatorProblem = operatorValidationError(egw, pools);
    if (operatorProblem !== undefined) return operatorProblem;
    // A stored resource normally passed validation when it was applied; anything written around the
    // CLI is checked again here, and an invalid one is reported rather than rendered.
    const { issues } = validateDocument(stored.value, { file: 'datastore', documentIndex: 1 });
    const first = issues.find((i) => i.severity === 'error');
    return first === undefined ? undefined : first.path === '' ? first.message : `${first.path}: ${first.message}`;
  }

  /** The write that deletes a pod now (unscheduled) or starts its termination (scheduled); undefined when already terminating. */
  private deletionOp(o: Owned, nowMs: number): WriteOp | undefined {
    if (!isScheduled(o.pod)) return { op: 'delete', key: o.stored.key, expectedRevision: o.stored.modRevision };
    if (isTerminating(o.pod)) return undefined;
    const grace = o.pod.spec.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_SECONDS;
    const marked = {
      ...o.pod,
      metadata: { ...o.pod.metadata, deletionTimestamp: new Date(nowMs + grace * 1000).toISOString(), deletionGracePeriodSeconds: grace },
    } as Pod;
    return writeOpFor(marked, o.stored);
  }

  /**
   * Commits pod writes in chunks that fit one commit, each guarded by a check that the EgressGateway is
   * still at the revision the plan was made from (0: still absent). A crash between chunks is completed
   * by the next pass.
   */
  private async commitPods(ops: readonly WriteOp[], egwRevision: number, total: GatewayResult, creating: readonly string[], removing: readonly string[]): Promise<void> {
    if (ops.length === 0) return;
    const size = MAX_COMMIT_OPS - 1;
    const egwKey = { kind: 'EgressGateway', namespace: total.namespace, name: total.name };
    for (let i = 0; i < ops.length; i += size) {
      const chunk = ops.slice(i, i + size);
      await this.store.commit([{ op: 'check', key: egwKey, expectedRevision: egwRevision }, ...chunk]);
      total.wrote = true;
      for (const op of chunk) {
        if (op.op === 'create' && creating.includes(op.key.name)) total.created.push(op.key.name);
        else if (removing.includes(op.key.name)) total.deleted.push(op.key.name);
      }
    }
  }

  private onEvent(e: InformerEvent): void {
    const r = e.resource;
    switch (r.key.kind) {
      case 'EgressGateway':
        this.enqueue(r.key.namespace ?? 'default', r.key.name);
        return;
      case 'Pod': {
        const owner = controllingGateway(r.value as unknown as Pod);
        if (owner !== undefined) this.enqueue(r.key.namespace ?? 'default', owner.name);
        if (e.type === 'updated') {
          const before = controllingGateway(e.previous.value as unknown as Pod);
          if (before !== undefined && before.name !== owner?.name) this.enqueue(r.key.namespace ?? 'default', before.name);
        }
        return;
      }
      case 'IPPool':
      case 'FelixConfiguration':
        for (const g of this.informer?.list('EgressGateway') ?? []) this.enqueue(g.key.namespace ?? 'default', g.key.name);
        return;
    }
  }

  private enqueue(namespace: string, name: string): void {
    this.runner?.add(keyString(namespace, name));
  }
}

/** The keys of the EgressGateways named as controllers of `pods` (their owners in the actual state). */
function ownerKeys(pods: readonly StoredResource[]): string[] {
  const keys = new Set<string>();
  for (const p of pods) {
    const owner = controllingGateway(p.value as unknown as Pod);
    if (owner !== undefined) keys.add(keyString(p.key.namespace ?? 'default', owner.name));
  }
  return [...keys];
}

/** Replica counts of `pods` (active ones), `updated` of which are of the current template. */
function countReplicas(pods: readonly Pod[], updated: number): ReplicaCounts {
  const ready = pods.filter(isPodReady).length;
  return { replicas: pods.length, updatedReplicas: updated, readyReplicas: ready, availableReplicas: ready };
}

// Namespace and name never contain '/', so it separates them unambiguously.
function keyString(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function parseKeyString(k: string): { namespace: string; name: string } {
  const i = k.indexOf('/');
  return { namespace: k.slice(0, i), name: k.slice(i + 1) };
}
