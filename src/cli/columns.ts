import type { AnyResource } from '../api/index.js';
import { AWS_SECONDARY_IPV4_RESOURCE } from '../api/index.js';

/** The table columns `egw get` shows for a kind (after NAMESPACE and NAME, before AGE). */
export function columnsFor(kind: string): { header: string[]; cells: (r: AnyResource) => string[] } {
  const none = '<none>';
  const list = (v: readonly string[] | undefined): string => (v === undefined || v.length === 0 ? none : v.join(','));
  switch (kind) {
    case 'IPPool':
      return {
        header: ['CIDR', 'BLOCKSIZE', 'ALLOWEDUSES', 'AWSSUBNETID', 'NODESELECTOR', 'DISABLED'],
        cells: (r) => (r.kind !== 'IPPool' ? [] : [r.spec.cidr, String(r.spec.blockSize ?? ''), list(r.spec.allowedUses), r.spec.awsSubnetID ?? none, r.spec.nodeSelector ?? '', String(r.spec.disabled ?? false)]),
      };
    case 'IPReservation':
      return { header: ['RESERVEDCIDRS'], cells: (r) => (r.kind !== 'IPReservation' ? [] : [list(r.spec.reservedCIDRs)]) };
    case 'FelixConfiguration':
      return {
        header: ['EGRESSIPSUPPORT', 'AWSSECONDARYIPSUPPORT'],
        cells: (r) => (r.kind !== 'FelixConfiguration' ? [] : [String(r.spec.egressIPSupport ?? ''), String(r.spec.awsSecondaryIPSupport ?? '')]),
      };
    case 'EgressGatewayPolicy':
      return {
        header: ['RULES'],
        cells: (r) =>
          r.kind !== 'EgressGatewayPolicy'
            ? []
            : [(r.spec.rules ?? []).map((rule) => `${rule.destination?.cidr ?? '0.0.0.0/0'}→${rule.gateway === undefined ? 'no-gateway' : rule.gateway.selector}`).join('; ')],
      };
    case 'EgressGateway':
      return {
        header: ['REPLICAS', 'IPPOOLS', 'NATIVEIP', 'STATE'],
        cells: (r) =>
          r.kind !== 'EgressGateway'
            ? []
            : [String(r.spec.replicas ?? 1), (r.spec.ipPools ?? []).map((p) => p.name ?? p.cidr ?? '').join(','), String(r.spec.aws?.nativeIP ?? 'Disabled'), r.status?.state ?? none],
      };
    case 'Namespace':
      return {
        header: ['LABELS'],
        cells: (r) => [Object.entries(r.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || none],
      };
    case 'Pod':
      return {
        header: ['NODE', 'IP', 'PHASE'],
        cells: (r) => (r.kind !== 'Pod' ? [] : [r.spec.nodeName ?? none, r.status?.podIP ?? none, r.status?.phase ?? 'Pending']),
      };
    case 'Node':
      return {
        header: ['ZONE', 'INSTANCETYPE', 'AWS-SECONDARY-IPV4'],
        cells: (r) =>
          r.kind !== 'Node'
            ? []
            : [
                r.metadata.labels?.['topology.kubernetes.io/zone'] ?? none,
                r.metadata.labels?.['node.kubernetes.io/instance-type'] ?? none,
                String(r.status?.allocatable?.[AWS_SECONDARY_IPV4_RESOURCE] ?? none),
              ],
      };
    case 'AWSSubnet':
      return {
        header: ['CIDR', 'ZONE', 'VPC'],
        cells: (r) => (r.kind !== 'AWSSubnet' ? [] : [r.spec.cidr, r.spec.availabilityZone, r.spec.vpcID ?? none]),
      };
    default:
      return { header: [], cells: () => [] };
  }
}
