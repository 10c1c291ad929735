/**
 * The running operator on the reconcile engine (src/reconcile/), against a real SQLite store: an invalid
 * EgressGateway is terminal (Degraded in its status, not retried until something changes), a failing
 * write backs off with the injected jitter, and the pods of an EgressGateway deleted while the operator
 * was down are pruned once the first full pass is done.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Pod } from '../../../src/api/index.js';
import { EgressGatewayOperator, SequentialIds } from '../../../src/controller/operator/index.js';
import type { SqliteDatastore } from '../../../src/datastore/sqlite/sqlite-datastore.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { apply, getGateway, HookedStore, podsIn, referenceResources, referenceRed, tempStore } from './helpers.js';

const NS = 'calico-egress';
const RED = 'egress-gateway-red';
const IMAGE = 'registry.example/egw:test';

let store: SqliteDatastore;
let cleanup: () => Promise<void>;
let clock: FakeClock;

beforeEach(async () => {
  ({ store, cleanup } = await tempStore('egw-operator-engine-test-'));
  clock = new FakeClock(Date.parse('2024-05-01T00:00:00.000Z'));
});
afterEach(async () => {
  await cleanup();
});

async function applyWorld(): Promise<void> {
  await apply(store, ...referenceResources().filter((r) => r.kind !== 'EgressGateway' && r.kind !== 'Pod'));
}

async function gatewayPods(): Promise<Pod[]> {
  return (await podsIn(store, NS)).filter((p) => p.metadata.ownerReferences !== undefined);
}

/** Polls until `cond` holds (a hang guard against the store's watch, not a timing assertion). */
async function until(cond: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('EgressGatewayOperator on the reconcile engine', () => {
  it('an invalid EgressGateway is Degraded, reported terminal and not retried; fixing the pools brings it back', async () => {
    await applyWorld();
    const pool = await store.get({ kind: 'IPPool', name: 'egress-red-west-2' });
    await store.commit([{ op: 'delete', key: pool!.key }]);
    const hooked = new HookedStore(store);
    const op = new EgressGatewayOperator({ store: hooked, clock, ids: new SequentialIds(), random: () => 0.5 }, { image: IMAGE, resyncIntervalMs: 0 });
    op.start();
    try {
      await apply(store, referenceRed());
      await until(async () => (await getGateway(store, NS, RED))?.status?.state === 'Degraded', 'Degraded');
      await until(() => op.failures().length === 1, 'the terminal failure');
      expect(op.failures()[0]).toMatchObject({
        key: `${NS}/${RED}`,
        state: 'terminal',
        code: 'InvalidInput',
        message: expect.stringContaining('Error validating egress gateway err = ippools.projectcalico.org "egress-red-west-2" not found') as unknown,
      });
      // Not requeued: time passes, no pass writes anything.
      const commits = hooked.commits;
      clock.advance(3_600_000);
      await new Promise((r) => setTimeout(r, 100));
      expect(hooked.commits).toBe(commits);
      expect(await gatewayPods()).toEqual([]);
      // A change (the pool comes back) adds the key again.
      await applyWorld();
      await until(async () => (await gatewayPods()).length === 2 && (await getGateway(store, NS, RED))?.status?.state === 'Ready', 'Ready with two pods');
      await until(() => op.failures().length === 0, 'the failure forgotten');
    } finally {
      await op.stop();
    }
  });

  it('a failing write is retried after random × the initial backoff (full jitter), on the injected clock', async () => {
    await applyWorld();
    const hooked = new HookedStore(store);
    hooked.crashAtCommit = 1;
    const op = new EgressGatewayOperator({ store: hooked, clock, ids: new SequentialIds(), random: () => 0.5 }, { image: IMAGE, resyncIntervalMs: 0, backoffInitialMs: 1_000 });
    op.start();
    try {
      await apply(store, referenceRed());
      await until(() => op.failures().length === 1, 'the first (failing) commit');
      expect(op.failures()[0]).toMatchObject({ state: 'retrying', code: 'DatastoreUnavailable', failures: 1, lastDelayMs: 500 });
      clock.advance(499);
      await new Promise((r) => setTimeout(r, 100));
      expect(await gatewayPods()).toEqual([]);
      clock.advance(1);
      await until(async () => (await gatewayPods()).length === 2, 'two pods after the retry');
      await until(() => op.failures().length === 0, 'the failure forgotten');
    } finally {
      await op.stop();
    }
  });

  it('pods of an EgressGateway deleted while the operator was down are removed after the first full pass', async () => {
    await applyWorld();
    await apply(store, referenceRed());
    await new EgressGatewayOperator({ store, clock, ids: new SequentialIds() }, { image: IMAGE }).reconcile(NS, RED);
    expect(await gatewayPods()).toHaveLength(2);
    const stored = await store.get({ kind: 'EgressGateway', namespace: NS, name: RED });
    await store.commit([{ op: 'delete', key: stored!.key }]);

    const op = new EgressGatewayOperator({ store, clock, ids: new SequentialIds() }, { image: IMAGE, resyncIntervalMs: 0 });
    op.start();
    try {
      await until(async () => (await gatewayPods()).length === 0, 'the orphaned pods removed');
      expect(op.inSync).toBe(true);
    } finally {
      await op.stop();
    }
  });
});
