/**
 * The scheduler's decision core: which node a pending pod goes to, or why none fits, as Kubernetes'
 * default scheduler profile decides it (filters, then weighted scores), with deterministic tie-breaks.
 * Pure: a snapshot and the time in, decisions out.
 *
 * Filters, in Kubernetes' order; a node's reasons are those of the first filter that rejects it:
 *   NodeUnschedulable → TaintToleration → NodeAffinity (nodeSelector + required node affinity) →
 *   NodeResourcesFit → PodTopologySpread (DoNotSchedule).
 * Scores (weight): TaintToleration (3, PreferNoSchedule), NodeAffinity (2, preferred terms),
 *   NodeResourcesFit LeastAllocated (1, cpu/memory), PodTopologySpread (2, ScheduleAnyway),
 *   InterPodAffinity (2, preferred pod affinity and anti-affinity, both directions).
 * The highest total wins; equal totals go to the node whose name sorts first (Kubernetes picks at random).
 */
import type { NamespaceLabels, Resources, SchedNode, SchedPod, SpreadConstraint, WeightedPodAffinityTerm } from './model.js';
import { CPU, MEMORY, PODS } from './quantity.js';
import type { LabelSelector, Taint } from './selectors.js';
import { firstUntoleratedTaint, labelSelectorMatches, nodeSelectorTermMatches, nodeSelectorTermsMatch, tolerationsTolerate } from './selectors.js';

/** Kubernetes' reason strings (scheduler plugins), so that messages read as a cluster's would. */
export const REASONS = {
  unschedulable: "node(s) were unschedulable",
  nodeAffinity: "node(s) didn't match Pod's node affinity/selector",
  tooManyPods: 'Too many pods',
  spread: "node(s) didn't match pod topology spread constraints",
  spreadMissingLabel: "node(s) didn't match pod topology spread constraints (missing required label)",
} as const;

/** `Insufficient <resource>` (NodeResourcesFit). */
export function insufficient(resource: string): string {
  return `Insufficient ${resource}`;
}

/** `node(s) had untolerated taint {<key>: <value>}` (TaintToleration). */
export function untoleratedTaint(taint: Taint): string {
  return `node(s) had untolerated taint {${taint.key}: ${taint.value}}`;
}

/** The message when the cluster has no node at all (Kubernetes' `ErrNoNodesAvailable`). */
export const NO_NODES_MESSAGE = 'no nodes available to schedule pods';

/** Taints the node lifecycle controller puts on nodes that are not ready; the scheduler adds them from the Ready condition. */
export const NOT_READY_TAINT = 'node.kubernetes.io/not-ready';
export const UNREACHABLE_TAINT = 'node.kubernetes.io/unreachable';
export const UNSCHEDULABLE_TAINT = 'node.kubernetes.io/unschedulable';

const MAX_NODE_SCORE = 100;
/** Kubernetes' defaults for containers that request no cpu/memory, used in scoring only. */
const DEFAULT_MILLI_CPU = 100;
const DEFAULT_MEMORY = 200 * 1024 * 1024;

/** How the scheduler treats node readiness. */
export interface SchedulerPolicy {
  /**
   * A node whose Ready heartbeat is older than this (ms) is unreachable: it gets the `unreachable`
   * NoSchedule taint, as the node lifecycle controller would give it (Kubernetes' grace period: 40 s).
   * 0 switches readiness checks off (every node is taken as ready).
   */
  nodeReadyGraceMs: number;
}

/** Everything the decision looks at. */
export interface Snapshot {
  /** Every node of the cluster. */
  nodes: readonly SchedNode[];
  /** Every pod: bound ones hold resources and count for spreading; pending ones get scheduled. */
  pods: readonly SchedPod[];
  namespaces: NamespaceLabels;
}

/** Why a pod cannot go anywhere: the reasons per node and Kubernetes' summary. */
export interface Unschedulable {
  /** `0/N nodes are available: <count> <reason>, ….` (Kubernetes' FitError) */
  message: string;
  /** The reasons of each node. */
  reasons: ReadonlyMap<string, readonly string[]>;
}

