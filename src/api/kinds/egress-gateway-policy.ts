/**
 * `projectcalico.org/v3` EgressGatewayPolicy (cluster-scoped): per-destination choice of egress gateways,
 * matched by longest prefix. A rule without a gateway routes its destination normally.
 */
import { Type, type Static } from '@sinclair/typebox';
import { checkSelector, SELECTOR_EXAMPLE } from '../checks.js';
import { formatCidr, parseCidr, parseIp } from '../ip.js';
import type { IssueSink } from '../issues.js';
import { LooseStatus, Resource, StringEnum } from '../schema-kit.js';

export const GATEWAY_PREFERENCES = ['None', 'PreferNodeLocal'] as const;
export type GatewayPreference = (typeof GATEWAY_PREFERENCES)[number];

/** The destination of a rule without one. */
export const DEFAULT_DESTINATION = '0.0.0.0/0';

export const EgressGatewayRuleSchema = Type.Object({
  description: Type.Optional(Type.String()),
  destination: Type.Optional(
    Type.Object({
      cidr: Type.Optional(Type.String({ 'x-egw-format-hint': 'a CIDR such as 10.0.0.0/8', description: 'Destination network. Default 0.0.0.0/0.' })),
    }),
  ),
  gateway: Type.Optional(
    Type.Object({
      selector: Type.Optional(Type.String({ description: 'Selects the gateway pods (required when gateway is set).' })),
      namespaceSelector: Type.Optional(Type.String({ description: 'Selects the namespaces holding the gateways (required when gateway is set).' })),
      maxNextHops: Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647, description: 'At most this many gateways per client; 0 means all. Default 0.' })),
    }),
  ),
  gatewayPreference: Type.Optional(StringEnum(GATEWAY_PREFERENCES, { description: 'PreferNodeLocal uses gateways on the client node when there are any. Default None.', default: 'None' })),
});

export const EgressGatewayPolicySpecSchema = Type.Object({
  rules: Type.Optional(Type.Array(EgressGatewayRuleSchema, { description: 'Rules, matched by longest prefix of their destination.' })),
});

export const EgressGatewayPolicySchema = Resource('projectcalico.org/v3', 'EgressGatewayPolicy', EgressGatewayPolicySpecSchema, LooseStatus(), {
  description: 'Per-destination egress gateway choice for the namespaces and pods that name this policy.',
});

/** An EgressGatewayPolicy as stored. */
export type EgressGatewayPolicy = Static<typeof EgressGatewayPolicySchema>;
export type EgressGatewayRule = Static<typeof EgressGatewayRuleSchema>;

/** The rule's destination as written, or the default when it has none (empty cidr counts as none). */
function writtenDestination(rule: EgressGatewayRule): string {
  const cidr = rule.destination?.cidr;
  return cidr === undefined || cidr.trim() === '' ? DEFAULT_DESTINATION : cidr;
}

/**
 * The destination a rule stands for, normalised (host bits cleared), or undefined when it does not parse.
 * A rule without destination means 0.0.0.0/0.
 */
export function ruleDestination(rule: EgressGatewayRule): string | undefined {
  const parsed = parseCidr(writtenDestination(rule));
  return parsed === undefined ? undefined : formatCidr(parsed.cidr);
}

/**
 * Defaults: `destination.cidr` 0.0.0.0/0, `gatewayPreference` None, `gateway.maxNextHops` 0. Destinations
 * are stored normalised (host bits cleared), since that is what they mean. Pure and idempotent.
 */
export function defaultEgressGatewayPolicy(p: EgressGatewayPolicy): EgressGatewayPolicy {
  const rules = p.spec.rules?.map((rule): EgressGatewayRule => {
    const out: EgressGatewayRule = { ...rule };
    out.destination = { ...rule.destination, cidr: ruleDestination(rule) ?? writtenDestination(rule) };
    if (rule.gateway !== undefined) out.gateway = { ...rule.gateway, maxNextHops: rule.gateway.maxNextHops ?? 0 };
    out.gatewayPreference ??= 'None';
    return out;
  });
  return { ...p, spec: rules === undefined ? { ...p.spec } : { ...p.spec, rules } };
}

