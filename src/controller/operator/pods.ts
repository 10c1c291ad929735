/**
 * Gateway pods as a ReplicaSet would make them from the rendered template: the template hash, pod names,
 * the Pod record, ownership, and the facts about a pod the rollout looks at. Pure.
 */
import type { Pod } from '../../api/index.js';
import { stableJson } from '../../datastore/resources.js';
import type { Container, OwnerReference, PodTemplateSpec } from './k8s-types.js';
import { EGRESS_GATEWAY_API_VERSION } from './render.js';

/** The label a ReplicaSet adds to its pods: the hash of the template they were made from. */
export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
/** Kubernetes' default `terminationGracePeriodSeconds`. */
export const DEFAULT_TERMINATION_GRACE_SECONDS = 30;

/** Characters of Kubernetes' generated names (no vowels, no look-alikes: no accidental words). */
export const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
/** Kubernetes cuts a generateName base to this length so that base + 5 characters fit in 63. */
const MAX_GENERATE_NAME_BASE = 58;

/**
 * The template hash: FNV-1a (32 bit) of the template's canonical JSON, written as Kubernetes writes its
 * `pod-template-hash` (the decimal digits mapped onto {@link NAME_ALPHABET}). Equal templates give equal
 * hashes regardless of key order; any change to labels, annotations or the pod spec changes it.
 */
export function templateHash(template: PodTemplateSpec): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(stableJson(template), 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return safeEncode(String(h >>> 0));
}

function safeEncode(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) out += NAME_ALPHABET[text.charCodeAt(i) % NAME_ALPHABET.length] ?? 'b';
  return out;
}

/** `<egw name>-<hash>-`, the generateName of a ReplicaSet's pods, cut to 58 characters as Kubernetes does. */
export function podGenerateName(egwName: string, hash: string): string {
  const base = `${egwName}-${hash}-`;
  return base.length > MAX_GENERATE_NAME_BASE ? base.slice(0, MAX_GENERATE_NAME_BASE) : base;
}

/** Everything needed to make one gateway Pod record. */
export interface NewPodInput {
  template: PodTemplateSpec;
  hash: string;
  namespace: string;
  /** The owner reference to the EgressGateway. */
  owner: OwnerReference;
  /** Five characters from {@link NAME_ALPHABET}. */
  suffix: string;
  uid: string;
  /** Creation time, ISO 8601. */
  now: string;
}

/**
 * The Pod record of a new gateway pod, as the API server stores what a ReplicaSet creates: name
 * `<generateName><suffix>`, the template's labels plus `pod-template-hash`, its annotations, the owner
 * reference, the template's pod spec with Kubernetes' defaults filled in (restartPolicy Always,
 * terminationGracePeriodSeconds 30, schedulerName, probe timings), no nodeName, `status.phase: Pending`.
 */
