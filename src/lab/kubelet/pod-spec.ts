/**
 * The parts of a stored Pod the kubelet reads, parsed once (a field of the wrong shape reads as absent).
 * Pure.
 */
import { parseContainer, type ContainerSpec, type DownwardFacts } from './env.js';
import type { PortSpec } from './probe.js';

/** A container with what the kubelet needs besides its command. */
export interface RunContainer extends ContainerSpec {
  image: string;
  ports: PortSpec[];
  readinessProbe: unknown;
}

/** What the kubelet runs for one pod. */
export interface RunSpec {
  namespace: string;
  name: string;
  uid: string;
  nodeName: string | undefined;
  terminating: boolean;
  /** `metadata.deletionGracePeriodSeconds`, else `spec.terminationGracePeriodSeconds`, else 30. */
  graceSeconds: number;
  restartPolicy: string;
  hostNetwork: boolean;
  initContainers: RunContainer[];
  containers: RunContainer[];
  facts: Omit<DownwardFacts, 'podIP' | 'podIPs' | 'hostIP'>;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(obj(v) ?? {})) if (typeof x === 'string') out[k] = x;
  return out;
}

function containers(v: unknown): RunContainer[] {
  return (Array.isArray(v) ? v : []).flatMap((raw) => {
    const c = parseContainer(raw);
    if (c === undefined) return [];
    const o = obj(raw) ?? {};
    const ports = (Array.isArray(o['ports']) ? (o['ports'] as unknown[]) : []).flatMap((p) => {
      const x = obj(p);
      const n = x?.['containerPort'];
      return typeof n === 'number' ? [{ name: typeof x?.['name'] === 'string' ? x['name'] : undefined, containerPort: n }] : [];
    });
    return [{ ...c, image: typeof o['image'] === 'string' ? o['image'] : '', ports, readinessProbe: o['readinessProbe'] }];
  });
}

/** Reads a stored Pod value; undefined when it lacks a name or uid. */
export function parseRunSpec(value: unknown): RunSpec | undefined {
  const pod = obj(value);
  const meta = obj(pod?.['metadata']);
  const spec = obj(pod?.['spec']) ?? {};
  const name = meta?.['name'];
  const uid = meta?.['uid'];
  if (meta === undefined || typeof name !== 'string' || typeof uid !== 'string' || uid === '') return undefined;
  const namespace = typeof meta['namespace'] === 'string' ? meta['namespace'] : 'default';
  const deletion = meta['deletionTimestamp'];
  const dgps = meta['deletionGracePeriodSeconds'];
  const tgps = spec['terminationGracePeriodSeconds'];
  const nodeName = typeof spec['nodeName'] === 'string' && spec['nodeName'] !== '' ? spec['nodeName'] : undefined;
  return {
    namespace,
    name,
    uid,
    nodeName,
    terminating: typeof deletion === 'string' && deletion !== '',
    graceSeconds: typeof dgps === 'number' && dgps >= 0 ? dgps : typeof tgps === 'number' && tgps >= 0 ? tgps : 30,
    restartPolicy: spec['restartPolicy'] === 'Never' || spec['restartPolicy'] === 'OnFailure' ? spec['restartPolicy'] : 'Always',
    hostNetwork: spec['hostNetwork'] === true,
    initContainers: containers(spec['initContainers']),
    containers: containers(spec['containers']),
    facts: {
      name,
      namespace,
      uid,
      nodeName: nodeName ?? '',
      serviceAccountName: typeof spec['serviceAccountName'] === 'string' ? spec['serviceAccountName'] : undefined,
      labels: strMap(meta['labels']),
      annotations: strMap(meta['annotations']),
    },
  };
}

/** The node's `InternalIP` from a stored Node value (the pods' `hostIP`). */
export function nodeInternalIp(value: unknown): string | undefined {
  const addresses = obj(obj(value)?.['status'])?.['addresses'];
  for (const a of Array.isArray(addresses) ? (addresses as unknown[]) : []) {
    const o = obj(a);
    if (o?.['type'] === 'InternalIP' && typeof o['address'] === 'string') return o['address'];
  }
  return undefined;
}
