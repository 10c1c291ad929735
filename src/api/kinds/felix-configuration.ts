/**
 * `projectcalico.org/v3` FelixConfiguration (cluster-scoped): per-cluster (`default`) or per-node
 * (`node.<name>`) agent settings. egw reads the egress-gateway and AWS fields.
 */
import { Type, type Static } from '@sinclair/typebox';
import { checkSelector, DURATION_PATTERN } from '../checks.js';
import type { IssueSink } from '../issues.js';
import { LooseStatus, Resource, StringEnum } from '../schema-kit.js';
import { FELIX_FIELD_NAMES } from './felix-fields.js';

export const EGRESS_IP_SUPPORT = ['Disabled', 'EnabledPerNamespace', 'EnabledPerNamespaceOrPerPod'] as const;
export type EgressIPSupport = (typeof EGRESS_IP_SUPPORT)[number];
export const AWS_SECONDARY_IP_SUPPORT = ['Disabled', 'Enabled', 'EnabledENIPerWorkload'] as const;
export type AWSSecondaryIPSupport = (typeof AWS_SECONDARY_IP_SUPPORT)[number];
export const AWS_SRC_DST_CHECK = ['DoNothing', 'Enable', 'Disable'] as const;
const IPTABLES_BACKENDS = ['Auto', 'Legacy', 'NFT'] as const;
const FELIX_LOG_LEVELS = ['Trace', 'Debug', 'Info', 'Warning', 'Error', 'Fatal'] as const;

const UINT32_MAX = 4294967295;

function Duration(description: string) {
  return Type.String({ pattern: DURATION_PATTERN, 'x-egw-format-hint': 'a duration such as 10s, 500ms or 1m30s', description });
}

const RouteTableRangeSchema = Type.Object({
  min: Type.Integer({ minimum: 0, maximum: UINT32_MAX }),
  max: Type.Integer({ minimum: 0, maximum: UINT32_MAX }),
});

/** The fields egw reads, typed. */
const TypedFelixSpec = Type.Object({
  egressIPSupport: Type.Optional(
    StringEnum(EGRESS_IP_SUPPORT, { caseInsensitive: true, description: 'Egress gateway support: Disabled, per namespace, or per namespace and per pod. Default Disabled.' }),
  ),
  egressIPVXLANPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'UDP port of the egress VXLAN device. Default 4790.' })),
  egressIPVXLANVNI: Type.Optional(Type.Integer({ minimum: 1, maximum: 16777215, description: 'VNI of the egress VXLAN device. Default 4097.' })),
  egressIPRoutingRulePriority: Type.Optional(Type.Integer({ minimum: 0, maximum: UINT32_MAX, description: 'Priority of the per-client ip rule. Default 100.' })),
  egressIPHostIfacePattern: Type.Optional(Type.String({ description: 'Host interfaces that carry post-gateway egress traffic (comma list; /regex/ allowed).' })),
  egressGatewayPollInterval: Type.Optional(Duration('How often nodes poll the remote gateways their clients use. Default 10s.')),
  egressGatewayPollFailureCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647, description: 'Poll failures before a gateway counts as failed. Default 3.' })),
  awsSecondaryIPSupport: Type.Optional(
    StringEnum(AWS_SECONDARY_IP_SUPPORT, { caseInsensitive: true, description: 'Secondary ENI provisioning for AWS-backed pods. Default Disabled.' }),
  ),
  awsSecondaryIPRoutingRulePriority: Type.Optional(Type.Integer({ minimum: 0, maximum: UINT32_MAX, description: 'Priority of the secondary-ENI routing rules. Default 101.' })),
  awsRequestTimeout: Type.Optional(Duration('Timeout of each AWS API call. Default 30s.')),
  awsSrcDstCheck: Type.Optional(StringEnum(AWS_SRC_DST_CHECK, { description: 'Source/destination check on the node primary ENI. Default DoNothing.' })),
  routeTableRanges: Type.Optional(Type.Array(RouteTableRangeSchema, { description: 'Kernel route-table indices Felix may use. Default [{min: 1, max: 250}].' })),
  routeTableRange: Type.Optional(RouteTableRangeSchema),
  policySyncPathPrefix: Type.Optional(Type.String()),
  iptablesBackend: Type.Optional(StringEnum(IPTABLES_BACKENDS, { caseInsensitive: true })),
  logSeverityScreen: Type.Optional(StringEnum(FELIX_LOG_LEVELS, { caseInsensitive: true })),
  vxlanPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  vxlanVNI: Type.Optional(Type.Integer({ minimum: 1, maximum: 16777215 })),
  nodeSelector: Type.Optional(Type.String({ maxLength: 1024 })),
});

