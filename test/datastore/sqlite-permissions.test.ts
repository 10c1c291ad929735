import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

  it('the default store is an absolute path', () => {
    expect(DEFAULT_DATASTORE).toBe('/var/lib/egw/egw.db');
  });
});
