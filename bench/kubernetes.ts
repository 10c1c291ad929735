/**
 * Benchmark `kubernetes`: the Kubernetes datastore beside etcd, same workload, same run:
 *
 * - watch latency p50/p99: a put through one handle until the event arrives on another handle;
 * - commits/s: sequential single-object puts, one process;
 * - CAS increments/s: get + update with expectedRevision;
 * - IPAM allocations/s with 1 and with 8 allocators at once (8 Ipam instances, each its own handle and
 *   node), pool 10.64.0.0/16 in /26 blocks. When IPAM cannot run on a backend the rows say "not measured"
 *   and the figures carry the exact error.
 *
 * Needs a control plane: `scripts/with-kube npm run bench -- kubernetes` (KUBECONFIG); without one it says
 * so in one line and exits 1. egw's CRDs (src/api/crd.ts, record-crds.ts) and the bench's own record
 * kinds are applied first with kubectl. etcd: the one of `scripts/with-etcd` (EGW_TEST_ETCD) when set,
 * otherwise one started here (bench/support/etcd.ts).
 */
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiCrds } from '../src/api/crd.js';
import type { Datastore } from '../src/datastore/contract.js';
import { EtcdDatastore } from '../src/datastore/etcd/etcd-datastore.js';
import { KubernetesDatastore } from '../src/datastore/kubernetes/kubernetes-datastore.js';
import { recordCrds } from '../src/datastore/kubernetes/record-crds.js';
import type { RecordKind } from '../src/datastore/kubernetes/resource-map.js';
import { recordPlural } from '../src/datastore/kubernetes/resource-map.js';
import { Ipam } from '../src/ipam/allocator.js';
import { errorMessage } from '../src/platform/errors.js';
import type { Benchmark, Figures } from './harness.js';
import { elapsedNs, nowNs, printTable, round } from './harness.js';
import { measureCore, type CoreFigures } from './support/datastore-core.js';
import { startBenchEtcd } from './support/etcd.js';

const COMMITS = 1_000;
const CAS = 500;
const LATENCY_SAMPLES = 200;
const ALLOCATORS = 8;
const ALLOCS_ONE = 200;
const ALLOCS_EACH = 50;
const POOL = '10.64.0.0/16';

/** The bench's own record kinds (egw.io), so that it touches nothing of egw's. */
const BENCH_KINDS: readonly RecordKind[] = ['BenchPut', 'BenchCas', 'BenchWatch'].map((k) => ({ kind: `Kb${k}`, keyed: 'cluster' as const, description: 'egw benchmark' }));
const [PUT, CAS_KIND, WATCH] = BENCH_KINDS.map((k) => k.kind) as [string, string, string];

/** Commits, CAS and cross-handle watch latency, as bench/datastore.ts measures them. */
async function measureStore(open: () => Promise<Datastore>): Promise<CoreFigures> {
  const store = await open();
  const other = await open();
  try {
    return await measureCore(store, other, { put: PUT, cas: CAS_KIND, watch: WATCH }, { commits: COMMITS, cas: CAS, latencySamples: LATENCY_SAMPLES });
  } finally {
    await other.close();
    await store.close();
  }
}

/** Allocations/s, or the exact error when IPAM cannot run on this backend. */
type IpamResult = { one: number; eight: number; conflicts: number } | { error: string };

/**
 * Seeds a pool and ALLOCATORS nodes (one object per commit: the Kubernetes datastore takes no more), then
 * times ALLOCS_ONE allocations by one allocator and ALLOCATORS × ALLOCS_EACH by ALLOCATORS at once, each
 * on its own store handle and node.
 */
