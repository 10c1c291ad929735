/**
 * The incremental egress calculator of one node (docs/egress-calc.md). Pure in the architecture's sense:
 * no I/O, no clock, no randomness, and its result depends only on the current inputs — whatever the
 * order, repetition or batching of the events that brought them.
 */
import type { EgressGatewayPolicy, FelixConfiguration, Namespace, Node, Pod } from '../api/index.js';
import { effectiveFelixSettings, type EffectiveFelixSettings, type EgressIPSupport } from '../api/kinds/felix-configuration.js';
import { namespaceLabels, prepareLabels, type Labels } from '../api/selector/index.js';
import { egressAnnotationsOf, resolveEgressSource, sameEgressAnnotations, type EgressAnnotations, type EgressSource } from './egress-source.js';
import { compareIPv4Text, compareNet4, formatNet4, net4Contains, parseIPv4, parseNet4, type Net4 } from './ipv4.js';
import { addLoad, chooseNextHops } from './next-hops.js';
import { gatewayFactsDiffer, nodeAddress, podFacts, type PodFacts } from './pod-facts.js';
import { annotationRule, policyRules, type RuleSpec } from './policy-rules.js';
import { allocateTables, tableCapacity } from './route-tables.js';
import { Selection, selectionKey, termKey, type SelectionScope } from './selection.js';
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
  labels: Labels;
  terms: string[];
  facts: PodFacts;
  ann: EgressAnnotations | undefined;
  readonly memberOf: Set<Sel>;
  config: Config | undefined;
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
}

interface NsRec {
  readonly labels: Labels;
  readonly rawLabels: Readonly<Record<string, string>> | undefined;
  readonly ann: EgressAnnotations | undefined;
}

interface ClusterDestinations {
  readonly throws: readonly Net4[];
  readonly nets: readonly Net4[];
  readonly nodeIps: ReadonlySet<number>;
  readonly routes: readonly CalcRoute[];
  readonly texts: readonly string[];
  readonly issues: readonly CalcIssue[];
}

const ALL: Net4 = { network: 0, prefix: 0 };
const ALL_TEXT = '0.0.0.0/0';

