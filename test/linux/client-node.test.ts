import { describe, expect, it } from 'vitest';
import { applyClientNode, readClientNode } from '../../src/linux/client-node/driver.js';
import { isEmptyPlan, planClientNode } from '../../src/linux/client-node/plan.js';
import type { ClientNodeConfig, ClientNodeState, EgressRoute } from '../../src/linux/client-node/types.js';
import { DEFAULT_CLIENT_NODE_CONFIG } from '../../src/linux/client-node/types.js';
import type { CommandResult, RunOptions, Shell } from '../../src/platform/shell.js';
import { FakeKernel } from './fixtures/fake-kernel.js';

const cfg = DEFAULT_CLIENT_NODE_CONFIG;
const ID = cfg.nexthopIds.min;
const vxlan = { vni: 4097, port: 4790, localIp: '10.10.1.10' };
const via = (...gateways: string[]): EgressRoute[] => [{ cidr: '0.0.0.0/0', kind: 'via-gateways', gateways }];
const state = (clients: Record<string, EgressRoute[]>, extra: Partial<ClientNodeState> = {}): ClientNodeState => ({
  vxlan,
  clients: Object.entries(clients).map(([ip, routes]) => ({ ip, routes })),
  ...extra,
});

/** A second shell onto the same kernel, as a restarted process would have. */
class FakeKernelView implements Shell {
  constructor(private readonly k: FakeKernel) {}
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult> {
    return this.k.run(argv, options);
  }
}

async function converged(k: FakeKernel, s: ClientNodeState, c: ClientNodeConfig = cfg): Promise<boolean> {
  return isEmptyPlan(planClientNode(s, await readClientNode(k), c));
}

/** The kernel's content that matters, as comparable data (everything of ours). */
function snapshot(k: FakeKernel): unknown {
  return {
    links: [...k.links.values()],
    neigh: [...k.neighbours.values()].sort((a, b) => (a.ip < b.ip ? -1 : 1)),
    fdb: [...k.fdb].sort((a, b) => (a.mac < b.mac ? -1 : 1)),
    nexthops: [...k.nexthops.values()].sort((a, b) => a.id - b.id),
    routes: [...k.routes].sort((a, b) => a.table - b.table || (a.dst < b.dst ? -1 : 1)),
    rules: k.rules,
    nft: k.nft,
  };
}

