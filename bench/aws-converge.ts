/**
 * Benchmark `aws-converge`: 60 gateways placed at once across 20 nodes, each node running the real
 * agent fabric component (datastore informer → reconciler → SDK over HTTP → emulator), with latencies
 * modelled on AWS and AWS's request buckets on: every call answers after 40 ms, an attachment completes
 * 2 s after AttachNetworkInterface (no scaling: factor 1, the run takes a few seconds).
 *
 * `convergeMs`: from the commit of the 60 gateway pods until the emulator routes every gateway address
 * (on an ENI attached to its node, attachment complete). `criticalPathMs`: the shortest time the API
 * allows for the last gateway — the agent's reads (DescribeNetworkInterfaces), CreateNetworkInterface,
 * AttachNetworkInterface, the attachment delay, and, for 60 attaches against AttachNetworkInterface's
 * bucket (50 tokens, 5 per second), the wait the bucket imposes on the last 10. `ratio` = converge /
 * critical path. Also measured: when every pod shows `EgwAwsReady=True` (the agents noticed), and the
 * same for Secondary-IP mode (3 gateways share one ENI per node; 20 attaches, no bucket wait).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsFabric } from '../src/agent/fabric/aws-fabric.js';
import { POD_AWS_CONDITION } from '../src/agent/fabric/status.js';
import type { Condition } from '../src/agent/fabric/status.js';
import { SdkImds } from '../src/aws/imds.js';
import { SdkEc2 } from '../src/aws/sdk-ec2.js';
import type { Datastore, JsonObject, WriteOp } from '../src/datastore/contract.js';
import { SqliteDatastore } from '../src/datastore/sqlite/sqlite-datastore.js';
import { startAwsSim } from '../src/sim/aws/server.js';
import type { AwsSimHandle } from '../src/sim/aws/server.js';
import { BENCH_EGRESS, benchGatewayIp, benchInstance, benchWorld, benchZone } from './ec2-calls.js';
import type { Benchmark, Figures } from './harness.js';
import { printTable, round } from './harness.js';

const NODES = 20;
const GATEWAYS = 60;
const CALL_MS = 40;
const ATTACH_MS = 2_000;
/** AWS's AttachNetworkInterface bucket (mutating actions): capacity and refill per second. */
const ATTACH_BUCKET = { capacity: 50, refillPerSecond: 5 };
const ZONES = ['us-west-2a', 'us-west-2b'];

type Mode = 'EnabledENIPerWorkload' | 'Enabled';

interface Result {
  convergeMs: number;
  agentsReadyMs: number;
  criticalPathMs: number;
  attaches: number;
  throttled: number;
  mutating: number;
}

function put(kind: string, name: string, value: Record<string, unknown>, namespace?: string): WriteOp {
  return { op: 'put', key: namespace === undefined ? { kind, name } : { kind, namespace, name }, value: value as JsonObject };
}

