/**
 * Leader election: the pure decision (fake clock, no store), then electors over one real store (SQLite
 * always, etcd when EGW_TEST_ETCD is set) driven by a fake clock that only moves when no datastore call
 * is in flight, so that every timing below is exact in simulated time.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CONTROLLER_LEASE_KEY,
  checkTiming,
  decideElection,
  DEFAULT_LEADER_ELECTION_TIMING,
  LeaderElector,
  microTime,
  observeLease,
  parseLease,
  releasedLease,
  renewDeadlineAt,
  type ElectionOutcome,
  type LeaseObject,
  type LeaseObservation,
} from '../../src/controller/leader-election.js';
import type { CommitResult, Datastore, JsonObject, ResourceKey, StoredResource, WriteOp } from '../../src/datastore/contract.js';
import { openDatastore } from '../../src/datastore/open.js';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { FakeClock } from '../../src/platform/clock.js';
import { EgwError } from '../../src/platform/errors.js';
import { FlakyDatastore } from '../datastore/flaky-datastore.js';

const T = DEFAULT_LEADER_ELECTION_TIMING;
const key = CONTROLLER_LEASE_KEY;
const T0 = 1_700_000_000_000;

function stored(spec: Partial<LeaseObject['spec']>, modRevision = 7): StoredResource {
  const value: LeaseObject = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'egw-controller', namespace: 'egw-system' },
    spec: { holderIdentity: 'b', leaseDurationSeconds: 15, acquireTime: microTime(T0), renewTime: microTime(T0), leaseTransitions: 3, ...spec },
  };
  return { key, value: value as unknown as JsonObject, createRevision: 1, modRevision };
}

function decide(current: StoredResource | undefined, now: number, observed: LeaseObservation | undefined, leading = false) {
  const obs = observeLease(observed, current, now);
  return { obs, decision: decideElection({ identity: 'a', timing: T, key, leading, observed: obs, current, now }) };
}

describe('the election decision (pure)', () => {
  it('absent → create, held by us, 0 transitions, MicroTime stamps', () => {
    const { decision } = decide(undefined, T0, undefined);
    expect(decision.action).toBe('create');
    if (decision.action !== 'create') return;
    expect(decision.value).toEqual({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'egw-controller', namespace: 'egw-system' },
      spec: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: '2023-11-14T22:13:20.000000Z', renewTime: '2023-11-14T22:13:20.000000Z', leaseTransitions: 0 },
    });
  });

  it('held by another and fresh → wait, whatever its renewTime says against our clock', () => {
    // renewTime an hour old by our clock: client-go's rule ignores it, only our observation counts.
    const lease = stored({ renewTime: microTime(T0 - 3_600_000) });
    const first = decide(lease, T0, undefined);
    expect(first.decision).toEqual({ action: 'wait', holder: 'b', expiresInMs: 15_000 });
    const later = decide(lease, T0 + 14_999, first.obs);
    expect(later.decision).toMatchObject({ action: 'wait', expiresInMs: 1 });
  });

  it('held by another but unchanged for leaseDuration → take over with leaseTransitions + 1', () => {
    const lease = stored({});
    const first = decide(lease, T0, undefined);
    const { decision } = decide(lease, T0 + 15_000, first.obs);
    expect(decision).toMatchObject({ action: 'update', expectedRevision: 7, takeover: true, previousHolder: 'b' });
    if (decision.action !== 'update') return;
    expect(decision.value.spec).toEqual({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: microTime(T0 + 15_000),
      renewTime: microTime(T0 + 15_000),
      leaseTransitions: 4,
    });
  });

  it('a change restarts the wait; a longer duration in the record is honoured', () => {
    const first = decide(stored({}, 7), T0, undefined);
    const renewed = decide(stored({}, 8), T0 + 10_000, first.obs);
    expect(renewed.decision).toMatchObject({ action: 'wait', expiresInMs: 15_000 });
    const long = decide(stored({ leaseDurationSeconds: 60 }, 9), T0, undefined);
    expect(decide(stored({ leaseDurationSeconds: 60 }, 9), T0 + 59_000, long.obs).decision.action).toBe('wait');
    expect(decide(stored({ leaseDurationSeconds: 60 }, 9), T0 + 60_000, long.obs).decision.action).toBe('update');
  });

  it('held by us → renew, keeping acquireTime and transitions (also after a restart with the same identity)', () => {
    const lease = stored({ holderIdentity: 'a', acquireTime: microTime(T0 - 5000) });
    for (const leading of [true, false]) {
      const { decision } = decide(lease, T0, undefined, leading);
      expect(decision).toMatchObject({ action: 'update', takeover: false });
      if (decision.action === 'update') expect(decision.value.spec).toMatchObject({ holderIdentity: 'a', acquireTime: microTime(T0 - 5000), renewTime: microTime(T0), leaseTransitions: 3 });
    }
  });

  it('released (no holder) → take over at once; while leading, any other holder → lost', () => {
    expect(decide(stored({ holderIdentity: '' }), T0, undefined).decision).toMatchObject({ action: 'update', takeover: true });
    expect(decide(stored({ holderIdentity: 'b' }), T0, undefined, true).decision).toEqual({ action: 'lost', holder: 'b' });
    expect(decide(stored({ holderIdentity: '' }), T0, undefined, true).decision).toEqual({ action: 'lost', holder: '' });
  });

  it('an unreadable value is held by nobody known: wait a lease duration, then overwrite', () => {
    const junk: StoredResource = { key, value: { hello: 'world' }, createRevision: 1, modRevision: 3 };
    const first = decide(junk, T0, undefined);
    expect(first.decision).toMatchObject({ action: 'wait', holder: '(unreadable lease)' });
    expect(decide(junk, T0 + 15_000, first.obs).decision).toMatchObject({ action: 'update', expectedRevision: 3 });
  });

  it('renew deadline: from the start of the last successful renewal, before anyone may take over', () => {
    expect(renewDeadlineAt(T0, T)).toBe(T0 + 10_000);
    expect(renewDeadlineAt(T0, T)).toBeLessThan(T0 + T.leaseDurationMs);
  });

  it('release clears the holder and keeps the transitions', () => {
    const v = stored({ holderIdentity: 'a' }).value as unknown as LeaseObject;
    const r = releasedLease(v, T0 + 1000);
    expect(r.spec).toMatchObject({ holderIdentity: '', leaseTransitions: 3, renewTime: microTime(T0 + 1000) });
    expect(parseLease(r as unknown as JsonObject)?.holderIdentity).toBe('');
  });

  it('timing rules as client-go', () => {
    expect(() => checkTiming({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 })).toThrow(/lease duration/);
    expect(() => checkTiming({ leaseDurationMs: 15_000, renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow(/renew deadline/);
    expect(checkTiming(T)).toEqual(T);
  });
});

/**
 * A store whose get/commit can fail (DatastoreUnavailable) or hang (as a partitioned or frozen peer), and
 * that counts calls in flight so that the fake clock moves only between calls.
 */
