import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { EtcdDatastore } from '../../src/datastore/etcd/etcd-datastore.js';
import { describeDatastoreContract } from './contract-suite.js';
import { startTestEtcd } from './etcd-server.js';
import type { TestEtcd } from './etcd-server.js';

// Always an etcd of our own, never the suite's shared one (scripts/with-etcd): revisions are global to an
// etcd, so another test file writing at the same time would break the checks that one commit bumps the
// revision exactly once, and the compaction tests would compact history other files are watching.
let own: TestEtcd | undefined;
let endpoint = '';

beforeAll(async () => {
  own = await startTestEtcd();
  endpoint = own.endpoint;
});

afterAll(async () => {
  await own?.cleanup();
});

describeDatastoreContract('etcd', async () => {
  const prefix = `/egw-test-${randomBytes(6).toString('hex')}/`;
  const open = (): Promise<EtcdDatastore> => EtcdDatastore.open({ endpoints: [endpoint], prefix });
  const store = await open();
  return {
    store,
    openAnother: open,
    compact: async (revision) => {
      const s = await open();
      try {
        await s.compact(revision);
      } finally {
        await s.close();
      }
    },
    denseRevisions: true,
    cleanup: async () => {
      const s = await open();
      try {
        await s.deleteAll();
      } finally {
        await s.close();
      }
    },
  };
});
