/**
 * What the scheduler knows about pods, nodes and namespaces, read once from the stored records (parse at
 * the boundary: a field of the wrong shape is read as absent, never thrown). Pure.
 */
import { schedulerUnits } from './quantity.js';
import type { LabelSelector, NodeSelectorTerm, Taint, Toleration } from './selectors.js';

/** Resource amounts in scheduler units (millicores for cpu, else whole units), by resource name. */
export type Resources = Readonly<Record<string, number>>;

/** A topology spread constraint, as the pod writes it. */
export interface SpreadConstraint {
  maxSkew: number;
  topologyKey: string;
  whenUnsatisfiable: string;
  labelSelector: LabelSelector | undefined;
  minDomains: number;
  matchLabelKeys: string[];
  /** `Honor` (default) or `Ignore`: whether nodes the pod's node affinity/selector rejects count. */
  nodeAffinityPolicy: string;
  /** `Ignore` (default) or `Honor`: whether nodes with taints the pod does not tolerate count. */
  nodeTaintsPolicy: string;
}

/** A pod (anti-)affinity term. */
export interface PodAffinityTerm {
  labelSelector: LabelSelector | undefined;
  namespaces: string[];
  namespaceSelector: LabelSelector | undefined;
  topologyKey: string;
}

/** A preferred (weighted) pod (anti-)affinity term. */
export interface WeightedPodAffinityTerm {
  weight: number;
  term: PodAffinityTerm;
}

/** A pod as the scheduler sees it. */
export interface SchedPod {
  /** `namespace/name`. */
  key: string;
  namespace: string;
  name: string;
  uid: string;
  labels: Readonly<Record<string, string>>;
  /** The node it is bound to, or undefined when pending. */
  nodeName: string | undefined;
  /** `metadata.deletionTimestamp` set. */
  terminating: boolean;
  /** Phase Succeeded or Failed: holds nothing any more. */
  terminal: boolean;
  schedulerName: string;
  /** Effective requests: max(sum of containers, each init container), limits standing in for missing requests. */
  requests: Resources;
  nodeSelector: Readonly<Record<string, string>>;
  /** Required node affinity terms (ORed); undefined when none. */
  requiredNodeTerms: NodeSelectorTerm[] | undefined;
  preferredNodeTerms: { weight: number; preference: NodeSelectorTerm }[];
  tolerations: Toleration[];
  spread: SpreadConstraint[];
  preferredAffinity: WeightedPodAffinityTerm[];
  preferredAntiAffinity: WeightedPodAffinityTerm[];
  /** `spec.priority` (0 when unset). */
  priority: number;
  /** Creation time, ms since the epoch (0 when unknown). */
  created: number;
  /** The datastore revision of the record read (for the CAS bind). */
  revision: number;
}

/** A node's Ready condition as the lab's kubelet reports it. */
export interface NodeReadiness {
  status: 'True' | 'False' | 'Unknown';
  /** `lastHeartbeatTime`, ms since the epoch (0 when unknown). */
  heartbeat: number;
}

/** A node as the scheduler sees it. */
export interface SchedNode {
  name: string;
  labels: Readonly<Record<string, string>>;
  taints: Taint[];
  unschedulable: boolean;
  /** `status.allocatable` (else `status.capacity`) in scheduler units; a resource not listed has none. */
  allocatable: Resources;
  /** The Ready condition, undefined when the node has none. */
  ready: NodeReadiness | undefined;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function strMap(v: unknown): Record<string, string> {
  const o = obj(v);
  if (o === undefined) return {};
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) if (typeof x === 'string') out[k] = x;
  return out;
}

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

function time(v: unknown): number {
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  return Number.isNaN(t) ? 0 : t;
}

/** A label selector from JSON; undefined when absent or not an object. */
export function parseLabelSelector(v: unknown): LabelSelector | undefined {
  const o = obj(v);
  if (o === undefined) return undefined;
  const matchExpressions = arr(o['matchExpressions']).flatMap((e) => {
    const x = obj(e);
    const key = str(x?.['key']);
    const operator = str(x?.['operator']);
    if (key === undefined || operator === undefined) return [];
    return [{ key, operator, values: arr(x?.['values']).filter((s): s is string => typeof s === 'string') }];
  });
  return { matchLabels: strMap(o['matchLabels']), matchExpressions };
}

