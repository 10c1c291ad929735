/**
 * What the lab kubelet posts about its node on a Kubernetes API server, as a kubelet does (pure):
 * the Node it registers when none exists, the status it keeps on every heartbeat (its own capacity
 * keys, addresses and `Ready`, every other key — such as the agent's `projectcalico.org/aws-secondary-ipv4`
 * — left as it is), and its `kube-node-lease` Lease (the heartbeat the node lifecycle controller reads).
 */
import type { JsonObject } from '../../datastore/contract.js';
import { conditionsOf, withCondition } from '../../platform/conditions.js';

type Json = Record<string, unknown>;

const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});

/** The Node condition the kubelet posts. */
export const NODE_READY = { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' } as const;

/** Where kubelets keep their Leases. */
export const NODE_LEASE_NAMESPACE = 'kube-node-lease';

/** A kubelet's Lease duration (Kubernetes' default, `--node-lease-duration-seconds`… the kubelet's 40 s). */
export const NODE_LEASE_SECONDS = 40;

/**
 * The status a heartbeat writes: `current` with the kubelet's capacity and allocatable keys (from the
 * registration's status) and its addresses set, and `Ready` with a fresh `lastHeartbeatTime`.
 */
export function heartbeatStatus(current: unknown, registration: JsonObject | undefined, now: string): Json {
  const status = obj(current);
  const own = obj(registration?.['status']);
  const merged: Json = { ...status };
  for (const field of ['capacity', 'allocatable'] as const) {
    const mine = obj(own[field]);
    if (Object.keys(mine).length > 0) merged[field] = { ...obj(status[field]), ...mine };
  }
  if (Array.isArray(own['addresses'])) merged['addresses'] = own['addresses'];
  if (own['nodeInfo'] !== undefined) merged['nodeInfo'] = own['nodeInfo'];
  const conditions = withCondition(conditionsOf(status), { ...NODE_READY, lastHeartbeatTime: now }, now, true) ?? conditionsOf(status);
  merged['conditions'] = conditions;
  return merged;
}

/** The Node to create when none exists: the registration with `Ready` posted. */
export function registeredNode(registration: JsonObject, now: string): JsonObject {
  return { ...registration, status: heartbeatStatus(undefined, registration, now) } as JsonObject;
}

/** The node's Lease after a renewal (a new one when `current` is undefined). */
export function renewedLease(node: string, current: JsonObject | undefined, nowMicros: string): JsonObject {
  const meta = obj(current?.['metadata']);
  const { resourceVersion: _rv, ...keptMeta } = meta;
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { ...keptMeta, name: node, namespace: NODE_LEASE_NAMESPACE },
    spec: { ...obj(current?.['spec']), holderIdentity: node, leaseDurationSeconds: NODE_LEASE_SECONDS, renewTime: nowMicros },
  };
}

/** Kubernetes' MicroTime format (`2026-12-08T01:02:03.456000Z`), which a Lease's renewTime must use. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
