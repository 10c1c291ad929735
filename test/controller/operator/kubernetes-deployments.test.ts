/**
 * The operator on a real kube-apiserver (scripts/with-kube): EgressGateways become apps/v1 Deployments
 * with the owner reference and the rendered spec, follow scaling, a second pass writes nothing, foreign
 * Deployments are left alone, kube-controller-manager's ReplicaSet and pods show in the EgressGateway's
 * status (0 ready: there are no nodes), and deleting the EgressGateway removes its Deployment.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore } from '../../../src/datastore/contract.js';
import { openDatastore } from '../../../src/datastore/open.js';
import { EgressGatewayOperator } from '../../../src/controller/operator/index.js';
import { KubeDeployments, loadOperatorKubeConfig, MANAGED_BY_LABEL } from '../../../src/controller/operator/kube-deployments.js';
import { EGW_CLI } from '../../support/dist.js';
import { eventually, kubeAvailable, kubectl, kubectlOk } from '../../support/kubectl.js';

const suffix = randomBytes(3).toString('hex');
const NS = `egw-op-${suffix}`;
const POOL = `egw-op-pool-${suffix}`;
const IMAGE = 'registry.invalid/egw:test';

type Json = Record<string, unknown>;

function getJson(args: string[]): Json | undefined {
  const r = kubectl(['get', ...args, '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as Json) : undefined;
}

/** The value at a dotted path of kubectl's JSON (array indexes as numbers), undefined when absent. */
function at(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function list(obj: unknown, path: string): Json[] {
  const v = at(obj, path);
  return Array.isArray(v) ? (v as Json[]) : [];
}

function egressGateway(name: string, replicas: number): string {
  return JSON.stringify({
    apiVersion: 'operator.tigera.io/v1',
    kind: 'EgressGateway',
    metadata: { name, namespace: NS },
    spec: { replicas, ipPools: [{ name: POOL }], template: { metadata: { labels: { 'egress-code': name } } } },
  });
}

/** Applies the CRDs and ClusterRoles of `egw render install` (not its workloads: they would want nodes). */
function applyInstall(): void {
  const all = execFileSync(process.execPath, [EGW_CLI, 'render', 'install'], { encoding: 'utf8' });
  const docs = all.split(/^---$/m).filter((doc) => /^kind: (CustomResourceDefinition|ClusterRole)$/m.test(doc));
  kubectlOk(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-install', '-f', '-'], docs.join('\n---\n'));
  kubectlOk(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', '-l', 'app.kubernetes.io/part-of=egw']);
}

describe.skipIf(!kubeAvailable)('operator on Kubernetes: apps/v1 Deployments (needs scripts/with-kube: KUBECONFIG, EGW_TEST_KUBE_DIR)', () => {
  let store: Datastore;
  let workloads: KubeDeployments;
  let op: EgressGatewayOperator;

  beforeAll(async () => {
    applyInstall();
    kubectlOk(['create', 'namespace', NS]);
    // Gateway pods carry pool annotations: egw's admission policy (installed by other files of this control
    // plane, as on a cluster) admits them only in a namespace an administrator opted in.
    kubectlOk(['label', 'namespace', NS, 'egw.io/egress-allowed=true']);
    kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: POOL }, spec: { cidr: '198.18.10.0/28', blockSize: 32, nodeSelector: '!all()' } }));
    store = await openDatastore('kubernetes', { kubernetes: { kinds: ['EgressGateway', 'IPPool', 'FelixConfiguration'] } });
    workloads = new KubeDeployments({ kubeConfig: loadOperatorKubeConfig(undefined), store });
    op = new EgressGatewayOperator({ store, workloads }, { image: IMAGE, resyncIntervalMs: 0 });
  }, 120_000);

  afterAll(async () => {
    await op?.stop();
    await store?.close();
    kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']);
    kubectl(['delete', 'ippool.projectcalico.org', POOL, '--ignore-not-found']);
    kubectl(['delete', 'clusterrolebinding', `egw-gateway-${NS}`, '--ignore-not-found']);
  }, 60_000);

  it('creates the Deployment with the owner reference, the rendered spec, the datastore env and the ServiceAccount; scaling follows; a second pass writes nothing', async () => {
    kubectlOk(['apply', '-f', '-'], egressGateway('red', 1));
    const egw = getJson(['egressgateway', '-n', NS, 'red'])!;
    const first = await op.reconcile(NS, 'red');
    expect(first.created).toEqual(['red']);

    const d = getJson(['deployment', '-n', NS, 'red'])!;
    expect(at(d, 'metadata.ownerReferences')).toEqual([{ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: 'red', uid: at(egw, 'metadata.uid'), controller: true, blockOwnerDeletion: true }]);
    expect((at(d, 'metadata.labels') as Json)[MANAGED_BY_LABEL]).toBe('egw-operator');
    expect(at(d, 'spec.replicas')).toBe(1);
    expect(at(d, 'spec.selector')).toEqual({ matchLabels: { 'egress-code': 'red' } });
    const pod = at(d, 'spec.template.spec');
    expect(at(pod, 'serviceAccountName')).toBe('egw-gateway');
    const main = list(pod, 'containers').find((c) => c['name'] === 'egress-gateway');
    expect(at(main, 'image')).toBe(IMAGE);
    expect(at(main, 'env')).toContainEqual({ name: 'EGW_DATASTORE', value: 'kubernetes' });
    expect(at(pod, 'initContainers.0.env')).toContainEqual({ name: 'EGW_DATASTORE', value: 'kubernetes' });
    expect(list(getJson(['deployment', '-n', NS, 'red', '--show-managed-fields']), 'metadata.managedFields').some((f) => f['manager'] === 'egw-operator' && f['operation'] === 'Apply')).toBe(true);
    expect(getJson(['serviceaccount', '-n', NS, 'egw-gateway'])).toBeDefined();
    const crb = getJson(['clusterrolebinding', `egw-gateway-${NS}`])!;
    expect(at(crb, 'roleRef.name')).toBe('egw-gateway');
    expect(at(crb, 'subjects')).toEqual([{ kind: 'ServiceAccount', name: 'egw-gateway', namespace: NS }]);

    // kube-controller-manager makes the ReplicaSet and a pod (Pending: no nodes); the status follows.
    expect(
      await eventually(() => {
        const live = getJson(['deployment', '-n', NS, 'red']);
        return at(live, 'status.replicas') === 1 && at(live, 'status.updatedReplicas') === 1;
      }, 60_000),
    ).toBe(true);
    await op.reconcile(NS, 'red');
    const status = at(getJson(['egressgateway', '-n', NS, 'red']), 'status');
    expect(status).toMatchObject({ state: 'Ready', replicas: 1, updatedReplicas: 1, readyReplicas: 0, availableReplicas: 0 });
    expect(list(status, 'conditions').find((c) => c['type'] === 'Ready')?.['status']).toBe('True');
    const pods = list(getJson(['pods', '-n', NS, '-l', 'egress-code=red']), 'items');
    expect(pods).toHaveLength(1);
    expect(at(pods[0], 'status.phase')).toBe('Pending');
    expect(at(getJson(['replicasets', '-n', NS, '-l', 'egress-code=red']), 'items')).toHaveLength(1);

    // A second pass over an unchanged cluster writes nothing: neither the Deployment nor the EgressGateway.
    const rvDeployment = at(getJson(['deployment', '-n', NS, 'red']), 'metadata.resourceVersion') as string;
    const rvEgw = at(getJson(['egressgateway', '-n', NS, 'red']), 'metadata.resourceVersion') as string;
    const again = await op.reconcile(NS, 'red');
    expect(again).toMatchObject({ state: 'Ready', wrote: false, created: [], deleted: [] });
    expect(at(getJson(['deployment', '-n', NS, 'red']), 'metadata.resourceVersion')).toBe(rvDeployment);
    expect(at(getJson(['egressgateway', '-n', NS, 'red']), 'metadata.resourceVersion')).toBe(rvEgw);

    // Scale the EgressGateway: the Deployment follows.
    kubectlOk(['patch', 'egressgateway', '-n', NS, 'red', '--type', 'merge', '-p', '{"spec":{"replicas":2}}']);
    await op.reconcile(NS, 'red');
    expect(at(getJson(['deployment', '-n', NS, 'red']), 'spec.replicas')).toBe(2);
  }, 120_000);

  it("leaves Deployments it does not own alone, refuses one of the EgressGateway's name that another object controls, and adopts one that nothing controls", async () => {
    const foreign = (name: string, owner?: { apiVersion: string; kind: string; name: string; uid: string }): string =>
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, namespace: NS, labels: { 'egress-code': name }, ...(owner === undefined ? {} : { ownerReferences: [{ ...owner, controller: true }] }) },
        spec: { replicas: 0, selector: { matchLabels: { 'egress-code': name } }, template: { metadata: { labels: { 'egress-code': name } }, spec: { containers: [{ name: 'c', image: 'registry.invalid/other:1' }] } } },
      });
    // A real controlling owner (the garbage collector removes dependents of owners that do not exist).
    kubectlOk(['create', 'configmap', '-n', NS, 'someone-else']);
    const cmUid = at(getJson(['configmap', '-n', NS, 'someone-else']), 'metadata.uid') as string;
    kubectlOk(['apply', '-f', '-'], foreign('not-ours'));
    kubectlOk(['apply', '-f', '-'], foreign('clash', { apiVersion: 'v1', kind: 'ConfigMap', name: 'someone-else', uid: cmUid }));
    kubectlOk(['apply', '-f', '-'], foreign('orphan'));
    const rvNotOurs = at(getJson(['deployment', '-n', NS, 'not-ours']), 'metadata.resourceVersion') as string;
    const rvClash = at(getJson(['deployment', '-n', NS, 'clash']), 'metadata.resourceVersion') as string;
    kubectlOk(['apply', '-f', '-'], egressGateway('clash', 1));
    // The orphan's selector is the one egw renders (the template labels), so it can be adopted in place.
    kubectlOk(['apply', '-f', '-'], egressGateway('orphan', 1));

    const results = await op.reconcileAll();
    expect(results.find((r) => r.name === 'clash')).toMatchObject({ state: 'Error' });
    expect(results.find((r) => r.name === 'clash')?.message).toContain('is controlled by another object, not EgressGateway clash');
    expect(results.some((r) => r.name === 'not-ours')).toBe(false);
    expect(at(getJson(['deployment', '-n', NS, 'not-ours']), 'metadata.resourceVersion')).toBe(rvNotOurs);
    expect(at(getJson(['deployment', '-n', NS, 'clash']), 'metadata.resourceVersion')).toBe(rvClash);

    const adopted = getJson(['deployment', '-n', NS, 'orphan']);
    const egwUid = at(getJson(['egressgateway', '-n', NS, 'orphan']), 'metadata.uid');
    expect(at(adopted, 'metadata.ownerReferences')).toEqual([expect.objectContaining({ kind: 'EgressGateway', name: 'orphan', uid: egwUid, controller: true })]);
    expect(at(adopted, 'metadata.labels')).toMatchObject({ 'app.kubernetes.io/managed-by': 'egw-operator' });
    expect(at(adopted, 'spec.replicas')).toBe(1);
    expect(['Ready', 'Progressing']).toContain(results.find((r) => r.name === 'orphan')?.state);
    kubectlOk(['delete', 'egressgateway', '-n', NS, 'clash', 'orphan']);
  }, 60_000);

  it('running: watches the Deployments, and deleting the EgressGateway removes its Deployment', async () => {
    op.start();
    kubectlOk(['apply', '-f', '-'], egressGateway('blue', 1));
    expect(await eventually(() => getJson(['deployment', '-n', NS, 'blue']) !== undefined, 30_000)).toBe(true);
    // The status follows the Deployment's status by the watch alone (no direct reconcile here).
    expect(
      await eventually(() => {
        const s = at(getJson(['egressgateway', '-n', NS, 'blue']), 'status');
        return at(s, 'state') === 'Ready' && at(s, 'replicas') === 1 && at(s, 'readyReplicas') === 0;
      }, 60_000),
    ).toBe(true);

    kubectlOk(['delete', 'egressgateway', '-n', NS, 'blue']);
    expect(await eventually(() => getJson(['deployment', '-n', NS, 'blue']) === undefined, 60_000)).toBe(true);
    expect(getJson(['deployment', '-n', NS, 'not-ours'])).toBeDefined();
    await op.stop();
    // Gone already (the operator, or kube-controller-manager's garbage collector): a pass is a no-op.
    expect(await op.reconcile(NS, 'blue')).toMatchObject({ state: 'Absent', wrote: false });
  }, 150_000);
});
