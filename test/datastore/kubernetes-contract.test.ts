import { afterAll, beforeAll, describe } from 'vitest';
import { KubernetesDatastore } from '../../src/datastore/kubernetes/kubernetes-datastore.js';
import { describeDatastoreContract } from './contract-suite.js';
import { kubeSkipReason, TestKinds, testNamespaces } from './kubernetes-harness.js';

// The shared control plane of scripts/with-kube: test-only record kinds (unique to this run) stand for the
// suite's IPPool/Node (cluster-scoped) and Pod/Podx (namespaced); its namespaces are created here. Nothing
// compacts this API server's history (other files use it), so the compaction tests run in
// kubernetes-restart.test.ts on a control plane of its own.
describe.skipIf(kubeSkipReason !== undefined)(`kubernetes contract (${kubeSkipReason ?? 'shared with-kube control plane'})`, () => {
  const kinds = new TestKinds([
    { name: 'Pool', keyed: 'cluster' },
    { name: 'Node', keyed: 'cluster' },
    { name: 'Pod', keyed: 'namespace' },
    { name: 'Podx', keyed: 'namespace' },
  ]);
  let ns: ReturnType<typeof testNamespaces> | undefined;

  beforeAll(() => {
    kinds.install();
    ns = testNamespaces(['ns', 'ns-b', 'ns-1', 'big', 'nope']);
  }, 60_000);

  afterAll(() => {
    ns?.remove();
    kinds.uninstall();
  });

  const open = (): Promise<KubernetesDatastore> =>
    KubernetesDatastore.open({ extraRecordKinds: kinds.kinds, kinds: kinds.kinds.map((k) => k.kind), listPageSize: 100 });

  describeDatastoreContract(
    'kubernetes',
    async () => ({
      store: await open(),
      openAnother: open,
      denseRevisions: false,
      kinds: { pool: kinds.kind('Pool'), node: kinds.kind('Node'), pod: kinds.kind('Pod'), podx: kinds.kind('Podx') },
      namespace: (n) => ns!.name(n),
      crossKindOrder: false,
      exactDeleteRevision: false,
      // Three pages of 100: one object per request makes 1200 take 20 s here.
      manyItems: 300,
      cleanup: async () => kinds.clear(),
    }),
    { atomicMultiKey: false, compact: false },
  );
});
