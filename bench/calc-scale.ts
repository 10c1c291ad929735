/**
 * Benchmark `calc-scale`: one agent's egress calculation in a cluster of 5,000 nodes, 100,000 pods
 * (1,000 of them gateways: 100 deployments of 10 replicas), 1,010 namespaces and 200 policies.
 *
 * Figures: `initialMs` (a fresh calculator fed the whole cluster, then its first result), `perEventMsP99`
 * (absorbing one pod or gateway change and producing the new result, p99 over a stream of events),
 * `heapMb` (heap in use with the cluster's objects and the calculator loaded, after a GC), and, side by
 * side in the same run, the same events absorbed incrementally vs. a full recomputation from scratch
 * (`fullOverIncremental` on the medians, `fullOverIncrementalMean` on the means), with a check that both
 * give the same result (`agree`).
 *
 * The event stream over-weights what costs this node something: 8% of events add or delete one of its
 * own clients and 2% move one of its gateways (uniformly random events would almost never touch it).
 */
import { loadavg } from 'node:os';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import type { Pod } from '../src/api/index.js';
import { EgressCalculator } from '../src/calc/calculator.js';
import { sameNextHops } from '../src/calc/next-hops.js';
import { selectionKey } from '../src/calc/selection.js';
import type { CalcResource, EgressNextHops, NodeEgressState } from '../src/calc/types.js';
import type { Benchmark, Figures, Random } from './harness.js';
import { elapsedNs, nowNs, percentile, printTable, round, seededRandom } from './harness.js';

const NODES = 5_000;
const PODS = 100_000;
const DEPLOYMENTS = 100;
const REPLICAS = 10;
const GATEWAY_NAMESPACES = 10;
const APP_NAMESPACES = 1_000;
const POLICIES = 200;
const EVENTS = 3_000;
const FULL_SAMPLES = 12;
const LOCAL = 'node-0042';

const SEL = 'egress.projectcalico.org/selector';
const NSSEL = 'egress.projectcalico.org/namespaceSelector';
const POLICY = 'egress.projectcalico.org/egressGatewayPolicy';
const MAXHOPS = 'egress.projectcalico.org/maxNextHops';

const nodeName = (i: number) => `node-${String(i).padStart(4, '0')}`;
const ip = (base: number, i: number) => {
  const v = base + i;
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
};
const NODE_BASE = (10 << 24) >>> 0; // 10.0.0.0/16
const POD_BASE = ((10 << 24) | (16 << 16)) >>> 0; // 10.16.0.0/12
const GW_BASE = ((100 << 24) | (64 << 16)) >>> 0; // 100.64.0.0/16
const code = (d: number) => `gw-${String(d).padStart(3, '0')}`;
const gwNs = (d: number) => `egw-${d % GATEWAY_NAMESPACES}`;
const gwSelector = (d: number) => `egress-code == '${code(d)}'`;
const gwNsSelector = (d: number) => `projectcalico.org/name == '${gwNs(d)}'`;

interface Cluster {
  resources: Map<string, CalcResource>;
  /** Keys of the clients on the local node. */
  local: Set<string>;
  records: Map<string, EgressNextHops>;
  clientNames: string[];
  gateways: Pod[];
  nextClient: number;
}

function keyOf(r: CalcResource): string {
  return `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;
}

function gatewayPod(d: number, k: number, node: string, ready: boolean): Pod {
  const i = d * REPLICAS + k;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    // Owned as on Kubernetes: the ReplicaSet `<EgressGateway>-<pod-template-hash>` (only such pods act as gateways).
    metadata: {
      name: `${code(d)}-${k}`,
      namespace: gwNs(d),
      uid: `gw-uid-${i}`,
      labels: { 'egress-code': code(d), 'projectcalico.org/egw': code(d), 'pod-template-hash': '5d8f7' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${code(d)}-5d8f7`, controller: true }],
    },
    spec: { nodeName: node, containers: [{ name: 'egress-gateway', ports: [{ name: 'health', containerPort: 8080 }] }] },
    status: { phase: 'Running', podIP: ip(GW_BASE, i), conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } as Pod['status'] & object,
  };
}

