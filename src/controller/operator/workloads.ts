/**
 * The port "where gateway workloads go", and its pure helpers. The operator decides what an EgressGateway
 * should run (the rendered Deployment); a {@link GatewayWorkloads} puts it somewhere:
 * - `DatastorePods` (./datastore-pods.ts): Pod records in egw's datastore, as a Deployment and its
 *   ReplicaSet would keep them (the lab: its scheduler and pod runtime take them from there);
 * - `KubeDeployments` (./kube-deployments.ts): real `apps/v1` Deployments on the API server
 *   (kube-controller-manager makes the ReplicaSets and pods).
 * Which one runs is chosen explicitly by the composition root (docs/operator.md, "Where the workloads go").
 */
import type { EgressGateway } from '../../api/index.js';
import type { StoredResource } from '../../datastore/contract.js';
import type { InformerEvent } from '../../datastore/informer.js';
import type { Deployment } from './k8s-types.js';
import { EGRESS_GATEWAY_API_VERSION, type RenderContext } from './render.js';
import type { ReplicaCounts } from './status.js';

/** An EgressGateway as the workloads see it for one pass. */
export interface WorkloadOwner {
  namespace: string;
  name: string;
  /** Its uid; workloads controlled by another uid (an earlier EgressGateway of the same name) are orphans. */
  uid: string | undefined;
  /** The store revision read for this pass; 0 = the EgressGateway is absent. Writes may be guarded by it. */
  revision: number;
}

/** What converging (or observing) the workloads of one EgressGateway found and did. */
export interface WorkloadResult {
  /** Replica counts as the Deployment (or the pods standing in for it) report them after this call. */
  counts: ReplicaCounts;
  /** True when the workloads are exactly the desired ones (state Ready); false during a rollout (Progressing). */
  complete: boolean;
  /** Names of what this call created (pods, or the Deployment). */
  created: string[];
  /** Names of what this call deleted or set terminating. */
  deleted: string[];
  /** True when anything was written. */
  wrote: boolean;
}

/** Which implementation of {@link GatewayWorkloads} runs. */
export type WorkloadMechanism = 'datastore-pods' | 'kubernetes-deployments';

/**
 * Where the workloads of EgressGateways go. Every method is level-triggered and idempotent: called twice
 * with the same state, the second call writes nothing. It only ever touches workloads whose controlling
 * owner reference is an EgressGateway (`operator.tigera.io/v1`), never others.
 */
export interface GatewayWorkloads {
  readonly mechanism: WorkloadMechanism;
  /** What the rendered pods need for this mechanism (on Kubernetes: `EGW_DATASTORE` and the ServiceAccount). */
  readonly podSettings: Readonly<Pick<RenderContext, 'datastore' | 'serviceAccountName'>>;
  /** Datastore kinds the operator's informer must also watch for this mechanism (the pods path: `Pod`). */
  readonly watchedKinds: readonly string[];
  /** The EgressGateway names (in the event's namespace) a datastore event of {@link watchedKinds} concerns. */
  ownersOf(event: InformerEvent): string[];
  /** Starts watching the workloads (when they are not in the datastore); `onChange` names an affected EgressGateway. Idempotent. */
  start(onChange: (namespace: string, name: string) => void): void;
  /** Stops the watch of {@link start}. Safe to call twice or before start. */
  stop(): Promise<void>;
  /** Resolves once the watch of {@link start} has listed everything once (at once when there is none). */
  waitForSync(signal: AbortSignal): Promise<void>;
  /** `namespace/name` of every EgressGateway named as the controller of a workload (the prune step's input). */
  ownerKeys(): Promise<string[]>;
  /** Converges the workloads of a valid `owner` to `desired` (the rendered Deployment). */
  apply(owner: WorkloadOwner, desired: Deployment): Promise<WorkloadResult>;
  /**
   * Reports the workloads of an invalid `owner` without rolling anything (as the operator leaves the
   * Deployment alone); only clearly dead ones (orphans, ended pods) may be removed.
   * `previousUpdated` is the `updatedReplicas` of the last status, for a mechanism that cannot know it.
   */
  observe(owner: WorkloadOwner, previousUpdated: number): Promise<WorkloadResult>;
  /** Removes every workload controlled by `owner` (absent: `revision` 0, `uid` undefined). */
  remove(owner: WorkloadOwner): Promise<WorkloadResult>;
  /**
   * Writes the EgressGateway `next` (defaults written back when `specChanged`, `status` when `statusChanged`)
   * over `stored`, with the revision read. Where the status is a subresource, it goes there.
   */
  writeEgressGateway(stored: StoredResource, next: EgressGateway, change: { specChanged: boolean; statusChanged: boolean }): Promise<void>;
}

