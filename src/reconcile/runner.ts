/**
 * The reconcile engine: a keyed work queue drained by a few workers that call the owner's
 * `reconcile(key)`, with per-key backoff, a periodic resync, an in-sync gate and a prune step that only
 * runs once the first full pass is done. One engine for every level-triggered loop of egw (the operator
 * is the first on it); docs/reconcile.md has the contract and the defaults.
 */
import { pauseUnlessAborted, SystemClock, type Clock } from '../platform/clock.js';
import { EgwError, errorMessage, type RetryClass } from '../platform/errors.js';
import { silentLogger, type Logger } from '../platform/logger.js';
import { backoffDelay, DEFAULT_BACKOFF, resyncDelay, type BackoffPolicy } from './backoff.js';
import { KeyedQueue } from './work-queue.js';

/** What a successful pass can ask for. */
export interface ReconcileResult {
  /** Process the key again after this many ms (at least 1), e.g. to re-check a rollout. */
  requeueAfterMs?: number;
}

/** The owner of the keys: what the engine calls. */
export interface ReconcileOwner {
  /**
   * Converges one key: re-reads its desired and actual state and writes the difference (level-triggered:
   * it never learns why it was called). Returning means done; a throw is classified by its
   * {@link EgwError.retry} class (any other thrown value counts as `retry`). `signal` aborts on `stop()`.
   */
  reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult | undefined | void>;
  /** Every key that should exist (the desired state). Called after the gate and at each resync. */
  listKeys(): Promise<readonly string[]> | readonly string[];
  /**
   * Keys present in the actual state (the prune step): those not in {@link listKeys} are enqueued, and
   * their `reconcile` removes what is left of them. Only called after the first full pass; optional.
   */
  listActualKeys?(): Promise<readonly string[]> | readonly string[];
  /**
   * The in-sync gate: nothing is reconciled, listed or pruned before it resolves (e.g. the informer's
   * first complete list). Called again before each later resync, so that a re-listing source pauses
   * the sweep. Should reject or resolve when `signal` aborts. Absent = always in sync.
   */
  waitForSync?(signal: AbortSignal): Promise<void>;
}

/** How a pass ended: `requeue` is a success that asked for another pass later. */
export type ReconcileOutcome = 'success' | 'requeue' | RetryClass;

/** Metrics hooks (the composition root maps them to prom-client; the engine imports none). */
export interface ReconcileMetrics {
  /** Keys waiting, after every change. */
  queueDepth(depth: number): void;
  /** One pass ended. */
  reconciled(outcome: ReconcileOutcome, durationMs: number): void;
  /** A key was scheduled for a retry after a `retry` or `throttle` error. */
  retried(retryClass: 'retry' | 'throttle', delayMs: number): void;
}

/** Metrics that go nowhere. */
export const NO_METRICS: ReconcileMetrics = { queueDepth: () => undefined, reconciled: () => undefined, retried: () => undefined };

/** The engine's side effects, injected. */
export interface ReconcileRunnerDeps {
  /** Default: the system clock. Drives every delay, the resync and the durations. */
  clock?: Clock;
  /** Default: silent. */
  logger?: Logger;
  /** A number in [0, 1) for the jitter; default Math.random. */
  random?: () => number;
  /** Default: {@link NO_METRICS}. */
  metrics?: ReconcileMetrics;
}

/** Tuning. The defaults are in docs/reconcile.md. */
export interface ReconcileRunnerOptions {
  /** Bound as `runner` on every log line. */
  name: string;
  /** Keys processed at the same time (never the same key twice); default 1. */
  concurrency?: number;
  /** Every key of `listKeys()` is enqueued this often (ms, plus jitter); default 60,000; 0 = only the first listing and {@link ReconcileRunner.resync}. */
  resyncPeriodMs?: number;
  /** Up to this fraction of the period is added to each resync wait; default 0.1. */
  resyncJitter?: number;
  /** Per-key retry backoff; default {@link DEFAULT_BACKOFF}. */
  backoff?: Partial<BackoffPolicy>;
}

/** A key whose last pass failed (a key whose last pass succeeded has no status: success forgets). */
export interface KeyStatus {
  key: string;
  /** `retrying`: a retry is scheduled. `terminal`: not retried until the key is added again (event or resync). */
  state: 'retrying' | 'terminal';
  /** Consecutive failed passes. */
  failures: number;
  retry: RetryClass;
  /** The EgwError code; undefined for a thrown value that is not an EgwError. */
  code: string | undefined;
  message: string;
  /** When the last pass failed (clock ms). */
  failedAt: number;
  /** When the retry is due (clock ms); only while `retrying`. */
  retryAt?: number;
  /** The delay chosen for the last retry (decorrelated jitter grows from it). */
  lastDelayMs?: number;
}

