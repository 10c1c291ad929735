/**
 * Gateway maintenance (calico-semantics.md 2.6; docs/egress-calc.md, "Gateway maintenance"): which client
 * pods route through a gateway pod that is terminating, and the three Calico annotations each of them
 * should carry. Pure: the caller passes the time.
 *
 * The relation (`terminatingGatewaysByClient`) is the same one the agents' calculators route by: a
 * client's rules (annotation method or EgressGatewayPolicy) name selections; a terminating member of such a
 * selection is one of its gateways, narrowed for a maxNextHops rule to the stored choice (which keeps a
 * terminating gateway while it drains, see the calculator) and for a PreferNodeLocal rule to the gateways
 * the rule really uses.
 */
import { GATEWAY_MAINTENANCE_ANNOTATIONS, type EgressGatewayPolicy, type FelixConfiguration, type Namespace, type Pod } from '../api/index.js';
import { effectiveFelixSettings, type EgressIPSupport } from '../api/kinds/felix-configuration.js';
import { namespaceLabels, type Labels } from '../api/selector/index.js';
import { parseIpv4 } from '../platform/ipv4.js';
import { podLabels } from './calculator.js';
import { egressAnnotationsOf, resolveEgressSource, type EgressAnnotations } from './egress-source.js';
import { podFacts, type PodFacts } from './pod-facts.js';
import { annotationRule, policyRules, type RuleSpec } from './policy-rules.js';
import { Selection, type SelectionScope } from './selection.js';
import type { CalcResource, EgressNextHops } from './types.js';

const [GATEWAY_IP, STARTED, FINISHED] = GATEWAY_MAINTENANCE_ANNOTATIONS;

/** Kubernetes' default `terminationGracePeriodSeconds`. */
const DEFAULT_GRACE_SECONDS = 30;

/** When a terminating gateway started terminating and when its grace period ends (ms since the epoch). */
export interface TerminationWindow {
  /** The gateway pod, `namespace/name`. */
  gateway: string;
  ip: string;
  startedMs: number;
  finishedMs: number;
}

/** The three annotations of one client, as values. */
export interface GatewayMaintenance {
  gatewayIP: string;
  /** RFC 3339. */
  started: string;
  /** RFC 3339. */
  finished: string;
}

/** One client pod whose maintenance annotations must change: `set` them, or remove them (undefined). */
export interface MaintenancePatch {
  namespace: string;
  name: string;
  /** The pod's `metadata.uid` when it has one (the writer checks it is still the same pod). */
  uid: string | undefined;
  set: GatewayMaintenance | undefined;
}

/** What {@link planGatewayMaintenance} returns. */
export interface MaintenancePlan {
  /** Sorted by namespace, then name. */
  patches: MaintenancePatch[];
  /**
   * The earliest time at which the plan changes without any resource changing (an annotation kept for a
   * gateway that is already gone expires): plan again then. Undefined when no such time is pending.
   */
  nextCheckMs: number | undefined;
}

/** Everything the planner reads. */
export interface MaintenanceInput {
  /** Pods, Namespaces, EgressGatewayPolicies and FelixConfiguration `default`, validated. */
  resources: readonly CalcResource[];
  /** Every stored maxNextHops record. */
  nextHops?: readonly EgressNextHops[];
  nowMs: number;
}

/** RFC 3339 in UTC, without fractional seconds when there are none (as Kubernetes writes timestamps). */
export function rfc3339(ms: number): string {
  const text = new Date(ms).toISOString();
  return text.endsWith('.000Z') ? `${text.slice(0, -5)}Z` : text;
}

/**
 * The termination window of a pod that is being deleted: started = `deletionTimestamp` − grace, finished =
 * `deletionTimestamp` (the kubelet kills it then at the latest), the grace being
 * `metadata.deletionGracePeriodSeconds`, else `spec.terminationGracePeriodSeconds`, else 30 s. Undefined
 * when the pod is not terminating, has no IPv4 address, or its grace is 0 (`--grace-period=0` warns nobody,
 * as in Calico).
 */
