/**
 * Who may act as an egress gateway (issue 11 item 7, docs/security.md). A pod that a gateway selector
 * matches receives other pods' traffic and sends it out with its own address, so matching labels are not
 * enough: the pod must belong to an EgressGateway's workload, or sit in a namespace an administrator
 * opened to hand-made gateways. Pure; read by calc, the one place that picks next hops.
 */
import type { Pod } from './kinds/kubernetes.js';

/** The apiVersion of Calico's EgressGateway (owner references name it). */
export const EGRESS_GATEWAY_OWNER_API_VERSION = 'operator.tigera.io/v1';
/** The label Kubernetes' Deployment controller puts on a ReplicaSet's pods; the ReplicaSet is `<deployment>-<hash>`. */
export const POD_TEMPLATE_HASH = 'pod-template-hash';
/**
 * The Namespace label (value `"true"`) that lets every pod of the namespace a gateway selector matches act
 * as a gateway without an EgressGateway owner — for gateways an administrator runs by hand. On Kubernetes
 * the admission policy `egw-egress-annotations` accepts it only on namespaces also labelled
 * `egw.io/egress-allowed=true`, and Namespaces are cluster-scoped (administrators only).
 */
export const GATEWAY_PODS_ALLOWED_LABEL = 'egw.io/gateway-pods-allowed';

/** The EgressGateways calc knows of one namespace: name → uid (undefined when the stored object has none). */
export type EgressGatewayIndex = ReadonlyMap<string, string | undefined>;

/** Why a pod may act as a gateway (`allowed`) or why it may not (`refused`, with a reason for status and logs). */
export type GatewayTrust =
  | { readonly allowed: true; readonly by: string }
  | { readonly allowed: false; readonly reason: string };

interface OwnerRef {
  apiVersion?: unknown;
  kind?: unknown;
  name?: unknown;
  uid?: unknown;
  controller?: unknown;
}

function controllerRef(pod: Pod): OwnerRef | undefined {
  const refs: unknown = pod.metadata.ownerReferences;
  if (!Array.isArray(refs)) return undefined;
  for (const r of refs as unknown[]) {
    if (typeof r === 'object' && r !== null && (r as OwnerRef).controller === true) return r;
  }
  return undefined;
}

/** True when a namespace's labels open it to hand-made gateways. */
export function gatewayPodsAllowed(namespaceLabels: Readonly<Record<string, string>> | undefined): boolean {
  return namespaceLabels?.[GATEWAY_PODS_ALLOWED_LABEL] === 'true';
}

/**
 * May `pod` act as a gateway? Allowed when its namespace carries {@link GATEWAY_PODS_ALLOWED_LABEL}, or its
 * controller is an EgressGateway of its namespace that exists (the shape egw's operator writes on the
 * SQLite and etcd datastores; the uids must agree when both are known), or its controller is a ReplicaSet
 * `<egw>-<pod-template-hash>` of an existing EgressGateway `<egw>` (the Deployment the operator renders is
 * named after its EgressGateway, Kubernetes names the ReplicaSet after it). Refused otherwise, with why.
 */
export function gatewayTrust(pod: Pod, namespaceAllows: boolean, egws: EgressGatewayIndex | undefined): GatewayTrust {
  if (namespaceAllows) return { allowed: true, by: `namespace label ${GATEWAY_PODS_ALLOWED_LABEL}=true` };
  const ref = controllerRef(pod);
  const ns = pod.metadata.namespace ?? 'default';
  if (ref === undefined || typeof ref.name !== 'string') {
    return { allowed: false, reason: `not owned by an EgressGateway (no controller owner reference; or label namespace ${ns} ${GATEWAY_PODS_ALLOWED_LABEL}=true)` };
  }
  if (ref.kind === 'EgressGateway' && ref.apiVersion === EGRESS_GATEWAY_OWNER_API_VERSION) {
    if (egws === undefined || !egws.has(ref.name)) return { allowed: false, reason: `its owner EgressGateway ${ns}/${ref.name} does not exist` };
    const uid = egws.get(ref.name);
    if (typeof ref.uid === 'string' && uid !== undefined && ref.uid !== uid) {
      return { allowed: false, reason: `its owner reference names EgressGateway ${ns}/${ref.name} with uid ${ref.uid}, the stored one has ${uid}` };
    }
    return { allowed: true, by: `EgressGateway ${ns}/${ref.name}` };
  }
  if (ref.kind === 'ReplicaSet') {
    const hash = pod.metadata.labels?.[POD_TEMPLATE_HASH];
    if (hash === undefined || hash === '' || !ref.name.endsWith(`-${hash}`)) {
      return { allowed: false, reason: `its ReplicaSet ${ref.name} is not <EgressGateway>-<${POD_TEMPLATE_HASH}>` };
    }
    const name = ref.name.slice(0, -hash.length - 1);
    if (egws === undefined || !egws.has(name)) return { allowed: false, reason: `its ReplicaSet ${ref.name} belongs to no EgressGateway (${ns}/${name} does not exist)` };
    return { allowed: true, by: `EgressGateway ${ns}/${name}` };
  }
  return { allowed: false, reason: `its controller is ${String(ref.kind)} ${ref.name}, not an EgressGateway's workload` };
}