function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function sameStringMap(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => a?.[k] === b?.[k]);
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
 * (an upsert of an unchanged object, or the delete of an absent one, changes nothing). Cluster-wide
 * indexes (gateways by selection, clients by configuration, the return path) are maintained per event;
 * the local part (this node's clients, tables, next hops, polls) is recomputed by `result()` when
 * anything changed, which costs in proportion to the node's own clients and the gateways they can use.
 *
 * Never throws for bad data: unparseable selectors, missing policies, invalid CIDRs become statuses.
 */
export class EgressCalculator {
  readonly nodeName: string;

  private readonly pods = new Map<string, PodRec>();
  private readonly podsByNs = new Map<string, Set<PodRec>>();
  private readonly podsByNode = new Map<string, Set<PodRec>>();
  private readonly labelIndex = new Map<string, Set<PodRec>>();
  private readonly namespaces = new Map<string, NsRec>();
  private readonly nodeIps = new Map<string, string | undefined>();
  private readonly policies = new Map<string, EgressGatewayPolicy>();
  private readonly configs = new Map<string, Config>();
  private readonly selections = new Map<string, Sel>();
  private readonly termIndex = new Map<string, Set<Sel>>();
  private readonly untermed = new Set<Sel>();
  private readonly nssSelections = new Set<Sel>();
  private readonly records = new Map<string, EgressNextHops>();
  private readonly localRecords = new Set<string>();
  private readonly gatewayLoad = new Map<string, number>();
  private readonly health = new Map<string, GatewayHealth>();
  private felixDefault: FelixConfiguration | undefined;
  private felixNode: FelixConfiguration | undefined;
  private settings: EffectiveFelixSettings;
  private mode: EgressIPSupport;
  private clusterCidrs: readonly string[] = [];
  private previousTables: readonly TableBinding[] = [];

  private readonly returnSet = new Map<string, ReturnClient>();
  private returnSorted: readonly ReturnClient[] = [];
  private returnDirty = false;
  private readonly pendingPods = new Set<PodRec>();
  private readonly pendingSelections = new Set<Sel>();
  private cluster: ClusterDestinations | undefined;
  private readonly tableRoutes = new Map<string, readonly CalcRoute[]>();
  private changed = true;
  private cached: NodeEgressState | undefined;

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

  /** Sets the cluster's own destinations (pools, service CIDR, node subnets); see {@link EgressCalcSnapshot}. */
  setClusterCidrs(cidrs: readonly string[]): void {
    const next = [...cidrs];
    if (next.length === this.clusterCidrs.length && next.every((c, i) => c === this.clusterCidrs[i])) return;
    this.clusterCidrs = next;
    this.cluster = undefined;
    this.tableRoutes.clear();
    this.changed = true;
  }

  /** Sets this node's poll verdict on a gateway (from {@link PollTracker.record}). */
  setGatewayHealth(health: GatewayHealth): void {
    const old = this.health.get(health.gateway);
    if (old !== undefined && old.ip === health.ip && old.up === health.up) return;
    this.health.set(health.gateway, { gateway: health.gateway, ip: health.ip, up: health.up });
    this.changed = true;
  }

  /** Forgets the poll verdict on a gateway (the datastore's readiness counts alone again). */
  clearGatewayHealth(gateway: string): void {
    if (this.health.delete(gateway)) this.changed = true;
  }

  /** Sets the table bindings to keep (normally the `tables` of the previous result). */
  setPreviousTables(tables: readonly TableBinding[]): void {
    const next = tables.map((t) => ({ id: t.id, key: t.key }));
    const cur = this.previousTables;
    if (next.length === cur.length && next.every((t, i) => t.id === cur[i]?.id && t.key === cur[i]?.key)) return;
    this.previousTables = next;
    this.changed = true;
  }

  /** Feeds a whole snapshot (on top of what is there; use a fresh calculator for a clean start). */
  load(snapshot: Omit<EgressCalcSnapshot, 'nodeName'>): this {
    for (const r of snapshot.resources) this.upsert(r);
    for (const r of snapshot.nextHops ?? []) this.upsertNextHops(r);
    this.setClusterCidrs(snapshot.clusterCidrs ?? []);
    for (const h of snapshot.gatewayHealth ?? []) this.setGatewayHealth(h);
    this.setPreviousTables(snapshot.previousTables ?? []);
    return this;
  }

  // ---------------------------------------------------------------- pods

  private upsertPod(pod: Pod): void {
    const key = podKeyOf(pod.metadata.namespace, pod.metadata.name);
    const old = this.pods.get(key);
    if (old !== undefined && old.raw === pod) return;
    const facts = podFacts(pod);
    const rawLabels = pod.metadata.labels;
    const node = pod.spec.nodeName === undefined || pod.spec.nodeName === '' ? undefined : pod.spec.nodeName;
    const ann = egressAnnotationsOf(pod.metadata.annotations);
    if (old === undefined) {
      const ns = pod.metadata.namespace ?? 'default';
      const rec: PodRec = { key, ns, node, raw: pod, labels: podLabels(ns, pod), terms: [], facts, ann, memberOf: new Set(), config: undefined };
      rec.terms = termsOf(rec.labels);
      this.pods.set(key, rec);
      addTo(this.podsByNs, ns, rec);
      if (node !== undefined) addTo(this.podsByNode, node, rec);
      for (const t of rec.terms) addTo(this.labelIndex, t, rec);
      this.updateMembership(rec);
      this.updateConfig(rec);
      this.pendingPods.add(rec);
      this.changed = true;
      return;
    }
    const labelsChanged = !sameStringMap(old.raw.metadata.labels, rawLabels) || serviceAccountOf(old.raw) !== serviceAccountOf(pod);
    const nodeChanged = old.node !== node;
    const factsChanged = gatewayFactsDiffer(old.facts, facts) || old.facts.uid !== facts.uid || old.facts.hostNetwork !== facts.hostNetwork || old.facts.finished !== facts.finished;
    const annChanged = !sameEgressAnnotations(old.ann, ann);
    old.raw = pod;
    if (!labelsChanged && !nodeChanged && !factsChanged && !annChanged) return;
    this.changed = true;
    if (nodeChanged) {
      // A pod does not move in Kubernetes, but a stored object may be rewritten: handle it as a move.
      for (const s of old.memberOf) this.localMemberDelta(s, old, -1);
      if (old.node !== undefined) removeFrom(this.podsByNode, old.node, old);
      old.node = node;
      if (node !== undefined) addTo(this.podsByNode, node, old);
      for (const s of old.memberOf) this.localMemberDelta(s, old, 1);
    }
    old.facts = facts;
    old.ann = annChanged ? ann : old.ann;
    if (labelsChanged) {
      for (const t of old.terms) removeFrom(this.labelIndex, t, old);
      old.labels = podLabels(old.ns, pod);
      old.terms = termsOf(old.labels);
      for (const t of old.terms) addTo(this.labelIndex, t, old);
      this.updateMembership(old);
    }
    if (annChanged) this.updateConfig(old);
    this.pendingPods.add(old);
  }

  private deletePod(key: string): void {
    const rec = this.pods.get(key);
    if (rec === undefined) return;
    this.changed = true;
    for (const s of [...rec.memberOf]) this.removeMember(s, rec);
    this.setConfig(rec, undefined);
    for (const t of rec.terms) removeFrom(this.labelIndex, t, rec);
    removeFrom(this.podsByNs, rec.ns, rec);
    if (rec.node !== undefined) removeFrom(this.podsByNode, rec.node, rec);
    this.pods.delete(key);
    this.pendingPods.delete(rec);
    if (this.returnSet.delete(key)) this.returnDirty = true;
  }

  /** Re-evaluates which active selections a pod belongs to (after its labels changed, or when new). */
  private updateMembership(rec: PodRec): void {
    const matches = new Set<Sel>();
    const consider = (s: Sel): void => {
      if (!matches.has(s) && s.matcher !== undefined && s.inScope(rec.ns, () => this.nsLabels(rec.ns)) && s.matcher.evaluate(rec.labels)) matches.add(s);
    };
    for (const s of this.untermed) consider(s);
    for (const t of rec.terms) {
      const sels = this.termIndex.get(t);
      if (sels !== undefined) for (const s of sels) consider(s);
    }
    for (const s of [...rec.memberOf]) if (!matches.has(s)) this.removeMember(s, rec);
    for (const s of matches) if (!rec.memberOf.has(s)) this.addMember(s, rec);
  }

  private addMember(s: Sel, rec: PodRec): void {
    s.members.add(rec);
    rec.memberOf.add(s);
    this.localMemberDelta(s, rec, 1);
    // Becoming a gateway ends being a client (docs/egress-calc.md, "Gateways").
    if (rec.memberOf.size === 1) this.pendingPods.add(rec);
  }

  private removeMember(s: Sel, rec: PodRec): void {
    s.members.delete(rec);
    rec.memberOf.delete(s);
    this.localMemberDelta(s, rec, -1);
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

  private updateConfig(rec: PodRec): void {
    const source = resolveEgressSource(this.mode, rec.ann, this.namespaces.get(rec.ns)?.ann);
    const key = source === undefined ? undefined : configKey(source, rec.ns);
    if (rec.config?.key === key) return;
    let config: Config | undefined;
    if (source !== undefined && key !== undefined) config = this.configs.get(key) ?? this.createConfig(key, source, rec.ns);
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
    const config: Config = { key, source, namespace, rules: [], policyMissing: false, pods: new Set() };
    this.configs.set(key, config);
    this.buildRules(config);
    return config;
  }

  private buildRules(config: Config): void {
    const old = config.rules;
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
    if (s.term !== undefined) for (const v of s.term.values) removeFrom(this.termIndex, termKey(s.term.label, v), s);
    else this.untermed.delete(s);
    this.nssSelections.delete(s);
  }

  private populate(s: Sel): void {
    if (s.matcher === undefined || s.scope === undefined) return;
    const check = (rec: PodRec): void => {
      if (s.inScope(rec.ns, () => this.nsLabels(rec.ns)) && s.matcher!.evaluate(rec.labels)) this.addMember(s, rec);
    };
    if (s.term !== undefined) {
      for (const v of s.term.values) {
        const t = termKey(s.term.label, v);
        addTo(this.termIndex, t, s);
        const pods = this.labelIndex.get(t);
        if (pods !== undefined) for (const rec of pods) check(rec);
      }
    } else {
      this.untermed.add(s);
      const scope = s.scope;
      if (scope.kind === 'namespace') {
        for (const rec of this.podsByNs.get(scope.namespace) ?? []) check(rec);
      } else {
        for (const [ns, pods] of this.podsByNs) if (s.inScope(ns, () => this.nsLabels(ns))) for (const rec of pods) check(rec);
      }
    }
    if (s.scope.kind === 'namespaceSelector') this.nssSelections.add(s);
  }

  // ---------------------------------------------------------------- namespaces, nodes, policies, felix

  private setNamespace(name: string, ns: Namespace | undefined): void {
    const old = this.namespaces.get(name);
    const rawLabels = ns?.metadata.labels;
    const ann = egressAnnotationsOf(ns?.metadata.annotations);
    const labelsChanged = (old === undefined) !== (ns === undefined) || !sameStringMap(old?.rawLabels, rawLabels);
    const annChanged = !sameEgressAnnotations(old?.ann, ann);
    if (ns === undefined) this.namespaces.delete(name);
    else this.namespaces.set(name, { labels: namespaceLabels({ name, labels: rawLabels }), rawLabels, ann });
    if (!labelsChanged && !annChanged) return;
    this.changed = true;
    if (labelsChanged) for (const s of this.nssSelections) this.refreshNamespace(s, name);
    if (annChanged) for (const rec of this.podsByNs.get(name) ?? []) this.updateConfig(rec);
  }

  private refreshNamespace(s: Sel, ns: string): void {
    const before = s.nsMatch.get(ns);
    s.nsMatch.delete(ns);
    const now = s.inScope(ns, () => this.nsLabels(ns));
    if (before === now) return;
    for (const rec of [...(this.podsByNs.get(ns) ?? [])]) {
      const match = now && s.matcher !== undefined && s.matcher.evaluate(rec.labels);
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
    this.changed = true;
    this.cluster = undefined;
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
    this.changed = true;
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
    this.changed = true;
    this.settings = effectiveFelixSettings(this.felixDefault, this.felixNode);
    // egressIPSupport must be the same on every node (calico-semantics.md 1.4): read from `default` only.
    const mode = effectiveFelixSettings(this.felixDefault).egressIPSupport;
    if (mode === this.mode) return;
    this.mode = mode;
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
    this.changed = true;
    const rec = this.pods.get(client);
    if (rec !== undefined) this.pendingPods.add(rec);
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
  private returnEntry(rec: PodRec): ReturnClient | undefined {
    if (!this.isClient(rec) || rec.node === undefined || rec.node === this.nodeName || rec.facts.ip === undefined) return undefined;
    const config = rec.config!;
    let uses = false;
    for (const r of config.rules) {
      const s = r.selection;
      if (s === undefined || s.localMembers === 0) continue;
      const stored = r.spec.gateway!.maxNextHops > 0 ? this.storedRecord(rec)?.rules[s.key] : undefined;
      if (stored === undefined || stored.gateways.some((g) => this.isLocalMember(g, s))) {
        uses = true;
        break;
      }
    }
    if (!uses) return undefined;
    const nodeIp = this.nodeIpOf(rec);
    return nodeIp === undefined ? undefined : { ip: rec.facts.ip, nodeIp };
  }

  private isLocalMember(gateway: string, s: Sel): boolean {
    const g = this.pods.get(gateway);
    return g !== undefined && g.node === this.nodeName && g.memberOf.has(s);
  }

  private flush(): void {
    for (const s of this.pendingSelections) for (const user of s.users) for (const rec of (user as Config).pods) this.pendingPods.add(rec);
    this.pendingSelections.clear();
    for (const rec of this.pendingPods) {
      if (this.pods.get(rec.key) !== rec) continue;
      const entry = this.returnEntry(rec);
      const old = this.returnSet.get(rec.key);
      if (entry === undefined) {
        if (old !== undefined) {
          this.returnSet.delete(rec.key);
          this.returnDirty = true;
        }
      } else if (old === undefined || old.ip !== entry.ip || old.nodeIp !== entry.nodeIp) {
        this.returnSet.set(rec.key, entry);
        this.returnDirty = true;
      }
    }
    this.pendingPods.clear();
    if (this.returnDirty) {
      const byIp = new Map<string, ReturnClient>();
      for (const c of this.returnSet.values()) {
        const prev = byIp.get(c.ip);
        // Two stored pods with one address (a stale object): the lower node address wins, deterministically.
        if (prev === undefined || compareIPv4Text(c.nodeIp, prev.nodeIp) < 0) byIp.set(c.ip, c);
      }
      this.returnSorted = [...byIp.values()].sort((a, b) => compareIPv4Text(a.ip, b.ip));
      this.returnDirty = false;
    }
  }

  // ---------------------------------------------------------------- cluster destinations

  private clusterDestinations(): ClusterDestinations {
    if (this.cluster !== undefined) return this.cluster;
    const issues: CalcIssue[] = [];
    const nets: Net4[] = [];
    for (const text of this.clusterCidrs) {
      const net = parseNet4(text) ?? (parseIPv4(text.trim()) !== undefined ? { network: parseIPv4(text.trim())!, prefix: 32 } : undefined);
      if (net === undefined) {
        if (!text.includes(':')) issues.push({ code: 'InvalidClusterCidr', message: `cluster CIDR "${text}" is not an IPv4 CIDR; it is ignored` });
        continue;
      }
      nets.push(net);
    }
    const nodeIps = new Set<number>();
    for (const ip of this.nodeIps.values()) {
      const n = ip === undefined ? undefined : parseIPv4(ip);
      if (n !== undefined && !nets.some((c) => net4Contains(c, { network: n, prefix: 32 }))) nodeIps.add(n);
    }
    const all = [...nets, ...[...nodeIps].map((n) => ({ network: n, prefix: 32 }))].sort(compareNet4);
    // Keep only the outermost networks: an inner one adds nothing to a throw.
    const throws: Net4[] = [];
    for (const n of all) {
      const last = throws[throws.length - 1];
      if (last !== undefined && net4Contains(last, n)) continue;
      throws.push(n);
    }
    const texts = throws.map(formatNet4);
    this.cluster = { throws, nets, nodeIps, texts, routes: texts.map((cidr) => ({ cidr, kind: 'throw' as const })), issues };
    return this.cluster;
  }

  // ---------------------------------------------------------------- the result

  /**
   * The node's desired state for the current inputs. Returns the same object until something changes.
   * Deterministic: equal inputs give deep-equal results, however they arrived.
   */
  result(): NodeEgressState {
    if (!this.changed && this.cached !== undefined) return this.cached;
    this.flush();
    this.cached = this.computeLocal();
    this.changed = false;
    return this.cached;
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
    const owned = this.ownedRecords(localPods);

    if (mode === 'Disabled') {
      const ignored: IgnoredPod[] = [];
      for (const rec of localPods) {
        if (rec.ann !== undefined || this.namespaces.get(rec.ns)?.ann !== undefined) ignored.push({ pod: rec.key, reason: 'egressIPSupport is Disabled' });
      }
      return {
        ...base, vxlan: undefined, clusterThrows: [], tables: [], clients: [], ignored, gateways: [], pollTargets: [], returnPath: undefined,
        localGateways: [], nextHops: [], staleNextHops: [...owned.keys()].sort(), issues: [],
      };
    }
    if (localIp === undefined) issues.push({ code: 'NodeAddressUnknown', message: `node ${local} has no IPv4 InternalIP: the tunnel has no local address` });
    const cluster = this.clusterDestinations();
    issues.push(...cluster.issues);

    const usableMemo = new Map<Sel, PodRec[]>();
    const usable = (s: Sel): PodRec[] => {
      let list = usableMemo.get(s);
      if (list === undefined) {
        list = [...s.members].filter((g) => this.usableGateway(g)).sort(byKey);
        usableMemo.set(s, list);
      }
      return list;
    };

    const clients = localPods.filter((rec) => this.isClient(rec));

    // ---- maxNextHops: the load as stored, minus what this node's own records add, plus what they will.
    const delta = new Map<string, number>();
    const bump = (g: string, d: number): void => void delta.set(g, (delta.get(g) ?? 0) + d);
    for (const r of owned.values()) for (const c of Object.values(r.rules)) for (const g of c.gateways) bump(g, -1);
    const loadOf = (g: string): number => (this.gatewayLoad.get(g) ?? 0) + (delta.get(g) ?? 0);
    const desired = new Map<string, EgressNextHops>();
    for (const rec of clients) {
      const stored = this.storedRecord(rec);
      const rules: Record<string, NextHopsChoice> = {};
      let any = false;
      for (const r of rec.config!.rules) {
        const s = r.selection;
        const n = r.spec.gateway?.maxNextHops ?? 0;
        if (s === undefined || n === 0 || r.spec.skip !== undefined || rules[s.key] !== undefined) continue;
        const prev = stored?.rules[s.key];
        const want = prev?.maxNextHops ?? n;
        const cands = usable(s);
        const usableKeys = new Set(cands.map((g) => g.key));
        const gateways = chooseNextHops({ keep: (prev?.gateways ?? []).filter((g) => usableKeys.has(g)), candidates: cands.map((g) => g.key), want, load: loadOf, seed: rec.facts.uid });
        if (gateways.length === 0) continue;
        for (const g of gateways) bump(g, 1);
        rules[s.key] = { maxNextHops: want, gateways };
        any = true;
      }
      if (any) desired.set(rec.key, { client: rec.key, podUID: rec.facts.uid, node: local, rules });
    }

    // ---- routes per client
    const peers = new Map<string, PodRec>();
    const polled = new Set<PodRec>();
    const statuses: ClientStatus[] = [];
    const routesOf = new Map<PodRec, { key: string; routes: CalcRoute[] }>();
    const failClosedRoutes: CalcRoute[] = [{ cidr: ALL_TEXT, kind: 'unreachable' }];
    const failClosedKey = routeKey(failClosedRoutes);
    for (const rec of clients) {
      const config = rec.config!;
      const notes: string[] = [];
      const source = resolveEgressSource(mode, rec.ann, this.namespaces.get(rec.ns)?.ann, notes) ?? config.source;
      const ruleStatus: ClientRuleStatus[] = [];
      const routes: CalcRoute[] = [];
      const nets: Net4[] = [];
      let gatewayRules = 0;
      let closedRules = 0;
      const programmed = config.rules.filter((r) => r.spec.skip === undefined);
      if (config.policyMissing || programmed.length === 0) {
        const reason: CalcReason = config.policyMissing ? 'policy-not-found' : 'policy-has-no-usable-rule';
        for (const r of config.rules) ruleStatus.push(skipped(r.spec, r.spec.skip ?? reason));
        ruleStatus.push({ destination: ALL_TEXT, action: 'unreachable', gateways: [], reason });
        routes.push({ cidr: ALL_TEXT, kind: 'unreachable' });
        nets.push(ALL);
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
            routes.push({ cidr: spec.destination, kind: 'throw' });
            nets.push(spec.net);
            ruleStatus.push({ destination: spec.destination, action: 'throw', gateways: [], ...description });
            continue;
          }
          gatewayRules++;
          const s = r.selection!;
          const chosen = this.effectiveGateways(rec, r, s, usable(s), desired.get(rec.key));
          for (const g of chosen) if (g.node !== local && g.facts.healthPort !== undefined) polled.add(g);
          // Gateways this node judged down stay polled, so that they can come back.
          for (const g of s.members) if (this.polledDown(g)) polled.add(g);
          if (chosen.length === 0) {
            closedRules++;
            const reason: CalcReason = s.error ?? (s.members.size === 0 ? 'no-gateway-matches' : 'no-gateway-ready');
            routes.push({ cidr: spec.destination, kind: 'unreachable' });
            ruleStatus.push({ destination: spec.destination, action: 'unreachable', gateways: [], reason, ...description });
          } else {
            const ips = chosen.map((g) => g.facts.ip!).sort(compareIPv4Text);
            for (const g of chosen) peers.set(g.facts.ip!, g);
            routes.push({ cidr: spec.destination, kind: 'via-gateways', gateways: ips });
            ruleStatus.push({
              destination: spec.destination,
              action: 'gateways',
              gateways: chosen.map((g) => ({ pod: g.key, ip: g.facts.ip! })).sort((a, b) => compareIPv4Text(a.ip, b.ip)),
              ...description,
            });
          }
          nets.push(spec.net);
        }
      }
      const order = routes.map((route, i) => ({ route, net: nets[i]! })).sort((a, b) => compareNet4(a.net, b.net));
      const sortedRoutes = order.map((o) => o.route);
      routesOf.set(rec, { key: routeKey(sortedRoutes), routes: sortedRoutes });
      const state: ClientStatus['state'] =
        closedRules === 0 ? 'routed' : closedRules === gatewayRules ? 'fail-closed' : 'partly-fail-closed';
      statuses.push({
        pod: rec.key,
        ip: rec.facts.ip,
        source: source.from,
        method: source.method,
        ...(source.method === 'policy' ? { policy: source.policy } : {}),
        table: undefined,
        state: rec.facts.ip === undefined ? 'no-ip' : state,
        rules: ruleStatus,
        notes,
      });
    }

    // ---- tables: one per distinct route set among the clients that have an address.
    const withIp = clients.filter((rec) => rec.facts.ip !== undefined);
    const keys = [...new Set(withIp.map((rec) => routesOf.get(rec)!.key))].sort();
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
    const members = new Map<number, string[]>();
    const routesById = new Map<number, readonly CalcRoute[]>();
    statuses.forEach((st, i) => {
      const rec = clients[i]!;
      if (rec.facts.ip === undefined) return;
      const mine = routesOf.get(rec)!;
      let id = allocation.ids.get(mine.key);
      let routes: readonly CalcRoute[] = mine.routes;
      let key = mine.key;
      if (id === undefined) {
        id = fallback;
        routes = failClosedRoutes;
        key = failClosedKey;
        const failed: ClientStatus = {
          ...st,
          table: id,
          state: id === undefined ? 'no-table' : 'fail-closed',
          rules: [{ destination: ALL_TEXT, action: 'unreachable', gateways: [], reason: 'route-tables-exhausted' }],
        };
        statuses[i] = failed;
        if (id === undefined) return;
      } else statuses[i] = { ...st, table: id };
      const list = members.get(id);
      if (list === undefined) members.set(id, [rec.facts.ip]);
      else list.push(rec.facts.ip);
      if (!routesById.has(id)) routesById.set(id, this.fullRoutes(key, routes, cluster));
    });
    const tables: EgressTable[] = [...members.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([id, ips]) => ({ id, key: [...allocation.ids].find(([, v]) => v === id)![0], routes: routesById.get(id)!, clientIps: ips.sort(compareIPv4Text) }));
    // Peers only of routes that are programmed (a client that lost its table names nobody).
    const named = new Set<string>();
    for (const t of tables) for (const r of t.routes) if (r.kind === 'via-gateways') for (const ip of r.gateways) named.add(ip);

    const gateways: GatewayPeer[] = [...peers.entries()]
      .filter(([ip]) => named.has(ip))
      .sort((a, b) => compareIPv4Text(a[0], b[0]))
      .map(([ip, g]) => ({ pod: g.key, ip, nodeName: g.node!, nodeIp: this.nodeIpOf(g), local: g.node === local }));
    const pollTargets: PollTarget[] = [...polled]
      .filter((g) => g.facts.ip !== undefined && g.facts.healthPort !== undefined && g.node !== local)
      .sort(byKey)
      .map((g) => ({ gateway: g.key, ip: g.facts.ip!, port: g.facts.healthPort! }));

    // ---- this node's gateways and the return path.
    const localGatewayPods = localPods.filter((rec) => rec.memberOf.size > 0);
    const localGateways: LocalGateway[] = localGatewayPods.map((g) => ({
      pod: g.key,
      ip: g.facts.ip,
      ready: g.facts.ready,
      ...(g.facts.notReadyReason === undefined ? {} : { reason: g.facts.notReadyReason }),
    }));
    const gatewayPodIps = localGatewayPods.flatMap((g) => (g.facts.ip === undefined ? [] : [g.facts.ip])).sort(compareIPv4Text);
    const returnPath = gatewayPodIps.length === 0 ? undefined : { gatewayPodIps, clients: this.returnSorted };

    const ignored: IgnoredPod[] = [];
    for (const rec of localPods) {
      if (this.isClient(rec) || (rec.ann === undefined && rec.config === undefined)) continue;
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
      pollTargets,
      returnPath,
      localGateways,
      nextHops,
      staleNextHops,
      issues,
    };
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
      if (choice !== undefined) {
        const byKeyMap = new Map(cands.map((g) => [g.key, g]));
        return choice.gateways.flatMap((k) => {
          const g = byKeyMap.get(k);
          return g === undefined ? [] : [g];
        });
      }
    }
    return [...cands];
  }

  private insideCluster(net: Net4, cluster: ClusterDestinations): boolean {
    if (net.prefix === 32 && cluster.nodeIps.has(net.network)) return true;
    return cluster.throws.some((t) => net4Contains(t, net));
  }

  private fullRoutes(key: string, routes: readonly CalcRoute[], cluster: ClusterDestinations): readonly CalcRoute[] {
    let full = this.tableRoutes.get(key);
    if (full === undefined) {
      full = [...cluster.routes, ...routes];
      this.tableRoutes.set(key, full);
      // Bounded: tables come and go with route sets; keep the cache from growing without end.
      if (this.tableRoutes.size > 4096) this.tableRoutes.clear();
    }
    return full;
  }
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

/**
 * The labels a pod selector sees: the pod's labels plus those Calico gives every workload endpoint
 * (`projectcalico.org/namespace`, `projectcalico.org/orchestrator`, `projectcalico.org/serviceaccount`).
 */
function podLabels(ns: string, pod: Pod): Labels {
  const out = prepareLabels(pod.metadata.labels ?? {}) as Record<string, string>;
  out['projectcalico.org/namespace'] = ns;
  out['projectcalico.org/orchestrator'] = 'k8s';
  const sa = (pod.spec as { serviceAccountName?: unknown }).serviceAccountName;
  if (typeof sa === 'string' && sa !== '') out['projectcalico.org/serviceaccount'] = sa;
  return out;
}

function serviceAccountOf(pod: Pod): unknown {
  return (pod.spec as { serviceAccountName?: unknown }).serviceAccountName;
}

function termsOf(labels: Labels): string[] {
  return Object.keys(labels).map((k) => termKey(k, labels[k]!));
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
