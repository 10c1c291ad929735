/**
 * The rollout decision of a Deployment with the default RollingUpdate strategy (maxSurge 25 % rounded up,
 * maxUnavailable 25 % rounded down), taken from the current pods alone. Pure: the same pods give the same
 * plan, so the reconciler can stop at any point and the next pass carries on.
 */
import { compareForScaleDown, type PodFacts } from './pods.js';

/** What to do now to move the pods towards `replicas` pods of the current template. */
export interface RolloutPlan {
  /** How many new pods (of the current template) to create. */
  create: number;
  /** Names of the pods to delete, in the order chosen. */
  remove: string[];
  /** True when, once this plan is carried out, the pods are exactly `replicas` pods of the current template. */
  complete: boolean;
}

/** Kubernetes' fence posts for 25 %/25 %: at least one of the two is non-zero. */
export function rollingLimits(replicas: number): { maxSurge: number; maxUnavailable: number } {
  const maxSurge = Math.ceil(replicas * 0.25);
  let maxUnavailable = Math.floor(replicas * 0.25);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable };
}

/**
 * Plans one step for `active` pods (not terminating, not ended) towards `replicas` pods with hash `hash`:
 * - surplus pods of the current template go first (ReplicaSet order: unscheduled, not ready, newest);
 * - with no pods of an older template, missing pods are created at once (scaling is not a rollout);
 * - otherwise it is a rolling update: create new pods while the total stays within replicas + maxSurge,
 *   delete old pods that are not ready within the budget of pods that may be missing, then old ready
 *   pods while at least replicas − maxUnavailable pods stay ready. For 1 to 3 replicas maxUnavailable is
 *   0, so an old pod goes only once a new one is ready; the pods are never all replaced at once.
 */
export function planRollout(replicas: number, hash: string, active: readonly PodFacts[]): RolloutPlan {
  const R = Math.max(0, replicas);
  const ranked = [...active].sort(compareForScaleDown);
  const current = ranked.filter((p) => p.hash === hash);
  const old = ranked.filter((p) => p.hash !== hash);
  const remove: string[] = [];

  let keptCurrent = current;
  if (current.length > R) {
    const surplus = current.length - R;
    remove.push(...current.slice(0, surplus).map((p) => p.name));
    keptCurrent = current.slice(surplus);
  }

  if (old.length === 0) {
    return { create: R - keptCurrent.length, remove, complete: true };
  }

  const { maxSurge, maxUnavailable } = rollingLimits(R);
  const total = keptCurrent.length + old.length;
  const create = Math.max(0, Math.min(R + maxSurge - total, R - keptCurrent.length));
  const newCount = keptCurrent.length + create;
  const newUnavailable = keptCurrent.filter((p) => !p.ready).length + create;
  const minAvailable = R - maxUnavailable;
  const maxScaledDown = newCount + old.length - minAvailable - newUnavailable;

  const oldRemoved = new Set<string>();
  if (maxScaledDown > 0) {
    // Old pods that are not ready cost no availability: they go first, within the budget.
    for (const p of old) {
      if (oldRemoved.size >= maxScaledDown) break;
      if (!p.ready) oldRemoved.add(p.name);
    }
    const available = keptCurrent.filter((p) => p.ready).length + old.filter((p) => p.ready).length;
    let budget = available - minAvailable;
    for (const p of old) {
      if (budget <= 0) break;
      if (p.ready && !oldRemoved.has(p.name)) {
        oldRemoved.add(p.name);
        budget -= 1;
      }
    }
  }
  remove.push(...old.filter((p) => oldRemoved.has(p.name)).map((p) => p.name));
  const complete = oldRemoved.size === old.length && newCount === R;
  return { create, remove, complete };
}
