/**
 * The reconcile runner with a fake clock and a stateful fake owner: coalescing, one pass per key at a
 * time, backoff with jitter and its cap, terminal errors, requeueAfter, resync, the gate, prune after the
 * first full pass, stop, a throwing listKeys, and the metrics hooks. No real sleeps: only microtask and
 * setImmediate turns.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import { EgwError } from '../../src/platform/errors.js';
import { ReconcileRunner, type ReconcileMetrics, type ReconcileOutcome, type ReconcileOwner, type ReconcileResult, type ReconcileRunnerOptions } from '../../src/reconcile/runner.js';

/** Lets every ready promise chain run (no timers involved). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** An owner that records passes, can hold a key's pass open, and fails as told. */
class FakeOwner implements ReconcileOwner {
  desired: string[] = [];
  actual: string[] | undefined;
  calls: string[] = [];
  listCalls = 0;
  listFailures = 0;
  active = new Set<string>();
  overlaps: string[] = [];
  maxActive = 0;
  /** A key's pass waits for this before returning. */
  holds = new Map<string, Deferred>();
  /** What a key's pass does (after the hold): throw, or return a result. */
  behaviour = new Map<string, () => ReconcileResult | undefined>();
  gate: Deferred | undefined;

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    if (this.active.has(key)) this.overlaps.push(key);
    this.active.add(key);
    this.maxActive = Math.max(this.maxActive, this.active.size);
    this.calls.push(key);
    try {
      await this.holds.get(key)?.promise;
      return this.behaviour.get(key)?.();
    } finally {
      this.active.delete(key);
    }
  }

  listKeys(): readonly string[] {
    this.listCalls += 1;
    if (this.listFailures > 0) {
      this.listFailures -= 1;
      throw new EgwError('DatastoreUnavailable', 'injected: the store is away');
    }
    return this.desired;
  }

  waitForSync(): Promise<void> {
    return this.gate?.promise ?? Promise.resolve();
  }

  count(key: string): number {
    return this.calls.filter((k) => k === key).length;
  }
}

/** An owner with prune (listActualKeys). */
class PruningOwner extends FakeOwner {
  listActualKeys(): readonly string[] {
    return this.actual ?? [];
  }
}

function lines(): { logger: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') records.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), records };
}

function runner(owner: ReconcileOwner, clock: FakeClock, options: Partial<ReconcileRunnerOptions> = {}, random: () => number = () => 0.5, extra: { logger?: pino.Logger; metrics?: ReconcileMetrics } = {}): ReconcileRunner {
  return new ReconcileRunner(owner, { clock, random, ...extra }, { name: 'test', resyncPeriodMs: 0, backoff: { baseMs: 100, capMs: 1_000, jitter: 'full', throttleFloorMs: 400 }, ...options });
}

const retryable = (): never => {
  throw new EgwError('DatastoreUnavailable', 'injected: store unavailable');
};
const terminal = (): never => {
  throw new EgwError('InvalidInput', 'injected: spec.replicas must be a number', { hint: 'fix the resource' });
};

describe('ReconcileRunner: the queue', () => {
  it('coalesces adds of a waiting key into one pass', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    const r = runner(owner, clock);
    for (let i = 0; i < 5; i++) r.add('a');
    r.add('b');
    r.start();
    await settle();
    expect(owner.calls).toEqual(['a', 'b']);
    await r.stop();
  });

  it('a key added while in flight is processed once more after the pass, never twice at once', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    const hold = deferred();
    owner.holds.set('a', hold);
    const r = runner(owner, clock, { concurrency: 4 });
    r.start();
    r.add('a');
    await settle();
    expect(owner.calls).toEqual(['a']);
    r.add('a');
    r.add('a');
    r.add('b');
    r.add('c');
    await settle();
    // b and c ran beside a; a waits for its own pass to end.
    expect(owner.calls).toEqual(['a', 'b', 'c']);
    expect(owner.maxActive).toBe(3);
    owner.holds.delete('a');
    hold.resolve();
    await settle();
    expect(owner.calls).toEqual(['a', 'b', 'c', 'a']);
    expect(owner.overlaps).toEqual([]);
    await r.stop();
  });

  it('concurrency 1 (the default) runs one pass at a time', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    const hold = deferred();
    owner.holds.set('a', hold);
    const r = new ReconcileRunner(owner, { clock }, { name: 'one', resyncPeriodMs: 0 });
    r.start();
    r.add('a');
    r.add('b');
    await settle();
    expect(owner.calls).toEqual(['a']);
    hold.resolve();
    await settle();
    expect(owner.calls).toEqual(['a', 'b']);
    expect(owner.maxActive).toBe(1);
    await r.stop();
  });
});

