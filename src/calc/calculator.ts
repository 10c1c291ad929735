/**
 * The incremental egress calculator of one node (docs/egress-calc.md). Pure in the architecture's sense:
 * no I/O, no clock, no randomness, and its result depends only on the current inputs — whatever the
 * order, repetition or batching of the events that brought them.
 */
import type { EgressGateway, EgressGatewayPolicy, FelixConfiguration, Namespace, Node, Pod } from '../api/index.js';
import { gatewayPodsAllowed, gatewayTrust } from '../api/index.js';
import { effectiveFelixSettings, type EffectiveFelixSettings, type EgressIPSupport } from '../api/kinds/felix-configuration.js';
import { namespaceLabels, prepareLabels, type Labels } from '../api/selector/index.js';
import { egressAnnotationsOf, resolveEgressSource, sameEgressAnnotations, type EgressAnnotations, type EgressSource } from './egress-source.js';
import { compareIpv4Nets, formatIpv4, formatIpv4Net, ipv4Net, ipv4NetCovers, outermostIpv4Nets, parseIpv4, parseIpv4Net, type Ipv4Net } from '../platform/ipv4.js';
import { addLoad, chooseNextHops, sameNextHops } from './next-hops.js';
import { gatewayFactsDiffer, nodeAddress, podFacts, type PodFacts } from './pod-facts.js';
import { annotationRule, policyRules, type RuleSpec } from './policy-rules.js';
import { allocateTables, tableCapacity } from './route-tables.js';
import { Selection, selectionKey, SYNTHETIC_POD_LABELS, type SelectionScope } from './selection.js';
import type {
  CalcIssue,
  CalcKind,
  CalcReason,
  CalcResource,
  CalcRoute,
  ClientRuleStatus,
  ClientStatus,
  EgressCalcSnapshot,
  EgressNextHops,
  EgressTable,
  GatewayHealth,
  GatewayPeer,
  IgnoredPod,
  InvalidPod,
  LocalGateway,
  NextHopsChoice,
  NodeEgressState,
  PollTarget,
  ReturnClient,
  TableBinding,
} from './types.js';

interface PodRec {
  readonly key: string;
  readonly ns: string;
  node: string | undefined;
  raw: Pod;
  /** The labels a selector sees, prepared on first use (most pods are never evaluated). */
  labels: Labels | undefined;
  facts: PodFacts;
  ann: EgressAnnotations | undefined;
  readonly memberOf: Set<Sel>;
  config: Config | undefined;
  /** Set once the pod is deleted (queued work about it is then skipped). */
  deleted: boolean;
  /** Its entry in the return path, with the sort key it is filed under. */
  ret: { client: ReturnClient; ipNum: number; nodeNum: number } | undefined;
  /** The last flush that looked at it (each pod is evaluated once per flush). */
  epoch: number;
}

type Sel = Selection<PodRec>;

interface ConfigRule {
  readonly spec: RuleSpec;
  readonly selection: Sel | undefined;
}

interface Config {
  readonly key: string;
  readonly source: EgressSource;
  readonly namespace: string;
  rules: ConfigRule[];
  /** Method `policy` and the policy does not exist. */
  policyMissing: boolean;
  readonly pods: Set<PodRec>;
  /** Bumped when the rules change (the policy changed). */
  version: number;
}

/** A local client's computed state, kept while nothing it depends on changes. */
interface ClientCalc {
  readonly deps: readonly unknown[];
  readonly choice: EgressNextHops | undefined;
  readonly status: ClientStatus;
  readonly routes: readonly CalcRoute[];
  readonly key: string;
  /** Gateways its routes name, and the remote ones among them that have a health port. */
  readonly chosen: readonly PodRec[];
  readonly polled: readonly PodRec[];
  /** Terminating gateways its rules used: they carry its established flows until they are gone. */
  readonly draining: readonly PodRec[];
  readonly selections: readonly Sel[];
  /** The status with its table, for the table it had last time. */
  withTable?: { id: number | undefined; status: ClientStatus };
}

interface NsRec {
  readonly labels: Labels;
  readonly rawLabels: Readonly<Record<string, string>> | undefined;
  readonly ann: EgressAnnotations | undefined;
}

interface ClusterDestinations {
  readonly throws: readonly Ipv4Net[];
  readonly nodeIps: ReadonlySet<number>;
  readonly routes: readonly CalcRoute[];
  readonly texts: readonly string[];
  readonly issues: readonly CalcIssue[];
}

/** Two-level index: label → value → members. */
type LabelIndex<T> = Map<string, Map<string, Set<T>>>;

/** At most this many refused gateway pods are named in the issues (the rest are counted). */
const MAX_REFUSED_ISSUES = 20;
const ALL: Ipv4Net = ipv4Net(0, 0);
const ALL_TEXT = '0.0.0.0/0';
const FAIL_CLOSED_ROUTES: readonly CalcRoute[] = [{ cidr: ALL_TEXT, kind: 'unreachable' }];

function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function byIp(a: PodRec, b: PodRec): number {
  return a.facts.ipNum - b.facts.ipNum || byKey(a, b);
}

function sameStringMap(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean {
  if (a === b) return true;
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => a?.[k] === b?.[k]);
}

/** True when every member of a selection is refused as a gateway (not merely unready). */
function allRefused(members: Iterable<PodRec>): boolean {
  for (const g of members) if (g.facts.refused === undefined) return false;
  return true;
}

function podKeyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? 'default'}/${name}`;
}

function routeKey(routes: readonly CalcRoute[]): string {
  return routes.map((r) => (r.kind === 'via-gateways' ? `${r.cidr}>${r.gateways.join(',')}` : `${r.cidr}:${r.kind}`)).join(' ');
}

/**
 * Computes one node's desired egress state from the cluster's resources, incrementally.
 *
 * Feed it every change (`upsert`/`delete` of Pods, Namespaces, Nodes, EgressGatewayPolicies,
 * FelixConfigurations; the stored {@link EgressNextHops} records; the cluster CIDRs; this node's poll
 * verdicts; the previous table bindings) in any order, then call {@link result}. Events are idempotent
 * (an upsert of an unchanged object, or the delete of an absent one, changes nothing).
 *
 * Cluster-wide indexes (gateways per selection, clients per configuration, the return path) are kept up
 * to date per event. The local part (this node's clients, tables, next hops, polls) is recomputed by
 * `result()` only when an event could have changed it: one of this node's pods, a gateway its clients can
 * use, a record it owns or that moves the load of such a gateway, a namespace, policy, node or setting.
 * Events elsewhere in the cluster cost only their index updates.
 *
 * Never throws for bad data: unparseable selectors, missing policies, invalid CIDRs become statuses.
 */
export class EgressCalculator {
  readonly nodeName: string;

  private readonly pods = new Map<string, PodRec>();
  private readonly podsByNs = new Map<string, Set<PodRec>>();
  private readonly podsByNode = new Map<string, Set<PodRec>>();
  /** Pods by label value, for the label keys some selection's required term names (the others are not indexed). */
  private readonly labelIndex: LabelIndex<PodRec> = new Map();
  private readonly indexedLabels = new Set<string>();
  private readonly namespaces = new Map<string, NsRec>();
  /** The namespace-level configuration key of each namespace (what pods without their own annotations follow). */
  private readonly nsConfigKeys = new Map<string, { key: string; source: EgressSource } | null>();
  private readonly nodeIps = new Map<string, string | undefined>();
  private readonly policies = new Map<string, EgressGatewayPolicy>();
  private readonly configs = new Map<string, Config>();
  private readonly selections = new Map<string, Sel>();
  private readonly termIndex: LabelIndex<Sel> = new Map();
  private readonly untermed = new Set<Sel>();
  private readonly nssSelections = new Set<Sel>();
  private readonly records = new Map<string, EgressNextHops>();
  private readonly localRecords = new Set<string>();
  private readonly gatewayLoad = new Map<string, number>();
  private readonly health = new Map<string, GatewayHealth>();
  /** Stored Pods and Namespaces that failed validation (fail closed; see {@link setInvalidPod}). */
  private readonly invalidPods = new Map<string, InvalidPod>();
  private readonly invalidNamespaces = new Map<string, string>();
  /** EgressGateways by namespace (name → uid): a gateway pod must belong to one (see {@link gatewayTrust}). */
  private readonly egressGateways = new Map<string, Map<string, string | undefined>>();
  private felixDefault: FelixConfiguration | undefined;
  private felixNode: FelixConfiguration | undefined;
  private settings: EffectiveFelixSettings;
  private mode: EgressIPSupport;
  private clusterCidrs: readonly string[] = [];
  private previousTables: readonly TableBinding[] = [];

  /** Pods with a return entry, sorted by (address, node address, key). */
  private readonly returnList: PodRec[] = [];
  private returnSorted: readonly ReturnClient[] = [];
  private returnDirty = false;
  private returnVersion = 0;
  private flushEpoch = 0;
  private readonly pendingPods = new Set<PodRec>();
  private readonly pendingSelections = new Set<Sel>();
  private cluster: ClusterDestinations | undefined;
  private readonly tableRoutes = new Map<string, readonly CalcRoute[]>();

  /** True when the local part must be recomputed. */
  private localDirty = true;
  /** The selections the local pods' configurations name, as of the last local computation. */
  private localSelections = new Set<Sel>();
  private cached: NodeEgressState | undefined;
  private cachedReturnVersion = -1;
  /** Bumped whenever the cluster destinations or node addresses change. */
  private clusterVersion = 0;
  private clientCache = new Map<PodRec, ClientCalc>();
  private previousDesired = new Map<string, EgressNextHops>();
  private previousPeers: { list: readonly PodRec[]; facts: readonly PodFacts[]; clusterVersion: number; out: readonly GatewayPeer[] } | undefined;
  private previousPolls: { list: readonly PodRec[]; facts: readonly PodFacts[]; out: readonly PollTarget[] } | undefined;
  private readonly usableCache = new WeakMap<Sel, { version: number; list: PodRec[]; keys: Set<string>; keyList: string[] }>();

  constructor(nodeName: string) {
    this.nodeName = nodeName;
    this.settings = effectiveFelixSettings();
    this.mode = this.settings.egressIPSupport;
  }

  // ---------------------------------------------------------------- events

  /** Adds or replaces a resource. FelixConfigurations other than `default` and `node.<nodeName>` are ignored. */
  upsert(resource: CalcResource): void {
    switch (resource.kind) {
      case 'Pod':
        this.upsertPod(resource);
        break;
      case 'Namespace':
        this.setNamespace(resource.metadata.name, resource);
        break;
      case 'Node':
        this.setNode(resource.metadata.name, resource);
        break;
      case 'EgressGatewayPolicy':
        this.setPolicy(resource.metadata.name, resource);
        break;
      case 'FelixConfiguration':
        this.setFelix(resource.metadata.name, resource);
        break;
      case 'EgressGateway':
        this.setEgressGateway(resource.metadata.namespace ?? 'default', resource.metadata.name, resource);
        break;
    }
  }

  /** Removes a resource; removing one that is not there changes nothing. */
  delete(kind: CalcKind, name: string, namespace?: string): void {
    switch (kind) {
      case 'Pod':
        this.deletePod(podKeyOf(namespace, name));
        break;
      case 'Namespace':
        this.setNamespace(name, undefined);
        break;
      case 'Node':
        this.setNode(name, undefined);
        break;
      case 'EgressGatewayPolicy':
        this.setPolicy(name, undefined);
        break;
      case 'FelixConfiguration':
        this.setFelix(name, undefined);
        break;
      case 'EgressGateway':
        this.setEgressGateway(namespace ?? 'default', name, undefined);
        break;
    }
  }

  /** Adds or replaces a stored maxNextHops record (any node's). */
  upsertNextHops(record: EgressNextHops): void {
    this.setRecord(record.client, record);
  }

  /** Removes the stored record of a client (`namespace/name`). */
  deleteNextHops(client: string): void {
    this.setRecord(client, undefined);
  }

  /**
   * Marks a stored Pod as invalid (facts from {@link invalidPodFacts}), or clears the mark (undefined).
   * The agent removes the pod itself (`delete`) first: an invalid pod is never a gateway, and on its node,
   * when it may be a client, all its egress fails closed (state `fail-closed`, reason `invalid-pod`) —
   * never the node's IP (docs/security.md).
   */
  setInvalidPod(key: string, facts: InvalidPod | undefined): void {
    const old = this.invalidPods.get(key);
    if (old === facts || (old !== undefined && facts !== undefined && JSON.stringify(old) === JSON.stringify(facts))) return;
    if (facts === undefined) this.invalidPods.delete(key);
    else this.invalidPods.set(key, facts);
    if (old?.node === this.nodeName || facts?.node === this.nodeName) this.localDirty = true;
  }

  /**
   * Marks a stored Namespace as invalid (with why), or clears the mark. The agent removes the namespace
   * itself (`delete`) first. Its local pods that follow their namespace's annotations fail closed (reason
   * `invalid-namespace`): the annotations that would route them are unknown.
   */
  setInvalidNamespace(name: string, message: string | undefined): void {
    if (this.invalidNamespaces.get(name) === message) return;
    if (message === undefined) this.invalidNamespaces.delete(name);
    else this.invalidNamespaces.set(name, message);
    this.localDirty = true;
  }

  /** Sets the cluster's own destinations (pools, service CIDR, node subnets); see {@link EgressCalcSnapshot}. */
  setClusterCidrs(cidrs: readonly string[]): void {
    const next = [...cidrs];
    if (next.length === this.clusterCidrs.length && next.every((c, i) => c === this.clusterCidrs[i])) return;
    this.clusterCidrs = next;
    this.cluster = undefined;
    this.clusterVersion++;
    this.tableRoutes.clear();
    this.localDirty = true;
  }

  /** Sets this node's poll verdict on a gateway (from {@link PollTracker.record}). */
  setGatewayHealth(health: GatewayHealth): void {
    const old = this.health.get(health.gateway);
    if (old !== undefined && old.ip === health.ip && old.up === health.up) return;
    this.health.set(health.gateway, { gateway: health.gateway, ip: health.ip, up: health.up });
    this.bumpSelectionsOf(health.gateway);
    this.localDirty = true;
  }

  private bumpSelectionsOf(gateway: string): void {
    const rec = this.pods.get(gateway);
    if (rec !== undefined) for (const s of rec.memberOf) s.version++;
  }

  /** Forgets the poll verdict on a gateway (the datastore's readiness counts alone again). */
  clearGatewayHealth(gateway: string): void {
    if (!this.health.delete(gateway)) return;
    this.bumpSelectionsOf(gateway);
    this.localDirty = true;
  }

  /** Sets the table bindings to keep (normally the `tables` of the previous result). */
  setPreviousTables(tables: readonly TableBinding[]): void {
    const next = tables.map((t) => ({ id: t.id, key: t.key }));
    const cur = this.previousTables;
    if (next.length === cur.length && next.every((t, i) => t.id === cur[i]?.id && t.key === cur[i]?.key)) return;
    this.previousTables = next;
    this.localDirty = true;
  }

  /** Feeds a whole snapshot (on top of what is there; use a fresh calculator for a clean start). */
  load(snapshot: Omit<EgressCalcSnapshot, 'nodeName'>): this {
    // Settings, namespaces and policies first: pods then resolve once, straight to their configuration.
    const order = { FelixConfiguration: 0, Node: 1, Namespace: 2, EgressGatewayPolicy: 3, EgressGateway: 3, Pod: 4 } as const;
    for (let pass = 0; pass <= 4; pass++) for (const r of snapshot.resources) if (order[r.kind] === pass) this.upsert(r);
    for (const r of snapshot.nextHops ?? []) this.upsertNextHops(r);
    this.setClusterCidrs(snapshot.clusterCidrs ?? []);
    for (const h of snapshot.gatewayHealth ?? []) this.setGatewayHealth(h);
    this.setPreviousTables(snapshot.previousTables ?? []);
    return this;
  }

  // ---------------------------------------------------------------- pods

  private labelsOf(rec: PodRec): Labels {
    return (rec.labels ??= podLabels(rec.ns, rec.raw));
  }

  private indexLabels(rec: PodRec, labels: Readonly<Record<string, string>> | undefined, add: boolean): void {
    if (labels === undefined || this.indexedLabels.size === 0) return;
    for (const k of Object.keys(labels)) {
      const v = labels[k];
      if (typeof v !== 'string' || !this.indexedLabels.has(k)) continue;
      if (add) addTo2(this.labelIndex, k, v, rec);
      else removeFrom2(this.labelIndex, k, v, rec);
    }
  }

  private upsertPod(pod: Pod): void {
    const key = podKeyOf(pod.metadata.namespace, pod.metadata.name);
    const old = this.pods.get(key);
    if (old !== undefined && old.raw === pod) return;
    const facts = this.factsOf(pod);
    const node = pod.spec.nodeName === undefined || pod.spec.nodeName === '' ? undefined : pod.spec.nodeName;
    const ann = egressAnnotationsOf(pod.metadata.annotations);
    if (old === undefined) {
      const ns = pod.metadata.namespace ?? 'default';
      const rec: PodRec = { key, ns, node, raw: pod, labels: undefined, facts, ann, memberOf: new Set(), config: undefined, deleted: false, ret: undefined, epoch: 0 };
      this.pods.set(key, rec);
      addTo(this.podsByNs, ns, rec);
      if (node !== undefined) addTo(this.podsByNode, node, rec);
      this.indexLabels(rec, pod.metadata.labels, true);
      // A record this node wrote for a pod of that name is no longer this node's to delete.
      if (node === this.nodeName || this.localRecords.has(key)) this.localDirty = true;
      this.updateMembership(rec);
      this.updateConfig(rec);
      this.pendingPods.add(rec);
      return;
    }
    const oldRaw = old.raw;
    old.raw = pod;
    const labelsChanged = !sameStringMap(oldRaw.metadata.labels, pod.metadata.labels) || serviceAccountOf(oldRaw) !== serviceAccountOf(pod);
    const nodeChanged = old.node !== node;
    const factsChanged = gatewayFactsDiffer(old.facts, facts) || old.facts.refused !== facts.refused || old.facts.uid !== facts.uid || old.facts.hostNetwork !== facts.hostNetwork || old.facts.finished !== facts.finished;
    const annChanged = !sameEgressAnnotations(old.ann, ann);
    if (!labelsChanged && !nodeChanged && !factsChanged && !annChanged) {
      // Same content: keep the prepared labels valid for the new object.
      return;
    }
    if (old.node === this.nodeName || node === this.nodeName) this.localDirty = true;
    if (factsChanged || nodeChanged) {
      for (const s of old.memberOf) s.version++;
      if (this.touchesLocal(old.memberOf)) this.localDirty = true;
    }
    if (nodeChanged) {
      // A pod does not move in Kubernetes, but a stored object may be rewritten: handle it as a move.
      for (const s of old.memberOf) this.localMemberDelta(s, old, -1);
      if (old.node !== undefined) removeFrom(this.podsByNode, old.node, old);
      old.node = node;
      if (node !== undefined) addTo(this.podsByNode, node, old);
      for (const s of old.memberOf) this.localMemberDelta(s, old, 1);
    }
    old.facts = facts;
    if (annChanged) old.ann = ann;
    if (labelsChanged) {
      this.indexLabels(old, oldRaw.metadata.labels, false);
      this.indexLabels(old, pod.metadata.labels, true);
      old.labels = undefined;
      this.updateMembership(old);
    }
    if (annChanged) this.updateConfig(old);
    this.pendingPods.add(old);
  }

  /**
   * A pod's facts, with the gateway trust folded in: a pod that may not act as a gateway is never a
   * usable one (`refused`, and not ready with the reason), so its users fail closed (docs/security.md, 7).
   */
  private factsOf(pod: Pod): PodFacts {
    const base = podFacts(pod);
    const ns = pod.metadata.namespace ?? 'default';
    const trust = gatewayTrust(pod, gatewayPodsAllowed(this.namespaces.get(ns)?.rawLabels), this.egressGateways.get(ns));
    if (trust.allowed) return base;
    return { ...base, ready: false, notReadyReason: `not allowed as a gateway: ${trust.reason}`, refused: trust.reason };
  }

  /** Recomputes the trust of a namespace's pods (its labels or its EgressGateways changed). */
  private refreshTrust(ns: string): void {
    for (const rec of this.podsByNs.get(ns) ?? []) {
      const facts = this.factsOf(rec.raw);
      if (facts.refused === rec.facts.refused) continue;
      rec.facts = facts;
      for (const s of rec.memberOf) s.version++;
      if (rec.node === this.nodeName || this.touchesLocal(rec.memberOf)) this.localDirty = true;
      this.pendingPods.add(rec);
    }
  }

  private setEgressGateway(ns: string, name: string, egw: EgressGateway | undefined): void {
    const byName = this.egressGateways.get(ns);
    const uid = egw?.metadata.uid;
    if (egw === undefined ? byName?.has(name) !== true : byName?.has(name) === true && byName.get(name) === uid) return;
    if (egw === undefined) {
      byName!.delete(name);
      if (byName!.size === 0) this.egressGateways.delete(ns);
    } else if (byName === undefined) this.egressGateways.set(ns, new Map([[name, uid]]));
    else byName.set(name, uid);
    this.refreshTrust(ns);
  }

  private deletePod(key: string): void {
    const rec = this.pods.get(key);
    if (rec === undefined) return;
    // A record this node wrote for it is now this node's to delete.
    if (rec.node === this.nodeName || this.localRecords.has(key)) this.localDirty = true;
    for (const s of [...rec.memberOf]) this.removeMember(s, rec);
    this.setConfig(rec, undefined);
    this.indexLabels(rec, rec.raw.metadata.labels, false);
    removeFrom(this.podsByNs, rec.ns, rec);
    this.forgetNamespaceIfGone(rec.ns);
    if (rec.node !== undefined) removeFrom(this.podsByNode, rec.node, rec);
    this.pods.delete(key);
    rec.deleted = true;
    this.pendingPods.delete(rec);
    this.setReturn(rec, undefined);
  }

  /** True when one of these selections is used by this node's pods. */
  private touchesLocal(selections: Iterable<Sel>): boolean {
    for (const s of selections) if (this.localSelections.has(s)) return true;
    return false;
  }

  /** Re-evaluates which active selections a pod belongs to (after its labels changed, or when new). */
  private updateMembership(rec: PodRec): void {
    let matches: Set<Sel> | undefined;
    const consider = (s: Sel): void => {
      if (matches?.has(s) === true || s.matcher === undefined || !s.inScope(rec.ns, () => this.nsLabels(rec.ns))) return;
      if (s.matcher.evaluate(this.labelsOf(rec))) (matches ??= new Set()).add(s);
    };
    for (const s of this.untermed) consider(s);
    const labels = rec.raw.metadata.labels;
    if (labels !== undefined && this.termIndex.size > 0) {
      for (const k of Object.keys(labels)) {
        const byValue = this.termIndex.get(k);
        const sels = byValue?.get(labels[k]!);
        if (sels !== undefined) for (const s of sels) consider(s);
      }
    }
    for (const s of [...rec.memberOf]) if (matches?.has(s) !== true) this.removeMember(s, rec);
    if (matches !== undefined) for (const s of matches) if (!rec.memberOf.has(s)) this.addMember(s, rec);
  }

  private addMember(s: Sel, rec: PodRec): void {
    s.version++;
    s.members.add(rec);
    rec.memberOf.add(s);
    this.localMemberDelta(s, rec, 1);
    if (rec.node === this.nodeName || this.localSelections.has(s)) this.localDirty = true;
    // Becoming a gateway ends being a client (docs/egress-calc.md, "Gateways").
    if (rec.memberOf.size === 1) this.pendingPods.add(rec);
  }

  private removeMember(s: Sel, rec: PodRec): void {
    s.version++;
    s.members.delete(rec);
    rec.memberOf.delete(s);
    this.localMemberDelta(s, rec, -1);
    if (rec.node === this.nodeName || this.localSelections.has(s)) this.localDirty = true;
    if (rec.memberOf.size === 0) this.pendingPods.add(rec);
  }

  private localMemberDelta(s: Sel, rec: PodRec, delta: 1 | -1): void {
    if (rec.node !== this.nodeName) return;
    s.localMembers += delta;
    // Which remote clients may tunnel through this node depends on its gateways: recheck the users.
    this.pendingSelections.add(s);
  }

  // ---------------------------------------------------------------- configurations and selections

  private nsLabels(ns: string): Labels {
    return this.namespaces.get(ns)?.labels ?? namespaceLabels({ name: ns });
  }

  /** The configuration a pod follows: its own annotations', or (cached per namespace) its namespace's. */
  private sourceOf(rec: PodRec): { key: string; source: EgressSource } | undefined {
    const own = rec.ann;
    if (this.mode === 'EnabledPerNamespaceOrPerPod' && own !== undefined && (own.selector !== undefined || own.policy !== undefined)) {
      const source = resolveEgressSource(this.mode, own, undefined)!;
      return { key: configKey(source, rec.ns), source };
    }
    let cached = this.nsConfigKeys.get(rec.ns);
    if (cached === undefined) {
      const source = resolveEgressSource(this.mode, undefined, this.namespaces.get(rec.ns)?.ann);
      cached = source === undefined ? null : { key: configKey(source, rec.ns), source };
      this.nsConfigKeys.set(rec.ns, cached);
    }
    return cached ?? undefined;
  }

  private updateConfig(rec: PodRec): void {
    const wanted = this.sourceOf(rec);
    if (rec.config?.key === wanted?.key) return;
    const config = wanted === undefined ? undefined : (this.configs.get(wanted.key) ?? this.createConfig(wanted.key, wanted.source, rec.ns));
    this.setConfig(rec, config);
    this.pendingPods.add(rec);
  }

  private setConfig(rec: PodRec, config: Config | undefined): void {
    const old = rec.config;
    if (old === config) return;
    config?.pods.add(rec);
    rec.config = config;
    if (old !== undefined) {
      old.pods.delete(rec);
      if (old.pods.size === 0) this.dropConfig(old);
    }
  }

  private createConfig(key: string, source: EgressSource, namespace: string): Config {
    const config: Config = { key, source, namespace, rules: [], policyMissing: false, pods: new Set(), version: 0 };
    this.configs.set(key, config);
    this.buildRules(config);
    return config;
  }

  private buildRules(config: Config): void {
    const old = config.rules;
    config.version++;
    const source = config.source;
    let specs: RuleSpec[];
    if (source.method === 'selector') {
      specs = [annotationRule(source.selector, source.namespaceSelector, source.maxNextHops)];
      config.policyMissing = false;
    } else {
      const policy = this.policies.get(source.policy);
      config.policyMissing = policy === undefined;
      specs = policy === undefined ? [] : policyRules(policy);
    }
    // Acquire the new selections before releasing the old ones, so that unchanged ones stay populated.
    config.rules = specs.map((spec) => {
      const gw = spec.gateway;
      if (gw === undefined || spec.skip !== undefined) return { spec, selection: undefined };
      const scope: SelectionScope | undefined = gw.ownNamespace
        ? { kind: 'namespace', namespace: config.namespace }
        : gw.namespaceSelector === undefined
          ? undefined
          : { kind: 'namespaceSelector', selector: gw.namespaceSelector };
      return { spec, selection: this.acquireSelection(gw.selector, scope, config) };
    });
    const kept = new Set(config.rules.map((r) => r.selection));
    for (const s of new Set(old.map((r) => r.selection))) if (s !== undefined && !kept.has(s)) this.releaseSelection(s, config);
  }

  private dropConfig(config: Config): void {
    this.configs.delete(config.key);
    const named = new Set<Sel>();
    for (const r of config.rules) if (r.selection !== undefined) named.add(r.selection);
    config.rules = [];
    for (const s of named) this.releaseSelection(s, config);
  }

  private acquireSelection(selector: string | undefined, scope: SelectionScope | undefined, user: Config): Sel {
    const key = selector === undefined || scope === undefined ? undefined : selectionKey(selector, scope);
    let s = key === undefined ? undefined : this.selections.get(key);
    if (s === undefined) {
      s = new Selection<PodRec>(selector, scope);
      const existing = this.selections.get(s.key);
      if (existing !== undefined) s = existing;
      else {
        this.selections.set(s.key, s);
        this.populate(s);
      }
    }
    s.users.add(user);
    return s;
  }

  private releaseSelection(s: Sel, user: Config): void {
    s.users.delete(user);
    if (s.users.size > 0) return;
    for (const rec of [...s.members]) this.removeMember(s, rec);
    this.selections.delete(s.key);
    this.pendingSelections.delete(s);
    if (s.matcher === undefined) return;
    if (s.term !== undefined) for (const v of s.term.values) removeFrom2(this.termIndex, s.term.label, v, s);
    else this.untermed.delete(s);
    this.nssSelections.delete(s);
  }

  private populate(s: Sel): void {
    const matcher = s.matcher;
    const scope = s.scope;
    if (matcher === undefined || scope === undefined) return;
    const check = (rec: PodRec): void => {
      if (s.inScope(rec.ns, () => this.nsLabels(rec.ns)) && matcher.evaluate(this.labelsOf(rec))) this.addMember(s, rec);
    };
    if (s.term !== undefined) {
      const label = s.term.label;
      if (!this.indexedLabels.has(label) && !SYNTHETIC_POD_LABELS.has(label)) {
        // First selection keyed on this label: index it once; pod events keep it up to date from now on.
        this.indexedLabels.add(label);
        for (const rec of this.pods.values()) {
          const v = rec.raw.metadata.labels?.[label];
          if (typeof v === 'string') addTo2(this.labelIndex, label, v, rec);
        }
      }
      const byValue = this.labelIndex.get(label);
      for (const v of s.term.values) {
        addTo2(this.termIndex, s.term.label, v, s);
        const pods = byValue?.get(v);
        if (pods !== undefined) for (const rec of pods) check(rec);
      }
    } else {
      this.untermed.add(s);
      if (scope.kind === 'namespace') {
        for (const rec of this.podsByNs.get(scope.namespace) ?? []) check(rec);
      } else {
        for (const [ns, pods] of this.podsByNs) if (s.inScope(ns, () => this.nsLabels(ns))) for (const rec of pods) check(rec);
      }
    }
    if (scope.kind === 'namespaceSelector') this.nssSelections.add(s);
  }

  // ---------------------------------------------------------------- namespaces, nodes, policies, felix

  private setNamespace(name: string, ns: Namespace | undefined): void {
    const old = this.namespaces.get(name);
    const rawLabels = ns?.metadata.labels;
    const ann = egressAnnotationsOf(ns?.metadata.annotations);
    const labelsChanged = (old === undefined) !== (ns === undefined) || !sameStringMap(old?.rawLabels, rawLabels);
    const annChanged = !sameEgressAnnotations(old?.ann, ann);
    if (!labelsChanged && !annChanged) return;
    if (ns === undefined) this.namespaces.delete(name);
    else this.namespaces.set(name, { labels: namespaceLabels({ name, labels: rawLabels }), rawLabels, ann });
    this.localDirty = true;
    if (labelsChanged) this.refreshTrust(name);
    if (labelsChanged) for (const s of this.nssSelections) this.refreshNamespace(s, name);
    if (annChanged) {
      this.nsConfigKeys.delete(name);
      for (const rec of this.podsByNs.get(name) ?? []) this.updateConfig(rec);
    }
    if (ns === undefined) this.forgetNamespaceIfGone(name);
  }

  /**
   * Drops what is cached per namespace once neither the Namespace nor any of its pods is left: an agent
   * runs for months while namespaces come and go (docs/security.md, 11: maps pruned).
   */
  private forgetNamespaceIfGone(ns: string): void {
    if (this.namespaces.has(ns) || (this.podsByNs.get(ns)?.size ?? 0) > 0) return;
    this.nsConfigKeys.delete(ns);
  }

  private refreshNamespace(s: Sel, ns: string): void {
    const before = s.nsMatch.get(ns);
    s.nsMatch.delete(ns);
    const now = s.inScope(ns, () => this.nsLabels(ns));
    if (before === now) return;
    for (const rec of [...(this.podsByNs.get(ns) ?? [])]) {
      const match = now && s.matcher !== undefined && s.matcher.evaluate(this.labelsOf(rec));
      if (match && !rec.memberOf.has(s)) this.addMember(s, rec);
      else if (!match && rec.memberOf.has(s)) this.removeMember(s, rec);
    }
  }

  private setNode(name: string, node: Node | undefined): void {
    const ip = node === undefined ? undefined : nodeAddress(node);
    const had = this.nodeIps.has(name);
    if (had === (node !== undefined) && this.nodeIps.get(name) === ip) return;
    if (node === undefined) this.nodeIps.delete(name);
    else this.nodeIps.set(name, ip);
    this.localDirty = true;
    this.cluster = undefined;
    this.clusterVersion++;
    this.tableRoutes.clear();
    // Clients there: their return route names the node's address.
    for (const rec of this.podsByNode.get(name) ?? []) this.pendingPods.add(rec);
  }

  private setPolicy(name: string, policy: EgressGatewayPolicy | undefined): void {
    const old = this.policies.get(name);
    if (old === policy || (old !== undefined && policy !== undefined && JSON.stringify(old.spec) === JSON.stringify(policy.spec))) {
      if (policy !== undefined) this.policies.set(name, policy);
      return;
    }
    if (old === undefined && policy === undefined) return;
    if (policy === undefined) this.policies.delete(name);
    else this.policies.set(name, policy);
    this.localDirty = true;
    const config = this.configs.get(configKey({ from: 'namespace', method: 'policy', policy: name }, ''));
    if (config === undefined) return;
    this.buildRules(config);
    for (const rec of config.pods) this.pendingPods.add(rec);
  }

  private setFelix(name: string, fc: FelixConfiguration | undefined): void {
    const old = name === 'default' ? this.felixDefault : name === `node.${this.nodeName}` ? this.felixNode : undefined;
    const same = old === fc || (old !== undefined && fc !== undefined && JSON.stringify(old.spec) === JSON.stringify(fc.spec));
    if (name === 'default') this.felixDefault = fc;
    else if (name === `node.${this.nodeName}`) this.felixNode = fc;
    else return;
    if (same) return;
    this.localDirty = true;
    this.settings = effectiveFelixSettings(this.felixDefault, this.felixNode);
    // egressIPSupport must be the same on every node (calico-semantics.md 1.4): read from `default` only.
    const mode = effectiveFelixSettings(this.felixDefault).egressIPSupport;
    if (mode === this.mode) return;
    this.mode = mode;
    this.nsConfigKeys.clear();
    for (const rec of this.pods.values()) this.updateConfig(rec);
  }

  private setRecord(client: string, record: EgressNextHops | undefined): void {
    const old = this.records.get(client);
    if (old === record || (old === undefined && record === undefined)) return;
    if (old !== undefined) {
      addLoad(this.gatewayLoad, old, -1);
      if (old.node === this.nodeName) this.localRecords.delete(client);
    }
    if (record === undefined) this.records.delete(client);
    else {
      this.records.set(client, record);
      addLoad(this.gatewayLoad, record, 1);
      if (record.node === this.nodeName) this.localRecords.add(client);
    }
    const rec = this.pods.get(client);
    if (rec !== undefined) this.pendingPods.add(rec);
    // Local when this node owns it, or when it moves the load of a gateway this node's clients can use.
    if (old?.node === this.nodeName || record?.node === this.nodeName || rec?.node === this.nodeName) this.localDirty = true;
    else if (!this.localDirty && (this.recordTouchesLocal(old) || this.recordTouchesLocal(record))) this.localDirty = true;
  }

  private recordTouchesLocal(record: EgressNextHops | undefined): boolean {
    if (record === undefined) return false;
    for (const choice of Object.values(record.rules)) {
      for (const g of choice.gateways) {
        const p = this.pods.get(g);
        if (p !== undefined && this.touchesLocal(p.memberOf)) return true;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- return path (cluster-wide, incremental)

  private isClient(rec: PodRec): boolean {
    return rec.config !== undefined && rec.memberOf.size === 0 && !rec.facts.hostNetwork && !rec.facts.finished;
  }

  private nodeIpOf(rec: PodRec): string | undefined {
    return (rec.node === undefined ? undefined : this.nodeIps.get(rec.node)) ?? rec.facts.hostIp;
  }

  private storedRecord(rec: PodRec): EgressNextHops | undefined {
    const r = this.records.get(rec.key);
    return r !== undefined && r.podUID === rec.facts.uid ? r : undefined;
  }

  /**
   * Whether a remote client may tunnel through one of this node's gateways. Readiness is not asked: the
   * client's node judges it with its own polls, and a reply must find its way back while it does.
   */
  private returnEntry(rec: PodRec, uses: 'all' | 'some' | 'none' = this.configUse(rec.config)): ReturnClient | undefined {
    if (uses === 'none' || !this.isClient(rec) || rec.node === undefined || rec.node === this.nodeName || rec.facts.ip === undefined) return undefined;
    if (uses === 'some' && !this.choiceUsesLocal(rec)) return undefined;
    const nodeIp = this.nodeIpOf(rec);
    if (nodeIp === undefined) return undefined;
    const old = rec.ret?.client;
    return old !== undefined && old.ip === rec.facts.ip && old.nodeIp === nodeIp ? old : { ip: rec.facts.ip, nodeIp };
  }

  /**
   * Whether a configuration's clients may use this node's gateways: `all` (a rule without maxNextHops
   * names a selection with a local member), `some` (only maxNextHops rules do: it depends on each
   * client's stored choice), `none`.
   */
  private configUse(config: Config | undefined): 'all' | 'some' | 'none' {
    let use: 'some' | 'none' = 'none';
    for (const r of config?.rules ?? []) {
      const s = r.selection;
      if (s === undefined || s.localMembers === 0) continue;
      if (r.spec.gateway!.maxNextHops === 0) return 'all';
      use = 'some';
    }
    return use;
  }

  /** For a `some` configuration: a rule's stored choice names a local member (no choice yet: it may). */
  private choiceUsesLocal(rec: PodRec): boolean {
    for (const r of rec.config!.rules) {
      const s = r.selection;
      if (s === undefined || s.localMembers === 0) continue;
      const stored = this.storedRecord(rec)?.rules[s.key];
      if (stored === undefined || stored.gateways.some((g) => this.isLocalMember(g, s))) return true;
    }
    return false;
  }

  private isLocalMember(gateway: string, s: Sel): boolean {
    const g = this.pods.get(gateway);
    return g !== undefined && g.node === this.nodeName && g.memberOf.has(s);
  }

  private flush(): void {
    const epoch = ++this.flushEpoch;
    let work = this.pendingPods.size;
    for (const s of this.pendingSelections) for (const user of s.users) work += (user as Config).pods.size;
    // Many changes at once (a gateway came to or left this node): file them, then sort once.
    const bulk = work > 256;
    let added: PodRec[] | undefined;
    const visit = (rec: PodRec, uses?: 'all' | 'some' | 'none'): void => {
      if (rec.deleted || rec.epoch === epoch) return;
      rec.epoch = epoch;
      const entry = this.returnEntry(rec, uses);
      if (!bulk) this.setReturn(rec, entry);
      else if (entry !== rec.ret?.client) {
        if (rec.ret === undefined) (added ??= []).push(rec);
        rec.ret = entry === undefined ? undefined : { client: entry, ipNum: rec.facts.ipNum, nodeNum: parseIpv4(entry.nodeIp)! };
        this.returnDirty = true;
      }
    };
    for (const s of this.pendingSelections) {
      for (const user of s.users) {
        const config = user as Config;
        const uses = this.configUse(config);
        for (const rec of config.pods) visit(rec, rec.config === config ? uses : undefined);
      }
    }
    this.pendingSelections.clear();
    for (const rec of this.pendingPods) visit(rec);
    this.pendingPods.clear();
    if (bulk && this.returnDirty) {
      const list = this.returnList.filter((rec) => rec.ret !== undefined);
      if (added !== undefined) for (const rec of added) if (rec.ret !== undefined) list.push(rec);
      list.sort(compareReturn);
      this.returnList.length = 0;
      for (const rec of list) this.returnList.push(rec);
    }
    if (this.returnDirty) {
      // Two stored pods with one address (a stale object): the first by node address wins, deterministically.
      const out: ReturnClient[] = [];
      let last = -1;
      for (const rec of this.returnList) {
        if (rec.ret!.ipNum === last) continue;
        last = rec.ret!.ipNum;
        out.push(rec.ret!.client);
      }
      this.returnSorted = out;
      this.returnDirty = false;
      this.returnVersion++;
    }
  }

  /** Files a pod's return entry (or removes it) in the sorted return list. */
  private setReturn(rec: PodRec, entry: ReturnClient | undefined): void {
    const old = rec.ret;
    if (old?.client === entry) return;
    const list = this.returnList;
    if (old !== undefined) {
      const i = this.returnIndex(old.ipNum, old.nodeNum, rec.key);
      if (list[i] === rec) list.splice(i, 1);
    }
    if (entry === undefined) rec.ret = undefined;
    else {
      rec.ret = { client: entry, ipNum: rec.facts.ipNum, nodeNum: parseIpv4(entry.nodeIp)! };
      list.splice(this.returnIndex(rec.ret.ipNum, rec.ret.nodeNum, rec.key), 0, rec);
    }
    this.returnDirty = true;
  }

  /** Where (address, node address, key) is or would be in the return list (binary search). */
  private returnIndex(ipNum: number, nodeNum: number, key: string): number {
    const list = this.returnList;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = list[mid]!.ret!;
      const k = list[mid]!.key;
      const less = r.ipNum < ipNum || (r.ipNum === ipNum && (r.nodeNum < nodeNum || (r.nodeNum === nodeNum && k < key)));
      if (less) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // ---------------------------------------------------------------- cluster destinations

  private clusterDestinations(): ClusterDestinations {
    if (this.cluster !== undefined) return this.cluster;
    const issues: CalcIssue[] = [];
    const nets: Ipv4Net[] = [];
    for (const text of this.clusterCidrs) {
      // Cluster CIDRs come from flags and config files: blanks around them are forgiven.
      const net = parseIpv4Net(text.trim(), { hostBits: 'clear', bareAddress: true });
      if (net === undefined) {
        if (!text.includes(':')) issues.push({ code: 'InvalidClusterCidr', message: `cluster CIDR "${text}" is not an IPv4 CIDR; it is ignored` });
        continue;
      }
      nets.push(net);
    }
    const nodeIps = new Set<number>();
    for (const ip of this.nodeIps.values()) {
      const n = ip === undefined ? undefined : parseIpv4(ip);
      if (n !== undefined && !nets.some((c) => ipv4NetCovers(c, ipv4Net(n, 32)))) nodeIps.add(n);
    }
    // Keep only the outermost networks: an inner one adds nothing to a throw.
    const throws = outermostIpv4Nets([...nets, ...[...nodeIps].map((n) => ipv4Net(n, 32))]);
    const texts = throws.map(formatIpv4Net);
    this.cluster = { throws, nodeIps, texts, routes: texts.map((cidr) => ({ cidr, kind: 'throw' as const })), issues };
    return this.cluster;
  }

  // ---------------------------------------------------------------- the result

  /**
   * The node's desired state for the current inputs. Returns the same object until something that
   * matters to this node changes. Deterministic: equal inputs give deep-equal results, however they arrived.
   */
  result(): NodeEgressState {
    this.flush();
    if (this.localDirty || this.cached === undefined) {
      this.cached = this.computeLocal();
      this.localDirty = false;
      this.cachedReturnVersion = this.returnVersion;
    } else if (this.cachedReturnVersion !== this.returnVersion) {
      // Only remote clients of this node's gateways changed: patch the return path.
      const rp = this.cached.returnPath;
      this.cached = { ...this.cached, returnPath: rp === undefined ? undefined : { gatewayPodIps: rp.gatewayPodIps, clients: this.returnSorted } };
      this.cachedReturnVersion = this.returnVersion;
    }
    return this.cached;
  }

  private usable(s: Sel): { list: PodRec[]; keys: Set<string>; keyList: string[] } {
    let u = this.usableCache.get(s);
    if (u === undefined || u.version !== s.version) {
      const list: PodRec[] = [];
      for (const g of s.members) if (this.usableGateway(g)) list.push(g);
      list.sort(byKey);
      const keyList = list.map((g) => g.key);
      u = { version: s.version, list, keys: new Set(keyList), keyList };
      this.usableCache.set(s, u);
    }
    return u;
  }

  private computeLocal(): NodeEgressState {
    const settings = this.settings;
    const mode = this.mode;
    const local = this.nodeName;
    const localPods = [...(this.podsByNode.get(local) ?? [])].sort(byKey);
    const localIp = this.nodeIps.get(local);
    const issues: CalcIssue[] = [];
    const base = {
      nodeName: local,
      egressIPSupport: mode,
      rulePriority: settings.egressIPRoutingRulePriority,
      routeTableRanges: settings.routeTableRanges.map((r) => ({ min: r.min, max: r.max })),
      poll: { interval: settings.egressGatewayPollInterval, failureCount: settings.egressGatewayPollFailureCount },
    };
    const localSelections = new Set<Sel>();
    for (const rec of localPods) for (const r of rec.config?.rules ?? []) if (r.selection !== undefined) localSelections.add(r.selection);
    this.localSelections = localSelections;
    const owned = this.ownedRecords(localPods);
    const podNums = new Set<number>();
    for (const rec of localPods) if (rec.facts.ip !== undefined) podNums.add(rec.facts.ipNum);
    for (const p of this.invalidPods.values()) if (p.node === local && p.ip !== undefined) podNums.add(parseIpv4(p.ip)!);
    const localPodIps = [...podNums].sort((a, b) => a - b).map(formatIpv4);

    if (mode === 'Disabled') {
      const ignored: IgnoredPod[] = [];
      for (const rec of localPods) {
        if (rec.ann !== undefined || this.namespaces.get(rec.ns)?.ann !== undefined) ignored.push({ pod: rec.key, reason: 'egressIPSupport is Disabled' });
      }
      this.clientCache.clear();
      this.previousDesired.clear();
      return {
        ...base, vxlan: undefined, clusterThrows: [], tables: [], clients: [], ignored, gateways: [], draining: [], tunnelPeers: [], localPodIps, pollTargets: [], returnPath: undefined,
        localGateways: [], nextHops: [], staleNextHops: [...owned.keys()].sort(), issues: [],
      };
    }
    if (localIp === undefined) issues.push({ code: 'NodeAddressUnknown', message: `node ${local} has no IPv4 InternalIP: the tunnel has no local address` });
    const cluster = this.clusterDestinations();
    issues.push(...cluster.issues);

    const clients = localPods.filter((rec) => this.isClient(rec));
    const invalid = this.invalidLocal(localPods, mode);

    // ---- maxNextHops: the load as stored, minus what this node's own records add, plus what they will.
    const delta = new Map<string, number>();
    const bump = (g: string, d: number): void => void delta.set(g, (delta.get(g) ?? 0) + d);
    for (const r of owned.values()) for (const c of Object.values(r.rules)) for (const g of c.gateways) bump(g, -1);
    const loadOf = (g: string): number => (this.gatewayLoad.get(g) ?? 0) + (delta.get(g) ?? 0);
    const desired = new Map<string, EgressNextHops>();
    for (const rec of clients) {
      let rules: Record<string, NextHopsChoice> | undefined;
      for (const r of rec.config!.rules) {
        const s = r.selection;
        const n = r.spec.gateway?.maxNextHops ?? 0;
        if (s === undefined || n === 0 || r.spec.skip !== undefined || rules?.[s.key] !== undefined) continue;
        const prev = this.storedRecord(rec)?.rules[s.key];
        const want = prev?.maxNextHops ?? n;
        const u = this.usable(s);
        const gateways = chooseNextHops({ keep: (prev?.gateways ?? []).filter((g) => u.keys.has(g)), candidates: u.keyList, want, load: loadOf, seed: rec.facts.uid });
        // A chosen gateway that is terminating stays in the record while it drains (beside its
        // replacement): the client's established flows still use it, and the controller's maintenance
        // annotations read the record (docs/egress-calc.md, "Gateway maintenance"). It gets no new flows.
        const draining = (prev?.gateways ?? []).filter((g) => !u.keys.has(g) && this.isDraining(g, s));
        if (gateways.length === 0 && draining.length === 0) continue;
        for (const g of gateways) bump(g, 1);
        for (const g of draining) bump(g, 1);
        (rules ??= {})[s.key] = { maxNextHops: want, gateways: draining.length === 0 ? gateways : [...gateways, ...draining].sort() };
      }
      if (rules === undefined) continue;
      const fresh: EgressNextHops = { client: rec.key, podUID: rec.facts.uid, node: local, rules };
      const before = this.previousDesired.get(rec.key);
      desired.set(rec.key, before !== undefined && sameNextHops(before, fresh) ? before : fresh);
    }
    this.previousDesired = desired;

    // ---- each client's routes and status, recomputed only when something it depends on changed.
    const failClosedKey = routeKey(FAIL_CLOSED_ROUTES);
    const cache = new Map<PodRec, ClientCalc>();
    const calcs: ClientCalc[] = [];
    for (const rec of clients) {
      const config = rec.config!;
      const deps: unknown[] = [rec.facts, rec.ann, this.namespaces.get(rec.ns), config, config.version, mode, this.clusterVersion];
      for (const r of config.rules) deps.push(r.selection?.version);
      const choice = desired.get(rec.key);
      let c = this.clientCache.get(rec);
      if (c === undefined || c.choice !== choice || c.deps.length !== deps.length || c.deps.some((d, i) => d !== deps[i])) {
        c = this.computeClient(rec, deps, choice, cluster);
      }
      cache.set(rec, c);
      calcs.push(c);
    }
    this.clientCache = cache;

    // ---- pods a selector in use here matches but that may not act as gateways: said, never used.
    const refused = new Map<string, string>();
    for (const c of calcs) for (const sel of c.selections) for (const g of sel.members) if (g.facts.refused !== undefined) refused.set(g.key, g.facts.refused);
    if (refused.size > 0) {
      const keys = [...refused.keys()].sort();
      // Bounded: anyone who can label pods can make many of them match.
      for (const k of keys.slice(0, MAX_REFUSED_ISSUES)) {
        issues.push({ code: 'GatewayRefused', message: `pod ${k} matches a gateway selector in use on this node but may not act as a gateway: ${refused.get(k)!}; it is not used (clients that have no other gateway drop)` });
      }
      if (keys.length > MAX_REFUSED_ISSUES) issues.push({ code: 'GatewayRefused', message: `${keys.length - MAX_REFUSED_ISSUES} more refused gateway pods` });
    }

    // ---- tables: one per distinct route set among the clients that have an address.
    const keys = [...new Set(calcs.filter((c) => c.status.ip !== undefined).map((c) => c.key))];
    if (invalid.closed.some((c) => c.ip !== undefined) && !keys.includes(failClosedKey)) keys.push(failClosedKey);
    keys.sort();
    const capacity = tableCapacity(settings.routeTableRanges);
    const short = keys.length > capacity;
    if (short && !keys.includes(failClosedKey)) keys.push(failClosedKey);
    const allocation = allocateTables(keys, this.previousTables, settings.routeTableRanges, short ? failClosedKey : undefined);
    if (allocation.unallocated.length > 0) {
      issues.push({
        code: 'RouteTablesExhausted',
        message: `${keys.length} distinct route sets need tables but routeTableRanges holds ${capacity}: ${allocation.unallocated.length} fail closed`,
      });
    }
    const fallback = allocation.ids.get(failClosedKey);
    const tableOf = new Map<number, { key: string; routes: readonly CalcRoute[]; ips: TableClient[] }>();
    const statuses: ClientStatus[] = [];
    const peerSet = new Set<PodRec>();
    const drainSet = new Set<PodRec>();
    const polled = new Set<PodRec>();
    calcs.forEach((c, i) => {
      const rec = clients[i]!;
      if (c.status.ip === undefined) {
        statuses.push(c.status);
        for (const g of c.polled) polled.add(g);
        return;
      }
      let id = allocation.ids.get(c.key);
      let key = c.key;
      let routes = c.routes;
      let status: ClientStatus;
      if (id === undefined) {
        id = fallback;
        key = failClosedKey;
        routes = FAIL_CLOSED_ROUTES;
        status = {
          ...c.status,
          table: id,
          state: id === undefined ? 'no-table' : 'fail-closed',
          rules: [{ destination: ALL_TEXT, action: 'unreachable', gateways: [], reason: 'route-tables-exhausted' }],
        };
      } else {
        if (c.withTable?.id !== id) c.withTable = { id, status: { ...c.status, table: id } };
        status = c.withTable.status;
        for (const g of c.chosen) peerSet.add(g);
        for (const g of c.draining) drainSet.add(g);
      }
      for (const g of c.polled) polled.add(g);
      statuses.push(status);
      if (id === undefined) return;
      const t = tableOf.get(id);
      const entry = { key: rec.key, ip: rec.facts.ip, ipNum: rec.facts.ipNum };
      if (t === undefined) tableOf.set(id, { key, routes: this.fullRoutes(key, routes, cluster), ips: [entry] });
      else t.ips.push(entry);
    });
    // Invalid clients: the fail-closed table (a table of their own even when tables run short).
    for (const c of invalid.closed) {
      const id = c.ip === undefined ? undefined : (allocation.ids.get(failClosedKey) ?? fallback);
      const state: ClientStatus['state'] = c.ip === undefined ? 'no-ip' : id === undefined ? 'no-table' : 'fail-closed';
      statuses.push({
        pod: c.key,
        ip: c.ip,
        source: c.reason === 'invalid-pod' ? 'pod' : 'namespace',
        method: 'invalid',
        table: id,
        state,
        rules: [{ destination: ALL_TEXT, action: 'unreachable', gateways: [], reason: c.reason }],
        notes: [c.message],
      });
      if (id === undefined || c.ip === undefined) continue;
      const entry = { key: c.key, ip: c.ip, ipNum: parseIpv4(c.ip)! };
      const t = tableOf.get(id);
      if (t === undefined) tableOf.set(id, { key: failClosedKey, routes: this.fullRoutes(failClosedKey, FAIL_CLOSED_ROUTES, cluster), ips: [entry] });
      else t.ips.push(entry);
    }
    statuses.sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
    const tables: EgressTable[] = [...tableOf.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([id, t]) => ({ id, key: t.key, routes: t.routes, clientIps: t.ips.sort(byTableClient).map((c) => c.ip!) }));

    // Gateways this node judged down stay polled, so that they can come back.
    if (this.health.size > 0) {
      const seen = new Set<Sel>();
      for (const c of calcs) for (const s of c.selections) if (!seen.has(s)) {
        seen.add(s);
        for (const g of s.members) if (this.polledDown(g)) polled.add(g);
      }
    }
    const peerList = [...peerSet].sort(byIp);
    const peerFacts = peerList.map((g) => g.facts);
    const pp = this.previousPeers;
    let gateways: readonly GatewayPeer[];
    if (pp !== undefined && pp.clusterVersion === this.clusterVersion && sameList(pp.list, peerList) && sameList(pp.facts, peerFacts)) gateways = pp.out;
    else {
      gateways = peerList.map((g) => ({ pod: g.key, ip: g.facts.ip!, nodeName: g.node!, nodeIp: this.nodeIpOf(g), local: g.node === local }));
      this.previousPeers = { list: peerList, facts: peerFacts, clusterVersion: this.clusterVersion, out: gateways };
    }
    const pollList = [...polled].filter((g) => g.facts.ip !== undefined && g.facts.healthPort !== undefined && g.node !== local).sort(byKey);
    const pollFacts = pollList.map((g) => g.facts);
    const pq = this.previousPolls;
    let pollTargets: readonly PollTarget[];
    if (pq !== undefined && sameList(pq.list, pollList) && sameList(pq.facts, pollFacts)) pollTargets = pq.out;
    else {
      pollTargets = pollList.map((g) => ({ gateway: g.key, ip: g.facts.ip!, port: g.facts.healthPort! }));
      this.previousPolls = { list: pollList, facts: pollFacts, out: pollTargets };
    }

    // ---- this node's gateways and the return path.
    const localGatewayPods = localPods.filter((rec) => rec.memberOf.size > 0);
    const localGateways: LocalGateway[] = localGatewayPods.map((g) => ({
      pod: g.key,
      ip: g.facts.ip,
      ready: g.facts.ready,
      ...(g.facts.notReadyReason === undefined ? {} : { reason: g.facts.notReadyReason }),
    }));
    const gatewayPodIps = localGatewayPods.filter((g) => g.facts.ip !== undefined).sort(byIp).map((g) => g.facts.ip!);
    const returnPath = gatewayPodIps.length === 0 ? undefined : { gatewayPodIps, clients: this.returnSorted };

    const ignored: IgnoredPod[] = [...invalid.ignored];
    for (const rec of localPods) {
      if (this.isClient(rec) || invalid.closedKeys.has(rec.key) || (rec.ann === undefined && rec.config === undefined)) continue;
      let reason: string;
      if (rec.memberOf.size > 0) reason = 'the pod is an egress gateway (an egress selector in use matches it)';
      else if (rec.facts.hostNetwork) reason = 'hostNetwork pod: its traffic has the node address';
      else if (rec.facts.finished) reason = 'the pod has finished';
      else {
        const notes: string[] = [];
        resolveEgressSource(mode, rec.ann, this.namespaces.get(rec.ns)?.ann, notes);
        reason = notes.join('; ') || 'no egress selector or policy applies';
      }
      ignored.push({ pod: rec.key, reason });
    }

    ignored.sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
    // Who may send to this node's tunnel: the nodes (return traffic comes from a gateway's node) and the
    // gateways its clients use. Recomputed with the local state; O(nodes).
    const peerNums = new Set<number>();
    for (const ip of this.nodeIps.values()) if (ip !== undefined) peerNums.add(parseIpv4(ip)!);
    for (const g of gateways) peerNums.add(parseIpv4(g.ip)!);
    // Draining gateways that are not also in use (a re-created pod with the same address would be) stay peers.
    const draining: GatewayPeer[] = [...drainSet]
      .filter((g) => !peerSet.has(g))
      .sort(byIp)
      .map((g) => ({ pod: g.key, ip: g.facts.ip!, nodeName: g.node!, nodeIp: this.nodeIpOf(g), local: g.node === local }));
    for (const g of draining) peerNums.add(parseIpv4(g.ip)!);
    const tunnelPeers = [...peerNums].sort((a, b) => a - b).map(formatIpv4);
    const nextHops = [...desired.values()].sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : 0));
    const staleNextHops = [...owned.keys()].filter((k) => !desired.has(k)).sort();
    return {
      ...base,
      vxlan: { vni: settings.egressIPVXLANVNI, port: settings.egressIPVXLANPort, localIp },
      clusterThrows: cluster.texts,
      tables,
      clients: statuses,
      ignored,
      gateways,
      draining,
      tunnelPeers,
      localPodIps,
      pollTargets,
      returnPath,
      localGateways,
      nextHops,
      staleNextHops,
      issues,
    };
  }

  /**
   * The local pods that fail closed because they, or their namespace, failed validation, and the invalid
   * local pods that are not clients anyway (listed as ignored). An invalid pod may be a client when its
   * namespace has egress annotations, its namespace is invalid too, or (per-pod mode) it carries egress
   * annotations of its own or unreadable ones: when in doubt, it is one. A valid pod of an invalid
   * namespace fails closed unless its own annotations decide (per-pod mode) or it is a gateway.
   */
  private invalidLocal(localPods: readonly PodRec[], mode: EgressIPSupport): { closed: InvalidClient[]; closedKeys: Set<string>; ignored: IgnoredPod[] } {
    const closed: InvalidClient[] = [];
    const ignored: IgnoredPod[] = [];
    for (const p of this.invalidPods.values()) {
      if (p.node !== this.nodeName) continue;
      if (p.hostNetwork || p.finished) {
        ignored.push({ pod: p.key, reason: `invalid Pod (${p.message}); ${p.hostNetwork ? 'hostNetwork' : 'finished'}: nothing to drop` });
        continue;
      }
      const nsInvalid = this.invalidNamespaces.has(p.namespace);
      const nsSource = resolveEgressSource(mode, undefined, this.namespaces.get(p.namespace)?.ann);
      const maybeClient = nsInvalid || nsSource !== undefined || (mode === 'EnabledPerNamespaceOrPerPod' && p.egressAnnotated);
      if (maybeClient) closed.push({ key: p.key, ip: p.ip, reason: 'invalid-pod', message: `invalid Pod: ${p.message}` });
      else ignored.push({ pod: p.key, reason: `invalid Pod (${p.message}); no egress annotations apply to it: normal routing` });
    }
    if (this.invalidNamespaces.size > 0) {
      for (const rec of localPods) {
        const why = this.invalidNamespaces.get(rec.ns);
        if (why === undefined || rec.config !== undefined || rec.memberOf.size > 0 || rec.facts.hostNetwork || rec.facts.finished) continue;
        closed.push({ key: rec.key, ip: rec.facts.ip, reason: 'invalid-namespace', message: `invalid Namespace ${rec.ns}: ${why}` });
      }
    }
    closed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { closed, closedKeys: new Set(closed.map((c) => c.key)), ignored };
  }

  /** One local client's routes and status (its table is filled in by the caller). */
  private computeClient(rec: PodRec, deps: readonly unknown[], choice: EgressNextHops | undefined, cluster: ClusterDestinations): ClientCalc {
    const config = rec.config!;
    const notes: string[] = [];
    const source = resolveEgressSource(this.mode, rec.ann, this.namespaces.get(rec.ns)?.ann, notes) ?? config.source;
    const ruleStatus: ClientRuleStatus[] = [];
    const routes: { route: CalcRoute; net: Ipv4Net }[] = [];
    const chosenAll: PodRec[] = [];
    const draining: PodRec[] = [];
    const polled: PodRec[] = [];
    const selections: Sel[] = [];
    let gatewayRules = 0;
    let closedRules = 0;
    const programmed = config.rules.filter((r) => r.spec.skip === undefined);
    if (config.policyMissing || programmed.length === 0) {
      const reason: CalcReason = config.policyMissing ? 'policy-not-found' : 'policy-has-no-usable-rule';
      for (const r of config.rules) ruleStatus.push(skipped(r.spec, r.spec.skip ?? reason));
      ruleStatus.push({ destination: ALL_TEXT, action: 'unreachable', gateways: [], reason });
      routes.push({ route: { cidr: ALL_TEXT, kind: 'unreachable' }, net: ALL });
      gatewayRules = closedRules = 1;
    } else {
      for (const r of config.rules) {
        const spec = r.spec;
        if (spec.skip !== undefined || spec.net === undefined) {
          ruleStatus.push(skipped(spec, spec.skip ?? 'invalid-destination'));
          continue;
        }
        if (this.insideCluster(spec.net, cluster)) {
          ruleStatus.push(skipped(spec, 'cluster-destination'));
          continue;
        }
        const description = spec.description === undefined ? {} : { description: spec.description };
        if (spec.gateway === undefined) {
          routes.push({ route: { cidr: spec.destination, kind: 'throw' }, net: spec.net });
          ruleStatus.push({ destination: spec.destination, action: 'throw', gateways: [], ...description });
          continue;
        }
        gatewayRules++;
        const s = r.selection!;
        selections.push(s);
        const chosen = this.effectiveGateways(rec, r, s, this.usable(s).list, choice).sort(byIp);
        draining.push(...this.drainingGateways(rec, r, s, choice, chosen));
        for (const g of chosen) {
          chosenAll.push(g);
          if (g.node !== this.nodeName && g.facts.healthPort !== undefined) polled.push(g);
        }
        if (chosen.length === 0) {
          closedRules++;
          const reason: CalcReason = s.error ?? (s.members.size === 0 ? 'no-gateway-matches' : allRefused(s.members) ? 'no-gateway-allowed' : 'no-gateway-ready');
          routes.push({ route: { cidr: spec.destination, kind: 'unreachable' }, net: spec.net });
          ruleStatus.push({ destination: spec.destination, action: 'unreachable', gateways: [], reason, ...description });
        } else {
          routes.push({ route: { cidr: spec.destination, kind: 'via-gateways', gateways: chosen.map((g) => g.facts.ip!) }, net: spec.net });
          ruleStatus.push({ destination: spec.destination, action: 'gateways', gateways: chosen.map((g) => ({ pod: g.key, ip: g.facts.ip! })), ...description });
        }
      }
    }
    const sortedRoutes = routes.sort((a, b) => compareIpv4Nets(a.net, b.net)).map((o) => o.route);
    const state: ClientStatus['state'] = closedRules === 0 ? 'routed' : closedRules === gatewayRules ? 'fail-closed' : 'partly-fail-closed';
    const status: ClientStatus = {
      pod: rec.key,
      ip: rec.facts.ip,
      source: source.from,
      method: source.method,
      ...(source.method === 'policy' ? { policy: source.policy } : {}),
      table: undefined,
      state: rec.facts.ip === undefined ? 'no-ip' : state,
      rules: ruleStatus,
      notes,
    };
    return { deps, choice, status, routes: sortedRoutes, key: routeKey(sortedRoutes), chosen: chosenAll, polled, selections, draining };
  }

  /** Records this node owns: those of its pods, and those it wrote for pods that no longer exist. */
  private ownedRecords(localPods: readonly PodRec[]): Map<string, EgressNextHops> {
    const owned = new Map<string, EgressNextHops>();
    for (const rec of localPods) {
      const r = this.records.get(rec.key);
      if (r !== undefined) owned.set(rec.key, r);
    }
    for (const client of this.localRecords) {
      if (owned.has(client) || this.pods.has(client)) continue;
      owned.set(client, this.records.get(client)!);
    }
    return owned;
  }

  private usableGateway(g: PodRec): boolean {
    if (!g.facts.ready || g.facts.ip === undefined || g.node === undefined) return false;
    const h = this.health.get(g.key);
    return h === undefined || h.ip !== g.facts.ip || h.up;
  }

  /**
   * The terminating gateways a rule used (docs/egress-calc.md, "Gateway maintenance"): its terminating
   * members, narrowed for maxNextHops to the stored choice and for PreferNodeLocal to the client's node when
   * the rule's gateways are there.
   */
  private drainingGateways(rec: PodRec, rule: ConfigRule, s: Sel, record: EgressNextHops | undefined, chosen: readonly PodRec[]): PodRec[] {
    if (s.error !== undefined) return [];
    let out: PodRec[] = [];
    for (const g of s.members) if (this.isDraining(g.key, s)) out.push(g);
    if (out.length === 0) return out;
    if ((rule.spec.gateway?.maxNextHops ?? 0) > 0) {
      const names = record?.rules[s.key]?.gateways;
      if (names !== undefined) out = out.filter((g) => names.includes(g.key));
    }
    if (rule.spec.preferNodeLocal && chosen.length > 0 && chosen.every((g) => g.node === rec.node)) out = out.filter((g) => g.node === rec.node);
    return out;
  }

  /** A member of `s` that is terminating and still has its address: it drains (no new flows) until it is gone. */
  private isDraining(gateway: string, s: Sel): boolean {
    const g = this.pods.get(gateway);
    return g !== undefined && s.members.has(g) && g.facts.notReadyReason === 'terminating' && g.facts.ip !== undefined && g.node !== undefined;
  }

  private polledDown(g: PodRec): boolean {
    if (!g.facts.ready || g.facts.ip === undefined || g.node === this.nodeName || g.facts.healthPort === undefined) return false;
    const h = this.health.get(g.key);
    return h !== undefined && h.ip === g.facts.ip && !h.up;
  }

  private effectiveGateways(rec: PodRec, rule: ConfigRule, s: Sel, cands: readonly PodRec[], record: EgressNextHops | undefined): PodRec[] {
    if (s.error !== undefined || cands.length === 0) return [];
    if (rule.spec.preferNodeLocal) {
      const here = cands.filter((g) => g.node === rec.node);
      if (here.length > 0) return here;
    }
    if ((rule.spec.gateway?.maxNextHops ?? 0) > 0) {
      const choice = record?.rules[s.key];
      // The choice may name draining gateways (terminating): they take no new flows.
      if (choice !== undefined) return choice.gateways.flatMap((k) => this.pods.get(k) ?? []).filter((g) => this.usableGateway(g));
    }
    return [...cands];
  }

  private insideCluster(net: Ipv4Net, cluster: ClusterDestinations): boolean {
    if (net.prefix === 32 && cluster.nodeIps.has(net.first)) return true;
    return cluster.throws.some((t) => ipv4NetCovers(t, net));
  }

  private fullRoutes(key: string, routes: readonly CalcRoute[], cluster: ClusterDestinations): readonly CalcRoute[] {
    let full = this.tableRoutes.get(key);
    if (full === undefined) {
      full = [...cluster.routes, ...routes];
      // Bounded: tables come and go with route sets; keep the cache from growing without end.
      if (this.tableRoutes.size >= 4096) this.tableRoutes.clear();
      this.tableRoutes.set(key, full);
    }
    return full;
  }
}

/** A client in a table being built: valid or failed closed as invalid. */
interface TableClient {
  readonly key: string;
  readonly ip: string | undefined;
  readonly ipNum: number;
}

/** A local pod failed closed because it, or its namespace, is invalid. */
interface InvalidClient {
  readonly key: string;
  readonly ip: string | undefined;
  readonly reason: 'invalid-pod' | 'invalid-namespace';
  readonly message: string;
}

function byTableClient(a: TableClient, b: TableClient): number {
  return a.ipNum - b.ipNum || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** The order of the return list: address, then node address, then pod key. */
function compareReturn(a: PodRec, b: PodRec): number {
  const x = a.ret!;
  const y = b.ret!;
  return x.ipNum - y.ipNum || x.nodeNum - y.nodeNum || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function skipped(spec: RuleSpec, reason: CalcReason): ClientRuleStatus {
  return { destination: spec.destination, action: 'skipped', gateways: [], reason, ...(spec.description === undefined ? {} : { description: spec.description }) };
}

/** A configuration's identity: equal sources in the same namespace share one. */
function configKey(source: EgressSource, namespace: string): string {
  if (source.method === 'policy') return `policy|${source.policy}`;
  const scope: SelectionScope =
    source.namespaceSelector === undefined ? { kind: 'namespace', namespace } : { kind: 'namespaceSelector', selector: source.namespaceSelector };
  return `selector|${source.maxNextHops}|${selectionKey(source.selector, scope)}`;
}

function serviceAccountOf(pod: Pod): unknown {
  return (pod.spec as { serviceAccountName?: unknown }).serviceAccountName;
}

/**
 * The labels a pod selector sees: the pod's labels plus those Calico gives every workload endpoint
 * (`projectcalico.org/namespace`, `projectcalico.org/orchestrator`, `projectcalico.org/serviceaccount`).
 */
export function podLabels(ns: string, pod: Pod): Labels {
  const out = prepareLabels(pod.metadata.labels ?? {}) as Record<string, string>;
  out['projectcalico.org/namespace'] = ns;
  out['projectcalico.org/orchestrator'] = 'k8s';
  const sa = serviceAccountOf(pod);
  if (typeof sa === 'string' && sa !== '') out['projectcalico.org/serviceaccount'] = sa;
  return out;
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const cur = map.get(key);
  if (cur === undefined) map.set(key, new Set([value]));
  else cur.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const cur = map.get(key);
  if (cur === undefined) return;
  cur.delete(value);
  if (cur.size === 0) map.delete(key);
}

function addTo2<V>(index: LabelIndex<V>, label: string, value: string, member: V): void {
  let byValue = index.get(label);
  if (byValue === undefined) {
    byValue = new Map<string, Set<V>>();
    index.set(label, byValue);
  }
  addTo(byValue, value, member);
}

function removeFrom2<V>(index: LabelIndex<V>, label: string, value: string, member: V): void {
  const byValue = index.get(label);
  if (byValue === undefined) return;
  removeFrom(byValue, value, member);
  if (byValue.size === 0) index.delete(label);
}
