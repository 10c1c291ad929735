/**
 * What calc reads from a Pod and a Node: addresses, datastore readiness, the health port. Pure.
 */
import { CNI_AWS_ELASTIC_IPS, EGRESS_GATEWAY_POLICY, EGRESS_SELECTOR, EGW_AWS_READY_CONDITION, elasticIpStandby, type Node, type Pod } from '../api/index.js';
import { isIpv4, parseIpv4 } from '../platform/ipv4.js';
import type { InvalidPod } from './types.js';

/** The facts of one pod that calc uses. */
export interface PodFacts {
  /** The pod's IPv4 address (`status.podIP`, else the first IPv4 of `status.podIPs`). */
  readonly ip: string | undefined;
  /** `ip` as an unsigned number (for sorting); 0 when there is none. */
  readonly ipNum: number;
  /** `status.hostIP` when IPv4: the node address, when the Node resource does not say it. */
  readonly hostIp: string | undefined;
  /** A hostNetwork pod has the node's address: never a client, never a usable gateway. */
  readonly hostNetwork: boolean;
  /** Succeeded or Failed: the pod sends nothing any more. */
  readonly finished: boolean;
  /** Datastore readiness as a gateway; see {@link podFacts}. */
  readonly ready: boolean;
  /** Why it is not ready (undefined when ready). */
  readonly notReadyReason: string | undefined;
  /** The container port named `health` (only such gateways are polled). */
  readonly healthPort: number | undefined;
  /** `metadata.uid`, or the key when there is none. */
  readonly uid: string;
  /** Why the pod may not act as a gateway (set by the calculator from its owner; undefined: allowed). */
  readonly refused?: string | undefined;
}

function readyCondition(pod: Pod, type = 'Ready'): string | undefined {
  // `conditions` is not in the typed schema (kept as written); read it defensively.
  const conditions: unknown = (pod.status as { conditions?: unknown } | undefined)?.conditions;
  if (!Array.isArray(conditions)) return undefined;
  for (const c of conditions as unknown[]) {
    if (typeof c === 'object' && c !== null && (c as { type?: unknown }).type === type) {
      const status = (c as { status?: unknown }).status;
      return typeof status === 'string' ? status : undefined;
    }
  }
  return undefined;
}

/**
 * The facts of a pod. Datastore readiness, as a gateway: not terminating (a gateway being deleted leaves
 * at once), phase Running, an IPv4 address, not hostNetwork, and its `Ready` condition `True` when it
 * has one (a pod without conditions, as some test fixtures write it, counts by its phase).
 */
export function podFacts(pod: Pod): PodFacts {
  const status = pod.status;
  let ip = status?.podIP !== undefined && isIpv4(status.podIP) ? status.podIP : undefined;
  if (ip === undefined) for (const p of status?.podIPs ?? []) if (parseIpv4(p.ip) !== undefined) { ip = p.ip; break; }
  const hostNetwork = pod.spec.hostNetwork === true;
  const phase = status?.phase;
  let notReadyReason: string | undefined;
  if (pod.metadata.deletionTimestamp !== undefined) notReadyReason = 'terminating';
  else if (hostNetwork) notReadyReason = 'hostNetwork pod';
  else if (phase !== 'Running') notReadyReason = `phase ${phase ?? 'unknown'}`;
  else if (ip === undefined) notReadyReason = 'no IPv4 address';
  else {
    const ready = readyCondition(pod);
    if (ready !== undefined && ready !== 'True') notReadyReason = 'Ready condition is not True';
    // An Elastic IP standby without its Elastic IP would send clients' internet traffic out with no
    // public address: it is a gateway only once the agent's fabric reports it Ready (Elastic IP held).
    else if (elasticIpStandby(pod.metadata.annotations) && pod.metadata.annotations?.[CNI_AWS_ELASTIC_IPS] !== undefined && readyCondition(pod, EGW_AWS_READY_CONDITION) !== 'True') {
      notReadyReason = 'Elastic IP standby holding no Elastic IP';
    }
  }
  let healthPort: number | undefined;
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) if (p.name === 'health' && healthPort === undefined) healthPort = p.containerPort;
  }
  const key = `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
  return {
    ip,
    ipNum: ip === undefined ? 0 : parseIpv4(ip)!,
    hostIp: status?.hostIP !== undefined && isIpv4(status.hostIP) ? status.hostIP : undefined,
    hostNetwork,
    finished: phase === 'Succeeded' || phase === 'Failed',
    ready: notReadyReason === undefined,
    notReadyReason,
    healthPort,
    uid: pod.metadata.uid ?? key,
  };
}

/** True when the two facts differ in anything a gateway's users see (address, readiness, port). */
export function gatewayFactsDiffer(a: PodFacts, b: PodFacts): boolean {
  return a.ip !== b.ip || a.ready !== b.ready || a.healthPort !== b.healthPort || a.hostIp !== b.hostIp || a.notReadyReason !== b.notReadyReason;
}

/** The node's IPv4 `InternalIP` (the first one), else its first IPv4 `ExternalIP`; undefined otherwise. */
export function nodeAddress(node: Node): string | undefined {
  const addresses = node.status?.addresses ?? [];
  for (const type of ['InternalIP', 'ExternalIP']) {
    for (const a of addresses) if (a.type === type && parseIpv4(a.address) !== undefined) return a.address;
  }
  return undefined;
}

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[name] : undefined;
}

/**
 * What can be read of a stored Pod that failed validation, defensively (any field may be of any type):
 * its node, its first IPv4 address, hostNetwork, finished, and whether it carries egress annotations of
 * its own. Unreadable annotations count as egress annotations: when in doubt, the pod is a client and
 * its traffic drops. Pure.
 */
export function invalidPodFacts(namespace: string, name: string, value: unknown, message: string): InvalidPod {
  const spec = field(value, 'spec');
  const status = field(value, 'status');
  const nodeName = field(spec, 'nodeName');
  const candidates: unknown[] = [field(status, 'podIP')];
  const list = field(status, 'podIPs');
  if (Array.isArray(list)) for (const p of list as unknown[]) candidates.push(field(p, 'ip'));
  const ip = candidates.find((c): c is string => typeof c === 'string' && isIpv4(c));
  const phase = field(status, 'phase');
  const annotations = field(field(value, 'metadata'), 'annotations');
  const readable = annotations === undefined || (typeof annotations === 'object' && annotations !== null && !Array.isArray(annotations));
  const egressAnnotated = !readable || field(annotations, EGRESS_SELECTOR) !== undefined || field(annotations, EGRESS_GATEWAY_POLICY) !== undefined;
  return {
    key: `${namespace}/${name}`,
    namespace,
    node: typeof nodeName === 'string' && nodeName !== '' ? nodeName : undefined,
    ip,
    hostNetwork: field(spec, 'hostNetwork') === true,
    finished: phase === 'Succeeded' || phase === 'Failed',
    egressAnnotated,
    message,
  };
}
