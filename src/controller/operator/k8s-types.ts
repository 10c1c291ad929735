/**
 * The Kubernetes shapes the operator renders (`apps/v1` Deployment, its pod template, containers), as
 * plain JSON-compatible TypeScript types. Only the fields the operator sets are typed; what the user
 * passes through (affinity terms, tolerations, topology spread constraints) keeps its API shape.
 */
import type { EgressGatewaySpec } from '../../api/index.js';

type TemplatePodSpec = NonNullable<NonNullable<EgressGatewaySpec['template']>['spec']>;

/** A container environment variable: a literal value or a downward-API field reference. */
export type EnvVar = { name: string; value: string } | { name: string; valueFrom: { fieldRef: { fieldPath: string } } };

/** `resources` of a container: quantities by resource name. */
export interface ResourceRequirements {
  requests?: Record<string, number | string>;
  limits?: Record<string, number | string>;
}

/** An HTTP GET probe (the only kind the gateway has) with Kubernetes' timing fields. */
export interface HttpProbe {
  httpGet: { path: string; port: number; scheme?: 'HTTP' | 'HTTPS' };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

/** A container security context, as the operator renders it. */
export interface SecurityContext {
  allowPrivilegeEscalation: boolean;
  capabilities: { add?: string[]; drop: string[] };
  privileged: boolean;
  runAsGroup: number;
  runAsNonRoot: boolean;
  runAsUser: number;
  seccompProfile: { type: 'RuntimeDefault' };
}

/** A container of the gateway pod. */
export interface Container {
  name: string;
  image: string;
  command: string[];
  env: EnvVar[];
  resources?: ResourceRequirements;
  ports?: { name: string; containerPort: number; protocol: 'TCP' }[];
  readinessProbe?: HttpProbe;
  securityContext: SecurityContext;
}

/** The pod spec of the gateway template. */
export interface GatewayPodSpec {
  /** Set only where gateways reach the datastore through the API server (Kubernetes); absent in the lab. */
  serviceAccountName?: string;
  initContainers: Container[];
  containers: Container[];
  nodeSelector?: Record<string, string>;
  affinity?: NonNullable<TemplatePodSpec['affinity']>;
  tolerations?: NonNullable<TemplatePodSpec['tolerations']>;
  topologySpreadConstraints?: NonNullable<TemplatePodSpec['topologySpreadConstraints']>;
  terminationGracePeriodSeconds?: number;
  priorityClassName?: string;
}

/** The pod template of the Deployment. */
export interface PodTemplateSpec {
  metadata: { labels: Record<string, string>; annotations: Record<string, string> };
  spec: GatewayPodSpec;
}

/** An owner reference (the Deployment is owned by its EgressGateway, pods by the EgressGateway here). */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

/** An `apps/v1` Deployment as the operator renders it (no API-server defaults filled in). */
export interface Deployment {
  apiVersion: 'apps/v1';
  kind: 'Deployment';
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: PodTemplateSpec;
  };
}
