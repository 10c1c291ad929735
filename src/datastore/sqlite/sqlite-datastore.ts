import { closeSync, constants as fsConstants, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { DatastoreCapabilities } from '../contract.js';
import type { Clock } from '../../platform/clock.js';
import { SystemClock } from '../../platform/clock.js';
import { EgwError, errorMessage, isEgwError } from '../../platform/errors.js';
import type {
  CommitResult,
  Datastore,
  JsonObject,
  ListResult,
  ResourceKey,
  StoredResource,
  WatchEvent,
  WatchOptions,
  WriteOp,
} from '../contract.js';
import { checkKey, checkOps, opFailure, opHolds } from '../keys.js';
import { RevisionNotifier } from './revision-notifier.js';

/** Tells an egw store from any other SQLite file. */
const FORMAT = 'egw-datastore';
/** Bumped when the tables change incompatibly; a newer file is refused, not misread. */
const SCHEMA_VERSION = 1;

/** Tuning of {@link SqliteDatastore}; every field has a default fit for a node or a laptop. */
export interface SqliteDatastoreOptions {
  /**
   * How long a write waits for another process's write lock before failing with
   * `DatastoreUnavailable` (default 10,000 ms).
   */
  lockTimeoutMs?: number;
  /** Backstop poll of the revision while a watch waits; fs.watch usually wakes it sooner (default 50 ms). */
  pollIntervalMs?: number;
  /**
   * Change-log retention: a change is kept while it is among the last `retainRevisions` revisions
   * **or** younger than `retainMs`; older ones are compacted away (defaults 10,000 revisions, 10 minutes).
   */
  retainRevisions?: number;
  retainMs?: number;
  /** Compaction runs after every `compactEvery`-th revision, by whichever process wrote it (default 1,000). */
  compactEvery?: number;
  /** Clock for change timestamps (retention by age) and lock-wait deadlines. */
  clock?: Clock;
  /**
   * Open the file read-only (SQLite's `readonly` mode), for programs that never write (`egw gateway`):
   * nothing is created, commits and compactions fail with `Unsupported`, and a store that does not exist
   * yet, or is not initialised yet, is `DatastoreUnavailable`/retry (a writer will create it).
   */
  readOnly?: boolean;
}

interface ResourceRow {
  value: string;
  create_revision: number;
  mod_revision: number;
}
interface ListRow extends ResourceRow {
  namespace: string;
  name: string;
}
interface ChangeRow {
  revision: number;
  kind: string;
  namespace: string;
  name: string;
  type: 'put' | 'delete';
  value: string;
  create_revision: number;
}
interface StateRow {
  revision: number;
  compacted: number;
}

type Batch =
  | { kind: 'events'; events: WatchEvent[]; upTo: number; more: boolean }
  | { kind: 'resync'; event: WatchEvent };

/** Revisions read per watch batch: bounds memory when a watch starts far behind. */
const WATCH_BATCH_REVISIONS = 500;

/**
 * The embedded backend: one SQLite file (WAL mode) shared by any number of processes on one machine.
 *
 * Tables: `egw_state` (the global revision and the compaction mark), `egw_resources` (the current value
 * of each key) and `egw_changes` (the change log by revision, which watches read). Writes run in
 * `BEGIN IMMEDIATE` transactions, so the expectations of a commit are checked and its changes written
 * under one write lock; readers (WAL) never block writers and see whole commits only.
 *
 * Errors: `DatastoreUnavailable` when the file cannot be opened or created, is not an egw store, was
 * written by a newer egw, or stays locked by another process longer than `lockTimeoutMs`;
 * `DatastoreClosed` after {@link close}.
 */
export class SqliteDatastore implements Datastore {
  readonly location: string;
  /** Commits of several keys and `check` ops are atomic. */
  readonly capabilities: DatastoreCapabilities = { atomicMultiKey: true };
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly lockTimeoutMs: number;
  private readonly retainRevisions: number;
  private readonly retainMs: number;
  private readonly compactEvery: number;
  private readonly notifier: RevisionNotifier;
  private readonly closing = new AbortController();
  private closed = false;
  private readonly stmt;
  private readonly commitTx: Database.Transaction<(ops: readonly WriteOp[]) => CommitResult>;
  private readonly readOnly: boolean;

  private constructor(readonly path: string, db: Database.Database, options: SqliteDatastoreOptions) {
    this.location = `sqlite:${path}`;
    this.db = db;
    this.clock = options.clock ?? new SystemClock();
    this.lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
    this.retainRevisions = options.retainRevisions ?? 10_000;
    this.retainMs = options.retainMs ?? 10 * 60_000;
    this.compactEvery = options.compactEvery ?? 1_000;
    this.readOnly = options.readOnly === true;
    this.stmt = {
      state: db.prepare<[], StateRow>('SELECT revision, compacted FROM egw_state WHERE id = 1'),
      get: db.prepare<[string, string, string], ResourceRow>(
        'SELECT value, create_revision, mod_revision FROM egw_resources WHERE kind = ? AND namespace = ? AND name = ?',
      ),
      listKind: db.prepare<[string], ListRow>(
        'SELECT namespace, name, value, create_revision, mod_revision FROM egw_resources WHERE kind = ? ORDER BY namespace, name',
      ),
      listNamespace: db.prepare<[string, string], ListRow>(
        'SELECT namespace, name, value, create_revision, mod_revision FROM egw_resources WHERE kind = ? AND namespace = ? ORDER BY name',
      ),
      upsert: db.prepare(
        `INSERT INTO egw_resources (kind, namespace, name, value, create_revision, mod_revision) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (kind, namespace, name) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision`,
      ),
      remove: db.prepare('DELETE FROM egw_resources WHERE kind = ? AND namespace = ? AND name = ?'),
      logChange: db.prepare(
        'INSERT INTO egw_changes (revision, seq, kind, namespace, name, type, value, create_revision, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      setRevision: db.prepare('UPDATE egw_state SET revision = ? WHERE id = 1'),
      changes: db.prepare<[number, number], ChangeRow>(
        `SELECT revision, kind, namespace, name, type, value, create_revision FROM egw_changes
         WHERE revision > ? AND revision <= ? ORDER BY revision, seq`,
      ),
      compactable: db.prepare<[number, number], { r: number | null }>(
        'SELECT max(revision) AS r FROM egw_changes WHERE revision <= ? AND ts < ?',
      ),
      dropChanges: db.prepare('DELETE FROM egw_changes WHERE revision <= ?'),
      setCompacted: db.prepare('UPDATE egw_state SET compacted = max(compacted, ?) WHERE id = 1'),
    };
    this.commitTx = db.transaction((ops: readonly WriteOp[]) => this.applyOps(ops));
    this.notifier = new RevisionNotifier(() => this.readState().revision, path, options.pollIntervalMs ?? 50);
  }

  /**
   * Opens (creating the directory and the file when missing) the store at `path`. Safe to call from
   * several processes at once on the same path.
   *
   * Permissions (issue 11, item 6): a directory egw creates is 0700 and a file it creates 0600, and
   * SQLite gives the `-wal` and `-shm` files the mode of the database file, so the whole store is
   * readable by its owner only. An existing directory or file keeps its mode (an administrator may have
   * chosen a group on purpose); docs/security.md says what to give it.
   */
  static async open(path: string, options: SqliteDatastoreOptions = {}): Promise<SqliteDatastore> {
    const abs = resolve(path);
    const where = `sqlite:${abs}`;
    if (options.readOnly === true) return SqliteDatastore.openReadOnly(abs, where, options);
    try {
      mkdirSync(dirname(abs), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw unavailable(where, `cannot create the directory ${dirname(abs)}`, err, 'terminal');
    }
    try {
      // Created here, not by SQLite (which would use 0644 less the umask). Without O_EXCL, so that several
      // processes may race: the one that creates it sets the mode, an existing file is left as it is.
      closeSync(openSync(abs, fsConstants.O_RDONLY | fsConstants.O_CREAT, 0o600));
    } catch (err) {
      throw unavailable(where, `cannot create or open the file: ${errorMessage(err)}`, err, 'terminal', 'check that the path is a file this user may read and write');
    }
    let db: Database.Database;
    try {
      // A short busy timeout keeps one blocking wait short; longer waits are async retries below.
      db = new Database(abs, { timeout: 50 });
    } catch (err) {
      throw mapSqliteError(where, err, 'open');
    }
    try {
      const store = new SqliteDatastore(abs, await initialise(db, where, options), options);
      await store.autoCompact();
      return store;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** {@link open} with `readOnly`: the file must exist and hold an initialised egw store. */
  private static async openReadOnly(abs: string, where: string, options: SqliteDatastoreOptions): Promise<SqliteDatastore> {
    const notYet = (err: unknown): EgwError =>
      unavailable(where, 'the store does not exist yet (opened read-only: this program never creates it)', err, 'retry', 'start a program that writes the store (the controller, egw apply) or check --datastore');
    if (!existsSync(abs)) throw notYet(undefined);
    let db: Database.Database;
    try {
      db = new Database(abs, { readonly: true, fileMustExist: true, timeout: 50 });
    } catch (err) {
      if (!existsSync(abs)) throw notYet(err);
      throw mapSqliteError(where, err, 'open');
    }
    try {
      const ready = await retryBusy(options, where, () => db.transaction(() => verify(db, where))());
      if (!ready) throw unavailable(where, 'the store is not initialised yet (opened read-only)', undefined, 'retry', 'start a program that writes the store');
      return new SqliteDatastore(abs, db, options);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  get(key: ResourceKey): Promise<StoredResource | undefined> {
    return this.read(() => {
      const k = checkKey(key);
      const row = this.stmt.get.get(k.kind, k.namespace ?? '', k.name);
      return row === undefined ? undefined : toStored(k, row);
    });
  }

  list(kind: string, options: { namespace?: string } = {}): Promise<ListResult> {
    return this.read(() =>
      this.db.transaction(() => {
        // Validates kind and namespace like keys ('' = cluster-scoped).
        const k = checkKey({ kind, namespace: options.namespace, name: 'x' });
        const ns = options.namespace === undefined ? undefined : (k.namespace ?? '');
        const rows =
          ns === undefined ? this.stmt.listKind.all(kind) : this.stmt.listNamespace.all(kind, ns);
        const items = rows.map((r) =>
          toStored(r.namespace === '' ? { kind, name: r.name } : { kind, namespace: r.namespace, name: r.name }, r),
        );
        return { items, revision: this.readState().revision };
      })(),
    );
  }

  async currentRevision(): Promise<number> {
    return this.read(() => this.readState().revision);
  }

  async commit(ops: readonly WriteOp[]): Promise<CommitResult> {
    this.assertOpen();
    this.assertWritable('commit');
    const checked = checkOps(ops);
    const result = await this.withLock('commit', () => this.commitTx.immediate(checked));
    this.notifier.poke();
    if (result.results.length > 0 && result.revision % this.compactEvery === 0) await this.autoCompact();
    return result;
  }

  /**
   * Drops the change log at or below `revision` (default: what the retention options allow), so watches
   * from before it get `resync`. Returns the store's compaction mark afterwards. Never drops current values.
   */
  async compact(revision?: number): Promise<number> {
    this.assertOpen();
    this.assertWritable('compact');
    return this.withLock('compact', () =>
      this.db
        .transaction(() => {
          const state = this.readState();
          const upTo = Math.min(revision ?? this.retainedFloor(state.revision), state.revision);
          if (upTo > state.compacted) {
            this.stmt.dropChanges.run(upTo);
            this.stmt.setCompacted.run(upTo);
          }
          return Math.max(upTo, state.compacted);
        })
        .immediate(),
    );
  }

  watch(options: WatchOptions): AsyncIterable<WatchEvent> {
    return { [Symbol.asyncIterator]: () => this.follow(options) };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.closing.abort();
    this.notifier.shutdown();
    this.db.close();
    return Promise.resolve();
  }

  private async *follow(options: WatchOptions): AsyncGenerator<WatchEvent> {
    this.assertOpen();
    const stop = options.signal === undefined ? this.closing.signal : AbortSignal.any([options.signal, this.closing.signal]);
    const kinds = options.kinds === undefined ? undefined : new Set(options.kinds);
    let cursor = options.afterRevision;
    this.notifier.acquire();
    try {
      while (!stop.aborted) {
        const batch = await this.read(() => this.readBatch(cursor, kinds));
        if (batch.kind === 'resync') {
          yield batch.event;
          return;
        }
        for (const event of batch.events) {
          if (stop.aborted) return;
          yield event;
        }
        cursor = batch.upTo;
        if (!batch.more) await this.notifier.wait(cursor, stop);
      }
    } finally {
      this.notifier.release();
    }
  }

  /** One consistent read of the change log after `cursor` (a read transaction: whole commits only). */
  private readBatch(cursor: number, kinds: Set<string> | undefined): Batch {
    return this.db.transaction((): Batch => {
      const state = this.readState();
      if (cursor < state.compacted) {
        return {
          kind: 'resync',
          event: {
            type: 'resync',
            revision: state.revision,
            reason: `history after revision ${cursor} was compacted (kept: after ${state.compacted})`,
          },
        };
      }
      if (cursor > state.revision) {
        return {
          kind: 'resync',
          event: {
            type: 'resync',
            revision: state.revision,
            reason: `revision ${cursor} is ahead of the store (at ${state.revision}): the store was replaced`,
          },
        };
      }
      const upTo = Math.min(state.revision, cursor + WATCH_BATCH_REVISIONS);
      const events: WatchEvent[] = [];
      for (const row of this.stmt.changes.all(cursor, upTo)) {
        if (kinds !== undefined && !kinds.has(row.kind)) continue;
        events.push(toEvent(row));
      }
      return { kind: 'events', events, upTo, more: upTo < state.revision };
    })();
  }

  /** The body of a commit, inside `BEGIN IMMEDIATE`; throws (and so rolls back) on the first failed op. */
  private applyOps(ops: readonly WriteOp[]): CommitResult {
    const state = this.readState();
    const revision = state.revision + 1;
    const current = ops.map((op) => {
      const row = this.stmt.get.get(op.key.kind, op.key.namespace ?? '', op.key.name);
      const cur = row === undefined ? undefined : toStored(op.key, row);
      if (!opHolds(op, cur)) throw opFailure(op, cur);
      return cur;
    });
    const now = this.clock.now();
    let seq = 0;
    const results = ops.map((op, i): StoredResource | undefined => {
      const cur = current[i];
      const ns = op.key.namespace ?? '';
      switch (op.op) {
        case 'create':
        case 'update':
        case 'put': {
          const createRevision = cur?.createRevision ?? revision;
          const text = JSON.stringify(op.value);
          this.stmt.upsert.run(op.key.kind, ns, op.key.name, text, createRevision, revision);
          this.stmt.logChange.run(revision, seq++, op.key.kind, ns, op.key.name, 'put', text, createRevision, now);
          return { key: op.key, value: JSON.parse(text) as JsonObject, createRevision, modRevision: revision };
        }
        case 'delete':
          if (cur !== undefined) {
            this.stmt.remove.run(op.key.kind, ns, op.key.name);
            const text = JSON.stringify(cur.value);
            this.stmt.logChange.run(revision, seq++, op.key.kind, ns, op.key.name, 'delete', text, cur.createRevision, now);
          }
          return undefined;
        case 'check':
          return undefined;
      }
    });
    if (seq === 0) return { revision: state.revision, results };
    this.stmt.setRevision.run(revision);
    return { revision, results };
  }

  /** The highest revision the retention options allow to drop (see {@link SqliteDatastoreOptions}). */
  private retainedFloor(current: number): number {
    const byCount = current - this.retainRevisions;
    if (byCount <= 0) return 0;
    return this.stmt.compactable.get(byCount, this.clock.now() - this.retainMs)?.r ?? 0;
  }

  /** Compaction by the retention options; skipped (not failed) when another process holds the lock. */
  private async autoCompact(): Promise<void> {
    // A read first: most of the time there is nothing to drop, and then no write lock is taken.
    const state = this.readState();
    if (state.revision - state.compacted <= this.retainRevisions) return;
    try {
      await this.compact();
    } catch (err) {
      if (!isEgwError(err, 'DatastoreUnavailable')) throw err;
    }
  }

  private readState(): StateRow {
    const s = this.stmt.state.get();
    if (s === undefined) throw unavailable(this.location, 'the egw_state row is missing: the file is damaged', undefined, 'terminal');
    return s;
  }

  private assertOpen(): void {
    if (this.closed) throw new EgwError('DatastoreClosed', `${this.location} is closed`);
  }

  private assertWritable(action: string): void {
    if (this.readOnly) throw new EgwError('Unsupported', `${this.location} is open read-only: cannot ${action}`, { hint: 'this program only reads the datastore' });
  }

  private async read<T>(fn: () => T): Promise<T> {
    this.assertOpen();
    return this.withLock('read', fn);
  }

  /** Runs `fn`, retrying while another process holds a lock, up to `lockTimeoutMs`. */
  private async withLock<T>(action: string, fn: () => T): Promise<T> {
    const deadline = this.clock.now() + this.lockTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      this.assertOpen();
      try {
        return fn();
      } catch (err) {
        if (isEgwError(err)) throw err;
        if (isBusy(err) && this.clock.now() < deadline) {
          // Jittered, growing pauses: many processes contending for the lock do not retry in lockstep.
          await this.clock.sleep(Math.random() * Math.min(2 ** attempt, 25));
          continue;
        }
        throw mapSqliteError(this.location, err, action, this.lockTimeoutMs);
      }
    }
  }
}

/** Runs `fn`, retrying while another process holds a lock, up to the lock timeout. */
async function retryBusy<T>(options: SqliteDatastoreOptions, where: string, fn: () => T): Promise<T> {
  const clock = options.clock ?? new SystemClock();
  const deadline = clock.now() + (options.lockTimeoutMs ?? 10_000);
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (err) {
      if (isEgwError(err)) throw err;
      if (isBusy(err) && clock.now() < deadline) {
        await clock.sleep(Math.random() * Math.min(2 ** attempt, 25));
        continue;
      }
      throw mapSqliteError(where, err, 'open', options.lockTimeoutMs ?? 10_000);
    }
  }
}

/** Sets WAL mode and creates or verifies the tables, retrying while another process initialises. */
async function initialise(db: Database.Database, where: string, options: SqliteDatastoreOptions): Promise<Database.Database> {
  return retryBusy(options, where, () => {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw unavailable(where, `cannot use WAL mode (got ${String(mode)})`, undefined, 'terminal');
    // NORMAL in WAL mode: a crash of the process loses nothing; a power loss may lose the last commits.
    db.pragma('synchronous = NORMAL');
    // The common case, an existing store, needs only a read; creating the tables takes the write lock.
    if (!db.transaction(() => verify(db, where))()) db.transaction(() => createOrVerify(db, where)).immediate();
    return db;
  });
}

/** True when the file holds a usable egw store, false when it is empty; throws when it holds something else. */
function verify(db: Database.Database, where: string): boolean {
  const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name);
  if (tables.includes('egw_meta')) {
    const meta = new Map(
      db
        .prepare<[], { key: string; value: string }>('SELECT key, value FROM egw_meta')
        .all()
        .map((r) => [r.key, r.value]),
    );
    if (meta.get('format') !== FORMAT) throw notOurs(where, `its egw_meta table has format ${JSON.stringify(meta.get('format'))}`);
    const version = Number(meta.get('schema_version'));
    if (version > SCHEMA_VERSION) {
      throw unavailable(where, `it was written by a newer egw (schema ${version}, this one reads ${SCHEMA_VERSION})`, undefined, 'terminal', 'upgrade egw');
    }
    return true;
  }
  if (tables.length > 0) throw notOurs(where, `it holds other tables (${tables.slice(0, 5).join(', ')})`);
  return false;
}

/** Creates the tables unless another process did so first (runs under the write lock). */
function createOrVerify(db: Database.Database, where: string): void {
  if (verify(db, where)) return;
  db.exec(`
    CREATE TABLE egw_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE egw_state (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL, compacted INTEGER NOT NULL);
    CREATE TABLE egw_resources (
      kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
      create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL,
      PRIMARY KEY (kind, namespace, name)
    ) WITHOUT ROWID;
    CREATE TABLE egw_changes (
      revision INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
      type TEXT NOT NULL, value TEXT NOT NULL, create_revision INTEGER NOT NULL, ts INTEGER NOT NULL,
      PRIMARY KEY (revision, seq)
    ) WITHOUT ROWID;
    INSERT INTO egw_state (id, revision, compacted) VALUES (1, 0, 0);
  `);
  const meta = db.prepare('INSERT INTO egw_meta (key, value) VALUES (?, ?)');
  meta.run('format', FORMAT);
  meta.run('schema_version', String(SCHEMA_VERSION));
}

function toStored(key: ResourceKey, row: ResourceRow): StoredResource {
  return { key, value: JSON.parse(row.value) as JsonObject, createRevision: row.create_revision, modRevision: row.mod_revision };
}

function toEvent(row: ChangeRow): WatchEvent {
  const key: ResourceKey =
    row.namespace === '' ? { kind: row.kind, name: row.name } : { kind: row.kind, namespace: row.namespace, name: row.name };
  const value = JSON.parse(row.value) as JsonObject;
  return row.type === 'put'
    ? { type: 'put', key, value, revision: row.revision, createRevision: row.create_revision }
    : { type: 'delete', key, prevValue: value, revision: row.revision };
}

function sqliteCode(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
    ? (err as { code: string }).code
    : '';
}

function isBusy(err: unknown): boolean {
  const code = sqliteCode(err);
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

function unavailable(
  where: string,
  what: string,
  cause: unknown,
  retry: 'retry' | 'terminal',
  hint = 'check the path given by --datastore / EGW_DATASTORE',
): EgwError {
  return new EgwError('DatastoreUnavailable', `datastore ${where}: ${what}`, { hint, retry, cause, details: { location: where } });
}

function notOurs(where: string, why: string): EgwError {
  return unavailable(where, `the file is a SQLite database but not an egw store: ${why}`, undefined, 'terminal', 'point --datastore at an egw store or a new path');
}

/** Turns a better-sqlite3 error into an `EgwError` that says what happened to which file. */
function mapSqliteError(where: string, err: unknown, action: string, lockTimeoutMs = 0): EgwError {
  const code = sqliteCode(err);
  const msg = err instanceof Error ? err.message : String(err);
  if (isBusy(err)) {
    return unavailable(
      where,
      `${action}: the file stayed locked by another process for more than ${lockTimeoutMs} ms`,
      err,
      'retry',
      'another egw process holds a long write; retry, or find a stuck process using the file',
    );
  }
  if (code === 'SQLITE_NOTADB') return unavailable(where, 'the file is not a SQLite database (nor an egw store)', err, 'terminal', 'point --datastore at an egw store or a new path');
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_AUTH')) {
    return unavailable(where, `cannot ${action} the file: ${msg} (${code})`, err, 'terminal', 'check that the path exists and is readable and writable by this user');
  }
  if (code.startsWith('SQLITE_CORRUPT')) return unavailable(where, `the file is damaged: ${msg}`, err, 'terminal', 'restore it from a backup');
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_FULL') return unavailable(where, `${action} failed: ${msg} (${code})`, err, 'retry', 'check the disk');
  return new EgwError('Internal', `datastore ${where}: ${action} failed: ${msg}`, { cause: err });
}
