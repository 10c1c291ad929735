/**
 * Builders for the scheduler tests: Node and Pod records as the lab stores them (raw JSON, read through
 * the scheduler's own parsers), and the reference document's gateway pods as the operator renders them.
 */
import type { EgressGateway } from '../../../src/api/index.js';
import { newGatewayPod, ownerReferenceTo, renderPodTemplate, templateHash } from '../../../src/controller/operator/index.js';
import type { SchedNode, SchedPod } from '../../../src/lab/scheduler/model.js';
import { parseSchedNode, parseSchedPod } from '../../../src/lab/scheduler/model.js';
import type { Snapshot } from '../../../src/lab/scheduler/schedule.js';
import { referenceRed } from '../../controller/operator/helpers.js';

export const AWS = 'projectcalico.org/aws-secondary-ipv4';
export const ZONE = 'topology.kubernetes.io/zone';
export const NOW = Date.parse('2024-05-01T12:00:00.000Z');

export interface NodeOptions {
  zone?: string;
  labels?: Record<string, string>;
  allocatable?: Record<string, string | number>;
  taints?: { key: string; value?: string; effect: string }[];
  unschedulable?: boolean;
  /** Ready condition: 'True' (default, fresh heartbeat), 'False', 'Unknown', 'stale' (True, 5 min old), 'none'. */
  ready?: 'True' | 'False' | 'Unknown' | 'stale' | 'none';
}

/** A Node record: a t3.large in ENI-per-workload mode by default (2 aws-secondary-ipv4), Linux, ready. */
export function nodeRecord(name: string, o: NodeOptions = {}): Record<string, unknown> {
  const ready = o.ready ?? 'True';
  const heartbeat = new Date(ready === 'stale' ? NOW - 300_000 : NOW - 5_000).toISOString();
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', ...(o.zone === undefined ? {} : { [ZONE]: o.zone }), ...o.labels },
    },
    spec: { ...(o.taints === undefined ? {} : { taints: o.taints }), ...(o.unschedulable === true ? { unschedulable: true } : {}) },
    status: {
      allocatable: o.allocatable ?? { [AWS]: '2' },
      ...(ready === 'none' ? {} : { conditions: [{ type: 'Ready', status: ready === 'stale' ? 'True' : ready, lastHeartbeatTime: heartbeat, lastTransitionTime: heartbeat }] }),
    },
  };
}

export function node(name: string, o: NodeOptions = {}): SchedNode {
  return parseSchedNode(nodeRecord(name, o))!;
}

export interface PodOptions {
  namespace?: string;
  labels?: Record<string, string>;
  nodeName?: string;
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
  initRequests?: Record<string, string | number>;
  nodeSelector?: Record<string, string>;
  affinity?: Record<string, unknown>;
  tolerations?: Record<string, unknown>[];
  spread?: Record<string, unknown>[];
  terminating?: boolean;
  phase?: string;
  priority?: number;
  created?: number;
  schedulerName?: string;
}

let seq = 0;

/** A Pod record. */
export function podRecord(name: string, o: PodOptions = {}): Record<string, unknown> {
  seq += 1;
  const resources = o.requests === undefined && o.limits === undefined ? {} : { resources: { ...(o.requests === undefined ? {} : { requests: o.requests }), ...(o.limits === undefined ? {} : { limits: o.limits }) } };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: o.namespace ?? 'default',
      uid: `uid-${name}`,
      labels: o.labels ?? {},
      creationTimestamp: new Date(o.created ?? NOW - 60_000 + seq).toISOString(),
      ...(o.terminating === true ? { deletionTimestamp: new Date(NOW).toISOString() } : {}),
    },
    spec: {
      containers: [{ name: 'main', ...resources }],
      ...(o.initRequests === undefined ? {} : { initContainers: [{ name: 'init', resources: { requests: o.initRequests } }] }),
      ...(o.nodeName === undefined ? {} : { nodeName: o.nodeName }),
      ...(o.nodeSelector === undefined ? {} : { nodeSelector: o.nodeSelector }),
      ...(o.affinity === undefined ? {} : { affinity: o.affinity }),
      ...(o.tolerations === undefined ? {} : { tolerations: o.tolerations }),
      ...(o.spread === undefined ? {} : { topologySpreadConstraints: o.spread }),
      ...(o.priority === undefined ? {} : { priority: o.priority }),
      ...(o.schedulerName === undefined ? {} : { schedulerName: o.schedulerName }),
    },
    status: { phase: o.phase ?? (o.nodeName === undefined ? 'Pending' : 'Running') },
  };
}

export function pod(name: string, o: PodOptions = {}): SchedPod {
  return parseSchedPod(podRecord(name, o), 1)!;
}

/** A gateway of the reference's `egress-gateway-red`, exactly as the operator writes it (pending unless bound). */
export function redGateway(suffix: string, nodeName?: string, egw: EgressGateway = referenceRed()): SchedPod {
  const stored = { ...egw, metadata: { ...egw.metadata, uid: 'uid-red' } };
  const template = renderPodTemplate(stored);
  const hash = templateHash(template);
  const record = newGatewayPod({ template, hash, namespace: 'calico-egress', owner: ownerReferenceTo(stored), suffix, uid: `uid-${suffix}`, now: new Date(NOW - 30_000).toISOString() });
  const value = nodeName === undefined ? record : { ...record, spec: { ...record.spec, nodeName }, status: { phase: 'Running' } };
  return parseSchedPod(value, 1)!;
}

/** The reference cluster: two zones, two t3.large nodes each (ENI mode: 2 aws-secondary-ipv4 each). */
export function referenceNodes(): SchedNode[] {
  return [node('node-a1', { zone: 'us-west-2a' }), node('node-a2', { zone: 'us-west-2a' }), node('node-b1', { zone: 'us-west-2b' }), node('node-b2', { zone: 'us-west-2b' })];
}

export function snapshot(nodes: SchedNode[], pods: SchedPod[], namespaces: [string, Record<string, string>][] = []): Snapshot {
  return { nodes, pods, namespaces: new Map(namespaces) };
}
