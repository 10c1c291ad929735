/**
 * The ValidatingAdmissionPolicy egw ships so that only namespaces an administrator has opted in may use
 * the egress annotations (`egress.projectcalico.org/*`), pick IP pools (`cni.projectcalico.org/ipv4pools`)
 * or claim Elastic IPs (`cni.projectcalico.org/awsElasticIPs`). Calico's reference leaves this to the user
 * (anyone who can create a pod could otherwise route it through any gateway, or take a partner's
 * allow-listed IP); egw ships it. Pure data: CEL evaluated by kube-apiserver itself, so it holds even
 * while egw's own programs are down.
 *
 * The opt-in is the namespace label {@link EGRESS_ALLOWED_LABEL}`: "true"`. Namespaces are cluster-scoped,
 * so in a usual RBAC set-up only cluster administrators can set it. Gateway namespaces need it too: the
 * operator's gateway pods carry the pool and Elastic IP annotations.
 *
 * Who may act as a gateway (docs/security.md, 7): calc uses a pod as a gateway only when an existing
 * EgressGateway of its namespace owns it, or its namespace carries {@link GATEWAY_PODS_ALLOWED_LABEL}. The
 * policy keeps both in opted-in namespaces: EgressGateways, pods that name one as their controller, and
 * the gateway-pods label itself are refused in a namespace without the opt-in.
 *
 * The gateway-maintenance annotations (`egress.projectcalico.org/gatewayMaintenance*`) are not the user's:
 * only egw's controller (its ServiceAccount) may add, change or remove them, and when it updates a pod it
 * may change nothing but them (labels, other annotations and spec stay as they were), so its permission
 * to update pods cannot be turned into choosing which pods are gateways.
 */
import { CNI_AWS_ELASTIC_IPS, CNI_IPV4_POOLS, GATEWAY_MAINTENANCE_ANNOTATIONS } from '../api/annotations.js';
import { EGRESS_GATEWAY_OWNER_API_VERSION, GATEWAY_PODS_ALLOWED_LABEL } from '../api/gateway-trust.js';
import { egwLabels, type KubeObject } from './objects.js';

/** The namespace label that opts a namespace in. */
export const EGRESS_ALLOWED_LABEL = 'egw.io/egress-allowed';
/** The prefix of the egress annotations (selector, namespaceSelector, egressGatewayPolicy, maxNextHops, maintenance). */
export const EGRESS_ANNOTATION_PREFIX = 'egress.projectcalico.org/';
export const ADMISSION_POLICY_NAME = 'egw-egress-annotations';

/** The namespace egw is installed in by default (src/install/render-install.ts). */
const DEFAULT_NAMESPACE = 'egw-system';

/** CEL list literal of the maintenance annotation keys. */
const MAINTENANCE_KEYS = `[${GATEWAY_MAINTENANCE_ANNOTATIONS.map((k) => `'${k}'`).join(', ')}]`;
/**
 * What the controller may change on a pod: the maintenance keys, and the create-revision bookkeeping
 * annotation the Kubernetes datastore adds on every write (src/datastore/kubernetes, no meaning to anyone else).
 */
const CONTROLLER_KEYS = `[${[...GATEWAY_MAINTENANCE_ANNOTATIONS, 'egw.io/create-revision'].map((k) => `'${k}'`).join(', ')}]`;

/** CEL: true when `annotations` (a CEL map expression) holds a gated key (the maintenance ones have their own rule). */
function gatedAnnotations(annotations: string): string {
  return (
    `${annotations}.exists(k, (k.startsWith('${EGRESS_ANNOTATION_PREFIX}') && !(k in ${MAINTENANCE_KEYS})) ` +
    `|| k == '${CNI_IPV4_POOLS}' || k == '${CNI_AWS_ELASTIC_IPS}')`
  );
}

/** The user name of egw's controller (the maintenance annotations' only writer) in `namespace`. */
export function maintenanceWriter(namespace: string): string {
  return `system:serviceaccount:${namespace}:egw-controller`;
}

