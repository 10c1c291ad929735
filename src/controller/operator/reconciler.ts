/**
 * The operator's reconciler: every EgressGateway becomes the rendered Deployment, put where the injected
 * {@link GatewayWorkloads} puts workloads — gateway Pod records in the datastore (the lab, the default) or
 * a real `apps/v1` Deployment on Kubernetes — with the operator's validation, default write-back and status.
 *
 * Contract (docs/operator.md has the details):
 * - Level-triggered and idempotent: each pass re-reads the EgressGateway, the IP pools and
 *   FelixConfiguration `default` from the store and the workloads from where they live, renders, and
 *   writes only the difference. A second pass over an unchanged state writes nothing.
 * - Crash-safe: every decision depends on the store alone (no memory between passes), so a pass that
 *   stopped between two commits is completed by the next one.
 * - Optimistic: every write names the revision it read (pods, the EgressGateway); a Conflict restarts
 *   the pass from a fresh read.
 * - Ownership: it only touches workloads whose controlling owner reference is an EgressGateway
 *   (`operator.tigera.io/v1`), never ones that merely carry matching labels.
 * - The pods path is ./datastore-pods.ts, the Kubernetes path ./kube-deployments.ts.
 * - Running: one key per EgressGateway (`namespace/name`) on the reconcile engine (src/reconcile/), so
 *   queueing, backoff with jitter, resync, the in-sync gate and terminal errors are the engine's.
 */
import { defaultEgressGateway, validateDocument, type EgressGateway, type FelixConfiguration, type IPPool } from '../../api/index.js';
import type { Datastore, StoredResource } from '../../datastore/contract.js';
import { Informer, type InformerEvent } from '../../datastore/informer.js';
import { fromStored, listResources, stableJson } from '../../datastore/resources.js';
import { SystemClock, type Clock } from '../../platform/clock.js';
import { EgwError, errorMessage, isEgwError } from '../../platform/errors.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { NoEventRecorder, type EventRecorder, type EventRegarding } from '../../platform/events.js';
import { ReconcileRunner, type KeyStatus, type ReconcileMetrics } from '../../reconcile/index.js';
import { RandomIds, type IdSource } from './ids.js';
import { defaultGatewayImage } from './image.js';
import { DatastorePods } from './datastore-pods.js';
import { renderDeployment, type RenderContext } from './render.js';
import { nextStatus, type ReplicaCounts, type Verdict } from './status.js';
import { operatorValidationError, VALIDATION_MESSAGE_PREFIX } from './validate.js';
import { ownerKey, type GatewayWorkloads, type WorkloadResult } from './workloads.js';

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
  /**
   * Where gateway workloads go; default {@link DatastorePods} on `store` (the lab). On Kubernetes the
   * composition root passes a `KubeDeployments`.
   */
  workloads?: GatewayWorkloads;
  /**
   * Events on the EgressGateway (default: none): Warning `Invalid` while it fails validation, Warning
   * `ReconcileError` for a terminal failure, Normal `Created` when its workloads are created.
   */
  events?: EventRecorder;
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
  /** Workloads created by this call (pods, or the Deployment). */
  created: string[];
  /** Workloads deleted (or pods set terminating) by this call. */
  deleted: string[];
  /** True when anything was written (workloads or the EgressGateway). */
  wrote: boolean;
}