/**
 * The spec schema: the typed fields plus every other Felix field name (any value, kept as written).
 * The TypeScript type only shows the typed fields.
 */
export const FelixConfigurationSpecSchema = Type.Unsafe<Static<typeof TypedFelixSpec>>({
  ...TypedFelixSpec,
  type: 'object',
  description: 'Felix settings. egw validates the egress-gateway and AWS fields; other Felix fields are kept as written.',
  properties: {
    ...Object.fromEntries(FELIX_FIELD_NAMES.map((name) => [name, {}])),
    ...TypedFelixSpec.properties,
  },
});

export const FelixConfigurationSchema = Resource('projectcalico.org/v3', 'FelixConfiguration', FelixConfigurationSpecSchema, LooseStatus(), {
  description: 'Felix (node agent) settings: `default` for the cluster, `node.<name>` for one node.',
});

/** A FelixConfiguration as stored. */
export type FelixConfiguration = Static<typeof FelixConfigurationSchema>;
export type FelixConfigurationSpec = Static<typeof TypedFelixSpec>;

/** The egress and AWS settings a node runs with. */
export interface EffectiveFelixSettings {
  egressIPSupport: EgressIPSupport;
  egressIPVXLANPort: number;
  egressIPVXLANVNI: number;
  egressIPRoutingRulePriority: number;
  egressIPHostIfacePattern: string;
  egressGatewayPollInterval: string;
  egressGatewayPollFailureCount: number;
  awsSecondaryIPSupport: AWSSecondaryIPSupport;
  awsSecondaryIPRoutingRulePriority: number;
  awsRequestTimeout: string;
  awsSrcDstCheck: (typeof AWS_SRC_DST_CHECK)[number];
  routeTableRanges: { min: number; max: number }[];
}

/** Calico's defaults for the fields egw reads. */
export const FELIX_DEFAULTS: Readonly<EffectiveFelixSettings> = Object.freeze({
  egressIPSupport: 'Disabled',
  egressIPVXLANPort: 4790,
  egressIPVXLANVNI: 4097,
  egressIPRoutingRulePriority: 100,
  egressIPHostIfacePattern: '',
  egressGatewayPollInterval: '10s',
  egressGatewayPollFailureCount: 3,
  awsSecondaryIPSupport: 'Disabled',
  awsSecondaryIPRoutingRulePriority: 101,
  awsRequestTimeout: '30s',
  awsSrcDstCheck: 'DoNothing',
  routeTableRanges: [Object.freeze({ min: 1, max: 250 })],
});

function canonical<T extends string>(values: readonly T[], value: string | undefined): T | undefined {
  if (value === undefined) return undefined;
  return values.find((v) => v.toLowerCase() === value.toLowerCase());
}

/**
 * Felix's per-field precedence: the node's `node.<name>` resource over `default` over Calico's defaults.
 * `routeTableRange` (deprecated) counts as a one-entry `routeTableRanges`. Pure.
 */