describe('client-node driver (fake kernel)', () => {
  it('builds in order: device, FDB, neighbours, nexthops, group, routes (fail-closed first), then rules', async () => {
    const k = new FakeKernel();
    const r = await applyClientNode(k, state({
      '10.20.1.5': [{ cidr: '198.51.100.0/24', kind: 'throw' }, { cidr: '198.18.0.0/15', kind: 'unreachable' }, ...via('100.64.0.6', '100.64.0.5')],
    }));
    expect(r).toMatchObject({ changed: true, failures: [], problems: [], assignments: [{ table: 1, clients: ['10.20.1.5'], returnPath: false }] });
    // The nft table first (the drain's conntrack marking: the peers have slots), then the tunnel. Peers take
    // the first 63 nexthop ids (their drain slots), groups the ids after them.
    expect(k.log).toEqual([
      'nft: table ip egw {}',
      'ip: link add egw.vxlan address 0e:67:0a:0a:01:0a mtu 1450 type vxlan id 4097 dstport 4790 local 10.10.1.10 nolearning',
      'ip: link set dev egw.vxlan up',
      'ip: addr replace 10.10.1.10/32 dev egw.vxlan scope link noprefixroute',
      'sysctl: net.ipv4.fib_multipath_hash_policy=1',
      'sysctl: net.ipv4.conf.egw/vxlan.rp_filter=2',
      'bridge: fdb replace 0e:67:64:40:00:05 dev egw.vxlan dst 100.64.0.5 self permanent',
      'bridge: fdb replace 0e:67:64:40:00:06 dev egw.vxlan dst 100.64.0.6 self permanent',
      'ip: neigh replace 100.64.0.5 lladdr 0e:67:64:40:00:05 dev egw.vxlan nud permanent',
      'ip: neigh replace 100.64.0.6 lladdr 0e:67:64:40:00:06 dev egw.vxlan nud permanent',
      `ip: nexthop add id ${ID} via 100.64.0.5 dev egw.vxlan onlink proto 233`,
      `ip: nexthop add id ${ID + 1} via 100.64.0.6 dev egw.vxlan onlink proto 233`,
      `ip: nexthop add id ${ID + 63} group ${ID}/${ID + 1} type resilient buckets 128 idle_timer 120 unbalanced_timer 0 proto 233`,
      'ip: route replace unreachable 198.18.0.0/15 table 1 proto 233',
      `ip: route replace 0.0.0.0/0 table 1 proto 233 nhid ${ID + 63}`,
      'ip: route replace throw 198.51.100.0/24 table 1 proto 233',
      'ip: rule add priority 100 from 10.20.1.5/32 table 1 protocol 233',
    ]);
    expect(await converged(k, state({ '10.20.1.5': [{ cidr: '198.51.100.0/24', kind: 'throw' }, { cidr: '198.18.0.0/15', kind: 'unreachable' }, ...via('100.64.0.5', '100.64.0.6')] }))).toBe(true);
  });

  it('applying twice changes nothing; one gateway is a single nexthop shared by every table that uses it', async () => {
    const k = new FakeKernel();
    const s = state({ '10.20.1.5': via('100.64.0.5'), '10.20.1.6': [{ cidr: '10.0.0.0/8', kind: 'throw' }, ...via('100.64.0.5')] });
    await applyClientNode(k, s);
    const before = k.log.length;
    expect(await applyClientNode(k, s)).toMatchObject({ changed: false, commands: 0 });
    expect(k.log.length).toBe(before);
    expect([...k.nexthops.values()]).toEqual([expect.objectContaining({ id: ID, gateway: '100.64.0.5' })]);
    expect(k.routes.filter((r) => r.nhid === ID).map((r) => r.table).sort()).toEqual([1, 2]);
  });

  it('clients with identical routes share a table; tables follow the configurations, not the pods', async () => {
    const k = new FakeKernel();
    const clients: Record<string, EgressRoute[]> = {};
    for (let i = 0; i < 50; i++) clients[`10.20.2.${i + 1}`] = i % 2 === 0 ? via('100.64.0.5', '100.64.0.6') : via('100.64.0.7');
    const r = await applyClientNode(k, state(clients));
    expect(r.assignments.map((a) => [a.table, a.clients.length])).toEqual([[1, 25], [2, 25]]);
    expect(k.rules.filter((x) => x.protocol === 233)).toHaveLength(50);
  });

  it('a gateway leaving or joining replaces the group in place: same id, same buckets, routes untouched', async () => {
    const k = new FakeKernel();
    await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5', '100.64.0.6', '100.64.0.7') }));
    const group = [...k.nexthops.values()].find((n) => n.group !== undefined)!;
    const route = structuredClone(k.routes.find((r) => r.table === 1));
    k.log = [];
    await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5', '100.64.0.7') }));
    expect(k.log).toEqual([
      // The drain's gateway map loses 100.64.0.6 (the table is replaced; conntrack marks stay).
      'nft: table ip egw {}',
      `ip: nexthop replace id ${group.id} group ${ID}/${ID + 2} type resilient buckets 128 idle_timer 120 unbalanced_timer 0 proto 233`,
      `ip: nexthop del id ${ID + 1}`,
      'ip: neigh del 100.64.0.6 dev egw.vxlan',
      'bridge: fdb del 0e:67:64:40:00:06 dev egw.vxlan dst 100.64.0.6 self',
    ]);
    expect(k.routes.find((r) => r.table === 1)).toEqual(route);
    k.log = [];
    await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5', '100.64.0.6', '100.64.0.7') }));
    expect(k.log.filter((l) => l.includes('group'))).toEqual([
      `ip: nexthop replace id ${group.id} group ${ID}/${ID + 1}/${ID + 2} type resilient buckets 128 idle_timer 120 unbalanced_timer 0 proto 233`,
    ]);
    expect(k.routes.find((r) => r.table === 1)).toEqual(route);
  });

  it('keeps the bucket count a group was created with (the kernel cannot change it)', async () => {
    const k = new FakeKernel();
    await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5', '100.64.0.6') }));
    const bigger: ClientNodeConfig = { ...cfg, resilient: { ...cfg.resilient, buckets: 512 } };
    const r = await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5', '100.64.0.6', '100.64.0.7') }), bigger);
    expect(r.failures).toEqual([]);
    expect([...k.nexthops.values()].find((n) => n.group !== undefined)?.resilient?.buckets).toBe(128);
    expect(await converged(k, state({ '10.20.1.5': via('100.64.0.5', '100.64.0.6', '100.64.0.7') }), bigger)).toBe(true);
  });

  it('fails closed: no gateway, or no tunnel, is `unreachable`, installed before the path through the gateway goes', async () => {
    const k = new FakeKernel();
    await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5') }));
    k.log = [];
    await applyClientNode(k, state({ '10.20.1.5': via() }));
    expect(k.log[0]).toBe('ip: route replace unreachable 0.0.0.0/0 table 1 proto 233');
    // No peer left: the drain's chains (the only content of the table here) go last.
    expect(k.log.slice(1)).toEqual([`ip: nexthop del id ${ID}`, 'ip: neigh del 100.64.0.5 dev egw.vxlan', 'bridge: fdb del 0e:67:64:40:00:05 dev egw.vxlan dst 100.64.0.5 self', 'nft: delete table ip egw']);
    await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5') }));
    k.log = [];
    await applyClientNode(k, { vxlan: undefined, clients: [{ ip: '10.20.1.5', routes: via('100.64.0.5') }] });
    expect(k.log).toEqual(['ip: route replace unreachable 0.0.0.0/0 table 1 proto 233', `ip: nexthop del id ${ID}`, 'ip: link del egw.vxlan', 'nft: delete table ip egw']);
    expect(k.rules.filter((r) => r.protocol === 233)).toEqual([expect.objectContaining({ from: '10.20.1.5/32', table: 1 })]);
  });

  it('recreating the tunnel (new VNI) first turns every tunnelled route into `unreachable`', async () => {
    const k = new FakeKernel();
    await applyClientNode(k, state({ '10.20.1.5': [{ cidr: '10.0.0.0/8', kind: 'throw' }, ...via('100.64.0.5', '100.64.0.6')] }));
    k.log = [];
    const s = { ...state({ '10.20.1.5': [{ cidr: '10.0.0.0/8', kind: 'throw' }, ...via('100.64.0.5', '100.64.0.6')] }), vxlan: { ...vxlan, vni: 5000 } };
    const r = await applyClientNode(k, s);
    expect(r.failures).toEqual([]);
    expect(k.log.slice(0, 2)).toEqual(['ip: route replace unreachable 0.0.0.0/0 table 1 proto 233', 'ip: link del egw.vxlan']);
    expect(k.log[2]).toContain('link add egw.vxlan');
    expect(k.links.get('egw.vxlan')?.vxlan?.vni).toBe(5000);
    expect(await converged(k, s)).toBe(true);
  });

  it('a client moving to another table gets its new rule before the old one goes', async () => {
    const k = new FakeKernel();
    await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5'), '10.20.1.6': via('100.64.0.5') }));
    k.log = [];
    await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5'), '10.20.1.6': via('100.64.0.6') }));
    const add = k.log.indexOf('ip: rule add priority 100 from 10.20.1.6/32 table 2 protocol 233');
    const del = k.log.indexOf('ip: rule del priority 100 from 10.20.1.6/32 table 1 protocol 233');
    const route = k.log.findIndex((l) => l.includes('route replace 0.0.0.0/0 table 2'));
    expect(route).toBeGreaterThanOrEqual(0);
    expect(route).toBeLessThan(add);
    expect(add).toBeLessThan(del);
  });

  it('restart with no memory: the rules say which table is whose, so a changed client stays in place', async () => {
    const k = new FakeKernel();
    await applyClientNode(k, state({ '10.20.1.4': via('100.64.0.4'), '10.20.1.5': via('100.64.0.5', '100.64.0.6') }));
    await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5', '100.64.0.6') }));
    expect(k.routes.filter((r) => r.table === 1)).toEqual([]);
    const group = k.routes.find((r) => r.table === 2)?.nhid;
    // A fresh process (no memory) with a changed gateway set: table 1 is free and lower, and no table
    // holds identical content, yet the client's rule keeps it in table 2 with its group replaced in place.
    const r = await applyClientNode(new FakeKernelView(k), state({ '10.20.1.5': via('100.64.0.5', '100.64.0.6', '100.64.0.7') }));
    expect(r.assignments).toEqual([{ table: 2, clients: ['10.20.1.5'], returnPath: false }]);
    expect(k.routes.find((x) => x.table === 2)?.nhid).toBe(group);
  });

  it('converges over stale leftovers: orphan tables, rules, nexthops, neighbours, FDB, duplicate rules', async () => {
    const k = new FakeKernel();
    const s = state({ '10.20.1.5': via('100.64.0.5', '100.64.0.6') });
    await applyClientNode(k, s);
    const clean = snapshot(k);
    k.rules.push({ priority: 100, from: '10.20.1.5/32', table: 1, protocol: 233 });
    k.rules.push({ priority: 100, from: '10.20.9.9/32', table: 7, protocol: 233 });
    k.routes.push({ table: 7, dst: '0.0.0.0/0', type: 'unreachable', protocol: 233, metric: 0 });
    k.routes.push({ table: 9, dst: '10.0.0.0/8', type: 'throw', protocol: 233, metric: 0 });
    k.nexthops.set(ID + 50, { id: ID + 50, protocol: 233, gateway: '100.64.0.99', dev: 'egw.vxlan', onlink: true });
    k.nexthops.set(ID + 51, { id: ID + 51, protocol: 233, group: [ID + 50], resilient: { buckets: 128, idle: 120, unbalanced: 0 }, onlink: false });
    k.neighbours.set('100.64.0.99', { ip: '100.64.0.99', mac: '0e:67:64:40:00:63', dev: 'egw.vxlan', permanent: true });
    k.fdb.push({ mac: '0e:67:64:40:00:63', dst: '100.64.0.99', dev: 'egw.vxlan' });
    await applyClientNode(k, s);
    expect(snapshot(k)).toEqual(clean);
  });

  it('leaves foreign state alone: tables, rules and nexthop ids others use are skipped, never changed', async () => {
    const k = new FakeKernel();
    k.addLink('eth0', '02:00:00:00:00:01');
    k.rules.push({ priority: 100, from: '10.20.1.99/32', table: 1, protocol: 4 });
    k.routes.push({ table: 2, dst: '192.0.2.0/24', type: 'unicast', protocol: 4, metric: 0, dev: 'eth0' });
    k.nexthops.set(ID, { id: ID, protocol: 0, gateway: '10.10.1.1', dev: 'eth0', onlink: false });
    const foreign = structuredClone({ rules: k.rules, routes: k.routes, nh: [...k.nexthops.values()] });
    const r = await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5') }));
    expect(r.assignments[0]?.table).toBe(3);
    expect(k.nexthops.get(ID + 1)?.gateway).toBe('100.64.0.5');
    await applyClientNode(k, { vxlan: undefined, clients: [] });
    expect({ rules: k.rules, routes: k.routes, nh: [...k.nexthops.values()] }).toEqual(foreign);
    expect(k.links.has('egw.vxlan')).toBe(false);
  });

  it('reports exhausted tables per client; those clients keep what they had', async () => {
    const k = new FakeKernel();
    const small: ClientNodeConfig = { ...cfg, routeTableRanges: [{ min: 10, max: 11 }] };
    await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.5') }), small);
    const r = await applyClientNode(k, state({ '10.20.1.5': via('100.64.0.6'), '10.20.1.6': via('100.64.0.7'), '10.20.1.7': via('100.64.0.8') }), small);
    expect(r.problems).toEqual([expect.objectContaining({ code: 'RouteTablesExhausted', object: 'client 10.20.1.7' })]);
    expect(r.assignments.map((a) => [a.table, a.clients])).toEqual([[10, ['10.20.1.5']], [11, ['10.20.1.6']]]);
  });

  it('a refused line is reported with its object; the others are applied and the next apply converges', async () => {
    const k = new FakeKernel();
    k.failOn = /from 10\.20\.1\.6/;
    const s = state({ '10.20.1.5': via('100.64.0.5'), '10.20.1.6': via('100.64.0.6') });
    const r = await applyClientNode(k, s);
    expect(r.failures.map((f) => [f.command.object, f.message])).toEqual([['from:10.20.1.6/32', 'Error: injected']]);
    expect(k.rules.filter((x) => x.protocol === 233).map((x) => x.from)).toEqual(['10.20.1.5/32']);
    k.failOn = undefined;
    await applyClientNode(k, s);
    expect(await converged(k, s)).toBe(true);
  });

  it('return path on a gateway node: iif rule of the gateway pod, /32 routes to the clients\' nodes, none to itself', async () => {
    const k = new FakeKernel();
    k.addLink('v-g1', '02:00:00:00:00:02');
    k.routes.push({ table: 254, dst: '100.64.0.5/32', type: 'unicast', protocol: 3, metric: 0, dev: 'v-g1' });
    const s: ClientNodeState = {
      vxlan: { ...vxlan, localIp: '10.10.2.10' },
      clients: [],
      returnPath: { gatewayPodIps: ['100.64.0.5', '100.64.0.9'], clients: [{ ip: '10.20.1.5', nodeIp: '10.10.1.10' }, { ip: '10.20.3.3', nodeIp: '10.10.2.10' }] },
    };
    const r = await applyClientNode(k, s);
    expect(r.problems).toEqual([expect.objectContaining({ code: 'InterfaceNotFound', object: 'gateway pod 100.64.0.9' })]);
    expect(k.rules.filter((x) => x.protocol === 233)).toEqual([{ priority: 100, iif: 'v-g1', table: 1, protocol: 233 }]);
    expect(k.routes.filter((x) => x.protocol === 233)).toEqual([expect.objectContaining({ table: 1, dst: '10.20.1.5/32', nhid: ID })]);
    expect(k.nexthops.get(ID)).toMatchObject({ gateway: '10.10.1.10', dev: 'egw.vxlan', onlink: true });
    expect(await converged(k, s)).toBe(true);
  });

  it('natOutgoing is one nft table; changing the pools patches set elements only', async () => {
    const k = new FakeKernel();
    const s = state({}, { natOutgoing: { sources: ['10.20.0.0/16'], exemptDestinations: ['10.20.0.0/16', '100.64.0.0/10'] } });
    await applyClientNode(k, s);
    expect(k.log.filter((l) => l.startsWith('nft'))).toEqual(['nft: table ip egw {}']);
    k.log = [];
    await applyClientNode(k, { ...s, natOutgoing: { sources: ['10.20.0.0/16', '10.30.0.0/16'], exemptDestinations: ['10.0.0.0/8'] } });
    expect(k.log).toEqual(['nft: add element ip egw nat_sources { 10.30.0.0/16 }']);
    await applyClientNode(k, state({}));
    expect(k.nft).toBeUndefined();
  });

  it('depends only on the current desired state: any sequence ends where applying the last state alone ends', async () => {
    const states = [
      state({ '10.20.1.5': via('100.64.0.5', '100.64.0.6') }),
      state({ '10.20.1.5': via('100.64.0.6'), '10.20.1.6': [{ cidr: '10.0.0.0/8', kind: 'throw' }, ...via('100.64.0.7')] }),
      { vxlan: undefined, clients: [] },
      state({ '10.20.1.6': via() , '10.20.1.7': via('100.64.0.5', '100.64.0.6', '100.64.0.7') }),
    ];
    const alone = new FakeKernel();
    await applyClientNode(alone, states[3]!);
    for (const order of [states, [...states].reverse().concat([states[3]!]), [states[3]!, states[0]!, states[3]!]]) {
      const k = new FakeKernel();
      for (const s of order) {
        await applyClientNode(k, s);
        expect(await converged(k, s)).toBe(true);
      }
      // Same objects; nexthop ids and table numbers may differ with history, so compare their meaning.
      const meaning = (x: FakeKernel): unknown => ({
        rules: x.rules.filter((r) => r.protocol === 233).map((r) => r.from).sort(),
        routes: x.routes.map((r) => `${r.dst} ${r.type} ${r.nhid === undefined ? '' : (x.nexthops.get(r.nhid)?.group ?? [r.nhid]).map((m) => x.nexthops.get(m)?.gateway).sort().join(',')}`).sort(),
        neigh: [...x.neighbours.keys()].sort(),
      });
      expect(meaning(k)).toEqual(meaning(alone));
    }
  });

  it('rejects malformed desired state before touching anything', async () => {
    const k = new FakeKernel();
    await expect(applyClientNode(k, state({ '10.20.1.5': [...via('100.64.0.5'), { cidr: 'default', kind: 'throw' }] }))).rejects.toThrow(/two routes/);
    await expect(applyClientNode(k, state({ '10.20.1.500': via('100.64.0.5') }))).rejects.toThrow(/not an IPv4 address/);
    expect(k.log).toEqual([]);
  });
});
