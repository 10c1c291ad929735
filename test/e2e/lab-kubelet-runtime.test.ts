/**
 * The lab's scheduler and kubelets for real: two node namespaces made here (isolated: no link to the
 * root namespace), a SQLite store in a temp dir, the scheduler process, one kubelet process per node
 * (entering its node's namespace with nsenter), Debian's ptp with egw-ipam, and real `egw gateway`
 * processes in the pod namespaces. Checks the final state: binds and the Unschedulable message, pod
 * namespaces with the right pool's address, Running/Ready, readiness flipping with the gateway's own
 * probe, adoption by a restarted kubelet, graceful deletion releasing the IPAM handle, and that nothing
 * is left behind.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EgressGateway, Pod } from '../../src/api/index.js';
import { newGatewayPod, ownerReferenceTo, renderPodTemplate, templateHash } from '../../src/controller/operator/index.js';
import type { Datastore, StoredResource } from '../../src/datastore/contract.js';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { IPAM_HANDLE_KIND } from '../../src/ipam/records.js';
import { labKubeletArgv } from '../../src/lab/kubelet/command.js';
import { podNetnsName, podSandboxId } from '../../src/lab/kubelet/naming.js';
import { ChildProcessRunner, type RunningProcess } from '../../src/linux/topology/process.js';
import { awsPool, namespace, pool, seed, subnet } from '../ipam/helpers.js';
import { distPath, EGW_CLI } from '../support/dist.js';
import { LAB_POD_GATEWAY } from '../../src/lab/kubelet/cni.js';
import { deadRunPrefixes, netnsNames, runPrefix, sweepNetns } from './support/run-prefix.js';

const PTP = '/usr/lib/cni/ptp';
const canRun = process.getuid?.() === 0 && existsSync(PTP) && spawnSync('nsenter', ['--version']).status === 0;
// Unique per run (tag + pid): a second suite beside this one never meets these namespaces.
const PREFIX = runPrefix('klr');
const NODES = [
  { name: 'node-a', zone: 'us-west-2a', ns: `${PREFIX}-node-a`, ip: '10.99.1.10' },
  { name: 'node-b', zone: 'us-west-2b', ns: `${PREFIX}-node-b`, ip: '10.99.2.10' },
];
/** Answers the gateways' ICMP probe from every node (the readiness the test flips). */
const PROBE_IP = '198.51.100.1';
const LAB_MAIN = distPath('test/lab/kubelet/support/lab-main.ts');
const AWS = 'projectcalico.org/aws-secondary-ipv4';

const dir = mkdtempSync(join(tmpdir(), 'egw-lab-kubelet-e2e-'));
const dbPath = join(dir, 'egw.db');
const runner = new ChildProcessRunner();
const procs = new Map<string, RunningProcess>();
const pastLogs: string[] = [];
let store: Datastore;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

function ourNamespaces(): string[] {
  return netnsNames().filter((n) => n.startsWith(`${PREFIX}-`));
}

/** Kills whatever runs in our namespaces and deletes them (this run's only, never another live run's). */
function sweep(): void {
  sweepNetns(PREFIX);
}

function startScheduler(): void {
  procs.set('scheduler', runner.start([process.execPath, LAB_MAIN, '--datastore', dbPath, 'lab', 'scheduler', '--resync-interval', '1s'], { env: { EGW_LOG_LEVEL: 'debug' } }));
}

function startKubelet(n: (typeof NODES)[number]): void {
  const argv = labKubeletArgv({ nodeNetns: n.ns, nodeName: n.name, datastore: dbPath, netnsPrefix: PREFIX, stateDir: join(dir, 'kubelet', n.name), egwMain: LAB_MAIN, egwBin: EGW_CLI, speedup: 10, extraArgs: ['--heartbeat-interval', '2s', '--sync-interval', '200ms'] });
  procs.set(`kubelet-${n.name}`, runner.start(argv, { env: { EGW_LOG_LEVEL: 'info' } }));
}

async function stopProc(name: string): Promise<void> {
  const p = procs.get(name);
  if (p === undefined) return;
  await p.stop(5_000);
  pastLogs.push(`--- ${name}\n${p.stderr()}`);
  procs.delete(name);
}

