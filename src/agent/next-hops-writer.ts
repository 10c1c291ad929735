import type { EgressNextHops } from '../calc/index.js';
import { sameNextHops } from '../calc/index.js';
import type { Datastore, StoredResource } from '../datastore/contract.js';
import { isEgwError } from '../platform/errors.js';
import { nextHopsKey, nextHopsValue, parseNextHops } from './records.js';

/** What one {@link syncNextHops} did. */
export interface NextHopsSyncResult {
  written: number;
  deleted: number;
  /** Writes that met a concurrent change and were retried (each retry counts). */
  conflicts: number;
  /** Clients whose record could not be written or deleted (the next pass tries again). */
  failed: { client: string; message: string }[];
}

/**
 * Makes the stored maxNextHops records of this node's clients what calc says: writes each record of
 * `desired` that differs from the stored one and deletes each of `stale`. Every write is a CAS on the
 * revision read (`lookup`, normally the informer's cache, else the store); on a conflict the record is
 * read again from the store and the write retried (up to `retries` times) — unless the store already
 * holds what we want. The node's agent is the only writer of its clients' records, so a conflict means
 * our cache was behind our own earlier write. A stale record is deleted only while it still names
 * `node` as its owner. One record's failure never stops the others.
 */
export async function syncNextHops(
  store: Datastore,
  desired: readonly EgressNextHops[],
  stale: readonly string[],
  lookup: (client: string) => StoredResource | undefined,
  node: string,
  retries = 3,
): Promise<NextHopsSyncResult> {
  const result: NextHopsSyncResult = { written: 0, deleted: 0, conflicts: 0, failed: [] };
  for (const record of desired) {
    let current = lookup(record.client);
    if (current !== undefined && sameNextHops(parseNextHops(current), record)) continue;
    for (let attempt = 0; ; attempt++) {
      try {
        const key = nextHopsKey(record.client);
        await store.commit([
          current === undefined
            ? { op: 'create', key, value: nextHopsValue(record) }
            : { op: 'update', key, value: nextHopsValue(record), expectedRevision: current.modRevision },
        ]);
        result.written++;
        break;
      } catch (e) {
        if (isEgwError(e, 'Conflict', 'AlreadyExists', 'NotFound') && attempt < retries) {
          result.conflicts++;
          current = await store.get(nextHopsKey(record.client));
          if (current !== undefined && sameNextHops(parseNextHops(current), record)) break;
          continue;
        }
        result.failed.push({ client: record.client, message: e instanceof Error ? e.message : String(e) });
        break;
      }
    }
  }
  for (const client of stale) {
    let current = lookup(client);
    for (let attempt = 0; current !== undefined; attempt++) {
      try {
        await store.commit([{ op: 'delete', key: nextHopsKey(client), expectedRevision: current.modRevision }]);
        result.deleted++;
        break;
      } catch (e) {
        if (isEgwError(e, 'Conflict') && attempt < retries) {
          result.conflicts++;
          current = await store.get(nextHopsKey(client));
          // Re-created on another node meanwhile: that node's agent owns the record now.
          if (current !== undefined && parseNextHops(current)?.node !== node) break;
          continue;
        }
        result.failed.push({ client, message: e instanceof Error ? e.message : String(e) });
        break;
      }
    }
  }
  return result;
}
