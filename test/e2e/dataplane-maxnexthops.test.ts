import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NEXT_HOPS_KIND, parseNextHops } from '../../src/agent/records.js';
import { tally } from '../../src/linux/topology/echo.js';
import type { MiniPod } from './support/mini-cluster.js';
import { MiniCluster, namespace } from './support/mini-cluster.js';
import { runPrefix } from './support/run-prefix.js';

// maxNextHops with real processes and packets: 30 clients on two nodes, created over time as a cluster
// creates pods (batches of 5, the nodes taking turns), 6 gateways on two nodes, maxNextHops 2. Prefix "dmh<pid>" (unique per run).
const SEL = 'egress.projectcalico.org/selector';
const NSSEL = 'egress.projectcalico.org/namespaceSelector';
const MAXHOPS = 'egress.projectcalico.org/maxNextHops';

let c: MiniCluster;
const clients: MiniPod[] = [];
const gateways: MiniPod[] = [];

beforeAll(async () => {
  for (let i = 0; i < 6; i++) {
    gateways.push({ name: `g${i + 1}`, namespace: 'egw', node: `n${3 + (i % 2)}`, ip: `100.64.0.${51 + i}`, labels: { 'egress-code': 'red' }, gateway: true });
  }
  for (let i = 0; i < 30; i++) {
    const node = Math.floor(i / 5) % 2 === 0 ? 'n1' : 'n2';
    clients.push({ name: `c${i + 1}`, namespace: 'app', node, ip: `10.20.${node === 'n1' ? 1 : 2}.${10 + i}`, record: false });
  }
  c = await MiniCluster.create({
    prefix: runPrefix('dmh'),
    nodes: ['n1', 'n2', 'n3', 'n4'],
    pods: [...gateways, ...clients],
    resources: [namespace('egw'), namespace('app', { [SEL]: "egress-code == 'red'", [NSSEL]: "projectcalico.org/name == 'egw'", [MAXHOPS]: '2' })],
  });
  // Five clients at a time on one node (its agent chooses for them in one pass, each seeing the choices
  // before it), then five on the other once the first five have their gateways: the nodes' agents see
  // each other's stored choices, as in a cluster where pods are created over time.
  for (let i = 0; i < clients.length; i += 5) {
    const batch = clients.slice(i, i + 5);
    for (const p of batch) await c.addPod(p.name);
    for (const p of batch) await c.waitForClient(p.name, 'two gateways', (s) => MiniCluster.gatewaysOf(s).length === 2);
  }
}, 180_000);

afterAll(async () => {
  await c?.teardown();
}, 60_000);

describe('maxNextHops 2 over 6 gateways, 30 clients', () => {
  it('every client has exactly 2 gateways and every gateway serves 10 ± 1 clients, as stored and as programmed', async () => {
    const load = new Map(gateways.map((g) => [g.ip, 0]));
    for (const p of clients) {
      const mine = MiniCluster.gatewaysOf(await c.clientStatus(p.name));
      expect(mine, p.name).toHaveLength(2);
      for (const ip of mine) load.set(ip, (load.get(ip) ?? 0) + 1);
    }
    for (const [ip, n] of load) expect(n, `clients of ${ip}`).toBeGreaterThanOrEqual(9);
    for (const [ip, n] of load) expect(n, `clients of ${ip}`).toBeLessThanOrEqual(11);

    const { items } = await c.store.list(NEXT_HOPS_KIND);
    const records = items.map(parseNextHops);
    expect(records).toHaveLength(30);
    for (const r of records) {
      const choices = Object.values(r!.rules);
      expect(choices).toHaveLength(1);
      expect(choices[0]!.maxNextHops).toBe(2);
      expect(choices[0]!.gateways).toHaveLength(2);
    }
  });

  it('each client\'s connections leave only through its own two gateways', async () => {
    // One after another: the topology helper rewrites its client program on every call.
    for (const p of clients) {
      const mine = MiniCluster.gatewaysOf(await c.clientStatus(p.name));
      const seen = Object.keys(tally(await c.connect(p.name, 'internet', { count: 8 })));
      expect(seen.every((ip) => mine.includes(ip)), `${p.name}: saw ${seen.join()} but has ${mine.join()}`).toBe(true);
    }
  }, 120_000); // 240 connections one after another: slow on a busy machine
});
