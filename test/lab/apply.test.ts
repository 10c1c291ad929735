import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Datastore } from '../../src/datastore/contract.js';
import { openDatastore } from '../../src/datastore/open.js';
import { applyScenario, nodeRecords } from '../../src/lab/apply.js';
import { loadScenario } from '../../src/lab/scenario.js';

let dir: string;
let store: Datastore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'egw-lab-apply-'));
  store = await openDatastore(join(dir, 'egw.db'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('applying a scenario', () => {
  it('writes FelixConfiguration, the Nodes (zone, instance type, InternalIP) and every manifest in one go', async () => {
    const scenario = loadScenario();
    const r = await applyScenario(store, scenario);
    expect(r.warnings).toEqual([]);
    const kinds: Record<string, number> = {};
    for (const o of r.outcomes) kinds[o.kind] = (kinds[o.kind] ?? 0) + 1;
    expect(kinds).toEqual({ FelixConfiguration: 1, Node: 4, IPReservation: 1, IPPool: 5, Namespace: 3, EgressGateway: 2, EgressGatewayPolicy: 1, Pod: 3 });
    const node = (await store.get({ kind: 'Node', name: 'node-b1' }))!.value as { metadata: { labels: Record<string, string> }; status: { addresses: { address: string }[] } };
    expect(node.metadata.labels).toMatchObject({ 'topology.kubernetes.io/zone': 'us-west-2b', 'node.kubernetes.io/instance-type': 't3.large', 'kubernetes.io/os': 'linux' });
    expect(node.status.addresses[0]!.address).toBe('100.64.20.10');
    expect(nodeRecords(scenario).map((n) => n.spec?.providerID)).toContain(`aws:///us-west-2b/${scenario.nodes[2]!.instanceId}`);
  });

  it('a re-run keeps what the cluster added: a pod\'s binding and status, a node\'s status', async () => {
    const scenario = loadScenario();
    await applyScenario(store, scenario);
    const key = { kind: 'Pod', namespace: 'my-namespace', name: 'my-netcat-pod' };
    const pod = (await store.get(key))!;
    const bound = { ...pod.value, spec: { ...(pod.value['spec'] as object), nodeName: 'node-a1' }, status: { phase: 'Running', podIP: '10.48.0.5' } };
    await store.commit([{ op: 'update', key, value: bound }]);
    const nodeKey = { kind: 'Node', name: 'node-a1' };
    const n = (await store.get(nodeKey))!;
    await store.commit([{ op: 'update', key: nodeKey, value: { ...n.value, status: { ...(n.value['status'] as object), capacity: { 'projectcalico.org/aws-secondary-ipv4': '2' } } } }]);
    const again = await applyScenario(store, scenario);
    expect(again.outcomes.every((o) => o.outcome === 'unchanged')).toBe(true);
    expect((await store.get(key))!.value).toMatchObject({ spec: { nodeName: 'node-a1' }, status: { podIP: '10.48.0.5' } });
    expect((await store.get(nodeKey))!.value).toMatchObject({ status: { capacity: { 'projectcalico.org/aws-secondary-ipv4': '2' } } });
  });
});

describe('applying a scenario to a running lab (up again)', () => {
  it('re-creates deleted resources and keeps changed ones', async () => {
    const scenario = loadScenario();
    await applyScenario(store, scenario);
    const egw = { kind: 'EgressGateway', namespace: 'calico-egress', name: 'egress-gateway-red' };
    const cur = (await store.get(egw))!;
    await store.commit([{ op: 'update', key: egw, value: { ...cur.value, spec: { ...(cur.value['spec'] as object), replicas: 0 } } }]);
    await store.commit([{ op: 'delete', key: { kind: 'EgressGatewayPolicy', name: 'egw-policy1' } }]);
    const r = await applyScenario(store, scenario, { createOnly: true });
    expect(r.outcomes.filter((o) => o.outcome !== 'unchanged')).toEqual([{ kind: 'EgressGatewayPolicy', name: 'egw-policy1', outcome: 'created' }]);
    expect((await store.get(egw))!.value).toMatchObject({ spec: { replicas: 0 } });
  });
});
