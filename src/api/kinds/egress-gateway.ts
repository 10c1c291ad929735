/**
 * `operator.tigera.io/v1` EgressGateway (namespaced): a group of egress gateway pods, their IP pools,
 * health probes and AWS settings. Validation follows the Tigera operator, with its exact messages where
 * it has them.
 */
import { Type, type Static } from '@sinclair/typebox';
import { checkLabels, isDnsSubdomain } from '../checks.js';
import { parseCidr, parseIp } from '../ip.js';
import type { IssueSink } from '../issues.js';
import { preserveUnknown, ResourceList, Resource, StringEnum, StringMap } from '../schema-kit.js';

export const NATIVE_IP = ['Enabled', 'Disabled'] as const;
export type NativeIP = (typeof NATIVE_IP)[number];
export const LOG_SEVERITIES = ['Trace', 'Debug', 'Info', 'Warn', 'Error', 'Fatal'] as const;

/** The label the operator puts on gateway pods when the template has none: `projectcalico.org/egw: <name>`. */
export const DEFAULT_GATEWAY_LABEL = 'projectcalico.org/egw';
/** Zone label used by the operator's default anti-affinity and by topology spread constraints. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

const Int32 = (description: string, minimum = 0) => Type.Integer({ minimum, maximum: 2147483647, description });

export const EgressGatewayIPPoolSchema = Type.Object({
  name: Type.Optional(Type.String({ description: 'Name of an IPPool.' })),
  cidr: Type.Optional(Type.String({ 'x-egw-format-hint': 'a CIDR such as 100.64.0.4/30', description: 'CIDR of an IPPool.' })),
});

const ICMPProbeSchema = Type.Object({
  ips: Type.Optional(Type.Array(Type.String({ 'x-egw-format-hint': 'an IP address' }), { description: 'Addresses to ping.' })),
  intervalSeconds: Type.Optional(Int32('Seconds between probes. Default 5.')),
  timeoutSeconds: Type.Optional(Int32('Seconds of failing probes before not-ready. Default 15.')),
});

const HTTPProbeSchema = Type.Object({
  urls: Type.Optional(Type.Array(Type.String({ 'x-egw-format-hint': 'an http:// or https:// URL' }), { description: 'URLs to GET.' })),
  intervalSeconds: Type.Optional(Int32('Seconds between probes. Default 10.')),
  timeoutSeconds: Type.Optional(Int32('Seconds of failing probes before not-ready. Default 30.')),
});

export const FailureDetectionSchema = Type.Object({
  healthTimeoutDataStoreSeconds: Type.Optional(Int32('How long the gateway may miss the datastore before reporting not-ready. Default 90.', 1)),
  icmpProbe: Type.Optional(ICMPProbeSchema),
  httpProbe: Type.Optional(HTTPProbeSchema),
});

const LabelSelectorSchema = Type.Object({
  matchLabels: Type.Optional(StringMap()),
  matchExpressions: Type.Optional(
    Type.Array(
      Type.Object({
        key: Type.String(),
        operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const),
        values: Type.Optional(Type.Array(Type.String())),
      }),
    ),
  ),
});

const TopologySpreadConstraintSchema = Type.Object({
  maxSkew: Int32('Maximum skew between topology domains.', 1),
  topologyKey: Type.String(),
  whenUnsatisfiable: StringEnum(['DoNotSchedule', 'ScheduleAnyway'] as const),
  labelSelector: Type.Optional(LabelSelectorSchema),
  minDomains: Type.Optional(Int32('Minimum number of eligible domains.', 1)),
  matchLabelKeys: Type.Optional(Type.Array(Type.String())),
  nodeAffinityPolicy: Type.Optional(StringEnum(['Honor', 'Ignore'] as const)),
  nodeTaintsPolicy: Type.Optional(StringEnum(['Honor', 'Ignore'] as const)),
});

const TolerationSchema = Type.Object({
  key: Type.Optional(Type.String()),
  operator: Type.Optional(StringEnum(['Exists', 'Equal'] as const)),
  value: Type.Optional(Type.String()),
  effect: Type.Optional(StringEnum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const)),
  tolerationSeconds: Type.Optional(Type.Integer()),
});

/** Kubernetes Affinity; its terms are kept as written (egw's scheduler reads them, the API does not). */
const AffinitySchema = Type.Object({
  nodeAffinity: Type.Optional(Type.Object({}, preserveUnknown)),
  podAffinity: Type.Optional(Type.Object({}, preserveUnknown)),
  podAntiAffinity: Type.Optional(Type.Object({}, preserveUnknown)),
});

const ContainerResourcesSchema = Type.Object({
  requests: Type.Optional(ResourceList()),
  limits: Type.Optional(ResourceList()),
});

