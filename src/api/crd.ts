/**
 * CustomResourceDefinitions generated from egw's own kind schemas (one source of truth): the JSON Schema of
 * each kind in {@link KINDS} becomes a structural `openAPIV3Schema` that kube-apiserver (v1.34) accepts,
 * with Calico's defaults, printer columns and CEL rules (`x-kubernetes-validations`) for the single-resource
 * rules CEL can express. Pure: no I/O.
 *
 * What the CRDs CANNOT express (left to egw's own validator, and to an admission webhook on a cluster):
 * - every rule that needs other resources (src/api/cross-check.ts): IPPool overlaps, an AWS-backed pool
 *   outside its AWSSubnet, an EgressGateway ipPools entry whose cidr does not match the named pool, nativeIP
 *   Enabled with a pool that is not AWS-backed, the same resource twice in one apply;
 * - the selector language (IPPool nodeSelector/namespaceSelector, EgressGatewayPolicy selectors,
 *   FelixConfiguration nodeSelector): parse errors and `global()` in an IPPool selector;
 * - EgressGatewayPolicy: two rules with the same destination after masking host bits (needs a pairwise
 *   comparison of normalised CIDRs over an unbounded list);
 * - label keys and values of EgressGateway template labels and nodeSelector (the Pods the operator renders
 *   are checked by Kubernetes itself, later);
 * - defaults that depend on other fields or on the name: IPPool blockSize (26 for IPv4, 122 for IPv6),
 *   canonical CIDR form (IPPool, AWSSubnet, EgressGatewayPolicy destinations are stored masked by egw),
 *   nodeSelector "" → all(), EgressGateway template labels `projectcalico.org/egw: <name>` and the zone
 *   anti-affinity, EgressGatewayPolicy destination 0.0.0.0/0 for a rule without one (defaulting it here
 *   would hide "no rule has a gateway or a destination" from the webhook), FelixConfiguration defaults
 *   (egw fills them into the `default` resource only) and its case canonicalisation of enums (the CRD
 *   accepts any case, as Calico's does, but stores the value as written);
 * - every warning (CRD rules only reject): AWS-backed pool encapsulation/BGP export/allowedUses, duplicate
 *   ipPools entries or Elastic IPs, fewer Elastic IPs than replicas, probes without targets, deprecated
 *   routeTableRange, reserved or overlapping route tables, VXLAN clash, IPReservation host bits/duplicates,
 *   empty destination, gatewayPreference without gateway, externalNetworks;
 * - fine points where the API server's parsers differ from egw's: CEL's isIP/isCIDR reject leading zeros
 *   and IPv4-mapped IPv6 forms egw may accept; Kubernetes quantities are int-or-string, so a fractional
 *   quantity must be written as a string ("500m", "0.5") where egw also accepts the number 0.5.
 * - unknown fields: the CRDs reject them only when the client asks for strict field validation (kubectl's
 *   default); other clients get them silently pruned, where egw reports "unknown field".
 * What the CRDs refuse that egw does not: strings and lists that a CEL rule reads carry bounds egw's schema
 * does not have (64 characters for addresses and subnet IDs, 1024 for URLs and selectors, 256 policy rules,
 * reserved CIDRs or route-table ranges, 32 ipPools / Elastic IPs / probe targets): the API server refuses a
 * rule whose worst-case cost is unbounded, and no sensible resource comes near them. An EgressGateway
 * ipPools name is checked by a pattern (DNS subdomain), not CEL, for the same reason.
 */
import { EgwError } from '../platform/errors.js';
import { KINDS, type KindInfo, type KindName } from './kinds.js';
import { PROBE_DEFAULTS } from './kinds/egress-gateway.js';

/** A JSON value (what a CRD default may hold). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One CEL rule of `x-kubernetes-validations`. */
export interface CelRule {
  readonly rule: string;
  /** Names the field, what is wrong and what would be right (egw's message; expected …). */
  readonly message: string;
  /** Path (relative to the node carrying the rule) the API server reports the error at. */
  readonly fieldPath?: string;
}

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps the generator writes (always structural). */
export interface CrdSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, CrdSchema>;
  required?: string[];
  additionalProperties?: CrdSchema;
  items?: CrdSchema;
  enum?: JsonValue[];
  default?: JsonValue;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  anyOf?: CrdSchema[];
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set';
  'x-kubernetes-validations'?: CelRule[];
}

/** One `additionalPrinterColumns` entry. */
export interface PrinterColumn {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  readonly jsonPath: string;
  readonly description?: string;
  readonly priority?: number;
}

