/**
 * Gateway workloads as Pod records in egw's datastore (the lab: no Kubernetes; its scheduler and pod
 * runtime take the records from there). The records are the ones a Deployment and its ReplicaSet would
 * keep: the rollout plan (./plan.ts) on the pods of the rendered template.
 *
 * Contract (docs/operator.md, "The Pod records"):
 * - Every decision depends on the store alone (no memory between calls), so a call that stopped between
 *   two commits is completed by the next one.
 * - Every pod write names the revision it read and is committed with a `check` that the EgressGateway is
 *   still at the revision the plan came from (0: still absent); Conflict, AlreadyExists or NotFound mean
 *   "read again" (the operator restarts its pass).
 * - Only pods whose controlling owner reference is an EgressGateway are touched.
 * - An unscheduled pod's record is deleted; a scheduled pod gets `metadata.deletionTimestamp` (now + its
 *   grace) and `deletionGracePeriodSeconds`, and the pod runtime removes the record once it has stopped.
 */
import type { EgressGateway, Pod } from '../../api/index.js';
import type { Datastore, StoredResource, WriteOp } from '../../datastore/contract.js';
import { MAX_COMMIT_OPS } from '../../datastore/contract.js';
import type { InformerEvent } from '../../datastore/informer.js';
import { fromStored, writeOpFor } from '../../datastore/resources.js';
import type { Clock } from '../../platform/clock.js';
import type { IdSource } from './ids.js';
import type { Deployment, OwnerReference } from './k8s-types.js';
import { planRollout } from './plan.js';
import { controllingGateway, hasEnded, isActive, isPodReady, isScheduled, isTerminating, newGatewayPod, podFacts, templateHash, DEFAULT_TERMINATION_GRACE_SECONDS, POD_TEMPLATE_HASH_LABEL } from './pods.js';
import { EGRESS_GATEWAY_API_VERSION } from './render.js';
import type { ReplicaCounts } from './status.js';
import { ownerKey, type GatewayWorkloads, type WorkloadOwner, type WorkloadResult } from './workloads.js';

/** What {@link DatastorePods} uses. */
export interface DatastorePodsDeps {
  store: Datastore;
  clock: Clock;
  ids: IdSource;
}

interface Owned {
  stored: StoredResource;
  pod: Pod;
}

/** Gateway pods as datastore records. One instance per operator; it keeps no state between calls. */
export class DatastorePods implements GatewayWorkloads {
  readonly mechanism = 'datastore-pods' as const;
  readonly watchedKinds = ['Pod'] as const;
  /** The lab's runtime gives its pods the lab's datastore itself: nothing is rendered for it. */
  readonly podSettings = {};
  private readonly store: Datastore;
  private readonly clock: Clock;
  private readonly ids: IdSource;

  constructor(deps: DatastorePodsDeps) {
    this.store = deps.store;
    this.clock = deps.clock;
    this.ids = deps.ids;
  }

  /** A pod's controlling EgressGateway, before and after an update that changed it. */
  ownersOf(e: InformerEvent): string[] {
    if (e.resource.key.kind !== 'Pod') return [];
    const out: string[] = [];
    const owner = controllingGateway(e.resource.value as unknown as Pod);
    if (owner !== undefined) out.push(owner.name);
    if (e.type === 'updated') {
      const before = controllingGateway(e.previous.value as unknown as Pod);
      if (before !== undefined && before.name !== owner?.name) out.push(before.name);
    }
    return out;
  }

  /** Nothing to start: the pods are in the datastore, which the operator's informer watches. */
  start(): void {}

  async stop(): Promise<void> {}

  async waitForSync(): Promise<void> {}

  async ownerKeys(): Promise<string[]> {
    const keys = new Set<string>();
    for (const s of (await this.store.list('Pod')).items) {
      const owner = controllingGateway(s.value as unknown as Pod);
      if (owner !== undefined) keys.add(ownerKey(s.key.namespace ?? 'default', owner.name));
    }
    return [...keys];
  }

  async apply(owner: WorkloadOwner, desired: Deployment): Promise<WorkloadResult> {
    const w = await this.read(owner);
    const template = desired.spec.template;
    const hash = templateHash(template);
    const replicas = desired.spec.replicas;
    const plan = planRollout(
      replicas,
      hash,
      w.active.map((o) => podFacts(o.pod, o.stored.createRevision)),
    );
    const byName = new Map(w.active.map((o) => [o.pod.metadata.name, o]));
    for (const podName of plan.remove) {
      const o = byName.get(podName);
      if (o !== undefined) w.remove(o);
    }
    // The Deployment's owner reference (absent only for an EgressGateway without a uid: one made without uid).
    const ref: OwnerReference = desired.metadata.ownerReferences?.[0] ?? { apiVersion: EGRESS_GATEWAY_API_VERSION, kind: 'EgressGateway', name: owner.name, controller: true, blockOwnerDeletion: true };
    const now = new Date(w.nowMs).toISOString();
    const newPods: Pod[] = [];
    const creating: string[] = [];
    for (let i = 0; i < plan.create; i++) {
      let pod = newGatewayPod({ template, hash, namespace: owner.namespace, owner: ref, suffix: this.ids.podSuffix(), uid: this.ids.uid(), now });
      // A name already in use would fail the whole commit: draw again (one created since our read
      // still fails with AlreadyExists, and the pass is retried with new suffixes).
      for (let tries = 0; w.taken.has(pod.metadata.name) && tries < 10; tries++) {
        pod = newGatewayPod({ template, hash, namespace: owner.namespace, owner: ref, suffix: this.ids.podSuffix(), uid: this.ids.uid(), now });
      }
      w.taken.add(pod.metadata.name);
      newPods.push(pod);
      w.ops.push(writeOpFor(pod, undefined));
      creating.push(pod.metadata.name);
    }
    const removed = new Set(plan.remove);
    const remaining = [...w.active.map((o) => o.pod).filter((p) => !removed.has(p.metadata.name)), ...newPods];
    const counts = countReplicas(remaining, remaining.filter((p) => p.metadata.labels?.[POD_TEMPLATE_HASH_LABEL] === hash).length);
    const done = await this.commitPods(owner, w.ops, creating, w.removing);
    return { counts, complete: plan.complete, ...done };
  }

