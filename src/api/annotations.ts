/**
 * The Calico annotations egw reads on Namespaces and Pods, their parsers and their checks. Pure.
 */
import { checkSelector, isDnsSubdomain, SELECTOR_EXAMPLE } from './checks.js';
import { parseCidr, parseIp } from './ip.js';
import type { IssueSink } from './issues.js';
import { suggest } from './structural.js';

/** Selector of the gateways a namespace's or pod's traffic uses. */
export const EGRESS_SELECTOR = 'egress.projectcalico.org/selector';
/** Widens {@link EGRESS_SELECTOR} to gateways in the namespaces this selects (else: own namespace only). */
export const EGRESS_NAMESPACE_SELECTOR = 'egress.projectcalico.org/namespaceSelector';
/** Name of the EgressGatewayPolicy to use. */
export const EGRESS_GATEWAY_POLICY = 'egress.projectcalico.org/egressGatewayPolicy';
/** At most this many gateways per client pod ("0" = all). */
export const EGRESS_MAX_NEXT_HOPS = 'egress.projectcalico.org/maxNextHops';
/** JSON array of IPv4 pool names or CIDRs to allocate from. */
export const CNI_IPV4_POOLS = 'cni.projectcalico.org/ipv4pools';
/** JSON array of Elastic IPs, one of which is associated with the pod. */
export const CNI_AWS_ELASTIC_IPS = 'cni.projectcalico.org/awsElasticIPs';
/**
 * egw's opt-in Elastic IP standby (not Calico's): on an EgressGateway (copied to its pods) or a gateway
 * Pod, `"true"` lets a replica without an Elastic IP take over one of its listed Elastic IPs from a holder
 * that is no longer a live gateway, and keeps such a replica out of its clients' next hops until it
 * holds one. docs/aws-fabric.md, "Elastic IP standby".
 */
export const EGW_ELASTIC_IP_STANDBY = 'egw.io/elastic-ip-standby';

/** True when the annotations turn the Elastic IP standby on. */
export function elasticIpStandby(annotations: Readonly<Record<string, string>> | undefined): boolean {
  return annotations?.[EGW_ELASTIC_IP_STANDBY] === 'true';
}

/** Set by Calico (not users) on clients of a terminating gateway. */
export const GATEWAY_MAINTENANCE_ANNOTATIONS = [
  'egress.projectcalico.org/gatewayMaintenanceGatewayIP',
  'egress.projectcalico.org/gatewayMaintenanceStartedTimestamp',
  'egress.projectcalico.org/gatewayMaintenanceFinishedTimestamp',
] as const;

/** The Pod condition the agent's AWS fabric writes: True once the pod's address (and Elastic IP) are in place. */
export const EGW_AWS_READY_CONDITION = 'EgwAwsReady';

/** The extended resource a pod requests to get an address from an AWS-backed pool. */
export const AWS_SECONDARY_IPV4_RESOURCE = 'projectcalico.org/aws-secondary-ipv4';

const KNOWN_EGRESS_ANNOTATIONS: readonly string[] = [
  EGRESS_SELECTOR,
  EGRESS_NAMESPACE_SELECTOR,
  EGRESS_GATEWAY_POLICY,
  EGRESS_MAX_NEXT_HOPS,
  'egress.projectcalico.org/externalNetworkNames',
  ...GATEWAY_MAINTENANCE_ANNOTATIONS,
];

/** Parses a JSON array of strings; undefined when the text is not one. */
export function parseStringArray(text: string): string[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return Array.isArray(value) && value.every((v): v is string => typeof v === 'string') ? value : undefined;
}

/** The pools named by a `cni.projectcalico.org/ipv4pools` value (names or CIDRs), or undefined if malformed. */
export function parsePoolList(text: string): string[] | undefined {
  return parseStringArray(text);
}

/** Parses `egress.projectcalico.org/maxNextHops`: a non-negative decimal integer string. */
export function parseMaxNextHops(text: string): number | undefined {
  return /^(0|[1-9][0-9]{0,9})$/.test(text.trim()) ? Number(text.trim()) : undefined;
}

/**
 * Checks the egress and CNI annotations of a Namespace or a Pod: selectors parse, the policy name is a
 * valid name, maxNextHops is a non-negative integer string, ipv4pools is a JSON array of pool names or
 * IPv4 CIDRs, awsElasticIPs a JSON array of IPv4 addresses; warns about misspelt egress annotations.
 */
