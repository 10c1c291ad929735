/**
 * The reconcile engine: a keyed work queue, per-key backoff with jitter, periodic resync, the in-sync
 * gate and prune-after-sync. docs/reconcile.md describes the contract.
 */
export { backoffDelay, resyncDelay, DEFAULT_BACKOFF, type BackoffPolicy, type JitterKind } from './backoff.js';
export { KeyedQueue } from './work-queue.js';
export {
  classify,
  NO_METRICS,
  ReconcileRunner,
  type KeyStatus,
  type ReconcileMetrics,
  type ReconcileOutcome,
  type ReconcileOwner,
  type ReconcileResult,
  type ReconcileRunnerDeps,
  type ReconcileRunnerOptions,
} from './runner.js';
