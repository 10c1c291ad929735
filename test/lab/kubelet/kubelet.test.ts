/**
 * The kubelet's behaviour over a real SQLite store with fake kernel ports and a fake clock: what it
 * runs, what it reports, in which order it tears a pod down, and what a restarted kubelet adopts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Datastore, JsonObject, ResourceKey, StoredResource } from '../../../src/datastore/contract.js';
import { SqliteDatastore } from '../../../src/datastore/sqlite/sqlite-datastore.js';
import { LabKubelet } from '../../../src/lab/kubelet/kubelet.js';
import { podNetnsName, podSandboxId } from '../../../src/lab/kubelet/naming.js';
import { StateDir } from '../../../src/lab/kubelet/state.js';
import { FakeClock } from '../../../src/platform/clock.js';
import { FakeCni, FakeKernel, FakeNetns, FakeProber, FakeProcesses } from './fakes.js';

const NOW = Date.parse('2024-05-01T12:00:00.000Z');
const PREFIX = 'kt';

interface World {
  store: Datastore;
  kernel: FakeKernel;
  clock: FakeClock;
  stateDir: string;
  kubelet(): { kubelet: LabKubelet; processes: FakeProcesses; cni: FakeCni };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function world(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'egw-lab-kubelet-'));
  const store = await SqliteDatastore.open(join(dir, 'egw.db'), { pollIntervalMs: 10 });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const kernel = new FakeKernel();
  const clock = new FakeClock(NOW);
  const stateDir = join(dir, 'state');
  return {
    store,
    kernel,
    clock,
    stateDir,
    kubelet: () => {
      const processes = new FakeProcesses(kernel);
      const cni = new FakeCni(kernel);
      const kubelet = new LabKubelet(
        { store, cni, netns: new FakeNetns(kernel), processes, prober: new FakeProber(kernel), state: new StateDir(stateDir), clock },
        { nodeName: 'node-a1', datastore: '/lab/egw.db', netnsPrefix: PREFIX, egwCommand: ['egw'], heartbeatIntervalMs: 10_000, syncIntervalMs: 1_000, path: '/bin' },
      );
      cleanups.push(() => kubelet.stop());
      return { kubelet, processes, cni };
    },
  };
}

/** Lets the kubelet's async work (store, informer, workers) run. */
async function settle(ms = 60): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Moves the fake clock in steps, letting work run after each. */
async function advance(clock: FakeClock, ms: number, step = 500): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await settle(15);
  }
  await settle();
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(10);
  }
}

const podKey = (name: string, namespace = 'calico-egress'): ResourceKey => ({ kind: 'Pod', namespace, name });

async function put(store: Datastore, value: Record<string, unknown>): Promise<void> {
  const meta = value['metadata'] as { name: string; namespace?: string };
  const key = meta.namespace === undefined ? { kind: value['kind'] as string, name: meta.name } : { kind: value['kind'] as string, namespace: meta.namespace, name: meta.name };
  await store.commit([{ op: 'put', key, value: value as JsonObject }]);
}

async function change(store: Datastore, key: ResourceKey, f: (v: Record<string, unknown>) => Record<string, unknown>): Promise<void> {
  const cur = await store.get(key);
  await store.commit([{ op: 'update', key, value: f(cur!.value) as JsonObject, expectedRevision: cur!.modRevision }]);
}

function node(name = 'node-a1'): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } }, status: { addresses: [{ type: 'InternalIP', address: '10.10.1.10' }], allocatable: { 'projectcalico.org/aws-secondary-ipv4': '2' } } };
}

