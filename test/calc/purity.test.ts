/**
 * The calculator's output depends only on the current inputs (docs/architecture.md, habit 1): feed
 * sequences of random states — forward, reversed, with empty states between, squashed, with events
 * shuffled, repeated and results taken mid-way — and compare every result with a fresh computation.
 */
import { describe, expect, it } from 'vitest';
import { GATEWAY_PODS_ALLOWED_LABEL, type EgressGatewayRule } from '../../src/api/index.js';
import { EgressCalculator } from '../../src/calc/calculator.js';
import { computeNodeEgress } from '../../src/calc/compute.js';
import { selectionKey } from '../../src/calc/selection.js';
import type { CalcResource, EgressNextHops, GatewayHealth, TableBinding } from '../../src/calc/types.js';
import { egressGateway, felix, MAXHOPS, namespace, node, NSSEL, OWNER, pod, policy, POLICY, SEL } from './fixtures.js';

interface State {
  resources: Map<string, CalcResource>;
  records: Map<string, EgressNextHops>;
  health: Map<string, GatewayHealth>;
  clusterCidrs: string[];
  previousTables: TableBinding[];
}

function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof rng>;

const CODES = ['red', 'blue', 'green'];
const NODE_NAMES = ['n1', 'n2', 'n3', 'n4'];
const GW_NS = ['egw', 'egw2', 'app1'];
const APP_NS = ['app1', 'app2', 'app3'];
const NSS = ["projectcalico.org/name == 'egw'", "team == 'net'", 'all()', "projectcalico.org/name in {'egw', 'egw2'}"];

function annotations(r: Rng): Record<string, string> | undefined {
  const code = r.pick(CODES);
  switch (r.int(9)) {
    case 0:
      return undefined;
    case 1:
      return { [SEL]: `egress-code == '${code}'` };
    case 2:
      return { [SEL]: `egress-code == '${code}'`, [NSSEL]: r.pick(NSS), ...(r.chance(0.6) ? { [MAXHOPS]: '1' } : {}) };
    case 3:
      return { [SEL]: `egress-code == '${code}'`, [NSSEL]: r.pick(NSS), [MAXHOPS]: String(r.int(3)) };
    case 4:
      return { [POLICY]: r.pick(['p1', 'p2', 'missing']) };
    case 5:
      return { [POLICY]: 'p1', [SEL]: `egress-code == '${code}'` };
    case 6:
      return { [NSSEL]: r.pick(NSS), [MAXHOPS]: '1' };
    case 7:
      return { [SEL]: `has(egress-code) && egress-code != '${code}'`, [NSSEL]: r.pick(NSS) };
    default:
      return { [SEL]: r.pick(['egress-code ==', "egress-code in {'red','blue'}"]), [NSSEL]: r.pick(NSS) };
  }
}

function rules(r: Rng): EgressGatewayRule[] {
  const out: EgressGatewayRule[] = [];
  const dests = ['203.0.113.0/24', '198.18.0.0/15', '10.2.3.0/24', '198.51.100.0/24'];
  for (const d of dests) {
    if (!r.chance(0.5)) continue;
    out.push(r.chance(0.3) ? { destination: { cidr: d } } : { destination: { cidr: d }, gateway: { selector: `egress-code == '${r.pick(CODES)}'`, namespaceSelector: r.pick(NSS), maxNextHops: r.int(3) }, ...(r.chance(0.3) ? { gatewayPreference: 'PreferNodeLocal' as const } : {}) });
  }
  if (r.chance(0.7)) out.push({ gateway: { selector: `egress-code == '${r.pick(CODES)}'`, namespaceSelector: r.pick(NSS), maxNextHops: r.int(3) }, ...(r.chance(0.3) ? { gatewayPreference: 'PreferNodeLocal' as const } : {}) });
  return out;
}

function gatewayPod(r: Rng, i: number) {
  const ns = r.pick(GW_NS);
  return pod(ns, `gw${i}`, {
    // Mostly on the two nodes under test, so that their return paths are busy.
    node: r.chance(0.7) ? r.pick(['n1', 'n2']) : r.pick(NODE_NAMES),
    ...(r.chance(0.9) ? { ip: `100.64.0.${10 + r.int(12)}` } : {}),
    labels: { 'egress-code': r.pick(CODES) },
    health: r.chance(0.8),
    ...(r.chance(0.15) ? { ready: 'False' as const } : {}),
    ...(r.chance(0.1) ? { phase: 'Pending' as const } : {}),
    ...(r.chance(0.1) ? { deleting: true } : {}),
    uid: `g${i}-${r.int(2)}`,
    // Mostly owned by the namespace's EgressGateway; some by nothing, some by one that may not exist.
    owner: r.chance(0.1) ? null : { apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: r.chance(0.9) ? OWNER : 'other' },
  });
}