/** One served version of a CRD. */
export interface CrdVersion {
  readonly name: string;
  readonly served: true;
  readonly storage: true;
  readonly schema: { readonly openAPIV3Schema: CrdSchema };
  readonly subresources?: { readonly status: Record<string, never> };
  readonly additionalPrinterColumns: readonly PrinterColumn[];
}

/** An `apiextensions.k8s.io/v1` CustomResourceDefinition as plain data (ready for JSON/YAML and kubectl). */
export interface CustomResourceDefinition {
  readonly apiVersion: 'apiextensions.k8s.io/v1';
  readonly kind: 'CustomResourceDefinition';
  readonly metadata: { readonly name: string; readonly labels: Readonly<Record<string, string>> };
  readonly spec: {
    readonly group: string;
    readonly names: {
      readonly kind: string;
      readonly listKind: string;
      readonly plural: string;
      readonly singular: string;
      readonly shortNames?: readonly string[];
    };
    readonly scope: 'Namespaced' | 'Cluster';
    readonly versions: readonly CrdVersion[];
  };
}

/** The label on every CRD egw generates (lets an installer list and prune its own). */
export const CRD_PART_OF_LABEL = { 'app.kubernetes.io/part-of': 'egw' } as const;

const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

/** What a kind adds to its converted schema at one path ('' root, `spec.aws`, `spec.ipPools[]` for items). */
interface Overlay {
  readonly default?: JsonValue;
  readonly maxLength?: number;
  readonly maxItems?: number;
  readonly pattern?: string;
  readonly rules?: readonly CelRule[];
}

// Bounds on strings and lists that CEL rules read: the API server refuses rules whose worst-case cost
// (over strings and lists as long as a request can hold) exceeds its budget. No sensible value comes near.
const ADDRESS_MAX = 64;
const URL_MAX = 1024;
const SELECTOR_MAX = 1024;
const LIST_MAX = 256;
const SHORT_LIST_MAX = 32;
const SUBNET_ID_RE = '^subnet-[0-9a-f]{8,32}$';
/** A DNS-1123 subdomain, or empty (egw's "not given"). */
const OPTIONAL_DNS_SUBDOMAIN_RE = '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$';
const BLANK_RE = "'^\\\\s*$'";

/** `!has(self.<f>) || self.<f> == 'Never'` in CEL. */
const never = (f: string) => `(!has(self.${f}) || self.${f} == 'Never')`;
const awsBacked = "(has(self.awsSubnetID) && self.awsSubnetID != '')";

function probeRules(label: 'ICMP' | 'HTTP'): CelRule[] {
  return [
    { rule: 'self.intervalSeconds > 0', fieldPath: '.intervalSeconds', message: 'intervalSeconds must be positive; expected a number of seconds of at least 1' },
    { rule: 'self.timeoutSeconds > 0', fieldPath: '.timeoutSeconds', message: 'timeoutSeconds must be positive; expected a number of seconds of at least 1' },
    {
      rule: 'self.intervalSeconds <= 0 || self.timeoutSeconds <= 0 || self.timeoutSeconds >= self.intervalSeconds',
      fieldPath: '.timeoutSeconds',
      message: `${label} probe timeout must be greater than interval; expected timeoutSeconds of at least intervalSeconds`,
    },
  ];
}

/**
 * Per kind: defaults (Calico's, as egw's defaulting applies them where they do not depend on other fields),
 * CEL rules mirroring egw's validator (src/api/kinds/*.ts; same rule, same wording) and cost bounds.
 */