/** A gateway pod as the operator writes it (the parts the kubelet reads), bound to `nodeName`. */
function gatewayPod(name: string, o: { nodeName?: string; grace?: number; uid?: string } = {}): Record<string, unknown> {
  const env = [
    { name: 'HEALTH_PORT', value: '8080' },
    { name: 'EGRESS_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'EGRESS_POD_IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
  ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'calico-egress', uid: o.uid ?? `uid-${name}`, labels: { 'egress-code': 'red' } },
    spec: {
      nodeName: o.nodeName ?? 'node-a1',
      initContainers: [{ name: 'egress-gateway-init', image: 'egw', command: ['egw', 'gateway', 'init'], env }],
      containers: [
        {
          name: 'egress-gateway',
          image: 'egw',
          command: ['egw', 'gateway'],
          env,
          ports: [{ name: 'health', containerPort: 8080, protocol: 'TCP' }],
          readinessProbe: { httpGet: { path: '/readiness', port: 8080, scheme: 'HTTP' }, initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 },
        },
      ],
      terminationGracePeriodSeconds: o.grace ?? 30,
      restartPolicy: 'Always',
    },
    status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: new Date(NOW).toISOString() }] },
  };
}

async function pod(store: Datastore, name: string, namespace = 'calico-egress'): Promise<StoredResource | undefined> {
  return store.get(podKey(name, namespace));
}

function status(s: StoredResource | undefined): Record<string, unknown> {
  return (s?.value['status'] ?? {}) as Record<string, unknown>;
}

function condition(s: StoredResource | undefined, type: string): Record<string, unknown> | undefined {
  return ((status(s)['conditions'] ?? []) as Record<string, unknown>[]).find((c) => c['type'] === type);
}

function containerStatus(s: StoredResource | undefined, name: string): Record<string, unknown> | undefined {
  return ((status(s)['containerStatuses'] ?? []) as Record<string, unknown>[]).find((c) => c['name'] === name);
}

/** Starts a gateway pod and brings it to Running and Ready. */
async function runningGateway(w: World, name = 'gw-1'): Promise<{ kubelet: LabKubelet; processes: FakeProcesses; cni: FakeCni; ip: string }> {
  await put(w.store, node());
  await put(w.store, gatewayPod(name));
  const k = w.kubelet();
  k.kubelet.start();
  const init = await until('init container', () => w.kernel.live('init')[0]);
  k.processes.exit(init.pid, 0);
  await until('main container', () => w.kernel.live('gateway').find((p) => !p.argv.includes('init')));
  await advance(w.clock, 10_000);
  await until('Ready', async () => condition(await pod(w.store, name), 'Ready')?.['status'] === 'True');
  return { ...k, ip: status(await pod(w.store, name))['podIP'] as string };
}

