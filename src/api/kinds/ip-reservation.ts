/**
 * `projectcalico.org/v3` IPReservation (cluster-scoped): addresses IPAM never hands out automatically.
 */
import { Type, type Static } from '@sinclair/typebox';
import { formatCidr, parseCidrOrIp } from '../ip.js';
import type { IssueSink } from '../issues.js';
import { LooseStatus, Resource } from '../schema-kit.js';

export const IPReservationSpecSchema = Type.Object({
  reservedCIDRs: Type.Optional(
    Type.Array(Type.String({ 'x-egw-format-hint': 'a CIDR such as 100.64.0.0/30 or an IP such as 100.64.3.255' }), {
      description: 'CIDRs or bare IP addresses (IPv4 or IPv6) that IPAM must skip when assigning automatically.',
    }),
  ),
});

export const IPReservationSchema = Resource('projectcalico.org/v3', 'IPReservation', IPReservationSpecSchema, LooseStatus(), {
  description: 'Addresses Calico IPAM never assigns automatically (e.g. the first four and the last address of a VPC subnet).',
});

/** An IPReservation as stored. Entries are kept exactly as written (bare IPs stay bare). */
export type IPReservation = Static<typeof IPReservationSchema>;

/** IPReservation has no defaults; returns a copy. */
export function defaultIPReservation(r: IPReservation): IPReservation {
  return { ...r, spec: { ...r.spec } };
}

/** Each entry must be a CIDR or an IP; host bits and duplicates are worth a warning. */
export function validateIPReservation(r: IPReservation, sink: IssueSink): void {
  const seen = new Map<string, number>();
  (r.spec.reservedCIDRs ?? []).forEach((entry, i) => {
    const path = ['spec', 'reservedCIDRs', i];
    const parsed = parseCidrOrIp(entry);
    if (parsed === undefined) {
      sink.error(path, 'IPReservation.invalid-entry', `"${entry}" is neither a CIDR nor an IP address`, 'a CIDR such as 100.64.0.0/30 or an IP such as 100.64.3.255');
      return;
    }
    const canonical = formatCidr(parsed.cidr);
    if (parsed.hostBitsSet) {
      sink.warn(path, 'IPReservation.host-bits', `"${entry}" has host bits set; it reserves ${canonical}`, canonical);
    }
    const first = seen.get(canonical);
    if (first !== undefined) {
      sink.warn(path, 'IPReservation.duplicate', `"${entry}" repeats reservedCIDRs[${first}]`, 'each range once');
    } else seen.set(canonical, i);
  });
}
