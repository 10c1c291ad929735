import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { FakeClock } from '../../src/platform/clock.js';
import { isEgwError } from '../../src/platform/errors.js';
import type { EgwError } from '../../src/platform/errors.js';
import { takeEvents } from './contract-suite.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'egw-ds-sqlite-'));
  dirs.push(d);
  return d;
};
const openError = async (path: string, options = {}): Promise<EgwError> => {
  const err: unknown = await SqliteDatastore.open(path, options).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  if (!isEgwError(err)) throw new Error(`expected an EgwError, got ${String(err)}`);
  return err;
};

describe('SqliteDatastore: files that are not an egw store', () => {
  it('refuses a file that is not a SQLite database', async () => {
    const p = join(tmp(), 'junk.db');
    writeFileSync(p, 'this is not a database, just some text that is long enough to look like a header '.repeat(20));
    const err = await openError(p);
    expect(err.code).toBe('DatastoreUnavailable');
    expect(err.retry).toBe('terminal');
    expect(err.message).toMatch(/not a SQLite database/);
    expect(err.message).toContain(p);
  });

  it('refuses a SQLite database of something else', async () => {
    const p = join(tmp(), 'other.db');
    const db = new Database(p);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY)');
    db.close();
    const err = await openError(p);
    expect(err.code).toBe('DatastoreUnavailable');
    expect(err.message).toMatch(/not an egw store.*users/);
  });

  it('refuses a store written by a newer egw', async () => {
    const p = join(tmp(), 'newer.db');
    await (await SqliteDatastore.open(p)).close();
    const db = new Database(p);
    db.prepare("UPDATE egw_meta SET value = '99' WHERE key = 'schema_version'").run();
    db.close();
    const err = await openError(p);
    expect(err.message).toMatch(/newer egw/);
  });

  it('says so when the path cannot be opened', async () => {
    const d = tmp();
    const asDir = join(d, 'a-directory.db');
    mkdirSync(asDir);
    const err = await openError(asDir);
    expect(err.code).toBe('DatastoreUnavailable');
    expect(err.message).toContain(asDir);
    const underFile = join(d, 'file');
    writeFileSync(underFile, '');
    const err2 = await openError(join(underFile, 'x.db'));
    expect(err2.code).toBe('DatastoreUnavailable');
    expect(err2.message).toMatch(/cannot create the directory/);
  });
});

describe('SqliteDatastore: locks, compaction, lifecycle', () => {
  it('fails with DatastoreUnavailable when another process holds the write lock too long', async () => {
    const p = join(tmp(), 'locked.db');
    const store = await SqliteDatastore.open(p, { lockTimeoutMs: 200 });
    const other = new Database(p);
    other.prepare('BEGIN IMMEDIATE').run();
    try {
      const err: unknown = await store.commit([{ op: 'put', key: { kind: 'K', name: 'a' }, value: {} }]).catch((e: unknown) => e);
      expect(isEgwError(err, 'DatastoreUnavailable')).toBe(true);
      expect((err as EgwError).message).toMatch(/locked by another process for more than 200 ms/);
      expect((err as EgwError).retry).toBe('retry');
      // Readers are not blocked by a writer (WAL).
      expect(await store.currentRevision()).toBe(0);
    } finally {
      other.prepare('ROLLBACK').run();
      other.close();
    }
    // Once the lock is gone, writes go through again.
    expect((await store.commit([{ op: 'put', key: { kind: 'K', name: 'a' }, value: {} }])).revision).toBe(1);
    await store.close();
  });

  it('compacts the change log by revision count and age, so watches from before get resync', async () => {
    const p = join(tmp(), 'compact.db');
    const clock = new FakeClock();
    const store = await SqliteDatastore.open(p, { clock, retainRevisions: 20, retainMs: 60_000, compactEvery: 10 });
    const put = (i: number): Promise<unknown> => store.commit([{ op: 'put', key: { kind: 'K', name: `k${i % 5}` }, value: { i } }]);
    for (let i = 1; i <= 50; i++) await put(i);
    // Young changes are all kept, however many.
    expect((await takeEvents(store, { afterRevision: 0 }, 50)).length).toBe(50);
    clock.advance(120_000);
    for (let i = 51; i <= 60; i++) await put(i);
    // Revision 60 triggered compaction: what is both old and beyond the last 20 revisions is gone.
    const events = await takeEvents(store, { afterRevision: 0 }, 1);
    expect(events[0]).toMatchObject({ type: 'resync' });
    const kept = await takeEvents(store, { afterRevision: 40 }, 20);
    expect(kept.map((e) => e.revision)).toEqual(Array.from({ length: 20 }, (_, i) => 41 + i));
    // Current values are never compacted.
    expect((await store.list('K')).items.map((i) => i.value['i'])).toEqual([60, 56, 57, 58, 59]);
    await store.close();
  });

  it('keeps the file bounded under steady churn', async () => {
    const p = join(tmp(), 'churn.db');
    const store = await SqliteDatastore.open(p, { retainRevisions: 100, retainMs: 0, compactEvery: 100 });
    const churn = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        await store.commit([{ op: 'put', key: { kind: 'K', name: `k${i % 10}` }, value: { i, pad: 'x'.repeat(500) } }]);
      }
    };
    await churn(2_000);
    const size1 = statSync(p).size + statSync(`${p}-wal`).size;
    await churn(6_000);
    const size2 = statSync(p).size + statSync(`${p}-wal`).size;
    // Four times the writes, about the same file: freed pages are reused. (Not a timing assertion.)
    expect(size2).toBeLessThan(size1 * 1.5);
    await store.close();
  });

  it('gives resync to a watch from a revision the store never had (a replaced file)', async () => {
    const store = await SqliteDatastore.open(join(tmp(), 'ahead.db'));
    await store.commit([{ op: 'put', key: { kind: 'K', name: 'a' }, value: {} }]);
    const events = await takeEvents(store, { afterRevision: 500 }, 1);
    expect(events[0]).toMatchObject({ type: 'resync', revision: 1 });
    expect((events[0] as { reason: string }).reason).toMatch(/ahead/);
    await store.close();
  });

  it('fails with DatastoreClosed after close, and closes twice without harm', async () => {
    const store = await SqliteDatastore.open(join(tmp(), 'closed.db'));
    await store.close();
    await store.close();
    const err: unknown = await store.get({ kind: 'K', name: 'a' }).catch((e: unknown) => e);
    expect(isEgwError(err, 'DatastoreClosed')).toBe(true);
  });

  it('opens one new file from many handles at once', async () => {
    const p = join(tmp(), 'race', 'egw.db');
    const stores = await Promise.all(Array.from({ length: 6 }, () => SqliteDatastore.open(p)));
    await Promise.all(stores.map((s, i) => s.commit([{ op: 'create', key: { kind: 'K', name: `s${i}` }, value: {} }])));
    expect((await stores[0]!.list('K')).items).toHaveLength(6);
    expect(await stores[5]!.currentRevision()).toBe(6);
    for (const s of stores) await s.close();
  });
});
