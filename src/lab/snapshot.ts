/**
 * One consistent-enough read of everything `up`'s wait, `verify` and `status` look at: the resources in
 * the datastore (validated at the boundary, as the agent does: an invalid one counts as absent), the
 * agents' status records and maxNextHops choices, and the emulator's persisted state (ENIs, Elastic IP
 * associations). Plus small pure accessors over it.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { EgressGateway, EgressGatewayPolicy, FelixConfiguration, IPPool, Namespace, Node, Pod } from '../api/index.js';
import { validateDocument } from '../api/index.js';
import { NEXT_HOPS_KIND, NODE_STATUS_KIND, parseNextHops, parseNodeStatus } from '../agent/records.js';
import type { NodeStatus } from '../agent/records.js';
import type { EgressNextHops } from '../calc/index.js';
import type { Datastore } from '../datastore/contract.js';
import type { AddressRecord, EniRecord } from '../sim/aws/index.js';

/** The emulator's state, as far as the lab reads it. */
export interface SimView {
  enis: EniRecord[];
  addresses: AddressRecord[];
}

/** Everything the lab's views are computed from. */
export interface LabSnapshot {
  pods: Pod[];
  namespaces: Namespace[];
  nodes: Node[];
  policies: EgressGatewayPolicy[];
  felix: FelixConfiguration[];
  pools: IPPool[];
  gateways: EgressGateway[];
  nodeStatus: NodeStatus[];
  nextHops: EgressNextHops[];
  /** Undefined when the emulator's state file cannot be read (yet). */
  sim: SimView | undefined;
}

const KINDS = ['Pod', 'Namespace', 'Node', 'EgressGatewayPolicy', 'FelixConfiguration', 'IPPool', 'EgressGateway'] as const;

/** Reads the emulator's state file (`aws-sim/state.json`); undefined when missing or unreadable. */
export function readSimView(stateFile: string): SimView | undefined {
  if (!existsSync(stateFile)) return undefined;
  try {
    const s = JSON.parse(readFileSync(stateFile, 'utf8')) as { enis?: Record<string, EniRecord>; addresses?: Record<string, AddressRecord> };
    return { enis: Object.values(s.enis ?? {}), addresses: Object.values(s.addresses ?? {}) };
  } catch {
    // Written atomically (rename), so a failed read is a missing file or a foreign format.
    return undefined;
  }
}

/** Reads a snapshot. Datastore failures propagate (`DatastoreUnavailable`). */
export async function readLabSnapshot(store: Datastore, simStateFile: string | undefined): Promise<LabSnapshot> {
  const lists = await Promise.all([...KINDS.map((k) => store.list(k)), store.list(NODE_STATUS_KIND), store.list(NEXT_HOPS_KIND)]);
  const valid = <T>(i: number): T[] =>
    lists[i]!.items.flatMap((s) => {
      const { resource } = validateDocument(s.value, { file: 'datastore', documentIndex: 1 });
      return resource === undefined ? [] : [resource as T];
    });
  return {
    pods: valid<Pod>(0),
    namespaces: valid<Namespace>(1),
    nodes: valid<Node>(2),
    policies: valid<EgressGatewayPolicy>(3),
    felix: valid<FelixConfiguration>(4),
    pools: valid<IPPool>(5),
    gateways: valid<EgressGateway>(6),
    nodeStatus: lists[7]!.items.flatMap((s) => parseNodeStatus(s) ?? []),
    nextHops: lists[8]!.items.flatMap((s) => parseNextHops(s) ?? []),
    sim: simStateFile === undefined ? undefined : readSimView(simStateFile),
  };
}

/** `namespace/name` of a pod. */
export function podKey(p: Pod): string {
  return `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;
}

/**
 * The EgressGateway that controls a pod (`namespace/name`), if any: its controller, or — on Kubernetes,
 * where the operator's Deployment owns the pods through a ReplicaSet `<deployment>-<pod-template-hash>` —
 * the Deployment, which the operator names after its EgressGateway. (A lab on Kubernetes runs no other
 * Deployments; one a user adds would be counted as a gateway.)
 */
export function gatewayOwner(p: Pod): string | undefined {
  const refs = (p.metadata as { ownerReferences?: { kind?: string; name?: string; controller?: boolean }[] }).ownerReferences ?? [];
  const ns = p.metadata.namespace ?? 'default';
  const ref = refs.find((r) => r.kind === 'EgressGateway' && r.controller === true);
  if (ref?.name !== undefined) return `${ns}/${ref.name}`;
  const rs = refs.find((r) => r.kind === 'ReplicaSet' && r.controller === true);
  const hash = p.metadata.labels?.['pod-template-hash'];
  if (rs?.name === undefined || hash === undefined || !rs.name.endsWith(`-${hash}`)) return undefined;
  return `${ns}/${rs.name.slice(0, -hash.length - 1)}`;
}

/** True when the pod is being deleted or has finished. */
export function podGone(p: Pod): boolean {
  const phase = p.status?.phase;
  return (p.metadata as { deletionTimestamp?: string }).deletionTimestamp !== undefined || phase === 'Succeeded' || phase === 'Failed';
}

/** A node's InternalIP. */
export function nodeIp(n: Node | undefined): string | undefined {
  return n?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
}

/** The Elastic IP associated with a private IP in the emulator, if any. */
export function elasticIpOf(sim: SimView | undefined, privateIp: string): string | undefined {
  return sim?.addresses.find((a) => a.association?.privateIp === privateIp)?.publicIp;
}
