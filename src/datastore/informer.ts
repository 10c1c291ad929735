import type { Clock } from '../platform/clock.js';
import { jittered, pauseUnlessAborted, SystemClock } from '../platform/clock.js';
import { EgwError, isEgwError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { silentLogger } from '../platform/logger.js';
import type { Datastore, ResourceKey, StoredResource, WatchEvent } from './contract.js';
import { formatKey } from './contract.js';
import { compareKeys } from './keys.js';

/** A change of the informer's cache. `deleted` carries the last state the cache knew. */
export type InformerEvent =
  | { type: 'added'; resource: StoredResource }
  | { type: 'updated'; resource: StoredResource; previous: StoredResource }
  | { type: 'deleted'; resource: StoredResource };

/** What the informer calls. Both may be async; the informer awaits each call before the next. */
export interface InformerHandlers {
  /** Every change of the cache, in revision order. A throw is logged and otherwise ignored. */
  onEvent?(event: InformerEvent): void | Promise<void>;
  /** The cache became complete: after the first list, and after each re-list. */
  onSync?(revision: number): void | Promise<void>;
}

export interface InformerOptions {
  /** The kinds to follow (listed one after the other, then watched together). */
  kinds: readonly string[];
  /** First pause after a store error, doubled on each further error up to `backoffMaxMs` (defaults 200 / 10,000 ms). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

export interface InformerDeps {
  store: Datastore;
  clock?: Clock;
  logger?: Logger;
  /** Jitter source of the retry waits (default Math.random). */
  random?: () => number;
}

/**
 * A local, always-complete-or-saying-so copy of some kinds of the store: lists them, then watches from
 * the list, keeping a cache keyed by {@link formatKey} and calling the handlers on every change.
 *
 * - `inSync` is false until the first complete list, and again while it re-lists after a `resync`
 *   (history compacted): a reconciler must never prune while it is false, because absent-from-cache
 *   does not mean absent-from-store then.
 * - A re-list emits only the differences to the cache (added / updated / deleted), so consumers stay
 *   level-triggered and never see a resource vanish and come back.
 * - Store errors (unreachable, locked, a broken watch) are retried with exponential backoff; a broken
 *   watch resumes from the last revision seen, without a re-list. The cache stays as it was meanwhile
 *   (stale but consistent); `lastError` says why it is not moving. Only a closed store stops the informer.
 * - Events are applied idempotently by revision, so the overlap of a resumed watch is never delivered twice.
 */
export class Informer {
  private readonly store: Datastore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly kinds: readonly string[];
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly cache = new Map<string, StoredResource>();
  /** The same resources by kind, so that {@link list} does not scan every kind. */
  private readonly byKind = new Map<string, Map<string, StoredResource>>();
  private synced = false;
  private cacheRevision = 0;
  private error: EgwError | undefined;
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  private readonly random: () => number;
  private syncWaiters: (() => void)[] = [];

  constructor(
    deps: InformerDeps,
    options: InformerOptions,
    private readonly handlers: InformerHandlers = {},
  ) {
    if (options.kinds.length === 0) throw new EgwError('InvalidInput', 'an informer needs at least one kind');
    this.store = deps.store;
    this.clock = deps.clock ?? new SystemClock();
    this.log = deps.logger ?? silentLogger();
    this.random = deps.random ?? Math.random;
    this.kinds = [...options.kinds];
    this.backoffInitialMs = options.backoffInitialMs ?? 200;
    this.backoffMaxMs = options.backoffMaxMs ?? 10_000;
  }

  /** True while the cache holds a complete list plus every change since (see the class comment). */
  get inSync(): boolean {
    return this.synced;
  }

  /** The revision the cache reflects (the newest event applied, or the list's revision). */
  get revision(): number {
    return this.cacheRevision;
  }

  /** The last store error met (undefined once the informer moves again). */
  get lastError(): EgwError | undefined {
    return this.error;
  }

  /** Starts following the store in the background. Idempotent. */
  start(): void {
    this.running ??= this.run().catch((err: unknown) => {
      this.log.error({ err }, 'informer stopped on an unexpected error');
    });
  }

  /** Stops following, waits for the handler in progress to return. The cache stays readable. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wakeSyncWaiters();
    await this.running;
  }

  /** Resolves when the informer is in sync (at once if it is), or rejects when `signal` aborts or it stops. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        signal?.removeEventListener('abort', done);
        if (this.synced) resolve();
        else reject(new EgwError('Timeout', 'the informer stopped or was cancelled before it was in sync'));
      };
      signal?.addEventListener('abort', done, { once: true });
      this.syncWaiters.push(done);
      if (signal?.aborted === true) done();
    });
  }

  /** The cached resource, if any. */
  get(key: ResourceKey): StoredResource | undefined {
    return this.cache.get(formatKey(key));
  }

  /** The cached resources of a kind (optionally one namespace), in key order. */
  list(kind: string, namespace?: string): StoredResource[] {
    const out: StoredResource[] = [];
    for (const r of this.byKind.get(kind)?.values() ?? []) {
      if (namespace === undefined || (r.key.namespace ?? '') === namespace) out.push(r);
    }
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  private async run(): Promise<void> {
    const stop = this.stopping.signal;
    let needList = true;
    let resumeAfter = 0;
    // Per kind, the revision its list was read at: older events of that kind are already in the list.
    let floors = new Map<string, number>();
    let backoff = this.backoffInitialMs;
    while (!stop.aborted) {
      try {
        if (needList) {
          const listed = await this.listAll();
          if (stop.aborted) return;
          floors = listed.floors;
          resumeAfter = Math.min(...floors.values());
          await this.replaceCache(listed.items, Math.max(...floors.values()));
          needList = false;
          this.setSynced(true);
          this.error = undefined;
          backoff = this.backoffInitialMs;
          this.log.debug({ kinds: this.kinds, revision: this.cacheRevision, items: this.cache.size }, 'informer in sync');
          await this.call(() => this.handlers.onSync?.(this.cacheRevision));
        }
        for await (const ev of this.store.watch({ afterRevision: resumeAfter, kinds: this.kinds, signal: stop })) {
          if (ev.type === 'resync') {
            this.log.info({ kinds: this.kinds, reason: ev.reason }, 'informer re-lists after a resync');
            needList = true;
            this.setSynced(false);
            break;
          }
          this.error = undefined;
          backoff = this.backoffInitialMs;
          // Resume a broken watch from the revision before this one: a commit's events may not all have
          // arrived; the repeated ones are recognised by revision and skipped.
          resumeAfter = Math.max(resumeAfter, ev.revision - 1);
          if (ev.revision <= (floors.get(ev.key.kind) ?? 0)) continue;
          await this.apply(ev);
          if (stop.aborted) return;
        }
      } catch (err) {
        if (stop.aborted) return;
        if (isEgwError(err, 'DatastoreClosed')) {
          this.error = err;
          this.log.warn({ kinds: this.kinds }, 'informer stops: the store was closed');
          return;
        }
        this.error = isEgwError(err) ? err : new EgwError('Internal', `informer: ${String(err)}`, { cause: err });
        const waitMs = jittered(backoff, this.random);
        this.log.warn({ kinds: this.kinds, err: this.error.message, backoffMs: waitMs }, 'informer retries after a store error');
        await pauseUnlessAborted(this.clock, waitMs, stop);
        backoff = Math.min(backoff * 2, this.backoffMaxMs);
      }
    }
  }

  private async listAll(): Promise<{ items: Map<string, StoredResource>; floors: Map<string, number> }> {
    const items = new Map<string, StoredResource>();
    const floors = new Map<string, number>();
    for (const kind of this.kinds) {
      const l = await this.store.list(kind);
      floors.set(kind, l.revision);
      for (const r of l.items) items.set(formatKey(r.key), r);
    }
    return { items, floors };
  }

  /** Makes the cache equal to `next`, emitting only the differences. */
  private async replaceCache(next: Map<string, StoredResource>, revision: number): Promise<void> {
    for (const [id, old] of [...this.cache]) {
      if (next.has(id)) continue;
      this.remove(id, old);
      await this.emit({ type: 'deleted', resource: old });
    }
    for (const [id, r] of next) {
      const old = this.cache.get(id);
      if (old !== undefined && old.modRevision === r.modRevision) continue;
      this.keep(id, r);
      await this.emit(old === undefined ? { type: 'added', resource: r } : { type: 'updated', resource: r, previous: old });
    }
    this.cacheRevision = Math.max(this.cacheRevision, revision);
  }

  private async apply(ev: Exclude<WatchEvent, { type: 'resync' }>): Promise<void> {
    const id = formatKey(ev.key);
    const old = this.cache.get(id);
    this.cacheRevision = Math.max(this.cacheRevision, ev.revision);
    // Idempotent by revision: an event not newer than what the cache holds was seen already.
    if (old !== undefined && old.modRevision >= ev.revision) return;
    if (ev.type === 'delete') {
      if (old === undefined) return;
      this.remove(id, old);
      await this.emit({ type: 'deleted', resource: old });
      return;
    }
    const r: StoredResource = { key: ev.key, value: ev.value, createRevision: ev.createRevision, modRevision: ev.revision };
    this.keep(id, r);
    await this.emit(old === undefined ? { type: 'added', resource: r } : { type: 'updated', resource: r, previous: old });
  }

  private keep(id: string, r: StoredResource): void {
    this.cache.set(id, r);
    let kind = this.byKind.get(r.key.kind);
    if (kind === undefined) this.byKind.set(r.key.kind, (kind = new Map<string, StoredResource>()));
    kind.set(id, r);
  }

  private remove(id: string, r: StoredResource): void {
    this.cache.delete(id);
    this.byKind.get(r.key.kind)?.delete(id);
  }

  private emit(event: InformerEvent): Promise<void> {
    return this.call(() => this.handlers.onEvent?.(event));
  }

  private async call(fn: () => void | Promise<void> | undefined): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.log.error({ err }, 'informer handler failed');
    }
  }

  private setSynced(value: boolean): void {
    this.synced = value;
    if (value) this.wakeSyncWaiters();
  }

  private wakeSyncWaiters(): void {
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w();
  }
}