export function terminationWindow(pod: Pod, facts: PodFacts = podFacts(pod)): TerminationWindow | undefined {
  const deletion = pod.metadata.deletionTimestamp;
  if (deletion === undefined || deletion === '' || facts.ip === undefined || facts.hostNetwork) return undefined;
  const finishedMs = Date.parse(deletion);
  if (Number.isNaN(finishedMs)) return undefined;
  const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
  if (grace <= 0) return undefined;
  return { gateway: keyOf(pod), ip: facts.ip, startedMs: finishedMs - grace * 1000, finishedMs };
}

/** The maintenance annotations a pod carries now, when all three are there and readable. */
export function currentMaintenance(pod: Pod): (GatewayMaintenance & { finishedMs: number }) | undefined {
  const a = pod.metadata.annotations;
  const gatewayIP = a?.[GATEWAY_IP];
  const started = a?.[STARTED];
  const finished = a?.[FINISHED];
  if (gatewayIP === undefined || started === undefined || finished === undefined) return undefined;
  const finishedMs = Date.parse(finished);
  if (parseIpv4(gatewayIP) === undefined || Number.isNaN(finishedMs) || Number.isNaN(Date.parse(started))) return undefined;
  return { gatewayIP, started, finished, finishedMs };
}

function keyOf(pod: Pod): string {
  return `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
}

interface Client {
  pod: Pod;
  key: string;
  facts: PodFacts;
  rules: { spec: RuleSpec; selection: Selection<Pod> }[];
}

/**
 * For every client pod that routes through at least one terminating gateway: those gateways' windows,
 * sorted by finish time, then address. A pod matched by a selection in use is a gateway, never a client
 * (docs/egress-calc.md, "Gateways"); hostNetwork and finished pods are never clients.
 */
export function terminatingGatewaysByClient(resources: readonly CalcResource[], nextHops: readonly EgressNextHops[] = []): Map<string, TerminationWindow[]> {
  const pods: Pod[] = [];
  const namespaces = new Map<string, { labels: Labels; ann: EgressAnnotations | undefined }>();
  const policies = new Map<string, EgressGatewayPolicy>();
  let felix: FelixConfiguration | undefined;
  for (const r of resources) {
    if (r.kind === 'Pod') pods.push(r);
    else if (r.kind === 'Namespace') namespaces.set(r.metadata.name, nsEntry(r));
    else if (r.kind === 'EgressGatewayPolicy') policies.set(r.metadata.name, r);
    else if (r.kind === 'FelixConfiguration' && r.metadata.name === 'default') felix = r;
  }
  const out = new Map<string, TerminationWindow[]>();
  const facts = new Map<Pod, PodFacts>(pods.map((p) => [p, podFacts(p)]));
  const terminating: { pod: Pod; window: TerminationWindow }[] = [];
  for (const p of pods) {
    const w = terminationWindow(p, facts.get(p));
    if (w !== undefined) terminating.push({ pod: p, window: w });
  }
  // Egress is off: nothing routes through a gateway (calico-semantics.md 1.4).
  const mode: EgressIPSupport = effectiveFelixSettings(felix).egressIPSupport;
  if (terminating.length === 0 || mode === 'Disabled') return out;

  const nsLabels = (ns: string): Labels => namespaces.get(ns)?.labels ?? namespaceLabels({ name: ns });
  const selections = new Map<string, Selection<Pod>>();
  const selectionOf = (selector: string | undefined, scope: SelectionScope | undefined): Selection<Pod> => {
    const s = new Selection<Pod>(selector, scope);
    const known = selections.get(s.key);
    if (known !== undefined) return known;
    selections.set(s.key, s);
    return s;
  };
  const matches = (s: Selection<Pod>, p: Pod): boolean => {
    const ns = p.metadata.namespace ?? 'default';
    return s.matcher !== undefined && s.inScope(ns, () => nsLabels(ns)) && s.matcher.evaluate(podLabels(ns, p));
  };

  // The clients and the selections their rules name (built as the calculator builds a configuration).
  const clients: Client[] = [];
  for (const pod of pods) {
    const f = facts.get(pod)!;
    if (f.hostNetwork || f.finished) continue;
    const ns = pod.metadata.namespace ?? 'default';
    const source = resolveEgressSource(mode, egressAnnotationsOf(pod.metadata.annotations), namespaces.get(ns)?.ann);
    if (source === undefined) continue;
    let specs: RuleSpec[];
    if (source.method === 'selector') specs = [annotationRule(source.selector, source.namespaceSelector, source.maxNextHops)];
    else {
      const policy = policies.get(source.policy);
      specs = policy === undefined ? [] : policyRules(policy);
    }
    const rules: Client['rules'] = [];
    for (const spec of specs) {
      const gw = spec.gateway;
      if (gw === undefined || spec.skip !== undefined) continue;
      const scope: SelectionScope | undefined = gw.ownNamespace
        ? { kind: 'namespace', namespace: ns }
        : gw.namespaceSelector === undefined
          ? undefined
          : { kind: 'namespaceSelector', selector: gw.namespaceSelector };
      rules.push({ spec, selection: selectionOf(gw.selector, scope) });
    }
    if (rules.length > 0) clients.push({ pod, key: keyOf(pod), facts: f, rules });
  }

  // Terminating members of each selection in use.
  const members = new Map<Selection<Pod>, { pod: Pod; window: TerminationWindow }[]>();
  for (const s of selections.values()) members.set(s, terminating.filter((t) => matches(s, t.pod)));
  const records = new Map(nextHops.map((r) => [r.client, r]));
  const byNode = new Map<string, Pod[]>();
  for (const p of pods) {
    const node = p.spec.nodeName;
    if (node !== undefined && node !== '') byNode.set(node, [...(byNode.get(node) ?? []), p]);
  }

  for (const c of clients) {
    const windows = new Map<string, TerminationWindow>();
    for (const { spec, selection } of c.rules) {
      const terminatingMembers = members.get(selection)!;
      if (terminatingMembers.length === 0) continue;
      let used = terminatingMembers;
      if ((spec.gateway?.maxNextHops ?? 0) > 0) {
        const record = records.get(c.key);
        const choice = record !== undefined && (record.podUID === c.facts.uid || record.podUID === '') ? record.rules[selection.key] : undefined;
        // No stored choice yet: the client's agent routes through every usable member until it writes one.
        if (choice !== undefined) used = used.filter((t) => choice.gateways.includes(t.window.gateway));
      }
      if (spec.preferNodeLocal) {
        // PreferNodeLocal: the ready gateways on the client's node, when there are any, are the only ones used.
        const node = c.pod.spec.nodeName;
        const local = node === undefined ? [] : (byNode.get(node) ?? []).filter((g) => facts.get(g)!.ready && matches(selection, g));
        if (local.length > 0) used = [];
        else if (used.some((t) => t.pod.spec.nodeName === node)) used = used.filter((t) => t.pod.spec.nodeName === node);
      }
      for (const t of used) windows.set(t.window.gateway, t.window);
    }
    if (windows.size === 0) continue;
    // A gateway is never a client.
    let isGateway = false;
    for (const s of selections.values()) if (matches(s, c.pod)) { isGateway = true; break; }
    if (isGateway) continue;
    out.set(c.key, [...windows.values()].sort(byFinish));
  }
  return out;
}

function byFinish(a: TerminationWindow, b: TerminationWindow): number {
  return a.finishedMs - b.finishedMs || parseIpv4(a.ip)! - parseIpv4(b.ip)!;
}

function nsEntry(ns: Namespace): { labels: Labels; ann: EgressAnnotations | undefined } {
  return { labels: namespaceLabels({ name: ns.metadata.name, labels: ns.metadata.labels }), ann: egressAnnotationsOf(ns.metadata.annotations) };
}

/**
 * The maintenance annotations every pod should carry, as the patches that get there from what the pods
 * carry now. Per client, of these candidates the one **finishing first** (ties: lower address) — the one
 * the application must act on first:
 * - the terminating gateways it routes through;
 * - the gateway its annotations already name, when that gateway is gone (no terminating pod has that
 *   address any more) and its finish time is still ahead: a gateway that exits early does not take the
 *   warning back; it goes at the finish time (see `nextCheckMs`), or at once when the pod stops being a
 *   client.
 * None when there is no candidate.
 * Idempotent: applying the patches and planning again gives no patch.
 */
export function planGatewayMaintenance(input: MaintenanceInput): MaintenancePlan {
  const relation = terminatingGatewaysByClient(input.resources, input.nextHops);
  const terminatingIps = new Set<string>();
  const clientKeys = new Set<string>();
  const pods: Pod[] = [];
  let felix: FelixConfiguration | undefined;
  const nsAnn = new Map<string, EgressAnnotations | undefined>();
  for (const r of input.resources) {
    if (r.kind === 'Pod') {
      pods.push(r);
      const w = terminationWindow(r);
      if (w !== undefined) terminatingIps.add(w.ip);
    } else if (r.kind === 'Namespace') nsAnn.set(r.metadata.name, egressAnnotationsOf(r.metadata.annotations));
    else if (r.kind === 'FelixConfiguration' && r.metadata.name === 'default') felix = r;
  }
  const mode = effectiveFelixSettings(felix).egressIPSupport;
  for (const p of pods) {
    const ns = p.metadata.namespace ?? 'default';
    const f = podFacts(p);
    if (!f.hostNetwork && !f.finished && resolveEgressSource(mode, egressAnnotationsOf(p.metadata.annotations), nsAnn.get(ns)) !== undefined) clientKeys.add(keyOf(p));
  }
  const patches: MaintenancePatch[] = [];
  let nextCheckMs: number | undefined;
  for (const p of pods) {
    const key = keyOf(p);
    const current = currentMaintenance(p);
    let desired: GatewayMaintenance | undefined;
    const first = relation.get(key)?.[0];
    // The warning of a gateway already gone stands until its finish time (it is not taken back early).
    const kept = current !== undefined && clientKeys.has(key) && !terminatingIps.has(current.gatewayIP) && current.finishedMs > input.nowMs ? current : undefined;
    const keptFirst = kept !== undefined && (first === undefined || kept.finishedMs < first.finishedMs || (kept.finishedMs === first.finishedMs && parseIpv4(kept.gatewayIP)! < parseIpv4(first.ip)!));
    if (kept !== undefined && keptFirst) {
      desired = { gatewayIP: kept.gatewayIP, started: kept.started, finished: kept.finished };
      nextCheckMs = Math.min(nextCheckMs ?? Infinity, kept.finishedMs);
    } else if (first !== undefined) desired = { gatewayIP: first.ip, started: rfc3339(first.startedMs), finished: rfc3339(first.finishedMs) };
    if (!sameAnnotations(p, desired)) {
      patches.push({ namespace: p.metadata.namespace ?? 'default', name: p.metadata.name, uid: p.metadata.uid, set: desired });
    }
  }
  patches.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { patches, nextCheckMs };
}

/** True when the pod's three annotations are exactly `desired` (all absent when undefined). */
export function sameAnnotations(pod: Pod, desired: GatewayMaintenance | undefined): boolean {
  const a = pod.metadata.annotations ?? {};
  const want = maintenanceValues(desired);
  return GATEWAY_MAINTENANCE_ANNOTATIONS.every((k) => a[k] === want[k]);
}

/** The three annotation values (undefined = absent) of `m`. */
export function maintenanceValues(m: GatewayMaintenance | undefined): Record<(typeof GATEWAY_MAINTENANCE_ANNOTATIONS)[number], string | undefined> {
  return { [GATEWAY_IP]: m?.gatewayIP, [STARTED]: m?.started, [FINISHED]: m?.finished };
}

/**
 * The pod's annotations with the three maintenance annotations set to `m` (removed when undefined), every
 * other annotation untouched. Undefined when the result has no annotation at all.
 */
export function withMaintenance(annotations: Readonly<Record<string, string>> | undefined, m: GatewayMaintenance | undefined): Record<string, string> | undefined {
  const out: Record<string, string> = { ...annotations };
  const values = maintenanceValues(m);
  for (const k of GATEWAY_MAINTENANCE_ANNOTATIONS) {
    const v = values[k];
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