describe('ReconcileRunner: errors', () => {
  it('retryable errors back off exponentially with jitter, up to the cap, each retry exactly when due', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    owner.behaviour.set('a', retryable);
    const randoms = [0.5, 0.25, 0.999_999, 0.5, 0.999_999, 0.1];
    let i = 0;
    const r = runner(owner, clock, {}, () => randoms[i++ % randoms.length]!);
    r.start();
    r.add('a');
    await settle();
    // ceilings 100, 200, 400, 800, 1000 (cap), 1000: the delay is random × ceiling.
    const expected = [50, 50, 399, 400, 999, 100];
    const seen: number[] = [];
    for (const [n, delay] of expected.entries()) {
      const s = r.status('a')!;
      expect(s).toMatchObject({ state: 'retrying', failures: n + 1, retry: 'retry', code: 'DatastoreUnavailable' });
      seen.push(s.retryAt! - s.failedAt);
      clock.advance(delay - 1);
      await settle();
      expect(owner.count('a')).toBe(n + 1);
      clock.advance(1);
      await settle();
      expect(owner.count('a')).toBe(n + 2);
    }
    expect(seen).toEqual(expected);
    await r.stop();
  });

  it('success forgets the failure count; throttle waits at least its floor', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    owner.behaviour.set('a', retryable);
    const r = runner(owner, clock, {}, () => 0);
    r.start();
    r.add('a');
    await settle();
    clock.advance(1);
    await settle();
    expect(r.status('a')?.failures).toBe(2);
    owner.behaviour.set('a', () => undefined);
    clock.advance(1);
    await settle();
    expect(r.status('a')).toBeUndefined();
    expect(r.failing()).toEqual([]);
    owner.behaviour.set('a', () => {
      throw new EgwError('AwsError', 'injected: RequestLimitExceeded', { retry: 'throttle' });
    });
    r.add('a');
    await settle();
    expect(r.status('a')).toMatchObject({ failures: 1, retry: 'throttle', state: 'retrying' });
    expect(r.status('a')!.retryAt! - r.status('a')!.failedAt).toBe(400);
    await r.stop();
  });

  it('a thrown value that is not an EgwError is retried', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    owner.behaviour.set('a', () => {
      throw new TypeError('injected bug');
    });
    const r = runner(owner, clock);
    r.start();
    r.add('a');
    await settle();
    expect(r.status('a')).toMatchObject({ state: 'retrying', retry: 'retry', code: undefined, message: 'injected bug' });
    await r.stop();
  });

  it('a terminal error is not requeued, is logged once with its code, and runs again only when the key is added', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    owner.behaviour.set('a', terminal);
    const { logger, records } = lines();
    const r = runner(owner, clock, {}, () => 0.5, { logger });
    r.start();
    r.add('a');
    await settle();
    clock.advance(3_600_000);
    await settle();
    expect(owner.count('a')).toBe(1);
    expect(r.status('a')).toMatchObject({ state: 'terminal', failures: 1, retry: 'terminal', code: 'InvalidInput', message: 'injected: spec.replicas must be a number (fix the resource)' });
    expect(r.status('a')!.retryAt).toBeUndefined();
    r.add('a');
    await settle();
    expect(owner.count('a')).toBe(2);
    expect(r.failing().map((s) => [s.key, s.state, s.failures])).toEqual([['a', 'terminal', 2]]);
    const warned = records.filter((l) => l['level'] === 40);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ key: 'a', code: 'InvalidInput', runner: 'test' });
    owner.behaviour.delete('a');
    r.add('a');
    await settle();
    expect(r.status('a')).toBeUndefined();
    await r.stop();
  });

  it('requeueAfter processes the key again after that time, and a pass in between cancels the timer', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    owner.behaviour.set('a', () => ({ requeueAfterMs: 5_000 }));
    const r = runner(owner, clock);
    r.start();
    r.add('a');
    await settle();
    clock.advance(4_999);
    await settle();
    expect(owner.count('a')).toBe(1);
    clock.advance(1);
    await settle();
    expect(owner.count('a')).toBe(2);
    // An event at +1 s: the pass runs now, and asks for +5 s from then; the old timer (due at +5 s) is gone.
    clock.advance(1_000);
    r.add('a');
    await settle();
    expect(owner.count('a')).toBe(3);
    clock.advance(4_000);
    await settle();
    expect(owner.count('a')).toBe(3);
    clock.advance(1_000);
    await settle();
    expect(owner.count('a')).toBe(4);
    await r.stop();
  });
});

