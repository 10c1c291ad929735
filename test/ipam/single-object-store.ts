/**
 * A datastore that behaves like the Kubernetes backend where IPAM cares: `capabilities.atomicMultiKey` is
 * false and a commit of more than one writing op, or with a `check`, fails with `Unsupported`. It wraps a
 * real store (SQLite, etcd), so the single-object IPAM path is tested on those too. Optionally it "crashes"
 * after a given number of commits: every later call fails, as a killed process would stop writing.
 */
import type { CommitResult, Datastore, DatastoreCapabilities, ListResult, ResourceKey, StoredResource, WatchEvent, WatchOptions, WriteOp } from '../../src/datastore/contract.js';
import { openDatastore } from '../../src/datastore/open.js';
import { EgwError } from '../../src/platform/errors.js';

/** The prefix of a datastore spec that {@link openSpec} wraps: `single:SPEC`. */
export const SINGLE_PREFIX = 'single:';

export class SingleObjectStore implements Datastore {
  readonly capabilities: DatastoreCapabilities = { atomicMultiKey: false };
  /** Commits that wrote (or tried to write) something. */
  commits = 0;
  /** After this many commits every call fails with `DatastoreUnavailable` (undefined: never). */
  crashAfter: number | undefined;

  constructor(readonly inner: Datastore) {}

  get location(): string {
    return `single-object(${this.inner.location})`;
  }

  private alive(): void {
    if (this.crashAfter !== undefined && this.commits >= this.crashAfter) throw new EgwError('DatastoreUnavailable', 'crashed (test)');
  }

  get(key: ResourceKey): Promise<StoredResource | undefined> {
    this.alive();
    return this.inner.get(key);
  }

  list(kind: string, options?: { namespace?: string }): Promise<ListResult> {
    this.alive();
    return this.inner.list(kind, options);
  }

  async commit(ops: readonly WriteOp[]): Promise<CommitResult> {
    this.alive();
    if (ops.length > 1 || ops.some((o) => o.op === 'check')) {
      throw new EgwError('Unsupported', `single-object store: refused ${ops.map((o) => `${o.op} ${o.key.kind}/${o.key.name}`).join(', ')}`);
    }
    this.commits++;
    return this.inner.commit(ops);
  }

  currentRevision(): Promise<number> {
    return this.inner.currentRevision();
  }

  watch(options: WatchOptions): AsyncIterable<WatchEvent> {
    return this.inner.watch(options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Opens a datastore spec; `single:SPEC` opens SPEC wrapped in a {@link SingleObjectStore}. */
export async function openSpec(spec: string): Promise<Datastore> {
  if (spec.startsWith(SINGLE_PREFIX)) return new SingleObjectStore(await openDatastore(spec.slice(SINGLE_PREFIX.length)));
  return openDatastore(spec);
}
