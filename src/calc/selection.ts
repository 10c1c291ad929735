/**
 * A selection: the gateway pods one (selector, scope) pair matches, kept up to date by the calculator.
 * Shared by every client whose rules name the same pair.
 */
import { getNamespaceSelector, getSelector, normaliseSelector, parseSelectorTree, type Labels, type Selector, type SelectorNode } from '../api/selector/index.js';
import type { CalcReason } from './types.js';

/** Where a selection looks for gateways: one namespace, or the namespaces a namespaceSelector matches. */
export type SelectionScope = { readonly kind: 'namespace'; readonly namespace: string } | { readonly kind: 'namespaceSelector'; readonly selector: string };

/**
 * The stable name of a (selector, scope) pair, as used in {@link EgressNextHops} records: JSON of the
 * canonical selector texts, e.g. `["ns:app","egress-code == \"red\""]` or
 * `["nss:projectcalico.org/name == \"default\"","egress-code == \"red\""]`.
 */
export function selectionKey(selector: string, scope: SelectionScope): string {
  const where = scope.kind === 'namespace' ? `ns:${scope.namespace}` : `nss:${normaliseSelector(scope.selector)}`;
  return JSON.stringify([where, normaliseSelector(selector)]);
}

/** A `label == value` / `label in {…}` term every match must satisfy: the key of the candidate index. */
export interface RequiredTerm {
  readonly label: string;
  readonly values: readonly string[];
}

/**
 * A term that every pod matching `node` must satisfy, if there is one: the selector itself when it is
 * `k == v` or `k in {…}`, or such an operand of a top-level `&&` (equality preferred, then the smallest
 * set). Lets the calculator evaluate a selection only against pods carrying one of the term's labels.
 */
export function requiredTerm(node: SelectorNode): RequiredTerm | undefined {
  if ((node.kind === 'eq' || node.kind === 'in') && SYNTHETIC_POD_LABELS.has(node.label)) return undefined;
  if (node.kind === 'eq') return { label: node.label, values: [node.value] };
  if (node.kind === 'in') return { label: node.label, values: node.values };
  if (node.kind === 'and') {
    let best: RequiredTerm | undefined;
    for (const op of node.operands) {
      const t = op.kind === 'eq' || op.kind === 'in' ? requiredTerm(op) : undefined;
      if (t !== undefined && (best === undefined || t.values.length < best.values.length)) best = t;
    }
    return best;
  }
  return undefined;
}

/**
 * Labels Calico gives every workload endpoint, which calc adds when it evaluates a pod selector. Every pod
 * has them, so they are useless as index terms (and a 100,000-entry index set costs more than it saves).
 */
export const SYNTHETIC_POD_LABELS: ReadonlySet<string> = new Set(['projectcalico.org/namespace', 'projectcalico.org/orchestrator', 'projectcalico.org/serviceaccount']);

/** A selection of gateway pods (see the calculator for how members are maintained). */
export class Selection<P> {
  readonly key: string;
  /** Undefined when the selector does not parse (then `error` says so and nothing matches). */
  readonly matcher: Selector | undefined;
  /** For a namespaceSelector scope; undefined when it does not parse. */
  readonly nsMatcher: Selector | undefined;
  readonly error: CalcReason | undefined;
  readonly term: RequiredTerm | undefined;
  /** The member pods. */
  readonly members = new Set<P>();
  /** Cached namespace-selector verdicts, by namespace name. */
  readonly nsMatch = new Map<string, boolean>();
  /** The client configurations that name it (it lives while there is one). */
  readonly users = new Set<object>();
  /** Members on the calculator's own node. */
  localMembers = 0;
  /** Bumped whenever a member joins or leaves or changes what its users see (address, readiness, node, health). */
  version = 0;

  constructor(
    selector: string | undefined,
    readonly scope: SelectionScope | undefined,
  ) {
    this.key = selector === undefined || scope === undefined ? JSON.stringify(['invalid', selector ?? '', scope ?? null]) : selectionKey(selector, scope);
    let matcher: Selector | undefined;
    let nsMatcher: Selector | undefined;
    let error: CalcReason | undefined;
    let term: RequiredTerm | undefined;
    if (selector === undefined) error = 'invalid-selector';
    else {
      try {
        matcher = getSelector(selector.trim());
        term = requiredTerm(parseSelectorTree(selector.trim()));
      } catch {
        error = 'invalid-selector';
      }
    }
    if (scope === undefined) error ??= 'invalid-namespace-selector';
    else if (scope.kind === 'namespaceSelector') {
      try {
        nsMatcher = getNamespaceSelector(scope.selector.trim());
      } catch {
        error ??= 'invalid-namespace-selector';
      }
    }
    this.matcher = error === undefined ? matcher : undefined;
    this.nsMatcher = nsMatcher;
    this.error = error;
    this.term = error === undefined ? term : undefined;
  }

  /** True when pods of `namespace` (whose namespace-selector labels `labels()` gives) are in scope. */
  inScope(namespace: string, labels: () => Labels): boolean {
    const scope = this.scope;
    if (scope === undefined || this.matcher === undefined) return false;
    if (scope.kind === 'namespace') return scope.namespace === namespace;
    let v = this.nsMatch.get(namespace);
    if (v === undefined) {
      v = this.nsMatcher?.evaluate(labels()) ?? false;
      this.nsMatch.set(namespace, v);
    }
    return v;
  }
}
