/**
 * kube-scheduler places gateway pods by the capacity egw publishes (issue 9, "What Kubernetes consumers
 * read"), on the real control plane of scripts/with-kube: two Nodes registered as a kubelet would, the
 * production AWS fabric component (src/agent/fabric) of each node publishing `projectcalico.org/aws-secondary-ipv4`
 * into the Node's status through the Kubernetes datastore (EC2 and IMDS: egw's emulator through the SDK),
 * and the operator's apps/v1 Deployment of an EgressGateway with more replicas than the nodes hold. The
 * real kube-scheduler binds exactly capacity pods and leaves the rest Pending with its own message; raising
 * the capacity (Secondary-IP mode) lets it place them.
 *
 * Isolation on the shared control plane: a namespace, nodes, pool and FelixConfigurations of this file's
 * own (random suffix); the nodes carry a taint of their own and the gateways the matching toleration and
 * node selector, so no other file's pods land here and these land nowhere else.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsFabric } from '../../src/agent/fabric/aws-fabric.js';
import { EgressGatewayOperator } from '../../src/controller/operator/index.js';
import { KubeDeployments, loadOperatorKubeConfig } from '../../src/controller/operator/kube-deployments.js';
import type { Datastore } from '../../src/datastore/contract.js';
import { eventRecorderFor } from '../../src/datastore/events.js';
import { openDatastore } from '../../src/datastore/open.js';
import { SdkImds } from '../../src/aws/imds.js';
import type { SdkEc2 } from '../../src/aws/sdk-ec2.js';
import type { EventRecorder } from '../../src/platform/events.js';
import { startAwsSim, type AwsSimHandle } from '../../src/sim/aws/server.js';
import { EGRESS_A, fabricWorld, NODE_A1, NODE_A2, sdkFor } from '../aws/helpers.js';
import { eventually, kubeAvailable, kubectl, kubectlOk } from '../support/kubectl.js';
import { applyCrdsAndRoles, at, eventsAbout, getJson, kubeletNode, list, registerNodes, type Json } from './helpers.js';

const RES = 'projectcalico.org/aws-secondary-ipv4';
const suffix = randomBytes(3).toString('hex');
const NS = `egw-sched-${suffix}`;
const NODES: readonly [string, string] = [`egw-sched-${suffix}-a`, `egw-sched-${suffix}-b`];
const INSTANCES: readonly [string, string] = [NODE_A1, NODE_A2];
const POOL = `egw-sched-${suffix}`;
const TEST_KEY = 'egw.io/test-scheduler-capacity';
const REPLICAS = 6;

const felixFor = (node: string, mode: string): string =>
  JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: `node.${node}` }, spec: { awsSecondaryIPSupport: mode } });

/** The gateway pods of the EgressGateway, by where the scheduler put them. */
function gatewayPods(): { bound: Json[]; pending: Json[] } {
  const pods = list(getJson(['pods', '-n', NS, '-l', 'egress-code=gw']), 'items');
  return { bound: pods.filter((p) => typeof at(p, 'spec.nodeName') === 'string'), pending: pods.filter((p) => at(p, 'spec.nodeName') === undefined) };
}

/** The Node's `status.<field>[projectcalico.org/aws-secondary-ipv4]`. */
const published = (node: string, field: 'capacity' | 'allocatable'): unknown => (at(getJson(['node', node]), `status.${field}`) as Record<string, unknown> | undefined)?.[RES];

const scheduledCondition = (pod: Json): Json | undefined => list(pod, 'status.conditions').find((c) => c['type'] === 'PodScheduled');

