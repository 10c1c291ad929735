/**
 * Kubernetes-style conditions in a status object (`status.conditions`), replaced by type, keeping every
 * condition another writer owns. Pure.
 */

/** One condition as written into a Pod or Node status. */
export interface StatusCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastProbeTime?: string | null;
  lastHeartbeatTime?: string;
}

/** The conditions of a status, as a list (anything else reads as none). */
export function conditionsOf(status: unknown): StatusCondition[] {
  const list = typeof status === 'object' && status !== null ? (status as { conditions?: unknown }).conditions : undefined;
  return Array.isArray(list) ? list.filter((c): c is StatusCondition => typeof c === 'object' && c !== null && typeof (c as { type?: unknown }).type === 'string') : [];
}

/** The condition of that type, if any. */
export function findCondition(status: unknown, type: string): StatusCondition | undefined {
  return conditionsOf(status).find((c) => c.type === type);
}

/**
 * The list with `next` in place of the condition of its type (appended when new). `lastTransitionTime`
 * moves to `now` only when the status changes (Kubernetes' convention). Returns undefined when nothing
 * would change, so that callers write only differences; `alwaysWrite` (heartbeats) forces a new list.
 */
export function withCondition(existing: readonly StatusCondition[], next: Omit<StatusCondition, 'lastTransitionTime'>, now: string, alwaysWrite = false): StatusCondition[] | undefined {
  const prev = existing.find((c) => c.type === next.type);
  const same = prev !== undefined && prev.status === next.status && (prev.reason ?? '') === (next.reason ?? '') && (prev.message ?? '') === (next.message ?? '');
  if (same && !alwaysWrite) return undefined;
  const merged: StatusCondition = { ...next, lastTransitionTime: prev !== undefined && prev.status === next.status ? (prev.lastTransitionTime ?? now) : now };
  return prev === undefined ? [...existing, merged] : existing.map((c) => (c.type === next.type ? merged : c));
}