const ContainerOverrideSchema = Type.Object({
  // The container is called `egress-gateway` in current operators and `calico-egw` in some releases.
  name: StringEnum(['egress-gateway', 'calico-egw'] as const),
  resources: Type.Optional(ContainerResourcesSchema),
  readinessProbe: Type.Optional(Type.Object({}, preserveUnknown)),
  livenessProbe: Type.Optional(Type.Object({}, preserveUnknown)),
});

const InitContainerOverrideSchema = Type.Object({
  name: StringEnum(['egress-gateway-init'] as const),
  resources: Type.Optional(ContainerResourcesSchema),
});

export const EgressGatewayTemplateSchema = Type.Object({
  metadata: Type.Optional(
    Type.Object({
      labels: Type.Optional(StringMap({ description: `Gateway pod labels. Default ${DEFAULT_GATEWAY_LABEL}: <name>.` })),
      annotations: Type.Optional(StringMap()),
    }),
  ),
  spec: Type.Optional(
    Type.Object({
      nodeSelector: Type.Optional(StringMap()),
      affinity: Type.Optional(AffinitySchema),
      tolerations: Type.Optional(Type.Array(TolerationSchema)),
      topologySpreadConstraints: Type.Optional(Type.Array(TopologySpreadConstraintSchema)),
      terminationGracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
      priorityClassName: Type.Optional(Type.String()),
      containers: Type.Optional(Type.Array(ContainerOverrideSchema)),
      initContainers: Type.Optional(Type.Array(InitContainerOverrideSchema)),
    }),
  ),
});

export const EgressGatewaySpecSchema = Type.Object({
  replicas: Type.Optional(Int32('Number of gateway pods. Default 1.')),
  ipPools: Type.Optional(Type.Array(EgressGatewayIPPoolSchema, { description: 'Pools the gateways take their IPs from, by name or CIDR (at least one).' })),
  externalNetworks: Type.Optional(Type.Array(Type.String(), { description: 'Calico external networks (not supported by egw; kept as written).' })),
  logSeverity: Type.Optional(StringEnum(LOG_SEVERITIES, { description: 'Gateway log level. Default Info.', default: 'Info' })),
  template: Type.Optional(EgressGatewayTemplateSchema),
  egressGatewayFailureDetection: Type.Optional(FailureDetectionSchema),
  aws: Type.Optional(
    Type.Object({
      nativeIP: Type.Optional(StringEnum(NATIVE_IP, { description: 'Take IPs from AWS-backed pools. Default Disabled.' })),
      elasticIPs: Type.Optional(Type.Array(Type.String({ 'x-egw-format-hint': 'an IPv4 address' }), { description: 'Elastic IPs for the gateway pods (requires nativeIP Enabled).' })),
    }),
  ),
});

export const EgressGatewayStatusSchema = Type.Object(
  {
    state: Type.Optional(Type.String()),
    conditions: Type.Optional(Type.Array(Type.Object({}, preserveUnknown))),
  },
  preserveUnknown,
);

export const EgressGatewaySchema = Resource('operator.tigera.io/v1', 'EgressGateway', EgressGatewaySpecSchema, EgressGatewayStatusSchema, {
  description: 'A group of egress gateway pods (the Tigera operator resource).',
});

/** An EgressGateway as stored. */
export type EgressGateway = Static<typeof EgressGatewaySchema>;
export type EgressGatewaySpec = Static<typeof EgressGatewaySpecSchema>;
export type EgressGatewayIPPoolRef = Static<typeof EgressGatewayIPPoolSchema>;

/** Probe defaults of the operator's CRD. */
export const PROBE_DEFAULTS = {
  healthTimeoutDataStoreSeconds: 90,
  icmp: { intervalSeconds: 5, timeoutSeconds: 15 },
  http: { intervalSeconds: 10, timeoutSeconds: 30 },
} as const;

/** The effective `aws.nativeIP` (Disabled when unset). */
export function nativeIP(egw: EgressGateway): NativeIP {
  return egw.spec.aws?.nativeIP ?? 'Disabled';
}

/**
 * The operator's defaults (its CRD defaults plus what its controller writes back): replicas 1, logSeverity
 * Info, `aws.nativeIP` Disabled when `aws` is given, template labels `projectcalico.org/egw: <name>` when
 * there are none, the preferred zone anti-affinity on those labels when no affinity is given, and the
 * probe defaults (datastore 90 s, ICMP 5/15 s, HTTP 10/30 s) inside a given failure-detection block.
 * Pure and idempotent.
 */