/** The outcome for one pod. */
export type ScheduleResult =
  | { node: string; scores: ReadonlyMap<string, number> }
  | { unschedulable: Unschedulable };

/** The decisions of one pass over all pending pods. */
export interface SchedulePlan {
  binds: { pod: SchedPod; node: string }[];
  unschedulable: { pod: SchedPod; message: string }[];
}

/** True when the pod waits for a node: no nodeName, not terminating, not ended, ours to schedule. */
export function isPending(pod: SchedPod): boolean {
  return pod.nodeName === undefined && !pod.terminating && !pod.terminal && pod.schedulerName === 'default-scheduler';
}

/** The node's taints plus those its readiness implies (not-ready / unreachable, NoSchedule). */
export function effectiveTaints(node: SchedNode, now: number, policy: SchedulerPolicy): Taint[] {
  const taints = [...node.taints];
  if (policy.nodeReadyGraceMs > 0) {
    const r = node.ready;
    const add = (key: string): void => {
      if (!taints.some((t) => t.key === key && t.effect === 'NoSchedule')) taints.push({ key, value: '', effect: 'NoSchedule' });
    };
    if (r === undefined || r.status === 'Unknown' || (r.status === 'True' && now - r.heartbeat > policy.nodeReadyGraceMs)) add(UNREACHABLE_TAINT);
    else if (r.status === 'False') add(NOT_READY_TAINT);
  }
  return taints;
}

/** One node with the pods bound to it. */
interface NodeInfo {
  node: SchedNode;
  taints: Taint[];
  pods: SchedPod[];
  requested: Record<string, number>;
  nonZeroCpu: number;
  nonZeroMemory: number;
}

function nonZero(pod: SchedPod): { cpu: number; memory: number } {
  return { cpu: pod.requests[CPU] ?? DEFAULT_MILLI_CPU, memory: pod.requests[MEMORY] ?? DEFAULT_MEMORY };
}

function addPod(info: NodeInfo, pod: SchedPod): void {
  info.pods.push(pod);
  for (const [k, v] of Object.entries(pod.requests)) info.requested[k] = (info.requested[k] ?? 0) + v;
  const nz = nonZero(pod);
  info.nonZeroCpu += nz.cpu;
  info.nonZeroMemory += nz.memory;
}

function buildInfos(snapshot: Snapshot, now: number, policy: SchedulerPolicy): NodeInfo[] {
  const infos = [...snapshot.nodes]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((node): NodeInfo => ({ node, taints: effectiveTaints(node, now, policy), pods: [], requested: {}, nonZeroCpu: 0, nonZeroMemory: 0 }));
  const byName = new Map(infos.map((i) => [i.node.name, i]));
  for (const p of snapshot.pods) {
    if (p.nodeName === undefined || p.terminal) continue;
    const info = byName.get(p.nodeName);
    if (info !== undefined) addPod(info, p);
  }
  return infos;
}

// ------------------------------------------------------------------ filters

function matchesNodeSelectorAndAffinity(pod: SchedPod, node: SchedNode): boolean {
  for (const [k, v] of Object.entries(pod.nodeSelector)) if (node.labels[k] !== v) return false;
  return pod.requiredNodeTerms === undefined || nodeSelectorTermsMatch(pod.requiredNodeTerms, node);
}

/** Resources Kubernetes always knows about; a lab node that lists none of them is not limited by them. */
const NATIVE_RESOURCES = [CPU, MEMORY, 'ephemeral-storage'];

function fitReasons(pod: SchedPod, info: NodeInfo): string[] {
  const reasons: string[] = [];
  const alloc: Resources = info.node.allocatable;
  if (alloc[PODS] !== undefined && info.pods.length + 1 > alloc[PODS]) reasons.push(REASONS.tooManyPods);
  const requested = Object.keys(pod.requests).filter((r) => r !== PODS && (pod.requests[r] ?? 0) > 0);
  const native = NATIVE_RESOURCES.filter((r) => requested.includes(r));
  const extended = requested.filter((r) => !NATIVE_RESOURCES.includes(r)).sort();
  for (const r of [...native, ...extended]) {
    const have = alloc[r];
    // cpu/memory/ephemeral-storage are checked only when the node states them (lab nodes may not);
    // an extended resource the node does not list is zero, as in Kubernetes.
    if (have === undefined && NATIVE_RESOURCES.includes(r)) continue;
    if ((pod.requests[r] ?? 0) > (have ?? 0) - (info.requested[r] ?? 0)) reasons.push(insufficient(r));
  }
  return reasons;
}

