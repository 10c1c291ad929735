/**
 * Names the lab's kubelet derives from a pod's identity (namespace, name, uid): the pod's network
 * namespace, its sandbox (CNI container) ID and its state directory. Pure and stable, so that a
 * restarted kubelet finds what an earlier one made.
 */
import { createHash } from 'node:crypto';
import { EgwError } from '../../platform/errors.js';

/** The longest network namespace name the kubelet makes (a DNS label's length: readable in `ip netns list`). */
export const MAX_NETNS_NAME = 63;
/** The longest prefix accepted: room remains for the pod name and the hash. */
export const MAX_NETNS_PREFIX = 30;

const PREFIX_RE = /^[a-z0-9][a-z0-9-]*$/;

/** Throws `InvalidInput` unless `prefix` is 1–30 characters of `[a-z0-9-]`, starting with a letter or digit. */
export function checkNetnsPrefix(prefix: string): void {
  if (prefix.length === 0 || prefix.length > MAX_NETNS_PREFIX || !PREFIX_RE.test(prefix)) {
    throw new EgwError('InvalidInput', `netns prefix ${JSON.stringify(prefix)} is not 1–${MAX_NETNS_PREFIX} characters of a-z, 0-9 and "-"`, { hint: 'pass the lab prefix, e.g. --netns-prefix egwlab' });
  }
}

function digest(namespace: string, name: string, uid: string): string {
  return createHash('sha256').update(`${namespace}/${name}/${uid}`).digest('hex');
}

/**
 * The pod's sandbox ID, used as `CNI_CONTAINERID` (so the IPAM handle is `<network>.<id>`): 64 hex
 * digits of SHA-256 over `namespace/name/uid`, like a container runtime's sandbox IDs. The same pod
 * always gets the same ID, so a repeated ADD after a crash returns the same address.
 */
export function podSandboxId(namespace: string, name: string, uid: string): string {
  return digest(namespace, name, uid);
}

/**
 * The pod's network namespace: `<prefix>-<pod name, cut>-<8 hex of the sandbox ID>`, at most
 * {@link MAX_NETNS_NAME} characters, only `[a-z0-9.-]`. Unique per pod incarnation (the uid is hashed in),
 * readable (the pod name shows), and swept by the lab with everything else under its prefix.
 */
export function podNetnsName(prefix: string, namespace: string, name: string, uid: string): string {
  checkNetnsPrefix(prefix);
  const hash = digest(namespace, name, uid).slice(0, 8);
  const room = MAX_NETNS_NAME - prefix.length - hash.length - 2;
  const cut = name.toLowerCase().replace(/[^a-z0-9.-]/g, '-').slice(0, room).replace(/[-.]+$/, '');
  return cut === '' ? `${prefix}-${hash}` : `${prefix}-${cut}-${hash}`;
}

/**
 * The pod's directory under the kubelet's state dir: `<namespace>_<name>_<uid>` (Kubernetes' own layout
 * of `/var/log/pods`); namespace and name cannot hold `_`, characters of the uid outside `[A-Za-z0-9.-]`
 * become `-`.
 */
export function podDirName(namespace: string, name: string, uid: string): string {
  return `${namespace}_${name}_${uid.replace(/[^A-Za-z0-9.-]/g, '-')}`;
}

/** The container ID reported in `containerStatuses`: `egw-lab://<netns>/<container>`, so tools find the namespace. */
export function containerIdOf(netns: string, container: string): string {
  return `egw-lab://${netns}/${container}`;
}
