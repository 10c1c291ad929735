import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyClientNode, readClientNode } from '../../src/linux/client-node/driver.js';
import { isEmptyPlan, planClientNode } from '../../src/linux/client-node/plan.js';
import { DEFAULT_CLIENT_NODE_CONFIG } from '../../src/linux/client-node/types.js';
import { applyGatewayPod, readGatewayPod } from '../../src/linux/gateway-pod/gateway-pod.js';
import { planNftTable } from '../../src/linux/nft/nft-table.js';
import { gatewayNftSpec } from '../../src/linux/gateway-pod/gateway-pod.js';
import { parseNexthops, parseRules } from '../../src/linux/iproute/parse.js';
import { echoFrom, openFlows, startEchoServer, tally } from '../../src/linux/topology/echo.js';
import type { EgressWorld } from '../linux/fixtures/egress-world.js';
import { runPrefix } from './support/run-prefix.js';
import {
  applyWorld, buildEgressWorld, clientNodeState, gatewayState, installProbe, readProbe, viaGateways,
} from '../linux/fixtures/egress-world.js';

// Real kernel, real packets: a client node with three client pods, three gateway nodes each with a
// gateway pod, a router and two external echo servers, all in namespaces prefixed "teg<pid>" (unique per run).
const PREFIX = runPrefix('teg');
let w: EgressWorld;
let foreignBefore: string;
let c1: string, c2: string, c3: string;
let g1: string, g2: string, g3: string;

/** Everything in the client node's namespace that is not egw's, as comparable text. */
async function foreignSnapshot(): Promise<string> {
  const run = async (argv: string[]): Promise<string> => (await w.topo.exec('cn', argv)).stdout;
  const rules = (await run(['ip', '-4', 'rule', 'show'])).split('\n').filter((l) => !l.includes('proto 233'));
  const routes = (await run(['ip', '-4', 'route', 'show', 'table', 'all'])).split('\n').filter((l) => !l.includes('proto 233') && !l.includes('egw.vxlan'));
  const nexthops = (await run(['ip', 'nexthop', 'show'])).split('\n').filter((l) => !l.includes('proto 233'));
  const tables = (await run(['nft', 'list', 'tables'])).split('\n').filter((l) => l !== 'table ip egw');
  const filter = (await run(['nft', 'list', 'table', 'inet', 'filter'])).replace(/packets \d+ bytes \d+/g, '');
  const neigh = await run(['ip', 'neigh', 'show', 'dev', 'eth0', 'nud', 'permanent']);
  return [...rules, '--', ...routes, '--', ...nexthops, '--', ...tables, '--', filter, '--', neigh].join('\n');
}

beforeAll(async () => {
  w = await buildEgressWorld(PREFIX, { gateways: 3, clients: 3 });
  [c1, c2, c3] = w.clients as [string, string, string];
  [g1, g2, g3] = w.gateways.map((g) => g.ip) as [string, string, string];
  // Foreign state planted before egw ever runs: rules at our priority, routes in tables of our range,
  // a nexthop inside our id range, other nft tables, a static neighbour.
  const plant = [
    ['ip', 'rule', 'add', 'priority', '100', 'from', '10.20.1.99', 'lookup', '7'],
    ['ip', 'rule', 'add', 'priority', '100', 'from', '10.20.1.98', 'lookup', '1', 'protocol', 'static'],
    ['ip', 'rule', 'add', 'priority', '101', 'from', '10.20.1.97', 'lookup', '250'],
    ['ip', 'route', 'add', '192.0.2.0/24', 'via', '10.10.1.1', 'table', '2', 'proto', 'static'],
    ['ip', 'route', 'add', '198.18.0.0/24', 'via', '10.10.1.1', 'table', '7'],
    ['ip', 'route', 'add', '198.18.5.0/24', 'via', '10.10.1.1'],
    ['ip', 'nexthop', 'add', 'id', String(DEFAULT_CLIENT_NODE_CONFIG.nexthopIds.min), 'via', '10.10.1.1', 'dev', 'eth0'],
    ['ip', 'nexthop', 'add', 'id', '42', 'via', '10.10.1.1', 'dev', 'eth0'],
    ['ip', 'neigh', 'add', '10.10.1.77', 'lladdr', '02:00:00:00:00:77', 'dev', 'eth0', 'nud', 'permanent'],
  ];
  for (const argv of plant) await w.topo.exec('cn', argv);
  await w.topo.exec('cn', ['nft', '-f', '-'], {
    input: 'table inet filter {\n chain input { type filter hook input priority 0; policy accept; counter; }\n}\ntable ip other {\n set s { type ipv4_addr; elements = { 10.1.2.3 } }\n}\n',
  });
  foreignBefore = await foreignSnapshot();
  await startEchoServer(w.topo, 'ext');
  await startEchoServer(w.topo, 'ext2');
  await installProbe(w.topo, 'ext', w.clientNodeIp);
}, 60_000);