function clientPod(r: Random, n: number, ns: string, node: string): Pod {
  const annotations: Record<string, string> = {};
  // A few pods override their namespace (EnabledPerNamespaceOrPerPod).
  if (r.chance(0.03)) {
    const d = r.int(DEPLOYMENTS);
    annotations[SEL] = gwSelector(d);
    annotations[NSSEL] = gwNsSelector(d);
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `client-${n}`, namespace: ns, uid: `client-uid-${n}`, labels: { app: `app-${n % 50}`, tier: r.pick(['web', 'api', 'db']) }, annotations },
    spec: { nodeName: node, containers: [{ name: 'main' }] },
    status: { phase: 'Running', podIP: ip(POD_BASE, n) },
  };
}

function build(r: Random): Cluster {
  const resources = new Map<string, CalcResource>();
  const add = (x: CalcResource) => resources.set(keyOf(x), x);
  add({ apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { egressIPSupport: 'EnabledPerNamespaceOrPerPod' } });
  for (let i = 0; i < NODES; i++) add({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName(i) }, status: { addresses: [{ type: 'InternalIP', address: ip(NODE_BASE, i + 10) }] } });
  for (let g = 0; g < GATEWAY_NAMESPACES; g++) add({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `egw-${g}`, labels: { purpose: 'egress' } } });
  const policies: { name: string; a: number; b: number; hopsA: number; hopsB: number }[] = [];
  for (let p = 0; p < POLICIES; p++) {
    const a = r.int(DEPLOYMENTS);
    const b = r.int(DEPLOYMENTS);
    const hopsA = p % 2 === 0 ? 2 : 0;
    const hopsB = p % 5 === 0 ? 3 : 0;
    policies.push({ name: `policy-${p}`, a, b, hopsA, hopsB });
    add({
      apiVersion: 'projectcalico.org/v3',
      kind: 'EgressGatewayPolicy',
      metadata: { name: `policy-${p}` },
      spec: {
        rules: [
          { description: 'local', destination: { cidr: '203.0.113.0/24' } },
          { description: 'on prem', destination: { cidr: '198.18.0.0/15' }, gateway: { selector: gwSelector(a), namespaceSelector: gwNsSelector(a), maxNextHops: hopsA } },
          { description: 'internet', gateway: { selector: gwSelector(b), namespaceSelector: gwNsSelector(b), maxNextHops: hopsB }, ...(p % 3 === 0 ? { gatewayPreference: 'PreferNodeLocal' as const } : {}) },
        ],
      },
    });
  }
  const nsAnnotations: Record<string, string>[] = [];
  for (let n = 0; n < APP_NAMESPACES; n++) {
    const roll = r.next();
    let annotations: Record<string, string> = {};
    if (roll < 0.6) annotations = { [POLICY]: r.pick(policies).name };
    else if (roll < 0.9) {
      const d = r.int(DEPLOYMENTS);
      annotations = { [SEL]: gwSelector(d), [NSSEL]: gwNsSelector(d), ...(n % 3 === 0 ? { [MAXHOPS]: '2' } : {}) };
    }
    nsAnnotations.push(annotations);
    add({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `app-${String(n).padStart(4, '0')}`, labels: { team: `t${n % 20}` }, annotations } });
  }
  const gateways: Pod[] = [];
  for (let d = 0; d < DEPLOYMENTS; d++) {
    add({ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', metadata: { name: code(d), namespace: gwNs(d) }, spec: { ipPools: [{ name: 'egress' }] } });
    for (let k = 0; k < REPLICAS; k++) {
      // The local node hosts the first replica of a few deployments: its return path is not empty.
      const node = k === 0 && d % 25 === 0 ? LOCAL : nodeName(r.int(NODES));
      const g = gatewayPod(d, k, node, true);
      gateways.push(g);
      add(g);
    }
  }
  const clientNames: string[] = [];
  const clients = PODS - DEPLOYMENTS * REPLICAS;
  for (let n = 0; n < clients; n++) {
    const ns = `app-${String(n % APP_NAMESPACES).padStart(4, '0')}`;
    const p = clientPod(r, n, ns, nodeName(r.int(NODES)));
    add(p);
    clientNames.push(keyOf(p));
  }
  // The stored maxNextHops records of every client cluster-wide, as the agents would have written them
  // (round-robin over the deployment's replicas: balanced, like the real choice).
  const records = new Map<string, EgressNextHops>();
  const cursor = new Map<number, number>();
  const take = (d: number, n: number): string[] => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const c = cursor.get(d) ?? 0;
      cursor.set(d, c + 1);
      out.push(`${gwNs(d)}/${code(d)}-${c % REPLICAS}`);
    }
    return [...new Set(out)].sort();
  };
  const policyByName = new Map(policies.map((p) => [p.name, p]));
  for (const key of clientNames) {
    const pod = resources.get(key) as Pod;
    const nsAnn = nsAnnotations[Number(pod.metadata.namespace!.slice(4))]!;
    if (pod.metadata.annotations?.[SEL] !== undefined) continue;
    const rules: Record<string, { maxNextHops: number; gateways: string[] }> = {};
    const pol = nsAnn[POLICY] === undefined ? undefined : policyByName.get(nsAnn[POLICY]);
    if (pol !== undefined) {
      if (pol.hopsA > 0) rules[selectionKey(gwSelector(pol.a), { kind: 'namespaceSelector', selector: gwNsSelector(pol.a) })] = { maxNextHops: pol.hopsA, gateways: take(pol.a, pol.hopsA) };
      if (pol.hopsB > 0) rules[selectionKey(gwSelector(pol.b), { kind: 'namespaceSelector', selector: gwNsSelector(pol.b) })] = { maxNextHops: pol.hopsB, gateways: take(pol.b, pol.hopsB) };
    } else if (nsAnn[MAXHOPS] !== undefined) {
      const d = Number(/'gw-(\d+)'/.exec(nsAnn[SEL]!)![1]);
      rules[selectionKey(nsAnn[SEL]!, { kind: 'namespaceSelector', selector: nsAnn[NSSEL]! })] = { maxNextHops: 2, gateways: take(d, 2) };
    }
    if (Object.keys(rules).length > 0) records.set(`${pod.metadata.namespace}/${pod.metadata.name}`, { client: `${pod.metadata.namespace}/${pod.metadata.name}`, podUID: pod.metadata.uid!, node: pod.spec.nodeName!, rules });
  }
  const local = new Set(clientNames.filter((k) => (resources.get(k) as Pod).spec.nodeName === LOCAL));
  return { resources, local, records, clientNames, gateways, nextClient: clients };
}