class FlakyLeaseStore extends FlakyDatastore {
  failing = false;
  hanging = false;
  inflight = 0;
  private readonly base: Datastore;

  constructor(inner: Datastore) {
    super(inner);
    this.base = inner;
  }

  override get(k: ResourceKey): Promise<StoredResource | undefined> {
    return this.call(() => this.base.get(k));
  }

  override commit(ops: readonly WriteOp[]): Promise<CommitResult> {
    return this.call(() => this.base.commit(ops));
  }

  override close(): Promise<void> {
    return Promise.resolve(); // the shared store is closed by the test
  }

  private async call<R>(f: () => Promise<R>): Promise<R> {
    if (this.hanging) return new Promise<R>(() => undefined);
    if (this.failing) throw new EgwError('DatastoreUnavailable', 'injected failure');
    this.inflight++;
    try {
      return await f();
    } finally {
      this.inflight--;
    }
  }
}

/** One candidate process: an elector and the work it leads, with the simulated times of its transitions. */
class Candidate {
  readonly elector: LeaderElector;
  readonly stop = new AbortController();
  readonly outcome: Promise<ElectionOutcome>;
  startedAt: number | undefined;
  stoppedAt: number | undefined;
  finished = false;

  constructor(
    readonly name: string,
    readonly store: FlakyLeaseStore,
    clock: FakeClock,
    world: { active: number; maxActive: number },
  ) {
    this.elector = new LeaderElector({ store, clock }, { identity: name });
    this.outcome = this.elector.run(this.stop.signal, async (leading) => {
      this.startedAt = clock.now();
      world.active++;
      world.maxActive = Math.max(world.maxActive, world.active);
      await new Promise<void>((resolve) => leading.addEventListener('abort', () => resolve(), { once: true }));
      world.active--;
      this.stoppedAt = clock.now();
    });
    void this.outcome.then(() => (this.finished = true));
  }
}

