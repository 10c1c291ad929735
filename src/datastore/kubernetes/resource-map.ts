/**
 * Where each datastore kind lives on a Kubernetes API server (pure data and pure functions).
 *
 * - API kinds (src/api/kinds.ts) map to themselves: core v1 Namespace/Pod/Node, projectcalico.org/v3 IPPool…,
 *   operator.tigera.io/v1 EgressGateway, egw.io/v1 AWSSubnet. The datastore value IS the object.
 * - `Lease` maps to coordination.k8s.io/v1 leases (the value is a real Lease object).
 * - egw's internal records (IPAM, agent records) are custom resources of group `egw.io`, version v1, stored
 *   as `{apiVersion: 'egw.io/v1', kind, metadata: {name, namespace?}, spec: <the value>}`.
 *
 * Record names that are not DNS-1123 subdomains are encoded reversibly ({@link encodeRecordName}); records
 * whose datastore namespace is not a Kubernetes namespace (an IPAM block's pool CIDR, an affinity's node)
 * are cluster-scoped with the namespace folded into the name. docs/datastore.md, "The Kubernetes backend".
 */
import { crdFor } from '../../api/crd.js';
import { KINDS } from '../../api/kinds.js';
import { EgwError } from '../../platform/errors.js';
import type { ResourceKey } from '../contract.js';

/** The API group and version of egw's internal records. */
export const RECORD_GROUP = 'egw.io';
export const RECORD_VERSION = 'v1';

/** How one datastore kind is stored. */
export interface ResourceInfo {
  /** The datastore kind (also the API kind). */
  readonly kind: string;
  /** API group; '' for core. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  /** True when the API resource is namespaced. */
  readonly namespaced: boolean;
  /** `object`: the value is the API object. `record`: the value is the `spec` of an egw.io record. */
  readonly mode: 'object' | 'record';
  /**
   * Records only: the datastore keys carry a namespace that is not a Kubernetes namespace, so the resource
   * is cluster-scoped and the namespace is folded into its name ({@link encodeFoldedName}).
   */
  readonly foldNamespace: boolean;
  /**
   * True when the API resource has a status subresource (`…/status`): its main endpoint ignores changes
   * of `status` and the status endpoint ignores everything else, so the backend writes the two apart.
   */
  readonly statusSubresource: boolean;
  readonly description: string;
}

/** An internal record kind, as the map and the CRDs need it. */
export interface RecordKind {
  readonly kind: string;
  /** Whether datastore keys of this kind carry a namespace. */
  readonly keyed: 'cluster' | 'namespace' | 'folded';
  readonly description: string;
}

/**
 * egw's internal record kinds. The names are repeated here (not imported) because the datastore room may
 * not import ipam/ or agent/; test/datastore/kubernetes-resource-map.test.ts checks they match.
 */
export const RECORD_KINDS: readonly RecordKind[] = [
  { kind: 'IPAMBlock', keyed: 'folded', description: "An IPAM block's allocations (namespace: the pool CIDR)." },
  { kind: 'IPAMHandle', keyed: 'cluster', description: 'One IPAM allocation: address, block, pool, node, use, owner.' },
  { kind: 'BlockAffinity', keyed: 'folded', description: 'Index: a block affine to a node that still has a usable address (namespace: the node).' },
  { kind: 'FullBlockAffinity', keyed: 'folded', description: 'Index: a block affine to a node with no usable address left (namespace: the node).' },
  { kind: 'IPAMGCMark', keyed: 'cluster', description: "IPAM GC's first observation of a leak or an empty block." },
  { kind: 'EgressNextHops', keyed: 'namespace', description: "A client pod's maxNextHops choice (namespace: the pod's)." },
  { kind: 'EgressNodeStatus', keyed: 'cluster', description: "What a node's agent programmed and why." },
];

/** The plural resource name of a record kind (lower case + `s`, as kubectl would guess). */
export function recordPlural(kind: string): string {
  const lower = kind.toLowerCase();
  return lower.endsWith('s') ? `${lower}es` : `${lower}s`;
}