function logs(): string {
  return [...pastLogs, ...[...procs].map(([n, p]) => `--- ${n}\n${p.stderr()}`)].join('\n').slice(-20_000);
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 40_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : ` (${last instanceof Error ? last.message : JSON.stringify(last)})`}\n${logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The red gateways of the reference, with an ICMP probe the test controls and a 5 s grace period. */
function redGateway(): EgressGateway {
  return {
    apiVersion: 'operator.tigera.io/v1',
    kind: 'EgressGateway',
    metadata: { name: 'egress-gateway-red', namespace: 'calico-egress', uid: 'uid-egw-red' },
    spec: {
      replicas: 3,
      logSeverity: 'Info',
      ipPools: [{ name: 'egress-red-west-1' }, { name: 'egress-red-west-2' }],
      aws: { nativeIP: 'Enabled' },
      egressGatewayFailureDetection: { healthTimeoutDataStoreSeconds: 90, icmpProbe: { ips: [PROBE_IP], intervalSeconds: 1, timeoutSeconds: 3 } },
      template: {
        metadata: { labels: { 'egress-code': 'red' } },
        spec: {
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          terminationGracePeriodSeconds: 5,
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { 'egress-code': 'red' } } }],
        },
      },
    },
  };
}

const gatewayNames: string[] = [];

async function pods(): Promise<Map<string, StoredResource>> {
  const l = await store.list('Pod');
  return new Map(l.items.map((s) => [s.key.name, s]));
}

function podOf(s: StoredResource | undefined): Pod {
  return s?.value as unknown as Pod;
}

const cond = (p: Pod | undefined, type: string): Record<string, unknown> | undefined =>
  (((p?.status as { conditions?: Record<string, unknown>[] } | undefined)?.conditions) ?? []).find((c) => c['type'] === type);

function netnsOf(p: Pod): string {
  return podNetnsName(PREFIX, p.metadata.namespace ?? 'default', p.metadata.name, p.metadata.uid ?? '');
}

function addressIn(ns: string): string | undefined {
  const out = JSON.parse(ip('-n', ns, '-j', 'addr', 'show', 'dev', 'eth0')) as { addr_info: { family: string; local: string; prefixlen: number }[] }[];
  const a = out[0]?.addr_info.find((x) => x.family === 'inet');
  return a === undefined ? undefined : `${a.local}/${a.prefixlen}`;
}

/**
 * The pod's own processes in a namespace: those the kubelet started there, i.e. whose parent lives
 * outside it. What they start themselves is not counted — the gateway's ICMP probe runs `ping` every
 * interval, and between fork and exec such a child even shows its parent's command line — nor is a
 * `ping` in flight or a process that ended while we looked (no command line any more).
 */
function pidsIn(ns: string): number[] {
  return ip('netns', 'pids', ns)
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number)
    .filter((pid) => {
      const cmd = cmdline(pid);
      if (cmd === '' || /^(\S*\/)?ping /.test(cmd)) return false;
      const parent = ppidOf(pid);
      const here = netOf(pid);
      return parent !== undefined && here !== undefined && netOf(parent) !== here;
    });
}

