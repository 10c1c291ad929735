import { mkdtempSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EgressAgent } from '../../src/agent/agent.js';
import { KernelLock } from '../../src/agent/kernel-lock.js';
import type { PollOutcome, ReadinessProbe } from '../../src/agent/gateway-poller.js';
import { NEXT_HOPS_KIND, nodeStatusKey, parseNextHops, parseNodeStatus, type NodeStatus } from '../../src/agent/records.js';
import type { AnyResource, Namespace, Node, Pod } from '../../src/api/index.js';
import { keyOf } from '../../src/api/index.js';
import type { Datastore } from '../../src/datastore/contract.js';
import { openDatastore } from '../../src/datastore/open.js';
import { FakeClock } from '../../src/platform/clock.js';
import { FlakyDatastore } from '../datastore/flaky-datastore.js';
import { FakeKernel } from '../linux/fixtures/fake-kernel.js';

// The agent with a real SQLite datastore, the stateful fake kernel, a fake clock driving its polls, and
// a fake readiness probe: everything but the kernel and the network is real.
const SEL = 'egress.projectcalico.org/selector';
const NSSEL = 'egress.projectcalico.org/namespaceSelector';
const MAXHOPS = 'egress.projectcalico.org/maxNextHops';

function nodeRec(name: string, ip: string): Node {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name }, status: { addresses: [{ type: 'InternalIP', address: ip }] } };
}

function podRec(ns: string, name: string, node: string, ip: string, o: { labels?: Record<string, string>; gateway?: boolean; ready?: boolean; annotations?: Record<string, string> } = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: ns,
      uid: `uid-${name}`,
      ...(o.labels === undefined ? {} : { labels: o.labels }),
      ...(o.annotations === undefined ? {} : { annotations: o.annotations }),
      // Gateway pods belong to an EgressGateway (only such pods act as gateways; docs/security.md, 7).
      ...(o.gateway === true ? { ownerReferences: [{ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: 'gateways', controller: true }] } : {}),
    },
    spec: { nodeName: node, containers: [{ name: 'main', ...(o.gateway === true ? { ports: [{ name: 'health', containerPort: 8080 }] } : {}) }] },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] } as NonNullable<Pod['status']>,
  };
}

function nsRec(name: string, annotations: Record<string, string> = {}): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, annotations } };
}

const G1 = '100.64.0.11';
const G2 = '100.64.0.12';
const C1 = '10.20.1.5';