function recordInfo(r: RecordKind): ResourceInfo {
  return {
    kind: r.kind,
    group: RECORD_GROUP,
    version: RECORD_VERSION,
    plural: recordPlural(r.kind),
    namespaced: r.keyed === 'namespace',
    mode: 'record',
    foldNamespace: r.keyed === 'folded',
    // recordCrd of src/api/crd.ts gives records no status subresource: the whole object is one write.
    statusSubresource: false,
    description: r.description,
  };
}

/** The core kinds of {@link KINDS} whose API resource has a status subresource (all three do). */
const CORE_STATUS_SUBRESOURCE: ReadonlySet<string> = new Set(['Pod', 'Node', 'Namespace']);

/** The default map: every API kind, Lease, and every internal record kind. */
export function defaultResourceMap(extraRecords: readonly RecordKind[] = []): ReadonlyMap<string, ResourceInfo> {
  const map = new Map<string, ResourceInfo>();
  for (const k of KINDS) {
    map.set(k.kind, {
      kind: k.kind,
      group: k.group,
      version: k.version,
      plural: k.plural,
      namespaced: k.namespaced,
      mode: 'object',
      foldNamespace: false,
      // CRD kinds: exactly what egw's CRD declares (one source: crdFor of src/api/crd.ts).
      statusSubresource: k.group === '' ? CORE_STATUS_SUBRESOURCE.has(k.kind) : crdFor(k).spec.versions.some((v) => v.subresources !== undefined),
      description: k.description,
    });
  }
  map.set('Lease', {
    kind: 'Lease',
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    namespaced: true,
    mode: 'object',
    foldNamespace: false,
    statusSubresource: false,
    description: 'A coordination.k8s.io/v1 Lease (leader election).',
  });
  for (const r of [...RECORD_KINDS, ...extraRecords]) map.set(r.kind, recordInfo(r));
  return map;
}

/** `group/version`, or `version` for the core group. */
export function apiVersionOf(info: ResourceInfo): string {
  return info.group === '' ? info.version : `${info.group}/${info.version}`;
}

/** The URL path of an object's status subresource. */
export function statusPath(info: ResourceInfo, namespace: string | undefined, name: string): string {
  return `${resourcePath(info, namespace, name)}/status`;
}

/** The CRD name (`plural.group`) of a resource; core resources have none. */
export function crdName(info: ResourceInfo): string {
  return `${info.plural}.${info.group}`;
}

/**
 * The URL path of a resource collection (`namespace` undefined: all namespaces, or cluster-scoped), or of
 * one object when `name` is given.
 */
export function resourcePath(info: ResourceInfo, namespace?: string, name?: string): string {
  const base = info.group === '' ? `/api/${info.version}` : `/apis/${info.group}/${info.version}`;
  const ns = info.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const obj = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  return `${base}${ns}/${info.plural}${obj}`;
}

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Marks an encoded name. A valid name that starts with it is encoded too, so decoding is unambiguous. */
export const ENCODED_PREFIX = 'x--';
const MAX_NAME = 253;