/** A spread constraint with its selector made ready (matchLabelKeys merged). */
interface Constraint {
  c: SpreadConstraint;
  selector: LabelSelector | undefined;
}

function constraintsOf(pod: SchedPod, action: 'DoNotSchedule' | 'ScheduleAnyway'): Constraint[] {
  return pod.spread
    .filter((c) => c.whenUnsatisfiable === action)
    .map((c) => {
      let selector = c.labelSelector;
      const extra: Record<string, string> = {};
      for (const k of c.matchLabelKeys) if (pod.labels[k] !== undefined) extra[k] = pod.labels[k];
      if (Object.keys(extra).length > 0) selector = { matchLabels: { ...(selector?.matchLabels ?? {}), ...extra }, matchExpressions: [...(selector?.matchExpressions ?? [])] };
      return { c, selector };
    });
}

function isEmptySelector(s: LabelSelector | undefined): boolean {
  return s !== undefined && Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0;
}

/** Kubernetes' `countPodsMatchSelector`: same namespace, not terminating; an empty selector counts none. */
function countMatching(pods: readonly SchedPod[], selector: LabelSelector | undefined, namespace: string): number {
  if (selector === undefined || isEmptySelector(selector)) return 0;
  let n = 0;
  for (const p of pods) if (!p.terminating && p.namespace === namespace && labelSelectorMatches(selector, p.labels)) n++;
  return n;
}

function hasAllKeys(node: SchedNode, constraints: readonly Constraint[]): boolean {
  return constraints.every((x) => node.labels[x.c.topologyKey] !== undefined);
}

function includedBySpreadPolicies(x: Constraint, pod: SchedPod, info: NodeInfo): boolean {
  if (x.c.nodeAffinityPolicy !== 'Ignore' && !matchesNodeSelectorAndAffinity(pod, info.node)) return false;
  if (x.c.nodeTaintsPolicy === 'Honor' && firstUntoleratedTaint(info.taints, pod.tolerations) !== undefined) return false;
  return true;
}

/** PodTopologySpread's pre-filter state: matching pods per domain, over eligible nodes. */
interface SpreadState {
  constraints: Constraint[];
  /** `key\0value` → matching pods. */
  counts: Map<string, number>;
  /** key → number of domains; key → the smallest count. */
  domains: Map<string, number>;
  minimum: Map<string, number>;
}

const pair = (key: string, value: string): string => `${key}\u0000${value}`;

function spreadState(pod: SchedPod, infos: readonly NodeInfo[]): SpreadState {
  const constraints = constraintsOf(pod, 'DoNotSchedule');
  const counts = new Map<string, number>();
  for (const info of infos) {
    if (!hasAllKeys(info.node, constraints)) continue;
    for (const x of constraints) {
      if (!includedBySpreadPolicies(x, pod, info)) continue;
      const p = pair(x.c.topologyKey, info.node.labels[x.c.topologyKey] ?? '');
      counts.set(p, (counts.get(p) ?? 0) + countMatching(info.pods, x.selector, pod.namespace));
    }
  }
  const domains = new Map<string, number>();
  const minimum = new Map<string, number>();
  for (const [p, n] of counts) {
    const key = p.slice(0, p.indexOf('\u0000'));
    domains.set(key, (domains.get(key) ?? 0) + 1);
    minimum.set(key, Math.min(minimum.get(key) ?? Number.MAX_SAFE_INTEGER, n));
  }
  return { constraints, counts, domains, minimum };
}

