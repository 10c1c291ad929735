/**
 * The rules a client follows, from an EgressGatewayPolicy or from the selector annotations
 * (docs/egress-calc.md, "Rules"). Pure.
 */
import type { EgressGatewayPolicy } from '../api/index.js';
import { DEFAULT_DESTINATION, ruleDestination } from '../api/kinds/egress-gateway-policy.js';
import { formatIpv4Net, ipv4Net, parseIpv4Net, type Ipv4Net } from '../platform/ipv4.js';
import type { CalcReason } from './types.js';

/** The gateways of a rule: a pod selector, in the client's own namespace or in selected namespaces. */
export interface GatewaySpec {
  readonly selector: string | undefined;
  /** Undefined with `ownNamespace`: the client's namespace. */
  readonly namespaceSelector: string | undefined;
  /** Annotation method without namespaceSelector: only the client's namespace. */
  readonly ownNamespace: boolean;
  /** 0 = all. */
  readonly maxNextHops: number;
}

/** One rule: a destination and what to do with it. */
export interface RuleSpec {
  /** Canonical destination text. */
  readonly destination: string;
  /** Undefined when the rule is skipped. */
  readonly net: Ipv4Net | undefined;
  /** Undefined: no gateway, route normally (`throw`). */
  readonly gateway: GatewaySpec | undefined;
  readonly preferNodeLocal: boolean;
  readonly description: string | undefined;
  /** Why the rule is not programmed. */
  readonly skip: CalcReason | undefined;
}

/** The single rule of the annotation method: everything through the selected gateways. */
export function annotationRule(selector: string, namespaceSelector: string | undefined, maxNextHops: number): RuleSpec {
  return {
    destination: DEFAULT_DESTINATION,
    net: ipv4Net(0, 0),
    gateway: { selector, namespaceSelector, ownNamespace: namespaceSelector === undefined, maxNextHops },
    preferNodeLocal: false,
    description: undefined,
    skip: undefined,
  };
}

function blank(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s;
}

/**
 * The rules of a policy, in its order. A rule without destination means 0.0.0.0/0; an unparseable or
 * IPv6 destination, or one already used by an earlier rule, is skipped (validation rejects all three;
 * calc stays safe with stored data that predates a rule). A gateway without selector or namespaceSelector
 * (also rejected by validation) is kept: it matches nothing, so its destination fails closed.
 */
export function policyRules(policy: EgressGatewayPolicy): RuleSpec[] {
  const seen = new Set<string>();
  return (policy.spec.rules ?? []).map((rule): RuleSpec => {
    const description = rule.description;
    const gw = rule.gateway;
    const gateway: GatewaySpec | undefined =
      gw === undefined ? undefined : { selector: blank(gw.selector), namespaceSelector: blank(gw.namespaceSelector), ownNamespace: false, maxNextHops: Math.max(0, gw.maxNextHops ?? 0) };
    const base = { gateway, preferNodeLocal: rule.gatewayPreference === 'PreferNodeLocal' && gateway !== undefined, description };
    const dest = ruleDestination(rule);
    const written = rule.destination?.cidr ?? DEFAULT_DESTINATION;
    if (dest === undefined) return { ...base, destination: written, net: undefined, skip: 'invalid-destination' };
    const net = parseIpv4Net(dest, { hostBits: 'clear' });
    if (net === undefined) {
      // `dest` passed the API's dual-stack CIDR parse (ruleDestination): what is not IPv4 is IPv6.
      return { ...base, destination: dest, net: undefined, skip: dest.includes(':') ? 'ipv6-destination' : 'invalid-destination' };
    }
    const canonical = formatIpv4Net(net);
    if (seen.has(canonical)) return { ...base, destination: canonical, net: undefined, skip: 'duplicate-destination' };
    seen.add(canonical);
    return { ...base, destination: canonical, net, skip: undefined };
  });
}