describe.skipIf(!kubeAvailable)('kube-scheduler and the aws-secondary-ipv4 capacity egw publishes (needs scripts/with-kube)', () => {
  let sim: AwsSimHandle;
  let ec2: SdkEc2;
  let store: Datastore;
  let events: EventRecorder;
  let nodes: { stop(): void } | undefined;
  const fabrics: AwsFabric[] = [];
  let op: EgressGatewayOperator | undefined;

  beforeAll(async () => {
    applyCrdsAndRoles();
    kubectlOk(['create', 'namespace', NS]);
    // Gateway pods carry the pool annotation: egw's admission policy admits them only in an opted-in namespace.
    kubectlOk(['label', 'namespace', NS, 'egw.io/egress-allowed=true']);
    nodes = registerNodes(
      NODES.map((n) => kubeletNode(n, { 'topology.kubernetes.io/zone': 'us-west-2a', [TEST_KEY]: suffix }, [{ key: TEST_KEY, value: suffix, effect: 'NoSchedule' }])),
    );
    kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: POOL }, spec: { cidr: '100.64.1.16/28', blockSize: 32, awsSubnetID: EGRESS_A, nodeSelector: '!all()' } }));
    for (const n of NODES) kubectlOk(['apply', '-f', '-'], felixFor(n, 'EnabledENIPerWorkload'));
    sim = await startAwsSim({ world: fabricWorld(), listen: '127.0.0.1:0', imdsBindings: INSTANCES.map((instanceId) => ({ listen: '127.0.0.1:0', instanceId })) });
    ec2 = sdkFor(sim);
    store = await openDatastore('kubernetes');
    events = eventRecorderFor(store, { controller: 'egw.io/controller', instance: `test-${suffix}` });
  }, 120_000);

  afterAll(async () => {
    await op?.stop();
    for (const f of fabrics) await f.stop();
    await events?.close();
    await store?.close();
    ec2?.destroy();
    await sim?.close();
    // No kubelet confirms the deletion of bound pods: delete them at once, then everything else.
    kubectl(['delete', 'pods', '-n', NS, '--all', '--grace-period=0', '--force', '--ignore-not-found']);
    kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']);
    kubectl(['delete', 'ippool.projectcalico.org', POOL, '--ignore-not-found']);
    for (const n of NODES) kubectl(['delete', 'felixconfiguration.projectcalico.org', `node.${n}`, '--ignore-not-found']);
    kubectl(['delete', 'clusterrolebinding', `egw-gateway-${NS}`, '--ignore-not-found']);
    kubectl(['delete', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${NODES[0]}`, '--ignore-not-found']);
    kubectl(['delete', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${NODES[1]}`, '--ignore-not-found']);
    nodes?.stop();
  }, 120_000);

  it('binds exactly the capacity egw published, leaves the rest Pending with the scheduler\'s message, and places them once capacity grows', async () => {
    // egw's agent publishes the capacity: the fabric component of each node, on the Kubernetes datastore.
    NODES.forEach((node, i) => {
      const fabric = new AwsFabric(
        { store, ec2, imds: new SdkImds({ endpoint: sim.imdsBindingUrls[INSTANCES[i]!]! }), events },
        { nodeName: node, cluster: `sched-${suffix}`, resyncIntervalMs: 2_000, ec2Policy: { retryBaseMs: 5, throttleBaseMs: 20, maxBackoffMs: 200 }, retryBaseMs: 50, retryMaxMs: 500 },
      );
      fabric.start();
      fabrics.push(fabric);
    });
    // t3.large: 3 ENIs on its card; ENI-per-workload leaves 2 for gateways on each node.
    const capacityIs = (value: string): boolean => NODES.every((n) => published(n, 'capacity') === value && published(n, 'allocatable') === value);
    expect(await eventually(() => capacityIs('2'), 60_000)).toBe(true);
    // What the kubelet published stays (the fabric writes only its own entries).
    expect(at(getJson(['node', NODES[0]]), 'status.allocatable.cpu')).toBe('4');

    // The operator's Deployment: more replicas than the 4 the nodes hold, each asking for one address.
    kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'operator.tigera.io/v1',
        kind: 'EgressGateway',
        metadata: { name: 'gw', namespace: NS },
        spec: {
          replicas: REPLICAS,
          ipPools: [{ name: POOL }],
          aws: { nativeIP: 'Enabled' },
          template: {
            metadata: { labels: { 'egress-code': 'gw' } },
            spec: { nodeSelector: { [TEST_KEY]: suffix }, tolerations: [{ key: TEST_KEY, operator: 'Equal', value: suffix, effect: 'NoSchedule' }] },
          },
        },
      }),
    );
    const t0 = Date.now();
    op = new EgressGatewayOperator({ store, workloads: new KubeDeployments({ kubeConfig: loadOperatorKubeConfig(undefined), store }), events }, { image: 'registry.invalid/egw:test', resyncIntervalMs: 0 });
    expect((await op.reconcile(NS, 'gw')).created).toEqual(['gw']);
    const main = list(getJson(['deployment', '-n', NS, 'gw']), 'spec.template.spec.containers').find((c) => c['name'] === 'egress-gateway');
    expect(at(main, 'resources')).toEqual({ requests: { [RES]: '1' }, limits: { [RES]: '1' } });

    // kube-controller-manager makes the pods; kube-scheduler binds 2 per node and no more.
    expect(
      await eventually(() => {
        const { bound, pending } = gatewayPods();
        return bound.length === 4 && pending.length === REPLICAS - 4 && pending.every((p) => at(scheduledCondition(p), 'reason') === 'Unschedulable');
      }, 90_000),
    ).toBe(true);
    const placedMs = Date.now() - t0;
    const { bound, pending } = gatewayPods();
    for (const n of NODES) expect(bound.filter((p) => at(p, 'spec.nodeName') === n)).toHaveLength(2);
    for (const p of pending) {
      const c = scheduledCondition(p)!;
      expect(c).toMatchObject({ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' });
      expect(c['message']).toContain(`Insufficient ${RES}`);
      expect(c['message']).toMatch(/^0\/\d+ nodes are available: /);
    }
    // The scheduler's own event says the same on the pod.
    const failed = list(getJson(['events', '-n', NS, '--field-selector', `involvedObject.name=${at(pending[0], 'metadata.name') as string},reason=FailedScheduling`]), 'items');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]!['message']).toContain(`Insufficient ${RES}`);
    // The operator's own Normal event on the EgressGateway.
    const created = eventsAbout(NS, 'gw').find((e) => e['reason'] === 'Created');
    expect(created).toMatchObject({ type: 'Normal', reportingController: 'egw.io/controller', note: `created Deployment ${NS}/gw` });
    expect(at(created, 'regarding')).toMatchObject({ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: 'gw', namespace: NS });

    // More capacity: Secondary-IP mode on the first node holds (3 − 1) × (12 − 1) = 22 gateways.
    const t1 = Date.now();
    kubectlOk(['apply', '-f', '-'], felixFor(NODES[0], 'Enabled'));
    expect(await eventually(() => published(NODES[0], 'allocatable') === '22', 60_000)).toBe(true);
    expect(await eventually(() => gatewayPods().bound.length === REPLICAS, 90_000)).toBe(true);
    // The figures of docs/kubernetes.md: EgressGateway → 4 bound + 2 Unschedulable; capacity raised → all bound.
    console.info(`scheduler-capacity: placed by capacity in ${placedMs} ms; all bound ${Date.now() - t1} ms after the FelixConfiguration change`);
    const after = gatewayPods().bound;
    expect(after.filter((p) => at(p, 'spec.nodeName') === NODES[0])).toHaveLength(4);
    expect(after.filter((p) => at(p, 'spec.nodeName') === NODES[1])).toHaveLength(2);
    for (const p of after) expect(scheduledCondition(p)).toMatchObject({ status: 'True' });
  }, 300_000);
});