function spreadReasons(pod: SchedPod, node: SchedNode, s: SpreadState): string[] {
  for (const x of s.constraints) {
    const value = node.labels[x.c.topologyKey];
    if (value === undefined) return [REASONS.spreadMissingLabel];
    // No eligible domain at all: Kubernetes' critical path stays at MaxInt32, so the skew is negative.
    let min = s.minimum.get(x.c.topologyKey) ?? 2147483647;
    if ((s.domains.get(x.c.topologyKey) ?? 0) < x.c.minDomains) min = 0;
    const self = x.selector !== undefined && labelSelectorMatches(x.selector, pod.labels) ? 1 : 0;
    const skew = (s.counts.get(pair(x.c.topologyKey, value)) ?? 0) + self - min;
    if (skew > x.c.maxSkew) return [REASONS.spread];
  }
  return [];
}

function filterNode(pod: SchedPod, info: NodeInfo, spread: SpreadState): string[] {
  const node = info.node;
  if (node.unschedulable && !tolerationsTolerate(pod.tolerations, { key: UNSCHEDULABLE_TAINT, value: '', effect: 'NoSchedule' })) return [REASONS.unschedulable];
  const taint = firstUntoleratedTaint(info.taints, pod.tolerations);
  if (taint !== undefined) return [untoleratedTaint(taint)];
  if (!matchesNodeSelectorAndAffinity(pod, node)) return [REASONS.nodeAffinity];
  const fit = fitReasons(pod, info);
  if (fit.length > 0) return fit;
  return spreadReasons(pod, node, spread);
}

/** Kubernetes' FitError message: `0/N nodes are available: <count> <reason>, ….` (reasons sorted as strings). */
export function fitErrorMessage(totalNodes: number, reasons: ReadonlyMap<string, readonly string[]>): string {
  if (totalNodes === 0) return NO_NODES_MESSAGE;
  const histogram = new Map<string, number>();
  for (const list of reasons.values()) for (const r of list) histogram.set(r, (histogram.get(r) ?? 0) + 1);
  const parts = [...histogram].map(([r, n]) => `${n} ${r}`).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `0/${totalNodes} nodes are available: ${parts.join(', ')}.`;
}

// ------------------------------------------------------------------ scores

/** Kubernetes' `DefaultNormalizeScore`. */
function defaultNormalize(scores: number[], reverse: boolean): number[] {
  const max = Math.max(0, ...scores);
  if (max === 0) return scores.map(() => (reverse ? MAX_NODE_SCORE : 0));
  return scores.map((s) => {
    const v = Math.trunc((MAX_NODE_SCORE * s) / max);
    return reverse ? MAX_NODE_SCORE - v : v;
  });
}

function taintScores(pod: SchedPod, feasible: readonly NodeInfo[]): number[] {
  const tolerations = pod.tolerations.filter((t) => t.effect === undefined || t.effect === '' || t.effect === 'PreferNoSchedule');
  const raw = feasible.map((i) => i.taints.filter((t) => t.effect === 'PreferNoSchedule' && !tolerationsTolerate(tolerations, t)).length);
  return defaultNormalize(raw, true);
}

function nodeAffinityScores(pod: SchedPod, feasible: readonly NodeInfo[]): number[] {
  const raw = feasible.map((i) => pod.preferredNodeTerms.reduce((sum, t) => sum + (nodeSelectorTermMatches(t.preference, i.node) ? t.weight : 0), 0));
  return defaultNormalize(raw, false);
}

function leastAllocatedScores(pod: SchedPod, feasible: readonly NodeInfo[]): number[] {
  const nz = nonZero(pod);
  return feasible.map((i) => {
    let sum = 0;
    let weights = 0;
    for (const [r, requested] of [[CPU, i.nonZeroCpu + nz.cpu], [MEMORY, i.nonZeroMemory + nz.memory]] as const) {
      const cap = i.node.allocatable[r] ?? 0;
      if (cap === 0) continue;
      sum += requested > cap ? 0 : Math.trunc(((cap - requested) * MAX_NODE_SCORE) / cap);
      weights += 1;
    }
    return weights === 0 ? 0 : Math.trunc(sum / weights);
  });
}

const HOSTNAME_LABEL = 'kubernetes.io/hostname';

