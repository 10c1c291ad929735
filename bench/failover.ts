/**
 * `npm run bench -- failover`: 20 gateway deaths with FelixConfiguration `egressGatewayPollInterval`
 * 200 ms and `egressGatewayPollFailureCount` 2. Three gateways on three nodes, a client on n1 using all
 * of them. Each round: 30 long-lived connections, a new connection every 10 ms (300 ms timeout), then the
 * busiest gateway dies (process killed, interface down: its IP goes silent, the datastore still says
 * Ready), and we measure the time from the kill until every new connection succeeds again, and count the
 * long-lived connections through the *other* gateways that broke. The dead gateway is revived before
 * the next round.
 */
import { resolve } from 'node:path';
import { MiniCluster, namespace } from '../test/e2e/support/mini-cluster.js';
import type { Benchmark, Figures } from './harness.js';
import { printTable, round, summarize } from './harness.js';

const KILLS = 20;
const PROBE_EVERY_MS = 10;
const PROBE_TIMEOUT_MS = 300;

export const failoverBenchmark: Benchmark = {
  name: 'failover',
  description: '20 gateway deaths at 200 ms x 2 polls: time until new connections succeed, flows broken on surviving gateways',
  async run(): Promise<Figures> {
    const gws = ['g1', 'g2', 'g3'];
    const c = await MiniCluster.create({
      prefix: 'bfo',
      cli: resolve(import.meta.dirname, '../src/cli/main.js'),
      nodes: ['n1', 'n2', 'n3', 'n4'],
      servers: [{ name: 'internet', ip: '203.0.113.10' }],
      pods: [
        ...gws.map((g, i) => ({ name: g, namespace: 'egw', node: `n${i + 2}`, ip: `100.64.0.${31 + i}`, labels: { 'egress-code': 'red' }, gateway: true })),
        { name: 'c1', namespace: 'app', node: 'n1', ip: '10.20.1.5' },
      ],
      resources: [namespace('egw'), namespace('app', { 'egress.projectcalico.org/selector': "egress-code == 'red'", 'egress.projectcalico.org/namespaceSelector': "projectcalico.org/name == 'egw'" })],
    });
    const ipOf = new Map(gws.map((g) => [c.pod(g).ip, g]));
    const all = [...ipOf.keys()].sort().join();
    const rows: (string | number)[][] = [];
    const failoverMs: number[] = [];
    let broken = 0;
    let survivorsChecked = 0;
    try {
      await c.waitForClient('c1', 'routed through three', (s) => MiniCluster.gatewaysOf(s).join() === all, 30_000);
      for (let round_ = 1; round_ <= KILLS; round_++) {
        await c.waitFor('every gateway polled up', async () => (await c.nodeStatus('n1'))?.gateways.every((g) => g.health === 'up'), 30_000);
        const flows = await c.flows('c1', 'internet', 30);
        let victim = gws[0]!;
        try {
          const via = new Map(flows.flows.map((f) => [f.id, f.seen ?? '']));
          const load = new Map<string, number>();
          for (const ip of via.values()) load.set(ip, (load.get(ip) ?? 0) + 1);
          const busiest = [...load.entries()].sort((a, b) => b[1] - a[1])[0]![0];
          victim = ipOf.get(busiest) ?? victim;
          const prober = await c.prober('c1', 'internet', PROBE_EVERY_MS, PROBE_TIMEOUT_MS);
          await new Promise((r) => setTimeout(r, 300));
          const killedAt = Date.now();
          await c.killGateway(victim);
          await c.waitForClient('c1', `${victim} removed`, (s) => !MiniCluster.gatewaysOf(s).includes(c.pod(victim).ip), 10_000);
          await new Promise((r) => setTimeout(r, 600));
          const results = await prober.stop();
          const failures = results.filter((r) => r.t >= killedAt - PROBE_TIMEOUT_MS && r.error !== undefined);
          const last = Math.max(killedAt, ...failures.map((r) => r.t));
          const ms = last - killedAt + PROBE_EVERY_MS;
          failoverMs.push(ms);
          const check = await flows.check();
          const survivors = check.filter((r) => via.get(r.id) !== c.pod(victim).ip);
          const brokenHere = survivors.filter((r) => !r.ok).length;
          broken += brokenHere;
          survivorsChecked += survivors.length;
          rows.push([round_, victim, load.get(busiest) ?? 0, failures.length, ms, survivors.length, brokenHere]);
        } finally {
          await flows.close();
        }
        await c.reviveGateway(victim);
        await c.waitForClient('c1', `${victim} back`, (s) => MiniCluster.gatewaysOf(s).join() === all, 30_000);
      }
      printTable(`${KILLS} gateway deaths, poll interval 200 ms, failure count 2`, ['kill', 'gateway', 'its flows', 'failed new conns', 'failover ms', 'survivor flows', 'broken'], rows);
      const s = summarize(failoverMs);
      printTable('failover (kill → every new connection succeeds)', ['n', 'min ms', 'p50 ms', 'p90 ms', 'max ms'], [[s.n, s.min, s.p50, s.p90, s.max]]);
      return {
        failoverMsP50: round(s.p50),
        failoverMsMax: round(s.max),
        failoverMsP90: round(s.p90),
        brokenFlowsOnSurvivors: broken,
        survivorFlowsChecked: survivorsChecked,
        kills: KILLS,
      };
    } finally {
      await c.teardown();
    }
  },
};
