/**
 * What is ours on EC2, known after a restart with no memory: the tags every egw ENI gets at creation
 * (TagSpecifications, so an ENI is never untagged), and the ClientTokens that make a repeated create
 * return the first ENI instead of making a second. Pure.
 *
 * | tag | value | why |
 * |---|---|---|
 * | `calico:use` | `secondary` | Calico's own tag (its leak-hunting recipe filters on it) |
 * | `calico:instance` | instance ID | Calico's own tag: the node that owns it |
 * | `egw:cluster` | cluster name | two clusters in one account never touch each other's ENIs |
 * | `egw:node` | node name | for humans and `egw status` |
 * | `egw:mode` | `eni-per-workload` \| `secondary-ip` | which reconciler logic owns it |
 * | `egw:owner` | `pod/<ns>/<name>/<uid>` \| `ipam/<handle>` | the workload (ENI mode) or the IPAM handle of the ENI's primary IP |
 * | `egw:created-at` | RFC 3339 | when the intent began (pod creation / host-IP allocation): stable, so a retried create sends identical parameters |
 */
import { createHash } from 'node:crypto';
import type { Ec2NetworkInterface, Ec2Tag } from './ec2-port.js';

export const TAG_USE = 'calico:use';
export const TAG_USE_VALUE = 'secondary';
export const TAG_INSTANCE = 'calico:instance';
export const TAG_CLUSTER = 'egw:cluster';
export const TAG_NODE = 'egw:node';
export const TAG_MODE = 'egw:mode';
export const TAG_OWNER = 'egw:owner';
export const TAG_CREATED_AT = 'egw:created-at';

/** The two kinds of ENI egw makes. */
export type EniKind = 'eni-per-workload' | 'secondary-ip';

/** Who we are, for tags and filters. */
export interface OwnerIdentity {
  cluster: string;
  node: string;
  instanceId: string;
}

/** The tags of a new ENI. */
export function eniTags(id: OwnerIdentity, kind: EniKind, owner: string, createdAt: string): Ec2Tag[] {
  return [
    { key: TAG_USE, value: TAG_USE_VALUE },
    { key: TAG_INSTANCE, value: id.instanceId },
    { key: TAG_CLUSTER, value: id.cluster },
    { key: TAG_NODE, value: id.node },
    { key: TAG_MODE, value: kind },
    { key: TAG_OWNER, value: owner.slice(0, 256) },
    { key: TAG_CREATED_AT, value: createdAt },
  ];
}

/** The DescribeNetworkInterfaces filters that find every ENI this node's egw made, attached or not. */
export function ourEniFilters(id: OwnerIdentity): { name: string; values: string[] }[] {
  return [
    { name: `tag:${TAG_INSTANCE}`, values: [id.instanceId] },
    { name: `tag:${TAG_CLUSTER}`, values: [id.cluster] },
  ];
}

/** True when the ENI carries our tags: this cluster, this instance, Calico's secondary marker, a known kind. */
export function isOurs(eni: Ec2NetworkInterface, id: OwnerIdentity): boolean {
  return eni.tags[TAG_CLUSTER] === id.cluster && eni.tags[TAG_INSTANCE] === id.instanceId && eni.tags[TAG_USE] === TAG_USE_VALUE && kindOf(eni) !== undefined;
}

/** The kind recorded on one of our ENIs. */
export function kindOf(eni: Ec2NetworkInterface): EniKind | undefined {
  const v = eni.tags[TAG_MODE];
  return v === 'eni-per-workload' || v === 'secondary-ip' ? v : undefined;
}

/** The `egw:owner` value of an ENI-per-workload ENI. */
export function podOwner(namespace: string, name: string, uid: string): string {
  return `pod/${namespace}/${name}/${uid}`;
}

/** The `egw:owner` value of a shared (secondary-IP mode) ENI: the IPAM handle of its primary address. */
export function ipamOwner(handle: string): string {
  return `ipam/${handle}`;
}

/** The IPAM handle named by a shared ENI's owner tag, or undefined. */
export function handleOfOwner(owner: string | undefined): string | undefined {
  return owner?.startsWith('ipam/') === true ? owner.slice('ipam/'.length) : undefined;
}

/** Epoch ms of an ENI's `egw:created-at`, or undefined. */
export function createdAtOf(eni: Ec2NetworkInterface): number | undefined {
  const v = eni.tags[TAG_CREATED_AT];
  const t = v === undefined ? NaN : Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * A ClientToken (≤ 64 ASCII characters) derived only from the intent — cluster, instance, what the ENI
 * is for, its primary address, and a generation — so that an agent restarted after a crash sends the
 * same token and EC2 answers with the ENI the first attempt made. The generation moves when EC2's answer
 * for a token is no use (the ENI it names was deleted since, or the parameters changed).
 */
export function clientToken(id: OwnerIdentity, purpose: string, primaryIp: string, generation: number): string {
  const digest = createHash('sha256').update(JSON.stringify([id.cluster, id.instanceId, purpose, primaryIp, generation])).digest('hex');
  return `egw-${digest.slice(0, 48)}`;
}

/**
 * The IPAM handle of slot `slot` of the shared ENIs of `node` in `subnetId`: deterministic, so a restart
 * finds the address it allocated before the crash instead of taking a second one.
 */
export function hostHandle(node: string, subnetId: string, slot: number): string {
  return `egw-eni.${node}.${subnetId}.${slot}`;
}

/** The slot of a host handle made by {@link hostHandle} for `node`, or undefined. */
export function slotOfHandle(handle: string, node: string, subnetId: string): number | undefined {
  const prefix = `egw-eni.${node}.${subnetId}.`;
  if (!handle.startsWith(prefix)) return undefined;
  const n = Number(handle.slice(prefix.length));
  return Number.isInteger(n) && n > 0 ? n : undefined;
}