describe('ReconcileRunner: resync, gate and prune', () => {
  it('every key of listKeys is enqueued after the gate and then every period plus jitter', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    owner.desired = ['a', 'b'];
    const r = runner(owner, clock, { resyncPeriodMs: 1_000, resyncJitter: 0.1 }, () => 0.5);
    r.start();
    await settle();
    expect(owner.calls).toEqual(['a', 'b']);
    expect(r.synced).toBe(true);
    clock.advance(1_049);
    await settle();
    expect(owner.calls).toHaveLength(2);
    clock.advance(1);
    await settle();
    expect(owner.calls).toEqual(['a', 'b', 'a', 'b']);
    owner.desired = ['c'];
    r.resync();
    await settle();
    expect(owner.calls).toEqual(['a', 'b', 'a', 'b', 'c']);
    await r.stop();
  });

  it('the failure status of a key that is gone (neither desired nor present) is forgotten at the second resync: the map returns to zero', async () => {
    const clock = new FakeClock();
    const owner = new PruningOwner();
    const keys = Array.from({ length: 50 }, (_, i) => `ns/pod-${i}`);
    owner.desired = [...keys];
    owner.actual = [];
    for (const k of keys) owner.behaviour.set(k, terminal);
    const r = runner(owner, clock);
    r.start();
    await settle();
    expect(r.failing()).toHaveLength(50);
    // Half the pods deleted: their statuses go; the others stay while they are still desired.
    owner.desired = keys.slice(25);
    r.resync();
    await settle();
    // Seen gone once: still reported (an event key may have failed since the listing).
    expect(r.failing()).toHaveLength(50);
    r.resync();
    await settle();
    expect(r.failing().map((f) => f.key)).toEqual([...keys.slice(25)].sort());
    // A key still present in the actual state keeps its status (its pass removes it and decides).
    owner.desired = [];
    owner.actual = ['ns/pod-30'];
    owner.behaviour.set('ns/pod-30', terminal);
    for (let i = 0; i < 2; i++) {
      r.resync();
      await settle();
    }
    expect(r.failing().map((f) => f.key)).toEqual(['ns/pod-30']);
    owner.actual = [];
    for (let i = 0; i < 2; i++) {
      r.resync();
      await settle();
    }
    expect(r.failing()).toEqual([]);
    expect((r as unknown as { statuses: Map<string, unknown> }).statuses.size).toBe(0);
    await r.stop();
  });

  it('without listActualKeys, statuses of keys no longer desired are forgotten too', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    owner.desired = ['a', 'b'];
    owner.behaviour.set('a', terminal);
    owner.behaviour.set('b', terminal);
    const r = runner(owner, clock);
    r.start();
    await settle();
    expect(r.failing()).toHaveLength(2);
    owner.desired = ['b'];
    for (let i = 0; i < 2; i++) {
      r.resync();
      await settle();
    }
    expect(r.failing().map((f) => f.key)).toEqual(['b']);
    owner.desired = [];
    for (let i = 0; i < 2; i++) {
      r.resync();
      await settle();
    }
    expect((r as unknown as { statuses: Map<string, unknown> }).statuses.size).toBe(0);
    await r.stop();
  });

  it('a resync re-runs a key that failed terminally', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    owner.desired = ['a'];
    owner.behaviour.set('a', terminal);
    const r = runner(owner, clock, { resyncPeriodMs: 1_000, resyncJitter: 0 });
    r.start();
    await settle();
    expect(owner.count('a')).toBe(1);
    clock.advance(1_000);
    await settle();
    expect(owner.count('a')).toBe(2);
    await r.stop();
  });

  it('nothing is reconciled or listed before the gate opens', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    owner.desired = ['a'];
    owner.gate = deferred();
    const r = runner(owner, clock, { resyncPeriodMs: 1_000 });
    r.add('event-key');
    r.start();
    await settle();
    clock.advance(10_000);
    await settle();
    expect(owner.calls).toEqual([]);
    expect(owner.listCalls).toBe(0);
    expect(r.synced).toBe(false);
    owner.gate.resolve();
    await settle();
    expect(owner.calls).toEqual(['event-key', 'a']);
    await r.stop();
  });

  it('prune runs only after every key of the first listing had its pass; orphans are enqueued, desired keys are not pruned', async () => {
    const clock = new FakeClock();
    const owner = new PruningOwner();
    owner.desired = ['a', 'b'];
    owner.actual = ['a', 'b', 'orphan'];
    const hold = deferred();
    owner.holds.set('b', hold);
    owner.behaviour.set('a', retryable);
    const r = runner(owner, clock, { resyncPeriodMs: 1_000, resyncJitter: 0, concurrency: 2 });
    r.start();
    await settle();
    // a failed (a retry is pending), b is still in its pass: not yet a full pass, so no prune.
    expect(owner.calls).toEqual(['a', 'b']);
    expect(r.synced).toBe(false);
    clock.advance(50);
    await settle();
    expect(owner.calls).toEqual(['a', 'b', 'a']);
    hold.resolve();
    await settle();
    expect(r.synced).toBe(true);
    expect(owner.calls).toEqual(['a', 'b', 'a', 'orphan']);
    // Each later resync prunes again.
    owner.behaviour.delete('a');
    owner.actual = ['a', 'b', 'orphan-2'];
    clock.advance(1_000);
    await settle();
    expect(owner.calls.slice(4)).toEqual(expect.arrayContaining(['a', 'b', 'orphan-2']));
    // (a's pending retry may run first; orphan-2 comes last, after the listing.)
    expect(owner.calls.at(-1)).toBe('orphan-2');
    expect(owner.count('orphan-2')).toBe(1);
    await r.stop();
  });

  it('a throwing listKeys is retried on backoff; no prune until a listing succeeded and its keys had their pass', async () => {
    const clock = new FakeClock();
    const owner = new PruningOwner();
    owner.desired = ['a'];
    owner.actual = ['a', 'orphan'];
    owner.listFailures = 2;
    const r = runner(owner, clock, { resyncPeriodMs: 60_000 }, () => 0.5);
    r.start();
    await settle();
    expect(owner.listCalls).toBe(1);
    expect(r.listError).toMatch(/store is away/);
    expect(owner.calls).toEqual([]);
    clock.advance(50);
    await settle();
    expect(owner.listCalls).toBe(2);
    clock.advance(100);
    await settle();
    expect(owner.listCalls).toBe(3);
    expect(r.listError).toBeUndefined();
    expect(owner.calls).toEqual(['a', 'orphan']);
    expect(r.synced).toBe(true);
    await r.stop();
  });
});