  async observe(owner: WorkloadOwner, previousUpdated: number): Promise<WorkloadResult> {
    const w = await this.read(owner);
    // Invalid: nothing is rendered and the pods stay as they are (as the operator leaves the Deployment).
    const counts = countReplicas(
      w.active.map((o) => o.pod),
      Math.min(previousUpdated, w.active.length),
    );
    const done = await this.commitPods(owner, w.ops, [], w.removing);
    return { counts, complete: false, ...done };
  }

  async remove(owner: WorkloadOwner): Promise<WorkloadResult> {
    const w = await this.read({ ...owner, uid: undefined, revision: 0 }, true);
    // Guarded by "the EgressGateway is still absent": a new one of the same name waits for the next pass.
    const done = await this.commitPods({ ...owner, revision: 0 }, w.ops, [], w.removing);
    return { counts: { replicas: 0, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0 }, complete: true, ...done };
  }

  async writeEgressGateway(stored: StoredResource, next: EgressGateway): Promise<void> {
    // Spec and status in one CAS update: the datastore has no status subresource.
    await this.store.commit([writeOpFor(next, stored)]);
  }

  /**
   * Reads the owner's pods and queues the removals that hold whatever the plan: every pod when `all`;
   * else pods of an earlier EgressGateway of the same name (orphans, garbage-collected as Kubernetes
   * would), ended pods and terminating unscheduled ones (nothing left to stop).
   */
  private async read(owner: WorkloadOwner, all = false): Promise<{ active: Owned[]; ops: WriteOp[]; removing: string[]; taken: Set<string>; nowMs: number; remove: (o: Owned) => void }> {
    const inNamespace = (await this.store.list('Pod', { namespace: owner.namespace })).items;
    const owned: Owned[] = inNamespace.map((s) => ({ stored: s, pod: fromStored<Pod>(s) })).filter((o) => controllingGateway(o.pod)?.name === owner.name);
    const nowMs = this.clock.now();
    const ops: WriteOp[] = [];
    const removing: string[] = [];
    const remove = (o: Owned): void => {
      const op = deletionOp(o, nowMs);
      if (op !== undefined) {
        ops.push(op);
        removing.push(o.pod.metadata.name);
      }
    };
    const mine: Owned[] = [];
    for (const o of owned) {
      if (!all && controllingGateway(o.pod)?.uid === owner.uid) mine.push(o);
      else remove(o);
    }
    for (const o of mine) if (hasEnded(o.pod) || (isTerminating(o.pod) && !isScheduled(o.pod))) remove(o);
    return { active: mine.filter((o) => isActive(o.pod)), ops, removing, taken: new Set(inNamespace.map((p) => p.key.name)), nowMs, remove };
  }

  /**
   * Commits pod writes in chunks that fit one commit, each guarded by a check that the EgressGateway is
   * still at the revision the plan was made from (0: still absent). A crash between chunks is completed
   * by the next pass.
   */
  private async commitPods(owner: WorkloadOwner, ops: readonly WriteOp[], creating: readonly string[], removing: readonly string[]): Promise<Omit<WorkloadResult, 'counts' | 'complete'>> {
    const result = { created: [] as string[], deleted: [] as string[], wrote: false };
    if (ops.length === 0) return result;
    const size = MAX_COMMIT_OPS - 1;
    const egwKey = { kind: 'EgressGateway', namespace: owner.namespace, name: owner.name };
    for (let i = 0; i < ops.length; i += size) {
      const chunk = ops.slice(i, i + size);
      await this.store.commit([{ op: 'check', key: egwKey, expectedRevision: owner.revision }, ...chunk]);
      result.wrote = true;
      for (const op of chunk) {
        if (op.op === 'create' && creating.includes(op.key.name)) result.created.push(op.key.name);
        else if (removing.includes(op.key.name)) result.deleted.push(op.key.name);
      }
    }
    return result;
  }
}

/** The write that deletes a pod now (unscheduled) or starts its termination (scheduled); undefined when already terminating. */
function deletionOp(o: Owned, nowMs: number): WriteOp | undefined {
  if (!isScheduled(o.pod)) return { op: 'delete', key: o.stored.key, expectedRevision: o.stored.modRevision };
  if (isTerminating(o.pod)) return undefined;
  const grace = o.pod.spec.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_SECONDS;
  const marked = {
    ...o.pod,
    metadata: { ...o.pod.metadata, deletionTimestamp: new Date(nowMs + grace * 1000).toISOString(), deletionGracePeriodSeconds: grace },
  } as Pod;
  return writeOpFor(marked, o.stored);
}

/** Replica counts of `pods` (active ones), `updated` of which are of the current template. */
function countReplicas(pods: readonly Pod[], updated: number): ReplicaCounts {
  const ready = pods.filter(isPodReady).length;
  return { replicas: pods.length, updatedReplicas: updated, readyReplicas: ready, availableReplicas: ready };
}