export function newGatewayPod(input: NewPodInput): Pod {
  const { template, hash } = input;
  const generateName = podGenerateName(input.owner.name, hash);
  const spec = template.spec;
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${generateName}${input.suffix}`,
      generateName,
      namespace: input.namespace,
      uid: input.uid,
      creationTimestamp: input.now,
      labels: { ...template.metadata.labels, [POD_TEMPLATE_HASH_LABEL]: hash },
      annotations: { ...template.metadata.annotations },
      ownerReferences: [{ ...input.owner }],
    },
    spec: {
      ...structuredClone(spec),
      initContainers: spec.initContainers.map(withProbeDefaults),
      containers: spec.containers.map(withProbeDefaults),
      terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_SECONDS,
      restartPolicy: 'Always',
      schedulerName: 'default-scheduler',
      dnsPolicy: 'ClusterFirst',
    },
    status: { phase: 'Pending' },
  };
  return pod as unknown as Pod;
}

function withProbeDefaults(c: Container): Container {
  const copy = structuredClone(c);
  if (copy.readinessProbe !== undefined) {
    copy.readinessProbe = {
      timeoutSeconds: 1,
      periodSeconds: 10,
      successThreshold: 1,
      failureThreshold: 3,
      ...copy.readinessProbe,
      httpGet: { scheme: 'HTTP', ...copy.readinessProbe.httpGet },
    };
  }
  return copy;
}

/** The controlling EgressGateway reference of a pod, or undefined when no EgressGateway controls it. */
export function controllingGateway(pod: Pod): { name: string; uid: string | undefined } | undefined {
  for (const ref of pod.metadata.ownerReferences ?? []) {
    if (typeof ref !== 'object' || ref === null) continue;
    const r = ref as Record<string, unknown>;
    if (r['controller'] === true && r['kind'] === 'EgressGateway' && r['apiVersion'] === EGRESS_GATEWAY_API_VERSION && typeof r['name'] === 'string') {
      return { name: r['name'], uid: typeof r['uid'] === 'string' ? r['uid'] : undefined };
    }
  }
  return undefined;
}

/** True once deletion has started (`metadata.deletionTimestamp` set): the pod no longer counts. */
export function isTerminating(pod: Pod): boolean {
  return pod.metadata.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== '';
}

/** True when the pod has ended for good (phase Succeeded or Failed). */
export function hasEnded(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** True when the pod counts as a replica: not terminating and not ended. */
export function isActive(pod: Pod): boolean {
  return !isTerminating(pod) && !hasEnded(pod);
}

/** True when a node has been chosen for the pod. */
export function isScheduled(pod: Pod): boolean {
  return pod.spec.nodeName !== undefined && pod.spec.nodeName !== '';
}

function readyCondition(pod: Pod): Record<string, unknown> | undefined {
  const conditions = (pod.status as { conditions?: unknown } | undefined)?.conditions;
  if (!Array.isArray(conditions)) return undefined;
  for (const c of conditions as unknown[]) {
    if (typeof c === 'object' && c !== null && (c as Record<string, unknown>)['type'] === 'Ready') return c as Record<string, unknown>;
  }
  return undefined;
}

/** True when the pod's `Ready` condition is `True` (set by the pod runtime from the readiness probe). */
export function isPodReady(pod: Pod): boolean {
  return readyCondition(pod)?.['status'] === 'True';
}

/** The facts about one pod the rollout plan looks at. */
export interface PodFacts {
  name: string;
  hash: string;
  scheduled: boolean;
  phase: string;
  ready: boolean;
  /** When the pod became ready (ms since the epoch), 0 when unknown or not ready. */
  readySince: number;
  /** Creation time (ms since the epoch), 0 when unknown. */
  created: number;
  /** The store's creation revision, to order pods created in the same millisecond. */
  createRevision: number;
}

/** The {@link PodFacts} of a stored pod. */
export function podFacts(pod: Pod, createRevision: number): PodFacts {
  const ready = isPodReady(pod);
  const t = readyCondition(pod)?.['lastTransitionTime'];
  const since = ready && typeof t === 'string' ? Date.parse(t) : NaN;
  const created = Date.parse(pod.metadata.creationTimestamp ?? '');
  return {
    name: pod.metadata.name,
    hash: pod.metadata.labels?.[POD_TEMPLATE_HASH_LABEL] ?? '',
    scheduled: isScheduled(pod),
    phase: pod.status?.phase ?? 'Pending',
    ready,
    readySince: Number.isNaN(since) ? 0 : since,
    created: Number.isNaN(created) ? 0 : created,
    createRevision,
  };
}

const PHASE_RANK: Readonly<Record<string, number>> = { Pending: 0, Unknown: 1, Running: 2 };

/**
 * The order in which a ReplicaSet picks pods to delete when it scales down (first = deleted first):
 * unscheduled before scheduled, Pending before Unknown before Running, not ready before ready, ready for
 * a shorter time before longer, newer before older; the name breaks ties so the choice is deterministic.
 */
export function compareForScaleDown(a: PodFacts, b: PodFacts): number {
  if (a.scheduled !== b.scheduled) return a.scheduled ? 1 : -1;
  const pa = PHASE_RANK[a.phase] ?? 0;
  const pb = PHASE_RANK[b.phase] ?? 0;
  if (pa !== pb) return pa - pb;
  if (a.ready !== b.ready) return a.ready ? 1 : -1;
  if (a.ready && a.readySince !== b.readySince) return b.readySince - a.readySince;
  if (a.created !== b.created) return b.created - a.created;
  if (a.createRevision !== b.createRevision) return b.createRevision - a.createRevision;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