function clientPod(r: Rng, i: number) {
  const ann = annotations(r);
  return pod(r.pick(APP_NS), `c${i}`, {
    node: r.chance(0.6) ? 'n1' : r.pick(NODE_NAMES),
    ...(r.chance(0.9) ? { ip: `10.2.${r.int(3)}.${10 + i}` } : {}),
    ...(r.chance(0.1) ? { labels: { 'egress-code': r.pick(CODES) } } : {}),
    ...(ann !== undefined && r.chance(0.5) ? { annotations: ann } : {}),
    ...(r.chance(0.05) ? { hostNetwork: true } : {}),
    ...(r.chance(0.05) ? { phase: 'Succeeded' as const } : {}),
    uid: `c${i}-${r.int(2)}`,
  });
}

function keyOf(res: CalcResource): string {
  return `${res.kind}/${res.metadata.namespace ?? ''}/${res.metadata.name}`;
}

function randomRecord(r: Rng, state: State): EgressNextHops | undefined {
  const clients = [...state.resources.values()].filter((x) => x.kind === 'Pod' && x.metadata.name.startsWith('c'));
  const gws = [...state.resources.values()].filter((x) => x.kind === 'Pod' && x.metadata.name.startsWith('gw'));
  if (clients.length === 0) return undefined;
  const c = r.pick(clients);
  const client = `${c.metadata.namespace}/${c.metadata.name}`;
  // Mostly the selection the client (or its namespace) really names, so that records matter.
  const nsRes = state.resources.get(`Namespace//${c.metadata.namespace}`);
  const ann = [c.metadata.annotations, nsRes?.metadata.annotations].find((a) => a?.[SEL] !== undefined && a[NSSEL] !== undefined);
  const key =
    ann !== undefined && r.chance(0.8)
      ? selectionKey(ann[SEL]!, { kind: 'namespaceSelector', selector: ann[NSSEL]! })
      : selectionKey(`egress-code == '${r.pick(CODES)}'`, { kind: 'namespaceSelector', selector: r.pick(NSS) });
  const gateways = gws.length === 0 ? [] : [...new Set([r.pick(gws), r.pick(gws)].map((g) => `${g.metadata.namespace}/${g.metadata.name}`))].sort();
  return { client, podUID: r.chance(0.7) ? (c.metadata.uid ?? client) : 'other', node: r.chance(0.7) ? ((c.kind === 'Pod' ? c.spec.nodeName : undefined) ?? 'n1') : r.pick(NODE_NAMES), rules: { [key]: { maxNextHops: 1 + r.int(2), gateways } } };
}

/** Labels of a gateway namespace: sometimes `team`, sometimes opened to hand-made gateways. */
function gwNsLabels(r: Rng): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  if (r.chance(0.5)) labels['team'] = 'net';
  if (r.chance(0.15)) labels[GATEWAY_PODS_ALLOWED_LABEL] = 'true';
  return Object.keys(labels).length === 0 ? undefined : labels;
}

