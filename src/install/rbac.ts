/**
 * Least-privilege RBAC for each egw program, derived from what each one reads and writes in the datastore
 * (by datastore kind) and resolved to API groups and resources through the Kubernetes backend's resource
 * map, so that a kind moved to another group cannot leave a rule behind. Pure.
 *
 * | program | reads | writes |
 * |---|---|---|
 * | agent | the egress configuration, pods, namespaces, nodes, IPAM, agent records | its node's status (capacity), pod status conditions, next-hop and node-status records, IPAM for ENI addresses, Events |
 * | controller | everything it reconciles | gateway Deployments, EgressGateway status, IPPool status, AWSSubnet, IPAM GC, agent-record GC, its Lease, Events, the gateway-maintenance annotations of client pods |
 * | gateway | FelixConfiguration, Nodes (its init), the records its readiness reads | nothing |
 * | cni (egw-ipam) | pods, namespaces, nodes, pools, reservations, subnets | IPAM, Events (no address for a pod) |
 */
import type { ResourceInfo } from '../datastore/kubernetes/resource-map.js';
import { defaultResourceMap } from '../datastore/kubernetes/resource-map.js';
import { EgwError } from '../platform/errors.js';
import { egwLabels, type KubeObject } from './objects.js';
import { WEBHOOK_SERVICE } from './workloads.js';

/** The ValidatingWebhookConfiguration the controller keeps (its default name). */
export const WEBHOOK_CONFIGURATION = 'egw-validation';

export type Program = 'agent' | 'controller' | 'gateway' | 'cni';
export const PROGRAMS: readonly Program[] = ['agent', 'controller', 'gateway', 'cni'];

const READ = ['get', 'list', 'watch'] as const;
const WRITE = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] as const;

/** What a program may do with one datastore kind (`status`: also its status subresource). */
interface Grant {
  kinds: readonly string[];
  verbs: readonly string[];
  status?: boolean;
}

const CONFIG = ['IPPool', 'IPReservation', 'FelixConfiguration', 'EgressGatewayPolicy', 'EgressGateway', 'AWSSubnet'];
const WORKLOADS = ['Pod', 'Namespace', 'Node'];
const IPAM = ['IPAMBlock', 'IPAMHandle', 'BlockAffinity', 'FullBlockAffinity', 'IPAMGCMark'];
const AGENT_RECORDS = ['EgressNextHops', 'EgressNodeStatus'];

/** The grants of each program, by datastore kind. */
export const GRANTS: Readonly<Record<Program, readonly Grant[]>> = {
  agent: [
    { kinds: CONFIG, verbs: READ },
    { kinds: ['Namespace'], verbs: READ },
    { kinds: ['Pod', 'Node'], verbs: READ, status: true },
    { kinds: [...IPAM, ...AGENT_RECORDS], verbs: WRITE },
  ],
  controller: [
    { kinds: ['IPPool'], verbs: READ, status: true },
    // The operator writes an EgressGateway's defaults back into its spec, as Calico's operator does.
    { kinds: ['EgressGateway'], verbs: [...READ, 'update', 'patch'], status: true },
    { kinds: ['IPReservation', 'FelixConfiguration', 'EgressGatewayPolicy'], verbs: READ },
    { kinds: ['AWSSubnet', ...IPAM, ...AGENT_RECORDS], verbs: WRITE },
    { kinds: WORKLOADS, verbs: READ },
    // Deleting a pod is how the operator replaces a gateway pod whose spec is stale. Updating one writes the
    // gateway-maintenance annotations on client pods (src/controller/gateway-maintenance.ts); the admission
    // policy lets this identity change those three annotations and nothing else of a pod.
    { kinds: ['Pod'], verbs: ['delete', 'update'] },
  ],
  gateway: [
    { kinds: ['FelixConfiguration', 'EgressGateway'], verbs: READ },
    { kinds: ['Node'], verbs: READ },
  ],
  cni: [
    // FelixConfiguration: whether a new pod may be selected for egress (the fail-closed placeholder at ADD).
    { kinds: ['IPPool', 'IPReservation', 'AWSSubnet', 'FelixConfiguration', ...WORKLOADS], verbs: READ },
    { kinds: IPAM, verbs: WRITE },
  ],
};