async function measureIpam(open: () => Promise<Datastore>, tag: string): Promise<IpamResult> {
  const stores: Datastore[] = [];
  try {
    const seed = await open();
    stores.push(seed);
    for (let i = 0; i < ALLOCATORS; i++) {
      const name = `${tag}-node-${i}`;
      await seed.commit([{ op: 'put', key: { kind: 'Node', name }, value: { apiVersion: 'v1', kind: 'Node', metadata: { name } } }]);
    }
    const pool = `${tag}-pool`;
    await seed.commit([{ op: 'put', key: { kind: 'IPPool', name: pool }, value: { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: pool }, spec: { cidr: POOL, blockSize: 26 } } }]);
    const ipam = new Ipam({ store: seed });
    let t = nowNs();
    for (let i = 0; i < ALLOCS_ONE; i++) await ipam.allocate({ handle: `${tag}-one-${i}`, node: `${tag}-node-0`, pools: [pool] });
    const one = ALLOCS_ONE / (elapsedNs(t) / 1e9);
    const many: Ipam[] = [];
    for (let a = 0; a < ALLOCATORS; a++) {
      const s = await open();
      stores.push(s);
      many.push(new Ipam({ store: s }));
    }
    t = nowNs();
    await Promise.all(
      many.map(async (ip, a) => {
        for (let i = 0; i < ALLOCS_EACH; i++) await ip.allocate({ handle: `${tag}-w${a}-${i}`, node: `${tag}-node-${a}`, pools: [pool] });
      }),
    );
    const eight = (ALLOCATORS * ALLOCS_EACH) / (elapsedNs(t) / 1e9);
    return { one, eight, conflicts: many.reduce((n, ip) => n + ip.stats.conflictsRetried, 0) };
  } catch (err) {
    return { error: errorMessage(err) };
  } finally {
    for (const s of stores) await s.close();
  }
}

function kubectl(args: string[], input?: string): string {
  return execFileSync('kubectl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** egw's CRDs and the bench's record kinds, Established. */
function installCrds(): void {
  const items = [...apiCrds(), ...recordCrds(BENCH_KINDS)];
  kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-install', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  kubectl(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', '--all']);
}

/** Deletes what the bench stored on the API server (its kinds' objects, IPAM records, its pool and nodes). */
function cleanKube(tag: string): void {
  const records = ['IPAMBlock', 'IPAMHandle', 'BlockAffinity', 'FullBlockAffinity', ...BENCH_KINDS.map((k) => k.kind)].map((k) => `${recordPlural(k)}.egw.io`);
  for (const args of [
    ['delete', records.join(','), '--all', '--wait=false', '--ignore-not-found'],
    ['delete', 'ippools.projectcalico.org', `${tag}-pool`, '--wait=false', '--ignore-not-found'],
    ['delete', 'nodes', ...Array.from({ length: ALLOCATORS }, (_, i) => `${tag}-node-${i}`), '--wait=false', '--ignore-not-found'],
    ['delete', 'crd', ...BENCH_KINDS.map((k) => `${recordPlural(k.kind)}.egw.io`), '--wait=false', '--ignore-not-found'],
  ]) {
    try {
      kubectl(args);
    } catch {
      // best effort: the control plane of scripts/with-kube is thrown away anyway
    }
  }
}

const cell = (r: IpamResult, f: 'one' | 'eight'): number | string => ('error' in r ? 'not measured' : round(r[f]));

