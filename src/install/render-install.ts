/**
 * `egw render install`: everything a cluster needs, in the order `kubectl apply` must create it — the
 * namespace, the CRDs (Calico's and the operator's kinds, egw's own records), one ServiceAccount and
 * least-privilege ClusterRole per program, the CNI token, the agent DaemonSet, the controller Deployment,
 * the admission policy, and optionally the `default` FelixConfiguration for one of the two AWS modes.
 * Pure: options in, objects out. docs/kubernetes.md explains each object.
 */
import { apiCrds, recordCrd } from '../api/crd.js';
import type { KubeObject } from './objects.js';
import { egwLabels } from './objects.js';
import { admissionPolicyObjects } from './admission-policy.js';
import { defaultResourceMap } from '../datastore/kubernetes/resource-map.js';
import { rbacObjects } from './rbac.js';
import { agentObjects, controllerObjects } from './workloads.js';

/** The namespace egw's programs run in by default. */
export const EGW_NAMESPACE = 'egw-system';

/** FelixConfiguration `awsSecondaryIPSupport` for the two AWS modes (the reference's names). */
export type AwsMode = 'secondary-ip' | 'eni-per-workload' | 'none';
const AWS_MODE_SETTING: Record<Exclude<AwsMode, 'none'>, string> = {
  'secondary-ip': 'Enabled',
  'eni-per-workload': 'EnabledENIPerWorkload',
};

export interface InstallOptions {
  namespace?: string;
  /** egw's image for every container (default ghcr.io/egw-project/egw:<egw version>, passed in by the CLI). */
  image: string;
  /** When not `none`, also the `default` FelixConfiguration with egress IPs and that AWS mode enabled. */
  awsMode?: AwsMode;
  awsRegion?: string;
  awsCluster?: string;
  podGateway?: string;
}

/** All objects, in apply order. */
export function renderInstall(o: InstallOptions): KubeObject[] {
  const namespace = o.namespace ?? EGW_NAMESPACE;
  const workload = {
    namespace,
    image: o.image,
    awsCluster: o.awsCluster ?? 'egw',
    awsRegion: o.awsRegion,
    podGateway: o.podGateway ?? '169.254.1.1',
  };
  const map = defaultResourceMap();
  const recordCrds = [...map.values()]
    .filter((info) => info.mode === 'record')
    .map((info) => recordCrd({ group: info.group, version: info.version, kind: info.kind, plural: info.plural, namespaced: info.namespaced, description: info.description }));
  const objects: KubeObject[] = [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      // The agent runs privileged on the host network: its namespace cannot be under a restricted Pod Security level.
      metadata: { name: namespace, labels: { ...egwLabels(), 'pod-security.kubernetes.io/enforce': 'privileged' } },
    },
    ...([...apiCrds(), ...recordCrds] as unknown as KubeObject[]),
    ...rbacObjects(namespace, map),
    ...agentObjects(workload),
    ...controllerObjects(workload),
    ...admissionPolicyObjects(namespace),
  ];
  if (o.awsMode !== undefined && o.awsMode !== 'none') {
    objects.push({
      apiVersion: 'projectcalico.org/v3',
      kind: 'FelixConfiguration',
      metadata: { name: 'default' },
      spec: { egressIPSupport: 'EnabledPerNamespaceOrPerPod', awsSecondaryIPSupport: AWS_MODE_SETTING[o.awsMode] },
    });
  }
  return objects;
}
