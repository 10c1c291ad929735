import { EgwError } from '../platform/errors.js';
import type { ResourceKey, StoredResource, WriteOp } from './contract.js';
import { formatKey, MAX_COMMIT_OPS } from './contract.js';

/**
 * Rejects keys that no backend can store faithfully: every part non-empty, without `/` (the etcd key
 * separator) and without NUL. Throws `InvalidInput`; returns the key with an empty namespace dropped, so
 * that `''` and `undefined` mean the same (cluster-scoped) everywhere.
 */
export function checkKey(key: ResourceKey): ResourceKey {
  const bad = (part: string, value: string | undefined): never => {
    throw new EgwError('InvalidInput', `invalid datastore key ${JSON.stringify(key)}: ${part} ${JSON.stringify(value)}`, {
      hint: 'kind, namespace and name must be non-empty strings without "/"',
    });
  };
  const ok = (s: unknown): s is string => typeof s === 'string' && s !== '' && !s.includes('/') && !s.includes('\0');
  if (!ok(key.kind)) bad('kind', key.kind);
  if (!ok(key.name)) bad('name', key.name);
  if (key.namespace === undefined || key.namespace === '') return { kind: key.kind, name: key.name };
  if (!ok(key.namespace)) bad('namespace', key.namespace);
  return { kind: key.kind, namespace: key.namespace, name: key.name };
}

/**
 * The order of {@link Datastore.list}: by kind, then namespace (cluster-scoped first), then name, each
 * compared by UTF-16 code units (which is byte order for the ASCII names Kubernetes allows).
 */
export function compareKeys(a: ResourceKey, b: ResourceKey): number {
  return cmp(a.kind, b.kind) || cmp(a.namespace ?? '', b.namespace ?? '') || cmp(a.name, b.name);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Validates a commit's ops before any backend looks at them: every key valid, and no key named twice
 * (etcd refuses a transaction that touches one key twice, so the contract forbids it everywhere).
 * Throws `InvalidInput`; returns the ops with normalised keys.
 */
export function checkOps(ops: readonly WriteOp[]): WriteOp[] {
  if (ops.length > MAX_COMMIT_OPS) {
    throw new EgwError('InvalidInput', `a commit holds ${ops.length} ops, more than the ${MAX_COMMIT_OPS} allowed`, {
      hint: 'split it into several commits',
    });
  }
  const seen = new Set<string>();
  return ops.map((op) => {
    const key = checkKey(op.key);
    const id = formatKey(key);
    if (seen.has(id)) {
      throw new EgwError('InvalidInput', `commit names ${id} more than once`, {
        hint: 'combine the writes to one key into a single op',
      });
    }
    seen.add(id);
    if ((op.op === 'update' || op.op === 'delete') && op.expectedRevision !== undefined && !validRevision(op.expectedRevision)) {
      throw new EgwError('InvalidInput', `${op.op} of ${id}: expectedRevision ${op.expectedRevision} is not a revision`);
    }
    if (op.op === 'check' && !validRevision(op.expectedRevision)) {
      throw new EgwError('InvalidInput', `check of ${id}: expectedRevision ${op.expectedRevision} is not a revision`);
    }
    return { ...op, key };
  });
}

function validRevision(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** The error of an op whose expectation does not hold (the same words for every backend). */
export function opFailure(op: WriteOp, current: { modRevision: number } | undefined): EgwError {
  const id = formatKey(op.key);
  const actual = current?.modRevision ?? 0;
  const details = { key: id, op: op.op, actualRevision: actual };
  switch (op.op) {
    case 'create':
      return new EgwError('AlreadyExists', `${id} already exists`, {
        hint: 'update it instead, or delete it first',
        details,
      });
    case 'update':
    case 'delete':
      if (current === undefined && (op.op === 'update' || op.mustExist === true)) {
        return new EgwError('NotFound', `${id} does not exist`, { hint: 'create it first', details });
      }
      return new EgwError(
        'Conflict',
        `${id} was changed concurrently: expected revision ${op.expectedRevision ?? '(any)'}, found ${actual === 0 ? 'none (absent)' : actual}`,
        { hint: 'read it again and retry', details },
      );
    case 'check':
      return new EgwError(
        'Conflict',
        `${id} is not at the expected revision: expected ${op.expectedRevision === 0 ? 'absent' : op.expectedRevision}, found ${actual === 0 ? 'absent' : actual}`,
        { hint: 'read it again and retry', details },
      );
    case 'put':
      return new EgwError('Internal', `put of ${id} cannot fail an expectation`);
  }
}

/**
 * Decides whether an op's expectation holds against the current state of its key. Shared by backends
 * that check expectations themselves (SQLite); etcd evaluates the same rules as transaction compares.
 */
export function opHolds(op: WriteOp, current: { modRevision: number } | undefined): boolean {
  const actual = current?.modRevision ?? 0;
  switch (op.op) {
    case 'create':
      return current === undefined;
    case 'update':
      return current !== undefined && (op.expectedRevision === undefined || op.expectedRevision === actual);
    case 'put':
      return true;
    case 'delete':
      if (op.mustExist === true && current === undefined) return false;
      return op.expectedRevision === undefined || op.expectedRevision === actual;
    case 'check':
      return op.expectedRevision === actual;
  }
}

/** Sorts stored resources in {@link compareKeys} order, in place. */
export function sortResources(items: StoredResource[]): StoredResource[] {
  return items.sort((a, b) => compareKeys(a.key, b.key));
}
