/**
 * Events for what a user must see, on the real API server of scripts/with-kube (docs/kubernetes.md,
 * "Events"): the events.k8s.io/v1 recorder (one Event per series, regarding the object with its uid,
 * repeats raising the series' count — also across recorders, as each egw-ipam run is a process), and
 * the production paths that record them: the AWS fabric (NoCapacity and EC2's terminal
 * UnauthorizedOperation on the gateway Pod, throttling that persists on the Node; EC2 through the SDK to
 * egw's emulator), egw-ipam (PoolExhausted on the Pod) and the operator (Invalid on the EgressGateway).
 * `kubectl get events` shows each.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsFabric } from '../../src/agent/fabric/aws-fabric.js';
import { POD_AWS_CONDITION } from '../../src/agent/fabric/status.js';
import { SdkImds } from '../../src/aws/imds.js';
import { iamPolicyActions } from '../../src/aws/iam-policy.js';
import { runCni } from '../../src/cni/plugin.js';
import { EgressGatewayOperator } from '../../src/controller/operator/index.js';
import { KubeDeployments, loadOperatorKubeConfig } from '../../src/controller/operator/kube-deployments.js';
import type { Datastore } from '../../src/datastore/contract.js';
import { eventRecorderFor } from '../../src/datastore/events.js';
import type { KubernetesDatastore } from '../../src/datastore/kubernetes/kubernetes-datastore.js';
import { openDatastore } from '../../src/datastore/open.js';
import type { EventRecorder } from '../../src/platform/events.js';
import { startAwsSim, type AwsSimHandle } from '../../src/sim/aws/server.js';
import type { SimDefinition } from '../../src/sim/aws/world.js';
import { EGRESS_A, fabricWorld, KIND, NODE_A1, sdkFor } from '../aws/helpers.js';
import { eventually, kubeAvailable, kubectl, kubectlOk } from '../support/kubectl.js';
import { applyCrdsAndRoles, at, eventsAbout, getJson, kubeletNode, list, registerNodes, type Json } from './helpers.js';

const suffix = randomBytes(3).toString('hex');
const NS = `egw-events-${suffix}`;
const TEST_KEY = 'egw.io/test-events';
const node = (n: string): string => `egw-events-${suffix}-${n}`;
const NODES = { recorder: node('rec'), capacity: node('cap'), denied: node('denied'), throttled: node('thr'), cni: node('cni') };
const FABRIC_POOL = `egw-events-aws-${suffix}`;
const CNI_POOL = `egw-events-cni-${suffix}`;
// A /30 of its own with /32 blocks: 4 addresses, so the fifth pod finds none.
const CNI_CIDR = '198.18.201.0/30';

function pod(name: string, nodeName: string, annotations: Record<string, string> = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, annotations },
    spec: { nodeName, containers: [{ name: 'c', image: 'registry.invalid/egw:test' }], tolerations: [{ operator: 'Exists' }] },
  };
}

/** Creates pods bound to a node, with the addresses a CNI would have given them (status subresource). */
function podsWithIps(nodeName: string, ips: Record<string, string>): Record<string, string> {
  kubectlOk(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: Object.keys(ips).map((n) => pod(n, nodeName)) }));
  const uids: Record<string, string> = {};
  for (const [name, ip] of Object.entries(ips)) {
    kubectlOk(['patch', 'pod', '-n', NS, name, '--subresource', 'status', '--type', 'merge', '-p', JSON.stringify({ status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } })]);
    uids[name] = at(getJson(['pod', '-n', NS, name]), 'metadata.uid') as string;
  }
  return uids;
}

const seriesCount = (e: Json | undefined): number => (e === undefined ? 0 : ((at(e, 'series.count') as number | undefined) ?? 1));
const felixFor = (nodeName: string): string =>
  JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: `node.${nodeName}` }, spec: { awsSecondaryIPSupport: 'EnabledENIPerWorkload' } });

