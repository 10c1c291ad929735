/**
 * The operator's reconciler against a real SQLite store in a temp dir: pods created, scaled, rolled and
 * removed; foreign pods untouched; a second pass writes nothing; a crash between commits converges;
 * status conditions; concurrent writes; and the running loop.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EgressGateway, Pod } from '../../../src/api/index.js';
import { EgressGatewayOperator, SequentialIds, type Container, type OperatorOptions } from '../../../src/controller/operator/index.js';
import type { Datastore } from '../../../src/datastore/contract.js';
import { FakeClock } from '../../../src/platform/clock.js';
import type { SqliteDatastore } from '../../../src/datastore/sqlite/sqlite-datastore.js';
import {
  apply,
  finishTermination,
  getGateway,
  HookedStore,
  podsIn,
  referenceResources,
  referenceRed,
  running,
  scheduled,
  tempStore,
  updatePod,
} from './helpers.js';

const NS = 'calico-egress';
const RED = 'egress-gateway-red';
const IMAGE = 'registry.example/egw:test';

let store: SqliteDatastore;
let cleanup: () => Promise<void>;
let clock: FakeClock;

beforeEach(async () => {
  ({ store, cleanup } = await tempStore('egw-operator-test-'));
  clock = new FakeClock(Date.parse('2024-05-01T00:00:00.000Z'));
});
afterEach(async () => {
  await cleanup();
});

function operator(s: Datastore = store, options: OperatorOptions = {}): EgressGatewayOperator {
  return new EgressGatewayOperator({ store: s, clock, ids: new SequentialIds() }, { image: IMAGE, resyncIntervalMs: 0, ...options });
}

/** The reference world without its EgressGateway and client pod. */
async function applyWorld(): Promise<void> {
  await apply(store, ...referenceResources().filter((r) => r.kind !== 'EgressGateway' && r.kind !== 'Pod'));
}

async function applyRed(change: (spec: EgressGateway['spec']) => EgressGateway['spec'] = (s) => s): Promise<void> {
  const r = referenceRed();
  await apply(store, { ...r, spec: change(structuredClone(r.spec)) });
}

async function gatewayPods(): Promise<Pod[]> {
  return (await podsIn(store, NS)).filter((p) => p.metadata.ownerReferences !== undefined);
}

const active = (pods: Pod[]): Pod[] => pods.filter((p) => p.metadata.deletionTimestamp === undefined);

/** Schedules every unscheduled gateway pod and makes it run, ready, as the lab's scheduler and runtime would. */
async function scheduleAndRun(ready = true): Promise<void> {
  let i = 10;
  for (const p of await gatewayPods()) {
    if (p.spec.nodeName !== undefined || p.metadata.deletionTimestamp !== undefined) continue;
    i += 1;
    await updatePod(store, NS, p.metadata.name, (x) => running(`100.64.0.${i}`, ready)(scheduled(`node-${i % 2}`)(x)));
  }
}