describe('ReconcileRunner: stop and metrics', () => {
  it('stop() waits for the pass in flight, refuses new adds, drops waiting keys and pending retries', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    const hold = deferred();
    owner.holds.set('a', hold);
    owner.behaviour.set('b', retryable);
    const r = runner(owner, clock);
    r.start();
    r.add('b');
    await settle();
    expect(r.status('b')?.state).toBe('retrying');
    r.add('a');
    r.add('waiting');
    await settle();
    expect(owner.calls).toEqual(['b', 'a']);
    r.add('a');
    let stopped = false;
    const stopping = r.stop().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    expect(r.add('late')).toBe(false);
    expect(r.addAfter('late', 10)).toBe(false);
    hold.resolve();
    await stopping;
    clock.advance(60_000);
    await settle();
    expect(owner.calls).toEqual(['b', 'a']);
    await r.stop();
  });

  it('stop() before the gate opens returns at once; stop() before start() too', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    owner.gate = deferred();
    const r = runner(owner, clock);
    r.start();
    await settle();
    await r.stop();
    const never = runner(new FakeOwner(), clock);
    await never.stop();
    never.start();
    expect(never.add('a')).toBe(false);
  });

  it('reports queue depth, outcomes with durations, and retries through the metrics hooks', async () => {
    const clock = new FakeClock();
    const owner = new FakeOwner();
    const depths: number[] = [];
    const outcomes: [ReconcileOutcome, number][] = [];
    const retries: [string, number][] = [];
    const metrics: ReconcileMetrics = {
      queueDepth: (d) => depths.push(d),
      reconciled: (o, ms) => outcomes.push([o, ms]),
      retried: (c, ms) => retries.push([c, ms]),
    };
    owner.behaviour.set('a', retryable);
    owner.behaviour.set('b', terminal);
    owner.behaviour.set('c', () => ({ requeueAfterMs: 10 }));
    const hold = deferred();
    owner.holds.set('d', hold);
    const r = runner(owner, clock, {}, () => 0.5, { metrics });
    r.add('d');
    r.add('a');
    r.add('b');
    r.add('c');
    expect(depths).toEqual([1, 2, 3, 4]);
    r.start();
    await settle();
    clock.advance(250);
    hold.resolve();
    await settle();
    expect(outcomes).toEqual([['success', 250], ['retry', 0], ['terminal', 0], ['requeue', 0]]);
    expect(retries).toEqual([['retry', 50]]);
    expect(depths.at(-1)).toBe(0);
    await r.stop();
  });
});