export function effectiveFelixSettings(global?: FelixConfiguration, node?: FelixConfiguration): EffectiveFelixSettings {
  const layers = [global?.spec, node?.spec].filter((s): s is FelixConfigurationSpec => s !== undefined);
  const pick = <K extends keyof FelixConfigurationSpec>(key: K): FelixConfigurationSpec[K] | undefined => {
    let v: FelixConfigurationSpec[K] | undefined;
    for (const l of layers) if (l[key] !== undefined) v = l[key];
    return v;
  };
  let ranges: { min: number; max: number }[] = FELIX_DEFAULTS.routeTableRanges.map((r) => ({ ...r }));
  for (const l of layers) {
    if (l.routeTableRanges !== undefined) ranges = l.routeTableRanges.map((r) => ({ ...r }));
    else if (l.routeTableRange !== undefined) ranges = [{ ...l.routeTableRange }];
  }
  return {
    egressIPSupport: canonical(EGRESS_IP_SUPPORT, pick('egressIPSupport')) ?? FELIX_DEFAULTS.egressIPSupport,
    egressIPVXLANPort: pick('egressIPVXLANPort') ?? FELIX_DEFAULTS.egressIPVXLANPort,
    egressIPVXLANVNI: pick('egressIPVXLANVNI') ?? FELIX_DEFAULTS.egressIPVXLANVNI,
    egressIPRoutingRulePriority: pick('egressIPRoutingRulePriority') ?? FELIX_DEFAULTS.egressIPRoutingRulePriority,
    egressIPHostIfacePattern: pick('egressIPHostIfacePattern') ?? FELIX_DEFAULTS.egressIPHostIfacePattern,
    egressGatewayPollInterval: pick('egressGatewayPollInterval') ?? FELIX_DEFAULTS.egressGatewayPollInterval,
    egressGatewayPollFailureCount: pick('egressGatewayPollFailureCount') ?? FELIX_DEFAULTS.egressGatewayPollFailureCount,
    awsSecondaryIPSupport: canonical(AWS_SECONDARY_IP_SUPPORT, pick('awsSecondaryIPSupport')) ?? FELIX_DEFAULTS.awsSecondaryIPSupport,
    awsSecondaryIPRoutingRulePriority: pick('awsSecondaryIPRoutingRulePriority') ?? FELIX_DEFAULTS.awsSecondaryIPRoutingRulePriority,
    awsRequestTimeout: pick('awsRequestTimeout') ?? FELIX_DEFAULTS.awsRequestTimeout,
    awsSrcDstCheck: pick('awsSrcDstCheck') ?? FELIX_DEFAULTS.awsSrcDstCheck,
    routeTableRanges: ranges,
  };
}

/**
 * Canonicalises the case of case-insensitive enums (every resource), and fills Calico's defaults for the
 * fields egw reads into the `default` resource only: a `node.<name>` or selector-scoped resource overrides
 * `default` field by field, so filling defaults there would silently override the cluster's settings.
 * `routeTableRanges` is not defaulted when the deprecated `routeTableRange` is set (both may not be set).
 * Pure and idempotent.
 */
