/**
 * How IPAM writes: one atomic multi-key commit where the datastore has them (SQLite, etcd), one object per
 * commit, in a crash-safe order, where it does not (the Kubernetes datastore). docs/ipam.md, "Two write
 * modes", lists every crash window of the single-object order and what repairs it.
 */
import type { Datastore, WriteOp } from '../datastore/contract.js';
import { EgwError, isEgwError } from '../platform/errors.js';

/**
 * `atomic`: every change is one multi-key commit. `single-object`: every commit writes one object; the
 * block (the authority) is written first, the handle and the affinity index after it.
 */
export type WriteMode = 'atomic' | 'single-object';

/**
 * The write mode for `store`: `requested` when given, else `atomic` exactly when the store can commit
 * several keys at once. Throws `Unsupported` when `atomic` is requested of a store that cannot.
 */
export function writeModeOf(store: Datastore, requested?: WriteMode): WriteMode {
  const can = store.capabilities.atomicMultiKey;
  if (requested === 'atomic' && !can) {
    throw new EgwError('Unsupported', `IPAM cannot use atomic multi-key commits on ${store.location}`, { hint: "leave IPAM's write mode unset (it follows the datastore)" });
  }
  return requested ?? (can ? 'atomic' : 'single-object');
}

/**
 * Writes `ops`, whose first op decides (the CAS that makes the change happen or not).
 *
 * - `atomic`: one commit; all or nothing.
 * - `single-object`: `check` ops are dropped (the caller re-read what they guard, and the first op's own
 *   expectation carries the decision); the first op is committed alone and its failure is thrown (nothing
 *   was written); every later op follows alone, in order, and one whose expectation no longer holds
 *   (`Conflict`, `AlreadyExists`, `NotFound`) is skipped: later ops only keep secondary records (handles,
 *   the affinity index, GC marks) in step, and GC repairs whatever a skip or a crash leaves.
 *
 * Errors: the first op's (`Conflict`, `AlreadyExists`, `NotFound`), datastore errors as they come.
 */
export async function writeInOrder(store: Datastore, mode: WriteMode, ops: readonly WriteOp[]): Promise<void> {
  if (mode === 'atomic') {
    await store.commit(ops);
    return;
  }
  const writes = ops.filter((o) => o.op !== 'check');
  const [first, ...rest] = writes;
  if (first === undefined) return;
  await store.commit([first]);
  await followUp(store, rest);
}

/** Commits each op alone, in order, skipping those whose expectation no longer holds. */
export async function followUp(store: Datastore, ops: readonly WriteOp[]): Promise<void> {
  for (const op of ops) {
    if (op.op === 'check') continue;
    try {
      await store.commit([op]);
    } catch (err) {
      if (!isEgwError(err, 'Conflict', 'AlreadyExists', 'NotFound')) throw err;
    }
  }
}
