import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tally } from '../../src/linux/topology/echo.js';
import { MiniCluster, namespace } from './support/mini-cluster.js';

// Failover with real processes and packets: three gateways on three nodes, a client on n1 using all of
// them, poll interval 200 ms and failure count 2 (the harness's FelixConfiguration). Prefix "dpfo".
const SEL = 'egress.projectcalico.org/selector';
const NSSEL = 'egress.projectcalico.org/namespaceSelector';

let c: MiniCluster;
let g1: string, g2: string, g3: string;

/** The kernel's view on n1: members of egw's resilient groups. */
async function groupMembers(): Promise<number[]> {
  const r = await c.topo.exec('n1', ['ip', '-j', 'nexthop', 'show']);
  const all = JSON.parse(r.stdout) as { id: number; group?: { id: number }[]; protocol?: string }[];
  return all.filter((n) => n.group !== undefined).map((n) => n.group!.length);
}

beforeAll(async () => {
  c = await MiniCluster.create({
    prefix: 'dpfo',
    nodes: ['n1', 'n2', 'n3', 'n4'],
    pods: [
      { name: 'g1', namespace: 'egw', node: 'n2', ip: '100.64.0.31', labels: { 'egress-code': 'red' }, gateway: true },
      { name: 'g2', namespace: 'egw', node: 'n3', ip: '100.64.0.32', labels: { 'egress-code': 'red' }, gateway: true },
      { name: 'g3', namespace: 'egw', node: 'n4', ip: '100.64.0.33', labels: { 'egress-code': 'red' }, gateway: true },
      { name: 'c1', namespace: 'app', node: 'n1', ip: '10.20.1.5' },
    ],
    resources: [namespace('egw'), namespace('app', { [SEL]: "egress-code == 'red'", [NSSEL]: "projectcalico.org/name == 'egw'" })],
  });
  [g1, g2, g3] = ['g1', 'g2', 'g3'].map((n) => c.pod(n).ip) as [string, string, string];
  await c.waitForClient('c1', 'routed through all three', (s) => MiniCluster.gatewaysOf(s).length === 3);
  await c.waitFor('n1 polls all three gateways up', async () => (await c.nodeStatus('n1'))?.gateways.every((g) => g.health === 'up'));
}, 120_000);

afterAll(async () => {
  await c?.teardown();
}, 60_000);

describe('failover: poll interval 200 ms, failure count 2', () => {
  it('a gateway dies: new connections succeed through the others within 1 s; no flow through the survivors breaks', async () => {
    const flows = await c.flows('c1', 'internet', 60);
    try {
      const via = new Map(flows.flows.map((f) => [f.id, f.seen]));
      expect(new Set(via.values())).toEqual(new Set([g1, g2, g3]));
      expect((await flows.check()).every((r) => r.ok)).toBe(true);

      const prober = await c.prober('c1', 'internet', 10, 300);
      await new Promise((r) => setTimeout(r, 300));
      const killedAt = Date.now();
      await c.killGateway('g1');
      await c.waitForClient('c1', 'g1 removed', (s) => MiniCluster.gatewaysOf(s).join() === [g2, g3].join(), 10_000);
      await new Promise((r) => setTimeout(r, 1200));
      const results = await prober.stop();

      const before = results.filter((r) => r.t < killedAt);
      expect(before.length).toBeGreaterThan(2);
      expect(before.filter((r) => r.error !== undefined && r.t + r.ms < killedAt)).toEqual([]);
      const failedAfter = results.filter((r) => r.t >= killedAt - 300 && r.error !== undefined);
      const lastFailure = Math.max(killedAt, ...failedAfter.map((r) => r.t));
      // From the kill until every new connection succeeds (the next attempt after the last failed one).
      const failoverMs = lastFailure - killedAt + 10;
      const later = results.filter((r) => r.t > killedAt + 1000);
      expect(later.length).toBeGreaterThan(5);
      expect(later.filter((r) => r.error !== undefined)).toEqual([]);
      expect(new Set(later.map((r) => r.seen))).toEqual(new Set([g2, g3]));
      console.info(`failover: ${failoverMs} ms from the kill; ${failedAfter.length} connections failed meanwhile`);
      // n1's view, for the message of a failure: when the verdict came and how long the apply took.
      const timeline = c.logs().split('\n').filter((l) => l.includes('"node":"n1"') && (l.includes('verdict') || l.includes('dataplane applied')))
        .map((l) => JSON.parse(l) as { time: number; msg: string; gateway?: string; up?: boolean; durationMs?: number })
        .filter((j) => j.time >= killedAt - 100)
        .map((j) => `+${j.time - killedAt} ms ${j.msg} ${j.gateway ?? ''} ${j.up ?? ''} ${j.durationMs ?? ''}`);
      expect(failoverMs, `failover took ${failoverMs} ms:\n${timeline.join('\n')}`).toBeLessThan(1000);

      const after = await flows.check();
      const survivors = after.filter((r) => via.get(r.id) !== g1);
      expect(survivors.length).toBeGreaterThan(20);
      expect(survivors.filter((r) => !r.ok), 'broken flows through the surviving gateways').toEqual([]);
      const st = await c.nodeStatus('n1');
      expect(st?.gateways.find((g) => g.ip === g1)?.health).toBe('down');
    } finally {
      await flows.close();
    }
  });

  it('the dead gateway recovers: it is polled up and put back into the group', async () => {
    await c.reviveGateway('g1');
    await c.waitForClient('c1', 'g1 back', (s) => MiniCluster.gatewaysOf(s).join() === [g1, g2, g3].join(), 10_000);
    expect((await c.nodeStatus('n1'))?.gateways.map((g) => g.health)).toEqual(['up', 'up', 'up']);
    expect(await groupMembers()).toEqual([3]);
    // Joining moves only idle buckets (resilient group), so new flows may keep to the others for a while.
    const t = tally(await c.connect('c1', 'internet', { count: 30 }));
    expect(Object.keys(t).every((ip) => [g1, g2, g3].includes(ip)), JSON.stringify(t)).toBe(true);
  });

  it('a deleted gateway goes at once, without waiting for polls; the flows through the others stay up', async () => {
    const flows = await c.flows('c1', 'internet', 30);
    try {
      const via = new Map(flows.flows.map((f) => [f.id, f.seen]));
      await c.deletePod('g2');
      await c.waitForClient('c1', 'g2 removed', (s) => MiniCluster.gatewaysOf(s).join() === [g1, g3].join(), 5_000);
      const t = tally(await c.connect('c1', 'internet', { count: 30 }));
      expect(t[g2]).toBeUndefined();
      const after = await flows.check();
      expect(after.filter((r) => via.get(r.id) !== g2 && !r.ok)).toEqual([]);
    } finally {
      await flows.close();
    }
    await c.addPod('g2', { ready: true });
    await c.waitForClient('c1', 'g2 back', (s) => MiniCluster.gatewaysOf(s).length === 3);
  });
});
