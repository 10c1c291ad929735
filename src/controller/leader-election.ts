/**
 * Leader election for `egw controller`, over the datastore contract, as client-go's `leaderelection`
 * does it over a coordination.k8s.io Lease (docs/operator.md, "Leader election").
 *
 * The lease is one resource, kind `Lease` in `egw-system`, named `egw-controller`, whose value is a
 * Kubernetes coordination.k8s.io/v1 Lease object. It is only ever written with single-op commits (a
 * `create`, or an `update` with `expectedRevision`), which every backend supports, the Kubernetes one
 * included.
 *
 * The core ({@link observeLease}, {@link decideElection}, {@link renewDeadlineAt}, {@link releasedLease})
 * is pure; {@link LeaderElector} does the I/O and the timing with an injected clock.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Datastore, JsonObject, ResourceKey, StoredResource } from '../datastore/contract.js';
import type { Clock } from '../platform/clock.js';
import { EgwError, errorMessage, isEgwError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { silentLogger } from '../platform/logger.js';

/** Where the controller's lease lives (the Kubernetes backend maps it to the real Lease object). */
export const CONTROLLER_LEASE_KEY: ResourceKey = { kind: 'Lease', namespace: 'egw-system', name: 'egw-controller' };

/** The fields of a Lease's `spec` that the election uses. `holderIdentity` `''` = free (released). */
export interface LeaseSpec {
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** MicroTime (RFC 3339 with microseconds), as client-go writes it. */
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

/** A coordination.k8s.io/v1 Lease as stored. */
export interface LeaseObject {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string };
  spec: LeaseSpec;
}

/** The three durations of client-go's leader election. */
export interface LeaderElectionTiming {
  /** How long a candidate waits, from when it last saw the lease change, before taking it over. */
  leaseDurationMs: number;
  /** How long a leader keeps leading without a successful renewal (measured from the start of the last one). */
  renewDeadlineMs: number;
  /** Pause between attempts, for candidates and leaders alike. */
  retryPeriodMs: number;
}

/** client-go's defaults (kube-controller-manager's too): 15 s, 10 s, 2 s. */
export const DEFAULT_LEADER_ELECTION_TIMING: Readonly<LeaderElectionTiming> = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/**
 * Checks client-go's rules: leaseDuration > renewDeadline > 1.2 × retryPeriod > 0. The gap between
 * leaseDuration and renewDeadline is the time a leader that lost its lease has to stop its work before
 * anyone else may start. Throws `InvalidInput`.
 */
export function checkTiming(t: LeaderElectionTiming): LeaderElectionTiming {
  const bad = (why: string): never => {
    throw new EgwError('InvalidInput', `leader election timing: ${why}`, { hint: 'e.g. lease duration 15s, renew deadline 10s, retry period 2s' });
  };
  if (!(t.retryPeriodMs > 0)) bad('the retry period must be positive');
  if (!(t.renewDeadlineMs > 1.2 * t.retryPeriodMs)) bad('the renew deadline must be longer than 1.2 × the retry period');
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) bad('the lease duration must be longer than the renew deadline');
  return t;
}

