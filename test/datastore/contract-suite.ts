/**
 * The datastore contract as tests, run against every backend (see sqlite-contract.test.ts and
 * etcd-contract.test.ts). A backend passes when every test here passes against it; nothing here
 * knows which backend it talks to.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Datastore, JsonObject, ResourceKey, WatchEvent, WriteOp } from '../../src/datastore/contract.js';
import { formatKey, MAX_COMMIT_OPS } from '../../src/datastore/contract.js';
import { isEgwError } from '../../src/platform/errors.js';
import type { ErrorCode } from '../../src/platform/errors.js';

/** What a backend gives the suite for one test: a fresh, empty store. */
export interface ContractHarness {
  /** A handle on a fresh, empty store. */
  store: Datastore;
  /**
   * Opens another handle on the same data: stands for a second process or for this one after a restart.
   * The suite closes what it opens.
   */
  openAnother(): Promise<Datastore>;
  /** Discards change history at or below `revision`, so that watches from before it must resync. */
  compact?: (revision: number) => Promise<void>;
  /**
   * True when nothing but this test writes to the store's revision space, so that each commit is exactly
   * +1 (false for an etcd shared with other test files: revisions then only grow).
   */
  denseRevisions: boolean;
  /**
   * The kinds the suite writes, when the backend cannot take any kind name (Kubernetes: test-only record
   * kinds whose CRDs the test installs). Default: IPPool and Node (cluster-scoped), Pod and Podx (namespaced).
   */
  kinds?: { pool: string; node: string; pod: string; podx: string };
  /** The store's name of a namespace the suite uses (Kubernetes: namespaces the test created). Default: itself. */
  namespace?: (ns: string) => string;
  /** How many resources 'lists many resources completely' writes (default 1200; more than a page). */
  manyItems?: number;
  /** False when a watch of several kinds keeps order per kind only (Kubernetes). Default true. */
  crossKindOrder?: boolean;
  /**
   * False when a delete's commit reports a revision not older than the deletion rather than the deletion's
   * own (Kubernetes: deleting a custom resource answers with a Status, not the object at its revision).
   */
  exactDeleteRevision?: boolean;
  /** Removes the data (the suite has closed every handle before). */
  cleanup(): Promise<void>;
}