export function defaultEgressGateway(egw: EgressGateway): EgressGateway {
  const spec: EgressGatewaySpec = { ...egw.spec };
  spec.replicas ??= 1;
  spec.logSeverity ??= 'Info';
  if (spec.aws !== undefined) spec.aws = { ...spec.aws, nativeIP: spec.aws.nativeIP ?? 'Disabled' };

  const template = { ...spec.template };
  const metadata = { ...template.metadata };
  if (metadata.labels === undefined || Object.keys(metadata.labels).length === 0) {
    metadata.labels = { [DEFAULT_GATEWAY_LABEL]: egw.metadata.name };
  }
  template.metadata = metadata;
  const podSpec = { ...template.spec };
  podSpec.affinity ??= {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        { weight: 1, podAffinityTerm: { labelSelector: { matchLabels: { ...metadata.labels } }, topologyKey: ZONE_LABEL } },
      ],
    },
  };
  template.spec = podSpec;
  spec.template = template;

  const fd = spec.egressGatewayFailureDetection;
  if (fd !== undefined) {
    spec.egressGatewayFailureDetection = {
      ...fd,
      healthTimeoutDataStoreSeconds: fd.healthTimeoutDataStoreSeconds ?? PROBE_DEFAULTS.healthTimeoutDataStoreSeconds,
      ...(fd.icmpProbe === undefined
        ? {}
        : {
            icmpProbe: {
              ...fd.icmpProbe,
              intervalSeconds: fd.icmpProbe.intervalSeconds ?? PROBE_DEFAULTS.icmp.intervalSeconds,
              timeoutSeconds: fd.icmpProbe.timeoutSeconds ?? PROBE_DEFAULTS.icmp.timeoutSeconds,
            },
          }),
      ...(fd.httpProbe === undefined
        ? {}
        : {
            httpProbe: {
              ...fd.httpProbe,
              intervalSeconds: fd.httpProbe.intervalSeconds ?? PROBE_DEFAULTS.http.intervalSeconds,
              timeoutSeconds: fd.httpProbe.timeoutSeconds ?? PROBE_DEFAULTS.http.timeoutSeconds,
            },
          }),
    };
  }
  return { ...egw, spec };
}

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