function spreadScores(pod: SchedPod, feasible: readonly NodeInfo[], all: readonly NodeInfo[]): number[] {
  const constraints = constraintsOf(pod, 'ScheduleAnyway');
  if (constraints.length === 0) return feasible.map(() => 0);
  const ignored = new Set(feasible.filter((i) => !hasAllKeys(i.node, constraints)).map((i) => i.node.name));
  const counts = constraints.map(() => new Map<string, number>());
  const sizes = constraints.map(() => 0);
  for (const i of feasible) {
    if (ignored.has(i.node.name)) continue;
    constraints.forEach((x, k) => {
      if (x.c.topologyKey === HOSTNAME_LABEL) return;
      const v = i.node.labels[x.c.topologyKey] ?? '';
      if (!counts[k]!.has(v)) {
        counts[k]!.set(v, 0);
        sizes[k]!++;
      }
    });
  }
  const weights = constraints.map((x, k) => Math.log((x.c.topologyKey === HOSTNAME_LABEL ? feasible.length - ignored.size : sizes[k]!) + 2));
  for (const i of all) {
    if (!hasAllKeys(i.node, constraints)) continue;
    constraints.forEach((x, k) => {
      if (!includedBySpreadPolicies(x, pod, i)) return;
      const v = i.node.labels[x.c.topologyKey] ?? '';
      const cur = counts[k]!.get(v);
      if (cur === undefined) return;
      counts[k]!.set(v, cur + countMatching(i.pods, x.selector, pod.namespace));
    });
  }
  const raw = feasible.map((i) => {
    if (ignored.has(i.node.name)) return 0;
    let score = 0;
    constraints.forEach((x, k) => {
      const v = i.node.labels[x.c.topologyKey];
      if (v === undefined) return;
      const cnt = x.c.topologyKey === HOSTNAME_LABEL ? countMatching(i.pods, x.selector, pod.namespace) : (counts[k]!.get(v) ?? 0);
      score += cnt * weights[k]! + (x.c.maxSkew - 1);
    });
    return Math.round(score);
  });
  let min = Number.MAX_SAFE_INTEGER;
  let max = 0;
  feasible.forEach((i, k) => {
    if (ignored.has(i.node.name)) return;
    min = Math.min(min, raw[k]!);
    max = Math.max(max, raw[k]!);
  });
  return feasible.map((i, k) => {
    if (ignored.has(i.node.name)) return 0;
    if (max === 0) return MAX_NODE_SCORE;
    return Math.trunc((MAX_NODE_SCORE * (max + min - raw[k]!)) / max);
  });
}

function termMatches(term: WeightedPodAffinityTerm['term'], owner: SchedPod, target: SchedPod, namespaces: NamespaceLabels): boolean {
  const inNamespaces =
    term.namespaces.length === 0 && term.namespaceSelector === undefined
      ? target.namespace === owner.namespace
      : term.namespaces.includes(target.namespace) || (term.namespaceSelector !== undefined && labelSelectorMatches(term.namespaceSelector, namespaces.get(target.namespace) ?? {}));
  return inNamespaces && labelSelectorMatches(term.labelSelector, target.labels);
}

function interPodScores(pod: SchedPod, feasible: readonly NodeInfo[], all: readonly NodeInfo[], namespaces: NamespaceLabels): number[] {
  // topologyKey → value → score, as Kubernetes' InterPodAffinity PreScore builds it.
  const topo = new Map<string, Map<string, number>>();
  const add = (node: SchedNode, key: string, weight: number): void => {
    const v = node.labels[key];
    if (v === undefined) return;
    let m = topo.get(key);
    if (m === undefined) topo.set(key, (m = new Map<string, number>()));
    m.set(v, (m.get(v) ?? 0) + weight);
  };
  for (const info of all) {
    if (Object.keys(info.node.labels).length === 0) continue;
    for (const existing of info.pods) {
      for (const t of pod.preferredAffinity) if (termMatches(t.term, pod, existing, namespaces)) add(info.node, t.term.topologyKey, t.weight);
      for (const t of pod.preferredAntiAffinity) if (termMatches(t.term, pod, existing, namespaces)) add(info.node, t.term.topologyKey, -t.weight);
      for (const t of existing.preferredAffinity) if (termMatches(t.term, existing, pod, namespaces)) add(info.node, t.term.topologyKey, t.weight);
      for (const t of existing.preferredAntiAffinity) if (termMatches(t.term, existing, pod, namespaces)) add(info.node, t.term.topologyKey, -t.weight);
    }
  }
  if (topo.size === 0) return feasible.map(() => 0);
  const raw = feasible.map((i) => {
    let s = 0;
    for (const [key, values] of topo) {
      const v = i.node.labels[key];
      if (v !== undefined) s += values.get(v) ?? 0;
    }
    return s;
  });
  const min = Math.min(...raw);
  const diff = Math.max(...raw) - min;
  return raw.map((s) => (diff > 0 ? Math.trunc((MAX_NODE_SCORE * (s - min)) / diff) : 0));
}

