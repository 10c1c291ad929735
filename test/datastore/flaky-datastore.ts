/**
 * A Datastore wrapper that injects the failures an informer must survive: failing calls, watches that
 * break after some events, watches that "lose" events and then say resync, and hooks around list.
 */
import type {
  CommitResult,
  Datastore,
  ListResult,
  ResourceKey,
  StoredResource,
  WatchEvent,
  WatchOptions,
  WriteOp,
} from '../../src/datastore/contract.js';
import { EgwError } from '../../src/platform/errors.js';

export class FlakyDatastore implements Datastore {
  readonly location: string;
  get capabilities(): Datastore['capabilities'] {
    return this.inner.capabilities;
  }
  /** Fail the next N list calls with DatastoreUnavailable. */
  failLists = 0;
  /** Fail the next N watch starts with DatastoreUnavailable. */
  failWatches = 0;
  /** Break the running watch (throw) after this many more events; undefined = never. */
  breakWatchAfter: number | undefined;
  /** While true, the watch swallows events; when set back to false, the watch yields resync. */
  blackhole = false;
  /** Awaited before each list, with the kind (lets a test write between the lists of two kinds). */
  beforeList: ((kind: string) => Promise<void>) | undefined;
  lists = 0;
  watches = 0;
  /** Events swallowed by the blackhole so far. */
  swallowed = 0;

  constructor(private readonly inner: Datastore) {
    this.location = `flaky+${inner.location}`;
  }

  get(key: ResourceKey): Promise<StoredResource | undefined> {
    return this.inner.get(key);
  }

  async list(kind: string, options?: { namespace?: string }): Promise<ListResult> {
    this.lists++;
    await this.beforeList?.(kind);
    if (this.failLists > 0) {
      this.failLists--;
      throw new EgwError('DatastoreUnavailable', 'injected list failure');
    }
    return this.inner.list(kind, options);
  }

  commit(ops: readonly WriteOp[]): Promise<CommitResult> {
    return this.inner.commit(ops);
  }

  currentRevision(): Promise<number> {
    return this.inner.currentRevision();
  }

  watch(options: WatchOptions): AsyncIterable<WatchEvent> {
    return { [Symbol.asyncIterator]: () => this.follow(options) };
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async *follow(options: WatchOptions): AsyncGenerator<WatchEvent> {
    this.watches++;
    if (this.failWatches > 0) {
      this.failWatches--;
      throw new EgwError('DatastoreUnavailable', 'injected watch failure');
    }
    let swallowed = false;
    for await (const ev of this.inner.watch(options)) {
      if (this.blackhole) {
        swallowed = true;
        this.swallowed++;
        continue;
      }
      if (swallowed) {
        yield { type: 'resync', revision: ev.revision, reason: 'injected: events were lost (compacted)' };
        return;
      }
      if (this.breakWatchAfter !== undefined) {
        if (this.breakWatchAfter === 0) {
          this.breakWatchAfter = undefined;
          throw new EgwError('DatastoreUnavailable', 'injected watch break');
        }
        this.breakWatchAfter--;
      }
      yield ev;
    }
  }
}