const backends: { name: string; skip: boolean; open: () => Promise<{ store: Datastore; cleanup: () => Promise<void> }> }[] = [
  {
    name: 'sqlite',
    skip: false,
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'egw-leader-'));
      const store = await SqliteDatastore.open(join(dir, 'egw.db'));
      return { store, cleanup: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
    },
  },
  {
    name: 'etcd',
    skip: process.env['EGW_TEST_ETCD'] === undefined,
    open: async () => {
      const store = await openDatastore(`etcd://${process.env['EGW_TEST_ETCD'] ?? ''}/egw-leader-${randomBytes(4).toString('hex')}`);
      return { store, cleanup: async () => { await store.commit([{ op: 'delete', key }]); await store.close(); } };
    },
  },
];

for (const backend of backends) {
  describe.skipIf(backend.skip)(`electors on one ${backend.name} store${backend.skip ? ' (skipped: EGW_TEST_ETCD not set; run under scripts/with-etcd)' : ''}`, () => {
    let shared: Datastore;
    let cleanup: (() => Promise<void>) | undefined;
    let clock: FakeClock;
    let world: { active: number; maxActive: number };
    let candidates: Candidate[];

    beforeEach(async () => {
      candidates = [];
      ({ store: shared, cleanup } = await backend.open());
      clock = new FakeClock(T0);
      world = { active: 0, maxActive: 0 };
    });
    afterEach(async () => {
      if (cleanup === undefined) return; // the store never opened
      for (const c of candidates) {
        c.store.hanging = false;
        c.store.failing = false;
        c.stop.abort();
      }
      // Stopped candidates still sleep on the fake clock: move it until every run has returned.
      for (let i = 0; i < 200 && candidates.some((c) => !c.finished); i++) await step(100);
      await cleanup();
      cleanup = undefined;
    });

    const candidate = (name: string): Candidate => {
      const c = new Candidate(name, new FlakyLeaseStore(shared), clock, world);
      candidates.push(c);
      return c;
    };

    /** Lets every call in flight finish and the electors react, then moves the clock. */
    async function settle(): Promise<void> {
      for (let quiet = 0; quiet < 3; ) {
        await new Promise((r) => setImmediate(r));
        if (candidates.every((c) => c.store.inflight === 0)) quiet++;
        else {
          quiet = 0;
          await new Promise((r) => setTimeout(r, 1));
        }
      }
    }
    async function step(ms: number): Promise<void> {
      await settle();
      clock.advance(ms);
      await settle();
    }
    async function until(pred: () => boolean, maxMs: number, stepMs = 100): Promise<number> {
      const start = clock.now();
      await settle();
      while (!pred()) {
        if (clock.now() - start > maxMs) throw new Error(`not within ${maxMs} ms of simulated time`);
        await step(stepMs);
      }
      return clock.now() - start;
    }
    const holder = async (): Promise<string | undefined> => {
      const r = await shared.get(key);
      return r === undefined ? undefined : parseLease(r.value)?.holderIdentity;
    };

    it('the first candidate acquires at once; the second waits while the leader renews', async () => {
      const a = candidate('a');
      await until(() => a.startedAt !== undefined, 0);
      const b = candidate('b');
      for (let t = 0; t < 60_000; t += 100) await step(100);
      expect(b.startedAt).toBeUndefined();
      expect(await holder()).toBe('a');
      const lease = (await shared.get(key))!.value as unknown as LeaseObject;
      expect(lease.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(lease.spec.leaseTransitions).toBe(0);
    });

    it('a frozen leader stops its work before the lease expires; the other takes over within leaseDuration + retryPeriod', async () => {
      const a = candidate('a');
      await until(() => a.startedAt !== undefined, 0);
      const b = candidate('b');
      await step(5000);
      a.store.hanging = true; // killed without release: nothing more reaches the store
      const killedAt = clock.now();
      await until(() => b.startedAt !== undefined, T.leaseDurationMs + T.retryPeriodMs);
      expect(a.stoppedAt).toBeDefined();
      expect(a.stoppedAt!).toBeLessThanOrEqual(killedAt + T.renewDeadlineMs);
      expect(a.stoppedAt!).toBeLessThan(b.startedAt!);
      expect(b.startedAt! - killedAt).toBeLessThanOrEqual(T.leaseDurationMs + T.retryPeriodMs);
      expect(await a.outcome).toBe('lost');
      expect(((await shared.get(key))!.value as unknown as LeaseObject).spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
      expect(world.maxActive).toBe(1);
    });

    it('renewals failing for renewDeadline → the leader stops leading before the lease can expire for others', async () => {
      const a = candidate('a');
      await until(() => a.startedAt !== undefined, 0);
      const b = candidate('b');
      await step(3000);
      a.store.failing = true;
      const failedAt = clock.now();
      await until(() => a.stoppedAt !== undefined, T.renewDeadlineMs);
      expect(await holder()).toBe('a'); // lost, not released: the others must still wait
      expect(b.startedAt).toBeUndefined();
      await until(() => b.startedAt !== undefined, T.leaseDurationMs);
      expect(b.startedAt! - a.stoppedAt!).toBeGreaterThanOrEqual(T.leaseDurationMs - T.renewDeadlineMs - T.retryPeriodMs);
      expect(b.startedAt! - failedAt).toBeLessThanOrEqual(T.leaseDurationMs + T.retryPeriodMs);
      expect(await a.outcome).toBe('lost');
    });

    it('a graceful stop stops the work, then releases: the other takes over within about a retry period', async () => {
      const a = candidate('a');
      await until(() => a.startedAt !== undefined, 0);
      const b = candidate('b');
      await step(4000);
      a.stop.abort();
      const stoppedAt = clock.now();
      await settle();
      expect(await a.outcome).toBe('stopped');
      expect(await holder()).toBe('');
      const took = await until(() => b.startedAt !== undefined, T.retryPeriodMs);
      expect(took).toBeLessThanOrEqual(T.retryPeriodMs);
      expect(a.stoppedAt).toBe(stoppedAt);
      expect(((await shared.get(key))!.value as unknown as LeaseObject).spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    });

    it('only one leads at any time over a long run with injected failures and hangs', async () => {
      // Deterministic "random": the same schedule on every run.
      let seed = 42;
      const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const slots = [candidate('c0'), candidate('c1')];
      let restarts = 0;
      let ledMs = 0;
      for (let t = 0; t < 600_000; t += 250) {
        if (t % 3000 === 0) {
          for (const c of slots) {
            const r = rand();
            c.store.failing = r < 0.25;
            c.store.hanging = !c.store.failing && r > 0.9;
          }
        }
        await step(250);
        if (world.active > 0) ledMs += 250;
        // A candidate whose run ended is a process its supervisor restarts.
        for (let i = 0; i < slots.length; i++) {
          const c = slots[i]!;
          if (c.finished) {
            c.store.hanging = false;
            c.store.failing = false;
            slots[i] = candidate(`c${i}-${++restarts}`);
          }
        }
        expect(world.active).toBeLessThanOrEqual(1);
      }
      expect(world.maxActive).toBe(1);
      expect(restarts).toBeGreaterThan(3);
      expect(ledMs).toBeGreaterThan(300_000); // failures cost time, but most of the run had a leader
    }, 120_000);
  });
}