function ppidOf(pid: number): number | undefined {
  try {
    // Field 4 of /proc/<pid>/stat, after the command name in parentheses (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function netOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/** The node's Ready heartbeat time as its kubelet last wrote it. */
async function heartbeatOf(node: string): Promise<string | undefined> {
  const n = await store.get({ kind: 'Node', name: node });
  const conds = ((n?.value['status'] as { conditions?: { type: string; lastHeartbeatTime?: string }[] } | undefined)?.conditions) ?? [];
  return conds.find((c) => c.type === 'Ready')?.lastHeartbeatTime;
}

/** Every process in a namespace with its command line, for failure messages. */
function describePids(ns: string): string {
  return ip('netns', 'pids', ns)
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map((pid) => `${pid}: ${cmdline(Number(pid))}`)
    .join('; ');
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

async function handles(): Promise<string[]> {
  return (await store.list(IPAM_HANDLE_KIND)).items.map((s) => s.key.name).sort();
}

beforeAll(async () => {
  if (!canRun) return;
  sweep();
  for (const dead of deadRunPrefixes('klr')) sweepNetns(dead);
  for (const n of NODES) {
    // An isolated node: its InternalIP and the probe target on loopback, no link anywhere else.
    ip('netns', 'add', n.ns);
    ip('-n', n.ns, 'link', 'set', 'lo', 'up');
    ip('-n', n.ns, 'addr', 'add', `${n.ip}/32`, 'dev', 'lo');
    ip('-n', n.ns, 'addr', 'add', `${PROBE_IP}/32`, 'dev', 'lo');
  }
  mkdirSync(join(dir, 'kubelet'), { recursive: true });
  store = await SqliteDatastore.open(dbPath);
  await seed(
    store,
    ...NODES.map((n) => ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'topology.kubernetes.io/zone': n.zone } },
      // One aws-secondary-ipv4 per node: the third gateway fits nowhere.
      status: { addresses: [{ type: 'InternalIP', address: n.ip }], allocatable: { [AWS]: '1' }, capacity: { [AWS]: '1' } },
    })),
    subnet('subnet-000000000000000001', '100.64.0.0/22', 'us-west-2a'),
    subnet('subnet-000000000000000002', '100.64.4.0/22', 'us-west-2b'),
    awsPool('egress-red-west-1', '100.64.0.4/30', 'subnet-000000000000000001'),
    awsPool('egress-red-west-2', '100.64.4.4/30', 'subnet-000000000000000002'),
    pool('pods', { cidr: '10.123.0.0/24', blockSize: 28 }),
    namespace('calico-egress'),
    namespace('app'),
  );
  const egw = redGateway();
  const template = renderPodTemplate(egw);
  const hash = templateHash(template);
  const gws = ['bcdfg', 'hjklm', 'npqrs'].map((suffix, i) =>
    newGatewayPod({ template, hash, namespace: 'calico-egress', owner: ownerReferenceTo(egw), suffix, uid: `uid-gw-${i}`, now: new Date(Date.now() - 10_000 + i).toISOString() }),
  );
  gatewayNames.push(...gws.map((p) => p.metadata.name));
  const client: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'client', namespace: 'app', uid: 'uid-client', creationTimestamp: new Date().toISOString() }, spec: { containers: [{ name: 'nc', image: 'busybox', command: ['/bin/sleep', 'infinity'] } as Pod['spec']['containers'][number]] }, status: { phase: 'Pending' } };
  await seed(store, ...([...gws, client] as unknown as Parameters<typeof seed>[1][]));
  startScheduler();
  for (const n of NODES) startKubelet(n);
}, 60_000);

afterAll(async () => {
  for (const name of [...procs.keys()]) await stopProc(name).catch(() => undefined);
  await store?.close().catch(() => undefined);
  sweep();
  rmSync(dir, { recursive: true, force: true });
  // Nothing of ours is left: no namespace with our prefix, no process naming our temp dir.
  expect(ourNamespaces()).toEqual([]);
  const ours = spawnSync('pgrep', ['-f', dir], { encoding: 'utf8' }).stdout.trim();
  expect(ours).toBe('');
}, 60_000);

