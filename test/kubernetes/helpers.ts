/**
 * Shared pieces of the tests on the real API server of scripts/with-kube: egw's CRDs and ClusterRoles,
 * kubectl's JSON, and Nodes made as a kubelet makes them (Ready, allocatable pods/cpu/memory, a Lease in
 * kube-node-lease renewed as the kubelet's heartbeat, so the node lifecycle controller keeps them Ready).
 */
import { execFile } from 'node:child_process';
import { renderInstall } from '../../src/install/render-install.js';
import { microTime } from '../../src/datastore/kubernetes/kube-events.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';

export type Json = Record<string, unknown>;

/** Applies the CRDs and ClusterRoles of `egw render install` (not its workloads) and waits for the CRDs. */
export function applyCrdsAndRoles(): void {
  const docs = renderInstall({ image: 'registry.invalid/egw:test' }).filter((o) => o.kind === 'CustomResourceDefinition' || o.kind === 'ClusterRole');
  kubectlOk(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-install', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }));
  kubectlOk(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', '-l', 'app.kubernetes.io/part-of=egw']);
}

/** `kubectl get ARGS -o json`, undefined when it fails (absent). */
export function getJson(args: string[]): Json | undefined {
  const r = kubectl(['get', ...args, '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as Json) : undefined;
}

/** The value at a dotted path, undefined when absent. */
export function at(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** The list at a dotted path ([] when absent). */
export function list(obj: unknown, path: string): Json[] {
  const v = at(obj, path);
  return Array.isArray(v) ? (v as Json[]) : [];
}

/** A Node as the kubelet registers it: Ready, with pods/cpu/memory capacity and allocatable. */
export function kubeletNode(name: string, labels: Record<string, string>, taints: { key: string; value: string; effect: string }[] = []): Json {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const resources = { cpu: '4', memory: '8Gi', pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', ...labels } },
    spec: { taints },
    status: {
      capacity: resources,
      allocatable: resources,
      conditions: [
        { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now },
        { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available', lastHeartbeatTime: now, lastTransitionTime: now },
        { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure', lastHeartbeatTime: now, lastTransitionTime: now },
        { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available', lastHeartbeatTime: now, lastTransitionTime: now },
      ],
      nodeInfo: { kubeletVersion: 'v1.34.4', operatingSystem: 'linux', architecture: 'amd64', containerRuntimeVersion: 'none://0', kernelVersion: '', osImage: '', bootID: '', machineID: '', systemUUID: '', kubeProxyVersion: '' },
    },
  };
}

/**
 * Registers the nodes (status included, as the kubelet's create does) and renews a kube-node-lease Lease
 * for each every 5 s, as the kubelet's heartbeat; `stop()` ends the heartbeat and deletes nodes and leases.
 */
export function registerNodes(nodes: Json[]): { stop(): void } {
  kubectlOk(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: nodes }));
  const names = nodes.map((n) => at(n, 'metadata.name') as string);
  const lease = (name: string): Json => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace: 'kube-node-lease' },
    spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime(Date.now()) },
  });
  kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: names.map(lease) }));
  let running = true;
  const beat = (): void => {
    if (!running) return;
    const child = execFile('kubectl', ['apply', '-f', '-'], { timeout: 20_000 }, () => {
      if (running) timer = setTimeout(beat, 5_000);
    });
    child.stdin?.end(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: names.map(lease) }));
  };
  let timer = setTimeout(beat, 5_000);
  return {
    stop(): void {
      running = false;
      clearTimeout(timer);
      kubectl(['delete', 'node', ...names, '--ignore-not-found', '--wait=false']);
      kubectl(['delete', 'lease', '-n', 'kube-node-lease', ...names, '--ignore-not-found']);
    },
  };
}

/** events.k8s.io/v1 Events of a namespace (admin's view), optionally only those about `name`. */
export function eventsAbout(namespace: string, name?: string): Json[] {
  return list(getJson(['events.events.k8s.io', '-n', namespace]), 'items').filter((e) => name === undefined || at(e, 'regarding.name') === name);
}