function parseTerm(v: unknown): NodeSelectorTerm {
  const o = obj(v) ?? {};
  const reqs = (x: unknown): { key: string; operator: string; values: string[] }[] =>
    arr(x).flatMap((e) => {
      const r = obj(e);
      const key = str(r?.['key']);
      const operator = str(r?.['operator']);
      return key === undefined || operator === undefined ? [] : [{ key, operator, values: arr(r?.['values']).filter((s): s is string => typeof s === 'string') }];
    });
  return { matchExpressions: reqs(o['matchExpressions']), matchFields: reqs(o['matchFields']) };
}

function parsePodAffinityTerm(v: unknown): PodAffinityTerm | undefined {
  const o = obj(v);
  const topologyKey = str(o?.['topologyKey']);
  if (o === undefined || topologyKey === undefined || topologyKey === '') return undefined;
  return {
    labelSelector: parseLabelSelector(o['labelSelector']),
    namespaces: arr(o['namespaces']).filter((s): s is string => typeof s === 'string'),
    namespaceSelector: parseLabelSelector(o['namespaceSelector']),
    topologyKey,
  };
}

function parseWeighted(v: unknown): WeightedPodAffinityTerm[] {
  return arr(v).flatMap((e) => {
    const o = obj(e);
    const term = parsePodAffinityTerm(o?.['podAffinityTerm']);
    const weight = num(o?.['weight'], 0);
    return term === undefined || weight <= 0 ? [] : [{ weight, term }];
  });
}

function addInto(target: Record<string, number>, list: unknown, fallback: unknown): void {
  const requests = obj(list) ?? {};
  const limits = obj(fallback) ?? {};
  // The API server defaults a missing request to the limit.
  for (const name of new Set([...Object.keys(requests), ...Object.keys(limits)])) {
    const v = schedulerUnits(name, requests[name] ?? limits[name]);
    if (v !== undefined) target[name] = (target[name] ?? 0) + v;
  }
}

/** The pod's effective requests: max(sum of its containers, each init container), per resource. */
export function podRequests(spec: Json): Resources {
  const sum: Record<string, number> = {};
  for (const c of arr(spec['containers'])) {
    const r = obj(obj(c)?.['resources']);
    addInto(sum, r?.['requests'], r?.['limits']);
  }
  for (const c of arr(spec['initContainers'])) {
    const one: Record<string, number> = {};
    const r = obj(obj(c)?.['resources']);
    addInto(one, r?.['requests'], r?.['limits']);
    for (const [k, v] of Object.entries(one)) sum[k] = Math.max(sum[k] ?? 0, v);
  }
  return sum;
}

