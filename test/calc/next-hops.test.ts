import { describe, expect, it } from 'vitest';
import { EgressCalculator } from '../../src/calc/calculator.js';
import { chooseNextHops, fnv1a, sameNextHops } from '../../src/calc/next-hops.js';
import { selectionKey } from '../../src/calc/selection.js';
import type { CalcResource, EgressNextHops } from '../../src/calc/types.js';
import { egressGateway, felix, gateway, MAXHOPS, namespace, node, NSSEL, pod, policy, POLICY, SEL } from './fixtures.js';

const EGW_NS = "projectcalico.org/name == 'egw'";
const RED = "egress-code == 'red'";
const RED_KEY = selectionKey(RED, { kind: 'namespaceSelector', selector: EGW_NS });

describe('chooseNextHops', () => {
  const load = (m: Record<string, number>) => (g: string) => m[g] ?? 0;
  it('keeps the usable previous choice and tops it up with the least loaded', () => {
    expect(chooseNextHops({ keep: ['b'], candidates: ['a', 'b', 'c', 'd'], want: 2, load: load({ a: 5, c: 1, d: 3 }), seed: 'x' })).toEqual(['b', 'c']);
    expect(chooseNextHops({ keep: ['b', 'a'], candidates: ['a', 'b', 'c'], want: 2, load: load({ a: 9, b: 9 }), seed: 'x' })).toEqual(['a', 'b']);
  });
  it('takes what there is when fewer than N exist, and trims when N was lowered', () => {
    expect(chooseNextHops({ keep: [], candidates: ['a'], want: 3, load: load({}), seed: 'x' })).toEqual(['a']);
    expect(chooseNextHops({ keep: ['c', 'a', 'b'], candidates: ['a', 'b', 'c'], want: 2, load: load({}), seed: 'x' })).toEqual(['a', 'b']);
  });
  it('breaks ties by a hash of client and gateway (deterministic, different per client)', () => {
    const cands = ['g1', 'g2', 'g3', 'g4', 'g5', 'g6'];
    const pick = (seed: string) => chooseNextHops({ keep: [], candidates: cands, want: 1, load: load({}), seed });
    expect(pick('uid-1')).toEqual(pick('uid-1'));
    const firsts = new Set(Array.from({ length: 40 }, (_, i) => pick(`uid-${i}`)[0]));
    expect(firsts.size).toBeGreaterThan(3);
    expect(fnv1a('')).toBe(0x811c9dc5);
  });
});

describe('sameNextHops', () => {
  const r = (gws: string[]): EgressNextHops => ({ client: 'a/b', podUID: 'u', node: 'n', rules: { k: { maxNextHops: 2, gateways: gws } } });
  it('compares content', () => {
    expect(sameNextHops(r(['x', 'y']), r(['x', 'y']))).toBe(true);
    expect(sameNextHops(r(['x', 'y']), r(['x', 'z']))).toBe(false);
    expect(sameNextHops(undefined, r([]))).toBe(false);
    expect(sameNextHops(undefined, undefined)).toBe(true);
  });
});

/** A small cluster of agents that store their records in a shared "datastore" after each result. */
class Cluster {
  readonly agents = new Map<string, EgressCalculator>();
  readonly store = new Map<string, EgressNextHops>();

  constructor(nodes: string[], resources: CalcResource[]) {
    for (const n of nodes) this.agents.set(n, new EgressCalculator(n).load({ resources }));
  }

  upsert(r: CalcResource): void {
    for (const a of this.agents.values()) a.upsert(r);
  }

  delete(kind: 'Pod', name: string, ns: string): void {
    for (const a of this.agents.values()) a.delete(kind, name, ns);
  }

  /** Lets every agent write what it wants, in node order, until nobody wants a change. */
  settle(): void {
    for (let round = 0; round < 10; round++) {
      let writes = 0;
      for (const agent of this.agents.values()) {
        const s = agent.result();
        for (const rec of s.nextHops) {
          if (sameNextHops(this.store.get(rec.client), rec)) continue;
          this.store.set(rec.client, rec);
          for (const a of this.agents.values()) a.upsertNextHops(rec);
          writes++;
        }
        for (const client of s.staleNextHops) {
          this.store.delete(client);
          for (const a of this.agents.values()) a.deleteNextHops(client);
          writes++;
        }
      }
      if (writes === 0) return;
    }
    throw new Error('agents did not settle');
  }

  load(): Map<string, number> {
    const out = new Map<string, number>();
    for (const r of this.store.values()) for (const c of Object.values(r.rules)) for (const g of c.gateways) out.set(g, (out.get(g) ?? 0) + 1);
    return out;
  }
}