/** The operator's rules (and a few of egw's), as written, before defaults. */
export function validateEgressGateway(egw: EgressGateway, sink: IssueSink): void {
  const spec = egw.spec;
  const pools = spec.ipPools ?? [];
  if (pools.length === 0) {
    sink.error(['spec', 'ipPools'], 'EgressGateway.no-ippools', 'at least one IPPool must be specified', 'ipPools: [{name: <IPPool name>}] or [{cidr: <IPPool CIDR>}]');
  }
  const seen = new Map<string, number>();
  pools.forEach((ref, i) => {
    const path = ['spec', 'ipPools', i];
    const name = ref.name ?? '';
    const cidr = ref.cidr ?? '';
    if (name === '' && cidr === '') {
      sink.error(path, 'EgressGateway.ippool-ref-empty', 'an ipPools entry must name an IPPool by name or by cidr', '{name: egress-red-west-1} or {cidr: 100.64.0.4/30}');
      return;
    }
    if (name !== '' && !isDnsSubdomain(name)) {
      sink.error([...path, 'name'], 'EgressGateway.ippool-ref-name', `"${name}" is not a valid IPPool name`, 'a lowercase DNS subdomain such as egress-red-west-1');
    }
    if (cidr !== '' && parseCidr(cidr) === undefined) {
      sink.error([...path, 'cidr'], 'EgressGateway.ippool-ref-cidr', `"${cidr}" is not a CIDR`, 'the CIDR of an IPPool, such as 100.64.0.4/30');
    }
    const key = `${name}|${cidr}`;
    const first = seen.get(key);
    if (first !== undefined) sink.warn(path, 'EgressGateway.ippool-ref-duplicate', `repeats ipPools[${first}]`, 'each pool once');
    else seen.set(key, i);
  });

  const aws = spec.aws;
  const eips = aws?.elasticIPs ?? [];
  eips.forEach((eip, i) => {
    if (parseIp(eip)?.version !== 4) {
      sink.error(['spec', 'aws', 'elasticIPs', i], 'EgressGateway.elastic-ip-invalid', `"${eip}" is not an IPv4 address`, 'an Elastic IP address such as 203.0.113.10');
    } else if (eips.indexOf(eip) !== i) {
      sink.warn(['spec', 'aws', 'elasticIPs', i], 'EgressGateway.elastic-ip-duplicate', `"${eip}" is listed twice`, 'each Elastic IP once');
    }
  });
  if (eips.length > 0 && nativeIP(egw) !== 'Enabled') {
    sink.error(['spec', 'aws', 'nativeIP'], 'EgressGateway.elastic-ips-need-native-ip', 'NativeIP must be enabled when elastic IPs are used', 'aws.nativeIP: Enabled');
  }
  const replicas = spec.replicas ?? 1;
  const distinctEips = new Set(eips).size;
  if (distinctEips > 0 && distinctEips < replicas) {
    sink.warn(['spec', 'aws', 'elasticIPs'], 'EgressGateway.fewer-elastic-ips', `${replicas} replicas but ${distinctEips} Elastic IP(s): some gateways will have none`, `at least ${replicas} Elastic IPs, or fewer replicas`);
  }

  const fd = spec.egressGatewayFailureDetection;
  if (fd !== undefined) {
    const base = ['spec', 'egressGatewayFailureDetection'];
    if (fd.icmpProbe === undefined && fd.httpProbe === undefined) {
      sink.error(base, 'EgressGateway.no-probe', 'either ICMP or HTTP probe must be configured', 'icmpProbe: {ips: [...]} and/or httpProbe: {urls: [...]} in egressGatewayFailureDetection');
    }
    const probe = (kind: 'icmpProbe' | 'httpProbe', label: 'ICMP' | 'HTTP', defaults: { intervalSeconds: number; timeoutSeconds: number }, interval?: number, timeout?: number) => {
      const path = [...base, kind];
      const effInterval = interval ?? defaults.intervalSeconds;
      const effTimeout = timeout ?? defaults.timeoutSeconds;
      const note = (v: number | undefined) => (v === undefined ? ' (default)' : '');
      let ok = true;
      if (effInterval <= 0) {
        sink.error([...path, 'intervalSeconds'], 'EgressGateway.probe-interval', `intervalSeconds must be positive (got ${effInterval})`, 'a number of seconds of at least 1');
        ok = false;
      }
      if (effTimeout <= 0) {
        sink.error([...path, 'timeoutSeconds'], 'EgressGateway.probe-timeout', `timeoutSeconds must be positive (got ${effTimeout})`, 'a number of seconds of at least 1');
        ok = false;
      }
      if (ok && effTimeout < effInterval) {
        sink.error(
          [...path, 'timeoutSeconds'],
          'EgressGateway.probe-timeout-below-interval',
          `${label} probe timeout must be greater than interval (timeoutSeconds ${effTimeout}${note(timeout)} < intervalSeconds ${effInterval}${note(interval)})`,
          `timeoutSeconds of at least ${effInterval}`,
        );
      }
    };
    if (fd.icmpProbe !== undefined) {
      const ips = fd.icmpProbe.ips ?? [];
      if (ips.length === 0) sink.warn([...base, 'icmpProbe', 'ips'], 'EgressGateway.probe-no-targets', 'icmpProbe has no ips, so no ICMP probes are sent', 'ips: [<IP to probe>, ...]');
      ips.forEach((ip, i) => {
        if (parseIp(ip) === undefined) sink.error([...base, 'icmpProbe', 'ips', i], 'EgressGateway.probe-ip-invalid', `"${ip}" is not an IP address`, 'an IP address to ping, such as 198.51.100.1');
      });
      probe('icmpProbe', 'ICMP', PROBE_DEFAULTS.icmp, fd.icmpProbe.intervalSeconds, fd.icmpProbe.timeoutSeconds);
    }
    if (fd.httpProbe !== undefined) {
      const urls = fd.httpProbe.urls ?? [];
      if (urls.length === 0) sink.warn([...base, 'httpProbe', 'urls'], 'EgressGateway.probe-no-targets', 'httpProbe has no urls, so no HTTP probes are sent', 'urls: [<URL to probe>, ...]');
      urls.forEach((url, i) => {
        if (!isHttpUrl(url)) sink.error([...base, 'httpProbe', 'urls', i], 'EgressGateway.probe-url-invalid', `"${url}" is not an http(s) URL`, 'a URL such as http://198.51.100.1:8080/health');
      });
      probe('httpProbe', 'HTTP', PROBE_DEFAULTS.http, fd.httpProbe.intervalSeconds, fd.httpProbe.timeoutSeconds);
    }
  }

  const labels = spec.template?.metadata?.labels;
  checkLabels(sink, ['spec', 'template', 'metadata', 'labels'], labels);
  if ((labels === undefined || Object.keys(labels).length === 0) && egw.metadata.name.length > 63) {
    sink.error(['metadata', 'name'], 'EgressGateway.name-too-long-for-label', `the name is too long (${egw.metadata.name.length} > 63) to be the default label value ${DEFAULT_GATEWAY_LABEL}: <name>`, 'a shorter name, or template.metadata.labels');
  }
  checkLabels(sink, ['spec', 'template', 'spec', 'nodeSelector'], spec.template?.spec?.nodeSelector);
  if ((spec.externalNetworks ?? []).length > 0) {
    sink.warn(['spec', 'externalNetworks'], 'EgressGateway.external-networks', 'egw does not support Calico external networks; externalNetworks is kept but ignored', 'no externalNetworks');
  }
}
