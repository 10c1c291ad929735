/**
 * Events for what a user must see (no capacity for a gateway, a pool exhausted, EC2 errors): the port the
 * programs record through, the aggregation of repeats they share, and the logging implementation.
 *
 * On the Kubernetes datastore the recorder writes `events.k8s.io/v1` Events
 * (src/datastore/kubernetes/kube-events.ts); on SQLite and etcd there is no Event object to write, so an
 * event is a log line ({@link LogEventRecorder}). `src/datastore/events.ts` picks one for a datastore.
 *
 * Repeats are aggregated as client-go's events recorder (k8s.io/client-go/tools/events) does: occurrences
 * with the same type, action, reason, reporting controller and instance and regarding object are one
 * series; the first is written at once, the later ones only raise the series' count and last-observed
 * time, which is written at most once per {@link AggregationOptions.seriesIntervalMs}. The note of a
 * series is its first occurrence's (the API server refuses a changed note on an existing Event).
 */
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/** `Normal` or `Warning`, as Kubernetes Events. */
export type EventType = 'Normal' | 'Warning';

/**
 * The object an event is about, by its datastore kind (`Pod`, `Node`, `EgressGateway`…): the Kubernetes
 * recorder resolves the API version from the kind. `uid` ties the event to this incarnation of the object.
 */
export interface EventRegarding {
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

/** The port every program records events through. */
export interface EventRecorder {
  /**
   * Records one occurrence. Never throws and never waits: the write happens in the background, and a
   * failure to write is logged, never passed to the caller (an event must not fail a reconcile).
   * `action` says what was being done (`AssignPrivateIpAddresses`, `Allocate`…), `reason` why it is
   * reported (`NoCapacity`, `PoolExhausted`, EC2's error code…), `note` is for humans (cut to 1 kB).
   */
  record(regarding: EventRegarding, type: EventType, reason: string, action: string, note: string): void;
  /** Writes what is pending (series counts held back by the interval) and waits for writes in flight. */
  flush(): Promise<void>;
  /** {@link flush}, then stops the background timer; call before the datastore is closed. Idempotent. */
  close(): Promise<void>;
}

/** Who reports: `reportingController` (a qualified name, e.g. `egw.io/agent`) and `reportingInstance`. */
export interface EventSource {
  controller: string;
  instance: string;
}

/** How repeats are aggregated. */
export interface AggregationOptions {
  /** A series is forgotten after it was not observed this long (client-go: 6 minutes). Default 6 min. */
  windowMs?: number;
  /** A series' count is written at most this often (client-go: every 30 minutes). Default 60 s. */
  seriesIntervalMs?: number;
}

export const DEFAULT_EVENT_WINDOW_MS = 6 * 60_000;
export const DEFAULT_SERIES_INTERVAL_MS = 60_000;
/** The API server's limit of a note (events.k8s.io/v1 `note`). */
export const EVENT_NOTE_LIMIT = 1024;
/** The API server's limit of `reason`, `action` and `reportingInstance`. */
export const EVENT_FIELD_LIMIT = 128;

/** One series as the aggregator holds it. */
export interface EventSeries {
  readonly key: string;
  readonly regarding: EventRegarding;
  readonly type: EventType;
  readonly reason: string;
  readonly action: string;
  /** The first occurrence's note. */
  readonly note: string;
  readonly firstAt: number;
  lastAt: number;
  /** Occurrences observed by this process. */
  count: number;
  /** Occurrences already written (0: nothing written yet). */
  written: number;
  /** When the last write was attempted (0: never). */
  writtenAt: number;
}

/** What to do after an occurrence: write it now, or hold it for the next series write. */
export type Observation = { write: true; series: EventSeries } | { write: false; series: EventSeries; dueAt: number };

/** The key of a series (the fields client-go's recorder aggregates on). */
export function seriesKey(regarding: EventRegarding, type: EventType, reason: string, action: string): string {
  return JSON.stringify([type, action, reason, regarding.kind, regarding.namespace ?? '', regarding.name, regarding.uid ?? '']);
}

/** Cuts a string to `limit` characters (UTF-16 units; the API counts bytes of ASCII-mostly text alike). */
export function clip(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

/**
 * The aggregation of repeats, pure but for the clock it is given: {@link observe} says whether an
 * occurrence is written now or held, {@link due} which held series are due, {@link written} records a
 * write. Series not observed for the window are forgotten.
 */
export class EventAggregator {
  private readonly series = new Map<string, EventSeries>();
  readonly windowMs: number;
  readonly seriesIntervalMs: number;

  constructor(options: AggregationOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_EVENT_WINDOW_MS;
    this.seriesIntervalMs = options.seriesIntervalMs ?? DEFAULT_SERIES_INTERVAL_MS;
  }

  observe(now: number, regarding: EventRegarding, type: EventType, reason: string, action: string, note: string): Observation {
    this.forget(now);
    const key = seriesKey(regarding, type, reason, action);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { key, regarding: { ...regarding }, type, reason, action, note, firstAt: now, lastAt: now, count: 1, written: 0, writtenAt: 0 };
      this.series.set(key, s);
      return { write: true, series: s };
    }
    s.count++;
    s.lastAt = now;
    const dueAt = s.writtenAt + this.seriesIntervalMs;
    return now >= dueAt ? { write: true, series: s } : { write: false, series: s, dueAt };
  }

  /**
   * Records a write attempt at `now`: `count` occurrences are written, or (undefined) the write failed
   * and is tried again one interval later with whatever has accumulated by then.
   */
  written(s: EventSeries, count: number | undefined, now: number): void {
    if (count !== undefined) s.written = Math.max(s.written, count);
    s.writtenAt = now;
  }

  /** True while the series of `key` is held (observed within the window, or not all written). */
  holds(key: string): boolean {
    return this.series.has(key);
  }

  /** Series with occurrences not yet written. */
  pending(): EventSeries[] {
    return [...this.series.values()].filter((s) => s.count > s.written);
  }

  /** The earliest time a held series is due, or undefined when none is held. */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const s of this.pending()) {
      const at = s.writtenAt + this.seriesIntervalMs;
      next = next === undefined ? at : Math.min(next, at);
    }
    return next;
  }

  /** Held series whose interval has passed. */
  due(now: number): EventSeries[] {
    return this.pending().filter((s) => now >= s.writtenAt + this.seriesIntervalMs);
  }

  private forget(now: number): void {
    for (const [k, s] of this.series) if (now - s.lastAt > this.windowMs && s.count <= s.written) this.series.delete(k);
  }
}