/** One RBAC policy rule. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** The ClusterRole rules of a program: grants resolved through the resource map, one rule per group and verb set. */
export function clusterRoleRules(program: Program, map: ReadonlyMap<string, ResourceInfo> = defaultResourceMap()): PolicyRule[] {
  const byKey = new Map<string, PolicyRule>();
  const add = (group: string, resource: string, verbs: readonly string[]): void => {
    const key = `${group}|${[...verbs].sort().join(',')}`;
    const rule = byKey.get(key) ?? { apiGroups: [group], resources: [], verbs: [...verbs] };
    if (!rule.resources.includes(resource)) rule.resources.push(resource);
    byKey.set(key, rule);
  };
  for (const grant of GRANTS[program]) {
    for (const kind of grant.kinds) {
      const info = map.get(kind);
      if (info === undefined) throw new EgwError('Internal', `RBAC of ${program} names kind ${kind}, which the Kubernetes resource map does not know`);
      add(info.group, info.plural, grant.verbs);
      if (grant.status === true) add(info.group, `${info.plural}/status`, ['get', 'update', 'patch']);
    }
  }
  const rules = [...byKey.values()];
  // Events for what a user must see (no capacity, pool exhausted, EC2 errors), written as events.k8s.io/v1
  // (src/datastore/kubernetes/kube-events.ts): create the first occurrence, get + patch to raise a series'
  // count (also one another process of the same reporter created: each egw-ipam run is a process).
  if (program !== 'gateway') rules.push({ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'get', 'patch'] });
  // The operator owns apps/v1 Deployments of gateways.
  if (program === 'controller') rules.push({ apiGroups: ['apps'], resources: ['deployments'], verbs: [...WRITE] });
  // …and gives the gateways of each namespace their identity: ServiceAccount egw-gateway there, bound to the
  // ClusterRole egw-gateway (src/controller/operator/kube-deployments.ts). Server-side apply = create + patch.
  if (program === 'controller') {
    rules.push({ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'create', 'patch'] });
    rules.push({ apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'], verbs: ['get', 'create', 'patch'] });
    // `bind` so that the binding does not depend on the controller holding every gateway permission itself.
    rules.push({ apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['bind'], resourceNames: ['egw-gateway'] });
    // The admission webhook keeps its own ValidatingWebhookConfiguration (the CA bundle) up to date. `create`
    // cannot be limited to a name in RBAC; get/update/patch are limited to egw's.
    rules.push({ apiGroups: ['admissionregistration.k8s.io'], resources: ['validatingwebhookconfigurations'], verbs: ['create'] });
    rules.push({ apiGroups: ['admissionregistration.k8s.io'], resources: ['validatingwebhookconfigurations'], verbs: ['get', 'update', 'patch'], resourceNames: [WEBHOOK_CONFIGURATION] });
  }
  for (const r of rules) r.resources.sort();
  return rules;
}

/** ServiceAccount, ClusterRole and ClusterRoleBinding of every program, plus the controller's Lease Role. */
export function rbacObjects(namespace: string, map?: ReadonlyMap<string, ResourceInfo>): KubeObject[] {
  const out: KubeObject[] = [];
  for (const program of PROGRAMS) {
    const name = `egw-${program}`;
    out.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace, labels: egwLabels(program) } });
    out.push({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name, labels: egwLabels(program) },
      rules: clusterRoleRules(program, map),
    });
    out.push({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name, labels: egwLabels(program) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    });
  }
  // Leader election and the webhook's TLS Secret: only in egw's own namespace.
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'egw-controller-leader-election', namespace, labels: egwLabels('controller') },
    rules: [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: [...WRITE] },
      // The webhook's CA and serving certificate, shared by the replicas (the first one creates it).
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'update', 'patch'], resourceNames: [`${WEBHOOK_SERVICE}-tls`] },
    ],
  });
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'egw-controller-leader-election', namespace, labels: egwLabels('controller') },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'egw-controller-leader-election' },
    subjects: [{ kind: 'ServiceAccount', name: 'egw-controller', namespace }],
  });
  return out;
}
