/**
 * Benchmark `ipam`: allocations per second with one process and with 8 processes at once, on SQLite and on
 * etcd, in a pool of 64k addresses (/16, blocks of /26), with the duplicates found (must be 0) and the
 * conflicts retried; and the cost of one allocation in a pool with 1k, 10k and 100k addresses already
 * allocated — all on the measuring node, the worst case for its affinity index (must stay flat). The 8
 * processes run once as 8 nodes (no shared block) and once all on one node (every commit contends).
 *
 * etcd: the one of `scripts/with-etcd` (EGW_TEST_ETCD) when set, otherwise one started here on a free
 * loopback port with a temp data dir (removed afterwards); skipped when `etcd` is not installed.
 *
 * The same file is the 8-process worker: `node dist/bench/ipam.js --ipam-worker SPEC ID NODE COUNT`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Datastore, WriteOp } from '../src/datastore/contract.js';
import { openDatastore } from '../src/datastore/open.js';
import { Ipam } from '../src/ipam/allocator.js';
import { formatIpv4, formatIpv4Net, ipv4Net, parseIpv4Net } from '../src/platform/ipv4.js';
import type { BlockValue, HandleValue } from '../src/ipam/records.js';
import { affinityKey, blockKey, handleKey, IPAM_BLOCK_KIND, IPAM_HANDLE_KIND, json } from '../src/ipam/records.js';
import type { Benchmark, Figures } from './harness.js';
import { elapsedNs, nowNs, printTable, round, summarize } from './harness.js';
import { startBenchEtcd } from './support/etcd.js';

const PROCESSES = 8;
const POOL_64K = '10.64.0.0/16';
const LEVELS = [1_000, 10_000, 100_000] as const;
const SAMPLES_PER_LEVEL = 200;

interface Sizes {
  one: number;
  each: number;
}
const SIZES: Record<'sqlite' | 'etcd', Sizes> = { sqlite: { one: 2_000, each: 1_000 }, etcd: { one: 400, each: 150 } };

async function seedBase(store: Datastore, cidr: string): Promise<void> {
  const ops: WriteOp[] = Array.from({ length: PROCESSES }, (_, i) => ({
    op: 'put',
    key: { kind: 'Node', name: `node-${i}` },
    value: { apiVersion: 'v1', kind: 'Node', metadata: { name: `node-${i}` } },
  }));
  ops.push({ op: 'put', key: { kind: 'IPPool', name: 'bench' }, value: { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'bench' }, spec: { cidr, blockSize: 26 } } });
  await store.commit(ops);
}

/** Allocations per second of one in-process allocator. */
async function oneProcess(spec: string, count: number): Promise<{ perSec: number; conflicts: number }> {
  const store = await openDatastore(spec);
  try {
    await seedBase(store, POOL_64K);
    const ipam = new Ipam({ store });
    const start = nowNs();
    for (let i = 0; i < count; i++) await ipam.allocate({ handle: `one-${i}`, node: 'node-0' });
    return { perSec: count / (elapsedNs(start) / 1e9), conflicts: ipam.stats.conflictsRetried };
  } finally {
    await store.close();
  }
}