/** The datastore kinds whose changes can change what the operator must do (plus the workloads' own kinds). */
export const OPERATOR_WATCHED_KINDS = ['EgressGateway', 'IPPool', 'FelixConfiguration'] as const;

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
  private readonly workloads: GatewayWorkloads;
  private readonly log: Logger;
  private readonly random: (() => number) | undefined;
  private readonly metrics: ReconcileMetrics | undefined;
  private readonly render: RenderContext;
  private readonly resyncIntervalMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly conflictRetries: number;
  private readonly events: EventRecorder;

  private informer: Informer | undefined;
  private runner: ReconcileRunner | undefined;

  constructor(deps: OperatorDeps, options: OperatorOptions = {}) {
    this.store = deps.store;
    this.clock = deps.clock ?? new SystemClock();
    const ids: IdSource = deps.ids ?? new RandomIds();
    this.workloads = deps.workloads ?? new DatastorePods({ store: this.store, clock: this.clock, ids });
    this.log = deps.logger ?? silentLogger();
    this.random = deps.random;
    this.metrics = deps.metrics;
    this.render = {
      image: options.image ?? defaultGatewayImage(),
      ...(options.command === undefined ? {} : { command: options.command }),
      ...(options.initCommand === undefined ? {} : { initCommand: options.initCommand }),
      ...this.workloads.podSettings,
    };
    this.resyncIntervalMs = options.resyncIntervalMs ?? 60_000;
    this.backoffInitialMs = options.backoffInitialMs ?? 200;
    this.backoffMaxMs = options.backoffMaxMs ?? 10_000;
    this.conflictRetries = options.conflictRetries ?? 8;
    this.events = deps.events ?? new NoEventRecorder();
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
      { kinds: [...OPERATOR_WATCHED_KINDS, ...this.workloads.watchedKinds], backoffInitialMs: this.backoffInitialMs, backoffMaxMs: this.backoffMaxMs },
      // A re-list (history compacted) may have missed anything: look at every EgressGateway again.
      { onEvent: (e) => this.onEvent(e), onSync: () => this.runner?.resync() },
    );
    this.informer = informer;
    this.runner = new ReconcileRunner(
      {
        reconcile: (key) => this.reconcileKey(key),
        listKeys: () => informer.list('EgressGateway').map((g) => keyString(g.key.namespace ?? 'default', g.key.name)),
        listActualKeys: () => this.workloads.ownerKeys(),
        // Both pictures complete: the EgressGateways (and pods) in the datastore, and the workloads' own watch.
        waitForSync: async (signal) => {
          await informer.waitForSync(signal);
          await this.workloads.waitForSync(signal);
        },
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
    this.workloads.start((namespace, name) => this.enqueue(namespace, name));
    this.runner.start();
    this.log.info({ image: this.render.image, workloads: this.workloads.mechanism }, 'operator started');
  }

  /** Stops watching; waits for the reconcile in progress to finish. Safe to call twice or before start. */
  async stop(): Promise<void> {
    const runner = this.runner;
    if (runner === undefined) return;
    // The runner first: it refuses new keys and waits for the pass in flight; then the watch.
    await runner.stop();
    await this.informer?.stop();
    await this.workloads.stop();
    this.runner = undefined;
    this.log.info({}, 'operator stopped');
  }

  /**
   * One full pass: every EgressGateway in the store, and every EgressGateway named as the controller of
   * a workload (so that the workloads of a deleted one are removed). One EgressGateway's failure is reported in
   * its result and does not stop the others.
   */
  async reconcileAll(): Promise<GatewayResult[]> {
    const keys = new Set<string>();
    for (const s of (await this.store.list('EgressGateway')).items) keys.add(keyString(s.key.namespace ?? 'default', s.key.name));
    for (const k of await this.workloads.ownerKeys()) keys.add(k);
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
   * Reconciles one EgressGateway (or, when it no longer exists, removes the workloads it controlled).
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
      if (err instanceof EgwError && err.retry === 'terminal') {
        this.events.record({ kind: 'EgressGateway', namespace, name }, 'Warning', 'ReconcileError', 'Reconcile', err.describe());
        await this.showError(namespace, name, err);
      }
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
      await this.workloads.writeEgressGateway(stored, { ...egw, status }, { specChanged: false, statusChanged: true });
    } catch (writeErr) {
      this.log.debug({ namespace, name, err: errorMessage(writeErr) }, 'could not show a reconcile error in the EgressGateway status');
    }
  }

  private async pass(namespace: string, name: string, total: GatewayResult): Promise<GatewayResult> {
    const stored = await this.store.get({ kind: 'EgressGateway', namespace, name });
    const now = new Date(this.clock.now()).toISOString();
    const note = (r: WorkloadResult): void => {
      total.created.push(...r.created);
      total.deleted.push(...r.deleted);
      if (r.wrote) total.wrote = true;
    };

    if (stored === undefined) {
      const r = await this.workloads.remove({ namespace, name, uid: undefined, revision: 0 });
      note(r);
      if (r.deleted.length > 0) this.log.info({ namespace, name, deleted: r.deleted }, 'removing the workloads of a deleted EgressGateway');
      return { namespace, name, state: 'Absent', created: [], deleted: [], wrote: r.wrote };
    }

    const egw = fromStored<EgressGateway>(stored);
    const owner = { namespace, name, uid: egw.metadata.uid, revision: stored.modRevision };
    const pools = await listResources(this.store, 'IPPool');
    const felixStored = await this.store.get({ kind: 'FelixConfiguration', name: 'default' });
    const felix = felixStored === undefined ? undefined : fromStored<FelixConfiguration>(felixStored);
    const problem = this.problemWith(egw, stored, pools);
    const defaulted = defaultEgressGateway(egw);

    let verdict: Verdict;
    let r: WorkloadResult;
    if (problem !== undefined) {
      // Invalid: nothing is rendered and the workloads stay as they are (as the operator leaves the Deployment).
      verdict = { state: 'Degraded', message: `${VALIDATION_MESSAGE_PREFIX}${problem}` };
      const previousUpdated = (egw.status as { updatedReplicas?: unknown } | undefined)?.updatedReplicas;
      r = await this.workloads.observe(owner, typeof previousUpdated === 'number' ? previousUpdated : 0);
    } else {
      r = await this.workloads.apply(owner, renderDeployment(defaulted, { ...this.render, felix }));
      verdict = r.complete ? { state: 'Ready' } : { state: 'Progressing' };
    }
    note(r);
    const regarding: EventRegarding = { kind: 'EgressGateway', namespace, name, ...(egw.metadata.uid === undefined ? {} : { uid: egw.metadata.uid }) };
    if (verdict.state === 'Degraded') this.events.record(regarding, 'Warning', 'Invalid', 'Validate', verdict.message);
    if (r.created.length > 0) {
      const what = this.workloads.mechanism === 'datastore-pods' ? `gateway pods ${r.created.join(', ')}` : `Deployment ${namespace}/${r.created.join(', ')}`;
      this.events.record(regarding, 'Normal', 'Created', 'Create', `created ${what}`);
    }
    if (r.created.length > 0 || r.deleted.length > 0) {
      const fields = { namespace, name, created: r.created, deleted: r.deleted, state: verdict.state };
      if (this.workloads.mechanism === 'datastore-pods') this.log.info(fields, 'gateway pods reconciled');
      else this.log.info(fields, 'gateway Deployment reconciled');
    }

    // Write back the defaults (only when valid, as the operator does) and the status.
    const spec = problem === undefined ? defaulted.spec : egw.spec;
    const specChanged = stableJson(spec) !== stableJson(egw.spec);
    const generation = (egw.metadata.generation ?? 1) + (specChanged ? 1 : 0);
    const status = nextStatus(egw.status, verdict, r.counts, generation, now);
    const statusChanged = stableJson(status) !== stableJson(egw.status);
    let wrote = r.wrote;
    if (specChanged || statusChanged) {
      const next = { ...egw, metadata: { ...egw.metadata, generation }, spec, status } as EgressGateway;
      await this.workloads.writeEgressGateway(stored, next, { specChanged, statusChanged });
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

  private onEvent(e: InformerEvent): void {
    const r = e.resource;
    switch (r.key.kind) {
      case 'EgressGateway':
        this.enqueue(r.key.namespace ?? 'default', r.key.name);
        return;
      case 'IPPool':
      case 'FelixConfiguration':
        for (const g of this.informer?.list('EgressGateway') ?? []) this.enqueue(g.key.namespace ?? 'default', g.key.name);
        return;
      default:
        for (const owner of this.workloads.ownersOf(e)) this.enqueue(r.key.namespace ?? 'default', owner);
    }
  }

  private enqueue(namespace: string, name: string): void {
    this.runner?.add(keyString(namespace, name));
  }
}

const keyString = ownerKey;

function parseKeyString(k: string): { namespace: string; name: string } {
  const i = k.indexOf('/');
  return { namespace: k.slice(0, i), name: k.slice(i + 1) };
}