export function defaultFelixConfiguration(fc: FelixConfiguration): FelixConfiguration {
  const spec: FelixConfigurationSpec = { ...fc.spec };
  const canon = <K extends 'egressIPSupport' | 'awsSecondaryIPSupport' | 'iptablesBackend' | 'logSeverityScreen'>(
    key: K,
    values: readonly NonNullable<FelixConfigurationSpec[K]>[],
  ) => {
    const v = canonical(values, spec[key]);
    if (v !== undefined) spec[key] = v;
  };
  canon('egressIPSupport', EGRESS_IP_SUPPORT);
  canon('awsSecondaryIPSupport', AWS_SECONDARY_IP_SUPPORT);
  canon('iptablesBackend', IPTABLES_BACKENDS);
  canon('logSeverityScreen', FELIX_LOG_LEVELS);
  if (fc.metadata.name === 'default') {
    spec.egressIPSupport ??= FELIX_DEFAULTS.egressIPSupport;
    spec.egressIPVXLANPort ??= FELIX_DEFAULTS.egressIPVXLANPort;
    spec.egressIPVXLANVNI ??= FELIX_DEFAULTS.egressIPVXLANVNI;
    spec.egressIPRoutingRulePriority ??= FELIX_DEFAULTS.egressIPRoutingRulePriority;
    spec.egressGatewayPollInterval ??= FELIX_DEFAULTS.egressGatewayPollInterval;
    spec.egressGatewayPollFailureCount ??= FELIX_DEFAULTS.egressGatewayPollFailureCount;
    spec.awsSecondaryIPSupport ??= FELIX_DEFAULTS.awsSecondaryIPSupport;
    spec.awsSecondaryIPRoutingRulePriority ??= FELIX_DEFAULTS.awsSecondaryIPRoutingRulePriority;
    spec.awsRequestTimeout ??= FELIX_DEFAULTS.awsRequestTimeout;
    spec.awsSrcDstCheck ??= FELIX_DEFAULTS.awsSrcDstCheck;
    if (spec.routeTableRange === undefined) spec.routeTableRanges ??= FELIX_DEFAULTS.routeTableRanges.map((r) => ({ ...r }));
  }
  return { ...fc, spec };
}

/** Whether a FelixConfiguration name is the cluster default, a per-node one, or selector-scoped. */
export function felixScope(name: string): 'default' | 'node' | 'selector' {
  if (name === 'default') return 'default';
  return name.startsWith('node.') ? 'node' : 'selector';
}

const RESERVED_TABLES = { min: 253, max: 255 };

/** An interface list as Felix reads one (`iface-list-regexp`): exact interface names and `/regex/` entries. */
export interface IfacePattern {
  names: string[];
  /** Regular expression sources (between the slashes), matched anywhere in the name as Go's MatchString. */
  regexes: string[];
}

const IFACE_NAME = /^[a-zA-Z0-9_.-]{1,15}$/;
const MAX_IFACE_PATTERN = 1024;

/**
 * Parses `egressIPHostIfacePattern`: a comma-separated list whose entries are interface names
 * (≤ 15 characters of letters, digits, `_`, `.`, `-`) or regular expressions between slashes. Empty
 * means none. Pure; never throws: problems come back as messages.
 */
export function parseIfacePattern(text: string): { pattern: IfacePattern; errors: string[] } {
  const pattern: IfacePattern = { names: [], regexes: [] };
  const errors: string[] = [];
  if (text.length > MAX_IFACE_PATTERN) return { pattern, errors: [`is ${text.length} characters long (at most ${MAX_IFACE_PATTERN})`] };
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    if (entry.length >= 2 && entry.startsWith('/') && entry.endsWith('/')) {
      const source = entry.slice(1, -1);
      try {
        new RegExp(source);
        pattern.regexes.push(source);
      } catch (err) {
        errors.push(`entry ${JSON.stringify(entry)} is not a valid regular expression (${err instanceof Error ? err.message : String(err)})`);
      }
    } else if (IFACE_NAME.test(entry)) {
      pattern.names.push(entry);
    } else {
      errors.push(`entry ${JSON.stringify(entry)} is neither an interface name (up to 15 of a-z A-Z 0-9 _ . -) nor a /regex/`);
    }
  }
  return { pattern, errors };
}

