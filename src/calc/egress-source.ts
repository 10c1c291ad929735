/**
 * Which egress annotations apply to a pod: the pod's own, its namespace's, or none
 * (docs/egress-calc.md, "Which annotations apply"). Pure.
 */
import { EGRESS_GATEWAY_POLICY, EGRESS_MAX_NEXT_HOPS, EGRESS_NAMESPACE_SELECTOR, EGRESS_SELECTOR, parseMaxNextHops } from '../api/annotations.js';
import type { EgressIPSupport } from '../api/kinds/felix-configuration.js';

/** The four egress annotations of one object; empty (or blank) values count as absent. */
export interface EgressAnnotations {
  readonly selector: string | undefined;
  readonly namespaceSelector: string | undefined;
  readonly policy: string | undefined;
  readonly maxNextHops: string | undefined;
}

function present(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/**
 * The egress annotations of a Namespace or Pod, or undefined when it has none. Blank values are absent:
 * `kubectl annotate ns x egress.projectcalico.org/selector=` turns egress off rather than selecting every
 * pod of the namespace.
 */
export function egressAnnotationsOf(annotations: Readonly<Record<string, string>> | undefined): EgressAnnotations | undefined {
  if (annotations === undefined) return undefined;
  const selector = present(annotations[EGRESS_SELECTOR]);
  const namespaceSelector = present(annotations[EGRESS_NAMESPACE_SELECTOR]);
  const policy = present(annotations[EGRESS_GATEWAY_POLICY]);
  const maxNextHops = present(annotations[EGRESS_MAX_NEXT_HOPS]);
  if (selector === undefined && namespaceSelector === undefined && policy === undefined && maxNextHops === undefined) return undefined;
  return { selector, namespaceSelector, policy, maxNextHops };
}

/** True when both hold the same annotations (both undefined included). */
export function sameEgressAnnotations(a: EgressAnnotations | undefined, b: EgressAnnotations | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.selector === b.selector && a.namespaceSelector === b.namespaceSelector && a.policy === b.policy && a.maxNextHops === b.maxNextHops;
}

/** How a client pod's gateways are chosen, and from whose annotations. */
export type EgressSource =
  | {
      readonly from: 'namespace' | 'pod';
      readonly method: 'selector';
      readonly selector: string;
      /** Undefined: gateways in the client's own namespace only. */
      readonly namespaceSelector: string | undefined;
      /** 0 = all gateways. */
      readonly maxNextHops: number;
    }
  | { readonly from: 'namespace' | 'pod'; readonly method: 'policy'; readonly policy: string };

function fromObject(from: 'namespace' | 'pod', ann: EgressAnnotations, notes: string[] | undefined): EgressSource | undefined {
  const what = from === 'pod' ? 'Pod' : 'Namespace';
  if (ann.policy !== undefined) {
    // Decision (calico-semantics.md 1.8 and 8): a policy wins over a selector on the same object; the
    // policy is the more specific instruction and Calico documents no combination of the two.
    if (notes !== undefined) {
      const ignored = [ann.selector !== undefined ? 'selector' : undefined, ann.namespaceSelector !== undefined ? 'namespaceSelector' : undefined, ann.maxNextHops !== undefined ? 'maxNextHops' : undefined].filter((x) => x !== undefined);
      if (ignored.length > 0) notes.push(`${what} annotation${ignored.length > 1 ? 's' : ''} ${ignored.map((k) => `egress.projectcalico.org/${k}`).join(', ')} ignored: egressGatewayPolicy is set on the same ${what}`);
    }
    return { from, method: 'policy', policy: ann.policy };
  }
  if (ann.selector === undefined) return undefined;
  let maxNextHops = 0;
  if (ann.maxNextHops !== undefined) {
    const n = parseMaxNextHops(ann.maxNextHops);
    if (n === undefined) notes?.push(`${what} annotation egress.projectcalico.org/maxNextHops "${ann.maxNextHops}" is not a non-negative integer; all gateways are used`);
    else maxNextHops = n;
  }
  return { from, method: 'selector', selector: ann.selector, namespaceSelector: ann.namespaceSelector, maxNextHops };
}

/**
 * The egress source of a pod, or undefined when it has none.
 * - `Disabled`: none.
 * - `EnabledPerNamespace`: the namespace's annotations; the pod's are ignored.
 * - `EnabledPerNamespaceOrPerPod`: the pod's annotations replace the namespace's **as a set** when the pod
 *   carries `selector` or `egressGatewayPolicy`; otherwise the namespace's apply and the pod's
 *   `namespaceSelector` / `maxNextHops` are ignored (no field-by-field inheritance).
 * On one object, `egressGatewayPolicy` wins over `selector` (whose `namespaceSelector` and `maxNextHops`
 * are then ignored too). When `notes` is given, every ignored annotation is explained there.
 */
export function resolveEgressSource(
  mode: EgressIPSupport,
  pod: EgressAnnotations | undefined,
  namespace: EgressAnnotations | undefined,
  notes?: string[],
): EgressSource | undefined {
  if (mode === 'Disabled') {
    if (notes !== undefined && (pod !== undefined || namespace !== undefined)) notes.push('egress annotations ignored: egressIPSupport is Disabled');
    return undefined;
  }
  if (mode === 'EnabledPerNamespaceOrPerPod' && pod !== undefined) {
    if (pod.selector !== undefined || pod.policy !== undefined) return fromObject('pod', pod, notes);
    notes?.push('Pod annotations egress.projectcalico.org/namespaceSelector and maxNextHops apply only together with a selector or egressGatewayPolicy on the same Pod; the namespace annotations apply');
  } else if (pod !== undefined) {
    notes?.push('Pod egress annotations ignored: egressIPSupport is EnabledPerNamespace (pod annotations need EnabledPerNamespaceOrPerPod)');
  }
  if (namespace === undefined) return undefined;
  const source = fromObject('namespace', namespace, notes);
  if (source === undefined) notes?.push('Namespace annotations egress.projectcalico.org/namespaceSelector and maxNextHops have no effect without a selector on the Namespace');
  return source;
}