const NODE_NAMES = ['n1', 'n2', 'n3'];
const nodes = NODE_NAMES.map((n, i) => node(n, `10.1.0.${i + 1}`));
const sixGateways = Array.from({ length: 6 }, (_, i) => gateway('egw', `red-${i}`, NODE_NAMES[i % 3]!, `100.64.0.${10 + i}`, 'red'));
const base = (maxNextHops: string): CalcResource[] => [felix('EnabledPerNamespaceOrPerPod'), ...nodes, namespace('egw'), egressGateway('egw'), namespace('app', { [SEL]: RED, [NSSEL]: EGW_NS, [MAXHOPS]: maxNextHops }), ...sixGateways];
const client = (i: number, n = NODE_NAMES[i % 3]!) => pod('app', `c${String(i).padStart(2, '0')}`, { node: n, ip: `10.2.${i % 3}.${10 + i}`, uid: `uid-${i}` });

function expectBalanced(load: Map<string, number>, gateways: number, per: number): void {
  expect(load.size).toBe(gateways);
  for (const n of load.values()) expect(Math.abs(n - per)).toBeLessThanOrEqual(1);
}

describe('maxNextHops', () => {
  it('30 clients on one node, 6 gateways, maxNextHops 2: every client exactly 2, every gateway 10 ± 1', () => {
    const c = new Cluster(['n1'], [...base('2'), ...Array.from({ length: 30 }, (_, i) => client(i, 'n1'))]);
    c.settle();
    const s = c.agents.get('n1')!.result();
    expect(s.nextHops).toHaveLength(30);
    for (const r of s.nextHops) expect(r.rules[RED_KEY]?.gateways).toHaveLength(2);
    for (const cl of s.clients) expect(cl.rules[0]?.gateways).toHaveLength(2);
    expectBalanced(c.load(), 6, 10);
  });

  it('30 clients created one by one on three nodes, each agent storing its choice: still 10 ± 1', () => {
    const c = new Cluster(NODE_NAMES, base('2'));
    for (let i = 0; i < 30; i++) {
      c.upsert(client(i));
      c.settle();
    }
    expect(c.store.size).toBe(30);
    for (const r of c.store.values()) expect(r.rules[RED_KEY]?.gateways).toHaveLength(2);
    expectBalanced(c.load(), 6, 10);
    // Each agent routes its own clients through exactly their stored choice.
    for (const [name, agent] of c.agents) {
      for (const cl of agent.result().clients) {
        expect(cl.rules[0]?.gateways.map((g) => g.pod).sort()).toEqual(c.store.get(cl.pod)?.rules[RED_KEY]?.gateways);
        expect(c.store.get(cl.pod)?.node).toBe(name);
      }
    }
  });

  it('sticky: a new gateway changes no choice; a lost one is replaced only where it was chosen', () => {
    const c = new Cluster(NODE_NAMES, [...base('2'), ...Array.from({ length: 30 }, (_, i) => client(i))]);
    c.settle();
    const before = new Map([...c.store].map(([k, r]) => [k, r.rules[RED_KEY]!.gateways]));
    c.upsert(gateway('egw', 'red-6', 'n1', '100.64.0.16', 'red'));
    c.settle();
    expect(new Map([...c.store].map(([k, r]) => [k, r.rules[RED_KEY]!.gateways]))).toEqual(before);
    // red-0 becomes unready: its clients get another, everyone else keeps theirs.
    c.upsert(gateway('egw', 'red-0', 'n1', '100.64.0.10', 'red', { ready: 'False' }));
    c.settle();
    for (const [k, r] of c.store) {
      const was = before.get(k)!;
      const now = r.rules[RED_KEY]!.gateways;
      expect(now).toHaveLength(2);
      expect(now).not.toContain('egw/red-0');
      if (!was.includes('egw/red-0')) expect(now).toEqual(was);
      else expect(now.filter((g) => was.includes(g))).toHaveLength(1);
    }
    // The replacements went to the least loaded (the new red-6 first).
    expect(c.load().get('egw/red-6')).toBeGreaterThan(0);
  });

  it('refills up to N when too few gateways existed at creation', () => {
    const c = new Cluster(['n1'], [felix('EnabledPerNamespaceOrPerPod'), ...nodes, namespace('egw'), egressGateway('egw'), namespace('app', { [SEL]: RED, [NSSEL]: EGW_NS, [MAXHOPS]: '2' }), sixGateways[0]!, client(1, 'n1')]);
    c.settle();
    expect(c.store.get('app/c01')?.rules[RED_KEY]?.gateways).toEqual(['egw/red-0']);
    c.upsert(sixGateways[1]!);
    c.settle();
    expect(c.store.get('app/c01')?.rules[RED_KEY]?.gateways).toEqual(['egw/red-0', 'egw/red-1']);
    c.upsert(sixGateways[2]!);
    c.settle();
    expect(c.store.get('app/c01')?.rules[RED_KEY]?.gateways).toEqual(['egw/red-0', 'egw/red-1']);
  });

  it('N takes effect at creation: a later change of maxNextHops leaves running pods alone', () => {
    const c = new Cluster(['n1'], [...base('2'), client(1, 'n1')]);
    c.settle();
    c.upsert(namespace('app', { [SEL]: RED, [NSSEL]: EGW_NS, [MAXHOPS]: '3' }));
    c.upsert(client(2, 'n1'));
    c.settle();
    expect(c.store.get('app/c01')?.rules[RED_KEY]).toMatchObject({ maxNextHops: 2 });
    expect(c.store.get('app/c01')?.rules[RED_KEY]?.gateways).toHaveLength(2);
    expect(c.store.get('app/c02')?.rules[RED_KEY]).toMatchObject({ maxNextHops: 3 });
    expect(c.store.get('app/c02')?.rules[RED_KEY]?.gateways).toHaveLength(3);
  });

  it('records of deleted or re-created pods: stale ones are reported, a new UID chooses afresh', () => {
    const c = new Cluster(['n1'], [...base('2'), client(1, 'n1'), client(2, 'n1')]);
    c.settle();
    c.delete('Pod', 'c01', 'app');
    const s = c.agents.get('n1')!.result();
    expect(s.staleNextHops).toEqual(['app/c01']);
    c.settle();
    expect([...c.store.keys()]).toEqual(['app/c02']);
    c.upsert({ ...client(2, 'n1'), metadata: { ...client(2, 'n1').metadata, uid: 'uid-new' } });
    c.settle();
    expect(c.store.get('app/c02')?.podUID).toBe('uid-new');
    // A record another node wrote for a pod it no longer runs is not this node's to delete.
    const foreign: EgressNextHops = { client: 'app/gone', podUID: 'x', node: 'n2', rules: { [RED_KEY]: { maxNextHops: 2, gateways: ['egw/red-0'] } } };
    const agent = c.agents.get('n1')!;
    agent.upsertNextHops(foreign);
    expect(agent.result().staleNextHops).toEqual([]);
  });

  it('policy rules with maxNextHops and the record keyed per selection', () => {
    const p = policy('p', [
      { destination: { cidr: '198.18.0.0/15' }, gateway: { selector: RED, namespaceSelector: EGW_NS, maxNextHops: 1 } },
      { gateway: { selector: RED, namespaceSelector: EGW_NS, maxNextHops: 1 } },
    ]);
    const s = new EgressCalculator('n1').load({ resources: [...base('0'), namespace('app', { [POLICY]: 'p' }), p, client(1, 'n1')] }).result();
    // Both rules name the same selection: one choice, used by both destinations.
    expect(Object.keys(s.nextHops[0]!.rules)).toEqual([RED_KEY]);
    const [a, b] = s.clients[0]!.rules;
    expect(a?.gateways).toEqual(b?.gateways);
    expect(a?.gateways).toHaveLength(1);
  });

  it('PreferNodeLocal with maxNextHops: the local gateways when there are any, the choice otherwise', () => {
    const p = policy('p', [{ gateway: { selector: RED, namespaceSelector: EGW_NS, maxNextHops: 1 }, gatewayPreference: 'PreferNodeLocal' }]);
    const res = [...base('0'), namespace('app', { [POLICY]: 'p' }), p, client(1, 'n1')];
    const s = new EgressCalculator('n1').load({ resources: res }).result();
    // red-0 and red-3 run on n1.
    expect(s.clients[0]?.rules[0]?.gateways.map((g) => g.pod)).toEqual(['egw/red-0', 'egw/red-3']);
    expect(s.nextHops[0]?.rules[RED_KEY]?.gateways).toHaveLength(1);
    const remote = new EgressCalculator('n1').load({ resources: [...res, gateway('egw', 'red-0', 'n1', '100.64.0.10', 'red', { deleting: true }), gateway('egw', 'red-3', 'n1', '100.64.0.13', 'red', { deleting: true })] }).result();
    expect(remote.clients[0]?.rules[0]?.gateways).toHaveLength(1);
    expect(remote.clients[0]?.rules[0]?.gateways.map((g) => g.pod)).toEqual(remote.nextHops[0]?.rules[RED_KEY]?.gateways);
  });
});