describe('LabKubelet: running a pod', () => {
  it('sandbox through CNI, the init container to completion, then the main container with its environment; Ready after the probe', async () => {
    const w = await world();
    await put(w.store, node());
    await put(w.store, gatewayPod('gw-1'));
    const { kubelet, processes, cni } = w.kubelet();
    kubelet.start();
    const init = await until('init container', () => w.kernel.live('init')[0]);

    const netns = podNetnsName(PREFIX, 'calico-egress', 'gw-1', 'uid-gw-1');
    expect(cni.calls.map((c) => c.command)).toEqual(['ADD']);
    expect(cni.calls[0]!.args).toMatchObject({ containerId: podSandboxId('calico-egress', 'gw-1', 'uid-gw-1'), netnsPath: `/var/run/netns/${netns}`, ifname: 'eth0', podNamespace: 'calico-egress', podName: 'gw-1', podUid: 'uid-gw-1' });
    expect(w.kernel.namespaces.has(netns)).toBe(true);
    const ip = w.kernel.addresses.get(netns)!;
    expect(init.argv).toEqual(['ip', 'netns', 'exec', netns, 'egw', 'gateway', 'init']);
    expect(init.env).toMatchObject({ EGRESS_POD_IP: ip, EGRESS_POD_IPS: ip, HEALTH_PORT: '8080', EGW_DATASTORE: '/lab/egw.db', HOSTNAME: 'gw-1', PATH: '/bin' });

    const pending = await until('podIP reported', async () => {
      const p = await pod(w.store, 'gw-1');
      return status(p)['podIP'] === ip ? p : undefined;
    });
    expect(status(pending)).toMatchObject({ phase: 'Pending', podIPs: [{ ip }], hostIP: '10.10.1.10' });
    expect(condition(pending, 'Initialized')).toMatchObject({ status: 'False', message: 'containers with incomplete status: [egress-gateway-init]' });
    expect(condition(pending, 'PodScheduled')).toMatchObject({ status: 'True' });
    expect(w.kernel.procsWith('gateway').filter((p) => !p.argv.includes('init'))).toEqual([]);

    processes.exit(init.pid, 0);
    const main = await until('main container', () => w.kernel.live('gateway').find((p) => !p.argv.includes('init')));
    expect(main.argv).toEqual(['ip', 'netns', 'exec', netns, 'egw', 'gateway']);
    const running = await until('Running', async () => {
      const p = await pod(w.store, 'gw-1');
      return status(p)['phase'] === 'Running' ? p : undefined;
    });
    expect(condition(running, 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady' });

    // initialDelaySeconds 10: no probe before, ready at the first one after.
    await advance(w.clock, 9_000);
    expect(condition(await pod(w.store, 'gw-1'), 'Ready')?.['status']).toBe('False');
    await advance(w.clock, 1_500);
    const ready = await until('Ready', async () => {
      const p = await pod(w.store, 'gw-1');
      return condition(p, 'Ready')?.['status'] === 'True' ? p : undefined;
    });
    expect(containerStatus(ready, 'egress-gateway')).toMatchObject({ ready: true, started: true, restartCount: 0, containerID: `egw-lab://${netns}/egress-gateway` });
    expect(cni.calls.map((c) => c.command)).toEqual(['ADD']);
  });

  it('readiness follows the probe: failureThreshold failures make the pod not ready, a pass makes it ready again', async () => {
    const w = await world();
    const { ip } = await runningGateway(w);
    w.kernel.probeOk.set(ip, false);
    await advance(w.clock, 20_000);
    expect(condition(await pod(w.store, 'gw-1'), 'Ready')?.['status']).toBe('True');
    await advance(w.clock, 10_500);
    await until('not ready', async () => condition(await pod(w.store, 'gw-1'), 'Ready')?.['status'] === 'False');
    w.kernel.probeOk.set(ip, true);
    await advance(w.clock, 10_500);
    await until('ready again', async () => condition(await pod(w.store, 'gw-1'), 'Ready')?.['status'] === 'True');
  });

  it('a crashed container restarts with back-off (10 s, then 20 s) and its restartCount and last state are reported', async () => {
    const w = await world();
    const { processes } = await runningGateway(w);
    const first = w.kernel.live('gateway').find((p) => !p.argv.includes('init'))!;
    processes.exit(first.pid, 1);
    const crashed = await until('CrashLoopBackOff', async () => {
      const p = await pod(w.store, 'gw-1');
      return (containerStatus(p, 'egress-gateway')?.['state'] as { waiting?: { reason: string } } | undefined)?.waiting?.reason === 'CrashLoopBackOff' ? p : undefined;
    });
    expect(containerStatus(crashed, 'egress-gateway')).toMatchObject({ ready: false, lastState: { terminated: { exitCode: 1, reason: 'Error' } } });
    expect(condition(crashed, 'Ready')?.['status']).toBe('False');
    expect(status(crashed)['phase']).toBe('Running');
    await advance(w.clock, 9_000);
    expect(w.kernel.live('gateway').filter((p) => !p.argv.includes('init'))).toEqual([]);
    await advance(w.clock, 1_500);
    const second = await until('restarted', () => w.kernel.live('gateway').find((p) => !p.argv.includes('init')));
    expect(second.pid).not.toBe(first.pid);
    await until('restartCount 1', async () => containerStatus(await pod(w.store, 'gw-1'), 'egress-gateway')?.['restartCount'] === 1);
    // The init container is not run again.
    expect(w.kernel.procsWith('init')).toHaveLength(1);
    processes.exit(second.pid, 2);
    await advance(w.clock, 15_000);
    expect(w.kernel.live('gateway').filter((p) => !p.argv.includes('init'))).toEqual([]);
    await advance(w.clock, 6_000);
    await until('restarted again', () => w.kernel.live('gateway').find((p) => !p.argv.includes('init')));
  });

  it('a failing init container is retried with back-off; the main container waits for it', async () => {
    const w = await world();
    await put(w.store, node());
    await put(w.store, gatewayPod('gw-1'));
    const { kubelet, processes } = w.kubelet();
    kubelet.start();
    const init1 = await until('init container', () => w.kernel.live('init')[0]);
    processes.exit(init1.pid, 3);
    await until('init back-off reported', async () => {
      const s = ((status(await pod(w.store, 'gw-1'))['initContainerStatuses'] ?? []) as Record<string, unknown>[])[0];
      return (s?.['state'] as { waiting?: { reason: string } } | undefined)?.waiting?.reason === 'CrashLoopBackOff';
    });
    await advance(w.clock, 10_500);
    const init2 = await until('init container again', () => w.kernel.live('init')[0]);
    expect(init2.pid).not.toBe(init1.pid);
    expect(w.kernel.procsWith('gateway').filter((p) => !p.argv.includes('init'))).toEqual([]);
    processes.exit(init2.pid, 0);
    await until('main container', () => w.kernel.live('gateway').find((p) => !p.argv.includes('init')));
  });

  it('containers that are not egw commands get their namespace only: Running and Ready at once', async () => {
    const w = await world();
    await put(w.store, node());
    await put(w.store, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'client', namespace: 'app', uid: 'uid-client' }, spec: { nodeName: 'node-a1', containers: [{ name: 'nc', image: 'busybox', command: ['/bin/sleep', 'infinity'] }] } });
    w.kubelet().kubelet.start();
    const p = await until('Ready', async () => {
      const s = await pod(w.store, 'client', 'app');
      return condition(s, 'Ready')?.['status'] === 'True' ? s : undefined;
    });
    expect(status(p)).toMatchObject({ phase: 'Running', podIP: expect.stringMatching(/^10\.244\.0\./) as unknown });
    expect(w.kernel.procs.size).toBe(0);
    expect(w.kernel.namespaces.has(podNetnsName(PREFIX, 'app', 'client', 'uid-client'))).toBe(true);
  });

  it('leaves pods of other nodes alone; refuses hostNetwork pods with a reason', async () => {
    const w = await world();
    await put(w.store, node());
    await put(w.store, gatewayPod('elsewhere', { nodeName: 'node-b1' }));
    await put(w.store, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'hostnet', namespace: 'default', uid: 'uid-h' }, spec: { nodeName: 'node-a1', hostNetwork: true, containers: [{ name: 'c', command: ['egw', 'agent'] }] } });
    const { kubelet, cni } = w.kubelet();
    kubelet.start();
    const h = await until('Failed', async () => {
      const s = await pod(w.store, 'hostnet', 'default');
      return status(s)['phase'] === 'Failed' ? s : undefined;
    });
    expect(status(h)['reason']).toBe('HostNetworkUnsupported');
    expect(cni.calls).toEqual([]);
    expect(status(await pod(w.store, 'elsewhere'))['phase']).toBe('Pending');
  });

  it('a failed CNI ADD is undone with DEL, reported as ContainerCreating with the error, and retried', async () => {
    const w = await world();
    w.kernel.failAdds = 1;
    await put(w.store, node());
    await put(w.store, gatewayPod('gw-1'));
    const { kubelet, cni } = w.kubelet();
    kubelet.start();
    const p = await until('ContainerCreating', async () => {
      const s = await pod(w.store, 'gw-1');
      const st = containerStatus(s, 'egress-gateway')?.['state'] as { waiting?: { reason: string; message?: string } } | undefined;
      return st?.waiting?.message !== undefined ? st.waiting : undefined;
    });
    expect(p).toEqual({ reason: 'ContainerCreating', message: 'CNI ADD failed: IP pools exhausted (code 101)' });
    expect(cni.calls.map((c) => c.command)).toEqual(['ADD', 'DEL']);
    await advance(w.clock, 1_500);
    await until('init container after the retry', () => w.kernel.live('init')[0]);
    expect(cni.calls.map((c) => c.command)).toEqual(['ADD', 'DEL', 'ADD']);
  });
});

