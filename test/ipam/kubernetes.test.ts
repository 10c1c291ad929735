/**
 * IPAM on the Kubernetes datastore (a real kube-apiserver: scripts/with-kube), where every commit writes
 * one object: 8 processes × 500 allocations get 4,000 distinct addresses, and allocating processes killed
 * at random moments leave only what `egw ipam check` finds and `egw ipam gc` repairs. One file, run in
 * order, because IPAM's records are cluster-scoped: the two scenarios (and their wipes) must not overlap.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatastore } from '../../src/datastore/open.js';
import { applyEgwCrds, kubeSkipReason, wipeIpam } from './kube.js';
import { killRounds, race, workers } from './scenarios.js';
import { killAll } from './workers.js';

const id = randomBytes(3).toString('hex');
const race_ = { prefix: `ipam-race-${id}`, pool: `race-${id}` };
const kill = { prefix: `ipam-kill-${id}-`, pool: `kill-${id}` };

describe.skipIf(kubeSkipReason !== undefined)(`IPAM on the Kubernetes datastore (${kubeSkipReason ?? 'with-kube'})`, () => {
  beforeAll(() => {
    applyEgwCrds();
    wipeIpam();
  }, 120_000);
  afterAll(() => {
    killAll(workers);
    wipeIpam(
      ...[0, 1, 2, 3].map((i) => `node/${race_.prefix}-${i}`),
      `node/${kill.prefix}0`,
      `node/${kill.prefix}1`,
      `ippools.projectcalico.org/${race_.pool}`,
      `ippools.projectcalico.org/${kill.pool}`,
    );
  }, 180_000);

  it('8 processes × 500 allocations: 4,000 distinct addresses', async () => {
    const store = await openDatastore('kubernetes');
    try {
      expect(store.capabilities.atomicMultiKey).toBe(false);
      await race('kubernetes', store, race_.prefix, race_.pool);
    } finally {
      await store.close();
    }
  }, 400_000);

  it('killed allocators: egw ipam check finds only what egw ipam gc repairs, and no duplicate, round after round', async () => {
    wipeIpam(`ippools.projectcalico.org/${race_.pool}`);
    const store = await openDatastore('kubernetes');
    try {
      await killRounds('kubernetes', store, 'kubernetes', 3, kill.prefix, kill.pool);
    } finally {
      killAll(workers);
      await store.close();
    }
  }, 400_000);
});
