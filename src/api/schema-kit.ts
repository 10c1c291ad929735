/**
 * Building blocks for the per-kind schemas. Each schema is a TypeBox schema, i.e. a JSON Schema object
 * whose TypeScript type comes from `Static<>`.
 *
 * Conventions (they match Kubernetes structural schemas, so CRDs can be generated from these later):
 * - objects are closed: a field not listed in `properties` is an unknown field, unless the object carries
 *   `x-kubernetes-preserve-unknown-fields: true` (then extra fields are accepted and kept as written);
 * - string maps are `{ type: object, additionalProperties: { type: string } }`;
 * - enums are `{ type: string, enum: [...] }`; `x-egw-case-insensitive: true` marks the ones Calico
 *   accepts in any case (its CRDs say `pattern: ^(?i)(...)$`); stored values are canonicalised;
 * - int-or-string values carry `x-kubernetes-int-or-string: true`.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

/** A string enum. `caseInsensitive` accepts any case on input (the stored value is canonicalised). */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: { caseInsensitive?: boolean; description?: string; default?: T[number] } = {},
) {
  const { caseInsensitive, ...rest } = options;
  return Type.Unsafe<T[number]>({
    type: 'string',
    enum: [...values],
    ...(caseInsensitive === true ? { 'x-egw-case-insensitive': true } : {}),
    ...rest,
  });
}

/** `map[string]string`, e.g. labels, annotations, nodeSelector. */
export function StringMap(options: { description?: string } = {}) {
  return Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' }, ...options });
}

/** A Kubernetes quantity: an integer/number or a string such as `100m`, `1Gi`. */
export function Quantity() {
  return Type.Unsafe<number | string>({
    anyOf: [{ type: 'number' }, { type: 'string', pattern: '^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+|[numkKMGTPE]|[KMGTPE]i)?$' }],
    'x-kubernetes-int-or-string': true,
  });
}

/** A map of resource name to quantity (`requests`, `limits`, `capacity`, `allocatable`). */
export function ResourceList() {
  return Type.Unsafe<Record<string, number | string>>({ type: 'object', additionalProperties: Quantity() });
}

/** Any JSON value, kept as written (for fields egw does not read). */
export function AnyValue(options: { description?: string } = {}) {
  return Type.Unknown(options);
}

/** An object that also accepts (and keeps) fields it does not list. */
export const preserveUnknown = { 'x-kubernetes-preserve-unknown-fields': true } as const;

/**
 * Kubernetes ObjectMeta, as egw keeps it. The fields the datastore maintains (`uid`, `resourceVersion`,
 * `creationTimestamp`, `generation`, `deletionTimestamp`) are accepted on input and kept.
 */
export const ObjectMetaSchema = Type.Object({
  name: Type.String({ description: 'Name, unique per kind (and namespace, for namespaced kinds).' }),
  namespace: Type.Optional(Type.String()),
  labels: Type.Optional(StringMap()),
  annotations: Type.Optional(StringMap()),
  uid: Type.Optional(Type.String()),
  resourceVersion: Type.Optional(Type.String()),
  creationTimestamp: Type.Optional(Type.String()),
  generation: Type.Optional(Type.Integer({ minimum: 0 })),
  deletionTimestamp: Type.Optional(Type.String()),
  // Standard ObjectMeta fields that real manifests carry; egw keeps them but does not act on them.
  generateName: Type.Optional(Type.String()),
  deletionGracePeriodSeconds: Type.Optional(Type.Integer()),
  finalizers: Type.Optional(Type.Array(Type.String())),
  ownerReferences: Type.Optional(Type.Array(Type.Unknown())),
  managedFields: Type.Optional(Type.Array(Type.Unknown())),
  selfLink: Type.Optional(Type.String()),
});

/** Kubernetes ObjectMeta as egw keeps it. */
export type ObjectMeta = Static<typeof ObjectMetaSchema>;

/** Free-form status (written by controllers; accepted on input so `get -o yaml` output re-applies). */
export function LooseStatus() {
  return Type.Object({}, preserveUnknown);
}

/**
 * The common envelope: `apiVersion`, `kind`, `metadata`, `spec`, `status`.
 * `specRequired` mirrors whether the kind's CRD/API requires a spec.
 */
export function Resource<const A extends string, const K extends string, S extends TSchema, St extends TSchema>(
  apiVersion: A,
  kind: K,
  spec: S,
  status: St,
  options: { description: string },
) {
  return Type.Object(
    {
      apiVersion: Type.Literal(apiVersion),
      kind: Type.Literal(kind),
      metadata: ObjectMetaSchema,
      spec,
      status: Type.Optional(status),
    },
    { description: options.description },
  );
}

/** Like {@link Resource}, for kinds whose `spec` may be omitted. */
export function ResourceOptionalSpec<const A extends string, const K extends string, S extends TSchema, St extends TSchema>(
  apiVersion: A,
  kind: K,
  spec: S,
  status: St,
  options: { description: string },
) {
  return Type.Object(
    {
      apiVersion: Type.Literal(apiVersion),
      kind: Type.Literal(kind),
      metadata: ObjectMetaSchema,
      spec: Type.Optional(spec),
      status: Type.Optional(status),
    },
    { description: options.description },
  );
}