function randomState(r: Rng): State {
  const s: State = { resources: new Map(), records: new Map(), health: new Map(), clusterCidrs: [], previousTables: [] };
  const add = (x: CalcResource) => s.resources.set(keyOf(x), x);
  add(felix(r.pick(['Disabled', 'EnabledPerNamespace', 'EnabledPerNamespaceOrPerPod', 'EnabledPerNamespaceOrPerPod'] as const), r.chance(0.2) ? { routeTableRanges: [{ min: 1, max: 2 }] } : {}));
  if (r.chance(0.2)) add(felix('Disabled', { egressIPRoutingRulePriority: 99 }, 'node.n1'));
  NODE_NAMES.forEach((n, i) => {
    if (r.chance(0.9)) add(node(n, r.chance(0.9) ? `10.1.0.${i + 1}` : undefined));
  });
  for (const ns of ['egw', 'egw2']) if (r.chance(0.9)) add(namespace(ns, undefined, gwNsLabels(r)));
  for (const ns of GW_NS) if (r.chance(0.9)) add(egressGateway(ns));
  for (const ns of APP_NS) if (r.chance(0.9)) add(namespace(ns, annotations(r), r.chance(0.3) ? { team: 'net' } : undefined));
  for (const p of ['p1', 'p2']) if (r.chance(0.8)) add(policy(p, rules(r)));
  const gws = r.int(9);
  for (let i = 0; i < gws; i++) add(gatewayPod(r, i));
  const clients = r.int(12);
  for (let i = 0; i < clients; i++) add(clientPod(r, i));
  const recs = r.int(8);
  for (let i = 0; i < recs; i++) {
    const rec = randomRecord(r, s);
    if (rec !== undefined) s.records.set(rec.client, rec);
  }
  for (let i = 0; i < gws; i++) {
    const gateway = `${r.pick(GW_NS)}/gw${i}`;
    if (r.chance(0.3)) s.health.set(gateway, { gateway, ip: `100.64.0.${10 + r.int(12)}`, up: r.chance(0.4) });
  }
  for (const c of ['10.2.0.0/16', '10.1.0.0/24', '10.96.0.0/12', 'nonsense']) if (r.chance(0.3)) s.clusterCidrs.push(c);
  if (r.chance(0.3)) s.previousTables = [{ id: 1 + r.int(3), key: 'unknown' }];
  return s;
}

/** A small random change of a state (most steps of a real sequence are small). */
function mutate(r: Rng, prev: State): State {
  const s: State = { resources: new Map(prev.resources), records: new Map(prev.records), health: new Map(prev.health), clusterCidrs: [...prev.clusterCidrs], previousTables: [...prev.previousTables] };
  const n = 1 + r.int(4);
  for (let k = 0; k < n; k++) {
    const keys = [...s.resources.keys()];
    switch (r.int(12)) {
      case 0:
        if (keys.length > 0) s.resources.delete(r.pick(keys));
        break;
      case 1:
      case 2: {
        const g = gatewayPod(r, r.int(9));
        s.resources.set(keyOf(g), g);
        break;
      }
      case 3:
      case 4: {
        const c = clientPod(r, r.int(12));
        s.resources.set(keyOf(c), c);
        break;
      }
      case 5: {
        const name = r.pick([...APP_NS, 'egw', 'egw2']);
        const ns = namespace(name, annotations(r), name.startsWith('egw') ? gwNsLabels(r) : r.chance(0.5) ? { team: 'net' } : undefined);
        s.resources.set(keyOf(ns), ns);
        if (r.chance(0.3)) {
          const owner = egressGateway(r.pick(GW_NS));
          s.resources.set(keyOf(owner), owner);
        }
        break;
      }
      case 6: {
        const p = policy(r.pick(['p1', 'p2']), rules(r));
        s.resources.set(keyOf(p), p);
        break;
      }
      case 7:
      case 10:
      case 11: {
        const rec = randomRecord(r, s);
        if (rec !== undefined) {
          if (r.chance(0.3)) s.records.delete(rec.client);
          else s.records.set(rec.client, rec);
        }
        break;
      }
      case 8: {
        const g = `${r.pick(GW_NS)}/gw${r.int(9)}`;
        if (r.chance(0.3)) s.health.delete(g);
        else s.health.set(g, { gateway: g, ip: `100.64.0.${10 + r.int(12)}`, up: r.chance(0.5) });
        break;
      }
      default: {
        const i = r.int(NODE_NAMES.length);
        const nd = node(NODE_NAMES[i]!, r.chance(0.8) ? `10.1.0.${i + 1 + r.int(2)}` : undefined);
        s.resources.set(keyOf(nd), nd);
        if (r.chance(0.3)) s.clusterCidrs = r.chance(0.5) ? [] : ['10.2.0.0/16'];
        if (r.chance(0.3)) {
          const fc = felix(r.pick(['EnabledPerNamespace', 'EnabledPerNamespaceOrPerPod'] as const));
          s.resources.set(keyOf(fc), fc);
        }
      }
    }
  }
  return s;
}

const EMPTY: State = { resources: new Map(), records: new Map(), health: new Map(), clusterCidrs: [], previousTables: [] };