/** 8 worker processes, each its own node, started together; the duplicates found afterwards. */
async function eightProcesses(spec: string, each: number, sameNode = false): Promise<{ perSec: number; conflicts: number; duplicates: number }> {
  const setup = await openDatastore(spec);
  try {
    await seedBase(setup, POOL_64K);
  } finally {
    await setup.close();
  }
  const self = fileURLToPath(import.meta.url);
  const procs: ChildProcess[] = Array.from({ length: PROCESSES }, (_, id) =>
    spawn(process.execPath, [self, '--ipam-worker', spec, String(id), sameNode ? 'node-0' : `node-${id}`, String(each)], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  try {
    const lines = procs.map((p) => {
      const rl = createInterface({ input: p.stdout! });
      const ready = new Promise<void>((resolve) => rl.once('line', () => resolve()));
      const result = ready.then(
        () =>
          new Promise<{ conflicts: number }>((resolve, reject) => {
            rl.once('line', (l) => resolve(JSON.parse(l) as { conflicts: number }));
            p.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
          }),
      );
      return { ready, result };
    });
    await Promise.all(lines.map((l) => l.ready));
    const start = nowNs();
    for (const p of procs) p.stdin!.write('go\n');
    const results = await Promise.all(lines.map((l) => l.result));
    const seconds = elapsedNs(start) / 1e9;
    const store = await openDatastore(spec);
    let duplicates: number;
    try {
      duplicates = await countDuplicates(store, PROCESSES * each);
    } finally {
      await store.close();
    }
    return { perSec: (PROCESSES * each) / seconds, conflicts: results.reduce((a, r) => a + r.conflicts, 0), duplicates };
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  }
}

/** Addresses handed out more than once, or handles missing: expected − distinct addresses recorded. */
async function countDuplicates(store: Datastore, expected: number): Promise<number> {
  const ips = (await store.list(IPAM_HANDLE_KIND)).items.map((h) => (h.value as { ip: string }).ip);
  const recorded = new Set<string>();
  let inBlocks = 0;
  for (const b of (await store.list(IPAM_BLOCK_KIND)).items) {
    const v = b.value as unknown as BlockValue;
    const net = parseIpv4Net(v.cidr, { hostBits: 'clear', bareAddress: true })!;
    for (const ord of Object.keys(v.allocations)) {
      inBlocks++;
      recorded.add(formatIpv4(net.first + Number(ord)));
    }
  }
  return Math.max(expected - new Set(ips).size, inBlocks - recorded.size, ips.length - new Set(ips).size);
}

/**
 * Fills whole /26 blocks of `pool`, affine to node-0 (filed as full), up to `upTo` addresses, in commits
 * of 128 records: the state 100k sequential allocations by node-0 would leave, written directly.
 */
async function prefill(store: Datastore, pool: string, from: number, upTo: number): Promise<void> {
  const poolNet = parseIpv4Net(pool, { hostBits: 'clear', bareAddress: true })!;
  let ops: WriteOp[] = [];
  const flush = async (): Promise<void> => {
    if (ops.length > 0) await store.commit(ops);
    ops = [];
  };
  for (let first = from; first < upTo; first += 64) {
    const net = ipv4Net(poolNet.first + first, 26);
    const allocations: Record<string, string> = {};
    const handles: WriteOp[] = [];
    for (let ord = 0; ord < 64 && first + ord < upTo; ord++) {
      const handle = `pre-${first + ord}`;
      allocations[String(ord)] = handle;
      const value: HandleValue = { handle, ip: formatIpv4(net.first + ord), block: formatIpv4Net(net), pool, poolName: 'bench', node: 'node-0', use: 'Workload', owner: { kind: 'None' }, allocatedAt: new Date().toISOString() };
      handles.push({ op: 'put', key: handleKey(handle), value: json(value) });
    }
    const block: BlockValue = { cidr: formatIpv4Net(net), pool, affinity: 'node-0', allocations, next: 0 };
    const full = Object.keys(allocations).length === 64;
    const group: WriteOp[] = [
      { op: 'put', key: blockKey(poolNet, net), value: json(block) },
      { op: 'put', key: affinityKey('node-0', net, full), value: { node: 'node-0', block: block.cidr, pool } },
      ...handles,
    ];
    if (ops.length + group.length > 128) await flush();
    ops.push(...group);
  }
  await flush();
}

/** Mean ms of one allocation at 1k, 10k and 100k addresses already allocated (on node-0). */
async function allocationCost(spec: string): Promise<number[]> {
  const store = await openDatastore(spec);
  const pool = '10.128.0.0/14'; // 262,144 addresses: 100k is 38 % of it
  try {
    await seedBase(store, pool);
    const ipam = new Ipam({ store });
    const out: number[] = [];
    let filled = 0;
    for (const level of LEVELS) {
      await prefill(store, pool, filled, level);
      filled = level;
      // Release what the previous level's samples took, so each level measures at its own fill.
      for (let i = 0; i < SAMPLES_PER_LEVEL; i++) await ipam.releaseByHandle(`sample-${i}`);
      // A few unrecorded allocations first: the prefill's writes (WAL, caches) settle.
      for (let i = 0; i < 20; i++) await ipam.allocate({ handle: `warm-${level}-${i}`, node: 'node-0' });
      const samples: number[] = [];
      for (let i = 0; i < SAMPLES_PER_LEVEL; i++) {
        const start = nowNs();
        await ipam.allocate({ handle: `sample-${i}`, node: 'node-0' });
        samples.push(elapsedNs(start) / 1e6);
      }
      out.push(summarize(samples).mean);
    }
    return out;
  } finally {
    await store.close();
  }
}



export const ipamBenchmark: Benchmark = {
  name: 'ipam',
  description: 'IPAM allocations/s (1 and 8 processes, SQLite and etcd), duplicates, conflicts, cost at 1k/10k/100k allocated',
  async run(): Promise<Figures> {
    const dir = mkdtempSync(join(tmpdir(), 'egw-bench-ipam-'));
    const shared = process.env['EGW_TEST_ETCD'];
    const own = shared === undefined ? await startBenchEtcd(dir, 'egw-bench-ipam') : undefined;
    const etcd = shared ?? own?.endpoint;
    try {
      let n = 0;
      const sqlite = (): string => join(dir, `s${n++}.db`);
      const etcdSpec = (): string => `etcd://${etcd}/egw-bench-ipam-${randomBytes(4).toString('hex')}`;

      const s1 = await oneProcess(sqlite(), SIZES.sqlite.one);
      const s8 = await eightProcesses(sqlite(), SIZES.sqlite.each);
      const s8same = await eightProcesses(sqlite(), SIZES.sqlite.each, true);
      const e1 = etcd === undefined ? undefined : await oneProcess(etcdSpec(), SIZES.etcd.one);
      const e8 = etcd === undefined ? undefined : await eightProcesses(etcdSpec(), SIZES.etcd.each);
      const e8same = etcd === undefined ? undefined : await eightProcesses(etcdSpec(), SIZES.etcd.each, true);
      const costSqlite = await allocationCost(sqlite());
      const costEtcd = etcd === undefined ? undefined : await allocationCost(etcdSpec());

      printTable(
        `allocations per second, pool ${POOL_64K} (blocks /26); 8 processes = 8 nodes started together`,
        ['backend', '1 process/s', '8 processes/s', 'ratio 8:1', 'conflicts retried (8)', 'duplicates (8)', '8 on one node/s', 'conflicts (one node)', 'duplicates (one node)'],
        [
          ['SQLite', round(s1.perSec), round(s8.perSec), round(s8.perSec / s1.perSec), s8.conflicts, s8.duplicates, round(s8same.perSec), s8same.conflicts, s8same.duplicates],
          ...(e1 === undefined || e8 === undefined || e8same === undefined
            ? []
            : [['etcd', round(e1.perSec), round(e8.perSec), round(e8.perSec / e1.perSec), e8.conflicts, e8.duplicates, round(e8same.perSec), e8same.conflicts, e8same.duplicates] as const]),
        ],
      );
      printTable(
        `cost of one allocation (mean of ${SAMPLES_PER_LEVEL}, ms) with N addresses already allocated on the same node, pool /14`,
        ['backend', ...LEVELS.map((l) => `${l / 1000}k`), 'ratio 100k:1k'],
        [
          ['SQLite', ...costSqlite.map((c) => round(c)), round(costSqlite[2]! / costSqlite[0]!)],
          ...(costEtcd === undefined ? [] : [['etcd', ...costEtcd.map((c) => round(c)), round(costEtcd[2]! / costEtcd[0]!)]]),
        ],
      );
      const figures: Figures = {
        allocsPerSec1Sqlite: round(s1.perSec),
        allocsPerSec8Sqlite: round(s8.perSec),
        duplicates: s8.duplicates + s8same.duplicates + (e8?.duplicates ?? 0) + (e8same?.duplicates ?? 0),
        conflictsRetried: s8.conflicts + (e8?.conflicts ?? 0),
        conflictsRetriedSqlite: s8.conflicts,
        allocsPerSec8OneNodeSqlite: round(s8same.perSec),
        conflictsRetriedOneNodeSqlite: s8same.conflicts,
        allocMs1k: round(costSqlite[0]!),
        allocMs10k: round(costSqlite[1]!),
        allocMs100k: round(costSqlite[2]!),
      };
      if (e1 !== undefined && e8 !== undefined && costEtcd !== undefined) {
        Object.assign(figures, {
          allocsPerSec1Etcd: round(e1.perSec),
          allocsPerSec8Etcd: round(e8.perSec),
          conflictsRetriedEtcd: e8.conflicts,
          allocsPerSec8OneNodeEtcd: round(e8same!.perSec),
          conflictsRetriedOneNodeEtcd: e8same!.conflicts,
          allocMs1kEtcd: round(costEtcd[0]!),
          allocMs10kEtcd: round(costEtcd[1]!),
          allocMs100kEtcd: round(costEtcd[2]!),
        });
      } else figures['etcd'] = 'skipped: etcd not installed';
      return figures;
    } finally {
      own?.proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** Worker mode: allocate COUNT addresses on NODE after a "go" line; print the conflicts retried. */
async function worker([spec, id, node, count]: string[]): Promise<void> {
  const store = await openDatastore(spec);
  const ipam = new Ipam({ store });
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', () => {
      rl.close();
      process.stdin.destroy();
      resolve();
    });
  });
  for (let i = 0; i < Number(count); i++) await ipam.allocate({ handle: `w${id}-${i}`, node: node! });
  process.stdout.write(`${JSON.stringify({ conflicts: ipam.stats.conflictsRetried })}\n`);
  await store.close();
}

if (process.argv[2] === '--ipam-worker') {
  worker(process.argv.slice(3)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
