/**
 * Writes Calico's gateway-maintenance annotations on client pods (calico-semantics.md 2.6; docs/operator.md,
 * "Gateway maintenance"): while a gateway pod terminates, every client pod that routes through it carries
 * `egress.projectcalico.org/gatewayMaintenanceGatewayIP`, `…StartedTimestamp` and `…FinishedTimestamp`, for
 * applications to read through the downward API.
 *
 * - **The single writer.** It runs in the controller (under the controller lease): one process decides for
 *   the whole cluster from the datastore, with calc's client→gateway relation (`planGatewayMaintenance`).
 *   The admission policy lets only the controller's identity change these annotations (src/install).
 * - **Level-triggered and idempotent**: every pass plans from the informer's cache and writes only the pods
 *   whose three annotations differ from the plan; a pass with nothing to change writes nothing.
 * - **Only its three annotations**: each write is a read-modify-write of the stored pod at the revision read
 *   (compare-and-swap), changing those keys and nothing else; a pod changed meanwhile is retried on the next
 *   pass, a pod re-created under the same name (another uid) is left alone.
 * - Woken by changes of Pods, Namespaces, EgressGatewayPolicies, FelixConfigurations and maxNextHops records,
 *   at the time an annotation kept for a gone gateway expires, and every `resyncMs`.
 */