function shuffle<T>(r: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Brings `calc` from `prev` to `next` with shuffled, sometimes repeated events and mid-way results. */
function feed(r: Rng, calc: EgressCalculator, prev: State, next: State): void {
  const events: (() => void)[] = [];
  for (const [k, v] of next.resources) {
    if (prev.resources.get(k) === v) continue;
    // Sometimes a structurally equal copy: upserts must compare content, not identity.
    const value: CalcResource = r.chance(0.2) ? structuredClone(v) : v;
    events.push(() => calc.upsert(value));
  }
  for (const [k, v] of prev.resources) if (!next.resources.has(k)) events.push(() => calc.delete(v.kind, v.metadata.name, v.metadata.namespace));
  for (const [k, v] of next.records) if (prev.records.get(k) !== v) events.push(() => calc.upsertNextHops(v));
  for (const k of prev.records.keys()) if (!next.records.has(k)) events.push(() => calc.deleteNextHops(k));
  for (const [k, v] of next.health) if (prev.health.get(k) !== v) events.push(() => calc.setGatewayHealth(v));
  for (const k of prev.health.keys()) if (!next.health.has(k)) events.push(() => calc.clearGatewayHealth(k));
  events.push(() => calc.setClusterCidrs(next.clusterCidrs));
  events.push(() => calc.setPreviousTables(next.previousTables));
  shuffle(r, events);
  for (const e of events) {
    e();
    if (r.chance(0.1)) e();
    if (r.chance(0.15)) calc.result();
  }
}

function fresh(r: Rng, nodeName: string, s: State) {
  return computeNodeEgress({
    nodeName,
    resources: shuffle(r, [...s.resources.values()]),
    nextHops: shuffle(r, [...s.records.values()]),
    gatewayHealth: shuffle(r, [...s.health.values()]),
    clusterCidrs: s.clusterCidrs,
    previousTables: s.previousTables,
  });
}

function sequence(seed: number, length: number): State[] {
  const r = rng(seed);
  const out: State[] = [randomState(r)];
  for (let i = 1; i < length; i++) out.push(r.chance(0.2) ? randomState(r) : mutate(r, out[i - 1]!));
  return out;
}

function run(seed: number, nodeName: string, states: State[]): void {
  const r = rng(seed * 7919 + 1);
  const calc = new EgressCalculator(nodeName);
  let prev = EMPTY;
  states.forEach((s, i) => {
    feed(r, calc, prev, s);
    const got = calc.result();
    const want = fresh(r, nodeName, s);
    if (JSON.stringify(got) !== JSON.stringify(want)) expect({ seed, step: i, got }).toEqual({ seed, step: i, got: want });
    prev = s;
  });
}

const SEEDS = Array.from({ length: 60 }, (_, i) => i + 1);

describe('the result depends only on the current inputs', () => {
  it('forward sequences of states (n1, and n2 for other return paths)', () => {
    for (const seed of SEEDS) {
      run(seed, 'n1', sequence(seed, 10));
      run(seed, 'n2', sequence(seed, 10));
    }
  });

  it('the same sequences reversed', () => {
    for (const seed of SEEDS) run(seed, 'n1', sequence(seed, 10).reverse());
  });

  it('with empty states between', () => {
    for (const seed of SEEDS.slice(0, 30)) run(seed, 'n1', sequence(seed, 6).flatMap((s) => [s, EMPTY]));
  });

  it('squashed: a calculator that saw every state ends where one that saw only the last begins', () => {
    for (const seed of SEEDS) {
      const states = sequence(seed, 10);
      const r = rng(seed);
      const calc = new EgressCalculator('n1');
      let prev = EMPTY;
      for (const s of states) {
        feed(r, calc, prev, s);
        prev = s;
      }
      const squashed = new EgressCalculator('n1');
      feed(r, squashed, EMPTY, states.at(-1)!);
      expect(JSON.stringify(calc.result())).toBe(JSON.stringify(squashed.result()));
    }
  });

  it('the generator exercises what it should (not only empty results)', () => {
    let clients = 0;
    let tables = 0;
    let returns = 0;
    let hops = 0;
    let closed = 0;
    let refused = 0;
    for (const seed of SEEDS) {
      for (const s of sequence(seed, 10)) {
        for (const n of ['n1', 'n2']) {
          const res = computeNodeEgress({ nodeName: n, resources: [...s.resources.values()], nextHops: [...s.records.values()], gatewayHealth: [...s.health.values()], clusterCidrs: s.clusterCidrs });
          clients += res.clients.length;
          tables += res.tables.length;
          returns += res.returnPath?.clients.length ?? 0;
          hops += res.nextHops.length;
          closed += res.clients.filter((c) => c.state !== 'routed').length;
          refused += res.issues.filter((i) => i.code === 'GatewayRefused').length;
        }
      }
    }
    expect(Math.min(clients, tables, returns, hops, closed, refused)).toBeGreaterThan(20);
  });
});
