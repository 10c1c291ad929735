/**
 * The EgressGateway status the operator writes: `state` plus Kubernetes-style conditions (Ready,
 * Progressing, Degraded) with the operator's reasons and messages, and Deployment-style replica counts.
 * Pure: the same inputs give the same status, and an unchanged situation keeps every transition time.
 */

/** The condition types, in the order they are written. */
export const CONDITION_TYPES = ['Ready', 'Progressing', 'Degraded'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

/** Reason and message the operator uses for each situation. */
export const REASONS = {
  ready: { reason: 'AllObjectsAvailable', message: 'All objects available' },
  progressing: { reason: 'ResourceNotReady', message: 'Reconciling' },
  degraded: { reason: 'Error_reconciling_Egress_Gateway' },
  /** What a condition that does not hold says. */
  inactive: { reason: 'Unknown', message: '' },
} as const;

/** One condition (metav1.Condition). */
export interface StatusCondition {
  type: ConditionType;
  status: 'True' | 'False';
  reason: string;
  message: string;
  /** When `status` last changed (ISO 8601). */
  lastTransitionTime: string;
  /** The EgressGateway generation the condition was computed from. */
  observedGeneration: number;
}

/** Counts of the gateway's pods, as a Deployment reports them. */
export interface ReplicaCounts {
  /** Pods that count as replicas (not terminating, not ended). */
  replicas: number;
  /** Of those, pods of the current template. */
  updatedReplicas: number;
  /** Of those, pods whose Ready condition is True. */
  readyReplicas: number;
  /** Ready pods (minReadySeconds is 0, so the same as readyReplicas). */
  availableReplicas: number;
}

/** The status written to an EgressGateway. */
export interface EgressGatewayStatusValue extends ReplicaCounts {
  /** `Ready` once the pods match the template, `Progressing` during a rollout, `Degraded` on invalid input. */
  state: 'Ready' | 'Progressing' | 'Degraded';
  conditions: StatusCondition[];
}

/** What the reconciler concluded. */
export type Verdict = { state: 'Ready' } | { state: 'Progressing' } | { state: 'Degraded'; message: string };

/**
 * The status for `verdict`: the matching condition True with the operator's reason and message (for
 * Degraded, the message given), the others False with reason `Unknown`. A condition keeps its
 * `lastTransitionTime` from `previous` while its status does not change; `now` is used otherwise.
 */
export function nextStatus(previous: unknown, verdict: Verdict, counts: ReplicaCounts, generation: number, now: string): EgressGatewayStatusValue {
  const before = new Map<string, { status: unknown; lastTransitionTime: unknown }>();
  const prevConditions = (previous as { conditions?: unknown } | undefined)?.conditions;
  if (Array.isArray(prevConditions)) {
    for (const c of prevConditions as unknown[]) {
      if (typeof c === 'object' && c !== null) {
        const r = c as Record<string, unknown>;
        if (typeof r['type'] === 'string') before.set(r['type'], { status: r['status'], lastTransitionTime: r['lastTransitionTime'] });
      }
    }
  }
  const active: ConditionType = verdict.state;
  const conditions = CONDITION_TYPES.map((type): StatusCondition => {
    const on = type === active;
    const status = on ? 'True' : 'False';
    const text =
      !on ? REASONS.inactive
      : verdict.state === 'Degraded' ? { reason: REASONS.degraded.reason, message: verdict.message }
      : verdict.state === 'Ready' ? REASONS.ready
      : REASONS.progressing;
    const prev = before.get(type);
    const lastTransitionTime = prev !== undefined && prev.status === status && typeof prev.lastTransitionTime === 'string' ? prev.lastTransitionTime : now;
    return { type, status, reason: text.reason, message: text.message, lastTransitionTime, observedGeneration: generation };
  });
  return { state: verdict.state, conditions, ...counts };
}
