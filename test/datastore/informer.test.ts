import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Datastore, ResourceKey } from '../../src/datastore/contract.js';
import { EtcdDatastore } from '../../src/datastore/etcd/etcd-datastore.js';
import { formatKey } from '../../src/datastore/contract.js';
import { Informer } from '../../src/datastore/informer.js';
import type { InformerEvent } from '../../src/datastore/informer.js';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { FlakyDatastore } from './flaky-datastore.js';
import { startTestEtcd } from './etcd-server.js';
import type { TestEtcd } from './etcd-server.js';

// The informer against both backends: SQLite in a temp dir, and etcd (scripts/with-etcd's, or our own)
// under a prefix of its own per test.
let ownEtcd: TestEtcd | undefined;
let etcdEndpoint = process.env['EGW_TEST_ETCD'] ?? '';
beforeAll(async () => {
  if (etcdEndpoint === '') {
    ownEtcd = await startTestEtcd();
    etcdEndpoint = ownEtcd.endpoint;
  }
});
afterAll(async () => {
  await ownEtcd?.cleanup();
});

interface Backend {
  name: string;
  open(dir: string): Promise<{ store: Datastore; cleanup: () => Promise<void> }>;
}
const backends: Backend[] = [
  {
    name: 'sqlite',
    open: async (dir) => ({ store: await SqliteDatastore.open(join(dir, 'egw.db'), { pollIntervalMs: 10 }), cleanup: async () => undefined }),
  },
  {
    name: 'etcd',
    open: async () => {
      const prefix = `/egw-informer-${randomBytes(6).toString('hex')}/`;
      const store = await EtcdDatastore.open({ endpoints: [etcdEndpoint], prefix });
      return {
        store,
        cleanup: async () => {
          const s = await EtcdDatastore.open({ endpoints: [etcdEndpoint], prefix });
          await s.deleteAll();
          await s.close();
        },
      };
    },
  },
];

const pool = (name: string): ResourceKey => ({ kind: 'IPPool', name });
const pod = (ns: string, name: string): ResourceKey => ({ kind: 'Pod', namespace: ns, name });

/** Waits until `cond` holds (a hang guard, not a timing assertion). */
async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const show = (e: InformerEvent): string => {
  const v = JSON.stringify(e.resource.value);
  return `${e.type} ${formatKey(e.resource.key)} ${e.type === 'deleted' ? '' : v}`.trim();
};