/** The controlling EgressGateway of an object (`metadata.ownerReferences`), or undefined. */
export function controllingEgressGateway(obj: unknown): { name: string; uid: string | undefined } | undefined {
  const refs = metaOf(obj)['ownerReferences'] ?? [];
  if (!Array.isArray(refs)) return undefined;
  for (const ref of refs as unknown[]) {
    if (!isObject(ref)) continue;
    if (ref['controller'] === true && ref['kind'] === 'EgressGateway' && ref['apiVersion'] === EGRESS_GATEWAY_API_VERSION && typeof ref['name'] === 'string') {
      return { name: ref['name'], uid: typeof ref['uid'] === 'string' ? ref['uid'] : undefined };
    }
  }
  return undefined;
}

/**
 * True when every field of `desired` is in `live` with the same value: objects by key (extra keys in
 * `live` — API-server defaults, other managers' fields — are ignored), arrays element by element and of
 * the same length, scalars equal. Quantities are compared as written (`"1"` vs `1` differ), so a
 * normalised value only costs a no-op apply. Pure.
 */
export function isSubset(desired: unknown, live: unknown): boolean {
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return false;
    return desired.every((d, i) => isSubset(d, live[i]));
  }
  if (isObject(desired)) {
    if (!isObject(live)) return false;
    return Object.entries(desired).every(([k, v]) => v === undefined || isSubset(v, live[k]));
  }
  return desired === live;
}

/** The observed state of a live Deployment that the operator's status reflects. */
export interface DeploymentObservation {
  counts: ReplicaCounts;
  /** The rollout is done: the controller saw the current spec, and every replica is of the current template. */
  complete: boolean;
}

/**
 * Replica counts and completeness of a live `apps/v1` Deployment (`status` as kube-controller-manager
 * writes it; missing counts are 0). Complete = `status.observedGeneration` ≥ `metadata.generation` and
 * `updatedReplicas` = `replicas` = `spec.replicas` (readiness is in the counts, not in completeness, as
 * in the pods path). Pure.
 */
export function observeDeployment(live: unknown): DeploymentObservation {
  const status = isObject(live) && isObject(live['status']) ? live['status'] : {};
  const spec = isObject(live) && isObject(live['spec']) ? live['spec'] : {};
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const counts: ReplicaCounts = {
    replicas: num(status['replicas']),
    updatedReplicas: num(status['updatedReplicas']),
    readyReplicas: num(status['readyReplicas']),
    availableReplicas: num(status['availableReplicas']),
  };
  const wanted = typeof spec['replicas'] === 'number' ? spec['replicas'] : 1;
  const generation = num(metaOf(live)['generation']);
  const observed = num(status['observedGeneration']);
  const complete = observed >= generation && generation > 0 && counts.updatedReplicas === wanted && counts.replicas === wanted;
  return { counts, complete };
}

/** `namespace/name`: namespaces and names never hold '/', so it separates them unambiguously. */
export function ownerKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function metaOf(obj: unknown): Record<string, unknown> {
  return isObject(obj) && isObject(obj['metadata']) ? obj['metadata'] : {};
}
