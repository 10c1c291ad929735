import type { EgressGateway, EgressGatewayPolicy, EgressGatewayRule, FelixConfiguration, Namespace, Node, Pod } from '../../src/api/index.js';
import { EgressCalculator } from '../../src/calc/calculator.js';
import type { CalcResource, EgressCalcSnapshot, NodeEgressState } from '../../src/calc/types.js';

export interface PodOptions {
  node?: string;
  ip?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  ready?: 'True' | 'False';
  health?: boolean;
  uid?: string;
  hostNetwork?: boolean;
  deleting?: boolean;
  hostIP?: string;
  /** The controller owner reference (gateway pods: the EgressGateway {@link OWNER}). */
  owner?: { apiVersion: string; kind: string; name: string; uid?: string } | null;
}

/** A pod; Running with its IP by default. */
export function pod(namespace: string, name: string, o: PodOptions = {}): Pod {
  const status: Record<string, unknown> = { phase: o.phase ?? 'Running' };
  if (o.ip !== undefined) status['podIP'] = o.ip;
  if (o.hostIP !== undefined) status['hostIP'] = o.hostIP;
  if (o.ready !== undefined) status['conditions'] = [{ type: 'Ready', status: o.ready }];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      ...(o.labels === undefined ? {} : { labels: o.labels }),
      ...(o.annotations === undefined ? {} : { annotations: o.annotations }),
      ...(o.uid === undefined ? {} : { uid: o.uid }),
      ...(o.deleting === true ? { deletionTimestamp: '2024-01-01T00:00:00Z' } : {}),
      ...(o.owner === undefined || o.owner === null ? {} : { ownerReferences: [{ ...o.owner, controller: true }] }),
    },
    spec: {
      ...(o.node === undefined ? {} : { nodeName: o.node }),
      ...(o.hostNetwork === true ? { hostNetwork: true } : {}),
      containers: [{ name: 'main', ...(o.health === true ? { ports: [{ name: 'health', containerPort: 8080 }] } : {}) }],
    },
    status: status,
  };
}

/** The EgressGateway the {@link gateway} pods belong to (in their namespace): only such pods act as gateways. */
export const OWNER = 'gateways';

/** An EgressGateway (the owner gateway pods need; docs/security.md, 7). */
export function egressGateway(namespace: string, name = OWNER, uid?: string): EgressGateway {
  return { apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', metadata: { name, namespace, ...(uid === undefined ? {} : { uid }) }, spec: {} };
}

/**
 * A gateway pod (label egress-code=<code>, health port) in namespace `namespace`, owned by the
 * EgressGateway {@link OWNER} of its namespace (add `egressGateway(namespace)` to the resources).
 */
export function gateway(namespace: string, name: string, node: string, ip: string, code: string, o: PodOptions = {}): Pod {
  return pod(namespace, name, { node, ip, labels: { 'egress-code': code }, health: true, owner: { apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: OWNER }, ...o });
}

export function namespace(name: string, annotations?: Record<string, string>, labels?: Record<string, string>): Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, ...(labels === undefined ? {} : { labels }), ...(annotations === undefined ? {} : { annotations }) },
  };
}

export function node(name: string, ip: string | undefined): Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    ...(ip === undefined ? {} : { status: { addresses: [{ type: 'InternalIP', address: ip }] } }),
  };
}

export function policy(name: string, rules: EgressGatewayRule[]): EgressGatewayPolicy {
  return { apiVersion: 'projectcalico.org/v3', kind: 'EgressGatewayPolicy', metadata: { name }, spec: { rules } };
}

export function felix(egressIPSupport: 'Disabled' | 'EnabledPerNamespace' | 'EnabledPerNamespaceOrPerPod', extra: Record<string, unknown> = {}, name = 'default'): FelixConfiguration {
  return { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name }, spec: { egressIPSupport, ...extra } };
}

export const SEL = 'egress.projectcalico.org/selector';
export const NSSEL = 'egress.projectcalico.org/namespaceSelector';
export const POLICY = 'egress.projectcalico.org/egressGatewayPolicy';
export const MAXHOPS = 'egress.projectcalico.org/maxNextHops';

/** Three nodes in 10.1.0.0/24: n1 (the node under test), n2, n3. */
export const NODES = [node('n1', '10.1.0.1'), node('n2', '10.1.0.2'), node('n3', '10.1.0.3')];

/** Computes n1's state (or `nodeName`'s) from resources. */
export function compute(resources: CalcResource[], extra: Omit<EgressCalcSnapshot, 'nodeName' | 'resources'> = {}, nodeName = 'n1'): NodeEgressState {
  return new EgressCalculator(nodeName).load({ resources, ...extra }).result();
}

/** The routes of the table a client's rule points at, without the cluster throws. */
export function clientRoutes(state: NodeEgressState, ip: string): unknown[] {
  const table = state.tables.find((t) => t.clientIps.includes(ip));
  if (table === undefined) return [];
  const throws = new Set(state.clusterThrows);
  return table.routes.filter((r) => !(r.kind === 'throw' && throws.has(r.cidr)));
}