describe.skipIf(!canRun)('lab scheduler and kubelets in namespaces', () => {
  it('binds one gateway per zone within capacity and reports the third as Kubernetes would', async () => {
    const bound = await waitFor('two gateways and the client bound, the third Unschedulable', async () => {
      const all = await pods();
      const gw = gatewayNames.map((n) => podOf(all.get(n)));
      const nodes = gw.map((p) => p.spec.nodeName).filter((x): x is string => x !== undefined);
      const pending = gw.filter((p) => p.spec.nodeName === undefined);
      // The verdict we mean is the capacity one: on a busy machine a late heartbeat can make the scheduler
      // first see a node as unreachable (another, transient reason); its next pass says the capacity.
      const capacityOnly = /Insufficient/.test(String(cond(pending[0], 'PodScheduled')?.['message'])) && !/unreachable|not-ready/.test(String(cond(pending[0], 'PodScheduled')?.['message']));
      return nodes.length === 2 && pending.length === 1 && cond(pending[0], 'PodScheduled')?.['status'] === 'False' && capacityOnly && podOf(all.get('client')).spec.nodeName !== undefined ? { nodes, pending: pending[0]! } : undefined;
    });
    expect(bound.nodes.sort()).toEqual(['node-a', 'node-b']);
    expect(cond(bound.pending, 'PodScheduled')).toMatchObject({ reason: 'Unschedulable', message: '0/2 nodes are available: 2 Insufficient projectcalico.org/aws-secondary-ipv4.' });
  }, 60_000);

  it('runs each gateway in its own namespace with an address of its zone\'s pool, egw gateway inside, Running and Ready', async () => {
    const ready = await waitFor('both gateways Ready', async () => {
      const all = await pods();
      const gw = gatewayNames.map((n) => podOf(all.get(n))).filter((p) => p.spec.nodeName !== undefined);
      return gw.length === 2 && gw.every((p) => cond(p, 'Ready')?.['status'] === 'True') ? gw : undefined;
    }, 60_000);
    for (const p of ready) {
      const ns = netnsOf(p);
      const podIP = p.status?.podIP ?? '';
      expect(p.status).toMatchObject({ phase: 'Running', podIPs: [{ ip: podIP }], hostIP: NODES.find((n) => n.name === p.spec.nodeName)!.ip });
      const range = p.spec.nodeName === 'node-a' ? /^100\.64\.0\.[4-7]$/ : /^100\.64\.4\.[4-7]$/;
      expect(podIP).toMatch(range);
      expect(addressIn(ns)).toBe(`${podIP}/30`);
      expect(ip('-n', ns, 'route', 'show', 'default')).toContain(`default via ${LAB_POD_GATEWAY} dev eth0`);
      const inside = pidsIn(ns).map(cmdline);
      expect(inside.some((c) => c.includes(`${EGW_CLI} gateway`) && !c.includes('init'))).toBe(true);
      expect(await handles()).toContain(`k8s-pod-network.${podSandboxId('calico-egress', p.metadata.name, p.metadata.uid!)}`);
    }
  }, 90_000);

  it('the client pod gets a namespace with an address of the default pool and no process, and is Ready', async () => {
    const client = await waitFor('client Ready', async () => {
      const p = podOf((await pods()).get('client'));
      return cond(p, 'Ready')?.['status'] === 'True' ? p : undefined;
    });
    const ns = netnsOf(client);
    expect(client.status?.podIP).toMatch(/^10\.123\.0\.\d+$/);
    expect(addressIn(ns)).toBe(`${client.status?.podIP}/24`);
    expect(pidsIn(ns)).toEqual([]);
  }, 60_000);

  it('readiness follows the gateway: its ICMP probe target gone → not Ready; back → Ready', async () => {
    const onA = podOf([...(await pods()).values()].find((s) => podOf(s).spec.nodeName === 'node-a' && podOf(s).metadata.namespace === 'calico-egress'));
    const name = onA.metadata.name;
    ip('-n', NODES[0]!.ns, 'addr', 'del', `${PROBE_IP}/32`, 'dev', 'lo');
    await waitFor('not Ready', async () => cond(podOf((await pods()).get(name)), 'Ready')?.['status'] === 'False');
    const other = podOf([...(await pods()).values()].find((s) => podOf(s).spec.nodeName === 'node-b' && podOf(s).metadata.namespace === 'calico-egress'));
    expect(cond(other, 'Ready')?.['status']).toBe('True');
    ip('-n', NODES[0]!.ns, 'addr', 'add', `${PROBE_IP}/32`, 'dev', 'lo');
    await waitFor('Ready again', async () => cond(podOf((await pods()).get(name)), 'Ready')?.['status'] === 'True');
  }, 60_000);

  it('a restarted kubelet adopts its pods: same namespace, same process, no new CNI ADD, still Ready', async () => {
    const onA = podOf([...(await pods()).values()].find((s) => podOf(s).spec.nodeName === 'node-a' && podOf(s).metadata.namespace === 'calico-egress'));
    const ns = netnsOf(onA);
    const nsInode = readlinkSync(`/proc/${pidsIn(ns)[0]}/ns/net`);
    const before = pidsIn(ns);
    const handlesBefore = await handles();
    await stopProc('kubelet-node-a');
    // The kubelet is gone; its pod is not.
    expect(pidsIn(ns), describePids(ns)).toEqual(before);
    startKubelet(NODES[0]!);
    const kubelet = procs.get('kubelet-node-a')!;
    await waitFor('adoption', () => kubelet.stderr().includes('adopting pod from local state'));
    await waitFor('in sync and idle', () => kubelet.stderr().includes('kubelet started'));
    // Let the new kubelet run its sync loop (200 ms) for a while before judging what it left alone:
    // two heartbeats of its own (2 s apart) have passed, however slow the machine is.
    let beat = await heartbeatOf('node-a');
    for (let i = 0; i < 2; i++) {
      const seen = beat;
      beat = await waitFor('a heartbeat of the restarted kubelet', async () => {
        const b = await heartbeatOf('node-a');
        return b !== undefined && b !== seen ? b : undefined;
      });
    }
    expect(pidsIn(ns), describePids(ns)).toEqual(before);
    expect(readlinkSync(`/proc/${before[0]}/ns/net`)).toBe(nsInode);
    expect(await handles()).toEqual(handlesBefore);
    expect(kubelet.stderr()).not.toContain('pod network ready');
    expect(kubelet.stderr()).not.toContain('container started');
    const now = podOf((await pods()).get(onA.metadata.name));
    expect(cond(now, 'Ready')?.['status']).toBe('True');
    expect((now.status as { containerStatuses?: { restartCount: number }[] }).containerStatuses?.[0]?.restartCount).toBe(0);
  }, 60_000);

  it('deleting a gateway with its grace period stops it, runs CNI DEL (handle released), removes its namespace and record; the pending one takes its place', async () => {
    const all = await pods();
    const victim = [...all.values()].find((s) => podOf(s).spec.nodeName === 'node-a' && podOf(s).metadata.namespace === 'calico-egress')!;
    const p = podOf(victim);
    const ns = netnsOf(p);
    const handle = `k8s-pod-network.${podSandboxId('calico-egress', p.metadata.name, p.metadata.uid!)}`;
    const gatewayPids = pidsIn(ns);
    expect(await handles()).toContain(handle);
    // What the operator writes to delete a scheduled pod.
    const deleting = { ...victim.value, metadata: { ...(victim.value['metadata'] as object), deletionTimestamp: new Date(Date.now() + 5_000).toISOString(), deletionGracePeriodSeconds: 5 } };
    await store.commit([{ op: 'update', key: victim.key, value: deleting, expectedRevision: victim.modRevision }]);
    await waitFor('record deleted', async () => !(await pods()).has(p.metadata.name));
    expect(ourNamespaces()).not.toContain(ns);
    expect(await handles()).not.toContain(handle);
    for (const pid of gatewayPids) expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')).toBe(false);
    const kubelet = procs.get('kubelet-node-a')!;
    expect(kubelet.stderr()).toContain('pod terminating');
    // The freed aws-secondary-ipv4 lets the third gateway in, on that node.
    const third = await waitFor('the pending gateway bound to node-a', async () => {
      const all = await pods();
      return gatewayNames.map((n) => podOf(all.get(n))).find((x) => x !== undefined && x.metadata.name !== p.metadata.name && x.spec.nodeName === 'node-a');
    });
    expect(cond(third, 'PodScheduled')?.['status']).toBe('True');
    await waitFor('the new gateway Ready', async () => cond(podOf((await pods()).get(third.metadata.name)), 'Ready')?.['status'] === 'True', 60_000);
  }, 120_000);

  it('the kubelet and scheduler stop cleanly; the pods stay until the lab sweeps them', async () => {
    const running = ourNamespaces().filter((n) => !NODES.some((x) => x.ns === n));
    expect(running.length).toBe(3); // two gateways and the client
    for (const name of [...procs.keys()]) await stopProc(name);
    expect(pastLogs.join('\n')).toContain('kubelet stopping; pods keep running');
    expect(ourNamespaces().filter((n) => !NODES.some((x) => x.ns === n))).toEqual(running);
  }, 60_000);
});
