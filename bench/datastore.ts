/**
 * Benchmark `datastore`: the two backends side by side on the same workload.
 *
 * - commits/s: sequential single-op commits (`put`), and CAS increments (get + update with
 *   expectedRevision);
 * - watch latency: from just before a commit on one handle to the event on another handle (for SQLite a
 *   second handle takes the cross-process path: fs.watch on the WAL plus polling);
 * - list: one list of 10,000 resources;
 * - 8 processes at once (bench/datastore-worker.ts): puts to their own keys, and CAS increments of one
 *   shared key (the worst case of contention), with the conflicts they retried.
 *
 * etcd: the one of `scripts/with-etcd` (EGW_TEST_ETCD) when set, otherwise one started here on a free
 * loopback port with a temp data dir (removed afterwards); skipped when `etcd` is not installed.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Datastore } from '../src/datastore/contract.js';
import { EtcdDatastore } from '../src/datastore/etcd/etcd-datastore.js';
import { SqliteDatastore } from '../src/datastore/sqlite/sqlite-datastore.js';
import type { Benchmark, Figures } from './harness.js';
import { nowNs, elapsedNs, printTable, round, summarize } from './harness.js';
import { measureCore } from './support/datastore-core.js';
import { startBenchEtcd } from './support/etcd.js';

const COMMITS = 2_000;
const CAS = 1_000;
const LATENCY_SAMPLES = 200;
const LIST_SIZE = 10_000;
const PROCESSES = 8;
const PER_PROCESS_PUTS = 250;
const PER_PROCESS_CAS = 100;

/**
 * Runs PROCESSES workers against `spec`, started together; returns commits/s over the wall time from
 * "go" to the last worker done, and the conflicts they retried.
 */
