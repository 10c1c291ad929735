/**
 * A lab snapshot shaped like the reference scenario after `up`: four nodes, red gateways with Elastic
 * IPs on node-a1 and node-b1, blue gateways on node-a2 and node-b2, the policy, the annotation namespace.
 */
import type { EgressGateway, EgressGatewayPolicy, FelixConfiguration, IPPool, Namespace, Node, Pod } from '../../src/api/index.js';
import type { NodeStatus } from '../../src/agent/records.js';
import type { LabSnapshot, SimView } from '../../src/lab/snapshot.js';

export function node(name: string, ip: string, zone: string, capacity?: number, ready = true): Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'topology.kubernetes.io/zone': zone, 'kubernetes.io/hostname': name } },
    status: {
      addresses: [{ type: 'InternalIP', address: ip }],
      ...(capacity === undefined ? {} : { capacity: { 'projectcalico.org/aws-secondary-ipv4': String(capacity) } }),
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    } as NonNullable<Node['status']>,
  };
}

export interface PodOpts {
  node?: string;
  ip?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  owner?: string;
  ready?: boolean;
  aws?: 'True' | 'False';
  phase?: 'Pending' | 'Running';
  uid?: string;
}

export function pod(namespace: string, name: string, o: PodOpts = {}): Pod {
  const conditions: { type: string; status: string }[] = [];
  if (o.ready !== undefined) conditions.push({ type: 'Ready', status: o.ready ? 'True' : 'False' });
  if (o.aws !== undefined) conditions.push({ type: 'EgwAwsReady', status: o.aws });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      uid: o.uid ?? `uid-${name}`,
      ...(o.labels === undefined ? {} : { labels: o.labels }),
      ...(o.annotations === undefined ? {} : { annotations: o.annotations }),
      ...(o.owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: o.owner, uid: 'u', controller: true }] }),
    },
    spec: {
      ...(o.node === undefined ? {} : { nodeName: o.node }),
      containers: [
        o.owner === undefined
          ? { name: 'main' }
          : { name: 'egress-gateway', ports: [{ name: 'health', containerPort: 8080 }], resources: { requests: { 'projectcalico.org/aws-secondary-ipv4': '1' }, limits: { 'projectcalico.org/aws-secondary-ipv4': '1' } } },
      ],
    },
    status: { phase: o.phase ?? (o.ip === undefined ? 'Pending' : 'Running'), ...(o.ip === undefined ? {} : { podIP: o.ip }), conditions } as NonNullable<Pod['status']>,
  };
}

export function gw(name: string, code: 'red' | 'blue', node: string, ip: string, o: PodOpts = {}): Pod {
  return pod('calico-egress', name, {
    node,
    ip,
    labels: { 'egress-code': code },
    owner: `egress-gateway-${code}`,
    ready: true,
    aws: 'True',
    ...(code === 'red' ? { annotations: { 'cni.projectcalico.org/awsElasticIPs': '["203.0.113.7","203.0.113.8"]' } } : {}),
    ...o,
  });
}

export function ns(name: string, annotations?: Record<string, string>): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: {}, ...(annotations === undefined ? {} : { annotations }) } };
}

export function pool(name: string, cidr: string, natOutgoing = false): IPPool {
  return { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr, natOutgoing } };
}

export function egressGateway(code: 'red' | 'blue', replicas: number): EgressGateway {
  return { apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', metadata: { name: `egress-gateway-${code}`, namespace: 'calico-egress' }, spec: { replicas, ipPools: [{ name: `egress-${code}-west-1` }] } };
}

export const POLICY: EgressGatewayPolicy = {
  apiVersion: 'projectcalico.org/v3',
  kind: 'EgressGatewayPolicy',
  metadata: { name: 'egw-policy1' },
  spec: {
    rules: [
      { destination: { cidr: '100.64.0.0/16' }, description: 'Local: no gateway' },
      { destination: { cidr: '198.18.0.0/16' }, gateway: { namespaceSelector: "projectcalico.org/name == 'calico-egress'", selector: "egress-code == 'blue'" } },
      { gateway: { namespaceSelector: "projectcalico.org/name == 'calico-egress'", selector: "egress-code == 'red'" } },
    ],
  },
};

export const FELIX: FelixConfiguration = {
  apiVersion: 'projectcalico.org/v3',
  kind: 'FelixConfiguration',
  metadata: { name: 'default' },
  spec: { egressIPSupport: 'EnabledPerNamespaceOrPerPod', awsSecondaryIPSupport: 'EnabledENIPerWorkload' },
};

export const SERVERS = [
  { name: 'internet', ip: '198.51.100.10', network: 'internet' as const },
  { name: 'onprem', ip: '198.18.0.10', network: 'onprem' as const },
  { name: 'local', ip: '100.64.32.20', network: 'vpc' as const },
];

export function sim(associations: Record<string, string>): SimView {
  return {
    enis: [],
    addresses: Object.entries(associations).map(([privateIp, publicIp], i) => ({
      allocationId: `eipalloc-000000000000000${i}`,
      publicIp,
      association: { associationId: `eipassoc-${i}`, networkInterfaceId: `eni-${i}`, privateIp },
    })),
  };
}

/** The reference scenario, converged. */
export function referenceSnapshot(over: Partial<LabSnapshot> = {}): LabSnapshot {
  return {
    pods: [
      gw('red-1', 'red', 'node-a1', '100.64.0.5'),
      gw('red-2', 'red', 'node-b1', '100.64.4.5'),
      gw('blue-1', 'blue', 'node-a2', '100.64.0.9'),
      gw('blue-2', 'blue', 'node-b2', '100.64.4.9'),
      pod('my-namespace', 'my-netcat-pod', { node: 'node-b2', ip: '10.48.0.5' }),
      pod('app-red', 'red-app', { node: 'node-a2', ip: '10.48.0.70' }),
    ],
    namespaces: [
      ns('calico-egress'),
      ns('my-namespace', { 'egress.projectcalico.org/egressGatewayPolicy': 'egw-policy1' }),
      ns('app-red', { 'egress.projectcalico.org/selector': "egress-code == 'red'", 'egress.projectcalico.org/namespaceSelector': "projectcalico.org/name == 'calico-egress'" }),
    ],
    nodes: [node('node-a1', '100.64.16.10', 'us-west-2a', 2), node('node-a2', '100.64.16.11', 'us-west-2a', 2), node('node-b1', '100.64.20.10', 'us-west-2b', 2), node('node-b2', '100.64.20.11', 'us-west-2b', 2)],
    policies: [POLICY],
    felix: [FELIX],
    pools: [pool('default-ipv4-ippool', '10.48.0.0/16', true), pool('egress-red-west-1', '100.64.0.4/30'), pool('egress-red-west-2', '100.64.4.4/30'), pool('egress-blue-west-1', '100.64.0.8/30'), pool('egress-blue-west-2', '100.64.4.8/30')],
    gateways: [egressGateway('red', 2), egressGateway('blue', 2)],
    nodeStatus: [] as NodeStatus[],
    nextHops: [],
    sim: sim({ '100.64.0.5': '203.0.113.7', '100.64.4.5': '203.0.113.8' }),
    ...over,
  };
}
