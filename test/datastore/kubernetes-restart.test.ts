import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, WatchEvent } from '../../src/datastore/contract.js';
import { KubernetesDatastore } from '../../src/datastore/kubernetes/kubernetes-datastore.js';
import { isEgwError } from '../../src/platform/errors.js';
import { startKubeControlPlane } from '../support/kube-control-plane.js';
import type { KubeControlPlane } from '../support/kube-control-plane.js';
import { describeDatastoreContract } from './contract-suite.js';
import { kubectl, kubeSkipReason, TestKinds } from './kubernetes-harness.js';

// A control plane of this file's own (test/support/kube-control-plane.ts): it kills and restarts the API
// server and etcd and compacts etcd's history, which would disturb the other files on the shared one.
// scripts/with-kube must be available (the CI runs the suite inside it), so the same skip applies.
describe.skipIf(kubeSkipReason !== undefined)(`kubernetes backend across restarts and compaction (${kubeSkipReason ?? 'private control plane'})`, () => {
  let cp: KubeControlPlane | undefined;
  let kinds: TestKinds;

  beforeAll(async () => {
    cp = await startKubeControlPlane();
    kinds = new TestKinds([{ name: 'Thing', keyed: 'cluster' }, { name: 'Pool', keyed: 'cluster' }, { name: 'Node', keyed: 'cluster' }, { name: 'Pod', keyed: 'namespace' }, { name: 'Podx', keyed: 'namespace' }], cp.kubeconfig);
    kinds.install();
  }, 120_000);

  afterAll(async () => {
    await cp?.stop();
  }, 60_000);

  const open = (): Promise<KubernetesDatastore> =>
    KubernetesDatastore.open({
      kubeconfig: cp!.kubeconfig,
      extraRecordKinds: kinds.kinds,
      kinds: kinds.kinds.map((k) => k.kind),
      requestTimeoutMs: 2_000,
      watchRetryInitialMs: 50,
      watchRetryMaxMs: 300,
    });
  const thing = (i: number | string): { kind: string; name: string } => ({ kind: kinds.kind('Thing'), name: `t${i}` });

  /** Waits until the API server answers /readyz. */
  async function ready(ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      try {
        kubectl(['get', '--raw', '/readyz'], undefined, cp!.kubeconfig);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Retries a write until the restarted control plane takes it. */
  async function eventually<T>(fn: () => Promise<T>, ms = 30_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (!isEgwError(err, 'DatastoreUnavailable') || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Every read fails with DatastoreUnavailable, never with an empty answer. */
  async function readsFail(store: Datastore): Promise<void> {
    const reads: [string, () => Promise<unknown>][] = [
      ['get', () => store.get(thing(0))],
      ['list', () => store.list(kinds.kind('Thing'))],
      ['currentRevision', () => store.currentRevision()],
      ['commit', () => store.commit([{ op: 'put', key: thing('down'), value: {} }])],
    ];
    for (const [what, read] of reads) {
      const got: unknown = await read().then(
        (v) => ({ answered: v }),
        (e: unknown) => e,
      );
      expect(isEgwError(got, 'DatastoreUnavailable'), `${what}: ${JSON.stringify(got)}`).toBe(true);
    }
  }

  /** A running watch across an outage of `component`: 5 writes before, 5 after (through another handle). */
  async function acrossOutage(component: 'kube-apiserver' | 'etcd'): Promise<void> {
    const watcher = await open();
    const writer = await open();
    const seen: WatchEvent[] = [];
    const ac = new AbortController();
    const guard = setTimeout(() => ac.abort(), 60_000);
    try {
      kinds.clear();
      const start = await writer.currentRevision();
      const watching = (async () => {
        for await (const ev of watcher.watch({ afterRevision: start, kinds: [kinds.kind('Thing')], signal: ac.signal })) {
          if (ev.type === 'put' && ev.key.name.startsWith('t')) seen.push(ev);
          else if (ev.type === 'resync') seen.push(ev);
          if (seen.length === 10 || ev.type === 'resync') break;
        }
      })();
      for (let i = 0; i < 5; i++) await writer.commit([{ op: 'put', key: thing(i), value: { i } }]);
      await cp!.kill(component);
      await readsFail(writer);
      cp!.start(component);
      await ready();
      // A handle opened after the restart writes the rest.
      const after = await eventually(() => open());
      try {
        for (let i = 5; i < 10; i++) await eventually(() => after.commit([{ op: 'put', key: thing(i), value: { i } }]));
      } finally {
        await after.close();
      }
      await watching;
      expect(seen.map((e) => (e.type === 'put' ? e.value['i'] : e.type))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const revs = seen.map((e) => e.revision);
      expect([...revs].sort((a, b) => a - b)).toEqual(revs);
      expect((await writer.list(kinds.kind('Thing'))).items.map((r) => r.value['i'])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      clearTimeout(guard);
      ac.abort();
      await watcher.close();
      await writer.close();
    }
  }

  it('kube-apiserver killed and restarted: reads fail meanwhile, a running watch loses and repeats nothing', async () => {
    await acrossOutage('kube-apiserver');
  }, 90_000);

  it('etcd killed and restarted: reads fail meanwhile, a running watch loses and repeats nothing', async () => {
    await acrossOutage('etcd');
  }, 90_000);

  // The compaction tests of the contract suite, on this control plane. The API server's watch cache serves
  // watches from memory and keeps events etcd has compacted, so the hook compacts etcd and then restarts
  // the API server: its cache starts again at the current revision, and a watch from before it gets
  // 410 Gone (from the cache or from etcd), which the backend yields as resync.
  describeDatastoreContract(
    'kubernetes (private control plane, compaction only)',
    async () => ({
      store: await open(),
      openAnother: open,
      denseRevisions: false,
      kinds: { pool: kinds.kind('Pool'), node: kinds.kind('Node'), pod: kinds.kind('Pod'), podx: kinds.kind('Podx') },
      crossKindOrder: false,
      exactDeleteRevision: false,
      compact: async (revision: number) => {
        await cp!.compact(revision);
        await cp!.kill('kube-apiserver');
        cp!.start('kube-apiserver');
        await ready();
      },
      cleanup: async () => kinds.clear(),
    }),
    { atomicMultiKey: false, compact: true, only: 'compaction' },
  );
});