describe.each(backends)('Informer on $name', (backend) => {
  let dir: string;
  let store: Datastore;
  let cleanupStore: () => Promise<void>;
  let flaky: FlakyDatastore;
  let informer: Informer | undefined;
  let events: string[];
  let syncs: number[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'egw-ds-informer-'));
    const opened = await backend.open(dir);
    store = opened.store;
    cleanupStore = opened.cleanup;
    flaky = new FlakyDatastore(store);
    events = [];
    syncs = [];
  });

  afterEach(async () => {
    await informer?.stop();
    informer = undefined;
    await store.close();
    await cleanupStore();
    rmSync(dir, { recursive: true, force: true });
  });

  const startInformer = (kinds = ['IPPool', 'Pod']): Informer => {
    informer = new Informer(
      { store: flaky },
      { kinds, backoffInitialMs: 5, backoffMaxMs: 20 },
      {
        onEvent: (e) => {
          events.push(show(e));
        },
        onSync: (r) => {
          syncs.push(r);
        },
      },
    );
    informer.start();
    return informer;
  };

  /** The cache equals the store for the followed kinds. */
  const expectCacheMatchesStore = async (inf: Informer): Promise<void> => {
    for (const kind of ['IPPool', 'Pod']) {
      const l = await store.list(kind);
      expect(inf.list(kind)).toEqual(l.items);
    }
  };

  it('lists, reports in-sync, then follows changes in order', async () => {
    const c0 = await store.commit([
      { op: 'put', key: pool('a'), value: { v: 1 } },
      { op: 'put', key: pod('ns', 'p'), value: { v: 1 } },
      { op: 'put', key: { kind: 'Node', name: 'n' }, value: {} },
    ]);
    const inf = startInformer();
    await inf.waitForSync();
    expect(inf.inSync).toBe(true);
    expect(events).toEqual(['added IPPool/a {"v":1}', 'added Pod/ns/p {"v":1}']);
    expect(syncs).toHaveLength(1);
    expect(syncs[0]).toBeGreaterThanOrEqual(c0.revision);
    const c = await store.commit([{ op: 'update', key: pool('a'), value: { v: 2 } }]);
    await store.commit([{ op: 'delete', key: pod('ns', 'p') }, { op: 'create', key: pool('b'), value: {} }]);
    await store.commit([{ op: 'put', key: { kind: 'Node', name: 'n' }, value: { ignored: true } }]);
    await until(() => events.length === 5, 'five events');
    expect(events.slice(2)).toEqual(['updated IPPool/a {"v":2}', 'deleted Pod/ns/p', 'added IPPool/b {}']);
    expect(inf.get(pool('a'))?.modRevision).toBe(c.revision);
    expect(inf.list('Pod', 'ns')).toEqual([]);
    await expectCacheMatchesStore(inf);
  });

  it('is not in sync before its first list completes', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    flaky.beforeList = () => gate;
    const inf = startInformer();
    await until(() => flaky.lists > 0, 'the list to start');
    expect(inf.inSync).toBe(false);
    release();
    await inf.waitForSync();
    expect(inf.inSync).toBe(true);
  });

  it('retries a failing list with backoff, then syncs', async () => {
    await store.commit([{ op: 'put', key: pool('a'), value: {} }]);
    flaky.failLists = 3;
    const inf = startInformer();
    await inf.waitForSync();
    expect(flaky.failLists).toBe(0);
    expect(events).toEqual(['added IPPool/a {}']);
    expect(inf.lastError).toBeUndefined();
  });

  it('resumes a broken watch without a re-list, losing and repeating nothing', async () => {
    const inf = startInformer();
    await inf.waitForSync();
    const listsBefore = flaky.lists;
    flaky.breakWatchAfter = 3;
    flaky.failWatches = 0;
    for (let i = 0; i < 10; i++) {
      // Multi-op commits: a break can fall in the middle of one revision's events.
      await store.commit([
        { op: 'put', key: pool(`p${i}`), value: { i } },
        { op: 'put', key: pod('ns', `p${i}`), value: { i } },
      ]);
    }
    flaky.failWatches = 2;
    await store.commit([{ op: 'delete', key: pool('p0') }]);
    await until(() => events.length === 21, '21 events');
    expect(events).toEqual([
      ...Array.from({ length: 10 }, (_, i) => [`added IPPool/p${i} {"i":${i}}`, `added Pod/ns/p${i} {"i":${i}}`]).flat(),
      'deleted IPPool/p0',
    ]);
    expect(flaky.lists).toBe(listsBefore);
    expect(flaky.watches).toBeGreaterThan(1);
    expect(inf.inSync).toBe(true);
    await expectCacheMatchesStore(inf);
  });

  it('re-lists on resync, emitting only the differences, and is out of sync meanwhile', async () => {
    await store.commit([
      { op: 'put', key: pool('keep'), value: { v: 1 } },
      { op: 'put', key: pool('change'), value: { v: 1 } },
      { op: 'put', key: pool('remove'), value: { v: 1 } },
    ]);
    const inf = startInformer();
    await inf.waitForSync();
    events.length = 0;
    // Changes the informer never sees as events (as after a compaction)...
    flaky.blackhole = true;
    await store.commit([{ op: 'put', key: pool('change'), value: { v: 2 } }]);
    await store.commit([{ op: 'delete', key: pool('remove') }]);
    await store.commit([{ op: 'create', key: pool('new'), value: { v: 1 } }]);
    await store.commit([{ op: 'put', key: pool('temp'), value: {} }]);
    await store.commit([{ op: 'delete', key: pool('temp') }]);
    // The watch must have swallowed them all (etcd delivers asynchronously) before the hole closes.
    await until(() => flaky.swallowed === 5, 'the lost events to be swallowed');
    expect(events).toEqual([]);
    // ...then the watch says resync; the re-list is held so that "out of sync" can be observed.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    flaky.beforeList = () => gate;
    flaky.blackhole = false;
    await store.commit([{ op: 'put', key: { kind: 'Pod', namespace: 'x', name: 'trigger' }, value: {} }]);
    await until(() => !inf.inSync, 'the informer to leave sync');
    release();
    await inf.waitForSync();
    expect(events.sort()).toEqual(['added IPPool/new {"v":1}', 'added Pod/x/trigger {}', 'deleted IPPool/remove', 'updated IPPool/change {"v":2}']);
    expect(syncs).toHaveLength(2);
    await expectCacheMatchesStore(inf);
    // And it keeps following afterwards.
    await store.commit([{ op: 'delete', key: pool('keep') }]);
    await until(() => events.includes('deleted IPPool/keep'), 'the delete after the re-list');
  });

  it('shows no phantom when a resource of one kind changes between the lists of two kinds', async () => {
    flaky.beforeList = async (kind) => {
      // After IPPool was listed, before Pod is: a pod comes and goes.
      if (kind === 'Pod') {
        await store.commit([{ op: 'put', key: pod('ns', 'ghost'), value: {} }]);
        await store.commit([{ op: 'delete', key: pod('ns', 'ghost') }]);
        await store.commit([{ op: 'put', key: pool('late'), value: {} }]);
      }
    };
    const inf = startInformer();
    await inf.waitForSync();
    flaky.beforeList = undefined;
    await store.commit([{ op: 'put', key: pool('marker'), value: {} }]);
    await until(() => events.includes('added IPPool/marker {}'), 'the marker');
    expect(events).toEqual(['added IPPool/late {}', 'added IPPool/marker {}']);
  });

  it('keeps a handler failure from stopping it, and stops cleanly', async () => {
    let calls = 0;
    informer = new Informer(
      { store: flaky },
      { kinds: ['IPPool'], backoffInitialMs: 5 },
      {
        onEvent: () => {
          calls++;
          throw new Error('handler bug');
        },
      },
    );
    informer.start();
    await informer.waitForSync();
    await store.commit([{ op: 'put', key: pool('a'), value: {} }]);
    await store.commit([{ op: 'put', key: pool('b'), value: {} }]);
    await until(() => calls === 2, 'both events despite the throw');
    await informer.stop();
    await store.commit([{ op: 'put', key: pool('c'), value: {} }]);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(2);
    expect(informer.list('IPPool').map((r) => r.key.name)).toEqual(['a', 'b']);
  });

  it('stops when the store is closed under it', async () => {
    const inf = startInformer();
    await inf.waitForSync();
    await store.close();
    await until(() => inf.lastError?.code === 'DatastoreClosed', 'the informer to notice');
  });
});
