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
 * The labels a `namespaceSelector` is matched against for `namespace`: its own labels plus
 * `projectcalico.org/name: <name>`, which wins over a label of the same key set on the namespace (Calico
 * writes it after copying the namespace's labels). Returns a new object; pure.
 */
export function namespaceLabels(namespace: { readonly name: string; readonly labels?: Labels | undefined }): Labels {
  return { ...namespace.labels, [NAMESPACE_NAME_LABEL]: namespace.name };
}
