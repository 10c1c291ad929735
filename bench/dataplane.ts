/**
 * `npm run bench -- dataplane`: what the egress path costs. One client pod on n1, one gateway pod on n2,
 * two servers behind the "VPC" router, symmetric to each other; the client's policy sends one server
 * through the gateway (VXLAN to the gateway pod, SNAT there, replies tunnelled back by n2) and the other
 * the normal way (natOutgoing on n1). Same client, same topology, same run, rounds alternated:
 * iperf3 TCP throughput, new connections per second, TCP round-trip time.
 */
import { resolve } from 'node:path';
import { MiniCluster, namespace, policy } from '../test/e2e/support/mini-cluster.js';
import { CONN_RATE_SOURCE, TCP_RTT_SOURCE } from '../test/e2e/support/scripts.js';
import type { Benchmark, Figures } from './harness.js';
import { percentile, printTable, round } from './harness.js';

const ROUNDS = 3;
const IPERF_SECONDS = 3;
const RATE_CONNECTIONS = 1500;
const RTT_COUNT = 2000;
const IPERF_PORT = 5201;

interface Sample {
  throughputMbps: number;
  connPerSecond: number;
  rttP50Us: number;
  rttP90Us: number;
}

async function measure(c: MiniCluster, server: string): Promise<Sample> {
  const ip = c.server(server);
  const iperf = await c.topo.exec('c1', ['iperf3', '-c', ip, '-p', String(IPERF_PORT), '-t', String(IPERF_SECONDS), '-J'], { timeoutMs: 60_000 });
  const doc = JSON.parse(iperf.stdout) as { end: { sum_received: { bits_per_second: number } } };
  const rate = await c.topo.exec('c1', [process.execPath, c.script('conn-rate.mjs', CONN_RATE_SOURCE), ip, '8089', String(RATE_CONNECTIONS), '16'], { timeoutMs: 60_000 });
  const r = JSON.parse(rate.stdout.trim()) as { perSecond: number; errors: number };
  if (r.errors > 0) throw new Error(`${r.errors} connections to ${server} failed`);
  const rtt = await c.topo.exec('c1', [process.execPath, c.script('tcp-rtt.mjs', TCP_RTT_SOURCE), ip, '8089', String(RTT_COUNT)], { timeoutMs: 60_000 });
  const t = JSON.parse(rtt.stdout.trim()) as { p50Us: number; p90Us: number };
  return { throughputMbps: doc.end.sum_received.bits_per_second / 1e6, connPerSecond: r.perSecond, rttP50Us: t.p50Us, rttP90Us: t.p90Us };
}

const median = (xs: number[]): number => percentile(xs, 50);

export const dataplaneBenchmark: Benchmark = {
  name: 'dataplane',
  description: 'TCP throughput, new connections/s and RTT through a gateway vs. direct (natOutgoing), same client, same run',
  async run(): Promise<Figures> {
    const c = await MiniCluster.create({
      prefix: 'bdp',
      cli: resolve(import.meta.dirname, '../src/cli/main.js'),
      nodes: ['n1', 'n2'],
      servers: [
        { name: 'via', ip: '203.0.113.10' },
        { name: 'direct', ip: '198.51.100.10' },
      ],
      pods: [
        { name: 'g1', namespace: 'egw', node: 'n2', ip: '100.64.0.11', labels: { 'egress-code': 'red' }, gateway: true },
        { name: 'c1', namespace: 'app', node: 'n1', ip: '10.20.1.5' },
      ],
      resources: [
        namespace('egw'),
        namespace('app', { 'egress.projectcalico.org/egressGatewayPolicy': 'bench' }),
        policy('bench', [
          { description: 'direct: the normal way (natOutgoing)', destination: { cidr: '198.51.100.0/24' } },
          { description: 'everything else through the gateway', gateway: { selector: "egress-code == 'red'", namespaceSelector: "projectcalico.org/name == 'egw'" } },
        ]),
      ],
    });
    try {
      await c.waitForClient('c1', 'routed', (s) => s?.state === 'routed', 30_000);
      for (const s of ['via', 'direct']) {
        const p = c.topo.spawn(s, ['iperf3', '-s', '-p', String(IPERF_PORT), '--forceflush']);
        await p.waitForLine(/Server listening/, 10_000);
      }
      // Sanity: the servers see what the policy says.
      const seenVia = (await c.connect('c1', 'via'))[0]?.seen;
      const seenDirect = (await c.connect('c1', 'direct'))[0]?.seen;
      if (seenVia !== '100.64.0.11' || seenDirect !== c.nodeIp('n1')) throw new Error(`unexpected sources: via ${seenVia}, direct ${seenDirect}`);

      const via: Sample[] = [];
      const direct: Sample[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        // Alternate the order so that neither path always runs on a warmer (or busier) machine.
        if (i % 2 === 0) {
          via.push(await measure(c, 'via'));
          direct.push(await measure(c, 'direct'));
        } else {
          direct.push(await measure(c, 'direct'));
          via.push(await measure(c, 'via'));
        }
      }
      const m = (xs: Sample[], k: keyof Sample): number => median(xs.map((x) => x[k]));
      const rows = (['throughputMbps', 'connPerSecond', 'rttP50Us', 'rttP90Us'] as const).map((k) => [k, round(m(via, k)), round(m(direct, k)), round(m(via, k) / m(direct, k))]);
      printTable(`medians of ${ROUNDS} alternated rounds (iperf3 ${IPERF_SECONDS} s, ${RATE_CONNECTIONS} connections x16, ${RTT_COUNT} round trips)`, ['metric', 'via gateway', 'direct', 'ratio'], rows);
      return {
        throughputRatio: round(m(via, 'throughputMbps') / m(direct, 'throughputMbps')),
        connRateRatio: round(m(via, 'connPerSecond') / m(direct, 'connPerSecond')),
        rttAddedUsP50: round(m(via, 'rttP50Us') - m(direct, 'rttP50Us')),
        throughputMbpsVia: round(m(via, 'throughputMbps')),
        throughputMbpsDirect: round(m(direct, 'throughputMbps')),
        connPerSecondVia: round(m(via, 'connPerSecond')),
        connPerSecondDirect: round(m(direct, 'connPerSecond')),
        rttUsP50Via: round(m(via, 'rttP50Us')),
        rttUsP50Direct: round(m(direct, 'rttP50Us')),
      };
    } finally {
      await c.teardown();
    }
  },
};
