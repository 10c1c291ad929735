import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { EtcdDatastore } from '../../src/datastore/etcd/etcd-datastore.js';
import { describeDatastoreContract } from './contract-suite.js';
import { startTestEtcd } from './etcd-server.js';
import type { TestEtcd } from './etcd-server.js';

// The etcd of scripts/with-etcd when there is one (shared with other test files: revisions are not
// dense then, and every test works under a prefix of its own); otherwise one of our own.
const shared = process.env['EGW_TEST_ETCD'];
let own: TestEtcd | undefined;
let endpoint = shared ?? '';

beforeAll(async () => {
  if (shared === undefined) {
    own = await startTestEtcd();
    endpoint = own.endpoint;
  }
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
    denseRevisions: shared === undefined,
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
