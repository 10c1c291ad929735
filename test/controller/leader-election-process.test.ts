/**
 * Two real `egw controller` processes on one SQLite store: exactly one acquires the lease and runs the
 * operator; SIGTERM on it releases the lease and the other takes over at once and acts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTROLLER_LEASE_KEY, parseLease } from '../../src/controller/leader-election.js';
import type { Datastore } from '../../src/datastore/contract.js';
import { openDatastore } from '../../src/datastore/open.js';
import { listResources } from '../../src/datastore/resources.js';
import { EGW_CLI, REPO } from '../support/dist.js';

const work = mkdtempSync(join(tmpdir(), 'egw-leader-process-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

interface Controller {
  child: ChildProcess;
  /** `msg` of every JSON log line so far. */
  messages: () => string[];
  exited: Promise<number | null>;
}

function startController(env: NodeJS.ProcessEnv, identity: string): Controller {
  const child = spawn(
    process.execPath,
    [EGW_CLI, 'controller', '--log-level', 'info', '--identity', identity, '--leader-elect-lease-duration', '3s', '--leader-elect-renew-deadline', '2s', '--leader-elect-retry-period', '500ms'],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const messages = (): string[] =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { msg?: string }).msg ?? '');
  return { child, messages, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

async function waitFor(what: string, pred: () => boolean | Promise<boolean>, ms: number): Promise<number> {
  const start = Date.now();
  while (!(await pred())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - start;
}

const redPods = async (store: Datastore): Promise<string[]> =>
  (await listResources(store, 'Pod', 'calico-egress')).map((p) => p.metadata.name).filter((n) => n.startsWith('egress-gateway-red-'));

const holder = async (store: Datastore): Promise<string | undefined> => {
  const r = await store.get(CONTROLLER_LEASE_KEY);
  return r === undefined ? undefined : parseLease(r.value)?.holderIdentity;
};

describe('two egw controller processes on one SQLite store', () => {
  it('exactly one acts; SIGTERM on the leader releases the lease and the other takes over and acts', async () => {
    const db = join(work, 'egw.db');
    const env = { ...process.env, EGW_DATASTORE: db, AWS_REGION: undefined, AWS_ENDPOINT_URL_EC2: '' };
    const apply = spawnSync(process.execPath, [EGW_CLI, 'apply', '-f', join(REPO, 'examples/reference')], { env, encoding: 'utf8' });
    expect(apply.status, apply.stderr).toBe(0);
    const store = await openDatastore(db);
    try {
      const a = startController(env, 'ctl-a');
      await waitFor('ctl-a to acquire', () => a.messages().includes('leadership acquired'), 20_000);
      const b = startController(env, 'ctl-b');
      await waitFor('ctl-b to wait', () => b.messages().includes('lease held by another controller, waiting'), 20_000);
      await waitFor('the gateway pods', async () => (await redPods(store)).length === 2, 20_000);
      expect(await holder(store)).toBe('ctl-a');

      // Several lease durations of both running: ctl-b never acquires, never starts a part.
      await new Promise((r) => setTimeout(r, 7000));
      expect(b.messages()).not.toContain('leadership acquired');
      expect(b.messages()).not.toContain('operator started');
      expect(b.messages()).not.toContain('gateway pods reconciled');
      expect(a.messages()).toContain('gateway pods reconciled');
      expect(await holder(store)).toBe('ctl-a');

      a.child.kill('SIGTERM');
      const sigtermAt = Date.now();
      expect(await a.exited).toBe(0);
      expect(a.messages()).toContain('leadership released');
      await waitFor('ctl-b to acquire', () => b.messages().includes('leadership acquired'), 10_000);
      const handover = Date.now() - sigtermAt;
      expect(await holder(store)).toBe('ctl-b');
      const lease = parseLease((await store.get(CONTROLLER_LEASE_KEY))!.value);
      expect(lease?.leaseTransitions).toBe(1);

      // ctl-b acts: a gateway pod removed behind its back comes back.
      const [victim] = await redPods(store);
      await store.commit([{ op: 'delete', key: { kind: 'Pod', namespace: 'calico-egress', name: victim! } }]);
      await waitFor('ctl-b to re-create the pod', async () => (await redPods(store)).length === 2, 20_000);
      // Its log line follows the write through a pipe: wait for it rather than race it.
      await waitFor('ctl-b to log the reconcile', () => b.messages().includes('gateway pods reconciled'), 10_000);
      // Released, so the successor did not wait for the lease to expire (3 s): about a retry period.
      expect(handover).toBeLessThan(3000);

      b.child.kill('SIGTERM');
      expect(await b.exited).toBe(0);
      expect(await holder(store)).toBe('');
    } finally {
      await store.close();
    }
  }, 90_000);

  it('a frozen leader (SIGSTOP) is replaced after the lease duration; when it wakes it stops and exits 1', async () => {
    const db = join(work, 'frozen.db');
    const env = { ...process.env, EGW_DATASTORE: db, AWS_REGION: undefined, AWS_ENDPOINT_URL_EC2: '' };
    const store = await openDatastore(db);
    try {
      const a = startController(env, 'ctl-a');
      await waitFor('ctl-a to acquire', () => a.messages().includes('leadership acquired'), 20_000);
      const b = startController(env, 'ctl-b');
      await waitFor('ctl-b to wait', () => b.messages().includes('lease held by another controller, waiting'), 20_000);
      a.child.kill('SIGSTOP');
      const took = await waitFor('ctl-b to acquire', () => b.messages().includes('leadership acquired'), 15_000);
      expect(took).toBeGreaterThanOrEqual(2000); // not before the lease could expire (3 s after ctl-a's last renewal)
      expect(parseLease((await store.get(CONTROLLER_LEASE_KEY))!.value)).toMatchObject({ holderIdentity: 'ctl-b', leaseTransitions: 1 });
      a.child.kill('SIGCONT');
      expect(await a.exited).toBe(1);
      expect(a.messages()).toContain('leadership lost');
      expect(a.messages()).not.toContain('leadership released');
      expect(await holder(store)).toBe('ctl-b');
      b.child.kill('SIGTERM');
      expect(await b.exited).toBe(0);
    } finally {
      await store.close();
    }
  }, 90_000);
});