interface Delayed {
  due: number;
  cancel: AbortController;
}

/**
 * Runs an owner's reconcile over a keyed queue. Contract:
 * - a key is never processed by two workers at once; adding a key that waits or is in flight coalesces
 *   (in flight: it is processed once more after the pass ends);
 * - success forgets the key's failures; `retry`/`throttle` errors requeue the key after a per-key
 *   exponential backoff with jitter (capped); `terminal` errors are not requeued: logged once with their
 *   code, readable through {@link status}, retried only when the key is added again;
 * - nothing is reconciled before the owner's `waitForSync()` resolves; then every listed key is
 *   enqueued, again every resync period (with jitter); the prune step runs only once every key of the
 *   first listing has had a pass (and at each later resync);
 * - `stop()` refuses new adds, drops waiting keys and pending retries, and waits for the passes in flight.
 */
export class ReconcileRunner {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly metrics: ReconcileMetrics;
  private readonly concurrency: number;
  private readonly resyncPeriodMs: number;
  private readonly resyncJitter: number;
  private readonly backoff: BackoffPolicy;

  private readonly queue = new KeyedQueue();
  private readonly delayed = new Map<string, Delayed>();
  private readonly statuses = new Map<string, KeyStatus>();
  /** Keys whose status was seen gone at the last resync (see {@link forgetStatuses}). */
  private goneOnce = new Set<string>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  private firstPassDone = false;
  /** Keys of the first listing that have not had a pass yet. */
  private firstPass: Set<string> | undefined;
  private firstPassDrained: (() => void) | undefined;
  private resyncRequested = false;
  private wakeResync: (() => void) | undefined;
  private lastListError: string | undefined;

  constructor(
    private readonly owner: ReconcileOwner,
    deps: ReconcileRunnerDeps,
    options: ReconcileRunnerOptions,
  ) {
    this.clock = deps.clock ?? new SystemClock();
    this.log = (deps.logger ?? silentLogger()).child({ runner: options.name });
    this.random = deps.random ?? Math.random;
    this.metrics = deps.metrics ?? NO_METRICS;
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    this.resyncPeriodMs = options.resyncPeriodMs ?? 60_000;
    this.resyncJitter = options.resyncJitter ?? 0.1;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    if (this.backoff.baseMs <= 0 || this.backoff.capMs < this.backoff.baseMs) {
      throw new EgwError('InvalidInput', `bad backoff: base ${this.backoff.baseMs} ms, cap ${this.backoff.capMs} ms`, { hint: 'use 0 < base <= cap' });
    }
  }

  /** True once the gate has opened and every key of the first listing has had a pass (prune allowed). */
  get synced(): boolean {
    return this.firstPassDone;
  }

  /** Keys waiting for a worker. */
  get depth(): number {
    return this.queue.depth;
  }

  /** Why the last listing failed, while it keeps failing. */
  get listError(): string | undefined {
    return this.lastListError;
  }

  /** Starts the gate, the workers and the resync. Idempotent; a stopped runner stays stopped. */
  start(): void {
    if (this.running !== undefined || this.abort.signal.aborted) return;
    this.running = this.run();
  }

  /**
   * Queues `key` for a pass (coalesced with a waiting or in-flight one). Allowed before `start()` (the
   * pass runs once the gate opens). False once stopping.
   */
  add(key: string): boolean {
    const accepted = this.queue.add(key);
    if (accepted) this.metrics.queueDepth(this.queue.depth);
    return accepted;
  }

  /**
   * Queues `key` after `ms` (at least 1). A key has at most one pending delay: the earlier one wins, and a
   * pass of the key cancels it (the pass decides its own next time). False once stopping.
   */
  addAfter(key: string, ms: number): boolean {
    if (this.queue.isShutDown) return false;
    const delay = Math.max(1, Math.floor(ms));
    const due = this.clock.now() + delay;
    const existing = this.delayed.get(key);
    if (existing !== undefined && existing.due <= due) return true;
    existing?.cancel.abort();
    const entry: Delayed = { due, cancel: new AbortController() };
    this.delayed.set(key, entry);
    this.clock.sleep(delay, entry.cancel.signal).then(
      () => {
        if (this.delayed.get(key) !== entry) return;
        this.delayed.delete(key);
        this.add(key);
      },
      () => undefined,
    );
    return true;
  }

  /** Lists every key again now (after the gate), and prunes when the first pass is done. */
  resync(): void {
    this.resyncRequested = true;
    this.wakeResync?.();
  }