/** The policy and its binding (validationActions Deny), in apply order; `namespace` is egw's (the controller's identity). */
export function admissionPolicyObjects(namespace: string = DEFAULT_NAMESPACE): KubeObject[] {
  const podAnnotations = "has(object.metadata.annotations) ? object.metadata.annotations : {}";
  const oldAnnotations = "request.operation == 'UPDATE' && has(oldObject.metadata.annotations) ? oldObject.metadata.annotations : {}";
  const oldLabels = "request.operation == 'UPDATE' && has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}";
  const writer = `request.userInfo.username == '${maintenanceWriter(namespace)}'`;
  // A key is unchanged when it is absent from both maps or has the same value in both.
  const same = (k: string): string =>
    `((${k} in variables.annotations) == (${k} in variables.oldAnnotations) && (!(${k} in variables.annotations) || variables.annotations[${k}] == variables.oldAnnotations[${k}]))`;
  const nsLabels = "has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {}";
  const ownLabels = "has(object.metadata.labels) ? object.metadata.labels : {}";
  const allowed = (labels: string): string => `(${labels}).exists(k, k == '${EGRESS_ALLOWED_LABEL}') && (${labels})['${EGRESS_ALLOWED_LABEL}'] == 'true'`;
  const fix = `label the namespace ${EGRESS_ALLOWED_LABEL}=true (an administrator decides), or remove the annotation`;
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: ADMISSION_POLICY_NAME, labels: egwLabels('admission') },
      spec: {
        // Fail: a policy that cannot be evaluated must not let an annotation through.
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods', 'namespaces'] },
          ],
        },
        variables: [
          { name: 'annotations', expression: podAnnotations },
          { name: 'oldAnnotations', expression: oldAnnotations },
          { name: 'labels', expression: ownLabels },
          { name: 'oldLabels', expression: oldLabels },
        ],
        validations: [
          {
            expression: `request.kind.kind != 'Pod' || !${gatedAnnotations('variables.annotations')} || (${allowed(nsLabels)})`,
            messageExpression:
              `'pod ' + object.metadata.name + ' in namespace ' + request.namespace + ' uses an egress or IP-pool annotation, ` +
              `but the namespace is not labelled ${EGRESS_ALLOWED_LABEL}=true: ${fix}'`,
            reason: 'Forbidden',
          },
          {
            expression: `request.kind.kind != 'Namespace' || !${gatedAnnotations('variables.annotations')} || (${allowed(ownLabels)})`,
            messageExpression:
              `'namespace ' + object.metadata.name + ' uses an egress or IP-pool annotation but is not labelled ` +
              `${EGRESS_ALLOWED_LABEL}=true: ${fix}'`,
            reason: 'Forbidden',
          },
          {
            expression: `request.kind.kind != 'Namespace' || !(${ownLabels}).exists(k, k == '${GATEWAY_PODS_ALLOWED_LABEL}') || (${allowed(ownLabels)})`,
            messageExpression:
              `'namespace ' + object.metadata.name + ' carries ${GATEWAY_PODS_ALLOWED_LABEL} (its pods may act as egress gateways) but is not labelled ` +
              `${EGRESS_ALLOWED_LABEL}=true: ${fix}'`,
            reason: 'Forbidden',
          },
          {
            expression:
              `request.kind.kind != 'Pod' || !has(object.metadata.ownerReferences) || ` +
              `!object.metadata.ownerReferences.exists(r, r.kind == 'EgressGateway' && r.apiVersion == '${EGRESS_GATEWAY_OWNER_API_VERSION}') || (${allowed(nsLabels)})`,
            messageExpression:
              `'pod ' + object.metadata.name + ' in namespace ' + request.namespace + ' names an EgressGateway as its owner, ` +
              `but the namespace is not labelled ${EGRESS_ALLOWED_LABEL}=true: ${fix}'`,
            reason: 'Forbidden',
          },
          {
            // Only egw's controller writes the gateway-maintenance annotations (docs/operator.md, "Gateway maintenance").
            expression: `request.kind.kind != 'Pod' || ${writer} || ${MAINTENANCE_KEYS}.all(k, ${same('k')})`,
            messageExpression:
              `'pod ' + object.metadata.name + ' in namespace ' + request.namespace + ': the egress.projectcalico.org/gatewayMaintenance* ` +
              `annotations are written by egw (its controller) only: leave them as they are'`,
            reason: 'Forbidden',
          },
          {
            // …and the controller changes nothing else of a pod.
            expression:
              `request.kind.kind != 'Pod' || request.operation != 'UPDATE' || !(${writer}) || ` +
              `(variables.labels == variables.oldLabels && object.spec == oldObject.spec && ` +
              `variables.annotations.all(k, k in ${CONTROLLER_KEYS} || ${same('k')}) && variables.oldAnnotations.all(k, k in ${CONTROLLER_KEYS} || k in variables.annotations))`,
            messageExpression: `'egw-controller may change only the gatewayMaintenance annotations of pod ' + object.metadata.name`,
            reason: 'Forbidden',
          },
        ],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: ADMISSION_POLICY_NAME, labels: egwLabels('admission') },
      spec: { policyName: ADMISSION_POLICY_NAME, validationActions: ['Deny'] },
    },
  ];
}