const CLUSTER_CIDRS = ['10.16.0.0/12', '100.64.0.0/16', '10.96.0.0/12', '10.0.0.0/16'];

function snapshotOf(c: Cluster) {
  return { resources: [...c.resources.values()], nextHops: [...c.records.values()], clusterCidrs: CLUSTER_CIDRS };
}

type Event = { label: string; apply: (calc: EgressCalculator) => void; commit: () => void };

/** One random change of the cluster: applied to the calculator by `apply`, to the bench's copy by `commit`. */
function randomEvent(r: Random, c: Cluster): Event {
  const kind = r.weighted([
    ['client-add', 30],
    ['client-delete', 25],
    ['client-relabel', 15],
    ['gateway-ready', 12],
    ['gateway-replace', 8],
    ['local-client', 8],
    ['local-gateway', 2],
  ] as const);
  const upsert = (label: string, p: Pod): Event => ({ label, apply: (calc) => calc.upsert(p), commit: () => void c.resources.set(keyOf(p), p) });
  const addClient = (label: string, node: string): Event => {
    const n = c.nextClient++;
    const p = clientPod(r, n, `app-${String(r.int(APP_NAMESPACES)).padStart(4, '0')}`, node);
    c.clientNames.push(keyOf(p));
    if (node === LOCAL) c.local.add(keyOf(p));
    return upsert(label, p);
  };
  const deleteClient = (label: string, i: number): Event => {
    const key = c.clientNames[i]!;
    c.local.delete(key);
    c.clientNames[i] = c.clientNames[c.clientNames.length - 1]!;
    c.clientNames.pop();
    const p = c.resources.get(key) as Pod;
    return {
      label,
      apply: (calc) => calc.delete('Pod', p.metadata.name, p.metadata.namespace),
      // Its record stays until its owner deletes it (storeRecords, for this node's clients).
      commit: () => void c.resources.delete(key),
    };
  };
  switch (kind) {
    case 'local-client': {
      // The local node's pods come and go too; a node holds at most ~110 pods.
      if (c.local.size > 0 && r.chance(0.5)) return deleteClient(kind, c.clientNames.indexOf(r.pick([...c.local])));
      return addClient(kind, LOCAL);
    }
    case 'client-add':
      return addClient(kind, nodeName(r.int(NODES)));
    case 'client-delete':
      return deleteClient(kind, r.int(c.clientNames.length));
    case 'client-relabel': {
      const p = c.resources.get(r.pick(c.clientNames)) as Pod;
      return upsert(kind, { ...p, metadata: { ...p.metadata, labels: { ...p.metadata.labels, version: `v${r.int(1000)}` } } });
    }
    case 'gateway-ready': {
      const i = r.int(c.gateways.length);
      const g = c.gateways[i]!;
      const ready = (g.status as { conditions: { status: string }[] }).conditions[0]!.status !== 'True';
      const next = gatewayPod(Math.floor(i / REPLICAS), i % REPLICAS, g.spec.nodeName!, ready);
      c.gateways[i] = next;
      return upsert(kind, next);
    }
    case 'gateway-replace':
    case 'local-gateway': {
      // A replica moves to another node (a rolling update deletes it and creates it elsewhere).
      const i = kind === 'local-gateway' ? 25 * REPLICAS * r.int(DEPLOYMENTS / 25) : r.int(c.gateways.length);
      const g = c.gateways[i]!;
      const node = g.spec.nodeName === LOCAL ? nodeName(r.int(NODES)) : kind === 'local-gateway' ? LOCAL : nodeName(r.int(NODES));
      const next = gatewayPod(Math.floor(i / REPLICAS), i % REPLICAS, node, true);
      c.gateways[i] = next;
      return upsert(kind, next);
    }
  }
}