afterAll(async () => {
  await w?.topo.teardown();
});

describe('client node + gateways, real packets', () => {
  it('a client pod leaves with its gateway IP; a pod without a rule leaves with the node IP (natOutgoing)', async () => {
    await applyWorld(w, { [c1]: viaGateways(g1) });
    expect(tally(await echoFrom(w.topo, 'c1', w.server, w.port, { count: 5 }))).toEqual({ [g1]: 5 });
    expect(tally(await echoFrom(w.topo, 'c2', w.server, w.port, { count: 5 }))).toEqual({ [w.clientNodeIp]: 5 });
    // Our tables avoided the tables foreign state uses (1: foreign rule, 2: foreign route, 7: both).
    const cn = await readClientNode(w.topo.shell('cn'));
    const ours = parseRules((await w.topo.exec('cn', ['ip', '-j', '-N', 'rule', 'show'])).stdout).filter((r) => r.protocol === 233);
    expect(ours).toEqual([expect.objectContaining({ priority: 100, from: `${c1}/32`, table: 3 })]);
    expect(cn.link?.mac).toBe('0e:67:0a:0a:01:0a');
  });

  it('throw goes the normal way; unreachable and an empty gateway set drop, and nothing reaches the server from the node IP', async () => {
    await applyWorld(w, {
      [c1]: [{ cidr: '198.51.100.0/24', kind: 'throw' }, ...viaGateways(g2)],
      [c2]: [{ cidr: '0.0.0.0/0', kind: 'unreachable' }],
      [c3]: viaGateways(),
    });
    expect(tally(await echoFrom(w.topo, 'c1', w.server, w.port, { count: 3 }))).toEqual({ [g2]: 3 });
    expect(tally(await echoFrom(w.topo, 'c1', w.server2, w.port, { count: 3 }))).toEqual({ [w.clientNodeIp]: 3 });
    const before = await readProbe(w.topo, 'ext');
    // The node answers "host unreachable" (rate-limited by the kernel, so later attempts just time out).
    // The timeout is generous: on a busy machine a stalled client could see its timer fire before the
    // error it already has.
    for (const pod of ['c2', 'c3']) {
      const results = await echoFrom(w.topo, pod, w.server, w.port, { count: 5, timeoutMs: 1500 });
      expect(results.every((r) => r.error === 'EHOSTUNREACH' || r.error === 'ETIMEDOUT')).toBe(true);
      expect(results.some((r) => r.error === 'EHOSTUNREACH')).toBe(true);
    }
    expect(await readProbe(w.topo, 'ext')).toBe(before);
  }, 60_000);

  it('two gateways: 200 connections spread over both, each at least 30%', async () => {
    await applyWorld(w, { [c1]: viaGateways(g1, g2) });
    const t = tally(await echoFrom(w.topo, 'c1', w.server, w.port, { count: 200, concurrency: 40 }));
    expect(Object.keys(t).sort()).toEqual([g1, g2].sort());
    expect(t[g1]!).toBeGreaterThanOrEqual(60);
    expect(t[g2]!).toBeGreaterThanOrEqual(60);
  });

  it('a gateway leaving the resilient group breaks no flow through the others; one joining breaks none at all', async () => {
    await applyWorld(w, { [c1]: viaGateways(g1, g2, g3) });
    const groupId = async (): Promise<number | undefined> => parseNexthops((await w.topo.exec('cn', ['ip', '-j', 'nexthop', 'show'])).stdout).find((n) => n.group !== undefined && n.protocol === 233)?.id;
    const id = await groupId();
    const flows = await openFlows(w.topo, 'c1', w.server, w.port, 90);
    try {
      expect(flows.flows.every((f) => f.seen !== undefined)).toBe(true);
      const via = new Map(flows.flows.map((f) => [f.id, f.seen!]));
      expect(new Set(via.values())).toEqual(new Set([g1, g2, g3]));
      expect((await flows.check()).every((r) => r.ok)).toBe(true);

      // g1 leaves (unready, deleted): replaced in place, same group id.
      await applyWorld(w, { [c1]: viaGateways(g2, g3) });
      expect(await groupId()).toBe(id);
      const afterLeave = await flows.check();
      const survivors = afterLeave.filter((r) => via.get(r.id) !== g1);
      expect(survivors.length).toBeGreaterThan(0);
      expect(survivors.filter((r) => !r.ok)).toEqual([]);
      expect(tally(await echoFrom(w.topo, 'c1', w.server, w.port, { count: 30 }))[g1]).toBeUndefined();

      // g1 comes back: busy buckets stay where they are, only idle ones move to it.
      await applyWorld(w, { [c1]: viaGateways(g1, g2, g3) });
      expect(await groupId()).toBe(id);
      const afterJoin = await flows.check();
      expect(afterJoin.filter((r) => via.get(r.id) !== g1 && !r.ok)).toEqual([]);
      expect(tally(await echoFrom(w.topo, 'c1', w.server, w.port, { count: 60 }))[g1]).toBeGreaterThan(0);
    } finally {
      await flows.close();
    }
  });

  it('applying the same state again changes nothing: empty read-back plan, no duplicate rules', async () => {
    const state = clientNodeState(w, { [c1]: viaGateways(g1, g2), [c2]: viaGateways(g1, g2), [c3]: viaGateways(g3) });
    await applyWorld(w, { [c1]: viaGateways(g1, g2), [c2]: viaGateways(g1, g2), [c3]: viaGateways(g3) });
    const again = await applyClientNode(w.topo.shell('cn'), state);
    expect(again).toMatchObject({ changed: false, commands: 0, failures: [], problems: [] });
    expect(isEmptyPlan(planClientNode(state, await readClientNode(w.topo.shell('cn')), DEFAULT_CLIENT_NODE_CONFIG))).toBe(true);
    // c1 and c2 share one table; c3 has its own.
    expect(again.assignments.map((a) => a.clients)).toEqual([[c1, c2], [c3]]);
    const ours = parseRules((await w.topo.exec('cn', ['ip', '-j', '-N', 'rule', 'show'])).stdout).filter((r) => r.protocol === 233);
    expect(ours.map((r) => r.from).sort()).toEqual([`${c1}/32`, `${c2}/32`, `${c3}/32`]);
    for (const [k, g] of w.gateways.entries()) {
      expect((await applyGatewayPod(w.topo.shell(g.pod), gatewayState(w, k))).changed).toBe(false);
    }
  });

  it('a restart with no memory keeps every flow and converges over stale leftovers of a crash', async () => {
    const routes = { [c1]: viaGateways(g1, g2, g3) };
    await applyWorld(w, routes);
    const flows = await openFlows(w.topo, 'c1', w.server, w.port, 30);
    try {
      // unbalanced_time is a clock the kernel keeps running; everything else must not move.
      const nexthops = async (): Promise<string> => (await w.topo.exec('cn', ['ip', 'nexthop', 'show'])).stdout.replace(/unbalanced_time [\d.]+/g, '');
      const nexthopsBefore = await nexthops();
      // Leftovers of a crashed run: a rule for a client that left, a half-built table, a nexthop, a
      // neighbour and FDB entry for a gateway that is gone.
      const stale = [
        ['ip', 'rule', 'add', 'priority', '100', 'from', '10.20.1.200', 'table', '5', 'protocol', '233'],
        ['ip', 'route', 'add', 'unreachable', '0.0.0.0/0', 'table', '6', 'proto', '233'],
        ['ip', 'nexthop', 'add', 'id', String(DEFAULT_CLIENT_NODE_CONFIG.nexthopIds.max), 'via', '100.64.0.99', 'dev', 'egw.vxlan', 'onlink', 'proto', '233'],
        ['ip', 'neigh', 'replace', '100.64.0.99', 'lladdr', '0e:67:64:40:00:63', 'dev', 'egw.vxlan', 'nud', 'permanent'],
        ['bridge', 'fdb', 'replace', '0e:67:64:40:00:63', 'dev', 'egw.vxlan', 'dst', '100.64.0.99', 'self', 'permanent'],
      ];
      for (const argv of stale) await w.topo.exec('cn', argv);
      const state = clientNodeState(w, routes);
      const r = await applyClientNode(w.topo.shell('cn'), state);
      expect(r.failures).toEqual([]);
      expect(isEmptyPlan(planClientNode(state, await readClientNode(w.topo.shell('cn')), DEFAULT_CLIENT_NODE_CONFIG))).toBe(true);
      expect(await nexthops()).toBe(nexthopsBefore);
      expect((await w.topo.exec('cn', ['ip', '-4', 'rule', 'show'])).stdout).not.toContain('10.20.1.200');
      expect((await w.topo.exec('cn', ['ip', 'route', 'show', 'table', '6'])).stdout).toBe('');
      expect((await w.topo.exec('cn', ['ip', 'neigh', 'show', 'dev', 'egw.vxlan'])).stdout).not.toContain('100.64.0.99');
      expect((await w.topo.exec('cn', ['bridge', 'fdb', 'show', 'dev', 'egw.vxlan'])).stdout).not.toContain('100.64.0.99');
      expect((await flows.check()).filter((x) => !x.ok)).toEqual([]);
    } finally {
      await flows.close();
    }
  });

  it('a gateway pod accepts the tunnel only from cluster nodes and nothing else inbound but its health port', async () => {
    await applyWorld(w, { [c1]: viaGateways(g1) });
    const g = w.gateways[0]!;
    await startEchoServer(w.topo, g.pod, { port: 8080 });
    await startEchoServer(w.topo, g.pod, { port: 9000 });
    expect(tally(await echoFrom(w.topo, 'ext', g.ip, 8080))).toEqual({ [w.server]: 1 });
    expect(tally(await echoFrom(w.topo, 'ext', g.ip, 9000, { timeoutMs: 500 }))).toEqual({ 'error:ETIMEDOUT': 1 });
    // Without the client node in the node set, its tunnel is refused; the set changes, not the rules.
    const without = { ...gatewayState(w, 0), nodeIps: w.gateways.map((x) => x.nodeIp) };
    expect(planNftTable(gatewayNftSpec(without), (await readGatewayPod(w.topo.shell(g.pod))).nft, 'egw').kind).toBe('elements');
    await applyGatewayPod(w.topo.shell(g.pod), without);
    expect(tally(await echoFrom(w.topo, 'c1', w.server, w.port, { timeoutMs: 500 }))).toEqual({ 'error:ETIMEDOUT': 1 });
    await applyGatewayPod(w.topo.shell(g.pod), gatewayState(w, 0));
    expect(tally(await echoFrom(w.topo, 'c1', w.server, w.port))).toEqual({ [g1]: 1 });
  });

  it('removing egress removes everything of ours and leaves every foreign object exactly as planted', async () => {
    await applyClientNode(w.topo.shell('cn'), { vxlan: undefined, clients: [] });
    const cn = await readClientNode(w.topo.shell('cn'));
    expect(cn.link).toBeUndefined();
    expect(cn.nft).toBeUndefined();
    expect(cn.routes.filter((r) => r.protocol === 233)).toEqual([]);
    expect(cn.rules.filter((r) => r.protocol === 233)).toEqual([]);
    expect(cn.nexthops.filter((n) => n.protocol === 233)).toEqual([]);
    expect(await foreignSnapshot()).toBe(foreignBefore);
    // And back again from nothing.
    await applyWorld(w, { [c1]: viaGateways(g3) });
    expect(tally(await echoFrom(w.topo, 'c1', w.server, w.port))).toEqual({ [g3]: 1 });
    expect(await foreignSnapshot()).toBe(foreignBefore);
  });
});