describe.skipIf(!kubeAvailable)('Events on the API server (needs scripts/with-kube)', () => {
  let store: Datastore;
  let nodes: { stop(): void } | undefined;
  const recorders: EventRecorder[] = [];
  const sims: AwsSimHandle[] = [];
  const fabrics: AwsFabric[] = [];

  const recorder = (instance: string, seriesIntervalMs: number, controller = 'egw.io/agent'): EventRecorder => {
    const r = eventRecorderFor(store, { controller, instance }, {}, { seriesIntervalMs });
    recorders.push(r);
    return r;
  };

  /** A fabric on `nodeName`, its EC2 and IMDS an emulator of its own (the emulator's NODE_A1 instance). */
  const fabricOn = async (nodeName: string, sim: SimDefinition, events: EventRecorder): Promise<AwsFabric> => {
    // The kind emulator plus each test's own faults: these tests run in real time, where the harsh
    // emulator's seconds of lag and tiny buckets would be what they measure (test/aws covers those).
    const handle = await startAwsSim({ world: fabricWorld({ ...KIND, ...sim }), listen: '127.0.0.1:0', imdsBindings: [{ listen: '127.0.0.1:0', instanceId: NODE_A1 }] });
    sims.push(handle);
    const ec2 = sdkFor(handle);
    const fabric = new AwsFabric(
      { store, ec2, imds: new SdkImds({ endpoint: handle.imdsBindingUrls[NODE_A1]! }), events },
      {
        nodeName,
        cluster: `events-${suffix}`,
        resyncIntervalMs: 300,
        ec2Policy: { retryBaseMs: 2, throttleBaseMs: 2, maxBackoffMs: 10, maxAttempts: 2 },
        retryBaseMs: 20,
        retryMaxMs: 100,
      },
    );
    fabrics.push(fabric);
    fabric.start();
    return fabric;
  };

  beforeAll(async () => {
    applyCrdsAndRoles();
    kubectlOk(['create', 'namespace', NS]);
    kubectlOk(['label', 'namespace', NS, 'egw.io/egress-allowed=true']);
    nodes = registerNodes(
      Object.values(NODES).map((n) => kubeletNode(n, { 'topology.kubernetes.io/zone': 'us-west-2a', [TEST_KEY]: suffix }, [{ key: TEST_KEY, value: suffix, effect: 'NoSchedule' }])),
    );
    kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: FABRIC_POOL }, spec: { cidr: '100.64.2.0/28', blockSize: 32, awsSubnetID: EGRESS_A, nodeSelector: '!all()' } }));
    kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: CNI_POOL }, spec: { cidr: CNI_CIDR, blockSize: 32, nodeSelector: `${TEST_KEY} == "${suffix}"` } }));
    store = await openDatastore('kubernetes');
  }, 120_000);

  afterAll(async () => {
    for (const f of fabrics) await f.stop();
    for (const r of recorders) await r.close();
    await store?.close();
    for (const s of sims) await s.close();
    kubectl(['delete', 'pods', '-n', NS, '--all', '--grace-period=0', '--force', '--ignore-not-found']);
    kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']);
    kubectl(['delete', 'ippool.projectcalico.org', FABRIC_POOL, CNI_POOL, '--ignore-not-found']);
    for (const n of Object.values(NODES)) {
      kubectl(['delete', 'felixconfiguration.projectcalico.org', `node.${n}`, '--ignore-not-found']);
      kubectl(['delete', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${n}`, '--ignore-not-found']);
    }
    // IPAM records of the CNI test: the blocks of its pool and the node's affinities.
    const ipam = ['ipamblocks.egw.io', 'blockaffinitys.egw.io', 'ipamhandles.egw.io'].flatMap((r) => kubectl(['get', r, '-o', 'name']).stdout.split('\n'));
    const ours = ipam.filter((n) => n.includes(NODES.cni) || n.includes('198-18-201-') || n.includes(`events-cni-${suffix}`));
    if (ours.length > 0) kubectl(['delete', ...ours, '--ignore-not-found']);
    nodes?.stop();
  }, 120_000);

  it('the recorder: one Event per series, regarding the object, and repeats raise its count (also from another recorder)', async () => {
    const uids = podsWithIps(NODES.recorder, { 'rec-pod': '192.0.2.10' });
    const regarding = { kind: 'Pod', namespace: NS, name: 'rec-pod', uid: uids['rec-pod']! };
    const first = recorder('rec-1', 60_000);
    for (let i = 1; i <= 5; i++) first.record(regarding, 'Warning', 'PoolExhausted', 'AllocateAddress', `attempt ${i}: no address left`);
    await first.flush();
    let events = eventsAbout(NS, 'rec-pod');
    expect(events).toHaveLength(1);
    const e = events[0]!;
    expect(e).toMatchObject({ type: 'Warning', reason: 'PoolExhausted', action: 'AllocateAddress', note: 'attempt 1: no address left', reportingController: 'egw.io/agent', reportingInstance: 'rec-1' });
    expect(at(e, 'regarding')).toEqual({ apiVersion: 'v1', kind: 'Pod', name: 'rec-pod', namespace: NS, uid: uids['rec-pod'] });
    expect(seriesCount(e)).toBe(5);
    expect(typeof at(e, 'eventTime')).toBe('string');

    // Another process of the same reporter (a restarted agent, the next egw-ipam run): the same Event.
    const second = recorder('rec-1', 60_000);
    second.record(regarding, 'Warning', 'PoolExhausted', 'AllocateAddress', 'a later note');
    second.record(regarding, 'Warning', 'PoolExhausted', 'AllocateAddress', 'a later note');
    await second.close();
    events = eventsAbout(NS, 'rec-pod');
    expect(events).toHaveLength(1);
    expect(seriesCount(events[0])).toBe(7);
    expect(events[0]!['note']).toBe('attempt 1: no address left');

    // Without flush: held repeats are written when the series interval comes round.
    const timed = recorder('rec-2', 300);
    timed.record(regarding, 'Warning', 'NoCapacity', 'AssignPrivateIpAddresses', 'no room');
    for (let i = 0; i < 3; i++) timed.record(regarding, 'Warning', 'NoCapacity', 'AssignPrivateIpAddresses', 'no room');
    expect(await eventually(() => seriesCount(eventsAbout(NS, 'rec-pod').find((x) => x['reason'] === 'NoCapacity')) === 4, 10_000)).toBe(true);

    // A cluster-scoped object's Event goes to namespace default, as client-go does.
    const nodeUid = at(getJson(['node', NODES.recorder]), 'metadata.uid') as string;
    const n = recorder('rec-3', 60_000);
    n.record({ kind: 'Node', name: NODES.recorder, uid: nodeUid }, 'Warning', 'Throttled', 'CallEC2', 'EC2 throttled');
    await n.flush();
    // (kube-controller-manager's node lifecycle controller records its own RegisteredNode there too.)
    const onNode = eventsAbout('default', NODES.recorder).filter((e) => e['reportingController'] === 'egw.io/agent');
    expect(onNode).toHaveLength(1);
    expect(at(onNode[0], 'regarding')).toEqual({ apiVersion: 'v1', kind: 'Node', name: NODES.recorder, uid: nodeUid });

    // kubectl's own view (core/v1): the object, the reason and the aggregated count.
    const table = kubectlOk(['get', 'events', '-n', NS, '-o', 'wide', '--field-selector', 'involvedObject.name=rec-pod,reason=PoolExhausted']);
    expect(table).toContain('pod/rec-pod');
    expect(table).toMatch(/PoolExhausted.*attempt 1: no address left.*\s7\s/);
    const describe = kubectlOk(['describe', 'pod', '-n', NS, 'rec-pod']);
    expect(describe).toMatch(/Warning\s+PoolExhausted\s+.*\(x7 over .*\)\s+egw\.io\/agent\s+attempt 1: no address left/);
  }, 60_000);

  it('the recorder: concurrent recorders of one reporter lose no occurrence; a deleted Event is created again', async () => {
    const uids = podsWithIps(NODES.recorder, { 'rec-many': '192.0.2.11' });
    const regarding = { kind: 'Pod', namespace: NS, name: 'rec-many', uid: uids['rec-many']! };
    // Three processes of one reporter at once (egw-ipam runs for three retries of one pod), 10 each: they
    // meet AlreadyExists and Conflicts, and re-read.
    const many = [recorder('many', 0), recorder('many', 0), recorder('many', 0)];
    await Promise.all(
      many.map(async (r) => {
        for (let i = 0; i < 10; i++) {
          r.record(regarding, 'Warning', 'PoolExhausted', 'AllocateAddress', 'none left');
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        await r.flush();
      }),
    );
    let events = eventsAbout(NS, 'rec-many');
    expect(events).toHaveLength(1);
    expect(seriesCount(events[0])).toBe(30);
    // Deleted (or expired by the event TTL): the next occurrence creates it again.
    kubectlOk(['delete', 'events.events.k8s.io', '-n', NS, at(events[0], 'metadata.name') as string]);
    many[0]!.record(regarding, 'Warning', 'PoolExhausted', 'AllocateAddress', 'none left, again');
    await many[0]!.flush();
    events = eventsAbout(NS, 'rec-many');
    expect(events).toHaveLength(1);
    expect(seriesCount(events[0])).toBe(1);
    expect(events[0]!['note']).toBe('none left');
  }, 60_000);

  it('the fabric: NoCapacity on the gateway pod that does not fit, repeats aggregated pass after pass', async () => {
    kubectlOk(['apply', '-f', '-'], felixFor(NODES.capacity));
    // t3.large in ENI-per-workload mode holds 2 gateways; the third gets none.
    const uids = podsWithIps(NODES.capacity, { 'cap-1': '100.64.2.1', 'cap-2': '100.64.2.2', 'cap-3': '100.64.2.3' });
    await fabricOn(NODES.capacity, {}, recorder(NODES.capacity, 500));
    const noCapacity = (): Json[] => ['cap-1', 'cap-2', 'cap-3'].flatMap((p) => eventsAbout(NS, p)).filter((e) => e['reason'] === 'NoCapacity');
    // Two occurrences make a series; more come with each fabric pass (slow on a loaded machine).
    expect(await eventually(() => noCapacity().length === 1 && seriesCount(noCapacity()[0]) >= 2, 60_000)).toBe(true);
    const e = noCapacity()[0]!;
    const podName = at(e, 'regarding.name') as string;
    expect(e).toMatchObject({ type: 'Warning', action: 'CreateNetworkInterface', reportingController: 'egw.io/agent', reportingInstance: NODES.capacity });
    expect(at(e, 'regarding.uid')).toBe(uids[podName]);
    expect(e['note']).toContain('has no room left');
    // The event agrees with the pod's condition.
    const condition = list(getJson(['pod', '-n', NS, podName]), 'status.conditions').find((c) => c['type'] === POD_AWS_CONDITION);
    expect(condition).toMatchObject({ status: 'False', reason: 'NoCapacity' });
  }, 90_000);

  it("the fabric: EC2's terminal UnauthorizedOperation on the pod, and throttling that persists on the node", async () => {
    kubectlOk(['apply', '-f', '-'], felixFor(NODES.denied));
    kubectlOk(['apply', '-f', '-'], felixFor(NODES.throttled));
    podsWithIps(NODES.denied, { 'denied-1': '100.64.2.5' });
    podsWithIps(NODES.throttled, { 'thr-1': '100.64.2.6' });
    // An IAM policy without CreateNetworkInterface; and an account whose ENI reads are always throttled.
    await fabricOn(NODES.denied, { allowActions: iamPolicyActions().filter((a) => a !== 'ec2:CreateNetworkInterface') }, recorder(NODES.denied, 500));
    await fabricOn(NODES.throttled, { failureRate: 1, failureKinds: ['RequestLimitExceeded'], failureActions: ['DescribeNetworkInterfaces'] }, recorder(NODES.throttled, 500));
    expect(await eventually(() => eventsAbout(NS, 'denied-1').some((e) => e['reason'] === 'UnauthorizedOperation'), 30_000)).toBe(true);
    const denied = eventsAbout(NS, 'denied-1').find((e) => e['reason'] === 'UnauthorizedOperation')!;
    expect(denied).toMatchObject({ type: 'Warning', action: 'CreateNetworkInterface', reportingInstance: NODES.denied });
    expect(denied['note']).toContain('100.64.2.5');
    expect(await eventually(() => eventsAbout('default', NODES.throttled).some((e) => e['reason'] === 'Throttled'), 30_000)).toBe(true);
    const throttled = eventsAbout('default', NODES.throttled).find((e) => e['reason'] === 'Throttled')!;
    expect(throttled).toMatchObject({ type: 'Warning', action: 'CallEC2', reportingController: 'egw.io/agent' });
    expect(at(throttled, 'regarding')).toMatchObject({ apiVersion: 'v1', kind: 'Node', name: NODES.throttled });
    expect(throttled['note']).toContain('RequestLimitExceeded');
    // A throttled read is not a pod's failure: no event on the pod.
    expect(eventsAbout(NS, 'thr-1')).toEqual([]);
  }, 60_000);

  it('egw-ipam: PoolExhausted on the pod that gets no address; the kubelet\'s retries raise one Event\'s count', async () => {
    const env = (name: string, command = 'ADD'): Record<string, string> => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: `ctr-${name}`,
      CNI_NETNS: `/var/run/netns/${name}`,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `K8S_POD_NAMESPACE=${NS};K8S_POD_NAME=${name}`,
      KUBECONFIG: process.env['KUBECONFIG']!,
    });
    const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'egw', type: 'ptp', ipam: { type: 'egw-ipam', datastore: 'kubernetes', nodeName: NODES.cni, ipv4_pools: [CNI_POOL] } });
    const names = ['cni-1', 'cni-2', 'cni-3', 'cni-4', 'cni-5'];
    kubectlOk(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: names.map((n) => pod(n, NODES.cni)) }));
    for (const n of names.slice(0, 4)) {
      const out = await runCni(env(n), conf);
      expect(out.exitCode, out.stdout).toBe(0);
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      const out = await runCni(env('cni-5'), conf);
      expect(out.exitCode).toBe(1);
      expect(JSON.parse(out.stdout)).toMatchObject({ code: 101, msg: 'IP pools exhausted' });
    }
    const events = eventsAbout(NS, 'cni-5');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'Warning', reason: 'PoolExhausted', action: 'AllocateAddress', reportingController: 'egw.io/egw-ipam', reportingInstance: NODES.cni });
    expect(seriesCount(events[0])).toBe(2);
    expect(at(events[0], 'regarding.uid')).toBe(at(getJson(['pod', '-n', NS, 'cni-5']), 'metadata.uid'));
    expect(events[0]!['note']).toContain(CNI_POOL);
    for (const n of names.slice(0, 4)) expect(eventsAbout(NS, n)).toEqual([]);
    for (const n of names) expect((await runCni(env(n, 'DEL'), conf)).exitCode).toBe(0);
  }, 60_000);

  it('the operator: Invalid on an EgressGateway whose pool does not exist', async () => {
    kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', metadata: { name: 'broken', namespace: NS }, spec: { replicas: 1, ipPools: [{ name: `missing-${suffix}` }] } }),
    );
    const events = recorder(`controller-${suffix}`, 60_000, 'egw.io/controller');
    const kube = store as KubernetesDatastore;
    const op = new EgressGatewayOperator({ store: kube, workloads: new KubeDeployments({ kubeConfig: loadOperatorKubeConfig(undefined), store: kube }), events }, { image: 'registry.invalid/egw:test', resyncIntervalMs: 0 });
    expect((await op.reconcile(NS, 'broken')).state).toBe('Degraded');
    await op.reconcile(NS, 'broken');
    await events.flush();
    const e = eventsAbout(NS, 'broken');
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ type: 'Warning', reason: 'Invalid', action: 'Validate', reportingController: 'egw.io/controller' });
    expect(e[0]!['note']).toContain(`ippools.projectcalico.org "missing-${suffix}" not found`);
    expect(at(e[0], 'regarding')).toMatchObject({ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: 'broken', namespace: NS, uid: at(getJson(['egressgateway', '-n', NS, 'broken']), 'metadata.uid') });
    expect(seriesCount(e[0])).toBe(2);
    expect(getJson(['deployment', '-n', NS, 'broken'])).toBeUndefined();
  }, 60_000);
});
