/**
 * What the fabric writes back to the datastore, and only that:
 *
 * - on each Pod with AWS-backed addresses, the condition `EgwAwsReady` in `status.conditions`
 *   (`True` when every address is on an attached ENI with its Elastic IP and routed on the node; else
 *   `False` with `reason` = the waiting reason or EC2's error code, and a message);
 * - on the Node, `status.capacity` and `status.allocatable` of `projectcalico.org/aws-secondary-ipv4`
 *   and the condition `EgwAwsFabricReady` (node-level failures: IMDS, DescribeInstanceTypes, reads).
 *
 * Writes are read-modify-write with the revision read (compare-and-swap), touch only these entries, keep
 * everything else another writer put there, and happen only when something changed.
 */
import { AWS_SECONDARY_IPV4_RESOURCE, EGW_AWS_READY_CONDITION } from '../../api/annotations.js';
import type { Datastore, JsonObject, ResourceKey } from '../../datastore/contract.js';
import { conditionsOf, withCondition, type StatusCondition } from '../../platform/conditions.js';
import { isEgwError } from '../../platform/errors.js';

/** The Pod condition type the fabric owns. */
export const POD_AWS_CONDITION = EGW_AWS_READY_CONDITION;
/** The Node condition type the fabric owns. */
export const NODE_AWS_CONDITION = 'EgwAwsFabricReady';

/** A condition the fabric writes: always with a reason and a message (the helper is platform/conditions.ts). */
export type Condition = StatusCondition & { reason: string; message: string };

const MAX_TRIES = 8;

/**
 * Read-modify-write of one resource's status: `change(status)` returns the new status, or undefined for
 * "nothing to write". Missing resource: nothing. Conflicts are retried from a fresh read.
 * Returns true when it wrote.
 */
export async function updateStatus(store: Datastore, key: ResourceKey, change: (status: Record<string, unknown>) => Record<string, unknown> | undefined): Promise<boolean> {
  for (let i = 0; ; i++) {
    const stored = await store.get(key);
    if (stored === undefined) return false;
    const value = stored.value as Record<string, unknown>;
    const status = (typeof value['status'] === 'object' && value['status'] !== null ? value['status'] : {}) as Record<string, unknown>;
    const next = change(status);
    if (next === undefined) return false;
    try {
      await store.commit([{ op: 'update', key, value: { ...value, status: next } as JsonObject, expectedRevision: stored.modRevision }]);
      return true;
    } catch (err) {
      if (isEgwError(err, 'Conflict', 'NotFound') && i < MAX_TRIES) continue;
      throw err;
    }
  }
}

/** Sets the Pod condition {@link POD_AWS_CONDITION}. Returns true when it wrote. */
export async function writePodCondition(store: Datastore, namespace: string, name: string, condition: Omit<Condition, 'type' | 'lastTransitionTime'>, now: string): Promise<boolean> {
  return updateStatus(store, { kind: 'Pod', namespace, name }, (status) => {
    const conditions = withCondition(conditionsOf(status), { type: POD_AWS_CONDITION, ...condition }, now);
    return conditions === undefined ? undefined : { ...status, conditions };
  });
}

/**
 * Sets the Node's `projectcalico.org/aws-secondary-ipv4` capacity and allocatable (as Kubernetes
 * quantities: decimal strings) and its {@link NODE_AWS_CONDITION}. Returns true when it wrote.
 */
export async function writeNodeFabricStatus(
  store: Datastore,
  node: string,
  figures: { capacity: number; allocatable: number },
  condition: Omit<Condition, 'type' | 'lastTransitionTime'>,
  now: string,
): Promise<boolean> {
  return updateStatus(store, { kind: 'Node', name: node }, (status) => {
    const capacity = { ...((status['capacity'] as Record<string, unknown> | undefined) ?? {}) };
    const allocatable = { ...((status['allocatable'] as Record<string, unknown> | undefined) ?? {}) };
    const c = String(figures.capacity);
    const a = String(figures.allocatable);
    const sameFigures = String(capacity[AWS_SECONDARY_IPV4_RESOURCE]) === c && String(allocatable[AWS_SECONDARY_IPV4_RESOURCE]) === a;
    const conditions = withCondition(conditionsOf(status), { type: NODE_AWS_CONDITION, ...condition }, now);
    if (sameFigures && conditions === undefined) return undefined;
    capacity[AWS_SECONDARY_IPV4_RESOURCE] = c;
    allocatable[AWS_SECONDARY_IPV4_RESOURCE] = a;
    return { ...status, capacity, allocatable, ...(conditions === undefined ? {} : { conditions }) };
  });
}
