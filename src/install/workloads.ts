/**
 * The workloads of an egw installation: the agent DaemonSet (one per node, host network, installs the
 * `egw-ipam` CNI plugin and its configuration on the node) and the controller Deployment (two replicas,
 * one leading). Pure.
 */
import { egwLabels, type KubeObject } from './objects.js';

/** Where install-cni puts things on the node (the CNI defaults every runtime uses). */
export const HOST_CNI_BIN_DIR = '/opt/cni/bin';
export const HOST_CNI_NET_DIR = '/etc/cni/net.d';
/** Where install-cni puts the Node runtime and egw's files that `egw-ipam` runs from. */
export const HOST_EGW_DIR = '/opt/egw';
/** The Secret holding the CNI plugin's service-account token (the plugin runs on the host, outside any pod). */
export const CNI_TOKEN_SECRET = 'egw-cni-token';
/** The agent's metrics and liveness port (host network). */
export const AGENT_METRICS_PORT = 9099;
/** The controller's admission webhook: its container port, and the Service the API server calls (port 443). */
export const WEBHOOK_PORT = 9443;
export const WEBHOOK_SERVICE = 'egw-webhook';

export interface WorkloadOptions {
  namespace: string;
  image: string;
  /** Cluster name in the tags of the ENIs agents create. */
  awsCluster: string;
  /** AWS region for the controller's subnet facts and the agents' EC2 calls; unset: from IMDS. */
  awsRegion?: string | undefined;
  /** Pods' on-link gateway in the CNI configuration (Calico's 169.254.1.1 by default). */
  podGateway: string;
}

function volume(name: string, path: string, type: string): Record<string, unknown> {
  return { name, hostPath: { path, type } };
}

/** The agent DaemonSet and the CNI token Secret. */
export function agentObjects(o: WorkloadOptions): KubeObject[] {
  const labels = { 'app.kubernetes.io/name': 'egw-agent', ...egwLabels('agent') };
  const nodeName = { name: 'NODENAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } };
  const region = o.awsRegion === undefined ? [] : [{ name: 'AWS_REGION', value: o.awsRegion }];
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/service-account-token',
      metadata: { name: CNI_TOKEN_SECRET, namespace: o.namespace, labels: egwLabels('cni'), annotations: { 'kubernetes.io/service-account.name': 'egw-cni' } },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'egw-agent', namespace: o.namespace, labels },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': 'egw-agent' } },
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'egw-agent',
            hostNetwork: true,
            dnsPolicy: 'ClusterFirstWithHostNet',
            priorityClassName: 'system-node-critical',
            // Every node: a client pod on a tainted node must still be routed (or dropped) by egw.
            tolerations: [{ operator: 'Exists' }],
            // Long enough for the agent to leave the data plane as it is (it never tears routing down on exit).
            terminationGracePeriodSeconds: 30,
            initContainers: [
              {
                name: 'install-cni',
                image: o.image,
                command: ['egw', 'install-cni', '--bin-dir', `/host${HOST_CNI_BIN_DIR}`, '--net-dir', `/host${HOST_CNI_NET_DIR}`,
                  '--egw-dir', `/host${HOST_EGW_DIR}`, '--host-egw-dir', HOST_EGW_DIR, '--host-net-dir', HOST_CNI_NET_DIR,
                  '--token-dir', '/var/run/egw-cni', '--pod-gateway', o.podGateway],
                env: [nodeName],
                securityContext: { privileged: false, runAsUser: 0 },
                volumeMounts: [
                  { name: 'cni-bin-dir', mountPath: `/host${HOST_CNI_BIN_DIR}` },
                  { name: 'cni-net-dir', mountPath: `/host${HOST_CNI_NET_DIR}` },
                  { name: 'egw-dir', mountPath: `/host${HOST_EGW_DIR}` },
                  { name: 'cni-token', mountPath: '/var/run/egw-cni', readOnly: true },
                ],
              },
            ],
            containers: [
              {
                name: 'agent',
                image: o.image,
                command: ['egw', 'agent', '--datastore', 'kubernetes', '--node', '$(NODENAME)', '--aws-cluster', o.awsCluster,
                  '--metrics-listen', `0.0.0.0:${AGENT_METRICS_PORT}`],
                env: [nodeName, ...region],
                // The agent programs the node's routes, rules, nexthops, VXLAN device, nftables and sysctls
                // (/proc/sys is read-only to unprivileged containers), as calico-node does.
                securityContext: { privileged: true },
                ports: [{ name: 'metrics', containerPort: AGENT_METRICS_PORT, protocol: 'TCP' }],
                livenessProbe: { httpGet: { path: '/metrics', port: AGENT_METRICS_PORT, host: '127.0.0.1' }, periodSeconds: 10, failureThreshold: 6 },
                resources: { requests: { cpu: '50m', memory: '128Mi' } },
                volumeMounts: [{ name: 'lib-modules', mountPath: '/lib/modules', readOnly: true }],
              },
            ],
            volumes: [
              volume('cni-bin-dir', HOST_CNI_BIN_DIR, 'DirectoryOrCreate'),
              volume('cni-net-dir', HOST_CNI_NET_DIR, 'DirectoryOrCreate'),
              volume('egw-dir', HOST_EGW_DIR, 'DirectoryOrCreate'),
              volume('lib-modules', '/lib/modules', 'Directory'),
              { name: 'cni-token', secret: { secretName: CNI_TOKEN_SECRET } },
            ],
          },
        },
      },
    },
  ];
}

/**
 * The controller Deployment: two replicas, one leads (a Lease), spread over nodes; every replica serves the
 * validating admission webhook behind the `egw-webhook` Service (the API server may call either).
 */
export function controllerObjects(o: WorkloadOptions): KubeObject[] {
  const labels = { 'app.kubernetes.io/name': 'egw-controller', ...egwLabels('controller') };
  const region = o.awsRegion === undefined ? [] : ['--aws-region', o.awsRegion];
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'egw-controller', namespace: o.namespace, labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'egw-controller' } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'egw-controller',
            priorityClassName: 'system-cluster-critical',
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'egw-controller' } } },
            ],
            containers: [
              {
                name: 'controller',
                image: o.image,
                command: ['egw', 'controller', '--datastore', 'kubernetes', '--gateway-image', o.image, ...region,
                  '--webhook-listen', `0.0.0.0:${WEBHOOK_PORT}`, '--webhook-service', `${o.namespace}/${WEBHOOK_SERVICE}`],
                env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
                ports: [{ name: 'webhook', containerPort: WEBHOOK_PORT, protocol: 'TCP' }],
                readinessProbe: { httpGet: { path: '/healthz', port: WEBHOOK_PORT, scheme: 'HTTPS' }, periodSeconds: 10 },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  runAsNonRoot: true,
                  runAsUser: 10001,
                  capabilities: { drop: ['ALL'] },
                  seccompProfile: { type: 'RuntimeDefault' },
                },
                resources: { requests: { cpu: '50m', memory: '128Mi' } },
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: WEBHOOK_SERVICE, namespace: o.namespace, labels },
      spec: {
        selector: { 'app.kubernetes.io/name': 'egw-controller' },
        ports: [{ name: 'webhook', port: 443, targetPort: WEBHOOK_PORT, protocol: 'TCP' }],
      },
    },
  ];
}
