/**
 * `events.k8s.io/v1` Events on the API server, for what a user must see (src/platform/events.ts has the
 * port and the aggregation). docs/kubernetes.md, "Events", explains the decisions:
 *
 * - one Event per series, named `<regarding name>.<hash of the series key and the reporter>`: the name is
 *   the same in every process, so repeats aggregate also across processes (each `egw-ipam` run is one)
 *   and across restarts — a create that meets AlreadyExists reads the Event and raises its count;
 * - the first occurrence is created at once; repeats raise `series.count` and `series.lastObservedTime`
 *   by a merge patch at the read resourceVersion (a Conflict re-reads), at most once per series interval;
 * - `eventTime` is the series' first occurrence in this process, the note the first one's (the API server
 *   refuses changes to both); an Event of a cluster-scoped object goes to namespace `default`, as
 *   client-go does;
 * - every write updates the Event, so the API server's event TTL (`--event-ttl`, 1 h by default) counts
 *   from the last occurrence written.
 *
 * Writes are serial and in the background; a failure is logged (a refusal by RBAC once) and the series is
 * written again one interval later with what accumulated. Needs `create`, `get` and `patch` on
 * `events.events.k8s.io` (src/install/rbac.ts).
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../platform/clock.js';
import { SystemClock } from '../../platform/clock.js';
import { EgwError, errorMessage, isEgwError } from '../../platform/errors.js';
import type { AggregationOptions, EventRecorder, EventRegarding, EventSeries, EventSource, EventType } from '../../platform/events.js';
import { clip, EVENT_FIELD_LIMIT, EVENT_NOTE_LIMIT, EventAggregator } from '../../platform/events.js';
import type { Logger } from '../../platform/logger.js';
import { silentLogger } from '../../platform/logger.js';
import type { KubeHttp, KubeResponse } from './kube-http.js';
import type { ResourceInfo } from './resource-map.js';
import { apiVersionOf } from './resource-map.js';

/** The Events collection of a namespace. */
const eventsPath = (namespace: string, name?: string): string =>
  `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;

/** A Kubernetes MicroTime (RFC 3339 with six fractional digits: the API server parses exactly that). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The Event name of a series: stable across processes of the same reporter. */
export function eventName(series: Pick<EventSeries, 'key' | 'regarding'>, source: EventSource): string {
  const hash = createHash('sha256').update(JSON.stringify([series.key, source.controller, source.instance])).digest('hex').slice(0, 16);
  // A name is at most 253 characters; the regarding object's name is one already, so cut it to make room.
  return `${series.regarding.name.slice(0, 253 - 17).replace(/[.-]+$/, '')}.${hash}`;
}

/** What the recorder remembers of an Event it wrote. */
interface Written {
  count: number;
  resourceVersion: string;
}

/** Side effects of {@link KubeEventRecorder}. */
export interface KubeEventRecorderDeps {
  clock?: Clock;
  logger?: Logger;
}

/** The Kubernetes implementation of {@link EventRecorder}. */
export class KubeEventRecorder implements EventRecorder {
  private readonly aggregator: EventAggregator;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly source: EventSource;
  private readonly server = new Map<string, Written>();
  private readonly busy = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private timer: { at: number; abort: AbortController } | undefined;
  private forbiddenLogged = false;
  private closed = false;

  constructor(
    private readonly http: KubeHttp,
    private readonly map: ReadonlyMap<string, ResourceInfo>,
    source: EventSource,
    deps: KubeEventRecorderDeps = {},
    options: AggregationOptions = {},
  ) {
    this.source = { controller: source.controller, instance: clip(source.instance, EVENT_FIELD_LIMIT) };
    this.aggregator = new EventAggregator(options);
    this.clock = deps.clock ?? new SystemClock();
    this.log = (deps.logger ?? silentLogger()).child({ part: 'events' });
  }

  record(regarding: EventRegarding, type: EventType, reason: string, action: string, note: string): void {
    if (this.closed) return;
    if (!this.map.has(regarding.kind)) {
      this.log.warn({ kind: regarding.kind, reason }, 'event about a kind the Kubernetes datastore does not know: dropped');
      return;
    }
    const o = this.aggregator.observe(this.clock.now(), regarding, type, clip(reason, EVENT_FIELD_LIMIT), clip(action, EVENT_FIELD_LIMIT), clip(note, EVENT_NOTE_LIMIT));
    if (o.write) this.enqueue(o.series);
    else this.schedule();
  }

  async flush(): Promise<void> {
    // A series whose write was in flight when flush began has gathered more since: a few rounds take it
    // too. A series the API server keeps refusing stays pending (tried again by the timer).
    for (let round = 0; round < 3; round++) {
      const pending = this.aggregator.pending();
      if (pending.length === 0) return;
      for (const s of pending) this.enqueue(s);
      await this.chain;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    this.timer?.abort.abort();
    this.timer = undefined;
  }

  private enqueue(s: EventSeries): void {
    if (this.busy.has(s.key)) return;
    this.busy.add(s.key);
    this.chain = this.chain.then(async () => {
      try {
        await this.write(s);
      } finally {
        this.busy.delete(s.key);
      }
      // What is known of Events whose series the aggregator has forgotten goes too (a long-running agent
      // sees many pods come and go); a later occurrence reads its Event again.
      for (const key of this.server.keys()) if (!this.aggregator.holds(key)) this.server.delete(key);
      this.schedule();
    });
  }

  /** One timer for the earliest held series. */
  private schedule(): void {
    if (this.closed) return;
    const at = this.aggregator.nextDue();
    if (at === undefined || (this.timer !== undefined && this.timer.at <= at)) return;
    this.timer?.abort.abort();
    const abort = new AbortController();
    this.timer = { at, abort };
    this.clock
      .sleep(Math.max(0, at - this.clock.now()), abort.signal)
      .then(() => {
        if (this.timer?.abort === abort) this.timer = undefined;
        for (const s of this.aggregator.due(this.clock.now())) this.enqueue(s);
        this.schedule();
      })
      .catch(() => undefined);
  }

  private async write(s: EventSeries): Promise<void> {
    const count = s.count;
    const now = this.clock.now();
    try {
      await this.writeSeries(s, count, now);
      this.aggregator.written(s, count, now);
    } catch (err) {
      this.aggregator.written(s, undefined, now);
      const forbidden = isEgwError(err) && err.details['status'] === 403;
      if (forbidden && this.forbiddenLogged) return;
      if (forbidden) this.forbiddenLogged = true;
      this.log.warn(
        { err: errorMessage(err), reason: s.reason, regarding: `${s.regarding.kind}/${s.regarding.name}`, ...(forbidden ? { hint: "grant create, get and patch on events.events.k8s.io to egw's service account" } : {}) },
        'cannot write event',
      );
    }
  }

  /**
   * Brings the series' Event to `count` occurrences of this process: creates it, or adds what this
   * process has not written yet to the count the API server holds (read again on a conflict).
   */
  private async writeSeries(s: EventSeries, count: number, now: number): Promise<void> {
    const namespace = s.regarding.namespace ?? 'default';
    const name = eventName(s, this.source);
    const unwritten = count - s.written;
    if (unwritten <= 0) return;
    for (let attempt = 0; attempt < 8; attempt++) {
      let known = this.server.get(s.key);
      if (known === undefined) {
        // Never written by this process (or gone): create it, with a series when it already repeated.
        const res = await this.http.request('POST', eventsPath(namespace), this.eventBody(s, name, namespace, unwritten, now));
        if (res.status === 201 || res.status === 200) {
          this.remember(s.key, res);
          return;
        }
        if (res.status !== 409) throw failure(res, 'create', namespace, name);
        // Already there: another process of this reporter, or an earlier run, wrote the series.
        const got = await this.http.request('GET', eventsPath(namespace, name));
        if (got.status === 404) continue;
        if (got.status !== 200) throw failure(got, 'get', namespace, name);
        known = this.remember(s.key, got);
      }
      const next = known.count + unwritten;
      const res = await this.http.request('PATCH', eventsPath(namespace, name), {
        metadata: { resourceVersion: known.resourceVersion },
        series: { count: next, lastObservedTime: microTime(now) },
      });
      if (res.status === 200) {
        this.remember(s.key, res);
        return;
      }
      if (res.status === 404) {
        // Expired (the event TTL) or deleted: create it again with the occurrences not written.
        this.server.delete(s.key);
        continue;
      }
      if (res.status !== 409) throw failure(res, 'patch', namespace, name);
      // Changed since read (another process raised the count): read it again.
      const got = await this.http.request('GET', eventsPath(namespace, name));
      if (got.status === 404) this.server.delete(s.key);
      else if (got.status === 200) this.remember(s.key, got);
      else throw failure(got, 'get', namespace, name);
    }
    throw new EgwError('Conflict', `the Event ${namespace}/${name} kept changing while its series was written`);
  }

  private remember(key: string, res: KubeResponse): Written {
    const body = isObject(res.body) ? res.body : {};
    const meta = isObject(body['metadata']) ? body['metadata'] : {};
    const series = isObject(body['series']) ? body['series'] : undefined;
    const written: Written = {
      count: typeof series?.['count'] === 'number' ? series['count'] : 1,
      resourceVersion: typeof meta['resourceVersion'] === 'string' ? meta['resourceVersion'] : '',
    };
    this.server.set(key, written);
    return written;
  }

  private eventBody(s: EventSeries, name: string, namespace: string, count: number, now: number): Record<string, unknown> {
    const info = this.map.get(s.regarding.kind)!;
    return {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace },
      eventTime: microTime(s.firstAt),
      reportingController: this.source.controller,
      reportingInstance: this.source.instance,
      action: s.action,
      reason: s.reason,
      type: s.type,
      note: s.note,
      regarding: {
        apiVersion: apiVersionOf(info),
        kind: info.kind,
        name: s.regarding.name,
        ...(s.regarding.namespace === undefined ? {} : { namespace: s.regarding.namespace }),
        ...(s.regarding.uid === undefined ? {} : { uid: s.regarding.uid }),
      },
      ...(count >= 2 ? { series: { count, lastObservedTime: microTime(now) } } : {}),
    };
  }
}

function failure(res: KubeResponse, verb: string, namespace: string, name: string): EgwError {
  const body = isObject(res.body) ? res.body : {};
  const message = typeof body['message'] === 'string' ? body['message'] : `HTTP ${res.status}`;
  return new EgwError('DatastoreUnavailable', `the API server refused to ${verb} the Event ${namespace}/${name}: ${message}`, {
    retry: res.status === 403 || res.status === 422 ? 'terminal' : 'retry',
    details: { status: res.status, verb, resource: 'events.events.k8s.io' },
  });
}
