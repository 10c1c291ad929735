/**
 * The CustomResourceDefinitions of egw's internal record kinds (egw.io/v1), for `egw render install`.
 * The backend never creates CRDs itself (least privilege: agents may not); `open` only checks they are served.
 */
import type { RecordKind } from './resource-map.js';
import { RECORD_GROUP, RECORD_KINDS, RECORD_VERSION, recordPlural } from './resource-map.js';

/** An apiextensions.k8s.io/v1 CustomResourceDefinition, as far as egw writes one. */
export interface RecordCrd {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string };
    scope: 'Namespaced' | 'Cluster';
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: Record<string, unknown> };
    }[];
  };
}

/** What {@link recordCrd} needs (the shape of src/api/crd.ts's `recordCrd`). */
export interface RecordCrdSpec {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  description: string;
}

/**
 * The CRD of one record kind: `spec` holds any JSON value, kept as written. Pure. (Same shape as
 * `recordCrd` of src/api/crd.ts, which is not committed yet; swap to it when it lands.)
 */
export function recordCrd(spec: RecordCrdSpec): RecordCrd {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${spec.plural}.${spec.group}`, labels: { 'app.kubernetes.io/part-of': 'egw' } },
    spec: {
      group: spec.group,
      names: { kind: spec.kind, listKind: `${spec.kind}List`, plural: spec.plural, singular: spec.kind.toLowerCase() },
      scope: spec.namespaced ? 'Namespaced' : 'Cluster',
      versions: [
        {
          name: spec.version,
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: spec.description,
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: { description: 'The record (any JSON value, kept as written).', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          },
        },
      ],
    },
  };
}

/** The spec of a record kind's CRD (folded kinds are cluster-scoped). */
export function recordCrdSpec(r: RecordKind): RecordCrdSpec {
  return { group: RECORD_GROUP, version: RECORD_VERSION, kind: r.kind, plural: recordPlural(r.kind), namespaced: r.keyed === 'namespace', description: r.description };
}

/** The CRDs of every internal record kind (`extra`: test-only kinds). Pure. */
export function recordCrds(extra: readonly RecordKind[] = []): RecordCrd[] {
  return [...RECORD_KINDS, ...extra].map((r) => recordCrd(recordCrdSpec(r)));
}
