/**
 * Issue 3's crash rule: allocating processes killed at random moments (several rounds) leave nothing that
 * GC does not repair, and never a duplicate. Checked with the real CLI: `egw ipam check` finds only what
 * `egw ipam gc` repairs (here: leaks — the workers allocate for pods that do not exist), GC repairs it,
 * and a second check is clean.
 *
 * With single-object writes (SQLite behind the wrapper that refuses multi-op commits here; the Kubernetes
 * datastore in kubernetes.test.ts) a kill can also land between the writes of one operation: then check may also find block
 * entries without their handle, handles their block no longer records, and misfiled index records — all
 * repairable — and one GC pass repairs everything (rebuilt handles of gone pods are released in it too).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { EGW_CLI } from '../support/dist.js';
import { openTestStore } from './helpers.js';
import { killRounds, workers } from './scenarios.js';
import { SINGLE_PREFIX, SingleObjectStore } from './single-object-store.js';
import { killAll } from './workers.js';

afterAll(() => killAll(workers));


describe('killing allocating processes', () => {
  it('leaves only leaks that GC releases, and no duplicate, round after round', async () => {
    const t = await openTestStore('egw-ipam-kill-');
    try {
      await killRounds(t.path, t.store, t.path, 5, 'k', 'kill');
      const show = execFileSync(process.execPath, [EGW_CLI, '--datastore', t.path, 'ipam', 'show'], { encoding: 'utf8' });
      expect(show).toMatch(/^POOL\s+CIDR\s+BLOCK\s+SIZE\s+RESERVED\s+ALLOCATED\s+FREE/);
      expect(show).toMatch(/kill\s+10\.60\.0\.0\/24\s+\/28\s+256\s+0\s+0\s+256/);
    } finally {
      killAll(workers);
      await t.cleanup();
    }
  }, 240_000);

  it('single-object writes: only what GC repairs, and no duplicate, round after round', async () => {
    const t = await openTestStore('egw-ipam-kill-single-');
    try {
      await killRounds(SINGLE_PREFIX + t.path, new SingleObjectStore(t.store), undefined, 5, 'k', 'kill');
    } finally {
      killAll(workers);
      await t.cleanup();
    }
  }, 240_000);
});