/** True for a DNS-1123 subdomain (what Kubernetes accepts as an object name). */
export function isSubdomain(s: string): boolean {
  return s.length <= MAX_NAME && SUBDOMAIN.test(s);
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

function unbase32(s: string): string | undefined {
  const bytes: number[] = [];
  let bits = 0;
  let acc = 0;
  for (const c of s) {
    const v = B32.indexOf(c);
    if (v < 0) return undefined;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bytes.push((acc >>> (bits - 8)) & 255);
      bits -= 8;
      acc &= (1 << bits) - 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function tooLong(what: string): EgwError {
  return new EgwError('InvalidInput', `${what} is too long for a Kubernetes object name once encoded (more than ${MAX_NAME} characters)`, {
    hint: 'use a shorter name',
  });
}

/**
 * A record name as a Kubernetes object name: itself when it is a DNS-1123 subdomain not starting with
 * {@link ENCODED_PREFIX}, else the prefix followed by the lower-case base32 (RFC 4648, no padding) of its
 * UTF-8 bytes. Throws `InvalidInput` when the result exceeds 253 characters.
 */
export function encodeRecordName(name: string): string {
  if (isSubdomain(name) && !name.startsWith(ENCODED_PREFIX)) return name;
  const enc = ENCODED_PREFIX + base32(Buffer.from(name, 'utf8'));
  if (enc.length > MAX_NAME) throw tooLong(`record name ${JSON.stringify(name)}`);
  return enc;
}

/** The inverse of {@link encodeRecordName}. */
export function decodeRecordName(name: string): string {
  if (!name.startsWith(ENCODED_PREFIX)) return name;
  return unbase32(name.slice(ENCODED_PREFIX.length)) ?? name;
}

/**
 * A namespace and a name folded into one object name: `NAMESPACE--NAME` when the namespace is a DNS-1123
 * subdomain without `--` (not starting with the prefix) and the name a subdomain, else the prefix followed
 * by the base32 of `NAMESPACE/NAME` (`/` never occurs in key parts). Throws `InvalidInput` when too long.
 */
export function encodeFoldedName(namespace: string, name: string): string {
  const plain = `${namespace}--${name}`;
  if (isSubdomain(namespace) && !namespace.includes('--') && isSubdomain(name) && !namespace.startsWith(ENCODED_PREFIX) && plain.length <= MAX_NAME) {
    return plain;
  }
  const enc = ENCODED_PREFIX + base32(Buffer.from(`${namespace}/${name}`, 'utf8'));
  if (enc.length > MAX_NAME) throw tooLong(`record ${JSON.stringify(`${namespace}/${name}`)}`);
  return enc;
}

/** The inverse of {@link encodeFoldedName}; undefined for a name it cannot have produced. */
export function decodeFoldedName(objectName: string): { namespace: string; name: string } | undefined {
  if (objectName.startsWith(ENCODED_PREFIX)) {
    const s = unbase32(objectName.slice(ENCODED_PREFIX.length));
    const slash = s?.indexOf('/') ?? -1;
    return s === undefined || slash <= 0 ? undefined : { namespace: s.slice(0, slash), name: s.slice(slash + 1) };
  }
  const sep = objectName.indexOf('--');
  return sep <= 0 ? undefined : { namespace: objectName.slice(0, sep), name: objectName.slice(sep + 2) };
}

/** Where one datastore key lives: the API namespace (if namespaced) and object name. */
export interface ObjectRef {
  readonly namespace: string | undefined;
  readonly name: string;
}

/**
 * The API object a datastore key names. Throws `InvalidInput` when the key's scope does not fit the kind
 * (a namespace on a cluster-scoped kind or none on a namespaced one).
 */
export function objectRef(info: ResourceInfo, key: ResourceKey): ObjectRef {
  const ns = key.namespace === '' ? undefined : key.namespace;
  const scoped = info.namespaced || info.foldNamespace;
  if (scoped !== (ns !== undefined)) {
    throw new EgwError('InvalidInput', `${key.kind} is ${scoped ? 'namespaced' : 'cluster-scoped'} on the Kubernetes datastore: key ${JSON.stringify(key)}`, {
      hint: scoped ? 'give the key a namespace' : 'drop the namespace from the key',
    });
  }
  if (info.mode === 'object') return { namespace: ns, name: key.name };
  if (info.foldNamespace) return { namespace: undefined, name: encodeFoldedName(ns!, key.name) };
  return { namespace: ns, name: encodeRecordName(key.name) };
}

/** The datastore key of an API object (the inverse of {@link objectRef}); undefined for names egw cannot have written. */
export function keyOfObject(info: ResourceInfo, namespace: string | undefined, name: string): ResourceKey | undefined {
  if (info.mode === 'object') return info.namespaced ? { kind: info.kind, namespace: namespace ?? '', name } : { kind: info.kind, name };
  if (info.foldNamespace) {
    const f = decodeFoldedName(name);
    return f === undefined ? undefined : { kind: info.kind, namespace: f.namespace, name: f.name };
  }
  const n = decodeRecordName(name);
  return info.namespaced ? { kind: info.kind, namespace: namespace ?? '', name: n } : { kind: info.kind, name: n };
}