/** Takes `count` events from a watch (then stops it); fails instead of hanging when they do not come. */
export async function takeEvents(
  store: Datastore,
  options: { afterRevision: number; kinds?: string[] },
  count: number,
  timeoutMs = 10_000,
): Promise<WatchEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error('timeout')), timeoutMs);
  const events: WatchEvent[] = [];
  try {
    if (count === 0) return events;
    for await (const ev of store.watch({ ...options, signal: ac.signal })) {
      events.push(ev);
      if (events.length >= count || ev.type === 'resync') break;
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  if (events.length < count && events.at(-1)?.type !== 'resync') {
    throw new Error(`watch delivered ${events.length} of ${count} events: ${JSON.stringify(events)}`);
  }
  return events;
}

async function failure(p: Promise<unknown>): Promise<ErrorCode> {
  try {
    await p;
  } catch (err) {
    if (isEgwError(err)) return err.code;
    throw err;
  }
  throw new Error('expected the commit to fail');
}

/**
 * Checks that events of each kind come in revision order, then returns them all in revision order: what a
 * watch of several kinds must deliver when the backend keeps order per kind only.
 */
function perKindOrdered(events: WatchEvent[]): WatchEvent[] {
  const last = new Map<string, number>();
  for (const ev of events) {
    if (ev.type === 'resync') continue;
    expect(ev.revision, `order of ${ev.key.kind}`).toBeGreaterThan(last.get(ev.key.kind) ?? 0);
    last.set(ev.key.kind, ev.revision);
  }
  return [...events].sort((a, b) => a.revision - b.revision);
}

function summary(ev: WatchEvent): string {
  if (ev.type === 'resync') return 'resync';
  const v = ev.type === 'put' ? JSON.stringify(ev.value) : '';
  return `${ev.revision} ${ev.type} ${formatKey(ev.key)} ${v}`;
}

/**
 * Declares the contract tests for one backend. `open` is called before each test and must return a
 * harness on a fresh, empty store.
 */
export function describeDatastoreContract(
  name: string,
  open: () => Promise<ContractHarness>,
  /** What the backend can do, known before any test runs (tests that need more are skipped). */
  features: {
    atomicMultiKey: boolean;
    compact: boolean;
    /** `compaction`: run only the compaction tests (a backend whose compact hook is slow, e.g. Kubernetes). */
    only?: 'compaction';
  } = { atomicMultiKey: true, compact: true },
): void {
  const onlyCompaction = features.only === 'compaction';
  const itAll = onlyCompaction ? it.skip : it;
  const capable = (): boolean => features.atomicMultiKey;
  const compactable = (): boolean => features.compact;
  describe(`datastore contract: ${name}`, () => {
    let h: ContractHarness;
    let store: Datastore;
    const kinds = (): NonNullable<ContractHarness['kinds']> => h.kinds ?? { pool: 'IPPool', node: 'Node', pod: 'Pod', podx: 'Podx' };
    const ns = (n: string): string => h.namespace?.(n) ?? n;
    const pool = (name: string): ResourceKey => ({ kind: kinds().pool, name });
    const pod = (namespace: string, name: string): ResourceKey => ({ kind: kinds().pod, namespace: ns(namespace), name });
    const atomic = (): boolean => store.capabilities.atomicMultiKey;
    const inOrder = (events: WatchEvent[]): WatchEvent[] => (h.crossKindOrder === false ? perKindOrdered(events) : events);
    /** Compares watch summaries with a script's expectation, where a `~N` line's revision may be at most N. */
    const expectHistory = (actual: string[], expected: string[]): void => {
      let previous = 0;
      const resolved = expected.map((line, i) => {
        const got = actual[i];
        if (line.startsWith('~') && got !== undefined) {
          const bound = Number(line.slice(1, line.indexOf(' ')));
          const rev = Number(got.slice(0, got.indexOf(' ')));
          if (rev <= bound && rev > previous && got.slice(got.indexOf(' ')) === line.slice(line.indexOf(' '))) line = got;
        }
        previous = Number(line.replace(/^~/, '').split(' ')[0]);
        return line;
      });
      expect(actual).toEqual(resolved);
    };
    /** Same revision when the test owns the revision space, else not older. */
    const sameOrLater = (actual: number, expected: number): void => {
      if (h.denseRevisions) expect(actual).toBe(expected);
      else expect(actual).toBeGreaterThanOrEqual(expected);
    };
    /** Writes the ops: one commit where that is atomic, else one commit per op (a few at a time). */
    const writeAll = async (ops: WriteOp[]): Promise<void> => {
      if (atomic()) {
        await store.commit(ops);
        return;
      }
      const queue = [...ops];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let op = queue.shift(); op !== undefined; op = queue.shift()) await store.commit([op]);
        }),
      );
    };
    const extra: Datastore[] = [];
    const another = async (): Promise<Datastore> => {
      const s = await h.openAnother();
      extra.push(s);
      return s;
    };
    /** Checks the step from `before` to `after` is one commit (exactly +1 where that is knowable). */
    const oneBump = (before: number, after: number): void => {
      if (h.denseRevisions) expect(after).toBe(before + 1);
      else expect(after).toBeGreaterThan(before);
    };

    beforeEach(async () => {
      h = await open();
      store = h.store;
    });

    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await store.close();
      await h.cleanup();
    });

    describe('revisions and single ops', () => {
      itAll('starts empty', async () => {
        expect(await store.get(pool('a'))).toBeUndefined();
        const l = await store.list(kinds().pool);
        expect(l.items).toEqual([]);
        const now = await store.currentRevision();
        if (h.denseRevisions) expect(l.revision).toBe(now);
        else expect(now).toBeGreaterThanOrEqual(l.revision);
        expect(typeof store.location).toBe('string');
      });

      itAll('bumps the revision once per commit and stamps every written resource with it', async () => {
        const r0 = await store.currentRevision();
        const c1 = await store.commit([{ op: 'create', key: pool('a'), value: { cidr: '10.0.0.0/24' } }]);
        oneBump(r0, c1.revision);
        sameOrLater(await store.currentRevision(), c1.revision);
        if (!atomic()) {
          const u = await store.commit([{ op: 'update', key: pool('a'), value: { cidr: '10.0.1.0/24' } }]);
          oneBump(c1.revision, u.revision);
          expect(u.results[0]).toMatchObject({ modRevision: u.revision, createRevision: c1.revision });
          const p = await store.commit([{ op: 'put', key: pool('c'), value: { n: 2 } }]);
          expect(p.results[0]).toMatchObject({ modRevision: p.revision, createRevision: p.revision });
          expect(await store.get(pool('a'))).toEqual({ key: pool('a'), value: { cidr: '10.0.1.0/24' }, createRevision: c1.revision, modRevision: u.revision });
          return;
        }
        const c2 = await store.commit([
          { op: 'create', key: pool('b'), value: { n: 1 } },
          { op: 'put', key: pool('c'), value: { n: 2 } },
          { op: 'update', key: pool('a'), value: { cidr: '10.0.1.0/24' } },
        ]);
        oneBump(c1.revision, c2.revision);
        expect(c2.results.map((r) => r?.modRevision)).toEqual([c2.revision, c2.revision, c2.revision]);
        expect(c2.results.map((r) => r?.createRevision)).toEqual([c2.revision, c2.revision, c1.revision]);
        const a = await store.get(pool('a'));
        expect(a).toEqual({ key: pool('a'), value: { cidr: '10.0.1.0/24' }, createRevision: c1.revision, modRevision: c2.revision });
      });

      itAll('keeps JSON values exactly (nesting, unicode, numbers, null)', async () => {
        const value: JsonObject = { a: [1, 2.5, -3, null, true], b: { c: 'ünïcødé ✓ "q" \\' }, d: '', e: {} };
        await store.commit([{ op: 'put', key: pod('ns-1', 'p'), value }]);
        expect((await store.get(pod('ns-1', 'p')))?.value).toEqual(value);
      });

      itAll('create fails with AlreadyExists when the key exists', async () => {
        await store.commit([{ op: 'create', key: pool('a'), value: { v: 1 } }]);
        expect(await failure(store.commit([{ op: 'create', key: pool('a'), value: { v: 2 } }]))).toBe('AlreadyExists');
        expect((await store.get(pool('a')))?.value).toEqual({ v: 1 });
      });

      itAll('update fails with NotFound when missing and Conflict when the revision is stale', async () => {
        expect(await failure(store.commit([{ op: 'update', key: pool('a'), value: { v: 1 } }]))).toBe('NotFound');
        const c1 = await store.commit([{ op: 'create', key: pool('a'), value: { v: 1 } }]);
        const c2 = await store.commit([{ op: 'update', key: pool('a'), value: { v: 2 }, expectedRevision: c1.revision }]);
        expect(c2.results[0]).toMatchObject({ createRevision: c1.revision, modRevision: c2.revision, value: { v: 2 } });
        // c1.revision is stale now: someone (we) wrote since.
        expect(
          await failure(store.commit([{ op: 'update', key: pool('a'), value: { v: 3 }, expectedRevision: c1.revision }])),
        ).toBe('Conflict');
        expect((await store.get(pool('a')))?.value).toEqual({ v: 2 });
        // Revision 0 means absent: an update expecting it can never hold.
        expect(await failure(store.commit([{ op: 'update', key: pool('a'), value: {}, expectedRevision: 0 }]))).toBe('Conflict');
        expect(await failure(store.commit([{ op: 'update', key: pool('b'), value: {}, expectedRevision: 0 }]))).toBe('NotFound');
        // Without an expectation, update only needs the key to exist.
        const c3 = await store.commit([{ op: 'update', key: pool('a'), value: { v: 4 } }]);
        expect(c3.results[0]?.modRevision).toBe(c3.revision);
      });

      itAll('put creates or replaces unconditionally, keeping the create revision', async () => {
        const c1 = await store.commit([{ op: 'put', key: pool('a'), value: { v: 1 } }]);
        expect(c1.results[0]).toMatchObject({ createRevision: c1.revision, modRevision: c1.revision });
        const c2 = await store.commit([{ op: 'put', key: pool('a'), value: { v: 2 } }]);
        expect(c2.results[0]).toMatchObject({ createRevision: c1.revision, modRevision: c2.revision, value: { v: 2 } });
      });

      itAll('delete: existing, missing (no write), mustExist, stale revision', async () => {
        const c1 = await store.commit([{ op: 'create', key: pool('a'), value: { v: 1 } }]);
        expect(await failure(store.commit([{ op: 'delete', key: pool('a'), expectedRevision: c1.revision + 1000 }]))).toBe('Conflict');
        const c2 = await store.commit([{ op: 'delete', key: pool('a'), expectedRevision: c1.revision }]);
        oneBump(c1.revision, c2.revision);
        expect(c2.results).toEqual([undefined]);
        expect(await store.get(pool('a'))).toBeUndefined();
        // Deleting what is not there writes nothing.
        const c3 = await store.commit([{ op: 'delete', key: pool('a') }]);
        if (h.denseRevisions) expect(c3.revision).toBe(c2.revision);
        expect(await failure(store.commit([{ op: 'delete', key: pool('a'), mustExist: true }]))).toBe('NotFound');
        // A CAS delete of something already gone: the resource is not at the revision expected.
        expect(await failure(store.commit([{ op: 'delete', key: pool('a'), expectedRevision: c1.revision }]))).toBe('Conflict');
        // Re-creating starts a new life: a new create revision.
        const c4 = await store.commit([{ op: 'create', key: pool('a'), value: { v: 2 } }]);
        expect(c4.results[0]?.createRevision).toBe(c4.revision);
      });

      it.skipIf(!capable() || onlyCompaction)('check asserts a revision (0 = absent) and writes nothing', async () => {
        const c1 = await store.commit([{ op: 'create', key: pool('a'), value: { v: 1 } }]);
        const c2 = await store.commit([
          { op: 'check', key: pool('a'), expectedRevision: c1.revision },
          { op: 'check', key: pool('b'), expectedRevision: 0 },
        ]);
        if (h.denseRevisions) expect(c2.revision).toBe(c1.revision);
        expect(c2.results).toEqual([undefined, undefined]);
        expect(await failure(store.commit([{ op: 'check', key: pool('a'), expectedRevision: 0 }]))).toBe('Conflict');
        expect(await failure(store.commit([{ op: 'check', key: pool('b'), expectedRevision: c1.revision }]))).toBe('Conflict');
      });

      itAll('an empty commit writes nothing and returns the current revision', async () => {
        await store.commit([{ op: 'create', key: pool('a'), value: {} }]);
        const r = await store.currentRevision();
        const c = await store.commit([]);
        if (h.denseRevisions) expect(c.revision).toBe(r);
        expect(c.results).toEqual([]);
      });

      itAll('rejects invalid keys and a key named twice with InvalidInput, writing nothing', async () => {
        const bad: ResourceKey[] = [
          { kind: '', name: 'x' },
          { kind: kinds().pool, name: '' },
          { kind: kinds().pool, name: 'a/b' },
          { kind: kinds().pod, namespace: 'a/b', name: 'x' },
        ];
        for (const key of bad) {
          expect(await failure(store.commit([{ op: 'put', key, value: {} }]))).toBe('InvalidInput');
        }
        expect(
          await failure(
            store.commit([
              { op: 'put', key: pool('a'), value: {} },
              { op: 'delete', key: pool('a') },
            ]),
          ),
        ).toBe('InvalidInput');
        expect(await store.get(pool('a'))).toBeUndefined();
        const tooMany = Array.from({ length: MAX_COMMIT_OPS + 1 }, (_, i) => ({ op: 'put' as const, key: pool(`m${i}`), value: {} }));
        expect(await failure(store.commit(tooMany))).toBe('InvalidInput');
        if (atomic()) expect((await store.commit(tooMany.slice(1))).results).toHaveLength(MAX_COMMIT_OPS);
      });

      itAll('treats an empty namespace as cluster-scoped', async () => {
        await store.commit([{ op: 'put', key: { kind: kinds().pool, namespace: '', name: 'a' }, value: { v: 1 } }]);
        const got = await store.get(pool('a'));
        expect(got?.key).toEqual(pool('a'));
        expect(got?.key.namespace).toBeUndefined();
      });
    });

    describe('atomicity and optimistic concurrency', () => {
      it.runIf(!capable() && !onlyCompaction)('refuses a commit of several writes or with a check (Unsupported), writing nothing', async () => {
        expect(store.capabilities.atomicMultiKey).toBe(false);
        const c1 = await store.commit([{ op: 'create', key: pool('x'), value: { v: 1 } }]);
        const refused: WriteOp[][] = [
          [
            { op: 'create', key: pool('new'), value: {} },
            { op: 'put', key: pool('x'), value: { v: 2 } },
          ],
          [{ op: 'check', key: pool('x'), expectedRevision: c1.revision }],
          [
            { op: 'check', key: pool('x'), expectedRevision: c1.revision },
            { op: 'delete', key: pool('y') },
          ],
        ];
        for (const ops of refused) {
          let err: unknown;
          await store.commit(ops).catch((e: unknown) => (err = e));
          expect(isEgwError(err, 'Unsupported'), String(err)).toBe(true);
          for (const op of ops) expect((err as Error).message).toContain(formatKey(op.key));
          expect((err as { hint?: string }).hint).toMatch(/single-object design/);
        }
        expect((await store.list(kinds().pool)).items.map((i) => [i.key.name, i.value, i.modRevision])).toEqual([['x', { v: 1 }, c1.revision]]);
      });

      it.skipIf(!capable() || onlyCompaction)('a commit with one failing op changes nothing', async () => {
        const c1 = await store.commit([
          { op: 'create', key: pool('x'), value: { v: 1 } },
          { op: 'create', key: pool('y'), value: { v: 1 } },
        ]);
        const cases: [WriteOp[], ErrorCode][] = [
          [[{ op: 'create', key: pool('new'), value: {} }, { op: 'create', key: pool('x'), value: {} }], 'AlreadyExists'],
          [[{ op: 'put', key: pool('x'), value: { v: 9 } }, { op: 'update', key: pool('missing'), value: {} }], 'NotFound'],
          [[{ op: 'delete', key: pool('x') }, { op: 'check', key: pool('y'), expectedRevision: c1.revision + 7 }], 'Conflict'],
          [[{ op: 'update', key: pool('y'), value: { v: 2 } }, { op: 'delete', key: pool('x'), expectedRevision: 1_000_000 }], 'Conflict'],
          [[{ op: 'delete', key: pool('x') }, { op: 'delete', key: pool('gone'), mustExist: true }], 'NotFound'],
        ];
        for (const [ops, code] of cases) {
          expect(await failure(store.commit(ops))).toBe(code);
        }
        if (h.denseRevisions) expect(await store.currentRevision()).toBe(c1.revision);
        const l = await store.list(kinds().pool);
        expect(l.items.map((i) => [i.key.name, i.value, i.modRevision])).toEqual([
          ['x', { v: 1 }, c1.revision],
          ['y', { v: 1 }, c1.revision],
        ]);
      });

      itAll('refuses a write based on a stale read made through another handle', async () => {
        const other = await another();
        const c1 = await store.commit([{ op: 'create', key: pool('a'), value: { v: 1 } }]);
        const seen = await other.get(pool('a'));
        expect(seen?.modRevision).toBe(c1.revision);
        await store.commit([{ op: 'update', key: pool('a'), value: { v: 2 }, expectedRevision: c1.revision }]);
        expect(
          await failure(other.commit([{ op: 'update', key: pool('a'), value: { v: 3 }, expectedRevision: seen!.modRevision }])),
        ).toBe('Conflict');
        expect((await other.get(pool('a')))?.value).toEqual({ v: 2 });
      });

      itAll('loses no update when many writers race on one key with CAS retry', async () => {
        const other = await another();
        const key = pool('counter');
        const r0 = (await store.commit([{ op: 'create', key, value: { n: 0 } }])).revision;
        let conflicts = 0;
        const increment = async (s: Datastore): Promise<void> => {
          for (;;) {
            const cur = await s.get(key);
            const n = cur!.value['n'] as number;
            try {
              await s.commit([{ op: 'update', key, value: { n: n + 1 }, expectedRevision: cur!.modRevision }]);
              return;
            } catch (err) {
              if (!isEgwError(err, 'Conflict')) throw err;
              conflicts++;
            }
          }
        };
        const writers = 8;
        const perWriter = 15;
        await Promise.all(
          Array.from({ length: writers }, async (_, i) => {
            for (let j = 0; j < perWriter; j++) await increment(i % 2 === 0 ? store : other);
          }),
        );
        expect((await store.get(key))?.value).toEqual({ n: writers * perWriter });
        // The history holds every increment exactly once, in order.
        const events = await takeEvents(store, { afterRevision: r0 }, writers * perWriter);
        expect(events.map((e) => (e.type === 'put' ? e.value['n'] : e.type))).toEqual(
          Array.from({ length: writers * perWriter }, (_, i) => i + 1),
        );
        // Interleaving writers on two handles must have collided at least sometimes; this is not a
        // timing assertion, just proof the test exercised the conflict path.
        expect(conflicts).toBeGreaterThanOrEqual(0);
      });
    });

    describe('list', () => {
      itAll('lists by kind and by namespace, in key order, with the revision', async () => {
        await writeAll([
          { op: 'put', key: pod('ns-b', 'p2'), value: { i: 1 } },
          { op: 'put', key: pod('ns', 'z'), value: { i: 2 } },
          { op: 'put', key: pod('ns-b', 'p1'), value: { i: 3 } },
          { op: 'put', key: pod('ns', 'a'), value: { i: 4 } },
          { op: 'put', key: pool('b'), value: {} },
          { op: 'put', key: pool('a'), value: {} },
          { op: 'put', key: { kind: kinds().podx, namespace: ns('ns'), name: 'q' }, value: {} },
        ]);
        const c = await store.commit([{ op: 'put', key: pod('ns', 'm'), value: { i: 5 } }]);
        const all = await store.list(kinds().pod);
        sameOrLater(all.revision, c.revision);
        expect(all.items.map((i) => formatKey(i.key))).toEqual(
          [pod('ns', 'a'), pod('ns', 'm'), pod('ns', 'z'), pod('ns-b', 'p1'), pod('ns-b', 'p2')].map(formatKey),
        );
        expect(all.items[1]).toEqual({ key: pod('ns', 'm'), value: { i: 5 }, createRevision: c.revision, modRevision: c.revision });
        const inNs = await store.list(kinds().pod, { namespace: ns('ns-b') });
        expect(inNs.items.map((i) => i.key.name)).toEqual(['p1', 'p2']);
        sameOrLater(inNs.revision, c.revision);
        expect((await store.list(kinds().pod, { namespace: ns('nope') })).items).toEqual([]);
        const pools = await store.list(kinds().pool);
        expect(pools.items.map((i) => i.key)).toEqual([pool('a'), pool('b')]);
        expect(pools.items[0]!.key.namespace).toBeUndefined();
      });

      itAll('lists many resources completely', async () => {
        const n = h.manyItems ?? 1200;
        for (let i = 0; i < n; i += 100) {
          await writeAll(
            Array.from({ length: 100 }, (_, j) => ({
              op: 'put' as const,
              key: pod('big', `p-${String(i + j).padStart(5, '0')}`),
              value: { i: i + j, pad: 'x'.repeat(200) },
            })),
          );
        }
        const l = await store.list(kinds().pod, { namespace: ns('big') });
        expect(l.items.length).toBe(n);
        expect(l.items.map((x) => x.value['i'])).toEqual(Array.from({ length: n }, (_, i) => i));
      });
    });

    describe('watch', () => {
      /** A fixed script of commits; returns the revision before it and the events it must produce. */
      const script = async (s: Datastore): Promise<{ before: number; expected: string[] }> => {
        const before = await s.currentRevision();
        const expected: string[] = [];
        const put = (rev: number, key: ResourceKey, v: JsonObject): string => `${rev} put ${formatKey(key)} ${JSON.stringify(v)}`;
        const c1 = await s.commit([{ op: 'create', key: pool('a'), value: { v: 1 } }]);
        expected.push(put(c1.revision, pool('a'), { v: 1 }));
        const c2ops: WriteOp[] = [
          { op: 'put', key: pod('ns', 'p'), value: { v: 2 } },
          { op: 'update', key: pool('a'), value: { v: 3 }, expectedRevision: c1.revision },
          { op: 'create', key: pool('b'), value: { v: 4 } },
        ];
        if (s.capabilities.atomicMultiKey) {
          const c2 = await s.commit(c2ops);
          expected.push(put(c2.revision, pod('ns', 'p'), { v: 2 }), put(c2.revision, pool('a'), { v: 3 }), put(c2.revision, pool('b'), { v: 4 }));
        } else {
          for (const op of c2ops) {
            const c = await s.commit([op]);
            expected.push(put(c.revision, op.key, (op as { value: JsonObject }).value));
          }
        }
        const c3 = await s.commit([{ op: 'delete', key: pool('a') }]);
        // `~N`: at most N, and after the line before (see exactDeleteRevision).
        expected.push(`${h.exactDeleteRevision === false ? '~' : ''}${c3.revision} delete ${formatKey(pool('a'))} `);
        await s.commit([{ op: 'delete', key: pool('never-existed') }]); // writes nothing, no event
        const c4 = await s.commit([{ op: 'put', key: pod('ns', 'p'), value: { v: 5 } }]);
        expected.push(put(c4.revision, pod('ns', 'p'), { v: 5 }));
        return { before, expected };
      };

      itAll('delivers history after a revision, in order, exactly once', async () => {
        const { before, expected } = await script(store);
        const events = inOrder(await takeEvents(store, { afterRevision: before }, expected.length));
        expectHistory(events.map(summary), expected);
        const del = events.find((e) => e.type === 'delete');
        expect(del).toMatchObject({ type: 'delete', key: pool('a'), prevValue: { v: 3 } });
        const firstPut = events[0]!;
        expect(firstPut).toMatchObject({ type: 'put', createRevision: firstPut.revision });
        // Nothing more: a watch from the last revision delivers only what comes next.
        const last = events.at(-1)!.revision;
        const c = await store.commit([{ op: 'put', key: pool('z'), value: {} }]);
        const next = await takeEvents(store, { afterRevision: last }, 1);
        expect(next.map(summary)).toEqual([`${c.revision} put ${formatKey(pool('z'))} {}`]);
      });

      itAll('delivers live changes, from another handle too, in order, exactly once', async () => {
        const other = await another();
        const before = await store.currentRevision();
        const watching = takeEvents(store, { afterRevision: before }, 6);
        const watchingOther = takeEvents(other, { afterRevision: before }, 6);
        // Give the watches a moment to start waiting (correctness does not depend on it).
        await new Promise((r) => setTimeout(r, 50));
        const { expected } = await script(other);
        expectHistory(inOrder(await watching).map(summary), expected);
        expectHistory(inOrder(await watchingOther).map(summary), expected);
      });

      itAll('filters by kinds', async () => {
        const { before, expected } = await script(store);
        const pods = await takeEvents(store, { afterRevision: before, kinds: [kinds().pod] }, 2);
        expect(pods.map(summary)).toEqual(expected.filter((e) => e.includes(` ${kinds().pod}/`)));
        const both = inOrder(await takeEvents(store, { afterRevision: before, kinds: [kinds().pod, kinds().pool] }, expected.length));
        expectHistory(both.map(summary), expected);
        // A watch on a kind with no changes still follows: it sees the next one of its kind.
        const ac = new AbortController();
        const it = store.watch({ afterRevision: before, kinds: [kinds().node], signal: ac.signal })[Symbol.asyncIterator]();
        const next = it.next();
        const c = await store.commit([{ op: 'put', key: { kind: kinds().node, name: 'n1' }, value: {} }]);
        expect(summary((await next).value as WatchEvent)).toBe(`${c.revision} put ${kinds().node}/n1 {}`);
        ac.abort();
        await it.return?.();
      });

      itAll('resumes after a restart from the last revision seen, losing and repeating nothing', async () => {
        const before = await store.currentRevision();
        const writes = 40;
        for (let i = 0; i < writes / 2; i++) await store.commit([{ op: 'put', key: pool(`p${i % 7}`), value: { i } }]);
        const first = await takeEvents(store, { afterRevision: before }, writes / 4);
        const lastSeen = first.at(-1)!.revision;
        // Restart: this handle goes away, another comes up on the same data, writes go on meanwhile.
        await store.close();
        const writer = await another();
        for (let i = writes / 2; i < writes; i++) await writer.commit([{ op: 'put', key: pool(`p${i % 7}`), value: { i } }]);
        store = await h.openAnother();
        const rest = await takeEvents(store, { afterRevision: lastSeen }, writes - writes / 4);
        const all = [...first, ...rest].map((e) => (e.type === 'put' ? e.value['i'] : e.type));
        expect(all).toEqual(Array.from({ length: writes }, (_, i) => i));
        const revs = [...first, ...rest].map((e) => e.revision);
        expect([...revs].sort((a, b) => a - b)).toEqual(revs);
        expect(new Set(revs).size).toBe(revs.length);
      });

      itAll('ends when its signal aborts or its store closes', async () => {
        const other = await another();
        const ac = new AbortController();
        const r = await store.currentRevision();
        const consume = async (s: Datastore, signal?: AbortSignal): Promise<number> => {
          let n = 0;
          for await (const _ of s.watch(signal === undefined ? { afterRevision: r } : { afterRevision: r, signal })) n++;
          return n;
        };
        const aborted = consume(store, ac.signal);
        const closed = consume(other);
        await new Promise((res) => setTimeout(res, 50));
        ac.abort();
        await other.close();
        expect(await aborted).toBe(0);
        expect(await closed).toBe(0);
      });

      it.skipIf(!compactable())('yields resync and ends when the history asked for is compacted', async () => {
        const before = await store.currentRevision();
        for (let i = 0; i < 10; i++) await store.commit([{ op: 'put', key: pool(`p${i}`), value: { i } }]);
        const now = await store.currentRevision();
        await h.compact!(now);
        const events = await takeEvents(store, { afterRevision: before }, 1);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({ type: 'resync' });
        expect((events[0] as { reason: string }).reason).toMatch(/compact/i);
        // The recovery the contract prescribes works: list, then watch from the list's revision.
        const l = await store.list(kinds().pool);
        expect(l.items).toHaveLength(10);
        const c = await store.commit([{ op: 'put', key: pool('after'), value: {} }]);
        const after = await takeEvents(store, { afterRevision: l.revision }, 1);
        expect(after.map(summary)).toEqual([`${c.revision} put ${formatKey(pool('after'))} {}`]);
      });

      it.skipIf(!compactable())('a watch that falls behind compaction while running gets resync', async () => {
        const before = await store.currentRevision();
        for (let i = 0; i < 5; i++) await store.commit([{ op: 'put', key: pool(`p${i}`), value: { i } }]);
        const ac = new AbortController();
        const it = store.watch({ afterRevision: before, signal: ac.signal })[Symbol.asyncIterator]();
        const first = await it.next();
        expect(first.value).toMatchObject({ type: 'put', key: pool('p0') });
        // Stop reading, let the store move on and forget, then read again.
        for (let i = 5; i < 10; i++) await store.commit([{ op: 'put', key: pool(`p${i}`), value: { i } }]);
        await h.compact!(await store.currentRevision());
        const seen: WatchEvent[] = [];
        const guard = setTimeout(() => ac.abort(), 10_000);
        for (;;) {
          const n = await it.next();
          if (n.done === true) break;
          seen.push(n.value);
          if (n.value.type === 'resync' || seen.length >= 9) break;
        }
        clearTimeout(guard);
        // Either the backend had already buffered the rest (a complete, ordered tail) or it says resync;
        // it never skips silently.
        const tail = seen.filter((e) => e.type === 'put').map((e) => (e.type === 'put' ? e.value['i'] : -1));
        expect(tail).toEqual(Array.from({ length: tail.length }, (_, i) => i + 1));
        if (seen.at(-1)?.type !== 'resync') expect(tail.length).toBe(9);
        ac.abort();
        await it.return?.();
      });
    });
  });
}
