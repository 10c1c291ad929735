import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { describeDatastoreContract } from './contract-suite.js';

describeDatastoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egw-ds-sqlite-'));
  // A nested, missing directory: opening creates it.
  const path = join(dir, 'data', 'egw.db');
  const store = await SqliteDatastore.open(path);
  return {
    store,
    openAnother: () => SqliteDatastore.open(path),
    compact: async (revision) => {
      const other = await SqliteDatastore.open(path);
      try {
        await other.compact(revision);
      } finally {
        await other.close();
      }
    },
    denseRevisions: true,
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
