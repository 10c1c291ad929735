import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WatchEvent } from '../../src/datastore/contract.js';
import { EtcdDatastore } from '../../src/datastore/etcd/etcd-datastore.js';
import { isEgwError } from '../../src/platform/errors.js';
import { startTestEtcd } from './etcd-server.js';
import type { TestEtcd } from './etcd-server.js';

// Always an etcd of our own: this test stops and restarts it.
let etcd: TestEtcd;
beforeAll(async () => {
  etcd = await startTestEtcd();
});
afterAll(async () => {
  await etcd?.cleanup();
});

/** Retries a write until the restarted server takes it (the client reconnects on its own). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isEgwError(err, 'DatastoreUnavailable') || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('etcd backend across a server restart', () => {
  it('fails writes while etcd is down, then reconnects; a running watch loses and repeats nothing', async () => {
    const store = await EtcdDatastore.open({ endpoints: [etcd.endpoint], requestTimeoutMs: 1_000, watchRetryMaxMs: 300 });
    const watcher = await EtcdDatastore.open({ endpoints: [etcd.endpoint], requestTimeoutMs: 1_000, watchRetryMaxMs: 300 });
    try {
      const start = await store.currentRevision();
      const seen: WatchEvent[] = [];
      const ac = new AbortController();
      const guard = setTimeout(() => ac.abort(), 30_000);
      const watching = (async () => {
        for await (const ev of watcher.watch({ afterRevision: start, signal: ac.signal })) {
          seen.push(ev);
          if (seen.length === 10 || ev.type === 'resync') break;
        }
      })();
      for (let i = 0; i < 5; i++) await store.commit([{ op: 'put', key: { kind: 'K', name: `k${i}` }, value: { i } }]);

      await etcd.stop();
      const err: unknown = await store.commit([{ op: 'put', key: { kind: 'K', name: 'down' }, value: {} }]).catch((e: unknown) => e);
      expect(isEgwError(err, 'DatastoreUnavailable')).toBe(true);
      expect(String((err as Error).message)).toContain(etcd.endpoint);

      await etcd.start();
      for (let i = 5; i < 10; i++) {
        await eventually(() => store.commit([{ op: 'put', key: { kind: 'K', name: `k${i}` }, value: { i } }]));
      }
      await watching;
      clearTimeout(guard);
      expect(seen.map((e) => (e.type === 'put' ? e.value['i'] : e.type))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      // The data survived the restart.
      expect((await store.list('K')).items).toHaveLength(10);
    } finally {
      await store.close();
      await watcher.close();
    }
  });

  it('a watch started while etcd is down begins delivering once it is back', async () => {
    const store = await EtcdDatastore.open({ endpoints: [etcd.endpoint], requestTimeoutMs: 1_000, watchRetryMaxMs: 300 });
    try {
      const start = await store.currentRevision();
      await etcd.stop();
      const ac = new AbortController();
      const guard = setTimeout(() => ac.abort(), 30_000);
      const first = (async () => {
        for await (const ev of store.watch({ afterRevision: start, kinds: ['K2'], signal: ac.signal })) return ev;
        return undefined;
      })();
      await new Promise((r) => setTimeout(r, 300));
      await etcd.start();
      const c = await eventually(() => store.commit([{ op: 'create', key: { kind: 'K2', name: 'x' }, value: { ok: true } }]));
      const ev = await first;
      clearTimeout(guard);
      expect(ev).toMatchObject({ type: 'put', revision: c.revision, value: { ok: true } });
    } finally {
      await store.close();
    }
  });
});