const WEIGHTS = { taint: 3, nodeAffinity: 2, fit: 1, spread: 2, interPod: 2 } as const;

/** Decides for one pending pod over the node infos (which it does not change). */
function decide(pod: SchedPod, infos: readonly NodeInfo[], namespaces: NamespaceLabels): ScheduleResult {
  const spread = spreadState(pod, infos);
  const reasons = new Map<string, string[]>();
  const feasible: NodeInfo[] = [];
  for (const info of infos) {
    const r = filterNode(pod, info, spread);
    if (r.length === 0) feasible.push(info);
    else reasons.set(info.node.name, r);
  }
  if (feasible.length === 0) return { unschedulable: { message: fitErrorMessage(infos.length, reasons), reasons } };
  const parts = [
    taintScores(pod, feasible).map((s) => s * WEIGHTS.taint),
    nodeAffinityScores(pod, feasible).map((s) => s * WEIGHTS.nodeAffinity),
    leastAllocatedScores(pod, feasible).map((s) => s * WEIGHTS.fit),
    spreadScores(pod, feasible, infos).map((s) => s * WEIGHTS.spread),
    interPodScores(pod, feasible, infos, namespaces).map((s) => s * WEIGHTS.interPod),
  ];
  const scores = new Map<string, number>();
  let best: NodeInfo | undefined;
  let bestScore = -Infinity;
  feasible.forEach((info, k) => {
    const total = parts.reduce((sum, p) => sum + (p[k] ?? 0), 0);
    scores.set(info.node.name, total);
    // infos are sorted by name, so a strictly greater score is needed to move past an earlier node.
    if (total > bestScore) {
      best = info;
      bestScore = total;
    }
  });
  return { node: best!.node.name, scores };
}

/**
 * Schedules one pending pod against a snapshot (the pod itself may or may not be in `snapshot.pods`;
 * only bound pods count). Pure.
 */
export function scheduleOne(pod: SchedPod, snapshot: Snapshot, now: number, policy: SchedulerPolicy): ScheduleResult {
  const others = { ...snapshot, pods: snapshot.pods.filter((p) => p.key !== pod.key) };
  return decide(pod, buildInfos(others, now, policy), snapshot.namespaces);
}

/** The order pending pods are scheduled in: priority (high first), creation time, then namespace/name. */
export function comparePending(a: SchedPod, b: SchedPod): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.created !== b.created) return a.created - b.created;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * One pass: every pending pod, in {@link comparePending} order, each decision seeing the pods bound
 * before it in the same pass (as Kubernetes' assumed pods). Pure; the same snapshot gives the same plan.
 */
export function planSchedule(snapshot: Snapshot, now: number, policy: SchedulerPolicy): SchedulePlan {
  const infos = buildInfos(snapshot, now, policy);
  const byName = new Map(infos.map((i) => [i.node.name, i]));
  const plan: SchedulePlan = { binds: [], unschedulable: [] };
  for (const pod of snapshot.pods.filter(isPending).sort(comparePending)) {
    const r = decide(pod, infos, snapshot.namespaces);
    if ('node' in r) {
      plan.binds.push({ pod, node: r.node });
      addPod(byName.get(r.node)!, { ...pod, nodeName: r.node });
    } else {
      plan.unschedulable.push({ pod, message: r.unschedulable.message });
    }
  }
  return plan;
}
