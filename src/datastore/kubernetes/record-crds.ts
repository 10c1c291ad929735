/**
 * The CustomResourceDefinitions of egw's internal record kinds (egw.io/v1). The CRD itself is built by
 * `recordCrd` of src/api/crd.ts (one helper for every CRD egw renders); this file only says which record
 * kinds there are and how their names map. The backend never creates CRDs itself (least privilege: agents
 * may not); `open` only checks they are served.
 */
import type { CustomResourceDefinition } from '../../api/crd.js';
import { recordCrd } from '../../api/crd.js';
import type { RecordKind } from './resource-map.js';
import { RECORD_GROUP, RECORD_KINDS, RECORD_VERSION, recordPlural } from './resource-map.js';

/** What `recordCrd` of src/api/crd.ts needs for one record kind. */
export type RecordCrdSpec = Parameters<typeof recordCrd>[0];

/** The spec of a record kind's CRD (folded kinds are cluster-scoped). Pure. */
export function recordCrdSpec(r: RecordKind): RecordCrdSpec {
  return { group: RECORD_GROUP, version: RECORD_VERSION, kind: r.kind, plural: recordPlural(r.kind), namespaced: r.keyed === 'namespace', description: r.description };
}

/** The CRDs of every internal record kind (`extra`: test-only kinds). Pure. */
export function recordCrds(extra: readonly RecordKind[] = []): CustomResourceDefinition[] {
  return [...RECORD_KINDS, ...extra].map((r) => recordCrd(recordCrdSpec(r)));
}
