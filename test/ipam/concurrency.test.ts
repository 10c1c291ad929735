/**
 * Issue 3's "done when": 8 processes allocating 500 addresses each against one store get 4,000 distinct
 * addresses — on the SQLite store and on a real etcd. The pool (/20 in /26 blocks: 4,096 addresses) is
 * nearly exhausted by the end, so block claims, list fallbacks and borrowing all race. Afterwards the
 * records are consistent (no finding at all).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore } from '../../src/datastore/contract.js';
import { openDatastore } from '../../src/datastore/open.js';
import { analyzeIpam, readIpamSnapshot } from '../../src/ipam/inspect.js';
import { IPAM_BLOCK_KIND, IPAM_HANDLE_KIND } from '../../src/ipam/records.js';
import { startTestEtcd } from '../datastore/etcd-server.js';
import type { TestEtcd } from '../datastore/etcd-server.js';
import type { TestStore } from './helpers.js';
import { node, openTestStore, pool, seed } from './helpers.js';
import type { Worker } from './workers.js';
import { go, killAll, startWorker } from './workers.js';

const PROCESSES = 8;
const EACH = 500;
const workers: Worker[] = [];

afterAll(() => killAll(workers));

async function race(spec: string, store: Datastore): Promise<void> {
  await seed(store, ...[0, 1, 2, 3].map((i) => node(`node-${i}`)), pool('race', { cidr: '10.50.0.0/20', blockSize: 26 }));
  const mine = Array.from({ length: PROCESSES }, (_, id) => startWorker([spec, String(id), `node-${id % 4}`, String(EACH), 'alloc']));
  workers.push(...mine);
  await Promise.all(mine.map((w) => w.ready));
  go(mine);
  const codes = await Promise.all(mine.map((w) => w.exited));
  expect(codes, mine.map((w) => w.stderr()).join('\n')).toEqual(Array<number>(PROCESSES).fill(0));
  const handles = (await store.list(IPAM_HANDLE_KIND)).items.map((h) => (h.value as { ip: string }).ip);
  expect(handles).toHaveLength(PROCESSES * EACH);
  expect(new Set(handles).size).toBe(PROCESSES * EACH);
  let recorded = 0;
  for (const b of (await store.list(IPAM_BLOCK_KIND)).items) recorded += Object.keys((b.value as { allocations: object }).allocations).length;
  expect(recorded).toBe(PROCESSES * EACH);
  expect(analyzeIpam(await readIpamSnapshot(store))).toEqual([]);
}

describe('8 processes at once', () => {
  it('SQLite: 4,000 distinct addresses', async () => {
    const t: TestStore = await openTestStore('egw-ipam-race-');
    try {
      await race(t.path, t.store);
    } finally {
      await t.cleanup();
    }
  }, 240_000);

  describe('etcd', () => {
    const shared = process.env['EGW_TEST_ETCD'];
    let own: TestEtcd | undefined;
    beforeAll(async () => {
      if (shared === undefined) own = await startTestEtcd();
    }, 60_000);
    afterAll(async () => {
      await own?.cleanup();
    });

    it('4,000 distinct addresses', async () => {
      const spec = `etcd://${shared ?? own!.endpoint}/egw-ipam-race-${randomBytes(4).toString('hex')}`;
      const store = await openDatastore(spec);
      try {
        await race(spec, store);
      } finally {
        await store.close();
      }
    }, 300_000);
  });
});