/** Calico's rules for the fields egw types (as written, before defaults). */
export function validateFelixConfiguration(fc: FelixConfiguration, sink: IssueSink): void {
  const spec = fc.spec;
  const scope = felixScope(fc.metadata.name);
  if (spec.routeTableRange !== undefined && spec.routeTableRanges !== undefined) {
    sink.error(['spec', 'routeTableRange'], 'FelixConfiguration.route-table-range-both', 'routeTableRange and routeTableRanges cannot both be set', 'only routeTableRanges (routeTableRange is deprecated)');
  }
  if (spec.routeTableRange !== undefined) {
    const r = spec.routeTableRange;
    if (!(r.min >= 1 && r.max >= r.min && r.max <= 250)) {
      sink.error(['spec', 'routeTableRange'], 'FelixConfiguration.route-table-range', `must be a range of route table indices within 1..250 (got ${r.min}..${r.max})`, 'min ≥ 1, max ≥ min, max ≤ 250');
    } else {
      sink.warn(['spec', 'routeTableRange'], 'FelixConfiguration.route-table-range-deprecated', 'routeTableRange is deprecated', `routeTableRanges: [{min: ${r.min}, max: ${r.max}}]`);
    }
  }
  if (spec.routeTableRanges !== undefined) {
    let total = 0;
    spec.routeTableRanges.forEach((r, i) => {
      const path = ['spec', 'routeTableRanges', i];
      if (r.min < 1) sink.error([...path, 'min'], 'FelixConfiguration.route-table-min', `min must be >= 1 (got ${r.min})`, 'min of at least 1');
      else if (r.min > r.max) sink.error(path, 'FelixConfiguration.route-table-order', `min must not be greater than max (got ${r.min}..${r.max})`, `min ≤ max, e.g. {min: ${r.max}, max: ${r.min}}`);
      else {
        total += r.max - r.min + 1;
        if (r.min <= RESERVED_TABLES.max && r.max >= RESERVED_TABLES.min) {
          sink.warn(path, 'FelixConfiguration.route-table-reserved', `range ${r.min}..${r.max} includes the kernel's default/main/local tables 253-255, which are never used`, 'a range that avoids 253-255');
        }
        spec.routeTableRanges?.forEach((o, j) => {
          if (j < i && o.min <= o.max && o.min <= r.max && r.min <= o.max) {
            sink.warn(path, 'FelixConfiguration.route-table-overlap', `range ${r.min}..${r.max} overlaps routeTableRanges[${j}] (${o.min}..${o.max})`, 'disjoint ranges');
          }
        });
      }
    });
    if (total > 65535) {
      sink.error(['spec', 'routeTableRanges'], 'FelixConfiguration.route-table-total', `routeTableRanges cover ${total} tables`, 'at most 65535 route tables in total');
    }
  }
  if (spec.egressIPHostIfacePattern !== undefined) {
    for (const e of parseIfacePattern(spec.egressIPHostIfacePattern).errors) {
      sink.error(['spec', 'egressIPHostIfacePattern'], 'FelixConfiguration.iface-pattern', e, 'a comma list of interface names or /regex/ entries, e.g. "eth1,/^ens[0-9]+$/"');
    }
  }
  if (spec.nodeSelector !== undefined) {
    if (scope !== 'selector') {
      sink.error(['spec', 'nodeSelector'], 'FelixConfiguration.node-selector-scope', "nodeSelector must not be set on the 'default' or per-node ('node.*') FelixConfiguration", 'no nodeSelector here, or a resource with another name');
    } else {
      checkSelector(sink, ['spec', 'nodeSelector'], 'FelixConfiguration.invalid-node-selector', spec.nodeSelector);
    }
  }
  if (scope !== 'default' && spec.egressIPSupport !== undefined) {
    sink.warn(['spec', 'egressIPSupport'], 'FelixConfiguration.egress-support-not-default', 'egressIPSupport must be the same on every node; set it only in the default FelixConfiguration', 'egressIPSupport in FelixConfiguration "default"');
  }
  const port = spec.egressIPVXLANPort ?? FELIX_DEFAULTS.egressIPVXLANPort;
  const vni = spec.egressIPVXLANVNI ?? FELIX_DEFAULTS.egressIPVXLANVNI;
  if (port === (spec.vxlanPort ?? 4789) && vni === (spec.vxlanVNI ?? 4096)) {
    sink.warn(['spec', 'egressIPVXLANVNI'], 'FelixConfiguration.vxlan-clash', `the egress VXLAN device (port ${port}, VNI ${vni}) would clash with Calico's own VXLAN device`, 'a different egressIPVXLANPort or egressIPVXLANVNI');
  }
}