import { NEXT_HOPS_KIND, parseNextHops } from '../agent/records.js';
import { validateDocument } from '../api/index.js';
import { planGatewayMaintenance, withMaintenance, type CalcResource, type EgressNextHops, type MaintenancePatch } from '../calc/index.js';
import type { Datastore, JsonObject, StoredResource } from '../datastore/contract.js';
import { formatKey } from '../datastore/contract.js';
import { Informer } from '../datastore/informer.js';
import type { Clock } from '../platform/clock.js';
import { errorMessage, isEgwError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { silentLogger } from '../platform/logger.js';

export interface GatewayMaintenanceDeps {
  store: Datastore;
  clock: Clock;
  logger?: Logger;
}

export interface GatewayMaintenanceOptions {
  /** Plan again at least this often (default 30 s). */
  resyncMs?: number;
  /** After a change, wait this long for more before planning (default 200 ms): a burst of pod events costs one pass. */
  debounceMs?: number;
}

/** What one pass did. */
export interface GatewayMaintenanceReport {
  /** `namespace/name` of the pods written (annotations set or removed). */
  written: string[];
  /** Pods whose write lost a race (changed or deleted meanwhile): the next pass retries. */
  deferred: string[];
  /** When the next pass is due without any change (an annotation expires); undefined when none is. */
  nextCheckMs: number | undefined;
}

const KINDS = ['Pod', 'Namespace', 'EgressGatewayPolicy', 'FelixConfiguration', NEXT_HOPS_KIND] as const;

/** The controller part that keeps the maintenance annotations (see the module comment). */
export class GatewayMaintenanceWriter {
  private readonly log: Logger;
  /** Validated resources by key and revision: a pass validates only what changed since the last one. */
  private validated = new Map<string, { revision: number; resource: CalcResource | undefined }>();

  constructor(
    private readonly deps: GatewayMaintenanceDeps,
    private readonly options: GatewayMaintenanceOptions = {},
  ) {
    this.log = deps.logger ?? silentLogger();
  }

  /**
   * One pass over `stored` (every resource of the five kinds; a test or the informer's cache). Resources
   * that fail validation are absent (an invalid pod is never annotated). Write errors other than a lost race
   * are thrown.
   */
  async runOnce(stored: readonly StoredResource[]): Promise<GatewayMaintenanceReport> {
    const resources: CalcResource[] = [];
    const nextHops: EgressNextHops[] = [];
    const pods = new Map<string, StoredResource>();
    const validated = new Map<string, { revision: number; resource: CalcResource | undefined }>();
    for (const s of stored) {
      if (s.key.kind === NEXT_HOPS_KIND) {
        const r = parseNextHops(s);
        if (r !== undefined) nextHops.push(r);
        continue;
      }
      const id = formatKey(s.key);
      let v = this.validated.get(id);
      if (v === undefined || v.revision !== s.modRevision) {
        const { resource } = validateDocument(s.value, { file: `datastore:${id}`, documentIndex: 1 });
        v = { revision: s.modRevision, resource: resource === undefined || resource.kind !== s.key.kind ? undefined : (resource as CalcResource) };
      }
      validated.set(id, v);
      if (v.resource === undefined) continue;
      if (v.resource.kind === 'Pod') pods.set(`${s.key.namespace ?? 'default'}/${s.key.name}`, s);
      resources.push(v.resource);
    }
    this.validated = validated;
    const plan = planGatewayMaintenance({ resources, nextHops, nowMs: this.deps.clock.now() });
    const written: string[] = [];
    const deferred: string[] = [];
    for (const patch of plan.patches) {
      const id = `${patch.namespace}/${patch.name}`;
      const outcome = await this.write(patch, pods.get(id));
      if (outcome === 'written') written.push(id);
      else if (outcome === 'deferred') deferred.push(id);
    }
    if (written.length > 0) this.log.info({ written }, 'gateway maintenance annotations written');
    return { written, deferred, nextCheckMs: plan.nextCheckMs };
  }

  /** CAS write of the three annotations on the pod as stored (re-read first: the cache may be behind). */
  private async write(patch: MaintenancePatch, cached: StoredResource | undefined): Promise<'written' | 'deferred' | 'skipped'> {
    if (cached === undefined) return 'skipped';
    const current = await this.deps.store.get(cached.key);
    if (current === undefined) return 'skipped';
    const value = current.value;
    const meta = (value['metadata'] ?? {}) as JsonObject;
    // Another pod of the same name: the next pass plans for it.
    if (patch.uid !== undefined && meta['uid'] !== undefined && meta['uid'] !== patch.uid) return 'deferred';
    const before = meta['annotations'];
    const annotations = withMaintenance(isStringMap(before) ? before : undefined, patch.set);
    const { annotations: _drop, ...rest } = meta;
    const next: JsonObject = { ...value, metadata: annotations === undefined ? rest : { ...rest, annotations } };
    if (JSON.stringify(before ?? null) === JSON.stringify(annotations ?? null)) return 'skipped';
    try {
      await this.deps.store.commit([{ op: 'update', key: current.key, value: next, expectedRevision: current.modRevision }]);
      return 'written';
    } catch (err) {
      if (isEgwError(err, 'Conflict', 'NotFound')) return 'deferred';
      throw err;
    }
  }

  /** Follows the store and keeps the annotations until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { store, clock } = this.deps;
    let wake: (() => void) | undefined;
    let dirty = true;
    const informer = new Informer(
      { store, clock, logger: this.log },
      { kinds: KINDS },
      {
        onEvent: () => {
          dirty = true;
          wake?.();
        },
      },
    );
    informer.start();
    try {
      await informer.waitForSync(signal);
    } catch {
      await informer.stop();
      return;
    }
    const resync = this.options.resyncMs ?? 30_000;
    const debounce = this.options.debounceMs ?? 200;
    while (!signal.aborted) {
      let nextCheckMs: number | undefined;
      let retrySoon = false;
      // Never plan from a cache that is re-listing: a pod missing from it is not a pod gone.
      if (dirty && informer.inSync) {
        dirty = false;
        try {
          const report = await this.runOnce(KINDS.flatMap((k) => informer.list(k)));
          nextCheckMs = report.nextCheckMs;
          retrySoon = report.deferred.length > 0;
        } catch (err) {
          this.log.error({ err: errorMessage(err) }, 'gateway maintenance pass failed');
          retrySoon = true;
        }
      }
      let waitMs = resync;
      if (nextCheckMs !== undefined) waitMs = Math.min(waitMs, Math.max(0, nextCheckMs - clock.now()) + 50);
      if (retrySoon || !informer.inSync) waitMs = Math.min(waitMs, 1_000);
      if (!dirty) {
        const woken = new AbortController();
        const onStop = (): void => woken.abort();
        wake = onStop;
        signal.addEventListener('abort', onStop, { once: true });
        try {
          await clock.sleep(waitMs, woken.signal);
        } catch {
          // woken by a change, or stopping
        }
        signal.removeEventListener('abort', onStop);
        wake = undefined;
        if (dirty && debounce > 0 && !signal.aborted) {
          try {
            await clock.sleep(debounce, signal);
          } catch {
            // stopping
          }
        }
      }
      // A timer (expiry, resync, retry) plans again even without a change.
      dirty = true;
    }
    await informer.stop();
  }
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}