describe('EgressGatewayOperator: creating and converging', () => {
  it('creates the replicas as Pod records the scheduler can take, and reports Ready', async () => {
    await applyWorld();
    await applyRed();
    const result = await operator().reconcile(NS, RED);
    expect(result.state).toBe('Ready');
    expect(result.created).toHaveLength(2);

    const pods = await gatewayPods();
    expect(pods).toHaveLength(2);
    const egw = (await getGateway(store, NS, RED))!;
    const hash = pods[0]!.metadata.labels?.['pod-template-hash'];
    expect(hash).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]+$/);
    for (const p of pods) {
      expect(p.metadata.name).toMatch(new RegExp(`^egress-gateway-red-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
      expect(p.metadata.labels).toEqual({ 'egress-code': 'red', 'pod-template-hash': hash });
      expect(p.metadata.annotations).toEqual({ 'cni.projectcalico.org/ipv4pools': '["egress-red-west-1","egress-red-west-2"]' });
      expect(p.metadata.ownerReferences).toEqual([{ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: RED, uid: egw.metadata.uid, controller: true, blockOwnerDeletion: true }]);
      expect(p.metadata.creationTimestamp).toBe('2024-05-01T00:00:00.000Z');
      expect(p.spec.nodeName).toBeUndefined();
      expect(p.status).toEqual({ phase: 'Pending' });
      expect(p.spec.containers.map((c) => c.name)).toEqual(['egress-gateway']);
      expect(p.spec.containers[0]!.image).toBe(IMAGE);
      expect(p.spec.containers[0]!.resources).toEqual({ requests: { 'projectcalico.org/aws-secondary-ipv4': '1' }, limits: { 'projectcalico.org/aws-secondary-ipv4': '1' } });
      expect(p.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
      expect(p.spec.terminationGracePeriodSeconds).toBe(0);
      expect((p.spec as Record<string, unknown>)['topologySpreadConstraints']).toHaveLength(1);
    }

    expect(egw.status).toMatchObject({ state: 'Ready', replicas: 2, updatedReplicas: 2, readyReplicas: 0, availableReplicas: 0 });
    expect((egw.status as { conditions: unknown[] }).conditions).toEqual([
      { type: 'Ready', status: 'True', reason: 'AllObjectsAvailable', message: 'All objects available', lastTransitionTime: '2024-05-01T00:00:00.000Z', observedGeneration: 1 },
      { type: 'Progressing', status: 'False', reason: 'Unknown', message: '', lastTransitionTime: '2024-05-01T00:00:00.000Z', observedGeneration: 1 },
      { type: 'Degraded', status: 'False', reason: 'Unknown', message: '', lastTransitionTime: '2024-05-01T00:00:00.000Z', observedGeneration: 1 },
    ]);
  });

  it('a second pass changes nothing (the store revision does not move)', async () => {
    await applyWorld();
    await applyRed();
    const op = operator();
    await op.reconcile(NS, RED);
    const revision = await store.currentRevision();
    clock.advance(60_000);
    const again = await op.reconcile(NS, RED);
    expect(again).toMatchObject({ state: 'Ready', created: [], deleted: [], wrote: false });
    expect(await op.reconcileAll()).toEqual([{ namespace: NS, name: RED, state: 'Ready', created: [], deleted: [], wrote: false }]);
    expect(await store.currentRevision()).toBe(revision);
  });

  it('readiness reported by the runtime shows in the counts, without changing the pods', async () => {
    await applyWorld();
    await applyRed();
    const op = operator();
    await op.reconcile(NS, RED);
    await scheduleAndRun(true);
    const r = await op.reconcile(NS, RED);
    expect(r).toMatchObject({ created: [], deleted: [] });
    const egw = (await getGateway(store, NS, RED))!;
    expect(egw.status).toMatchObject({ state: 'Ready', replicas: 2, readyReplicas: 2, availableReplicas: 2 });
    // The Ready condition did not flip, so its transition time stays.
    expect((egw.status as { conditions: { lastTransitionTime: string }[] }).conditions[0]!.lastTransitionTime).toBe('2024-05-01T00:00:00.000Z');
  });

  it('writes back the defaults into an EgressGateway stored without them (generation moves once)', async () => {
    await applyWorld();
    const raw = {
      apiVersion: 'operator.tigera.io/v1',
      kind: 'EgressGateway',
      metadata: { name: 'bare', namespace: NS, uid: 'bare-uid', generation: 1 },
      spec: { ipPools: [{ name: 'egress-blue-west-1' }] },
    };
    await store.commit([{ op: 'create', key: { kind: 'EgressGateway', namespace: NS, name: 'bare' }, value: raw }]);
    const op = operator();
    expect((await op.reconcile(NS, 'bare')).state).toBe('Ready');
    const egw = (await getGateway(store, NS, 'bare'))!;
    expect(egw.metadata.generation).toBe(2);
    expect(egw.spec).toEqual({
      ipPools: [{ name: 'egress-blue-west-1' }],
      replicas: 1,
      logSeverity: 'Info',
      template: {
        metadata: { labels: { 'projectcalico.org/egw': 'bare' } },
        spec: {
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { labelSelector: { matchLabels: { 'projectcalico.org/egw': 'bare' } }, topologyKey: 'topology.kubernetes.io/zone' } }],
            },
          },
        },
      },
    });
    expect((egw.status as { conditions: { observedGeneration: number }[] }).conditions.every((c) => c.observedGeneration === 2)).toBe(true);
    const pods = await gatewayPods();
    expect(pods).toHaveLength(1);
    expect(pods[0]!.metadata.labels?.['projectcalico.org/egw']).toBe('bare');
    expect((await op.reconcile(NS, 'bare')).wrote).toBe(false);
  });
});

describe('EgressGatewayOperator: scaling', () => {
  it('2 → 0 → 2 with unscheduled pods: records are deleted at once', async () => {
    await applyWorld();
    await applyRed();
    const op = operator();
    await op.reconcile(NS, RED);
    await applyRed((s) => ({ ...s, replicas: 0 }));
    const down = await op.reconcile(NS, RED);
    expect(down.deleted).toHaveLength(2);
    expect(await gatewayPods()).toEqual([]);
    expect((await getGateway(store, NS, RED))!.status).toMatchObject({ state: 'Ready', replicas: 0 });
    await applyRed((s) => ({ ...s, replicas: 2 }));
    expect((await op.reconcile(NS, RED)).created).toHaveLength(2);
    expect(await gatewayPods()).toHaveLength(2);
  });

  it('2 → 0 → 2 with running pods: pods terminate gracefully (deletionTimestamp), the runtime removes them, new ones come', async () => {
    await applyWorld();
    await applyRed((s) => ({ ...s, template: { ...s.template, spec: { ...s.template?.spec, terminationGracePeriodSeconds: 60 } } }));
    const op = operator();
    await op.reconcile(NS, RED);
    await scheduleAndRun(true);
    await applyRed((s) => ({ ...s, replicas: 0, template: { ...s.template, spec: { ...s.template?.spec, terminationGracePeriodSeconds: 60 } } }));
    const down = await op.reconcile(NS, RED);
    expect(down.deleted).toHaveLength(2);
    const terminating = await gatewayPods();
    expect(terminating).toHaveLength(2);
    for (const p of terminating) {
      expect(p.metadata.deletionTimestamp).toBe('2024-05-01T00:01:00.000Z');
      expect(p.metadata.deletionGracePeriodSeconds).toBe(60);
      expect(p.spec.nodeName).toBeDefined();
    }
    // Terminating pods are left to the runtime: another pass does not touch them.
    expect((await op.reconcile(NS, RED)).wrote).toBe(false);
    await applyRed((s) => ({ ...s, replicas: 2, template: { ...s.template, spec: { ...s.template?.spec, terminationGracePeriodSeconds: 60 } } }));
    // Terminating pods do not count: two new ones are created beside them.
    expect((await op.reconcile(NS, RED)).created).toHaveLength(2);
    expect(active(await gatewayPods())).toHaveLength(2);
    expect(await finishTermination(store, NS)).toHaveLength(2);
    expect(await gatewayPods()).toHaveLength(2);
    expect((await op.reconcile(NS, RED)).wrote).toBe(false);
  });

  it('scaling down removes unscheduled pods first, then not-ready, then the newest', async () => {
    await applyWorld();
    await applyRed((s) => ({ ...s, replicas: 5 }));
    const op = operator();
    await op.reconcile(NS, RED);
    const names = (await gatewayPods()).map((p) => p.metadata.name).sort();
    expect(names).toHaveLength(5);
    const [a, b, c, d, e] = names as [string, string, string, string, string];
    // a, b: running and ready (b became ready later); c: running, not ready; d: unscheduled; e: running and ready, created last
    await updatePod(store, NS, a, (p) => running('100.64.0.5', true, '2024-05-01T00:00:10.000Z')(scheduled('node-0')(p)));
    await updatePod(store, NS, b, (p) => running('100.64.0.6', true, '2024-05-01T00:00:20.000Z')(scheduled('node-1')(p)));
    await updatePod(store, NS, c, (p) => running('100.64.0.7', false)(scheduled('node-0')(p)));
    await updatePod(store, NS, e, (p) => running('100.64.0.9', true, '2024-05-01T00:00:10.000Z')(scheduled('node-1')(p)));
    await updatePod(store, NS, e, (p) => ({ ...p, metadata: { ...p.metadata, creationTimestamp: '2024-05-01T00:00:05.000Z' } }));

    await applyRed((s) => ({ ...s, replicas: 4 }));
    expect((await op.reconcile(NS, RED)).deleted).toEqual([d]);
    await applyRed((s) => ({ ...s, replicas: 3 }));
    expect((await op.reconcile(NS, RED)).deleted).toEqual([c]);
    await applyRed((s) => ({ ...s, replicas: 2 }));
    expect((await op.reconcile(NS, RED)).deleted).toEqual([b]);
    await applyRed((s) => ({ ...s, replicas: 1 }));
    expect((await op.reconcile(NS, RED)).deleted).toEqual([e]);
    expect(active(await gatewayPods()).map((p) => p.metadata.name)).toEqual([a]);
  });
});

describe('EgressGatewayOperator: rolling a template change', () => {
  it('creates one new pod at a time and deletes an old one only once a new one is ready', async () => {
    await applyWorld();
    await applyRed();
    const op = operator();
    await op.reconcile(NS, RED);
    await scheduleAndRun(true);
    const oldHash = (await gatewayPods())[0]!.metadata.labels?.['pod-template-hash'];

    await applyRed((s) => ({ ...s, logSeverity: 'Debug' }));
    const first = await op.reconcile(NS, RED);
    expect(first).toMatchObject({ state: 'Progressing', deleted: [] });
    expect(first.created).toHaveLength(1);
    let egw = (await getGateway(store, NS, RED))!;
    expect(egw.status).toMatchObject({ state: 'Progressing', replicas: 3, updatedReplicas: 1, readyReplicas: 2 });
    expect((egw.status as { conditions: unknown[] }).conditions[1]).toMatchObject({ type: 'Progressing', status: 'True', reason: 'ResourceNotReady', message: 'Reconciling' });
    // Nothing more happens while the new pod is not ready.
    expect((await op.reconcile(NS, RED)).wrote).toBe(false);

    const isReady = (p: Pod): boolean => ((p.status as { conditions?: { type: string; status: string }[] }).conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
    let created = first.created.length;
    for (let round = 0; round < 6; round++) {
      // The lab's scheduler and runtime: the new pod runs and becomes ready; terminated pods go.
      await scheduleAndRun(true);
      await finishTermination(store, NS);
      const r = await op.reconcile(NS, RED);
      created += r.created.length;
      const pods = active(await gatewayPods());
      expect(pods.length).toBeLessThanOrEqual(3);
      expect(pods.filter(isReady).length).toBeGreaterThanOrEqual(2);
      if (r.state === 'Ready') break;
    }
    expect(created).toBe(2);
    const pods = active(await gatewayPods());
    expect(pods).toHaveLength(2);
    expect(pods.every((p) => p.metadata.labels?.['pod-template-hash'] !== oldHash)).toBe(true);
    for (const p of pods) expect((p.spec.containers[0] as unknown as Container).env).toContainEqual({ name: 'LOG_SEVERITY', value: 'Debug' });
    egw = (await getGateway(store, NS, RED))!;
    expect(egw.status).toMatchObject({ state: 'Ready', replicas: 2, updatedReplicas: 2 });
  });

  it('a changed FelixConfiguration (VXLAN VNI) rolls the gateways too', async () => {
    await applyWorld();
    await applyRed();
    const op = operator();
    await op.reconcile(NS, RED);
    const felix = referenceResources().find((r) => r.kind === 'FelixConfiguration')!;
    await apply(store, { ...felix, spec: { ...(felix.spec as object), egressIPVXLANVNI: 5000 } });
    const r = await op.reconcile(NS, RED);
    // The rollout starts: one new pod, within the surge of 1.
    expect(r).toMatchObject({ state: 'Progressing', deleted: [] });
    expect(r.created).toHaveLength(1);
    let pods = active(await gatewayPods());
    for (let i = 0; i < 5 && (await op.reconcile(NS, RED)).state !== 'Ready'; i++) await scheduleAndRun(true);
    pods = active(await gatewayPods());
    expect(pods).toHaveLength(2);
    for (const p of pods) expect((p.spec.initContainers?.[0] as unknown as Container).env).toContainEqual({ name: 'EGRESS_VXLAN_VNI', value: '5000' });
  });
});

describe('EgressGatewayOperator: deletion and ownership', () => {
  it('deleting the EgressGateway removes its pods (unscheduled at once, running ones gracefully)', async () => {
    await applyWorld();
    await applyRed();
    const op = operator();
    await op.reconcile(NS, RED);
    const [first] = await gatewayPods();
    await updatePod(store, NS, first!.metadata.name, (p) => running('100.64.0.5', true)(scheduled('node-0')(p)));
    const stored = await store.get({ kind: 'EgressGateway', namespace: NS, name: RED });
    await store.commit([{ op: 'delete', key: stored!.key, expectedRevision: stored!.modRevision }]);

    const results = await op.reconcileAll();
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ namespace: NS, name: RED, state: 'Absent' });
    expect(results[0]!.deleted).toHaveLength(2);
    const left = await gatewayPods();
    expect(left.map((p) => p.metadata.name)).toEqual([first!.metadata.name]);
    expect(left[0]!.metadata.deletionTimestamp).toBeDefined();
    await finishTermination(store, NS);
    expect(await gatewayPods()).toEqual([]);
    expect(await op.reconcileAll()).toEqual([]);
  });

  it('never touches pods it does not own: same labels without owner, another controller, another namespace', async () => {
    await applyWorld();
    await applyRed();
    const lookalike = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'hand-made-red', namespace: NS, labels: { 'egress-code': 'red' } }, spec: { containers: [{ name: 'gw', image: 'x' }] } } as Pod;
    const otherOwner = {
      ...lookalike,
      metadata: { ...lookalike.metadata, name: 'rs-owned', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'egress-gateway-red-abc', uid: 'rs', controller: true }] },
    } as Pod;
    const elsewhere = { ...lookalike, metadata: { ...lookalike.metadata, namespace: 'my-namespace' } } as Pod;
    await apply(store, lookalike, otherOwner, elsewhere);
    const before = [...(await podsIn(store, NS)), ...(await podsIn(store, 'my-namespace'))];

    const op = operator();
    await op.reconcile(NS, RED);
    await applyRed((s) => ({ ...s, replicas: 0 }));
    await op.reconcile(NS, RED);
    const stored = await store.get({ kind: 'EgressGateway', namespace: NS, name: RED });
    await store.commit([{ op: 'delete', key: stored!.key }]);
    await op.reconcileAll();

    const after = [...(await podsIn(store, NS)), ...(await podsIn(store, 'my-namespace'))];
    expect(after).toEqual(before);
  });

  it('pods of an earlier EgressGateway of the same name (another uid) are garbage-collected', async () => {
    await applyWorld();
    await applyRed();
    const op = operator();
    await op.reconcile(NS, RED);
    const oldNames = (await gatewayPods()).map((p) => p.metadata.name);
    // Deleted and created again while the operator was not running: a new uid.
    const stored = await store.get({ kind: 'EgressGateway', namespace: NS, name: RED });
    await store.commit([{ op: 'delete', key: stored!.key }]);
    await applyRed();
    const r = await op.reconcile(NS, RED);
    expect(r.deleted.sort()).toEqual(oldNames.sort());
    expect(r.created).toHaveLength(2);
    const egw = (await getGateway(store, NS, RED))!;
    const pods = await gatewayPods();
    expect(pods).toHaveLength(2);
    for (const p of pods) expect((p.metadata.ownerReferences?.[0] as { uid: string }).uid).toBe(egw.metadata.uid);
  });

  it('ended pods (Failed) are cleared and replaced', async () => {
    await applyWorld();
    await applyRed();
    const op = operator();
    await op.reconcile(NS, RED);
    const [first] = await gatewayPods();
    await updatePod(store, NS, first!.metadata.name, (p) => ({ ...scheduled('node-0')(p), status: { phase: 'Failed' } }));
    const r = await op.reconcile(NS, RED);
    expect(r.created).toHaveLength(1);
    expect(r.deleted).toEqual([first!.metadata.name]);
    expect(active(await gatewayPods()).filter((p) => (p.status as { phase: string }).phase !== 'Failed')).toHaveLength(2);
  });
});

describe('EgressGatewayOperator: invalid input', () => {
  it('Degraded with the operator message; pods untouched; fixing it makes it Ready again', async () => {
    await applyWorld();
    await applyRed();
    const op = operator();
    await op.reconcile(NS, RED);
    const pods = await gatewayPods();
    // A pool the gateway names disappears.
    const pool = await store.get({ kind: 'IPPool', name: 'egress-red-west-2' });
    await store.commit([{ op: 'delete', key: pool!.key }]);
    clock.advance(5_000);
    const r = await op.reconcile(NS, RED);
    expect(r).toMatchObject({ state: 'Degraded', message: 'Error validating egress gateway err = ippools.projectcalico.org "egress-red-west-2" not found', created: [], deleted: [] });
    expect(await gatewayPods()).toEqual(pods);
    const egw = (await getGateway(store, NS, RED))!;
    expect(egw.status).toMatchObject({ state: 'Degraded', replicas: 2, updatedReplicas: 2 });
    expect((egw.status as { conditions: unknown[] }).conditions).toEqual([
      { type: 'Ready', status: 'False', reason: 'Unknown', message: '', lastTransitionTime: '2024-05-01T00:00:05.000Z', observedGeneration: 1 },
      { type: 'Progressing', status: 'False', reason: 'Unknown', message: '', lastTransitionTime: '2024-05-01T00:00:00.000Z', observedGeneration: 1 },
      {
        type: 'Degraded',
        status: 'True',
        reason: 'Error_reconciling_Egress_Gateway',
        message: 'Error validating egress gateway err = ippools.projectcalico.org "egress-red-west-2" not found',
        lastTransitionTime: '2024-05-01T00:00:05.000Z',
        observedGeneration: 1,
      },
    ]);
    // Staying degraded writes nothing more.
    expect((await op.reconcile(NS, RED)).wrote).toBe(false);

    await applyWorld();
    expect((await op.reconcile(NS, RED)).state).toBe('Ready');
    expect(await gatewayPods()).toEqual(pods);
  });

  it.each<[string, (s: EgressGateway['spec']) => EgressGateway['spec'], string]>([
    ['no pools', (s) => ({ ...s, ipPools: [] }), 'at least one IPPool must be specified'],
    ['a cidr with no pool', (s) => ({ ...s, ipPools: [{ cidr: '100.64.9.0/30' }] }), 'IPPool matching CIDR = 100.64.9.0/30 not present'],
    ['elastic IPs without nativeIP', (s) => ({ ...s, aws: { nativeIP: 'Disabled', elasticIPs: ['203.0.113.10'] } }), 'NativeIP must be enabled when elastic IPs are used'],
    ['no probe', (s) => ({ ...s, egressGatewayFailureDetection: { healthTimeoutDataStoreSeconds: 30 } }), 'either ICMP or HTTP probe must be configured'],
  ])('an EgressGateway stored with %s (written around the CLI) is Degraded and gets no pods', async (_what, change, message) => {
    await applyWorld();
    const r = referenceRed();
    const value = { ...r, metadata: { ...r.metadata, uid: 'u', generation: 1 }, spec: change(structuredClone(r.spec)) };
    await store.commit([{ op: 'create', key: { kind: 'EgressGateway', namespace: NS, name: RED }, value: value as never }]);
    const result = await operator().reconcile(NS, RED);
    expect(result).toMatchObject({ state: 'Degraded', message: `Error validating egress gateway err = ${message}` });
    expect(await gatewayPods()).toEqual([]);
  });

  it("an EgressGateway that breaks egw's own rules is Degraded with that rule's message", async () => {
    await applyWorld();
    const r = referenceRed();
    const value = { ...r, metadata: { ...r.metadata, uid: 'u' }, spec: { ...r.spec, template: { metadata: { labels: { 'egress-code': 'not a label value!' } } } } };
    await store.commit([{ op: 'create', key: { kind: 'EgressGateway', namespace: NS, name: RED }, value: value as never }]);
    const result = await operator().reconcile(NS, RED);
    expect(result.state).toBe('Degraded');
    expect(result.message).toMatch(/^Error validating egress gateway err = spec\.template\.metadata\.labels/);
    expect(await gatewayPods()).toEqual([]);
  });
});

describe('EgressGatewayOperator: crashes and concurrent writers', () => {
  it('a crash between commits converges on the next pass to what one clean pass gives', async () => {
    await applyWorld();
    await applyRed((s) => ({ ...s, replicas: 200 }));
    // 200 pods take two commits: crash before the second, then before the status write.
    const hooked = new HookedStore(store);
    hooked.crashAtCommit = 2;
    await expect(operator(hooked).reconcile(NS, RED)).rejects.toThrow(/injected crash/);
    expect((await gatewayPods()).length).toBe(127);
    expect((await getGateway(store, NS, RED))!.status).toBeUndefined();

    const again = await operator().reconcile(NS, RED);
    expect(again.created).toHaveLength(73);
    const pods = await gatewayPods();
    expect(pods).toHaveLength(200);
    expect(new Set(pods.map((p) => p.metadata.labels?.['pod-template-hash'])).size).toBe(1);
    expect((await getGateway(store, NS, RED))!.status).toMatchObject({ state: 'Ready', replicas: 200 });
    expect((await operator().reconcile(NS, RED)).wrote).toBe(false);
  });

  it('a crash after the pods but before the status: the next pass only writes the status', async () => {
    await applyWorld();
    await applyRed();
    const hooked = new HookedStore(store);
    hooked.crashAtCommit = 2;
    await expect(operator(hooked).reconcile(NS, RED)).rejects.toThrow(/injected crash/);
    expect(await gatewayPods()).toHaveLength(2);
    const r = await operator().reconcile(NS, RED);
    expect(r).toMatchObject({ state: 'Ready', created: [], deleted: [], wrote: true });
    expect(await gatewayPods()).toHaveLength(2);
  });

  it('a concurrent change of the EgressGateway between read and write: Conflict, re-read, the new spec wins', async () => {
    await applyWorld();
    await applyRed();
    const hooked = new HookedStore(store);
    hooked.beforeCommit = async () => {
      await applyRed((s) => ({ ...s, replicas: 3 }));
    };
    const r = await operator(hooked).reconcile(NS, RED);
    expect(r.state).toBe('Ready');
    expect(r.created).toHaveLength(3);
    expect(await gatewayPods()).toHaveLength(3);
  });

  it('pods bound by the scheduler while the operator deletes one: Conflict, then graceful termination', async () => {
    await applyWorld();
    await applyRed();
    const op = operator();
    await op.reconcile(NS, RED);
    await applyRed((s) => ({ ...s, replicas: 1 }));
    const hooked = new HookedStore(store);
    hooked.beforeCommit = async (ops) => {
      expect(ops.some((o) => o.op === 'delete' && o.key.kind === 'Pod')).toBe(true);
      for (const p of await gatewayPods()) await updatePod(store, NS, p.metadata.name, scheduled('node-0'));
    };
    const r = await operator(hooked).reconcile(NS, RED);
    expect(r.deleted).toHaveLength(1);
    const pods = await gatewayPods();
    expect(pods).toHaveLength(2);
    const victim = pods.find((p) => p.metadata.name === r.deleted[0])!;
    expect(victim.spec.nodeName).toBe('node-0');
    expect(victim.metadata.deletionTimestamp).toBeDefined();
  });
});

describe('EgressGatewayOperator: running', () => {
  /** Polls the store until `cond` holds (a hang guard, not a timing assertion). */
  async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('follows the store: creates, scales, removes; stop() ends it', async () => {
    await applyWorld();
    const op = new EgressGatewayOperator({ store, ids: new SequentialIds() }, { image: IMAGE, resyncIntervalMs: 0 });
    op.start();
    try {
      await applyRed();
      await until(async () => (await gatewayPods()).length === 2 && (await getGateway(store, NS, RED))?.status !== undefined, 'two pods');
      expect(op.inSync).toBe(true);
      await applyRed((s) => ({ ...s, replicas: 3 }));
      await until(async () => (await gatewayPods()).length === 3, 'three pods');
      // A pool change re-validates: the gateway goes Degraded.
      const pool = await store.get({ kind: 'IPPool', name: 'egress-red-west-1' });
      await store.commit([{ op: 'delete', key: pool!.key }]);
      await until(async () => (await getGateway(store, NS, RED))?.status?.state === 'Degraded', 'Degraded');
      await applyWorld();
      await until(async () => (await getGateway(store, NS, RED))?.status?.state === 'Ready', 'Ready again');
      const stored = await store.get({ kind: 'EgressGateway', namespace: NS, name: RED });
      await store.commit([{ op: 'delete', key: stored!.key }]);
      await until(async () => (await gatewayPods()).length === 0, 'no pods');
    } finally {
      await op.stop();
    }
    await op.stop();
    await applyRed();
    await new Promise((r) => setTimeout(r, 100));
    expect(await gatewayPods()).toEqual([]);
  });

  it('a failing store write is retried after a backoff on the clock; stop() returns with a fake clock', async () => {
    await applyWorld();
    const hooked = new HookedStore(store);
    hooked.crashAtCommit = 1;
    const op = new EgressGatewayOperator({ store: hooked, clock, ids: new SequentialIds() }, { image: IMAGE, resyncIntervalMs: 1_000, backoffInitialMs: 500 });
    op.start();
    try {
      await applyRed();
      await until(async () => hooked.commits >= 1, 'the first (failing) commit');
      await new Promise((r) => setTimeout(r, 100));
      expect(await gatewayPods()).toEqual([]);
      // The retry waits for the backoff on the injected clock.
      clock.advance(500);
      await until(async () => (await gatewayPods()).length === 2, 'two pods after the retry');
      clock.advance(1_000);
    } finally {
      await op.stop();
    }
  });
});
