/**
 * The multi-process IPAM scenarios, shared by the per-backend tests (concurrency.test.ts, kill.test.ts,
 * kubernetes.test.ts): 8 allocating processes racing on one pool, and rounds of killed churning processes
 * followed by check and repair.
 */
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';
import type { Datastore } from '../../src/datastore/contract.js';
import { runIpamGcPass } from '../../src/ipam/gc.js';
import { analyzeIpam, readIpamSnapshot } from '../../src/ipam/inspect.js';
import { IPAM_BLOCK_KIND, IPAM_HANDLE_KIND } from '../../src/ipam/records.js';
import { EGW_CLI } from '../support/dist.js';
import { node, pool, seed, seeded } from './helpers.js';
import type { Worker } from './workers.js';
import { go, killAll, startWorker } from './workers.js';

export const PROCESSES = 8;
export const EACH = 500;

/** Every worker started; the test files kill what is left in afterAll. */
export const workers: Worker[] = [];

/**
 * 8 processes × 500 allocations on `spec` (nodes `PREFIX-0..3`, pool /20 in /26 blocks): 4,000 distinct
 * addresses, every one recorded, no finding afterwards. Logs the time and the conflicts retried.
 */
export async function race(spec: string, store: Datastore, prefix = 'node', poolName = 'race'): Promise<void> {
  await seed(store, ...[0, 1, 2, 3].map((i) => node(`${prefix}-${i}`)), pool(poolName, { cidr: '10.50.0.0/20', blockSize: 26 }));
  const mine = Array.from({ length: PROCESSES }, (_, id) => startWorker([spec, String(id), `${prefix}-${id % 4}`, String(EACH), 'alloc']));
  workers.push(...mine);
  await Promise.all(mine.map((w) => w.ready));
  go(mine);
  const codes = await Promise.all(mine.map((w) => w.exited));
  expect(codes, mine.map((w) => w.stderr()).join('\n')).toEqual(Array<number>(PROCESSES).fill(0));
  const stats = mine.map((w) => JSON.parse(w.lines.at(-1)!) as { conflicts: number; ms: number });
  const ms = Math.max(...stats.map((x) => x.ms));
  console.log(`${store.location}: ${PROCESSES}×${EACH} in ${ms} ms (${Math.round((PROCESSES * EACH * 1000) / ms)} allocations/s), ${stats.reduce((a, x) => a + x.conflicts, 0)} conflicts retried`);
  const handles = (await store.list(IPAM_HANDLE_KIND)).items.map((h) => (h.value as { ip: string }).ip);
  expect(handles).toHaveLength(PROCESSES * EACH);
  expect(new Set(handles).size).toBe(PROCESSES * EACH);
  let recorded = 0;
  for (const b of (await store.list(IPAM_BLOCK_KIND)).items) recorded += Object.keys((b.value as { allocations: object }).allocations).length;
  expect(recorded).toBe(PROCESSES * EACH);
  expect(analyzeIpam(await readIpamSnapshot(store))).toEqual([]);
}


export function cli(path: string, ...args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, [EGW_CLI, '--datastore', path, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout + r.stderr };
}

/**
 * Rounds of: start 3 churning workers on `spec`, kill them at a random moment, then check and repair.
 * `cliSpec`: the datastore the CLI opens (undefined: repair in-process, for the single-object wrapper,
 * which the CLI cannot open).
 */
export async function killRounds(spec: string, store: Datastore, cliSpec: string | undefined, rounds: number, prefix: string, poolName: string): Promise<void> {
  const atomic = store.capabilities.atomicMultiKey;
  // A small pool: the workers claim, fill, release and borrow blocks while being killed.
  await seed(store, node(`${prefix}0`), node(`${prefix}1`), pool(poolName, { cidr: '10.60.0.0/24', blockSize: 28 }));
  const random = seeded(42);
  for (let round = 0; round < rounds; round++) {
    const mine = [0, 1, 2].map((id) => startWorker([spec, `${round}${id}`, `${prefix}${id % 2}`, '0', 'churn']));
    workers.push(...mine);
    await Promise.all(mine.map((w) => w.ready));
    go(mine);
    // Let them work for a random while (and make sure each committed something), then kill them all.
    await new Promise((r) => setTimeout(r, 150 + Math.floor(random() * 600)));
    for (let i = 0; i < 100 && mine.some((w) => w.lines.length === 0); i++) await new Promise((r) => setTimeout(r, 20));
    killAll(mine);
    await Promise.all(mine.map((w) => w.exited));

    // No duplicate: every address recorded once, every handle's address distinct.
    const ips = (await store.list(IPAM_HANDLE_KIND)).items.map((h) => (h.value as { ip: string }).ip);
    expect(new Set(ips).size).toBe(ips.length);
    let recorded = 0;
    const blockIps = new Set<string>();
    for (const b of (await store.list(IPAM_BLOCK_KIND)).items) {
      const v = b.value as { cidr: string; allocations: object };
      for (const ord of Object.keys(v.allocations)) blockIps.add(`${v.cidr}+${ord}`);
      recorded += Object.keys(v.allocations).length;
    }
    expect(blockIps.size).toBe(recorded);
    if (atomic) expect(recorded).toBe(ips.length);

    const findings = cliSpec === undefined ? analyzeIpam(await readIpamSnapshot(store)) : checkJson(cliSpec);
    const kinds = new Set(findings.map((f) => `${f.kind}:${f.repairable}`));
    const allowed = atomic ? ['leak:true'] : ['leak:true', 'orphan-allocation:true', 'orphan-handle:true', 'misfiled-affinity:true', 'stale-affinity:true'];
    expect([...kinds].every((k) => allowed.includes(k)), JSON.stringify(findings)).toBe(true);

    if (cliSpec === undefined) {
      await runIpamGcPass(store, { now: Date.now(), graceMs: 0 });
    } else {
      const gc = cli(cliSpec, 'ipam', 'gc', '--grace', '0s');
      expect(gc.code, gc.out).toBe(0);
      if (atomic) expect(gc.out).toContain(`gc: ${ips.length} released`);
      const after = cli(cliSpec, 'ipam', 'check');
      expect(after, after.out).toEqual({ code: 0, out: 'IPAM is consistent: no leaks, no inconsistencies\n' });
    }
    expect(analyzeIpam(await readIpamSnapshot(store))).toEqual([]);
    expect((await store.list(IPAM_HANDLE_KIND)).items).toEqual([]);
  }
}

function checkJson(cliSpec: string): { kind: string; repairable: boolean }[] {
  const check = cli(cliSpec, 'ipam', 'check', '-o', 'json');
  const findings = JSON.parse(check.out.slice(0, check.out.lastIndexOf(']') + 1)) as { kind: string; repairable: boolean }[];
  expect(check.code, check.out).toBe(findings.length > 0 ? 1 : 0);
  return findings;
}