async function run(mode: Mode): Promise<Result> {
  const type = mode === 'EnabledENIPerWorkload' ? 'm5.xlarge' : 't3.large';
  const sim: AwsSimHandle = await startAwsSim({
    world: benchWorld(NODES, type, { latencyMs: { fixed: CALL_MS }, attachLatencyMs: { fixed: ATTACH_MS }, detachLatencyMs: { fixed: 1_500 }, throttle: true, describeLagMs: 0, createPropagationMs: 0 }),
    listen: '127.0.0.1:0',
    imdsBindings: Array.from({ length: NODES }, (_, i) => ({ listen: '127.0.0.1:0', instanceId: benchInstance(i) })),
  });
  const dir = mkdtempSync(join(tmpdir(), 'egw-aws-converge-'));
  const store: Datastore = await SqliteDatastore.open(join(dir, 'egw.db'));
  const clients: SdkEc2[] = [];
  const agents: AwsFabric[] = [];
  try {
    const setup: WriteOp[] = [
      put('FelixConfiguration', 'default', { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { awsSecondaryIPSupport: mode } }),
    ];
    for (const [z, subnet] of BENCH_EGRESS.entries()) {
      const base = z * 4;
      setup.push(put('AWSSubnet', subnet, { apiVersion: 'egw.io/v1', kind: 'AWSSubnet', metadata: { name: subnet }, spec: { subnetID: subnet, cidr: `100.64.${base}.0/22`, availabilityZone: ZONES[z] } }));
      setup.push(put('IPPool', `egress-${z}`, { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: `egress-${z}` }, spec: { cidr: `100.64.${base}.0/24`, awsSubnetID: subnet, blockSize: 32, allowedUses: ['Workload'], nodeSelector: '!all()' } }));
      setup.push(put('IPPool', `hosts-${z}`, { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: `hosts-${z}` }, spec: { cidr: `100.64.${base + 3}.0/26`, awsSubnetID: subnet, blockSize: 32, allowedUses: ['HostSecondaryInterface'], nodeSelector: '!all()' } }));
    }
    for (let i = 0; i < NODES; i++) {
      setup.push(put('Node', `node-${i}`, { apiVersion: 'v1', kind: 'Node', metadata: { name: `node-${i}`, labels: { 'topology.kubernetes.io/zone': ZONES[benchZone(i)] } }, status: {} }));
    }
    await store.commit(setup);
    let warm = 0;
    for (let i = 0; i < NODES; i++) {
      const ec2 = new SdkEc2({ region: 'us-west-2', endpoint: sim.url, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
      clients.push(ec2);
      let first = true;
      const agent = new AwsFabric(
        { store, ec2, imds: new SdkImds({ endpoint: sim.imdsBindingUrls[benchInstance(i)]! }) },
        {
          nodeName: `node-${i}`,
          cluster: 'bench',
          onPass: () => {
            if (first) warm++;
            first = false;
          },
        },
      );
      agents.push(agent);
      agent.start();
    }
    // Agents up and idle (instance type known, first read done) before the clock starts.
    while (warm < NODES) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 1_500)); // let the read buckets refill
    const before = sim.state().stats;
    const expected = new Map<string, string>();
    const pods: WriteOp[] = [];
    const counters = [0, 0];
    for (let g = 0; g < GATEWAYS; g++) {
      const i = g % NODES;
      const z = benchZone(i);
      const ip = benchGatewayIp(z, counters[z]!++);
      expected.set(ip, benchInstance(i));
      const name = `gw-${g}`;
      pods.push(
        put(
          'Pod',
          name,
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: '2025-01-01T00:00:00.000Z' },
            spec: { nodeName: `node-${i}`, containers: [{ name: 'gateway' }] },
            status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
          },
          'default',
        ),
      );
    }
    const t0 = performance.now();
    await store.commit(pods);
    let convergeMs = NaN;
    let agentsReadyMs = NaN;
    const deadline = t0 + 60_000;
    while ((Number.isNaN(convergeMs) || Number.isNaN(agentsReadyMs)) && performance.now() < deadline) {
      if (Number.isNaN(convergeMs)) {
        const enis = Object.values(sim.state().state.enis);
        const routed = [...expected].every(([ip, inst]) =>
          enis.some((e) => e.status === 'in-use' && e.attachment?.status === 'attached' && e.attachment.instanceId === inst && (mode === 'EnabledENIPerWorkload' ? e.privateIps[0] === ip : e.privateIps.slice(1).includes(ip))),
        );
        if (routed) convergeMs = performance.now() - t0;
      }
      if (Number.isNaN(agentsReadyMs)) {
        const { items } = await store.list('Pod', { namespace: 'default' });
        const ready = items.filter((p) => ((p.value['status'] as { conditions?: Condition[] } | undefined)?.conditions ?? []).some((c) => c.type === POD_AWS_CONDITION && c.status === 'True'));
        if (ready.length === GATEWAYS) agentsReadyMs = performance.now() - t0;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const after = sim.state().stats;
    const count = (s: typeof before, a: string): number => s.actions[a]?.calls ?? 0;
    const attaches = count(after, 'AttachNetworkInterface') - count(before, 'AttachNetworkInterface');
    const reads = ['DescribeInstanceTypes', 'DescribeNetworkInterfaces', 'DescribeSubnets', 'DescribeAddresses'];
    const mutating = Object.keys(after.actions)
      .filter((a) => !reads.includes(a))
      .reduce((n, a) => n + count(after, a) - count(before, a), 0);
    // Critical path of the last gateway: read (the two DescribeNetworkInterfaces run in parallel), create,
    // attach — which the bucket lets start no earlier than its wait for the attaches beyond its capacity —
    // then the attachment delay. Secondary-IP mode makes one ENI per node: its addresses are assigned
    // while the attachment completes, so they are off the critical path.
    const enisToAttach = mode === 'EnabledENIPerWorkload' ? GATEWAYS : NODES;
    const bucketWaitMs = (Math.max(0, enisToAttach - ATTACH_BUCKET.capacity) / ATTACH_BUCKET.refillPerSecond) * 1_000;
    const criticalPathMs = CALL_MS + CALL_MS + Math.max(CALL_MS, bucketWaitMs) + ATTACH_MS;
    return { convergeMs, agentsReadyMs, criticalPathMs, attaches, throttled: after.throttled - before.throttled, mutating };
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    for (const c of clients) c.destroy();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    await sim.close();
  }
}

export const awsConvergeBenchmark: Benchmark = {
  name: 'aws-converge',
  description: '60 gateways on 20 nodes (real agent components, AWS-like latencies and buckets): time until all are routable vs the critical path',
  async run(): Promise<Figures> {
    const eni = await run('EnabledENIPerWorkload');
    const shared = await run('Enabled');
    printTable(
      `60 gateways, 20 nodes; calls ${CALL_MS} ms, attachment ${ATTACH_MS} ms, AWS request buckets on; time scale 1 (not scaled)`,
      ['mode', 'routable ms', 'critical path ms', 'ratio', 'pods ready ms', 'attaches', 'mutating calls', 'throttled'],
      [
        ['ENI-per-workload (m5.xlarge)', round(eni.convergeMs, 4), eni.criticalPathMs, round(eni.convergeMs / eni.criticalPathMs, 3), round(eni.agentsReadyMs, 4), eni.attaches, eni.mutating, eni.throttled],
        ['Secondary-IP (t3.large)', round(shared.convergeMs, 4), shared.criticalPathMs, round(shared.convergeMs / shared.criticalPathMs, 3), round(shared.agentsReadyMs, 4), shared.attaches, shared.mutating, shared.throttled],
      ],
    );
    return {
      convergeMs: Math.round(eni.convergeMs),
      criticalPathMs: eni.criticalPathMs,
      ratio: round(eni.convergeMs / eni.criticalPathMs, 3),
      podsReadyMs: Math.round(eni.agentsReadyMs),
      throttled: eni.throttled,
      convergeMsSecondaryIp: Math.round(shared.convergeMs),
      criticalPathMsSecondaryIp: shared.criticalPathMs,
      ratioSecondaryIp: round(shared.convergeMs / shared.criticalPathMs, 3),
      podsReadyMsSecondaryIp: Math.round(shared.agentsReadyMs),
      timeScale: 1,
    };
  },
};
