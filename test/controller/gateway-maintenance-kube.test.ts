/**
 * The gateway-maintenance writer against a real kube-apiserver (scripts/with-kube): with the controller's
 * RBAC and identity it sets and removes the three annotations; a user cannot set them, and the controller
 * cannot change anything else of a pod (the admission policy of src/install/admission-policy.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_MAINTENANCE_ANNOTATIONS } from '../../src/api/index.js';
import { GatewayMaintenanceWriter } from '../../src/controller/gateway-maintenance.js';
import type { StoredResource } from '../../src/datastore/contract.js';
import { KubernetesDatastore } from '../../src/datastore/kubernetes/kubernetes-datastore.js';
import { admissionPolicyObjects, EGRESS_ALLOWED_LABEL } from '../../src/install/admission-policy.js';
import { clusterRoleRules } from '../../src/install/rbac.js';
import { FakeClock } from '../../src/platform/clock.js';
import { eventually, kubeAvailable, kubectl, kubectlOk } from '../support/kubectl.js';

const [IP, STARTED, FINISHED] = GATEWAY_MAINTENANCE_ANNOTATIONS;
const suffix = randomBytes(3).toString('hex');
const ns = `gwm-${suffix}`;
const role = `egw-gwm-test-${suffix}`;
// The identity the stock admission policy names (egw installed in egw-system).
const EGW_NS = 'egw-system';

describe.skipIf(!kubeAvailable)('gateway-maintenance annotations on a real kube-apiserver (needs scripts/with-kube)', () => {
  let dir: string;
  let store: KubernetesDatastore | undefined;
  const made: string[][] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'egw-gwm-kube-'));
    kubectlOk(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-install', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: admissionPolicyObjects(EGW_NS) }));
    // The controller's identity: egw-system/egw-controller (created here only when missing, removed only then).
    if (kubectl(['get', 'namespace', EGW_NS]).code !== 0 && kubectl(['create', 'namespace', EGW_NS]).code === 0) made.push(['namespace', EGW_NS]);
    if (kubectl(['-n', EGW_NS, 'create', 'serviceaccount', 'egw-controller']).code === 0) made.push(['-n', EGW_NS, 'serviceaccount', 'egw-controller']);
    // Its rules, under a name of this run (other test files apply the stock ClusterRole).
    kubectlOk(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: role }, rules: clusterRoleRules('controller') },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: role },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [{ kind: 'ServiceAccount', name: 'egw-controller', namespace: EGW_NS }],
        },
      ],
    }));
    const token = kubectlOk(['-n', EGW_NS, 'create', 'token', 'egw-controller', '--duration', '1h']).trim();
    const config = JSON.parse(kubectlOk(['config', 'view', '--raw', '--minify', '-o', 'json'])) as { users: { name: string; user: unknown }[] };
    config.users = config.users.map((u) => ({ name: u.name, user: { token } }));
    writeFileSync(join(dir, 'kubeconfig'), JSON.stringify(config));

    kubectlOk(['create', 'namespace', ns]);
    kubectlOk(['label', 'namespace', ns, `${EGRESS_ALLOWED_LABEL}=true`]);
    kubectlOk(['annotate', 'namespace', ns, "egress.projectcalico.org/selector=egress-code == 'red'"]);
    expect(await eventually(() => kubectl(['-n', ns, 'get', 'serviceaccount', 'default']).code === 0)).toBe(true);
    // Bound to a node that does not exist (no kubelet here): deletion is graceful, as for a running pod.
    const pod = (name: string, labels: Record<string, string>, annotations: Record<string, string>) =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels, annotations }, spec: { nodeName: `gwm-node-${suffix}`, terminationGracePeriodSeconds: 30, containers: [{ name: 'c', image: 'registry.invalid/none:1' }] } });
    kubectlOk(['create', '-f', '-'], pod('c1', {}, { 'example.com/owner': 'team-a' }));
    kubectlOk(['create', '-f', '-'], pod('red-1', { 'egress-code': 'red' }, {}));
    const running = (ip: string) => JSON.stringify({ status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } });
    kubectlOk(['-n', ns, 'patch', 'pod', 'c1', '--subresource=status', '--type=merge', '-p', running('10.2.0.1')]);
    kubectlOk(['-n', ns, 'patch', 'pod', 'red-1', '--subresource=status', '--type=merge', '-p', running('100.64.0.1')]);
    store = await KubernetesDatastore.open({ kubeconfig: join(dir, 'kubeconfig'), kinds: ['Pod', 'Namespace'] });
  });

  afterAll(async () => {
    await store?.close();
    kubectl(['delete', 'namespace', ns, '--wait=false']);
    kubectl(['delete', 'clusterrolebinding,clusterrole', role, '--ignore-not-found']);
    for (const m of made.reverse()) kubectl(['delete', ...m, '--ignore-not-found', '--wait=false']);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Everything the writer reads: pods and namespaces through its own identity, plus FelixConfiguration `default`. */
  async function world(): Promise<StoredResource[]> {
    const felix: StoredResource = {
      key: { kind: 'FelixConfiguration', name: 'default' },
      value: { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { egressIPSupport: 'EnabledPerNamespaceOrPerPod' } },
      createRevision: 1,
      modRevision: 1,
    };
    return [...(await store!.list('Pod', { namespace: ns })).items, ...(await store!.list('Namespace')).items.filter((n) => n.key.name === ns), felix];
  }
  /** c1's annotations, without the Kubernetes datastore's own create-revision bookkeeping. */
  const annotations = (): Record<string, string> => {
    const all = JSON.parse(kubectlOk(['-n', ns, 'get', 'pod', 'c1', '-o', 'jsonpath={.metadata.annotations}'])) as Record<string, string>;
    delete all['egw.io/create-revision'];
    return all;
  };

  it('the controller sets them on the client of a terminating gateway, keeping the other annotations, and removes them after', async () => {
    kubectlOk(['-n', ns, 'delete', 'pod', 'red-1', '--grace-period=30', '--wait=false']);
    const deletion = kubectlOk(['-n', ns, 'get', 'pod', 'red-1', '-o', 'jsonpath={.metadata.deletionTimestamp}']).trim();
    const finishedMs = Date.parse(deletion);
    const writer = new GatewayMaintenanceWriter({ store: store!, clock: new FakeClock(finishedMs - 25_000) });
    // The stock policy may still be loading in the API server: the first writes can be refused for a moment.
    let report: unknown;
    await eventuallyAsync(async () => {
      const r = await writer.runOnce(await world());
      report = { r, pods: (await world()).map((s) => s.value) };
      return r.written.length > 0 || annotations()[IP] !== undefined;
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}; last report ${JSON.stringify(report)}`);
    });
    expect(annotations()).toEqual({ 'example.com/owner': 'team-a', [IP]: '100.64.0.1', [STARTED]: new Date(finishedMs - 30_000).toISOString().replace('.000Z', 'Z'), [FINISHED]: deletion });
    expect((await writer.runOnce(await world())).written).toEqual([]);
    // The gateway goes; past its finish time the writer removes its annotations.
    kubectlOk(['-n', ns, 'delete', 'pod', 'red-1', '--grace-period=0', '--force']);
    const later = new GatewayMaintenanceWriter({ store: store!, clock: new FakeClock(finishedMs + 1_000) });
    expect((await later.runOnce(await world())).written).toEqual([`${ns}/c1`]);
    expect(annotations()).toEqual({ 'example.com/owner': 'team-a' });
  });

  it('a user (here the cluster admin) cannot set, change or remove them; the controller cannot change anything else of a pod', async () => {
    const attempt = () => kubectl(['-n', ns, 'annotate', 'pod', 'c1', `${IP}=192.0.2.1`, '--overwrite']);
    expect(await eventually(() => attempt().code !== 0)).toBe(true);
    expect(attempt().stderr).toContain('written by egw (its controller) only');
    const created = kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'forged', namespace: ns, annotations: { [FINISHED]: '2030-01-01T00:00:00Z' } }, spec: { containers: [{ name: 'c', image: 'registry.invalid/none:1' }] } }));
    expect(created.code).not.toBe(0);
    // Other annotations stay the user's.
    kubectlOk(['-n', ns, 'annotate', 'pod', 'c1', 'example.com/note=fine']);
    // The controller writes with update (PUT), the one pod verb its RBAC has besides delete.
    const asController = (args: string[], input?: string) => kubectl(['--kubeconfig', join(dir, 'kubeconfig'), '-n', ns, ...args], input);
    const replaced = (change: (meta: { labels?: Record<string, string>; annotations?: Record<string, string> }) => void) => {
      const current = JSON.parse(kubectlOk(['-n', ns, 'get', 'pod', 'c1', '-o', 'json'])) as { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } };
      change(current.metadata);
      return asController(['replace', '-f', '-'], JSON.stringify(current));
    };
    expect(asController(['annotate', 'pod', 'c1', `${IP}=192.0.2.9`]).stderr).toContain('cannot patch resource "pods"');
    const relabel = replaced((m) => void (m.labels = { 'egress-code': 'red' }));
    expect(relabel.code).not.toBe(0);
    expect(relabel.stderr).toContain('may change only the gatewayMaintenance annotations');
    expect(replaced((m) => void (m.annotations = { ...m.annotations, 'example.com/note': 'changed' })).code).not.toBe(0);
    expect(replaced((m) => void (m.annotations = { ...m.annotations, [IP]: '192.0.2.9' })).code).toBe(0);
    expect(annotations()[IP]).toBe('192.0.2.9');
    expect(replaced((m) => void delete m.annotations?.[IP]).code).toBe(0);
    expect(annotations()[IP]).toBeUndefined();
  });
});

async function eventuallyAsync(check: () => Promise<boolean>, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return true;
    } catch (err) {
      // refused while the policy loads: try again
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`not in time; last error: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