describe('LabKubelet: deletion', () => {
  it('Ready=False at once, SIGTERM, SIGKILL only when the grace period is over, then CNI DEL, the namespace, the state, the record', async () => {
    const w = await world();
    w.kernel.onTerm = 'ignore';
    await runningGateway(w);
    const netns = podNetnsName(PREFIX, 'calico-egress', 'gw-1', 'uid-gw-1');
    const from = w.kernel.events.length;
    await change(w.store, podKey('gw-1'), (v) => ({ ...v, metadata: { ...(v['metadata'] as object), deletionTimestamp: new Date(w.clock.now() + 30_000).toISOString(), deletionGracePeriodSeconds: 30 } }));
    await until('SIGTERM', () => w.kernel.events.slice(from).some((e) => e.startsWith('SIGTERM')));
    expect(condition(await pod(w.store, 'gw-1'), 'Ready')).toMatchObject({ status: 'False' });
    await advance(w.clock, 29_000);
    expect(w.kernel.events.slice(from)).toEqual(['SIGTERM egw gateway']);
    expect(await pod(w.store, 'gw-1')).toBeDefined();
    await advance(w.clock, 2_000);
    await until('record deleted', async () => (await pod(w.store, 'gw-1')) === undefined);
    expect(w.kernel.events.slice(from)).toEqual(['SIGTERM egw gateway', 'SIGKILL egw gateway', 'cni DEL calico-egress/gw-1', `netns delete ${netns}`]);
    expect(w.kernel.handles.size).toBe(0);
    expect(new StateDir(w.stateDir).list()).toEqual([]);
  });

  it('a process that stops on SIGTERM ends the grace period early; grace 0 kills at once', async () => {
    const w = await world();
    const { processes } = await runningGateway(w);
    const from = w.kernel.events.length;
    await change(w.store, podKey('gw-1'), (v) => ({ ...v, metadata: { ...(v['metadata'] as object), deletionTimestamp: new Date(w.clock.now() + 30_000).toISOString(), deletionGracePeriodSeconds: 30 } }));
    await until('record deleted', async () => (await pod(w.store, 'gw-1')) === undefined);
    expect(w.kernel.events.slice(from)).toEqual(['SIGTERM egw gateway', 'cni DEL calico-egress/gw-1', `netns delete ${podNetnsName(PREFIX, 'calico-egress', 'gw-1', 'uid-gw-1')}`]);

    w.kernel.onTerm = 'ignore';
    await put(w.store, gatewayPod('gw-2', { grace: 0 }));
    const init = await until('init container', () => w.kernel.live('init')[0]);
    processes.exit(init.pid, 0);
    await until('main container', () => w.kernel.live('gateway').find((p) => !p.argv.includes('init')));
    const at = w.kernel.events.length;
    await change(w.store, podKey('gw-2'), (v) => ({ ...v, metadata: { ...(v['metadata'] as object), deletionTimestamp: new Date(w.clock.now()).toISOString(), deletionGracePeriodSeconds: 0 } }));
    await until('record deleted', async () => (await pod(w.store, 'gw-2')) === undefined);
    expect(w.kernel.events.slice(at, at + 2)).toEqual(['SIGTERM egw gateway', 'SIGKILL egw gateway']);
  });

  it('a record deleted outright (no deletionTimestamp) tears the pod down; a record already gone is fine', async () => {
    const w = await world();
    await runningGateway(w);
    await w.store.commit([{ op: 'delete', key: podKey('gw-1') }]);
    await until('netns deleted', () => w.kernel.namespaces.size === 0);
    expect(w.kernel.handles.size).toBe(0);
    expect(new StateDir(w.stateDir).list()).toEqual([]);
  });
});

