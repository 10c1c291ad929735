/**
 * The kind registry: every kind egw stores, with its API group/version, names (plural, singular, short),
 * scope and JSON Schema. Pure data plus lookups.
 */
import type { TSchema } from '@sinclair/typebox';
import { EgwError } from '../platform/errors.js';
import { AWSSubnetSchema, type AWSSubnet } from './kinds/aws-subnet.js';
import { EgressGatewayPolicySchema, type EgressGatewayPolicy } from './kinds/egress-gateway-policy.js';
import { EgressGatewaySchema, type EgressGateway } from './kinds/egress-gateway.js';
import { FelixConfigurationSchema, type FelixConfiguration } from './kinds/felix-configuration.js';
import { IPPoolSchema, type IPPool } from './kinds/ip-pool.js';
import { IPReservationSchema, type IPReservation } from './kinds/ip-reservation.js';
import { NamespaceSchema, NodeSchema, PodSchema, type Namespace, type Node, type Pod } from './kinds/kubernetes.js';

/** Every kind egw knows, by its API name. */
export type KindName = 'IPPool' | 'IPReservation' | 'FelixConfiguration' | 'EgressGatewayPolicy' | 'EgressGateway' | 'Namespace' | 'Pod' | 'Node' | 'AWSSubnet';

/** Any resource egw stores (discriminated by `kind`). */
export type AnyResource = IPPool | IPReservation | FelixConfiguration | EgressGatewayPolicy | EgressGateway | Namespace | Pod | Node | AWSSubnet;

/** The resource type of one kind, e.g. `ResourceOf<'IPPool'>` is `IPPool`. */
export type ResourceOf<K extends KindName> = Extract<AnyResource, { kind: K }>;

/** What the registry knows about a kind. */
export interface KindInfo {
  readonly kind: KindName;
  /** `group/version`, or just `version` for the Kubernetes core group (`v1`). */
  readonly apiVersion: string;
  /** API group; empty for the Kubernetes core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly singular: string;
  /** Short names, as Calico's tools or Kubernetes define them. */
  readonly shortNames: readonly string[];
  /** True for namespaced kinds (EgressGateway, Pod); false for cluster-scoped ones. */
  readonly namespaced: boolean;
  /** Name syntax: DNS-1123 subdomain for most kinds, DNS-1123 label for namespaces. */
  readonly nameStyle: 'subdomain' | 'label';
  /** The kind's schema (a JSON Schema object; use {@link jsonSchemaFor} for a plain copy). */
  readonly schema: TSchema;
  readonly description: string;
}

function info(
  kind: KindName,
  apiVersion: string,
  plural: string,
  shortNames: readonly string[],
  namespaced: boolean,
  schema: TSchema,
  nameStyle: 'subdomain' | 'label' = 'subdomain',
): KindInfo {
  const slash = apiVersion.indexOf('/');
  return {
    kind,
    apiVersion,
    group: slash < 0 ? '' : apiVersion.slice(0, slash),
    version: slash < 0 ? apiVersion : apiVersion.slice(slash + 1),
    plural,
    singular: kind.toLowerCase(),
    shortNames,
    namespaced,
    nameStyle,
    schema,
    description: typeof schema.description === 'string' ? schema.description : '',
  };
}

/** All kinds, in the order `egw get` lists them and `egw apply` stores them (dependencies first). */
export const KINDS: readonly KindInfo[] = [
  info('FelixConfiguration', 'projectcalico.org/v3', 'felixconfigurations', ['felixconfig', 'felixconfigs'], false, FelixConfigurationSchema),
  info('AWSSubnet', 'egw.io/v1', 'awssubnets', [], false, AWSSubnetSchema),
  info('IPPool', 'projectcalico.org/v3', 'ippools', ['ipp', 'ipps', 'pool', 'pools'], false, IPPoolSchema),
  info('IPReservation', 'projectcalico.org/v3', 'ipreservations', ['reservation', 'reservations'], false, IPReservationSchema),
  info('EgressGatewayPolicy', 'projectcalico.org/v3', 'egressgatewaypolicies', [], false, EgressGatewayPolicySchema),
  info('Namespace', 'v1', 'namespaces', ['ns'], false, NamespaceSchema, 'label'),
  info('EgressGateway', 'operator.tigera.io/v1', 'egressgateways', ['egw'], true, EgressGatewaySchema),
  info('Node', 'v1', 'nodes', ['no'], false, NodeSchema),
  info('Pod', 'v1', 'pods', ['po'], true, PodSchema),
];

const byKind = new Map<string, KindInfo>(KINDS.map((k) => [k.kind, k]));

/** Groups also accepted after a plural in `kind.group` form (kubectl style), per kind group. */
const GROUP_ALIASES: Readonly<Record<string, readonly string[]>> = {
  'projectcalico.org': ['projectcalico.org', 'crd.projectcalico.org'],
  'operator.tigera.io': ['operator.tigera.io'],
  'egw.io': ['egw.io'],
  '': [''],
};

const byName = new Map<string, KindInfo>();
for (const k of KINDS) {
  const names = [k.kind, k.plural, k.singular, ...k.shortNames].map((n) => n.toLowerCase());
  for (const n of names) {
    byName.set(n, k);
    for (const g of GROUP_ALIASES[k.group] ?? [k.group]) if (g !== '') byName.set(`${n}.${g}`, k);
  }
}

/**
 * Finds a kind by any of its names, case-insensitively: the kind (`IPPool`), plural (`ippools`), singular,
 * short names (`egw`, `ns`, `po`, `no`, `felixconfig`…) and the kubectl form `plural.group`
 * (`ippools.projectcalico.org`). Throws `UnknownKind` listing the known kinds.
 */
export function resolveKind(name: string): KindInfo {
  const found = byName.get(name.trim().toLowerCase());
  if (found !== undefined) return found;
  throw new EgwError('UnknownKind', `unknown resource kind "${name}"; known kinds: ${KINDS.map((k) => k.kind).join(', ')}`, {
    hint: `use a kind, plural or short name: ${KINDS.map((k) => [k.plural, ...k.shortNames].join('/')).join(', ')}`,
    details: { name, known: KINDS.map((k) => k.kind) },
  });
}

/** The registry entry of a kind given by its exact API name, or undefined. */
export function kindInfo(kind: string): KindInfo | undefined {
  return byKind.get(kind);
}

/** A plain JSON copy (no TypeBox symbols) of a kind's JSON Schema. Accepts any name {@link resolveKind} does. */
export function jsonSchemaFor(kind: string): Record<string, unknown> {
  return JSON.parse(JSON.stringify(resolveKind(kind).schema)) as Record<string, unknown>;
}

/** The identity of a resource as the datastore keys it (namespace only for namespaced kinds). */
export interface ResourceIdentity {
  readonly kind: KindName;
  readonly namespace?: string;
  readonly name: string;
}

/** The datastore identity of a (validated) resource: kind, namespace for namespaced kinds, name. */
export function keyOf(resource: AnyResource): ResourceIdentity {
  const ns = resource.metadata.namespace;
  return byKind.get(resource.kind)?.namespaced === true && ns !== undefined
    ? { kind: resource.kind, namespace: ns, name: resource.metadata.name }
    : { kind: resource.kind, name: resource.metadata.name };
}
