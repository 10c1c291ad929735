/**
 * The pod status the kubelet reports, computed from what it knows locally, and merged into the stored
 * status so that fields and conditions other writers own (`PodScheduled`, the agent's `EgwAwsReady`)
 * are kept and `lastTransitionTime` moves only when a condition's status does. Pure.
 */
import { stableJson } from '../../datastore/resources.js';
import { conditionsOf, withCondition, type StatusCondition } from '../../platform/conditions.js';

/** A container's state, in the API's shape. */
export type ContainerState =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | { terminated: { exitCode: number; reason: string; startedAt?: string; finishedAt: string } };

/** One entry of `containerStatuses` / `initContainerStatuses`. */
export interface ContainerView {
  name: string;
  image: string;
  containerID: string;
  state: ContainerState;
  lastState: ContainerState | undefined;
  ready: boolean;
  started: boolean;
  restartCount: number;
}

/** Everything the kubelet reports about one pod. */
export interface PodView {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  /** `status.reason` / `status.message` (e.g. a pod the lab cannot run). */
  reason?: string | undefined;
  message?: string | undefined;
  podIP?: string | undefined;
  hostIP?: string | undefined;
  startTime?: string | undefined;
  /** The pod's network is up (`PodReadyToStartContainers`). */
  sandboxReady: boolean;
  initialized: boolean;
  initContainers: ContainerView[];
  containers: ContainerView[];
}

const list = (names: string[]): string => `[${names.join(' ')}]`;

/** The conditions the kubelet owns, in Kubernetes' words (readiness gates are not supported). */
export function kubeletConditions(view: PodView): Omit<StatusCondition, 'lastTransitionTime'>[] {
  const incomplete = view.initContainers.filter((c) => !('terminated' in c.state && c.state.terminated.exitCode === 0)).map((c) => c.name);
  const unready = view.containers.filter((c) => !c.ready).map((c) => c.name);
  const initialized: Omit<StatusCondition, 'lastTransitionTime'> = view.initialized
    ? { type: 'Initialized', status: 'True', lastProbeTime: null }
    : { type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized', message: `containers with incomplete status: ${list(incomplete)}`, lastProbeTime: null };
  const ready = unready.length === 0 && view.phase === 'Running';
  const readiness = (type: string): Omit<StatusCondition, 'lastTransitionTime'> =>
    ready
      ? { type, status: 'True', lastProbeTime: null }
      : { type, status: 'False', reason: 'ContainersNotReady', message: `containers with unready status: ${list(unready.length > 0 ? unready : view.containers.map((c) => c.name))}`, lastProbeTime: null };
  return [
    { type: 'PodReadyToStartContainers', status: view.sandboxReady ? 'True' : 'False', lastProbeTime: null },
    initialized,
    readiness('Ready'),
    readiness('ContainersReady'),
  ];
}

/**
 * The stored status with the kubelet's view written in, or undefined when nothing would change.
 * Fields the kubelet does not own are kept; `podIP`/`hostIP` stay once known.
 */
export function mergePodStatus(existing: unknown, view: PodView, now: string): Record<string, unknown> | undefined {
  const base = typeof existing === 'object' && existing !== null && !Array.isArray(existing) ? (existing as Record<string, unknown>) : {};
  const next: Record<string, unknown> = { ...base, phase: view.phase };
  delete next['reason'];
  delete next['message'];
  if (view.reason !== undefined) next['reason'] = view.reason;
  if (view.message !== undefined) next['message'] = view.message;
  if (view.podIP !== undefined) {
    next['podIP'] = view.podIP;
    next['podIPs'] = [{ ip: view.podIP }];
  }
  if (view.hostIP !== undefined) {
    next['hostIP'] = view.hostIP;
    next['hostIPs'] = [{ ip: view.hostIP }];
  }
  if (view.startTime !== undefined) next['startTime'] = base['startTime'] ?? view.startTime;
  const entry = (c: ContainerView): Record<string, unknown> => ({
    name: c.name,
    image: c.image,
    imageID: '',
    containerID: c.containerID,
    state: c.state,
    lastState: c.lastState ?? {},
    ready: c.ready,
    started: c.started,
    restartCount: c.restartCount,
  });
  next['containerStatuses'] = view.containers.map(entry);
  if (view.initContainers.length > 0) next['initContainerStatuses'] = view.initContainers.map(entry);
  else delete next['initContainerStatuses'];
  let conditions = conditionsOf(base);
  for (const c of kubeletConditions(view)) conditions = withCondition(conditions, c, now) ?? conditions;
  next['conditions'] = conditions;
  return stableJson(next) === stableJson(base) ? undefined : next;
}
