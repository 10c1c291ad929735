/**
 * Which IP pools and Elastic IPs a pod may claim (issue 11 item 7, docs/security.md): an allow-list an
 * administrator keeps on the pod's Namespace, on every datastore. Namespaces are cluster-scoped, so on
 * Kubernetes only administrators can edit them; on SQLite and etcd whoever writes the datastore is the
 * administrator, and the list is what `egw apply`, the IPAM plugin and the AWS fabric enforce.
 *
 * Absent annotation: everything is allowed (compatible with Calico's manifests, which have none). Present:
 * only what it lists. Malformed: nothing (fail closed). A pod's own annotations are checked; the
 * namespace's own `cni.projectcalico.org/ipv4pools` is the administrator's choice already. Pure.
 */
import { parseStringArray } from './annotations.js';
import { parseCidr } from './ip.js';

/** Namespace annotation: the pools (names or CIDRs, a JSON array) its pods may name in `cni.projectcalico.org/ipv4pools`. */
export const ALLOWED_IPV4_POOLS = 'egw.io/allowed-ipv4pools';
/** Namespace annotation: the Elastic IPs (a JSON array) its pods may claim in `cni.projectcalico.org/awsElasticIPs`. */
export const ALLOWED_ELASTIC_IPS = 'egw.io/allowed-elastic-ips';

/** An allow-list as read from a namespace: `all` (no annotation), or the entries (none when malformed). */
export type AllowList = { readonly all: true } | { readonly all: false; readonly entries: readonly string[]; readonly malformed: boolean };

/** Reads one allow-list annotation of a namespace. */
export function readAllowList(namespaceAnnotations: Readonly<Record<string, string>> | undefined, key: typeof ALLOWED_IPV4_POOLS | typeof ALLOWED_ELASTIC_IPS): AllowList {
  const text = namespaceAnnotations?.[key];
  if (text === undefined) return { all: true };
  const list = parseStringArray(text);
  return list === undefined ? { all: false, entries: [], malformed: true } : { all: false, entries: list, malformed: false };
}

/** A pool as the allow-list matches it: by name or by CIDR. */
export interface PoolName {
  readonly name: string;
  readonly cidr: string;
}

function canonical(entry: string): string {
  const c = parseCidr(entry);
  return c === undefined ? entry : `${c.cidr.version}:${c.cidr.network.toString()}/${c.cidr.prefix}`;
}

/**
 * The requested pool entries (names or CIDRs) the allow-list does not allow, in request order. An entry
 * is allowed when the list names the same pool, by name or by CIDR (the stored pools resolve one to the
 * other), or the same text.
 */
export function poolsNotAllowed(requested: readonly string[], allow: AllowList, pools: readonly PoolName[]): string[] {
  if (allow.all) return [];
  const identity = (entry: string): string => {
    const c = canonical(entry);
    const pool = pools.find((p) => p.name === entry || canonical(p.cidr) === c);
    return pool === undefined ? `text:${c}` : `pool:${pool.name}`;
  };
  const allowed = new Set(allow.entries.map(identity));
  return requested.filter((e) => !allowed.has(identity(e)));
}

/** The claimed Elastic IPs the allow-list does not allow, in claim order. */
export function elasticIpsNotAllowed(claimed: readonly string[], allow: AllowList): string[] {
  if (allow.all) return [];
  const allowed = new Set(allow.entries);
  return claimed.filter((ip) => !allowed.has(ip));
}

/** The words of a refusal: what the namespace allows. */
export function describeAllowList(allow: AllowList): string {
  if (allow.all) return 'everything';
  if (allow.malformed) return 'nothing (the annotation is not a JSON array of strings)';
  return allow.entries.length === 0 ? 'nothing' : JSON.stringify(allow.entries);
}