describe('LabKubelet: restart', () => {
  it('a new kubelet adopts the running pod: nothing re-created, no restart, the status untouched', async () => {
    const w = await world();
    const first = await runningGateway(w);
    const before = await pod(w.store, 'gw-1');
    await first.kubelet.stop();
    const events = w.kernel.events.length;
    const second = w.kubelet();
    second.kubelet.start();
    await second.kubelet.waitForSync();
    await advance(w.clock, 12_000);
    expect(w.kernel.events.slice(events)).toEqual([]);
    expect(second.cni.calls).toEqual([]);
    const after = await pod(w.store, 'gw-1');
    expect(after?.modRevision).toBe(before?.modRevision);
    expect(second.kubelet.managedPods()).toEqual(new Map([['uid-gw-1', 'calico-egress/gw-1']]));

    // Its process dies while this kubelet runs: the exit code is unknown (another kubelet started it); it restarts.
    const main = w.kernel.live('gateway').find((p) => !p.argv.includes('init'))!;
    main.alive = false;
    await advance(w.clock, 11_000);
    await until('restarted', () => w.kernel.live('gateway').find((p) => !p.argv.includes('init')));
    expect(containerStatus(await pod(w.store, 'gw-1'), 'egress-gateway')).toMatchObject({ restartCount: 1 });
  });

  it('a pod deleted while the kubelet was down is torn down at start, its IP released', async () => {
    const w = await world();
    const first = await runningGateway(w);
    await first.kubelet.stop();
    for (const p of w.kernel.procs.values()) p.alive = false;
    await w.store.commit([{ op: 'delete', key: podKey('gw-1') }]);
    const second = w.kubelet();
    second.kubelet.start();
    await until('torn down', () => w.kernel.namespaces.size === 0);
    expect(second.cni.calls.map((c) => c.command)).toEqual(['DEL']);
    expect(w.kernel.handles.size).toBe(0);
    expect(new StateDir(w.stateDir).list()).toEqual([]);
  });

  it('a kubelet that died in the middle of a termination keeps counting the grace period from when it began', async () => {
    const w = await world();
    w.kernel.onTerm = 'ignore';
    const first = await runningGateway(w);
    await change(w.store, podKey('gw-1'), (v) => ({ ...v, metadata: { ...(v['metadata'] as object), deletionTimestamp: new Date(w.clock.now() + 30_000).toISOString(), deletionGracePeriodSeconds: 30 } }));
    await until('SIGTERM', () => w.kernel.events.some((e) => e.startsWith('SIGTERM')));
    await first.kubelet.stop();
    await advance(w.clock, 20_000);
    const second = w.kubelet();
    second.kubelet.start();
    await advance(w.clock, 5_000);
    expect(w.kernel.events.filter((e) => e.startsWith('SIGKILL'))).toEqual([]);
    await advance(w.clock, 6_000);
    await until('record deleted', async () => (await pod(w.store, 'gw-1')) === undefined);
    expect(w.kernel.events.filter((e) => e.startsWith('SIGKILL'))).toEqual(['SIGKILL egw gateway']);
  });
});