class TableProbe implements ReadinessProbe {
  readonly answers = new Map<string, PollOutcome>();
  check(target: { ip: string }): Promise<PollOutcome> {
    return Promise.resolve(this.answers.get(target.ip) ?? { ok: true });
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

let dir: string;
let store: Datastore;
let kernel: FakeKernel;
let clock: FakeClock;
let probe: TableProbe;
const agents: EgressAgent[] = [];

async function put(...resources: AnyResource[]): Promise<void> {
  await store.commit(resources.map((r) => ({ op: 'put' as const, key: keyOf(r), value: JSON.parse(JSON.stringify(r)) as never })));
}

async function status(node = 'n1'): Promise<NodeStatus | undefined> {
  return parseNodeStatus(await store.get(nodeStatusKey(node)));
}

/** Waits (real time, advancing the fake clock a little each round) until `check` holds. */
async function until<T>(what: string, check: () => Promise<T | undefined | false>, stepMs = 0): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (stepMs > 0) clock.advance(stepMs);
    await flush();
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never: ${what}; status ${JSON.stringify(await status())}`);
}

function agent(s: Datastore = store, node = 'n1', logger?: pino.Logger): EgressAgent {
  const a = new EgressAgent({ store: s, shell: kernel, clock, probe, ...(logger === undefined ? {} : { logger }) }, { nodeName: node, debounceMs: 0, resyncIntervalMs: 3_600_000 });
  agents.push(a);
  return a;
}

/** Gateway IPs of the default route of c1's table in the fake kernel. */
function kernelGateways(ip = C1): string[] {
  const rule = kernel.rules.find((r) => r.from === `${ip}/32` && r.protocol === 233);
  if (rule === undefined) return ['<no rule>'];
  const route = kernel.routes.find((r) => r.table === rule.table && r.dst === '0.0.0.0/0');
  if (route === undefined) return ['<no route>'];
  if (route.type === 'unreachable') return ['unreachable'];
  const nh = kernel.nexthops.get(route.nhid!);
  const ids = nh?.group ?? [route.nhid!];
  return ids.map((id) => kernel.nexthops.get(id)?.gateway ?? '?').sort();
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'egw-agent-test-'));
  store = await openDatastore(join(dir, 'egw.db'));
  kernel = new FakeKernel();
  kernel.addLink('eth0', '02:00:00:00:00:01');
  clock = new FakeClock(0);
  probe = new TableProbe();
  await put(
    { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { egressIPSupport: 'EnabledPerNamespaceOrPerPod', egressGatewayPollInterval: '200ms', egressGatewayPollFailureCount: 2 } },
    { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'pods' }, spec: { cidr: '10.20.0.0/16', natOutgoing: true } },
    { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'egress' }, spec: { cidr: '100.64.0.0/24' } },
    nodeRec('n1', '10.10.1.10'),
    nodeRec('n2', '10.10.2.10'),
    nodeRec('n3', '10.10.3.10'),
    nsRec('egw'),
    { apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', metadata: { name: 'gateways', namespace: 'egw' }, spec: { ipPools: [{ name: 'egress' }] } },
    nsRec('app', { [SEL]: "egress-code == 'red'", [NSSEL]: "projectcalico.org/name == 'egw'" }),
    podRec('egw', 'g1', 'n2', G1, { labels: { 'egress-code': 'red' }, gateway: true }),
    podRec('egw', 'g2', 'n3', G2, { labels: { 'egress-code': 'red' }, gateway: true }),
    podRec('app', 'c1', 'n1', C1),
  );
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('egw agent', () => {
  it('touches nothing before the datastore is in sync, then programs the node and reports it', async () => {
    const flaky = new FlakyDatastore(store);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    flaky.beforeList = (kind) => (kind === 'Pod' ? held : Promise.resolve());
    const a = agent(flaky);
    a.start();
    for (let i = 0; i < 20; i++) {
      clock.advance(1000);
      await flush();
    }
    expect(kernel.log).toEqual([]);
    expect(await status()).toBeUndefined();
    release();
    const st = await until('status written', async () => await status());
    expect(st.dataplane).toMatchObject({ ok: true, failures: [], problems: [], changes: 1 });
    expect(st.vxlan).toEqual({ vni: 4097, port: 4790, localIp: '10.10.1.10' });
    const c = st.clients.find((x) => x.pod === 'app/c1');
    expect(c).toMatchObject({ ip: C1, state: 'routed', source: 'namespace', method: 'selector' });
    expect(c?.rules).toEqual([{ destination: '0.0.0.0/0', action: 'gateways', gateways: [{ pod: 'egw/g1', ip: G1 }, { pod: 'egw/g2', ip: G2 }] }]);
    // The table the status names is the one the kernel rule points at.
    expect(kernel.rules.find((r) => r.from === `${C1}/32`)?.table).toBe(c?.table);
    expect(kernelGateways()).toEqual([G1, G2]);
    // natOutgoing for the natOutgoing pool.
    expect(kernel.nft?.chains.size).toBeGreaterThan(0);
    await until('both gateways polled up', async () => (await status())?.gateways.every((g) => g.health === 'up'));
  });

  it('fails over on polls: down after 2 failed polls 200 ms apart, back after one success; a deleted gateway goes at once', async () => {
    const a = agent();
    a.start();
    await until('routed through both', async () => kernelGateways().length === 2 && (await status())?.gateways.every((g) => g.health === 'up'));
    probe.answers.set(G1, { ok: false, reason: 'timeout' });
    const removedAt = await until('g1 removed', async () => (kernelGateways().join() === G2 ? clock.now() : undefined), 50);
    expect(removedAt).toBeLessThanOrEqual(450);
    const st = await until('status says down', async () => {
      const s = await status();
      return s?.gateways.find((g) => g.ip === G1)?.health === 'down' ? s : undefined;
    });
    expect(st.clients[0]?.rules[0]?.gateways.map((g) => g.ip)).toEqual([G2]);
    expect(a.metrics.verdicts).toBeDefined();
    probe.answers.delete(G1);
    await until('g1 back', async () => kernelGateways().length === 2, 50);
    // Deleted in the datastore: gone without any poll (the clock stands still).
    await store.commit([{ op: 'delete', key: { kind: 'Pod', namespace: 'egw', name: 'g2' } }]);
    await until('g2 removed', async () => kernelGateways().join() === G1);
    // Every gateway unready in the datastore: fail closed, never the normal way.
    await put(podRec('egw', 'g1', 'n2', G1, { labels: { 'egress-code': 'red' }, gateway: true, ready: false }));
    await until('fail closed', async () => kernelGateways().join() === 'unreachable');
    expect((await status())?.clients[0]).toMatchObject({ state: 'fail-closed', rules: [expect.objectContaining({ action: 'unreachable', reason: 'no-gateway-ready' })] });
  });

  it('writes the maxNextHops records with CAS and deletes them when the client goes', async () => {
    await put(nsRec('app', { [SEL]: "egress-code == 'red'", [NSSEL]: "projectcalico.org/name == 'egw'", [MAXHOPS]: '1' }));
    const a = agent();
    a.start();
    const rec = await until('record written', async () => (await store.list(NEXT_HOPS_KIND)).items[0]);
    const parsed = parseNextHops(rec)!;
    expect(parsed).toMatchObject({ client: 'app/c1', podUID: 'uid-c1', node: 'n1' });
    const [choice] = Object.values(parsed.rules);
    expect(choice?.maxNextHops).toBe(1);
    expect(choice?.gateways).toHaveLength(1);
    const chosenIp = choice!.gateways[0] === 'egw/g1' ? G1 : G2;
    await until('kernel uses the chosen one', async () => kernelGateways().join() === chosenIp);
    // Passes that change nothing do not rewrite the record.
    await put(nodeRec('n4', '10.10.4.10'));
    await a.nextPass();
    expect((await store.list(NEXT_HOPS_KIND)).items[0]?.modRevision).toBe(rec.modRevision);
    await store.commit([{ op: 'delete', key: { kind: 'Pod', namespace: 'app', name: 'c1' } }]);
    await until('record deleted', async () => (await store.list(NEXT_HOPS_KIND)).items.length === 0);
    expect(kernel.rules.filter((r) => r.protocol === 233)).toEqual([]);
  });

  it('a restarted agent over its own kernel state changes nothing', async () => {
    const first = agent();
    first.start();
    await until('programmed', async () => kernelGateways().length === 2);
    await first.stop();
    // Stopping leaves the data plane in place.
    expect(kernelGateways()).toEqual([G1, G2]);
    const lines = kernel.log.length;
    const second = agent();
    second.start();
    const st = await until('restarted status', async () => second.status);
    expect(st.dataplane).toMatchObject({ ok: true, changes: 0 });
    expect(kernel.log.length).toBe(lines);
  });

  it('runs its sidecar (the AWS fabric) with it and reports its summary; kernel writers never overlap', async () => {
    const calls: string[] = [];
    const lock = new KernelLock();
    let otherWriting = false;
    let overlap = false;
    const shell = {
      run: (argv: readonly string[], o?: Parameters<FakeKernel['run']>[1]) => {
        if (otherWriting) overlap = true;
        return kernel.run(argv, o);
      },
    };
    const a = new EgressAgent(
      { store, shell, clock, probe, kernelLock: lock, sidecar: { start: () => calls.push('start'), stop: async () => void calls.push('stop'), summary: () => ({ mode: 'Disabled', instanceId: null, lastError: null }) } },
      { nodeName: 'n1', debounceMs: 0, resyncIntervalMs: 3_600_000 },
    );
    agents.push(a);
    a.start();
    const st = await until('status', async () => await status());
    expect(st.fabric).toEqual({ mode: 'Disabled', instanceId: null, lastError: null });
    // Another writer (the fabric's ENI routing) holds the lock while a change arrives: the agent's
    // apply waits for it instead of interleaving.
    const other = lock.run(async () => {
      otherWriting = true;
      await new Promise((r) => setTimeout(r, 200));
      otherWriting = false;
    });
    await put(podRec('app', 'c9', 'n1', '10.20.1.9'));
    await other;
    await until('c9 programmed', async () => kernel.rules.some((r) => r.from === '10.20.1.9/32'));
    expect(overlap).toBe(false);
    await a.stop();
    agents.pop();
    expect(calls).toEqual(['start', 'stop']);
  });

  it('an invalid stored Pod fails closed with a status reason, and is routed again once fixed', async () => {
    const a = agent();
    a.start();
    await until('programmed', async () => kernelGateways().length === 2);
    // Written around `egw apply`: an unparseable selector annotation on the pod.
    await put(podRec('app', 'c1', 'n1', C1, { annotations: { [SEL]: "egress-code == 'red" } }));
    const c1 = await until('c1 failed closed', async () => (await status())?.clients.find((c) => c.pod === 'app/c1' && c.state === 'fail-closed'));
    expect(c1.method).toBe('invalid');
    expect(c1.rules).toEqual([{ destination: '0.0.0.0/0', action: 'unreachable', gateways: [], reason: 'invalid-pod' }]);
    expect(c1.notes.join()).toContain('metadata.annotations');
    // Never the node's IP: the pod's rule points at a table whose default route is unreachable.
    expect(kernelGateways()).toEqual(['unreachable']);
    expect(await a.metrics.invalidResources.get()).toMatchObject({ values: [{ value: 1 }] });
    await put(podRec('app', 'c1', 'n1', C1));
    await until('routed again', async () => kernelGateways().length === 2);
    expect((await status())?.clients.find((c) => c.pod === 'app/c1')?.state).toBe('routed');
  });

  it('a hand-made pod matching the selector is not a gateway; with its EgressGateway gone its clients drop, and the status and the log say why', async () => {
    const logged: { msg?: string; code?: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim() !== '') logged.push(JSON.parse(l) as { msg?: string; code?: string });
        cb();
      },
    });
    const a = agent(store, 'n1', pino({ level: 'warn' }, sink));
    a.start();
    await until('programmed', async () => kernelGateways().length === 2);
    // An intruder in the gateways' namespace with the right labels but no owner: named, never used.
    await put(podRec('egw', 'gx', 'n2', '100.64.0.99', { labels: { 'egress-code': 'red' } }));
    const issue = await until('refusal reported', async () => (await status())?.issues.find((i) => i.code === 'GatewayRefused'));
    expect(issue.message).toContain('pod egw/gx');
    expect(kernelGateways().length).toBe(2);
    expect(kernelGateways()).not.toContain('100.64.0.99');
    // The EgressGateway deleted: its pods are no longer gateways; the client drops (never the node IP).
    await store.commit([{ op: 'delete', key: { kind: 'EgressGateway', namespace: 'egw', name: 'gateways' } }]);
    await until('fail closed', async () => kernelGateways().join() === 'unreachable');
    expect((await status())?.clients.find((c) => c.pod === 'app/c1')?.rules[0]?.reason).toBe('no-gateway-allowed');
    // Logged once per refusal while it lasts (the status is rewritten; the line is not repeated).
    const refusals = logged.filter((l) => l.code === 'GatewayRefused');
    expect(refusals.filter((l) => l.msg?.startsWith('pod egw/gx ') === true)).toHaveLength(1);
    expect(refusals.some((l) => l.msg?.includes('its owner EgressGateway egw/gateways does not exist') === true)).toBe(true);
  });

  it('a malformed unrelated annotation on a selected pod fails it closed, not open', async () => {
    await put(podRec('app', 'c1', 'n1', C1, { annotations: { 'cni.projectcalico.org/awsElasticIPs': 'not json' } }));
    const a = agent();
    a.start();
    await until('c1 failed closed', async () => (await status())?.clients.find((c) => c.pod === 'app/c1' && c.state === 'fail-closed'));
    expect(kernelGateways()).toEqual(['unreachable']);
  });

  it('an invalid pod that no egress configuration could select keeps normal routing and is listed as ignored', async () => {
    await put(nsRec('plain'), podRec('plain', 'p1', 'n1', '10.20.1.7', { annotations: { 'cni.projectcalico.org/ipv4pools': '[' } }));
    const a = agent();
    a.start();
    const ignored = await until('p1 ignored', async () => (await status())?.ignored.find((i) => i.pod === 'plain/p1'));
    expect(ignored.reason).toContain('invalid Pod');
    expect(kernel.rules.some((r) => r.from === '10.20.1.7/32')).toBe(false);
    expect(kernelGateways()).toEqual([G1, G2]);
  });

  it('an invalid Namespace fails its pods closed (its annotations are unknown), and recovers', async () => {
    const a = agent();
    a.start();
    await until('programmed', async () => kernelGateways().length === 2);
    await put(nsRec('app', { [SEL]: "egress-code == 'red'", [NSSEL]: "projectcalico.org/name == 'egw'", [MAXHOPS]: 'two' }));
    const c1 = await until('c1 failed closed', async () => (await status())?.clients.find((c) => c.pod === 'app/c1' && c.state === 'fail-closed'));
    expect(c1.rules[0]?.reason).toBe('invalid-namespace');
    expect(kernelGateways()).toEqual(['unreachable']);
    await put(nsRec('app', { [SEL]: "egress-code == 'red'", [NSSEL]: "projectcalico.org/name == 'egw'" }));
    await until('routed again', async () => kernelGateways().length === 2);
  });
});
