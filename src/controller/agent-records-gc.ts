/**
 * Removes the agents' records whose owner is gone. An agent cleans its own node's records while it runs;
 * when a node disappears, nobody else would: its clients' `EgressNextHops` records would keep counting as
 * load in every other client's least-loaded choice, and its `EgressNodeStatus` would linger in status views.
 *
 * A record is removed only when seen orphaned on two passes in a row (a pod or node being created is never
 * robbed), and with a compare-and-swap on the revision seen, so a record its owner rewrote is left alone.
 */
import { NEXT_HOPS_KIND, NODE_STATUS_KIND, parseNextHops } from '../agent/records.js';
import type { Datastore, ResourceKey, WriteOp } from '../datastore/contract.js';
import { formatKey } from '../datastore/contract.js';
import { listResources } from '../datastore/resources.js';
import type { Clock } from '../platform/clock.js';
import { runEvery } from '../platform/clock.js';
import { errorMessage, isEgwError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';

export interface AgentRecordsGcDeps {
  store: Datastore;
  clock: Clock;
  logger?: Logger;
}

/** What one pass removed and what it is waiting to confirm. */
export interface AgentRecordsGcReport {
  removed: string[];
  suspected: string[];
}

export class AgentRecordsGc {
  /** Orphans seen on the previous pass, by key, with the revision seen. */
  private suspects = new Map<string, number>();

  constructor(
    private readonly deps: AgentRecordsGcDeps,
    private readonly options: { intervalMs?: number } = {},
  ) {}

  /** One pass. Datastore errors are thrown; a record changed under us is skipped until the next pass. */
  async runOnce(): Promise<AgentRecordsGcReport> {
    const { store } = this.deps;
    const nodes = new Set((await listResources(store, 'Node')).map((n) => n.metadata.name));
    const pods = new Map((await listResources(store, 'Pod')).map((p) => [`${p.metadata.namespace ?? 'default'}/${p.metadata.name}`, p.metadata.uid]));
    const orphans: { key: ResourceKey; revision: number }[] = [];
    for (const s of (await store.list(NEXT_HOPS_KIND)).items) {
      const rec = parseNextHops(s);
      const owner = rec === undefined ? undefined : pods.get(rec.client);
      const gone = rec === undefined || owner === undefined || (owner !== rec.podUID && rec.podUID !== '') || !nodes.has(rec.node);
      if (gone) orphans.push({ key: s.key, revision: s.modRevision });
    }
    for (const s of (await store.list(NODE_STATUS_KIND)).items) {
      if (!nodes.has(s.key.name)) orphans.push({ key: s.key, revision: s.modRevision });
    }
    const next = new Map<string, number>();
    const confirmed: { key: ResourceKey; revision: number }[] = [];
    for (const o of orphans) {
      const id = formatKey(o.key);
      if (this.suspects.get(id) === o.revision) confirmed.push(o);
      else next.set(id, o.revision);
    }
    this.suspects = next;
    const removed: string[] = [];
    for (const o of confirmed) {
      const op: WriteOp = { op: 'delete', key: o.key, expectedRevision: o.revision };
      try {
        await store.commit([op]);
        removed.push(formatKey(o.key));
      } catch (err) {
        if (!isEgwError(err, 'Conflict')) throw err;
      }
    }
    if (removed.length > 0) this.deps.logger?.info({ removed }, 'removed agent records of pods or nodes that are gone');
    return { removed, suspected: [...next.keys()] };
  }

  /** Passes every interval (default 60 s) until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await runEvery(this.deps.clock, this.options.intervalMs ?? 60_000, signal, () => this.runOnce(), (err) =>
      this.deps.logger?.error({ err: errorMessage(err) }, 'agent records gc pass failed'),
    );
  }
}