export const kubernetesBenchmark: Benchmark = {
  name: 'kubernetes',
  description: 'Kubernetes datastore vs etcd: watch latency, commits/s, CAS/s, IPAM allocations/s (1 and 8 allocators); needs scripts/with-kube',
  async run(): Promise<Figures> {
    if (process.env['KUBECONFIG'] === undefined || process.env['KUBECONFIG'] === '') {
      process.stderr.write('kubernetes benchmark: no KUBECONFIG: run it as scripts/with-kube npm run bench -- kubernetes\n');
      process.exit(1);
    }
    const dir = mkdtempSync(join(tmpdir(), 'egw-bench-kube-'));
    const tag = `bench-${randomBytes(3).toString('hex')}`;
    let etcd: { endpoint: string; proc: ChildProcess } | undefined;
    try {
      installCrds();
      const shared = process.env['EGW_TEST_ETCD'];
      if (shared === undefined) etcd = await startBenchEtcd(dir, 'egw-bench-kube');
      const endpoint = shared ?? etcd?.endpoint;
      if (endpoint === undefined) throw new Error('etcd could not be started (is etcd on PATH?)');
      const prefix = `/egw-bench-kube-${process.pid}/`;
      const openEtcd = (): Promise<Datastore> => EtcdDatastore.open({ endpoints: [endpoint], prefix });
      const openKubeCore = (): Promise<Datastore> => KubernetesDatastore.open({ extraRecordKinds: BENCH_KINDS, kinds: BENCH_KINDS.map((k) => k.kind) });
      // IPAM opens the store as any egw program does: every kind of the map.
      const openKube = (): Promise<Datastore> => KubernetesDatastore.open();

      const kube = await measureStore(openKubeCore);
      const etcdCore = await measureStore(openEtcd);
      const kubeIpam = await measureIpam(openKube, tag);
      const etcdIpam = await measureIpam(openEtcd, tag);
      const s = await openEtcd();
      await (s as EtcdDatastore).deleteAll();
      await s.close();

      printTable(
        'Kubernetes datastore vs etcd (same workload, same run)',
        ['measure', 'kubernetes', 'etcd', 'kubernetes / etcd'],
        [
          ['watch latency p50 (ms)', round(kube.watchP50Ms), round(etcdCore.watchP50Ms), round(kube.watchP50Ms / etcdCore.watchP50Ms)],
          ['watch latency p99 (ms)', round(kube.watchP99Ms), round(etcdCore.watchP99Ms), round(kube.watchP99Ms / etcdCore.watchP99Ms)],
          ['commits/s (1 put each)', round(kube.commitsPerSec), round(etcdCore.commitsPerSec), round(kube.commitsPerSec / etcdCore.commitsPerSec)],
          ['CAS increments/s (get + update)', round(kube.casPerSec), round(etcdCore.casPerSec), round(kube.casPerSec / etcdCore.casPerSec)],
          [`IPAM allocations/s, 1 allocator`, cell(kubeIpam, 'one'), cell(etcdIpam, 'one'), 'error' in kubeIpam || 'error' in etcdIpam ? '' : round(kubeIpam.one / etcdIpam.one)],
          [`IPAM allocations/s, ${ALLOCATORS} allocators`, cell(kubeIpam, 'eight'), cell(etcdIpam, 'eight'), 'error' in kubeIpam || 'error' in etcdIpam ? '' : round(kubeIpam.eight / etcdIpam.eight)],
        ],
      );
      for (const [name, r] of [['kubernetes', kubeIpam], ['etcd', etcdIpam]] as const) if ('error' in r) console.log(`IPAM on ${name} not measured: ${r.error}`);

      const figures: Figures = {
        kubeWatchMsP50: round(kube.watchP50Ms),
        kubeWatchMsP99: round(kube.watchP99Ms),
        kubeCommitsPerSec: round(kube.commitsPerSec),
        kubeCasPerSec: round(kube.casPerSec),
        etcdWatchMsP50: round(etcdCore.watchP50Ms),
        etcdWatchMsP99: round(etcdCore.watchP99Ms),
        etcdCommitsPerSec: round(etcdCore.commitsPerSec),
        etcdCasPerSec: round(etcdCore.casPerSec),
        commitsRatioEtcdToKube: round(etcdCore.commitsPerSec / kube.commitsPerSec),
        casRatioEtcdToKube: round(etcdCore.casPerSec / kube.casPerSec),
      };
      for (const [name, r] of [['kube', kubeIpam], ['etcd', etcdIpam]] as const) {
        if ('error' in r) figures[`${name}Ipam`] = `not measured: ${r.error}`;
        else Object.assign(figures, { [`${name}AllocsPerSec1`]: round(r.one), [`${name}AllocsPerSec${ALLOCATORS}`]: round(r.eight), [`${name}AllocConflicts${ALLOCATORS}`]: r.conflicts });
      }
      return figures;
    } finally {
      cleanKube(tag);
      if (etcd !== undefined) {
        const exited = new Promise((r) => etcd!.proc.once('exit', r));
        etcd.proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
