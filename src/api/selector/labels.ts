/**
 * Label sets that selectors are evaluated against, and the labels Calico matches a namespaceSelector with.
 */

/**
 * Labels of the object a selector is evaluated against. Only own string values count as present: a key
 * whose value is not a string (or that is only inherited, like `constructor`) is treated as absent.
 */
export type Labels = Readonly<Record<string, string>>;

/** The label Calico adds to every namespace's label set: the namespace's name. */
export const NAMESPACE_NAME_LABEL = 'projectcalico.org/name';

/**
 * A copy of `labels` prepared for fast evaluation: a null-prototype object holding only the own
 * string-valued labels. V8 looks keys up in such (dictionary-mode) objects several times faster than in
 * the many differently shaped objects that parsed manifests produce (see docs/selectors.md, "Speed"), so
 * prepare a label set once when it is evaluated against many selectors. Pure; the input is not changed.
 */
export function prepareLabels(labels: Labels): Labels {
  const out = Object.create(null) as Record<string, string>;
  for (const key of Object.keys(labels)) {
    const value = labels[key];
    if (typeof value === 'string') out[key] = value;
  }
  return out;
}

/**
 * The labels a `namespaceSelector` is matched against for `namespace`: its own labels plus
 * `projectcalico.org/name: <name>`, which wins over a label of the same key set on the namespace (Calico
 * writes it after copying the namespace's labels). Returns a new, prepared ({@link prepareLabels}) object;
 * pure.
 */
export function namespaceLabels(namespace: { readonly name: string; readonly labels?: Labels | undefined }): Labels {
  const out = prepareLabels(namespace.labels ?? {}) as Record<string, string>;
  out[NAMESPACE_NAME_LABEL] = namespace.name;
  return out;
}