const OVERLAYS: Partial<Record<KindName, Readonly<Record<string, Overlay>>>> = {
  IPPool: {
    spec: {
      rules: [
        {
          rule: '!has(self.blockSize) || !isCIDR(self.cidr) || (cidr(self.cidr).ip().family() == 4 ? (self.blockSize >= 20 && self.blockSize <= 32) : (self.blockSize >= 116 && self.blockSize <= 128))',
          fieldPath: '.blockSize',
          message: 'block size must be between 20 and 32 (IPv4) or 116 and 128 (IPv6); expected blockSize from 20 to 32 for an IPv4 pool',
        },
        {
          rule: '(has(self.disabled) && self.disabled) || !isCIDR(self.cidr) || cidr(self.cidr).prefixLength() <= (has(self.blockSize) ? self.blockSize : (cidr(self.cidr).ip().family() == 4 ? 26 : 122))',
          fieldPath: '.cidr',
          message: 'IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size (default 26 for IPv4, 122 for IPv6); expected a larger CIDR or a blockSize equal to its prefix length',
        },
        {
          rule: `!${awsBacked} || (has(self.blockSize) && self.blockSize == 32)`,
          fieldPath: '.blockSize',
          message: 'AWS-backed IP pools must use blockSize 32; expected blockSize: 32, which aligns IPAM with the per-IP AWS fabric',
        },
        {
          rule: `!${awsBacked} || !isCIDR(self.cidr) || cidr(self.cidr).ip().family() == 4`,
          fieldPath: '.cidr',
          message: 'AWS-backed IP pools (awsSubnetID set) must be IPv4; expected an IPv4 CIDR inside the VPC subnet',
        },
        {
          rule: `${never('ipipMode')} || !isCIDR(self.cidr) || cidr(self.cidr).ip().family() == 4`,
          fieldPath: '.ipipMode',
          message: 'IPIP is not supported on IPv6 pools; expected ipipMode: Never',
        },
        {
          rule: `${never('ipipMode')} || ${never('vxlanMode')}`,
          fieldPath: '.vxlanMode',
          message: 'ipipMode and vxlanMode cannot both be enabled; expected at most one of ipipMode / vxlanMode other than Never',
        },
        {
          rule: `!(has(self.allowedUses) && 'LoadBalancer' in self.allowedUses) || (${never('ipipMode')} && ${never('vxlanMode')})`,
          fieldPath: '.allowedUses',
          message: 'LoadBalancer IP pool cannot have IPIP or VXLAN enabled; expected ipipMode: Never and vxlanMode: Never',
        },
        {
          rule: "!has(self.namespaceSelector) || (has(self.allowedUses) && !('Tunnel' in self.allowedUses))",
          fieldPath: '.namespaceSelector',
          message: 'namespaceSelector cannot be set on a pool used for Tunnel addresses (allowedUses defaults to [Workload, Tunnel]); expected allowedUses: [Workload] together with namespaceSelector',
        },
      ],
    },
    'spec.cidr': {
      rules: [
        { rule: 'isCIDR(self)', message: 'IPPool CIDR must be a valid subnet; expected a CIDR such as 100.64.0.4/30' },
        { rule: '!isCIDR(self) || cidr(self).masked() == cidr(self)', message: 'IPPool CIDR is not strictly masked (it has host bits set); expected the network address, such as 100.64.0.4/30' },
        {
          rule: "!isCIDR(self) || (cidr(self).ip().family() == 4 ? !(cidr(self).containsCIDR(cidr('169.254.0.0/16')) || cidr('169.254.0.0/16').containsCIDR(cidr(self))) : !(cidr(self).containsCIDR(cidr('fe80::/10')) || cidr('fe80::/10').containsCIDR(cidr(self))))",
          message: 'IPPool CIDR overlaps with the Link Local range (169.254.0.0/16, fe80::/10); expected a CIDR outside it',
        },
      ],
    },
    'spec.awsSubnetID': {
      maxLength: ADDRESS_MAX,
      rules: [
        {
          rule: `self == '' || self.matches('${SUBNET_ID_RE}')`,
          message: `awsSubnetID is not a well-formed AWS subnet ID; expected "subnet-" followed by 8 or 17 lowercase hex digits, e.g. subnet-0123456789abcdef0 (egw accepts /${SUBNET_ID_RE}/)`,
        },
      ],
    },
    'spec.allowedUses': {
      default: ['Workload', 'Tunnel'],
      rules: [
        { rule: 'size(self) > 0', message: 'allowedUses must not be empty; expected e.g. [Workload] (or omit it for the default [Workload, Tunnel])' },
        {
          rule: "size(self) == 0 || [['Tunnel', 'Workload'], ['Tunnel'], ['Workload'], ['LoadBalancer'], ['HostSecondaryInterface'], ['L2Workload']].exists(c, size(c) == size(self) && c.all(u, u in self))",
          message: 'allowedUses is not an allowed combination; expected one of [Workload, Tunnel], [Workload], [Tunnel], [LoadBalancer], [HostSecondaryInterface], [L2Workload]',
        },
      ],
    },
    'spec.nodeSelector': { default: 'all()' },
    'spec.ipipMode': { default: 'Never' },
    'spec.vxlanMode': { default: 'Never' },
    'spec.natOutgoing': { default: false },
    'spec.disabled': { default: false },
    'spec.disableBGPExport': { default: false },
    'spec.assignmentMode': { default: 'Automatic' },
  },

  IPReservation: {
    'spec.reservedCIDRs': { maxItems: LIST_MAX },
    'spec.reservedCIDRs[]': {
      maxLength: ADDRESS_MAX,
      rules: [{ rule: 'isCIDR(self) || isIP(self)', message: 'entry is neither a CIDR nor an IP address; expected a CIDR such as 100.64.0.0/30 or an IP such as 100.64.3.255' }],
    },
  },

  EgressGateway: {
    '': {
      rules: [
        {
          fieldPath: '.metadata.name',
          rule: 'size(self.metadata.name) <= 63 || (has(self.spec.template) && has(self.spec.template.metadata) && has(self.spec.template.metadata.labels) && size(self.spec.template.metadata.labels) > 0)',
          message: 'metadata.name is too long (> 63) to be the default label value projectcalico.org/egw: <name>; expected a shorter name, or spec.template.metadata.labels',
        },
      ],
    },
    spec: {
      rules: [
        {
          rule: 'has(self.ipPools) && size(self.ipPools) > 0',
          fieldPath: '.ipPools',
          message: 'at least one IPPool must be specified; expected ipPools: [{name: <IPPool name>}] or [{cidr: <IPPool CIDR>}]',
        },
      ],
    },
    'spec.replicas': { default: 1 },
    'spec.ipPools': { maxItems: SHORT_LIST_MAX },
    'spec.ipPools[]': {
      rules: [
        {
          rule: "(has(self.name) && self.name != '') || (has(self.cidr) && self.cidr != '')",
          message: 'an ipPools entry must name an IPPool by name or by cidr; expected {name: egress-red-west-1} or {cidr: 100.64.0.4/30}',
        },
      ],
    },
    // A pattern, not CEL: a regular expression over 253 characters costs more than the CEL budget allows.
    'spec.ipPools[].name': { maxLength: 253, pattern: OPTIONAL_DNS_SUBDOMAIN_RE },
    'spec.ipPools[].cidr': {
      maxLength: ADDRESS_MAX,
      rules: [{ rule: "self == '' || isCIDR(self)", message: 'not a CIDR; expected the CIDR of an IPPool, such as 100.64.0.4/30' }],
    },
    'spec.aws': {
      rules: [
        {
          rule: "!has(self.elasticIPs) || size(self.elasticIPs) == 0 || (has(self.nativeIP) && self.nativeIP == 'Enabled')",
          fieldPath: '.nativeIP',
          message: 'NativeIP must be enabled when elastic IPs are used; expected aws.nativeIP: Enabled',
        },
      ],
    },
    'spec.aws.nativeIP': { default: 'Disabled' },
    'spec.aws.elasticIPs': { maxItems: SHORT_LIST_MAX },
    'spec.aws.elasticIPs[]': {
      maxLength: ADDRESS_MAX,
      rules: [{ rule: 'isIP(self) && ip(self).family() == 4', message: 'not an IPv4 address; expected an Elastic IP address such as 203.0.113.10' }],
    },
    'spec.egressGatewayFailureDetection': {
      rules: [
        {
          rule: 'has(self.icmpProbe) || has(self.httpProbe)',
          message: 'either ICMP or HTTP probe must be configured; expected icmpProbe: {ips: [...]} and/or httpProbe: {urls: [...]} in egressGatewayFailureDetection',
        },
      ],
    },
    'spec.egressGatewayFailureDetection.healthTimeoutDataStoreSeconds': { default: PROBE_DEFAULTS.healthTimeoutDataStoreSeconds },
    'spec.egressGatewayFailureDetection.icmpProbe': { rules: probeRules('ICMP') },
    'spec.egressGatewayFailureDetection.icmpProbe.intervalSeconds': { default: PROBE_DEFAULTS.icmp.intervalSeconds },
    'spec.egressGatewayFailureDetection.icmpProbe.timeoutSeconds': { default: PROBE_DEFAULTS.icmp.timeoutSeconds },
    'spec.egressGatewayFailureDetection.icmpProbe.ips': { maxItems: SHORT_LIST_MAX },
    'spec.egressGatewayFailureDetection.icmpProbe.ips[]': {
      maxLength: ADDRESS_MAX,
      rules: [{ rule: 'isIP(self)', message: 'not an IP address; expected an IP address to ping, such as 198.51.100.1' }],
    },
    'spec.egressGatewayFailureDetection.httpProbe': { rules: probeRules('HTTP') },
    'spec.egressGatewayFailureDetection.httpProbe.intervalSeconds': { default: PROBE_DEFAULTS.http.intervalSeconds },
    'spec.egressGatewayFailureDetection.httpProbe.timeoutSeconds': { default: PROBE_DEFAULTS.http.timeoutSeconds },
    'spec.egressGatewayFailureDetection.httpProbe.urls': { maxItems: SHORT_LIST_MAX },
    'spec.egressGatewayFailureDetection.httpProbe.urls[]': {
      maxLength: URL_MAX,
      rules: [
        {
          rule: "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",
          message: 'not an http(s) URL; expected a URL such as http://198.51.100.1:8080/health',
        },
      ],
    },
  },

  EgressGatewayPolicy: {
    'spec.rules': { maxItems: LIST_MAX },
    spec: {
      rules: [
        {
          rule: `has(self.rules) && self.rules.exists(r, has(r.gateway) || (has(r.destination) && has(r.destination.cidr) && !r.destination.cidr.matches(${BLANK_RE})))`,
          fieldPath: '.rules',
          message:
            "the policy has no rule that specifies a gateway or a destination; expected at least one rule with a gateway (e.g. gateway: {namespaceSelector: \"projectcalico.org/name == 'default'\", selector: \"egress-code == 'red'\"}) or a destination (e.g. destination: {cidr: 10.0.0.0/8})",
        },
      ],
    },
    'spec.rules[].destination.cidr': {
      maxLength: ADDRESS_MAX,
      rules: [{ rule: `self.matches(${BLANK_RE}) || isCIDR(self)`, message: 'destination is not a CIDR; expected a CIDR such as 10.0.0.0/8' }],
    },
    'spec.rules[].gateway': {
      rules: [
        {
          rule: `has(self.selector) && !self.selector.matches(${BLANK_RE})`,
          fieldPath: '.selector',
          message: "selector is missing or empty (required when gateway is set); expected a selector such as \"egress-code == 'red'\"",
        },
        {
          rule: `has(self.namespaceSelector) && !self.namespaceSelector.matches(${BLANK_RE})`,
          fieldPath: '.namespaceSelector',
          message: "namespaceSelector is missing or empty (required when gateway is set); expected a namespace selector such as \"projectcalico.org/name == 'default'\"",
        },
      ],
    },
    'spec.rules[].gateway.selector': { maxLength: SELECTOR_MAX },
    'spec.rules[].gateway.namespaceSelector': { maxLength: SELECTOR_MAX },
    'spec.rules[].gateway.maxNextHops': { default: 0 },
  },

  FelixConfiguration: {
    '': {
      rules: [
        {
          rule: "!has(self.spec.nodeSelector) || !(self.metadata.name == 'default' || self.metadata.name.startsWith('node.'))",
          fieldPath: '.spec.nodeSelector',
          message: "spec.nodeSelector must not be set on the 'default' or per-node ('node.*') FelixConfiguration; expected no nodeSelector here, or a resource with another name",
        },
      ],
    },
    spec: {
      rules: [
        {
          rule: '!(has(self.routeTableRange) && has(self.routeTableRanges))',
          fieldPath: '.routeTableRange',
          message: 'routeTableRange and routeTableRanges cannot both be set; expected only routeTableRanges (routeTableRange is deprecated)',
        },
      ],
    },
    'spec.routeTableRange': {
      rules: [{ rule: 'self.min >= 1 && self.max >= self.min && self.max <= 250', message: 'must be a range of route table indices within 1..250; expected min ≥ 1, max ≥ min, max ≤ 250' }],
    },
    'spec.routeTableRanges': {
      maxItems: LIST_MAX,
      rules: [
        {
          rule: 'self.filter(r, r.min >= 1 && r.min <= r.max).map(r, r.max - r.min + 1).sum() <= 65535',
          message: 'routeTableRanges cover too many tables; expected at most 65535 route tables in total',
        },
      ],
    },
    'spec.routeTableRanges[]': {
      rules: [
        { rule: 'self.min >= 1', fieldPath: '.min', message: 'min must be >= 1; expected min of at least 1' },
        { rule: 'self.min < 1 || self.min <= self.max', message: 'min must not be greater than max; expected min ≤ max' },
      ],
    },
  },

  AWSSubnet: {
    '': {
      rules: [
        {
          rule: 'self.metadata.name == self.spec.subnetID',
          fieldPath: '.metadata.name',
          message: 'AWSSubnet records are named by their subnet ID, but metadata.name differs from spec.subnetID; expected metadata.name equal to spec.subnetID',
        },
      ],
    },
    'spec.subnetID': {
      maxLength: ADDRESS_MAX,
      rules: [{ rule: `self.matches('${SUBNET_ID_RE}')`, message: 'subnetID is not a well-formed AWS subnet ID; expected "subnet-" followed by 8 or 17 lowercase hex digits' }],
    },
    'spec.cidr': {
      maxLength: ADDRESS_MAX,
      rules: [
        { rule: 'isCIDR(self) && cidr(self).ip().family() == 4', message: 'not an IPv4 CIDR; expected an IPv4 CIDR such as 100.64.0.0/22' },
        { rule: '!isCIDR(self) || cidr(self).masked() == cidr(self)', message: 'the CIDR has host bits set; expected the network address, such as 100.64.0.0/22' },
        {
          rule: '!isCIDR(self) || cidr(self).ip().family() != 4 || (cidr(self).prefixLength() >= 16 && cidr(self).prefixLength() <= 28)',
          message: 'AWS subnets are /16 to /28; expected a prefix length from 16 to 28',
        },
      ],
    },
  },
};

