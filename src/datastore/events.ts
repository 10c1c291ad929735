/**
 * The event recorder that fits a datastore: `events.k8s.io/v1` Events on the Kubernetes datastore, log
 * lines on SQLite and etcd, which have no Event objects (src/platform/events.ts, docs/kubernetes.md).
 */
import type { Clock } from '../platform/clock.js';
import { SystemClock } from '../platform/clock.js';
import type { AggregationOptions, EventRecorder, EventSource } from '../platform/events.js';
import { LogEventRecorder } from '../platform/events.js';
import type { Logger } from '../platform/logger.js';
import { silentLogger } from '../platform/logger.js';
import type { Datastore } from './contract.js';

/** A datastore that writes events itself (the Kubernetes backend). */
interface EventCapable {
  eventRecorder(source: EventSource, deps: { clock?: Clock; logger?: Logger }, options?: AggregationOptions): EventRecorder;
}

function eventCapable(store: Datastore): store is Datastore & EventCapable {
  return typeof (store as Partial<EventCapable>).eventRecorder === 'function';
}

/**
 * The recorder for `store`: the backend's own when it has Event objects, else a {@link LogEventRecorder}
 * on `deps.logger` (silent when none). Close it before the datastore.
 */
export function eventRecorderFor(store: Datastore, source: EventSource, deps: { clock?: Clock; logger?: Logger } = {}, options: AggregationOptions = {}): EventRecorder {
  if (eventCapable(store)) return store.eventRecorder(source, deps, options);
  return new LogEventRecorder(deps.logger ?? silentLogger(), source, deps.clock ?? new SystemClock(), options);
}
