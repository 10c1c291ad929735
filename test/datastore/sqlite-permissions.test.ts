import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { DEFAULT_DATASTORE } from '../../src/datastore/open.js';
import { isEgwError } from '../../src/platform/errors.js';

// Issue 11, item 6: the embedded store is readable by its owner only, and its default path is absolute.

const mode = (p: string): number => statSync(p).mode & 0o777;

describe('SQLite store permissions', () => {
  const dirs: string[] = [];
  const oldUmask = process.umask();
  afterEach(() => {
    process.umask(oldUmask);
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'egw-sq-perm-'));
    dirs.push(d);
    return d;
  };

  it('creates the folders 0700 and the file, its -wal and -shm 0600, even with a permissive umask', async () => {
    process.umask(0o002); // a umask that would leave 0775 folders and 0664 files
    const d = tmp();
    const path = join(d, 'a', 'b', 'egw.db');
    const store = await SqliteDatastore.open(path);
    try {
      await store.commit([{ op: 'put', key: { kind: 'K', name: 'x' }, value: { v: 1 } }]);
      expect(mode(join(d, 'a')).toString(8)).toBe('700');
      expect(mode(join(d, 'a', 'b')).toString(8)).toBe('700');
      for (const f of ['egw.db', 'egw.db-wal', 'egw.db-shm']) expect(mode(join(d, 'a', 'b', f)).toString(8), f).toBe('600');
    } finally {
      await store.close();
    }
  });

  it('leaves an existing folder and file as they are (never loosened, not changed)', async () => {
    const d = tmp();
    const dir = join(d, 'shared');
    mkdirSync(dir);
    chmodSync(dir, 0o750);
    const path = join(dir, 'egw.db');
    writeFileSync(path, '');
    chmodSync(path, 0o640);
    const store = await SqliteDatastore.open(path);
    try {
      await store.commit([{ op: 'put', key: { kind: 'K', name: 'x' }, value: { v: 1 } }]);
      // SQLite gives the -wal the database file's mode (and removes it at the last close).
      expect(mode(`${path}-wal`).toString(8)).toBe('640');
    } finally {
      await store.close();
    }
    expect(mode(dir).toString(8)).toBe('750');
    expect(mode(path).toString(8)).toBe('640');
  });

  it('a path it cannot create is a terminal DatastoreUnavailable naming the file', async () => {
    const d = tmp();
    writeFileSync(join(d, 'file'), 'x');
    const err: unknown = await SqliteDatastore.open(join(d, 'file', 'egw.db')).catch((e: unknown) => e);
    expect(isEgwError(err, 'DatastoreUnavailable')).toBe(true);
    expect((err as { retry: string }).retry).toBe('terminal');
    expect(String((err as Error).message)).toContain(join(d, 'file'));
  });

  it('read-only (the gateway): creates nothing, waits for a store to exist, reads and watches, never writes', async () => {
    const d = tmp();
    const path = join(d, 'ro', 'egw.db');
    const missing: unknown = await SqliteDatastore.open(path, { readOnly: true }).catch((e: unknown) => e);
    expect(isEgwError(missing, 'DatastoreUnavailable')).toBe(true);
    expect((missing as { retry: string }).retry).toBe('retry');
    expect(existsSync(join(d, 'ro'))).toBe(false);
    // A writer makes the store and leaves (no -wal, no -shm left), then the reader opens it.
    const w1 = await SqliteDatastore.open(path);
    await w1.commit([{ op: 'put', key: { kind: 'Node', name: 'n1' }, value: { v: 1 } }]);
    await w1.close();
    const ro = await SqliteDatastore.open(path, { readOnly: true });
    const writer = await SqliteDatastore.open(path);
    const ac = new AbortController();
    try {
      expect((await ro.get({ kind: 'Node', name: 'n1' }))?.value).toEqual({ v: 1 });
      const from = await ro.currentRevision();
      const seen: unknown[] = [];
      const watching = (async () => {
        for await (const ev of ro.watch({ afterRevision: from, signal: ac.signal })) {
          seen.push(ev.type === 'put' ? ev.value : ev.type);
          return;
        }
      })();
      await writer.commit([{ op: 'put', key: { kind: 'Node', name: 'n2' }, value: { v: 2 } }]);
      await watching;
      expect(seen).toEqual([{ v: 2 }]);
      const err: unknown = await ro.commit([{ op: 'put', key: { kind: 'Pod', namespace: 'x', name: 'p' }, value: {} }]).catch((e: unknown) => e);
      expect(isEgwError(err, 'Unsupported')).toBe(true);
      expect(String((err as Error).message)).toMatch(/open read-only: cannot commit/);
      expect(await writer.get({ kind: 'Pod', namespace: 'x', name: 'p' })).toBeUndefined();
    } finally {
      ac.abort();
      await Promise.all([ro.close(), writer.close()]);
    }
  });

  it('the default store is an absolute path', () => {
    expect(DEFAULT_DATASTORE).toBe('/var/lib/egw/egw.db');
  });
});