/** Stores what the agent wants stored (its clients' records), as the agent would after a result. */
function storeRecords(calc: EgressCalculator, c: Cluster, state: NodeEgressState): void {
  for (const rec of state.nextHops) {
    if (sameNextHops(c.records.get(rec.client), rec)) continue;
    c.records.set(rec.client, rec);
    calc.upsertNextHops(rec);
  }
  for (const client of state.staleNextHops) {
    c.records.delete(client);
    calc.deleteNextHops(client);
  }
}

/** CPU time (user + system, all threads of the process) since `from`, in ms. */
function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as unknown;
  return typeof gc === 'function' ? (gc as () => void) : () => undefined;
}

async function run(): Promise<Figures> {
  const gc = gcFunction();
  const r = seededRandom(20240611);
  const cluster = build(r);
  gc();
  const heapInputs = process.memoryUsage().heapUsed;

  const load0 = loadavg()[0]!;
  const t0 = nowNs();
  const c0 = process.cpuUsage();
  const calc = new EgressCalculator(LOCAL).load(snapshotOf(cluster));
  const initial = calc.result();
  const initialMs = elapsedNs(t0) / 1e6;
  const initialCpuMs = cpuMs(c0);
  gc();
  const heapAll = process.memoryUsage().heapUsed;
  storeRecords(calc, cluster, initial);
  calc.setPreviousTables(initial.tables);

  // The event stream: each event absorbed and the new result produced; the agent's writes (records,
  // table bindings) fed back as the datastore would echo them.
  const times: number[] = [];
  const cpuTimes: number[] = [];
  const byKind = new Map<string, number[]>();
  for (let i = 0; i < EVENTS; i++) {
    const e = randomEvent(r, cluster);
    const start = nowNs();
    const cpu = process.cpuUsage();
    e.apply(calc);
    const state = calc.result();
    const ms = elapsedNs(start) / 1e6;
    cpuTimes.push(cpuMs(cpu));
    e.commit();
    times.push(ms);
    const list = byKind.get(e.label);
    if (list === undefined) byKind.set(e.label, [ms]);
    else list.push(ms);
    storeRecords(calc, cluster, state);
    calc.setPreviousTables(state.tables);
  }

  // Side by side: the same kind of event absorbed incrementally, then the whole cluster recomputed from
  // scratch (a fresh calculator fed the current snapshot), alternating.
  const inc: number[] = [];
  const full: number[] = [];
  let agree = true;
  let bindings = calc.result().tables;
  for (let i = 0; i < FULL_SAMPLES; i++) {
    const e = randomEvent(r, cluster);
    const start = nowNs();
    e.apply(calc);
    const state = calc.result();
    inc.push(elapsedNs(start) / 1e6);
    e.commit();
    const fStart = nowNs();
    // The same inputs the incremental calculator has: the cluster, the stored records, the bindings.
    const fresh = new EgressCalculator(LOCAL).load({ ...snapshotOf(cluster), previousTables: bindings }).result();
    full.push(elapsedNs(fStart) / 1e6);
    if (JSON.stringify(fresh) !== JSON.stringify(state)) agree = false;
    storeRecords(calc, cluster, state);
    calc.setPreviousTables(state.tables);
    bindings = state.tables;
  }

  const p = (xs: number[], q: number) => round(percentile(xs, q), 3);
  printTable(
    `cluster: ${NODES} nodes, ${PODS} pods (${DEPLOYMENTS * REPLICAS} gateways), ${APP_NAMESPACES + GATEWAY_NAMESPACES} namespaces, ${POLICIES} policies; agent on ${LOCAL}`,
    ['figure', 'value'],
    [
      ['load average (1 min) at start', round(load0, 3)],
      ['initial load + first result (ms)', round(initialMs, 4)],
      ['  of which CPU time of this process (ms)', round(initialCpuMs, 4)],
      ['heap with inputs and calculator (MB)', round(heapAll / 2 ** 20, 4)],
      ['heap of the calculator alone (MB)', round((heapAll - heapInputs) / 2 ** 20, 4)],
      ['local clients', initial.clients.length],
      ['local tables', initial.tables.length],
      ['return-path clients', initial.returnPath?.clients.length ?? 0],
      ['poll targets', initial.pollTargets.length],
      ['stored maxNextHops records', cluster.records.size],
    ],
  );
  printTable(
    `per event: absorb one change and produce the result (${EVENTS} events)`,
    ['event', 'n', 'p50 ms', 'p99 ms', 'max ms'],
    [...byKind.entries()]
      .sort()
      .map(([k, xs]) => [k, xs.length, p(xs, 50), p(xs, 99), p(xs, 100)] as const)
      .concat([
        ['all', times.length, p(times, 50), p(times, 99), p(times, 100)],
        ['all, CPU time', cpuTimes.length, p(cpuTimes, 50), p(cpuTimes, 99), p(cpuTimes, 100)],
      ]),
  );
  const ratio = percentile(full, 50) / percentile(inc, 50);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const meanRatio = mean(full) / mean(inc);
  printTable('incremental vs. full recomputation, same events, alternating', ['path', 'n', 'p50 ms', 'mean ms', 'max ms'], [
    ['incremental', inc.length, p(inc, 50), round(mean(inc), 3), p(inc, 100)],
    ['full', full.length, p(full, 50), round(mean(full), 3), p(full, 100)],
  ]);
  console.log(`\nfull / incremental: ${round(ratio, 4)}× at p50, ${round(meanRatio, 4)}× on the means; results agree: ${agree}`);
  return {
    loadAverage: round(load0, 3),
    initialMs: round(initialMs, 4),
    initialCpuMs: round(initialCpuMs, 4),
    perEventMsP50: p(times, 50),
    perEventMsP99: p(times, 99),
    perEventMsMax: p(times, 100),
    perEventCpuMsP99: p(cpuTimes, 99),
    heapMb: round(heapAll / 2 ** 20, 4),
    calcHeapMb: round((heapAll - heapInputs) / 2 ** 20, 4),
    fullMsP50: p(full, 50),
    incrementalMsP50: p(inc, 50),
    fullOverIncremental: round(ratio, 4),
    fullOverIncrementalMean: round(meanRatio, 4),
    agree,
    localClients: initial.clients.length,
    returnClients: initial.returnPath?.clients.length ?? 0,
  };
}

export const calcScaleBenchmark: Benchmark = {
  name: 'calc-scale',
  description: 'one agent’s egress calculation: 5,000 nodes, 100,000 pods, 1,000 gateways, 200 policies (initial, per event, memory, vs. full)',
  run,
};