/** Reads a stored Pod value (its revision given) into a {@link SchedPod}. */
export function parseSchedPod(value: unknown, revision: number): SchedPod | undefined {
  const pod = obj(value);
  const meta = obj(pod?.['metadata']);
  const spec = obj(pod?.['spec']) ?? {};
  const status = obj(pod?.['status']) ?? {};
  const name = str(meta?.['name']);
  if (meta === undefined || name === undefined) return undefined;
  const namespace = str(meta['namespace']) ?? 'default';
  const affinity = obj(spec['affinity']) ?? {};
  const nodeAffinity = obj(affinity['nodeAffinity']) ?? {};
  const required = obj(nodeAffinity['requiredDuringSchedulingIgnoredDuringExecution']);
  const phase = str(status['phase']);
  const nodeName = str(spec['nodeName']);
  const deletion = meta['deletionTimestamp'];
  return {
    key: `${namespace}/${name}`,
    namespace,
    name,
    uid: str(meta['uid']) ?? '',
    labels: strMap(meta['labels']),
    nodeName: nodeName === undefined || nodeName === '' ? undefined : nodeName,
    terminating: deletion !== undefined && deletion !== null && deletion !== '',
    terminal: phase === 'Succeeded' || phase === 'Failed',
    schedulerName: str(spec['schedulerName']) ?? 'default-scheduler',
    requests: podRequests(spec),
    nodeSelector: strMap(spec['nodeSelector']),
    requiredNodeTerms: required === undefined ? undefined : arr(required['nodeSelectorTerms']).map(parseTerm),
    preferredNodeTerms: arr(nodeAffinity['preferredDuringSchedulingIgnoredDuringExecution']).flatMap((e) => {
      const o = obj(e);
      const weight = num(o?.['weight'], 0);
      return weight <= 0 || obj(o?.['preference']) === undefined ? [] : [{ weight, preference: parseTerm(o?.['preference']) }];
    }),
    tolerations: arr(spec['tolerations']).flatMap((e) => {
      const o = obj(e);
      if (o === undefined) return [];
      const t: Toleration = {};
      for (const f of ['key', 'operator', 'value', 'effect'] as const) {
        const s = str(o[f]);
        if (s !== undefined) t[f] = s;
      }
      return [t];
    }),
    spread: arr(spec['topologySpreadConstraints']).flatMap((e) => {
      const o = obj(e);
      const topologyKey = str(o?.['topologyKey']);
      if (o === undefined || topologyKey === undefined) return [];
      return [
        {
          maxSkew: Math.max(1, num(o['maxSkew'], 1)),
          topologyKey,
          whenUnsatisfiable: str(o['whenUnsatisfiable']) ?? 'DoNotSchedule',
          labelSelector: parseLabelSelector(o['labelSelector']),
          minDomains: Math.max(1, num(o['minDomains'], 1)),
          matchLabelKeys: arr(o['matchLabelKeys']).filter((s): s is string => typeof s === 'string'),
          nodeAffinityPolicy: str(o['nodeAffinityPolicy']) ?? 'Honor',
          nodeTaintsPolicy: str(o['nodeTaintsPolicy']) ?? 'Ignore',
        },
      ];
    }),
    preferredAffinity: parseWeighted(obj(affinity['podAffinity'])?.['preferredDuringSchedulingIgnoredDuringExecution']),
    preferredAntiAffinity: parseWeighted(obj(affinity['podAntiAffinity'])?.['preferredDuringSchedulingIgnoredDuringExecution']),
    priority: num(spec['priority'], 0),
    created: time(meta['creationTimestamp']),
    revision,
  };
}

/** Reads a stored Node value into a {@link SchedNode}. */
export function parseSchedNode(value: unknown): SchedNode | undefined {
  const node = obj(value);
  const meta = obj(node?.['metadata']);
  const name = str(meta?.['name']);
  if (meta === undefined || name === undefined) return undefined;
  const spec = obj(node?.['spec']) ?? {};
  const status = obj(node?.['status']) ?? {};
  const list = obj(status['allocatable']) ?? obj(status['capacity']) ?? {};
  const allocatable: Record<string, number> = {};
  for (const [k, v] of Object.entries(list)) {
    const n = schedulerUnits(k, v);
    if (n !== undefined) allocatable[k] = n;
  }
  const readyCond = arr(status['conditions']).map(obj).find((c) => c?.['type'] === 'Ready');
  const readyStatus = str(readyCond?.['status']);
  return {
    name,
    labels: strMap(meta['labels']),
    taints: arr(spec['taints']).flatMap((e) => {
      const o = obj(e);
      const key = str(o?.['key']);
      const effect = str(o?.['effect']);
      return key === undefined || effect === undefined ? [] : [{ key, value: str(o?.['value']) ?? '', effect }];
    }),
    unschedulable: spec['unschedulable'] === true,
    allocatable,
    ready:
      readyCond === undefined
        ? undefined
        : {
            status: readyStatus === 'True' || readyStatus === 'False' ? readyStatus : 'Unknown',
            heartbeat: time(readyCond['lastHeartbeatTime'] ?? readyCond['lastTransitionTime']),
          },
  };
}

/** Namespace labels by namespace name (for affinity terms with a `namespaceSelector`). */
export type NamespaceLabels = ReadonlyMap<string, Readonly<Record<string, string>>>;

/** Reads a stored Namespace value into its name and labels. */
export function parseNamespaceLabels(value: unknown): { name: string; labels: Record<string, string> } | undefined {
  const meta = obj(obj(value)?.['metadata']);
  const name = str(meta?.['name']);
  return name === undefined ? undefined : { name, labels: strMap(meta?.['labels']) };
}