async function processes(spec: string, mode: 'put' | 'cas', count: number): Promise<{ perSec: number; conflicts: number }> {
  const worker = fileURLToPath(new URL('./datastore-worker.js', import.meta.url));
  const procs = Array.from({ length: PROCESSES }, (_, id) =>
    spawn(process.execPath, [worker, spec, String(id), String(count), mode], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  try {
    const lines = procs.map((p) => {
      const rl = createInterface({ input: p.stdout });
      const ready = new Promise<void>((resolve) => rl.once('line', () => resolve()));
      const result = ready.then(
        () =>
          new Promise<{ ms: number; conflicts: number }>((resolve, reject) => {
            rl.once('line', (l) => resolve(JSON.parse(l) as { ms: number; conflicts: number }));
            p.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
          }),
      );
      return { ready, result };
    });
    await Promise.all(lines.map((l) => l.ready));
    const start = nowNs();
    for (const p of procs) p.stdin.write('go\n');
    const results = await Promise.all(lines.map((l) => l.result));
    const seconds = elapsedNs(start) / 1e9;
    return { perSec: (PROCESSES * count) / seconds, conflicts: results.reduce((a, r) => a + r.conflicts, 0) };
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  }
}

interface Result {
  commitsPerSec: number;
  casPerSec: number;
  watchP50Ms: number;
  watchP99Ms: number;
  list10kMs: number;
}

async function measure(open: () => Promise<Datastore>): Promise<Result> {
  const store = await open();
  const other = await open();
  try {
    const core = await measureCore(store, other, { put: 'BenchPut', cas: 'BenchCas', watch: 'BenchWatch' }, { commits: COMMITS, cas: CAS, latencySamples: LATENCY_SAMPLES });

    for (let i = 0; i < LIST_SIZE; i += 100) {
      await store.commit(
        Array.from({ length: 100 }, (_, j) => ({
          op: 'put' as const,
          key: { kind: 'BenchList', namespace: `ns-${(i + j) % 10}`, name: `r-${i + j}` },
          value: { i: i + j, labels: { app: 'web', tier: 'frontend' }, spec: { cidr: '10.0.0.0/24' } },
        })),
      );
    }
    const listTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const s = nowNs();
      const l = await other.list('BenchList');
      if (l.items.length !== LIST_SIZE) throw new Error(`listed ${l.items.length}`);
      listTimes.push(elapsedNs(s) / 1e6);
    }
    return { ...core, list10kMs: summarize(listTimes).p50 };
  } finally {
    await other.close();
    await store.close();
  }
}



export const datastoreBenchmark: Benchmark = {
  name: 'datastore',
  description: 'SQLite vs etcd backend: commits/s, CAS/s, cross-handle watch latency, list of 10k',
  async run(): Promise<Figures> {
    const dir = mkdtempSync(join(tmpdir(), 'egw-bench-datastore-'));
    let etcd: { endpoint: string; proc: ChildProcess } | undefined;
    try {
      const sqlite = await measure(() => SqliteDatastore.open(join(dir, 'bench.db')));
      const sqlitePut8 = await processes(join(dir, 'procs.db'), 'put', PER_PROCESS_PUTS);
      const sqliteCas8 = await processes(join(dir, 'procs.db'), 'cas', PER_PROCESS_CAS);
      const shared = process.env['EGW_TEST_ETCD'];
      if (shared === undefined) etcd = await startBenchEtcd(dir);
      const endpoint = shared ?? etcd?.endpoint;
      const prefix = `/egw-bench-${process.pid}/`;
      const etcdResult =
        endpoint === undefined ? undefined : await measure(() => EtcdDatastore.open({ endpoints: [endpoint], prefix }));
      const etcdPut8 = endpoint === undefined ? undefined : await processes(`etcd://${endpoint}${prefix}`, 'put', PER_PROCESS_PUTS);
      const etcdCas8 = endpoint === undefined ? undefined : await processes(`etcd://${endpoint}${prefix}`, 'cas', PER_PROCESS_CAS);
      if (endpoint !== undefined) {
        const s = await EtcdDatastore.open({ endpoints: [endpoint], prefix });
        await s.deleteAll();
        await s.close();
      }
      const rows: (string | number)[][] = [
        ['commits/s (1 put each)', sqlite.commitsPerSec, etcdResult?.commitsPerSec ?? NaN],
        ['CAS increments/s (get + update)', sqlite.casPerSec, etcdResult?.casPerSec ?? NaN],
        ['watch latency p50 (ms)', sqlite.watchP50Ms, etcdResult?.watchP50Ms ?? NaN],
        ['watch latency p99 (ms)', sqlite.watchP99Ms, etcdResult?.watchP99Ms ?? NaN],
        [`list ${LIST_SIZE} (ms, p50 of 5)`, sqlite.list10kMs, etcdResult?.list10kMs ?? NaN],
        [`${PROCESSES} processes: puts/s`, sqlitePut8.perSec, etcdPut8?.perSec ?? NaN],
        [`${PROCESSES} processes: CAS on one key/s`, sqliteCas8.perSec, etcdCas8?.perSec ?? NaN],
        [`${PROCESSES} processes: CAS conflicts retried`, sqliteCas8.conflicts, etcdCas8?.conflicts ?? NaN],
      ];
      printTable('datastore backends (same workload, same run)', ['measure', 'sqlite', 'etcd'], rows);
      const figures: Figures = {
        sqliteCommitsPerSec: round(sqlite.commitsPerSec),
        sqliteCasPerSec: round(sqlite.casPerSec),
        sqliteWatchMsP50: round(sqlite.watchP50Ms),
        sqliteWatchMsP99: round(sqlite.watchP99Ms),
        sqliteList10kMs: round(sqlite.list10kMs),
        sqlitePutsPerSec8Procs: round(sqlitePut8.perSec),
        sqliteCasPerSec8Procs: round(sqliteCas8.perSec),
        sqliteCasConflicts8Procs: sqliteCas8.conflicts,
        etcd: etcdResult !== undefined,
      };
      if (etcdResult !== undefined) {
        Object.assign(figures, {
          etcdCommitsPerSec: round(etcdResult.commitsPerSec),
          etcdCasPerSec: round(etcdResult.casPerSec),
          etcdWatchMsP50: round(etcdResult.watchP50Ms),
          etcdWatchMsP99: round(etcdResult.watchP99Ms),
          etcdList10kMs: round(etcdResult.list10kMs),
          etcdPutsPerSec8Procs: round(etcdPut8?.perSec ?? NaN),
          etcdCasPerSec8Procs: round(etcdCas8?.perSec ?? NaN),
          etcdCasConflicts8Procs: etcdCas8?.conflicts ?? -1,
          commitsRatioSqliteToEtcd: round(sqlite.commitsPerSec / etcdResult.commitsPerSec),
        });
      }
      return figures;
    } finally {
      if (etcd !== undefined) {
        const exited = new Promise((r) => etcd!.proc.once('exit', r));
        etcd.proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
