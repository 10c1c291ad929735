/**
 * Kubernetes-style status conditions (`status.conditions` of a Pod, Node or IPPool), the one helper for
 * every writer: the agent's fabric, the controller, the lab's scheduler and kubelet. Each writer owns
 * the condition types it writes and keeps every condition another writer owns. Pure.
 */

/** The status of a condition, in Kubernetes' words. */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** One condition as written into a status. */
export interface StatusCondition {
  type: string;
  status: ConditionStatus;
  /** A CamelCase word for programs (`Unschedulable`, an EC2 error code). */
  reason?: string;
  /** A sentence for people. */
  message?: string;
  /** When `status` last changed (RFC 3339). */
  lastTransitionTime?: string;
  /** Pods: when the condition was last probed (`null` as the Kubernetes API writes it). */
  lastProbeTime?: string | null;
  /** Nodes: when the writer last said it was alive. */
  lastHeartbeatTime?: string;
}

/**
 * The conditions of a status object, as a list. Anything that is not a list of objects with a string
 * `type` reads as no condition: stored statuses are another writer's data and are not trusted.
 */
export function conditionsOf(status: unknown): StatusCondition[] {
  const list = typeof status === 'object' && status !== null ? (status as { conditions?: unknown }).conditions : undefined;
  return Array.isArray(list) ? list.filter((c): c is StatusCondition => typeof c === 'object' && c !== null && typeof (c as { type?: unknown }).type === 'string') : [];
}

/** The condition of that type in a status object, if any. */
export function findCondition(status: unknown, type: string): StatusCondition | undefined {
  return conditionsOf(status).find((c) => c.type === type);
}

/**
 * The list with `next` in place of the condition of its type (appended when new; the others untouched
 * and in their order). `lastTransitionTime` moves to `now` only when the status changes (Kubernetes'
 * convention), so it says how long the current state has lasted.
 *
 * Returns undefined when nothing would change (same status, reason and message), so that callers write
 * only differences and a level-triggered loop settles; `alwaysWrite` (heartbeats, probe times) forces a
 * new list.
 */
export function withCondition(existing: readonly StatusCondition[], next: Omit<StatusCondition, 'lastTransitionTime'>, now: string, alwaysWrite = false): StatusCondition[] | undefined {
  const prev = existing.find((c) => c.type === next.type);
  const sameStatus = prev !== undefined && prev.status === next.status;
  const same = sameStatus && (prev.reason ?? '') === (next.reason ?? '') && (prev.message ?? '') === (next.message ?? '');
  if (same && !alwaysWrite) return undefined;
  const merged: StatusCondition = { ...next, lastTransitionTime: sameStatus ? (prev.lastTransitionTime ?? now) : now };
  return prev === undefined ? [...existing, merged] : existing.map((c) => (c.type === next.type ? merged : c));
}
