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
 */
import { CNI_AWS_ELASTIC_IPS, CNI_IPV4_POOLS } from '../api/annotations.js';
import { EGRESS_GATEWAY_OWNER_API_VERSION, GATEWAY_PODS_ALLOWED_LABEL } from '../api/gateway-trust.js';
import { egwLabels, type KubeObject } from './objects.js';

/** The namespace label that opts a namespace in. */
export const EGRESS_ALLOWED_LABEL = 'egw.io/egress-allowed';
/** The prefix of the egress annotations (selector, namespaceSelector, egressGatewayPolicy, maxNextHops, maintenance). */
export const EGRESS_ANNOTATION_PREFIX = 'egress.projectcalico.org/';
export const ADMISSION_POLICY_NAME = 'egw-egress-annotations';

/** CEL: true when `annotations` (a CEL map expression) holds a gated key. */
function gatedAnnotations(annotations: string): string {
  return (
    `${annotations}.exists(k, k.startsWith('${EGRESS_ANNOTATION_PREFIX}') ` +
    `|| k == '${CNI_IPV4_POOLS}' || k == '${CNI_AWS_ELASTIC_IPS}')`
  );
}

/** The policy and its binding (validationActions Deny), in apply order. */
export function admissionPolicyObjects(): KubeObject[] {
  const podAnnotations = "has(object.metadata.annotations) ? object.metadata.annotations : {}";
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
            { apiGroups: ['operator.tigera.io'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['egressgateways'] },
          ],
        },
        variables: [{ name: 'annotations', expression: podAnnotations }],
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
            expression: `request.kind.kind != 'EgressGateway' || (${allowed(nsLabels)})`,
            messageExpression:
              `'EgressGateway ' + object.metadata.name + ' in namespace ' + request.namespace + ' makes egress gateways, ` +
              `but the namespace is not labelled ${EGRESS_ALLOWED_LABEL}=true: ${fix}'`,
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