/**
 * Events as log lines (the SQLite and etcd datastores have no Event objects): the first occurrence of a
 * series is logged at once (`event`, at warn for Warning, info for Normal, with the regarding object,
 * reason, action and note as fields), repeats as one `event repeated` line with the count at most once per
 * series interval.
 */
export class LogEventRecorder implements EventRecorder {
  private readonly aggregator: EventAggregator;
  private readonly log: Logger;

  constructor(
    logger: Logger,
    source: EventSource,
    private readonly clock: Clock,
    options: AggregationOptions = {},
  ) {
    this.aggregator = new EventAggregator(options);
    this.log = logger.child({ reportingController: source.controller, reportingInstance: source.instance });
  }

  record(regarding: EventRegarding, type: EventType, reason: string, action: string, note: string): void {
    const now = this.clock.now();
    const o = this.aggregator.observe(now, regarding, type, reason, action, clip(note, EVENT_NOTE_LIMIT));
    if (o.write) this.write(o.series, now);
  }

  async flush(): Promise<void> {
    const now = this.clock.now();
    for (const s of this.aggregator.pending()) this.write(s, now);
    await Promise.resolve();
  }

  private write(s: EventSeries, now: number): void {
    const fields = {
      regarding: `${s.regarding.kind}/${s.regarding.namespace === undefined ? '' : `${s.regarding.namespace}/`}${s.regarding.name}`,
      type: s.type,
      reason: s.reason,
      action: s.action,
      note: s.note,
      ...(s.written === 0 ? {} : { count: s.count }),
    };
    const message = s.written === 0 ? 'event' : 'event repeated';
    if (s.type === 'Warning') this.log.warn(fields, message);
    else this.log.info(fields, message);
    this.aggregator.written(s, s.count, now);
  }

  async close(): Promise<void> {
    await this.flush();
  }
}

/** Drops every event (tests, and programs that have nowhere to report). */
export class NoEventRecorder implements EventRecorder {
  record(): void {}
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