/** The policy rules of Calico's AWS page and egressgatewaypolicy reference (as written, before defaults). */
export function validateEgressGatewayPolicy(p: EgressGatewayPolicy, sink: IssueSink): void {
  const rules = p.spec.rules ?? [];
  const hasDestination = (r: EgressGatewayRule) => r.destination?.cidr !== undefined && r.destination.cidr.trim() !== '';
  if (!rules.some((r) => r.gateway !== undefined || hasDestination(r))) {
    sink.error(
      ['spec', 'rules'],
      'EgressGatewayPolicy.no-gateway-or-destination',
      rules.length === 0 ? 'the policy has no rules' : 'the policy has no rule that specifies a gateway or a destination',
      `at least one rule with a gateway (e.g. gateway: {namespaceSelector: "projectcalico.org/name == 'default'", selector: "egress-code == 'red'"}) or a destination (e.g. destination: {cidr: 10.0.0.0/8})`,
    );
  }

  const seen = new Map<string, number>();
  rules.forEach((rule, i) => {
    const base = ['spec', 'rules', i];
    if (rule.destination !== undefined && !hasDestination(rule)) {
      sink.warn([...base, 'destination'], 'EgressGatewayPolicy.empty-destination', 'destination has no cidr, so it means 0.0.0.0/0', 'destination: {cidr: …}, or no destination for 0.0.0.0/0');
    }
    const written = writtenDestination(rule);
    const parsed = parseCidr(written);
    const cidrPath = [...base, 'destination', 'cidr'];
    if (parsed === undefined) {
      const ip = parseIp(written);
      sink.error(
        cidrPath,
        'EgressGatewayPolicy.invalid-destination',
        `"${written}" is not a CIDR`,
        ip === undefined ? 'a CIDR such as 10.0.0.0/8' : `a CIDR such as ${written}/${ip.version === 4 ? 32 : 128}`,
      );
    } else {
      const normal = formatCidr(parsed.cidr);
      if (parsed.hostBitsSet) {
        sink.warn(cidrPath, 'EgressGatewayPolicy.destination-host-bits', `"${written}" has host bits set; it means ${normal}`, normal);
      }
      if (parsed.cidr.version === 6) {
        sink.warn(cidrPath, 'EgressGatewayPolicy.ipv6-destination', `IPv6 destination ${normal} is ignored: egress gateways carry IPv4 traffic only`, 'an IPv4 CIDR');
      }
      const first = seen.get(normal);
      if (first !== undefined) {
        const what = hasDestination(rule) ? `destination ${normal}` : `destination ${normal} (the default when destination is omitted)`;
        sink.error(
          hasDestination(rule) ? cidrPath : base,
          'EgressGatewayPolicy.duplicate-destination',
          `${what} is the same as the destination of rules[${first}]`,
          'each destination in one rule only (a rule without destination means 0.0.0.0/0)',
        );
      } else seen.set(normal, i);
    }

    const gw = rule.gateway;
    if (gw !== undefined) {
      for (const field of ['selector', 'namespaceSelector'] as const) {
        const text = gw[field];
        const path = [...base, 'gateway', field];
        if (text === undefined || text.trim() === '') {
          sink.error(
            path,
            'EgressGatewayPolicy.empty-selector',
            `${field} is ${text === undefined ? 'missing' : 'empty'} (required when gateway is set)`,
            field === 'selector' ? SELECTOR_EXAMPLE : `a namespace selector such as "projectcalico.org/name == 'default'"`,
          );
        } else {
          checkSelector(sink, path, 'EgressGatewayPolicy.invalid-selector', text);
        }
      }
    } else if (rule.gatewayPreference === 'PreferNodeLocal') {
      sink.warn([...base, 'gatewayPreference'], 'EgressGatewayPolicy.preference-without-gateway', 'gatewayPreference has no effect on a rule without a gateway', 'a gateway on this rule, or no gatewayPreference');
    }
  });
}