  /** The failure status of `key`; undefined when its last pass succeeded (or it never ran). */
  status(key: string): KeyStatus | undefined {
    const s = this.statuses.get(key);
    return s === undefined ? undefined : { ...s };
  }

  /** Every key whose last pass failed, sorted by key. */
  failing(): KeyStatus[] {
    return [...this.statuses.values()].map((s) => ({ ...s })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Stops: refuses new adds, drops waiting keys and pending retries, waits for the passes in flight and
   * the resync in progress. Safe to call twice, and before `start()`.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.abort.abort();
      this.queue.shutDown();
      for (const d of this.delayed.values()) d.cancel.abort();
      this.delayed.clear();
      this.wakeResync?.();
      this.firstPassDrained?.();
      await this.running;
      this.metrics.queueDepth(0);
    })();
    return this.stopped;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    if (!(await this.gate(signal))) return;
    const workers = Array.from({ length: this.concurrency }, () => this.worker(signal));
    await this.resyncLoop(signal);
    await Promise.all(workers);
  }

  /** Waits for the owner's in-sync condition; false when stopped first. A rejecting gate is retried with backoff. */
  private async gate(signal: AbortSignal): Promise<boolean> {
    if (this.owner.waitForSync === undefined) return !signal.aborted;
    for (let failures = 1; !signal.aborted; failures++) {
      try {
        await raceAbort(this.owner.waitForSync(signal), signal);
        return !signal.aborted;
      } catch (err) {
        if (signal.aborted) return false;
        const delay = backoffDelay(this.backoff, failures, undefined, this.random());
        this.log.warn({ err: errorMessage(err), retryInMs: delay }, 'waiting for sync failed; will wait again');
        await pauseUnlessAborted(this.clock, delay, signal);
      }
    }
    return false;
  }

  private async worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.metrics.queueDepth(this.queue.depth);
      const pending = this.delayed.get(key);
      if (pending !== undefined) {
        pending.cancel.abort();
        this.delayed.delete(key);
      }
      const countsForFirstPass = this.firstPass?.has(key) === true;
      const started = this.clock.now();
      let outcome: ReconcileOutcome;
      try {
        const result = await this.owner.reconcile(key, signal);
        this.statuses.delete(key);
        const after = result?.requeueAfterMs;
        if (after !== undefined && !signal.aborted) {
          this.addAfter(key, after);
          outcome = 'requeue';
        } else {
          outcome = 'success';
        }
      } catch (err) {
        outcome = classify(err);
        this.failed(key, err, outcome, signal);
      }
      this.metrics.reconciled(outcome, this.clock.now() - started);
      this.queue.done(key);
      this.metrics.queueDepth(this.queue.depth);
      if (countsForFirstPass) this.passed(key);
    }
  }

  private failed(key: string, err: unknown, retry: RetryClass, signal: AbortSignal): void {
    const previous = this.statuses.get(key);
    const now = this.clock.now();
    const code = err instanceof EgwError ? err.code : undefined;
    const message = errorMessage(err);
    const failures = (previous?.failures ?? 0) + 1;
    if (retry === 'terminal') {
      const same = previous?.state === 'terminal' && previous.code === code && previous.message === message;
      this.statuses.set(key, { key, state: 'terminal', failures, retry, code, message, failedAt: now });
      // Logged once: the same terminal error seen again on a resync is not news.
      if (same) this.log.debug({ key, code, failures }, 'reconcile failed again with the same terminal error');
      else this.log.warn({ key, code, err: message }, 'reconcile failed with a terminal error; not retried until the key is added again');
      return;
    }
    if (signal.aborted) return;
    const delay = backoffDelay(this.backoff, failures, previous?.lastDelayMs, this.random(), retry === 'throttle');
    this.statuses.set(key, { key, state: 'retrying', failures, retry, code, message, failedAt: now, retryAt: now + delay, lastDelayMs: delay });
    this.metrics.retried(retry, delay);
    this.log.warn({ key, code, retry, failures, retryInMs: delay, err: message }, 'reconcile failed; will retry');
    this.addAfter(key, delay);
  }

  /** A key of the first listing had its pass. */
  private passed(key: string): void {
    const first = this.firstPass;
    if (first === undefined) return;
    first.delete(key);
    if (first.size === 0) this.firstPassDrained?.();
  }

  private async resyncLoop(signal: AbortSignal): Promise<void> {
    let listFailures = 0;
    let first = true;
    while (!signal.aborted) {
      this.resyncRequested = false;
      let delay: number;
      // Later resyncs pass the gate again: a source that is re-listing has no complete picture to sweep by.
      const inSync = first || (await this.gate(signal));
      if (signal.aborted) return;
      const desired = inSync ? await this.listDesired() : undefined;
      if (desired === undefined) {
        listFailures += 1;
        delay = backoffDelay(this.backoff, listFailures, undefined, this.random());
        if (this.resyncPeriodMs > 0) delay = Math.min(delay, this.resyncPeriodMs);
      } else {
        listFailures = 0;
        if (first) {
          first = false;
          await this.firstFullPass(desired, signal);
          if (signal.aborted) return;
          this.firstPassDone = true;
          this.log.info({ keys: desired.size }, 'first full pass done');
        }
        await this.prune(desired);
        delay = this.resyncPeriodMs > 0 ? resyncDelay(this.resyncPeriodMs, this.resyncJitter, this.random()) : 0;
      }
      if (this.resyncRequested) continue;
      // Period 0: no timer, only resync() (and a failed listing, which retries on its backoff) wake us.
      const timed = desired === undefined || this.resyncPeriodMs > 0;
      await this.waitForResync(timed ? delay : undefined, signal);
    }
  }

  /** Lists the desired keys and enqueues them; undefined when the listing failed (logged, retried). */
  private async listDesired(): Promise<Set<string> | undefined> {
    try {
      const keys = new Set(await this.owner.listKeys());
      this.lastListError = undefined;
      if (!this.firstPassDone && this.firstPass === undefined) this.firstPass = new Set(keys);
      for (const k of keys) this.add(k);
      return keys;
    } catch (err) {
      this.lastListError = errorMessage(err);
      this.log.warn({ err: this.lastListError }, 'listing the keys failed; will list again');
      return undefined;
    }
  }

  /** Waits until every key of the first listing has had one pass (any outcome), or stop. */
  private async firstFullPass(desired: ReadonlySet<string>, signal: AbortSignal): Promise<void> {
    const first = this.firstPass;
    if (first === undefined || first.size === 0 || desired.size === 0) return;
    await new Promise<void>((resolve) => {
      this.firstPassDrained = resolve;
      if (signal.aborted) resolve();
    });
    this.firstPassDrained = undefined;
  }

  /** Enqueues the keys that exist in the actual state but are not desired: their pass removes them. */
  private async prune(desired: ReadonlySet<string>): Promise<void> {
    if (!this.firstPassDone) return;
    if (this.owner.listActualKeys === undefined) {
      this.forgetStatuses(desired, undefined);
      return;
    }
    try {
      const actual = new Set(await this.owner.listActualKeys());
      const orphans = [...actual].filter((k) => !desired.has(k));
      for (const k of orphans) this.add(k);
      if (orphans.length > 0) this.log.info({ keys: orphans.length }, 'pruning keys that are no longer desired');
      this.forgetStatuses(desired, actual);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'listing the actual keys failed; prune waits for the next resync');
    }
  }

  /**
   * Forgets the failure status of keys that are neither desired nor present (a pod deleted while its key
   * failed terminally would otherwise be reported, and held, for as long as the program runs). A key still
   * waiting for a pass or a retry keeps its status: the pass decides. Gone at two resyncs in a row, so
   * that an event key failing between a listing and its prune is still reported until the next one.
   */
  private forgetStatuses(desired: ReadonlySet<string>, actual: ReadonlySet<string> | undefined): void {
    const gone = new Set<string>();
    for (const key of [...this.statuses.keys()]) {
      if (desired.has(key) || actual?.has(key) === true || this.delayed.has(key) || this.queue.isQueued(key)) continue;
      if (this.goneOnce.has(key)) this.statuses.delete(key);
      else gone.add(key);
    }
    this.goneOnce = gone;
  }

  private async waitForResync(ms: number | undefined, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.resyncRequested) return;
    const woken = new Promise<void>((resolve) => {
      this.wakeResync = resolve;
    });
    const sleeper = new AbortController();
    const timer = ms === undefined ? new Promise<void>(() => undefined) : this.clock.sleep(ms, sleeper.signal).catch(() => undefined);
    try {
      await Promise.race([woken, timer]);
    } finally {
      sleeper.abort();
      this.wakeResync = undefined;
    }
  }
}

/** The retry class of a thrown value: an EgwError's own, `retry` for anything else (an unexpected bug may pass). */
export function classify(err: unknown): RetryClass {
  return err instanceof EgwError ? err.retry : 'retry';
}

/** `p`, or rejection when `signal` aborts first (for gates that ignore the signal). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new EgwError('Timeout', 'stopped'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new EgwError('Timeout', 'stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
