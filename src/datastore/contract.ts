/**
 * The datastore contract: what every backend (embedded SQLite, etcd) guarantees.
 *
 * - Resources are JSON objects keyed by kind / namespace / name. Cluster-scoped resources have no namespace.
 * - Every successful {@link Datastore.commit} bumps one global revision exactly once; each resource it
 *   writes gets that revision as its `modRevision`. Revisions only grow.
 * - Writes are atomic and optimistic: an op may name the `modRevision` it expects, and a commit whose
 *   expectations do not hold changes nothing and fails with `Conflict` (or `AlreadyExists` / `NotFound`).
 * - A watch delivers every change after a revision, in revision order, none lost, none repeated, across
 *   processes. When the backend no longer has the history asked for (compaction), the watch yields one
 *   `resync` event and ends: the caller must list again and watch from the list's revision.
 * - A commit names each key at most once, holds at most {@link MAX_COMMIT_OPS} ops, and every key part is
 *   a non-empty string without `/`; otherwise it fails with `InvalidInput` before anything is written.
 * - An unreachable or unusable store fails with `DatastoreUnavailable`; a closed handle with `DatastoreClosed`.
 *
 * docs/datastore.md describes the backends, the key layout and the reviewer's checks.
 */

/**
 * The most ops one commit may hold, on every backend (etcd's default `--max-txn-ops`), so that code
 * tested on one backend does not fail on another.
 */
export const MAX_COMMIT_OPS = 128;

/** JSON values as stored. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Identifies one resource. `namespace` is absent for cluster-scoped kinds. */
export interface ResourceKey {
  kind: string;
  namespace?: string | undefined;
  name: string;
}

/** A resource as stored, with its revisions. */
export interface StoredResource<T extends object = JsonObject> {
  key: ResourceKey;
  value: T;
  /** Revision of the commit that created this resource. */
  createRevision: number;
  /** Revision of the commit that last wrote this resource. */
  modRevision: number;
}

/** One write inside an atomic commit. */
export type WriteOp =
  /** Create; fails with `AlreadyExists` when the key exists. */
  | { op: 'create'; key: ResourceKey; value: JsonObject }
  /** Replace; fails with `NotFound` when missing, `Conflict` when `expectedRevision` is given and differs. */
  | { op: 'update'; key: ResourceKey; value: JsonObject; expectedRevision?: number }
  /** Create or replace, unconditionally. */
  | { op: 'put'; key: ResourceKey; value: JsonObject }
  /**
   * Delete; fails with `Conflict` when `expectedRevision` is given and differs (an absent key has
   * revision 0, so a CAS delete of a key someone else already deleted is a `Conflict`). Deleting a
   * missing key without `expectedRevision` succeeds (and writes nothing) unless `mustExist` is set, then
   * it fails with `NotFound`.
   */
  | { op: 'delete'; key: ResourceKey; expectedRevision?: number; mustExist?: boolean }
  /** Writes nothing; asserts `modRevision` (0 = must not exist). Fails with `Conflict` otherwise. */
  | { op: 'check'; key: ResourceKey; expectedRevision: number };

export interface CommitResult {
  /** The revision of this commit; unchanged (the current revision) when it wrote nothing. */
  revision: number;
  /** One entry per op: the resource after the op (undefined for delete and check). */
  results: (StoredResource | undefined)[];
}

export interface ListResult {
  items: StoredResource[];
  /** The store's revision the list was read at: watch after it to follow changes. */
  revision: number;
}

/**
 * One change. A commit that writes several keys yields one event per key, all with the commit's
 * revision, in op order. `prevValue` of a delete is the value it removed (backends give it whenever
 * their history still has it); `prevValue` of a put is optional (etcd gives it, SQLite does not).
 */
export type WatchEvent =
  | { type: 'put'; key: ResourceKey; value: JsonObject; prevValue?: JsonObject; revision: number; createRevision: number }
  | { type: 'delete'; key: ResourceKey; prevValue?: JsonObject; revision: number }
  /** The requested history is gone (compacted) or the backend lost track: list again. Ends the watch. */
  | { type: 'resync'; revision: number; reason: string };

export interface WatchOptions {
  /** Deliver changes with a revision strictly greater than this. */
  afterRevision: number;
  /** Only these kinds (all when absent). */
  kinds?: readonly string[];
  /** Stops the watch; the iterator then finishes. */
  signal?: AbortSignal;
}

/** What a backend can do beyond the common core, so that callers can choose their design. */
export interface DatastoreCapabilities {
  /**
   * True when a commit may write several keys (and hold `check` ops) atomically (SQLite, etcd). False on
   * the Kubernetes datastore: there a commit holds at most one writing op and no `check`, and anything
   * else fails with `Unsupported`.
   */
  readonly atomicMultiKey: boolean;
}

export interface Datastore {
  /** A URL-ish description of where the data lives, for messages. */
  readonly location: string;
  /** What this backend can do; see {@link DatastoreCapabilities}. */
  readonly capabilities: DatastoreCapabilities;
  get(key: ResourceKey): Promise<StoredResource | undefined>;
  /**
   * All resources of a kind, optionally in one namespace, with the revision read at. Ordered by
   * namespace (cluster-scoped first), then name, comparing code units.
   */
  list(kind: string, options?: { namespace?: string }): Promise<ListResult>;
  /** Applies every op or none; see {@link WriteOp} for each op's failure. */
  commit(ops: readonly WriteOp[]): Promise<CommitResult>;
  /** The latest revision. */
  currentRevision(): Promise<number>;
  /** Changes after `afterRevision`, in order; see {@link WatchEvent}. */
  watch(options: WatchOptions): AsyncIterable<WatchEvent>;
  /** Releases connections and file handles. Pending watches end. */
  close(): Promise<void>;
}

/** Canonical string form of a key: `kind/namespace/name`, or `kind/name` when cluster-scoped. */
export function formatKey(key: ResourceKey): string {
  return key.namespace === undefined || key.namespace === ''
    ? `${key.kind}/${key.name}`
    : `${key.kind}/${key.namespace}/${key.name}`;
}
