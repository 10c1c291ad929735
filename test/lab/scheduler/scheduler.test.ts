/**
 * The scheduler process over a real SQLite store: binds with CAS, reports Unschedulable once with
 * Kubernetes' message, retries when nodes change, never binds a pod changed under it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Datastore, JsonObject, ResourceKey, StoredResource, WriteOp } from '../../../src/datastore/contract.js';
import { buildSnapshot, LabScheduler } from '../../../src/lab/scheduler/index.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { HookedStore, tempStore } from '../../controller/operator/helpers.js';
import { AWS, NOW, nodeRecord, podRecord, ZONE } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(store?: (s: Datastore) => Datastore): Promise<{ store: Datastore; raw: Datastore; scheduler: LabScheduler; clock: FakeClock }> {
  const t = await tempStore('egw-lab-sched-');
  cleanups.push(t.cleanup);
  const s = store === undefined ? t.store : store(t.store);
  const clock = new FakeClock(NOW);
  const scheduler = new LabScheduler({ store: s, clock }, { resyncIntervalMs: 1_000, retryDelayMs: 10 });
  cleanups.push(() => scheduler.stop());
  return { store: s, raw: t.store, scheduler, clock };
}

function key(kind: string, name: string, namespace?: string): ResourceKey {
  return namespace === undefined ? { kind, name } : { kind, namespace, name };
}

async function put(store: Datastore, ...records: Record<string, unknown>[]): Promise<void> {
  await store.commit(
    records.map((r): WriteOp => {
      const meta = r['metadata'] as { name: string; namespace?: string };
      return { op: 'put', key: key(r['kind'] as string, meta.name, meta.namespace), value: r as JsonObject };
    }),
  );
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function podValue(store: Datastore, ns: string, name: string): Promise<StoredResource | undefined> {
  return store.get(key('Pod', name, ns));
}

const nodeOf = (s: StoredResource | undefined): string | undefined => (s?.value['spec'] as { nodeName?: string } | undefined)?.nodeName;
const condition = (s: StoredResource | undefined, type: string): Record<string, unknown> | undefined =>
  ((s?.value['status'] as { conditions?: Record<string, unknown>[] } | undefined)?.conditions ?? []).find((c) => c['type'] === type);

const spread = [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { 'egress-code': 'red' } } }];
const gw = { namespace: 'calico-egress', labels: { 'egress-code': 'red' }, requests: { [AWS]: 1 }, limits: { [AWS]: 1 }, spread };

describe('LabScheduler', () => {
  it('binds pending pods (spec.nodeName + PodScheduled=True) across zones', async () => {
    const { store, scheduler } = await setup();
    await put(store, nodeRecord('node-a1', { zone: 'us-west-2a' }), nodeRecord('node-b1', { zone: 'us-west-2b' }), podRecord('red-1', gw), podRecord('red-2', gw));
    scheduler.start();
    const nodes = await waitFor('both bound', async () => {
      const a = nodeOf(await podValue(store, 'calico-egress', 'red-1'));
      const b = nodeOf(await podValue(store, 'calico-egress', 'red-2'));
      return a !== undefined && b !== undefined ? [a, b].sort() : undefined;
    });
    expect(nodes).toEqual(['node-a1', 'node-b1']);
    const p = await podValue(store, 'calico-egress', 'red-1');
    expect(condition(p, 'PodScheduled')).toMatchObject({ status: 'True', lastTransitionTime: new Date(NOW).toISOString() });
    expect((p?.value['status'] as { phase?: string }).phase).toBe('Pending');
  });

  it("writes Unschedulable with Kubernetes' message once, and binds when a node that fits appears", async () => {
    const { store, scheduler } = await setup();
    await put(store, nodeRecord('node-a1', { zone: 'us-west-2a', allocatable: { [AWS]: 0 } }), podRecord('red-1', gw));
    scheduler.start();
    const cond = await waitFor('Unschedulable', async () => condition(await podValue(store, 'calico-egress', 'red-1'), 'PodScheduled'));
    expect(cond).toMatchObject({ status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient projectcalico.org/aws-secondary-ipv4.' });
    const rev = await store.currentRevision();
    // Further passes (resync, unrelated events) write nothing while nothing changes.
    await scheduler.pass();
    await put(store, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'unrelated' } });
    await new Promise((r) => setTimeout(r, 200));
    expect(await store.currentRevision()).toBe(rev + 1);
    // A node with room arrives: the pod is retried and bound; the condition turns True.
    await put(store, nodeRecord('node-b1', { zone: 'us-west-2b' }));
    expect(await waitFor('bound', async () => nodeOf(await podValue(store, 'calico-egress', 'red-1')))).toBe('node-b1');
    expect(condition(await podValue(store, 'calico-egress', 'red-1'), 'PodScheduled')).toMatchObject({ status: 'True' });
  });

  it('a node whose kubelet heartbeat is stale gets the unreachable taint', async () => {
    const { store, scheduler, clock } = await setup();
    await put(store, nodeRecord('node-a1', { zone: 'us-west-2a' }));
    scheduler.start();
    await scheduler.waitForSync();
    clock.advance(60_000);
    await put(store, podRecord('late', { namespace: 'default' }));
    const cond = await waitFor('Unschedulable', async () => condition(await podValue(store, 'default', 'late'), 'PodScheduled'));
    expect(cond['message']).toBe('0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.');
  });

  it('never binds a pod that changed under it (marked for deletion between read and write)', async () => {
    let hooked: HookedStore | undefined;
    const { raw, scheduler } = await setup((s) => (hooked = new HookedStore(s)));
    await put(raw, nodeRecord('node-a1', { zone: 'us-west-2a' }));
    let raced = false;
    hooked!.beforeCommit = async (ops) => {
      if (!ops.some((o) => o.key.name === 'racy')) return;
      raced = true;
      const cur = await raw.get(key('Pod', 'racy', 'default'));
      const v = cur!.value as { metadata: Record<string, unknown> };
      await raw.commit([{ op: 'update', key: cur!.key, value: { ...cur!.value, metadata: { ...v.metadata, deletionTimestamp: new Date().toISOString() } }, expectedRevision: cur!.modRevision }]);
    };
    await put(raw, podRecord('racy'));
    scheduler.start();
    await waitFor('the race', async () => (raced ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    const racy = await podValue(raw, 'default', 'racy');
    expect(nodeOf(racy)).toBeUndefined();
    expect((racy?.value['metadata'] as { deletionTimestamp?: string }).deletionTimestamp).toBeDefined();
  });
});

describe('buildSnapshot', () => {
  const stored = (value: Record<string, unknown>, rev: number): StoredResource => {
    const m = value['metadata'] as { name: string; namespace?: string };
    return { key: key(value['kind'] as string, m.name, m.namespace), value: value as JsonObject, createRevision: rev, modRevision: rev };
  };

  it('applies binds the cache has not seen yet, and only those', () => {
    const pods = [stored(podRecord('seen'), 5), stored(podRecord('unseen'), 5), stored(podRecord('newer', { nodeName: 'n2' }), 9)];
    const assumed = new Map([
      ['default/unseen', { node: 'n1', revision: 7 }],
      ['default/newer', { node: 'n1', revision: 7 }],
    ]);
    const s = buildSnapshot(pods, [stored(nodeRecord('n1'), 1)], [stored({ kind: 'Namespace', metadata: { name: 'default', labels: { a: 'b' } } }, 1)], assumed);
    expect(s.pods.map((p) => `${p.name}=${p.nodeName ?? '-'}`)).toEqual(['seen=-', 'unseen=n1', 'newer=n2']);
    expect(s.namespaces.get('default')).toEqual({ a: 'b' });
    expect(s.nodes.map((n) => n.name)).toEqual(['n1']);
  });
});