/** This process's default identity: hostname, pid and a random suffix (unique even across restarts in one pod). */
export function defaultIdentity(): string {
  return `${hostname()}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Kubernetes MicroTime, as client-go writes it: `2006-01-02T15:04:05.000000Z`. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Reads a stored Lease's spec (parse at the boundary). Missing optional fields read as Kubernetes reads
 * them (no holder = free, 0 transitions); a value that is not a Lease at all is `undefined`, which the
 * election treats as held by someone unknown (it waits a lease duration, then takes it over).
 */
export function parseLease(value: JsonObject): LeaseSpec | undefined {
  const spec = value['spec'];
  if (value['kind'] !== 'Lease' || spec === null || typeof spec !== 'object' || Array.isArray(spec)) return undefined;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  return {
    holderIdentity: str(spec['holderIdentity']),
    leaseDurationSeconds: num(spec['leaseDurationSeconds']),
    acquireTime: str(spec['acquireTime']),
    renewTime: str(spec['renewTime']),
    leaseTransitions: num(spec['leaseTransitions']),
  };
}

/** A version of the lease and when this process first saw it (its own clock: the only one it trusts). */
export interface LeaseObservation {
  modRevision: number;
  /** `undefined` when the stored value is not a readable Lease. */
  spec: LeaseSpec | undefined;
  observedAt: number;
}

/**
 * Folds a read of the lease into the observation (pure). The observation time only moves when the lease
 * changed (another revision), so "unchanged for a lease duration" is measured by the reader's own clock,
 * never by comparing the holder's `renewTime` with it (clocks of two hosts differ; their rates do not
 * much). Absent lease → no observation.
 */
export function observeLease(previous: LeaseObservation | undefined, current: StoredResource | undefined, now: number): LeaseObservation | undefined {
  if (current === undefined) return undefined;
  if (previous !== undefined && previous.modRevision === current.modRevision) return previous;
  return { modRevision: current.modRevision, spec: parseLease(current.value), observedAt: now };
}

/** What to do after a read of the lease. */
export type ElectionDecision =
  /** No lease: create it, held by us. */
  | { action: 'create'; value: LeaseObject }
  /** Take the lease over (free, expired, or ours from a previous life) or renew it: CAS on the revision read. */
  | { action: 'update'; value: LeaseObject; expectedRevision: number; takeover: boolean; previousHolder: string }
  /** Someone else holds it and it has not expired by our observation. */
  | { action: 'wait'; holder: string; expiresInMs: number }
  /** We were leading, but the lease now names someone else (or nobody): stop leading at once. */
  | { action: 'lost'; holder: string };

/** Holder shown for a stored value that is not a readable Lease. */
export const UNREADABLE_HOLDER = '(unreadable lease)';

export interface ElectionInput {
  identity: string;
  timing: LeaderElectionTiming;
  key: ResourceKey;
  /** True while this process leads (it holds the lease by its last successful write). */
  leading: boolean;
  /** The observation after folding in `current` ({@link observeLease}). */
  observed: LeaseObservation | undefined;
  /** The lease as just read; undefined = absent. */
  current: StoredResource | undefined;
  now: number;
}

/**
 * client-go's `tryAcquireOrRenew` as a pure decision:
 * - absent → create it, held by us, 0 transitions;
 * - held by us → renew (acquireTime and transitions kept);
 * - we lead but it names another holder (or none) → lost (client-go would retry until the renew
 *   deadline; stopping at once is safer, the other side may already act);
 * - free (released) → take it over at once;
 * - held by another and unchanged for a lease duration by our observation → take it over;
 *   the duration is the longer of ours and the one the record states, so a candidate configured
 *   shorter than the holder (a rolling update changing it) never takes over early;
 * - otherwise wait.
 * A takeover sets acquireTime = renewTime = now and leaseTransitions + 1.
 */
export function decideElection(input: ElectionInput): ElectionDecision {
  const { identity, timing, current, now } = input;
  const fresh = (spec: LeaseSpec | undefined, takeover: boolean): LeaseObject => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: input.key.name, namespace: input.key.namespace ?? '' },
    spec: {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(timing.leaseDurationMs / 1000),
      acquireTime: takeover || spec === undefined || spec.acquireTime === '' ? microTime(now) : spec.acquireTime,
      renewTime: microTime(now),
      leaseTransitions: spec === undefined ? 0 : takeover ? spec.leaseTransitions + 1 : spec.leaseTransitions,
    },
  });
  if (current === undefined) return { action: 'create', value: fresh(undefined, false) };
  const spec = input.observed?.spec;
  const holder = spec === undefined ? UNREADABLE_HOLDER : spec.holderIdentity;
  if (holder === identity) {
    return { action: 'update', value: fresh(spec, false), expectedRevision: current.modRevision, takeover: false, previousHolder: holder };
  }
  if (input.leading) return { action: 'lost', holder };
  if (holder === '') return { action: 'update', value: fresh(spec, true), expectedRevision: current.modRevision, takeover: true, previousHolder: holder };
  const durationMs = Math.max(timing.leaseDurationMs, (spec?.leaseDurationSeconds ?? 0) * 1000);
  const expiresAt = (input.observed?.observedAt ?? now) + durationMs;
  if (now < expiresAt) return { action: 'wait', holder, expiresInMs: expiresAt - now };
  return { action: 'update', value: fresh(spec, true), expectedRevision: current.modRevision, takeover: true, previousHolder: holder };
}

/**
 * When a leader must have stopped: the renew deadline after the START of its last successful write.
 * Others measure the lease duration from when they saw that write, which is later, so the leader
 * stops at least leaseDuration − renewDeadline before anyone may take over.
 */
export function renewDeadlineAt(lastRenewStartedAt: number, timing: LeaderElectionTiming): number {
  return lastRenewStartedAt + timing.renewDeadlineMs;
}

/** The lease as a leader leaves it on a graceful stop (client-go's release): no holder, so a candidate takes it at once. */
export function releasedLease(current: LeaseObject, now: number): LeaseObject {
  return {
    ...current,
    spec: { ...current.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: microTime(now), renewTime: microTime(now) },
  };
}

export interface LeaderElectorDeps {
  store: Datastore;
  clock: Clock;
  logger?: Logger;
  /** Told of every change of leadership (for a gauge such as `egw_controller_leader`). */
  onLeadingChange?: (leading: boolean) => void;
}

export interface LeaderElectorOptions extends Partial<LeaderElectionTiming> {
  /** Unique among the candidates ({@link defaultIdentity}). */
  identity: string;
  /** The lease (default {@link CONTROLLER_LEASE_KEY}). */
  key?: ResourceKey;
}

/**
 * How {@link LeaderElector.run} ended: `stopped` (the stop signal; the lease was released), `lost` (the
 * lease could not be renewed in time or another holder appeared; the work was stopped, nothing
 * released), `work-ended` (the work returned on its own; the lease was released).
 */
export type ElectionOutcome = 'stopped' | 'lost' | 'work-ended';

type AttemptResult =
  | { kind: 'leading'; written: StoredResource; decision: ElectionDecision }
  | { kind: 'waiting'; holder: string; expiresInMs: number | undefined }
  | { kind: 'lost'; holder: string }
  | { kind: 'failed'; err: unknown };

/** One candidate. Not reusable: {@link run} campaigns, leads once, and returns. */
export class LeaderElector {
  readonly identity: string;
  readonly timing: LeaderElectionTiming;
  private readonly key: ResourceKey;
  private readonly log: Logger;
  private observed: LeaseObservation | undefined;
  private leading = false;
  private lastHolderLogged: string | undefined;

  constructor(
    private readonly deps: LeaderElectorDeps,
    options: LeaderElectorOptions,
  ) {
    this.identity = options.identity;
    this.key = options.key ?? CONTROLLER_LEASE_KEY;
    this.timing = checkTiming({
      leaseDurationMs: options.leaseDurationMs ?? DEFAULT_LEADER_ELECTION_TIMING.leaseDurationMs,
      renewDeadlineMs: options.renewDeadlineMs ?? DEFAULT_LEADER_ELECTION_TIMING.renewDeadlineMs,
      retryPeriodMs: options.retryPeriodMs ?? DEFAULT_LEADER_ELECTION_TIMING.retryPeriodMs,
    });
    this.log = deps.logger ?? silentLogger();
  }

  /** True while this candidate leads (between acquiring and stopping the work). */
  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns every retry period until it holds the lease, then calls `lead` with a signal that aborts
   * when leadership ends, and renews every retry period. Leadership ends:
   * - when no renewal succeeded for the renew deadline, or a read shows another holder: the signal
   *   aborts at once, `run` waits for `lead` to settle and returns `lost` (the lease is left to expire);
   * - when `stop` aborts or `lead` settles on its own: the signal aborts, `run` waits for `lead`, then
   *   releases the lease (only if it still names us) and returns `stopped` / `work-ended`.
   * `stop` before acquiring returns `stopped` without writing. Never throws for datastore failures
   * (they are logged and retried); a `lead` that throws is logged and counts as `work-ended`.
   */
  async run(stop: AbortSignal, lead: (leading: AbortSignal) => Promise<void>): Promise<ElectionOutcome> {
    const clock = this.deps.clock;
    this.log.info({ identity: this.identity, lease: this.key, ...this.timing }, 'leader election started');
    let renewedAt: number;
    for (;;) {
      if (stop.aborted) return 'stopped';
      const startedAt = clock.now();
      // A call that hangs must not freeze the campaign: give up on it after the renew deadline (if it
      // lands later, the next attempt finds the lease held by us and renews it).
      const r = (await this.race(this.attempt(), [stop], startedAt + this.timing.renewDeadlineMs)) ?? (stop.aborted ? undefined : timedOut);
      if (r?.kind === 'leading') {
        renewedAt = startedAt;
        this.log.info(
          { identity: this.identity, previousHolder: r.decision.action === 'update' ? r.decision.previousHolder : '', leaseTransitions: leaseTransitions(r.written) },
          'leadership acquired',
        );
        break;
      }
      if (r?.kind === 'waiting' && r.holder !== this.lastHolderLogged) {
        this.lastHolderLogged = r.holder;
        this.log.info({ identity: this.identity, holder: r.holder }, 'lease held by another controller, waiting');
      }
      if (r?.kind === 'failed') this.log.warn({ identity: this.identity, err: errorMessage(r.err) }, 'leader election attempt failed');
      // Wake exactly when the holder's lease expires by our observation, so that a takeover comes no
      // later than leaseDuration + retryPeriod after the holder's last renewal.
      const expiresInMs = r?.kind === 'waiting' ? (r.expiresInMs ?? Infinity) : Infinity;
      await this.pause(Math.min(this.timing.retryPeriodMs, Math.max(1, expiresInMs - (clock.now() - startedAt))), [stop]);
    }

    this.setLeading(true);
    const leading = new AbortController();
    const workDone = new AbortController();
    const work = Promise.resolve()
      .then(() => lead(leading.signal))
      .catch((err: unknown) => this.log.error({ identity: this.identity, err: errorMessage(err) }, 'leader work failed'))
      .finally(() => workDone.abort());

    let outcome: ElectionOutcome | undefined;
    let lostReason = '';
    while (outcome === undefined) {
      const deadline = renewDeadlineAt(renewedAt, this.timing);
      await this.pause(Math.min(this.timing.retryPeriodMs, deadline - clock.now()), [stop, workDone.signal]);
      if (stop.aborted) outcome = 'stopped';
      else if (workDone.signal.aborted) outcome = 'work-ended';
      else if (clock.now() >= deadline) {
        outcome = 'lost';
        lostReason = 'renew deadline passed';
      } else {
        const startedAt = clock.now();
        const r = await this.race(this.attempt(), [], deadline);
        if (r === undefined) continue; // the deadline came first: the next turn says lost
        if (r.kind === 'leading') renewedAt = startedAt;
        else if (r.kind === 'lost' || r.kind === 'waiting') {
          outcome = 'lost';
          lostReason = `the lease names ${JSON.stringify(r.holder)}`;
        } else this.log.warn({ identity: this.identity, err: errorMessage(r.err), renewDeadlineInMs: deadline - clock.now() }, 'lease renewal failed');
      }
    }

    // Stop the work first: once the lease is released (or expires), a successor starts at once.
    leading.abort(new EgwError('Internal', `leadership ended (${outcome})`));
    if (outcome === 'lost') this.log.error({ identity: this.identity, reason: lostReason, lastRenewAgoMs: clock.now() - renewedAt }, 'leadership lost');
    await work;
    this.setLeading(false);
    if (outcome !== 'lost') await this.release();
    return outcome;
  }

  /** Reads the lease, decides, writes at most one single-op commit. Mutates nothing but the observation. */
  private async attempt(): Promise<AttemptResult> {
    try {
      const current = await this.deps.store.get(this.key);
      // Observed after the read returned, never before: an earlier time would expire the holder early.
      const now = this.deps.clock.now();
      this.observed = observeLease(this.observed, current, now);
      const decision = decideElection({ identity: this.identity, timing: this.timing, key: this.key, leading: this.leading, observed: this.observed, current, now });
      if (decision.action === 'wait') return { kind: 'waiting', holder: decision.holder, expiresInMs: decision.expiresInMs };
      if (decision.action === 'lost') return { kind: 'lost', holder: decision.holder };
      const value = decision.value as unknown as JsonObject;
      const op = decision.action === 'create' ? { op: 'create' as const, key: this.key, value } : { op: 'update' as const, key: this.key, value, expectedRevision: decision.expectedRevision };
      const { results } = await this.deps.store.commit([op]);
      const written = results[0];
      if (written === undefined) throw new EgwError('Internal', 'a lease commit returned no resource');
      this.observed = observeLease(this.observed, written, now);
      return { kind: 'leading', written, decision };
    } catch (err) {
      // Another candidate won the race for the same revision: it leads; we wait like for any holder.
      if (isEgwError(err, 'Conflict', 'AlreadyExists')) return { kind: 'waiting', holder: '(another candidate)', expiresInMs: undefined };
      return { kind: 'failed', err };
    }
  }

  /** Clears the holder if the lease still names us (CAS), so that a successor need not wait for expiry. */
  private async release(): Promise<void> {
    try {
      const current = await this.deps.store.get(this.key);
      const spec = current === undefined ? undefined : parseLease(current.value);
      if (current === undefined || spec?.holderIdentity !== this.identity) return;
      const value = releasedLease(current.value as unknown as LeaseObject, this.deps.clock.now()) as unknown as JsonObject;
      await this.deps.store.commit([{ op: 'update', key: this.key, value, expectedRevision: current.modRevision }]);
      this.log.info({ identity: this.identity, leaseTransitions: spec.leaseTransitions }, 'leadership released');
    } catch (err) {
      this.log.warn({ identity: this.identity, err: errorMessage(err) }, 'lease release failed; successors wait for it to expire');
    }
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    this.deps.onLeadingChange?.(leading);
  }

  /** `p`, or undefined when a signal aborts or the clock reaches `deadline` first (`p` then runs on, ignored). */
  private async race<T>(p: Promise<T>, signals: AbortSignal[], deadline: number | undefined): Promise<T | undefined> {
    const done = new AbortController();
    const waits: Promise<undefined>[] = signals.map((s) => aborted(s, done.signal));
    if (deadline !== undefined) waits.push(this.pause(deadline - this.deps.clock.now(), [done.signal]).then(() => undefined));
    try {
      return await Promise.race([p, ...waits]);
    } finally {
      done.abort();
    }
  }

  /** Sleeps `ms` on the clock, or less when a signal aborts. Never rejects. */
  private async pause(ms: number, signals: AbortSignal[]): Promise<void> {
    if (ms <= 0 || signals.some((s) => s.aborted)) return;
    const done = new AbortController();
    const any = AbortSignal.any([...signals, done.signal]);
    try {
      await Promise.race([this.deps.clock.sleep(Math.max(0, ms), any).catch(() => undefined), aborted(any, done.signal)]);
    } finally {
      done.abort();
    }
  }
}

const timedOut: AttemptResult = { kind: 'failed', err: new EgwError('Timeout', 'the datastore did not answer within the renew deadline') };

function leaseTransitions(r: StoredResource): number {
  return parseLease(r.value)?.leaseTransitions ?? 0;
}

/** Resolves (undefined) when `signal` aborts; `cleanup` aborting removes the listener (and resolves too). */
function aborted(signal: AbortSignal, cleanup: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    if (signal.aborted || cleanup.aborted) {
      resolve(undefined);
      return;
    }
    const done = (): void => {
      signal.removeEventListener('abort', done);
      cleanup.removeEventListener('abort', done);
      resolve(undefined);
    };
    signal.addEventListener('abort', done, { once: true });
    cleanup.addEventListener('abort', done, { once: true });
  });
}
