import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject, ResourceKey, WatchEvent } from '../../src/datastore/contract.js';
import { KubernetesDatastore } from '../../src/datastore/kubernetes/kubernetes-datastore.js';
import { EGW_CLI } from '../support/dist.js';
import { kubectl, kubeSkipReason } from './kubernetes-harness.js';

// Real API kinds on the shared control plane of scripts/with-kube: egw's CRDs (from `egw render install`,
// applied server-side as the installer does; they stay, other files use them too), and core Pods, Nodes
// and Namespaces. Every object is named with this run's id and removed afterwards.
describe.skipIf(kubeSkipReason !== undefined)(`kubernetes backend with real API kinds (${kubeSkipReason ?? 'shared with-kube control plane'})`, () => {
  const id = randomBytes(4).toString('hex');
  const ns = `t${id}-kinds`;
  const node = `t${id}-node`;
  let store: KubernetesDatastore | undefined;
  const json = (args: string[]): JsonObject => JSON.parse(kubectl([...args, '-o', 'json'])) as JsonObject;
  const meta = (o: JsonObject): JsonObject => o['metadata'] as JsonObject;

  beforeAll(async () => {
    const install = execFileSync(process.execPath, [EGW_CLI, 'render', 'install'], { encoding: 'utf8' });
    kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-install', '-f', '-'], install);
    kubectl(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd/ippools.projectcalico.org', 'crd/egressgateways.operator.tigera.io']);
    kubectl(['create', 'namespace', ns]);
    kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { 'egw.io/test': id } } }));
    // Pods need their namespace's default ServiceAccount (the controller manager makes it).
    for (let i = 0; ; i++) {
      try {
        kubectl(['get', 'serviceaccount', 'default', '-n', ns]);
        break;
      } catch (err) {
        if (i > 200) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    store = await KubernetesDatastore.open({ kinds: ['IPPool', 'EgressGateway', 'Pod', 'Node', 'Namespace'] });
  }, 120_000);

  afterAll(async () => {
    await store?.close();
    kubectl(['delete', 'ippools.projectcalico.org', `t${id}-a`, `t${id}-b`, '--ignore-not-found', '--wait=false']);
    kubectl(['delete', 'node', node, '--ignore-not-found', '--wait=false']);
    kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']);
  });

  it('an IPPool written through the backend is what kubectl shows (spec, labels)', async () => {
    const key: ResourceKey = { kind: 'IPPool', name: `t${id}-a` };
    const c = await store!.commit([
      {
        op: 'create',
        key,
        value: { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: key.name, labels: { tier: 'egress' } }, spec: { cidr: '10.210.0.0/24', blockSize: 28 } },
      },
    ]);
    const shown = json(['get', 'ippools.projectcalico.org', key.name]);
    expect(meta(shown)['labels']).toEqual({ tier: 'egress' });
    expect(shown['spec']).toMatchObject({ cidr: '10.210.0.0/24', blockSize: 28 });
    expect(Number(meta(shown)['resourceVersion'])).toBe(c.revision);
    // What the backend reads is the same object, without server-owned fields.
    const read = await store!.get(key);
    expect(read?.value['spec']).toEqual(shown['spec']);
    expect(meta(read!.value)['managedFields']).toBeUndefined();
    expect(meta(read!.value)['resourceVersion']).toBeUndefined();
  });

  it('an IPPool created with kubectl is read back: the object, no managedFields, resourceVersion as modRevision', async () => {
    const name = `t${id}-b`;
    kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name, labels: { made: 'kubectl' } }, spec: { cidr: '10.211.0.0/24' } }));
    const shown = json(['get', 'ippools.projectcalico.org', name]);
    const read = await store!.get({ kind: 'IPPool', name });
    expect(read).toBeDefined();
    expect(read!.modRevision).toBe(Number(meta(shown)['resourceVersion']));
    const { managedFields: _m, resourceVersion: _r, ...rest } = meta(shown);
    expect(read!.value).toEqual({ ...shown, metadata: rest });
    expect(read!.value['apiVersion']).toBe('projectcalico.org/v3');
    expect(read!.value['kind']).toBe('IPPool');
  });

  it('a Pod and a Namespace made with kubectl are read from the core API, and a watch sees their changes', async () => {
    const from = await store!.currentRevision();
    const ac = new AbortController();
    const guard = setTimeout(() => ac.abort(), 20_000);
    const seen: WatchEvent[] = [];
    const watching = (async () => {
      for await (const ev of store!.watch({ afterRevision: from, kinds: ['Pod', 'Namespace'], signal: ac.signal })) {
        if (ev.type === 'resync' || ev.key.name === 'web' || ev.key.name === ns) seen.push(ev);
        const labelled = seen.filter((e) => e.type === 'put' && (meta(e.value)['labels'] as JsonObject | undefined)?.['seen'] === 'yes');
        const kindsLabelled = new Set(labelled.map((e) => (e.type === 'resync' ? '' : e.key.kind)));
        if (ev.type === 'resync' || (kindsLabelled.size === 2 && seen.some((e) => e.type === 'delete'))) break;
      }
    })();
    kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: ns }, spec: { nodeName: node, containers: [{ name: 'c', image: 'example.invalid/web:1' }] } }));
    const pod = await store!.get({ kind: 'Pod', namespace: ns, name: 'web' });
    expect(pod?.value['spec']).toMatchObject({ nodeName: node });
    expect((await store!.get({ kind: 'Namespace', name: ns }))?.value['kind']).toBe('Namespace');
    kubectl(['label', 'namespace', ns, 'seen=yes']);
    kubectl(['label', 'pod', 'web', '-n', ns, 'seen=yes']);
    kubectl(['delete', 'pod', 'web', '-n', ns, '--grace-period=0', '--force']);
    await watching;
    clearTimeout(guard);
    expect(seen.some((e) => e.type === 'resync')).toBe(false);
    const labelled = (kind: string): boolean =>
      seen.some((e) => e.type === 'put' && e.key.kind === kind && (meta(e.value)['labels'] as JsonObject | undefined)?.['seen'] === 'yes');
    expect(labelled('Namespace')).toBe(true);
    expect(labelled('Pod')).toBe(true);
    expect(seen.find((e) => e.type === 'delete')).toMatchObject({ key: { kind: 'Pod', namespace: ns, name: 'web' } });
  });

  it('EgressGateway (namespaced, status subresource): spec through the main endpoint, status through /status', async () => {
    const key: ResourceKey = { kind: 'EgressGateway', namespace: ns, name: 'red' };
    await store!.commit([
      { op: 'create', key, value: { apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', metadata: { name: 'red', namespace: ns }, spec: { replicas: 1, ipPools: [{ name: `t${id}-a` }] } } },
    ]);
    const cur = (await store!.get(key))!;
    // Status only (what the operator writes): goes to /status.
    const withStatus: JsonObject = { ...cur.value, status: { state: 'Ready', conditions: [{ type: 'Ready', status: 'True' }] } };
    const s = await store!.commit([{ op: 'update', key, value: withStatus, expectedRevision: cur.modRevision }]);
    expect(json(['get', 'egressgateways.operator.tigera.io', 'red', '-n', ns])['status']).toEqual(withStatus.status);
    // Both changed: the main endpoint, then /status; both show.
    const both = { ...withStatus, spec: { ...(withStatus['spec'] as JsonObject), replicas: 2 }, status: { state: 'Degraded' } };
    const b = await store!.commit([{ op: 'update', key, value: both, expectedRevision: s.revision }]);
    const shown = json(['get', 'egressgateways.operator.tigera.io', 'red', '-n', ns]);
    expect(shown['spec']).toMatchObject({ replicas: 2 });
    expect(shown['status']).toEqual({ state: 'Degraded' });
    expect(Number(meta(shown)['resourceVersion'])).toBe(b.revision);
    // A stale expectedRevision is refused before anything is written.
    const stale = await store!.commit([{ op: 'update', key, value: { ...both, status: { state: 'Stale' } }, expectedRevision: s.revision }]).catch((e: unknown) => e);
    expect((stale as { code?: string }).code).toBe('Conflict');
    expect(json(['get', 'egressgateways.operator.tigera.io', 'red', '-n', ns])['status']).toEqual({ state: 'Degraded' });
  });

  it("a Pod's status condition and a Node's extended-resource capacity written through the backend reach the API (kubectl)", async () => {
    kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'gw', namespace: ns }, spec: { nodeName: node, containers: [{ name: 'c', image: 'example.invalid/gw:1' }] } }));
    const podKey: ResourceKey = { kind: 'Pod', namespace: ns, name: 'gw' };
    const pod = (await store!.get(podKey))!;
    const status = (pod.value['status'] ?? {}) as JsonObject;
    const condition = { type: 'egw.io/EgressReady', status: 'True', reason: 'Programmed', lastTransitionTime: '2026-01-01T00:00:00Z' };
    const conditions = [...((status['conditions'] as JsonObject[] | undefined) ?? []), condition];
    await store!.commit([{ op: 'update', key: podKey, value: { ...pod.value, status: { ...status, conditions } }, expectedRevision: pod.modRevision }]);
    const shownPod = json(['get', 'pod', 'gw', '-n', ns]);
    // The API server adds lastProbeTime: null.
    expect((shownPod['status'] as JsonObject)['conditions']).toContainEqual({ ...condition, lastProbeTime: null });

    const nodeKey: ResourceKey = { kind: 'Node', name: node };
    const n = (await store!.get(nodeKey))!;
    const nodeStatus = (n.value['status'] ?? {}) as JsonObject;
    const capacity = { ...((nodeStatus['capacity'] as JsonObject | undefined) ?? {}), 'projectcalico.org/aws-secondary-ipv4': '7' };
    const allocatable = { ...((nodeStatus['allocatable'] as JsonObject | undefined) ?? {}), 'projectcalico.org/aws-secondary-ipv4': '7' };
    await store!.commit([{ op: 'update', key: nodeKey, value: { ...n.value, status: { ...nodeStatus, capacity, allocatable } }, expectedRevision: n.modRevision }]);
    const described = kubectl(['describe', 'node', node]);
    expect(described).toMatch(/Capacity:[\s\S]*projectcalico\.org\/aws-secondary-ipv4:\s+7/);
    expect(described).toMatch(/Allocatable:[\s\S]*projectcalico\.org\/aws-secondary-ipv4:\s+7/);
  });
});
