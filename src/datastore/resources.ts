/**
 * The bridge between typed API resources and the generic datastore: keys, the stored form, and the
 * server-maintained metadata (`uid`, `creationTimestamp`, `generation`, `resourceVersion`).
 */
import { randomUUID } from 'node:crypto';
import { kindInfo } from '../api/kinds.js';
import type { AnyResource, KindName, ResourceOf } from '../api/kinds.js';
import type { Datastore, JsonObject, ResourceKey, StoredResource, WriteOp } from './contract.js';

/** The datastore key of a resource (namespace only for namespaced kinds). */
export function keyOf(resource: { kind: string; metadata: { name: string; namespace?: string | undefined } }): ResourceKey {
  const namespaced = kindInfo(resource.kind)?.namespaced ?? resource.metadata.namespace !== undefined;
  return namespaced
    ? { kind: resource.kind, namespace: resource.metadata.namespace, name: resource.metadata.name }
    : { kind: resource.kind, name: resource.metadata.name };
}

/**
 * The resource a stored value holds, with `metadata.resourceVersion` set to its modRevision (as Kubernetes
 * shows it). Stored values were validated when written; they are not validated again here.
 */
export function fromStored<T extends AnyResource = AnyResource>(stored: StoredResource): T {
  const value = stored.value as unknown as T;
  return { ...value, metadata: { ...value.metadata, resourceVersion: String(stored.modRevision) } };
}

/** What a write of `incoming` over `existing` means to the user. */
export type WriteOutcome = 'created' | 'configured' | 'unchanged';

/**
 * The value to store when `incoming` (validated, defaulted) is applied over `existing`: server-maintained
 * metadata is kept from `existing` (or made for a new resource), `status` is kept unless `incoming` sets it,
 * and `generation` moves only when the spec changes. Pure apart from a new uid and the creation time.
 */
export function mergeForApply(incoming: AnyResource, existing: AnyResource | undefined, now: Date): { value: AnyResource; outcome: WriteOutcome } {
  const { resourceVersion: _rv, ...incomingMeta } = incoming.metadata;
  if (existing === undefined) {
    const value = {
      ...incoming,
      metadata: {
        ...incomingMeta,
        uid: incoming.metadata.uid ?? randomUUID(),
        creationTimestamp: incoming.metadata.creationTimestamp ?? now.toISOString(),
        generation: 1,
      },
    } as AnyResource;
    return { value, outcome: 'created' };
  }
  const { resourceVersion: _erv, ...existingMeta } = existing.metadata;
  const specChanged = stableJson((incoming as { spec?: unknown }).spec) !== stableJson((existing as { spec?: unknown }).spec);
  const status = (incoming as { status?: unknown }).status ?? (existing as { status?: unknown }).status;
  const value = {
    ...incoming,
    metadata: {
      ...incomingMeta,
      uid: existingMeta.uid ?? incomingMeta.uid ?? randomUUID(),
      creationTimestamp: existingMeta.creationTimestamp ?? now.toISOString(),
      generation: (existingMeta.generation ?? 1) + (specChanged ? 1 : 0),
      ...(existingMeta.deletionTimestamp === undefined ? {} : { deletionTimestamp: existingMeta.deletionTimestamp }),
    },
    ...(status === undefined ? {} : { status }),
  } as AnyResource;
  const { resourceVersion: _x, ...existingComparable } = existing.metadata;
  const unchanged = stableJson({ ...existing, metadata: existingComparable }) === stableJson(value);
  return { value, outcome: unchanged ? 'unchanged' : 'configured' };
}

/** JSON with object keys sorted, for comparing values regardless of key order. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The write op that stores `value` over the stored resource `current` (create when there is none). */
export function writeOpFor(value: AnyResource, current: StoredResource | undefined): WriteOp {
  const { resourceVersion: _rv, ...metadata } = value.metadata;
  const json = { ...value, metadata } as unknown as JsonObject;
  return current === undefined
    ? { op: 'create', key: keyOf(value), value: json }
    : { op: 'update', key: keyOf(value), value: json, expectedRevision: current.modRevision };
}

/** All resources of one kind (optionally in one namespace), typed. */
export async function listResources<K extends KindName>(store: Datastore, kind: K, namespace?: string): Promise<ResourceOf<K>[]> {
  const { items } = await store.list(kind, namespace === undefined ? {} : { namespace });
  return items.map((s) => fromStored<ResourceOf<K>>(s));
}

/** One resource, typed, or undefined. */
export async function getResource<K extends KindName>(store: Datastore, kind: K, name: string, namespace?: string): Promise<ResourceOf<K> | undefined> {
  const stored = await store.get(keyOf({ kind, metadata: { name, ...(namespace === undefined ? {} : { namespace }) } }));
  return stored === undefined ? undefined : fromStored<ResourceOf<K>>(stored);
}