describe('LabKubelet: node heartbeat', () => {
  it('posts Ready with a fresh lastHeartbeatTime, keeping what others wrote on the Node', async () => {
    const w = await world();
    await put(w.store, node());
    const { kubelet } = w.kubelet();
    kubelet.start();
    const first = await until('Ready', async () => {
      const n = await w.store.get({ kind: 'Node', name: 'node-a1' });
      return ((n?.value['status'] as { conditions?: Record<string, unknown>[] } | undefined)?.conditions ?? []).find((c) => c['type'] === 'Ready');
    });
    expect(first).toEqual({ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: new Date(NOW).toISOString(), lastTransitionTime: new Date(NOW).toISOString() });
    await advance(w.clock, 10_000);
    const later = await until('a later heartbeat', async () => {
      const n = await w.store.get({ kind: 'Node', name: 'node-a1' });
      const c = ((n?.value['status'] as { conditions?: Record<string, unknown>[] }).conditions ?? []).find((x) => x['type'] === 'Ready');
      return c?.['lastHeartbeatTime'] !== first['lastHeartbeatTime'] ? n : undefined;
    });
    const s = later.value['status'] as Record<string, unknown>;
    expect(s['allocatable']).toEqual({ 'projectcalico.org/aws-secondary-ipv4': '2' });
    expect(((s['conditions'] as Record<string, unknown>[]).find((x) => x['type'] === 'Ready'))?.['lastTransitionTime']).toBe(new Date(NOW).toISOString());
  });
});