const PRINTER_COLUMNS: Partial<Record<KindName, readonly PrinterColumn[]>> = {
  IPPool: [
    { name: 'CIDR', type: 'string', jsonPath: '.spec.cidr' },
    { name: 'AWS Subnet', type: 'string', jsonPath: '.spec.awsSubnetID' },
    { name: 'Allowed Uses', type: 'string', jsonPath: '.spec.allowedUses' },
    { name: 'Disabled', type: 'boolean', jsonPath: '.spec.disabled' },
    AGE,
  ],
  EgressGateway: [
    { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
    { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas', description: 'Gateway pods that are ready (written by the operator).' },
    { name: 'State', type: 'string', jsonPath: '.status.state' },
    AGE,
  ],
  FelixConfiguration: [{ name: 'Egress IP Support', type: 'string', jsonPath: '.spec.egressIPSupport' }, AGE],
  AWSSubnet: [
    { name: 'CIDR', type: 'string', jsonPath: '.spec.cidr' },
    { name: 'Zone', type: 'string', jsonPath: '.spec.availabilityZone' },
    AGE,
  ],
};

/** Kinds whose `status` is written through the status subresource (only the operator writes it). */
const STATUS_SUBRESOURCE: ReadonlySet<KindName> = new Set<KindName>(['EgressGateway']);

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(path: string, problem: string): never {
  throw new EgwError('Internal', `cannot turn the schema at "${path === '' ? '<root>' : path}" into a structural CRD schema: ${problem}`, {
    hint: 'keep the kind schemas within the conventions of src/api/schema-kit.ts, or teach src/api/crd.ts the new construct',
  });
}

const SCALAR_TYPES = new Set(['string', 'integer', 'number', 'boolean']);

/**
 * Converts one JSON Schema node (egw's conventions) into a structural schema node. Keywords kube-apiserver
 * rejects or that structural schemas forbid are dropped or rewritten; anything the generator does not know
 * is an error, so a new construct in a kind schema cannot silently vanish from the CRD.
 */
function convert(node: unknown, path: string): CrdSchema {
  if (!isObject(node)) fail(path, 'not a schema object');
  const out: CrdSchema = {};
  if (typeof node.description === 'string') out.description = node.description;

  if (node['x-kubernetes-int-or-string'] === true) {
    // The only union structural schemas allow: integer or string, with the string's pattern outside anyOf.
    out['x-kubernetes-int-or-string'] = true;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    const alternatives = Array.isArray(node.anyOf) ? node.anyOf : [];
    for (const alt of alternatives) if (isObject(alt) && typeof alt.pattern === 'string') out.pattern = alt.pattern;
    return out;
  }
  if (node.anyOf !== undefined || node.oneOf !== undefined || node.allOf !== undefined || node.not !== undefined) {
    // Other unions: the API server keeps the value as written; egw's validator (and a webhook) check it.
    out['x-kubernetes-preserve-unknown-fields'] = true;
    return out;
  }
  if (node.$ref !== undefined) fail(path, '$ref is not allowed in a CRD schema');

  if ('const' in node) {
    const c = node.const;
    if (typeof c !== 'string' && typeof c !== 'number' && typeof c !== 'boolean') fail(path, 'const of a non-scalar value');
    out.type = typeof c === 'string' ? 'string' : typeof c === 'boolean' ? 'boolean' : Number.isInteger(c) ? 'integer' : 'number';
    out.enum = [c];
    return out;
  }

  const type = node.type;
  if (type === undefined) {
    if (node.properties !== undefined) fail(path, 'properties without type: object');
    // Any JSON value (Type.Unknown, Felix fields egw keeps as written).
    out['x-kubernetes-preserve-unknown-fields'] = true;
    return out;
  }
  if (typeof type !== 'string') fail(path, 'type must be a single string');

  if (type === 'object') {
    out.type = 'object';
    if (isObject(node.properties)) {
      out.properties = {};
      for (const [key, prop] of Object.entries(node.properties)) out.properties[key] = convert(prop, path === '' ? key : `${path}.${key}`);
      if (Array.isArray(node.required) && node.required.length > 0) out.required = node.required.map(String);
    }
    const extra = node.additionalProperties;
    if (isObject(extra)) {
      // additionalProperties and properties are mutually exclusive in a structural schema.
      if (out.properties !== undefined) out['x-kubernetes-preserve-unknown-fields'] = true;
      else out.additionalProperties = convert(extra, `${path}.*`);
    } else if (extra === true) {
      out['x-kubernetes-preserve-unknown-fields'] = true;
    }
    // additionalProperties: false is the structural default (unknown fields are rejected by kubectl's strict
    // field validation, pruned otherwise), and the API server refuses it being written out.
    if (node['x-kubernetes-preserve-unknown-fields'] === true) out['x-kubernetes-preserve-unknown-fields'] = true;
  } else if (type === 'array') {
    out.type = 'array';
    if (node.items === undefined) out.items = { 'x-kubernetes-preserve-unknown-fields': true };
    else out.items = convert(node.items, `${path}[]`);
    if (typeof node.minItems === 'number') out.minItems = node.minItems;
    if (typeof node.maxItems === 'number') out.maxItems = node.maxItems;
    // uniqueItems is forbidden in CRDs; a set of scalars says the same thing.
    if (node.uniqueItems === true && out.items.type !== undefined && SCALAR_TYPES.has(out.items.type)) out['x-kubernetes-list-type'] = 'set';
  } else if (SCALAR_TYPES.has(type)) {
    out.type = type as 'string' | 'integer' | 'number' | 'boolean';
    if (typeof node.minimum === 'number') out.minimum = node.minimum;
    if (typeof node.maximum === 'number') out.maximum = node.maximum;
    if (typeof node.minLength === 'number') out.minLength = node.minLength;
    if (typeof node.maxLength === 'number') out.maxLength = node.maxLength;
    if (typeof node.pattern === 'string') out.pattern = node.pattern;
    if (Array.isArray(node.enum)) {
      const values = node.enum.filter((v): v is string | number | boolean => ['string', 'number', 'boolean'].includes(typeof v));
      if (node['x-egw-case-insensitive'] === true && type === 'string') {
        // Calico's CRDs accept these in any case; RE2's (?i) does the same as egw's case folding.
        out.pattern = `^(?i)(${values.map((v) => String(v).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`;
      } else {
        out.enum = values;
      }
    }
  } else {
    fail(path, `unknown type "${type}"`);
  }
  if (node.default !== undefined) out.default = node.default as JsonValue;
  return out;
}

/** The node at an overlay path (`spec.aws`, `spec.ipPools[]`, '' for the root), or an Internal error. */
function nodeAt(root: CrdSchema, path: string, kind: string): CrdSchema {
  let node = root;
  if (path === '') return node;
  for (const part of path.split('.')) {
    const name = part.endsWith('[]') ? part.slice(0, -2) : part;
    const next = node.properties?.[name];
    if (next === undefined) fail(path, `${kind} has no field "${name}" (overlay out of date)`);
    node = next;
    if (part.endsWith('[]')) {
      if (node.items === undefined) fail(path, `${kind} field "${name}" is not a list`);
      node = node.items;
    }
  }
  return node;
}

/** The top-level schema of a kind: envelope fields reduced to what a CRD may say about them. */
function kindSchema(info: KindInfo): CrdSchema {
  const root = convert(JSON.parse(JSON.stringify(info.schema)) as unknown, '');
  if (root.type !== 'object' || root.properties === undefined) fail('', `${info.kind} schema is not an object`);
  // The API server owns these: apiVersion/kind are set from the URL, metadata is ObjectMeta (a CRD may only
  // restrict name and generateName).
  root.properties.apiVersion = { type: 'string', description: 'APIVersion of this representation of the object.' };
  root.properties.kind = { type: 'string', description: 'Kind of this object.' };
  // Declaring metadata.name (no restriction) lets root-level CEL rules report errors at metadata.name.
  root.properties.metadata = { type: 'object', properties: { name: { type: 'string' } } };
  if (root.required !== undefined) {
    root.required = root.required.filter((r) => r !== 'apiVersion' && r !== 'kind' && r !== 'metadata');
    if (root.required.length === 0) delete root.required;
  }
  for (const [path, overlay] of Object.entries(OVERLAYS[info.kind] ?? {})) {
    const node = nodeAt(root, path, info.kind);
    if (overlay.default !== undefined) node.default = overlay.default;
    if (overlay.maxLength !== undefined) node.maxLength = overlay.maxLength;
    if (overlay.maxItems !== undefined) node.maxItems = overlay.maxItems;
    if (overlay.pattern !== undefined) node.pattern = overlay.pattern;
    if (overlay.rules !== undefined) node['x-kubernetes-validations'] = [...(node['x-kubernetes-validations'] ?? []), ...overlay.rules];
  }
  return root;
}

function crd(
  names: { group: string; version: string; kind: string; plural: string; singular: string; shortNames: readonly string[] },
  namespaced: boolean,
  schema: CrdSchema,
  columns: readonly PrinterColumn[],
  statusSubresource: boolean,
): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${names.group}`, labels: { ...CRD_PART_OF_LABEL } },
    spec: {
      group: names.group,
      names: {
        kind: names.kind,
        listKind: `${names.kind}List`,
        plural: names.plural,
        singular: names.singular,
        ...(names.shortNames.length > 0 ? { shortNames: [...names.shortNames] } : {}),
      },
      scope: namespaced ? 'Namespaced' : 'Cluster',
      versions: [
        {
          name: names.version,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: schema },
          ...(statusSubresource ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: columns,
        },
      ],
    },
  };
}

/**
 * The CRD of one egw API kind (any kind of {@link KINDS} outside the Kubernetes core group): structural
 * schema converted from the kind's JSON Schema, Calico's defaults, CEL rules for the single-resource rules
 * CEL can express, printer columns, and the status subresource for EgressGateway. Pure and deterministic.
 * Throws `EgwError` `InvalidInput` for a core-group kind and `Internal` when the kind's schema uses a
 * construct the generator cannot express (a programming error, caught by the unit tests).
 */
export function crdFor(info: KindInfo): CustomResourceDefinition {
  if (info.group === '') {
    throw new EgwError('InvalidInput', `${info.kind} belongs to the Kubernetes core group and has no CRD`, {
      hint: 'generate CRDs only for kinds with an API group (apiCrds() does)',
      details: { kind: info.kind },
    });
  }
  return crd(
    { group: info.group, version: info.version, kind: info.kind, plural: info.plural, singular: info.singular, shortNames: info.shortNames },
    info.namespaced,
    kindSchema(info),
    PRINTER_COLUMNS[info.kind] ?? [AGE],
    STATUS_SUBRESOURCE.has(info.kind),
  );
}

const PLURAL_RE = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const KIND_RE = /^[A-Z][A-Za-z0-9]*$/;
const GROUP_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;
const VERSION_RE = /^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$/;

/**
 * The CRD of one of egw's internal record kinds (IPAM blocks, handles, next-hop records…): objects whose
 * `spec` (and optional `status`) hold any JSON value, kept as written; printer columns: age only; no status
 * subresource (the datastore writes the whole object). The caller owns the list of record kinds. Pure.
 * Throws `EgwError` `InvalidInput` when a name is not one Kubernetes accepts (group must contain a dot,
 * plural a lowercase DNS label, kind UpperCamelCase, version like v1 or v1beta1).
 */
export function recordCrd(spec: { group: string; version: string; kind: string; plural: string; namespaced: boolean; description: string }): CustomResourceDefinition {
  const problems = [
    GROUP_RE.test(spec.group) ? undefined : `group "${spec.group}" (a DNS subdomain with at least one dot, e.g. records.egw.io)`,
    VERSION_RE.test(spec.version) ? undefined : `version "${spec.version}" (e.g. v1)`,
    KIND_RE.test(spec.kind) ? undefined : `kind "${spec.kind}" (UpperCamelCase, e.g. IPAMBlock)`,
    PLURAL_RE.test(spec.plural) && spec.plural.length <= 63 ? undefined : `plural "${spec.plural}" (a lowercase DNS label, e.g. ipamblocks)`,
  ].filter((p): p is string => p !== undefined);
  if (problems.length > 0) {
    throw new EgwError('InvalidInput', `invalid record CRD names: ${problems.join('; ')}`, {
      hint: 'use names Kubernetes accepts for a CustomResourceDefinition',
      details: { problems },
    });
  }
  const schema: CrdSchema = {
    type: 'object',
    description: spec.description,
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: { description: 'The record (any JSON value, kept as written).', 'x-kubernetes-preserve-unknown-fields': true },
      status: { description: 'Optional status (any JSON value, kept as written).', 'x-kubernetes-preserve-unknown-fields': true },
    },
  };
  return crd(
    { group: spec.group, version: spec.version, kind: spec.kind, plural: spec.plural, singular: spec.kind.toLowerCase(), shortNames: [] },
    spec.namespaced,
    schema,
    [AGE],
    false,
  );
}

/** {@link crdFor} of every kind of {@link KINDS} outside the Kubernetes core group, in KINDS order. Pure. */
export function apiCrds(): CustomResourceDefinition[] {
  return KINDS.filter((k) => k.group !== '').map(crdFor);
}
