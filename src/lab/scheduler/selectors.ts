/**
 * Kubernetes label selectors (`matchLabels` / `matchExpressions`), node selector terms (node affinity)
 * and taint/toleration matching, as the scheduler evaluates them. Pure.
 */

/** A `metav1.LabelSelector`. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** One expression of a label selector (In, NotIn, Exists, DoesNotExist). */
export interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

/** One expression of a node selector term (also Gt and Lt). */
export type NodeSelectorRequirement = LabelSelectorRequirement;

/** A node selector term: every expression and field must match; a term with none matches nothing. */
export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  matchFields?: NodeSelectorRequirement[];
}

/** A node taint. */
export interface Taint {
  key: string;
  value: string;
  effect: string;
}

/** A pod toleration. */
export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
}

function requirementMatches(labels: Readonly<Record<string, string>>, r: LabelSelectorRequirement, allowNumeric: boolean): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'Gt':
    case 'Lt': {
      if (!allowNumeric || value === undefined || values.length !== 1) return false;
      if (!/^-?\d+$/.test(value) || !/^-?\d+$/.test(values[0] ?? '')) return false;
      const a = Number(value);
      const b = Number(values[0]);
      return r.operator === 'Gt' ? a > b : a < b;
    }
    default:
      // An unknown operator never matches (Kubernetes rejects it at validation).
      return false;
  }
}

/**
 * True when `labels` satisfy the selector. As `metav1.LabelSelectorAsSelector`: an absent selector
 * matches nothing, an empty one (`{}`) matches everything.
 */
export function labelSelectorMatches(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (selector === undefined) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  return (selector.matchExpressions ?? []).every((r) => requirementMatches(labels, r, false));
}

/**
 * True when a node matches one node selector term: all `matchExpressions` on its labels and all
 * `matchFields` on its fields (only `metadata.name` exists). A term with neither matches nothing.
 */
export function nodeSelectorTermMatches(term: NodeSelectorTerm, node: { name: string; labels: Readonly<Record<string, string>> }): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  if (!exprs.every((r) => requirementMatches(node.labels, r, true))) return false;
  return fields.every((r) => r.key === 'metadata.name' && requirementMatches({ 'metadata.name': node.name }, r, false));
}

/** True when any term matches (terms are ORed). No terms: nothing matches. */
export function nodeSelectorTermsMatch(terms: readonly NodeSelectorTerm[], node: { name: string; labels: Readonly<Record<string, string>> }): boolean {
  return terms.some((t) => nodeSelectorTermMatches(t, node));
}

/** True when the toleration tolerates the taint (Kubernetes' `Toleration.ToleratesTaint`). */
export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect !== undefined && t.effect !== '' && t.effect !== taint.effect) return false;
  if (t.key !== undefined && t.key !== '' && t.key !== taint.key) return false;
  const op = t.operator ?? 'Equal';
  if (op === 'Exists') return true;
  if (op === 'Equal' || op === '') return (t.value ?? '') === taint.value;
  return false;
}

/** True when any toleration tolerates the taint. */
export function tolerationsTolerate(tolerations: readonly Toleration[], taint: Taint): boolean {
  return tolerations.some((t) => toleratesTaint(t, taint));
}

/**
 * The first taint with effect NoSchedule or NoExecute the pod does not tolerate, or undefined
 * (Kubernetes' `FindMatchingUntoleratedTaint` with the do-not-schedule filter).
 */
export function firstUntoleratedTaint(taints: readonly Taint[], tolerations: readonly Toleration[]): Taint | undefined {
  return taints.find((taint) => (taint.effect === 'NoSchedule' || taint.effect === 'NoExecute') && !tolerationsTolerate(tolerations, taint));
}