export function checkEgressAnnotations(sink: IssueSink, on: 'Namespace' | 'Pod', annotations: Readonly<Record<string, string>> | undefined): void {
  if (annotations === undefined) return;
  const at = (key: string) => ['metadata', 'annotations', key];
  const selector = annotations[EGRESS_SELECTOR];
  if (selector !== undefined) checkSelector(sink, at(EGRESS_SELECTOR), 'annotations.invalid-selector', selector);
  const nsSelector = annotations[EGRESS_NAMESPACE_SELECTOR];
  if (nsSelector !== undefined) {
    checkSelector(sink, at(EGRESS_NAMESPACE_SELECTOR), 'annotations.invalid-namespace-selector', nsSelector);
    if (selector === undefined) {
      sink.warn(at(EGRESS_NAMESPACE_SELECTOR), 'annotations.namespace-selector-alone', `${EGRESS_NAMESPACE_SELECTOR} only widens ${EGRESS_SELECTOR}, which is not set on this ${on}`, `${EGRESS_SELECTOR} as well (${SELECTOR_EXAMPLE})`);
    }
  }
  const policy = annotations[EGRESS_GATEWAY_POLICY];
  if (policy !== undefined && !isDnsSubdomain(policy)) {
    sink.error(at(EGRESS_GATEWAY_POLICY), 'annotations.invalid-policy-name', `"${policy}" is not a valid EgressGatewayPolicy name`, 'the name of an EgressGatewayPolicy, such as egw-policy1');
  }
  const hops = annotations[EGRESS_MAX_NEXT_HOPS];
  if (hops !== undefined) {
    if (parseMaxNextHops(hops) === undefined) {
      sink.error(at(EGRESS_MAX_NEXT_HOPS), 'annotations.invalid-max-next-hops', `"${hops}" is not a non-negative integer`, 'a non-negative integer as a string, such as "2" ("0" means all gateways)');
    } else if (selector === undefined) {
      sink.warn(at(EGRESS_MAX_NEXT_HOPS), 'annotations.max-next-hops-without-selector', `${EGRESS_MAX_NEXT_HOPS} only applies together with ${EGRESS_SELECTOR} on the same ${on}`, `${EGRESS_SELECTOR} on this ${on}`);
    }
  }
  const pools = annotations[CNI_IPV4_POOLS];
  if (pools !== undefined) {
    const list = parsePoolList(pools);
    if (list === undefined) {
      sink.error(at(CNI_IPV4_POOLS), 'annotations.invalid-ipv4pools', `${JSON.stringify(pools)} is not a JSON array of strings`, 'a JSON array of IPPool names or CIDRs, such as ["egress-red-west-1", "egress-red-west-2"]');
    } else {
      for (const entry of list) {
        const cidr = parseCidr(entry);
        const ok = cidr !== undefined ? cidr.cidr.version === 4 : isDnsSubdomain(entry);
        if (!ok) {
          sink.error(
            at(CNI_IPV4_POOLS),
            'annotations.invalid-ipv4pools-entry',
            cidr !== undefined ? `"${entry}" is an IPv6 CIDR in the IPv4 pool list` : `"${entry}" is neither an IPPool name nor an IPv4 CIDR`,
            'IPPool names or IPv4 CIDRs, such as ["egress-red-west-1"]',
          );
        }
      }
    }
  }
  const eips = annotations[CNI_AWS_ELASTIC_IPS];
  if (eips !== undefined) {
    const list = parseStringArray(eips);
    if (list === undefined) {
      sink.error(at(CNI_AWS_ELASTIC_IPS), 'annotations.invalid-elastic-ips', `${JSON.stringify(eips)} is not a JSON array of strings`, 'a JSON array of IPv4 addresses, such as ["37.1.2.3", "43.2.5.6"]');
    } else {
      for (const entry of list) {
        if (parseIp(entry)?.version !== 4) {
          sink.error(at(CNI_AWS_ELASTIC_IPS), 'annotations.invalid-elastic-ip', `"${entry}" is not an IPv4 address`, 'a JSON array of IPv4 addresses, such as ["37.1.2.3", "43.2.5.6"]');
        }
      }
      if (on === 'Namespace') {
        sink.warn(at(CNI_AWS_ELASTIC_IPS), 'annotations.elastic-ips-on-namespace', `${CNI_AWS_ELASTIC_IPS} is read on Pods only`, 'the annotation on the Pod (or aws.elasticIPs on the EgressGateway)');
      }
    }
  }
  const standby = annotations[EGW_ELASTIC_IP_STANDBY];
  if (standby !== undefined && standby !== 'true' && standby !== 'false') {
    sink.error(at(EGW_ELASTIC_IP_STANDBY), 'annotations.invalid-elastic-ip-standby', `${JSON.stringify(standby)} is neither "true" nor "false"`, `${EGW_ELASTIC_IP_STANDBY}: "true"`);
  }
  for (const key of Object.keys(annotations)) {
    if (key.startsWith('egress.projectcalico.org/') && !KNOWN_EGRESS_ANNOTATIONS.includes(key)) {
      const guess = suggest(key, KNOWN_EGRESS_ANNOTATIONS);
      sink.warn(at(key), 'annotations.unknown-egress-annotation', `unknown egress annotation "${key}" is ignored`, guess === undefined ? `one of ${KNOWN_EGRESS_ANNOTATIONS.slice(0, 4).join(', ')}` : `"${guess}" (did you mean it?)`);
    }
  }
}
