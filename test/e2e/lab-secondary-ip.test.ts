import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import { ExecShell } from '../../src/platform/shell.js';
import { EGW_CLI, REPO } from '../support/dist.js';
import { sweepWorld } from '../../src/lab/world.js';
import { runPrefix, sweepDeadRuns } from './support/run-prefix.js';

// The Secondary-IP-per-workload scenario, started by an `up` that is killed half-way (a crash), then by
// a second `up` that must clean up and succeed; verify; status (capacity of the mode); down without
// leftovers. When EGW_TEST_ETCD is set (scripts/test runs a throwaway etcd), the lab runs on that etcd
// through the relay, and down must leave none of its keys (EGW_LAB_TEST_ETCD=0 opts out). Namespaces
// (and etcd keys) prefixed "sip<pid>": unique per run, so a second suite beside this one never meets them.
const PREFIX = runPrefix('sip');
const shell = new ExecShell();
const stateRoot = mkdtempSync(join(tmpdir(), 'egw-lab-sip-'));
const STATE = join(stateRoot, 'lab');
const env: Record<string, string | undefined> = { ...process.env, EGW_LAB_DIR: STATE };
delete env['EGW_DATASTORE'];
const SCENARIO = join(REPO, 'examples/lab/secondary-ip.yaml');
const etcd = process.env['EGW_LAB_TEST_ETCD'] === '0' ? undefined : process.env['EGW_TEST_ETCD'];
const KEY_PREFIX = `/egw-lab-test-${PREFIX}/`;
const datastore = etcd === undefined ? [] : ['--datastore', `etcd://${etcd}${KEY_PREFIX.replace(/\/$/, '')}`];

function egw(args: string[], killAfter?: (out: string) => boolean): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [EGW_CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (killAfter?.(out) === true) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, err });
    });
  });
}

const lab = (command: string, ...args: string[]): string[] => ['lab', command, '--prefix', PREFIX, ...args];

async function namespaces(): Promise<string[]> {
  return (await shell.run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${PREFIX}-`));
}

beforeAll(async () => {
  await egw(lab('down'));
  await sweepDeadRuns(PREFIX, (dead) => sweepWorld(shell, dead));
}, 60_000);

afterAll(async () => {
  await egw(lab('down'));
  rmSync(stateRoot, { recursive: true, force: true });
}, 60_000);

describe('egw lab, Secondary-IP scenario, after a crashed up', () => {
  it('an up killed half-way leaves leftovers that the next up removes', async () => {
    const killed = await egw([...lab('up', '--scenario', SCENARIO), ...datastore], (out) => out.includes('started '));
    expect(killed.code).not.toBe(0);
    expect((await namespaces()).length).toBeGreaterThan(0);
    const r = await egw([...lab('up', '--scenario', SCENARIO), ...datastore]);
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(r.out).toContain('removing the leftovers of an earlier lab');
    expect(r.out).toMatch(/lab reference-secondary-ip is up in/);
  }, 300_000);

  it('verify: every pair OK', async () => {
    const r = await egw(lab('verify'));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/9\/9 pairs OK/);
    expect(r.out).toMatch(/203\.0\.113\.[78]/);
  }, 60_000);

  it('status: shared ENIs, capacity (ENIs − 1) × (addresses per ENI − 1) = 22 per t3.large', async () => {
    const r = await egw(lab('status', '-o', 'json'));
    expect(r.code, r.err).toBe(0);
    const tables = (JSON.parse(r.out) as { tables: { title: string; rows: string[][] }[] }).tables;
    const nodes = tables.find((t) => t.title === 'NODES')!.rows;
    const gateways = tables.find((t) => t.title === 'GATEWAYS')!.rows;
    for (const n of nodes) {
      const onNode = gateways.filter((g) => g[2] === n[0]);
      expect(n[5]).toBe(`${onNode.length}/22`);
      // One shared secondary ENI per node that hosts gateways, whatever their number.
      expect(n[4]).toBe(`${onNode.length === 0 ? 1 : 2}/3`);
      expect(new Set(onNode.map((g) => g[6])).size).toBeLessThanOrEqual(1);
    }
  }, 60_000);

  it('down leaves nothing', async () => {
    expect((await egw(lab('down'))).code).toBe(0);
    expect(await namespaces()).toEqual([]);
    expect(existsSync(STATE)).toBe(false);
    const ps = await shell.run(['ps', '-eo', 'args=']);
    expect(ps.stdout.split('\n').filter((l) => l.includes(STATE))).toEqual([]);
    if (etcd !== undefined) {
      const client = new Etcd3({ hosts: `http://${etcd}` });
      try {
        expect(await client.getAll().prefix(KEY_PREFIX).count()).toBe(0);
      } finally {
        client.close();
      }
    }
  }, 60_000);
});
