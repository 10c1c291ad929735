/**
 * `projectcalico.org/v3` IPPool (cluster-scoped): a range of addresses Calico IPAM hands out, optionally
 * backed by an AWS VPC subnet (`awsSubnetID`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { checkSelector, isAwsSubnetId, AWS_SUBNET_ID_PATTERN } from '../checks.js';
import { cidrsOverlap, formatCidr, parseCidr } from '../ip.js';
import type { IssueSink } from '../issues.js';
import { selectorUsesGlobal } from '../selector/index.js';
import { LooseStatus, Resource, StringEnum } from '../schema-kit.js';

export const ALLOWED_USES = ['Workload', 'Tunnel', 'LoadBalancer', 'HostSecondaryInterface', 'L2Workload'] as const;
export type AllowedUse = (typeof ALLOWED_USES)[number];
export const ENCAPSULATION_MODES = ['Never', 'Always', 'CrossSubnet'] as const;
export const ASSIGNMENT_MODES = ['Automatic', 'Manual'] as const;

export const IPPoolSpecSchema = Type.Object({
  cidr: Type.String({ maxLength: 48, 'x-egw-format-hint': 'a CIDR such as 100.64.0.4/30', description: 'The pool range.' }),
  blockSize: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 128, description: 'Prefix length of the blocks IPAM hands to nodes. Default 26 (IPv4), 122 (IPv6); 32 for AWS-backed pools.' }),
  ),
  allowedUses: Type.Optional(Type.Array(StringEnum(ALLOWED_USES), { maxItems: 10, description: 'What the addresses may be used for. Default [Workload, Tunnel].' })),
  awsSubnetID: Type.Optional(Type.String({ description: 'The VPC subnet that backs this pool (makes it AWS-backed).' })),
  nodeSelector: Type.Optional(Type.String({ maxLength: 1024, description: 'Nodes that use this pool automatically. Default all().' })),
  namespaceSelector: Type.Optional(Type.String({ maxLength: 1024, description: 'Namespaces whose pods use this pool automatically.' })),
  disableBGPExport: Type.Optional(Type.Boolean({ description: 'Do not advertise this pool over BGP. Default false.' })),
  natOutgoing: Type.Optional(Type.Boolean({ description: 'SNAT traffic leaving the cluster to the node IP. Default false.' })),
  vxlanMode: Type.Optional(StringEnum(ENCAPSULATION_MODES, { description: 'Default Never.' })),
  ipipMode: Type.Optional(StringEnum(ENCAPSULATION_MODES, { description: 'Default Never.' })),
  disabled: Type.Optional(Type.Boolean({ description: 'Never assign from this pool. Default false.' })),
  assignmentMode: Type.Optional(StringEnum(ASSIGNMENT_MODES, { description: 'Manual pools are used only when named explicitly. Default Automatic.' })),
});

export const IPPoolSchema = Resource('projectcalico.org/v3', 'IPPool', IPPoolSpecSchema, LooseStatus(), {
  description: 'A range of pod addresses; AWS-backed when awsSubnetID is set.',
});

/** An IPPool as stored. */
export type IPPool = Static<typeof IPPoolSchema>;
export type IPPoolSpec = Static<typeof IPPoolSpecSchema>;

/** Calico's allowed `allowedUses` combinations (order does not matter). */
const ALLOWED_COMBINATIONS: readonly (readonly AllowedUse[])[] = [
  ['Tunnel', 'Workload'],
  ['Tunnel'],
  ['Workload'],
  ['LoadBalancer'],
  ['HostSecondaryInterface'],
  ['L2Workload'],
];

const LINK_LOCAL_V4 = parseCidr('169.254.0.0/16')!.cidr;
const LINK_LOCAL_V6 = parseCidr('fe80::/10')!.cidr;

/** Calico's default block size for a pool CIDR (26 for IPv4, 122 for IPv6). */
export function defaultBlockSize(cidr: string): number | undefined {
  const parsed = parseCidr(cidr);
  if (parsed === undefined) return undefined;
  return parsed.cidr.version === 4 ? 26 : 122;
}

/** True when the pool is AWS-backed. */
export function isAwsBacked(pool: IPPool): boolean {
  return pool.spec.awsSubnetID !== undefined && pool.spec.awsSubnetID !== '';
}

/**
 * Calico's defaults: blockSize 26/122, allowedUses [Workload, Tunnel], nodeSelector all(), ipipMode and
 * vxlanMode Never, natOutgoing/disabled/disableBGPExport false, assignmentMode Automatic. A strictly
 * masked CIDR is rewritten in canonical form (Calico stores `cidr.String()`); one with host bits set is
 * left alone so validation can reject it. Pure and idempotent.
 */
export function defaultIPPool(pool: IPPool): IPPool {
  const spec: IPPoolSpec = { ...pool.spec };
  const parsed = parseCidr(spec.cidr);
  if (parsed !== undefined && !parsed.hostBitsSet) spec.cidr = formatCidr(parsed.cidr);
  if (spec.blockSize === undefined && parsed !== undefined) spec.blockSize = parsed.cidr.version === 4 ? 26 : 122;
  spec.allowedUses ??= ['Workload', 'Tunnel'];
  if (spec.nodeSelector === undefined || spec.nodeSelector.trim() === '') spec.nodeSelector = 'all()';
  spec.ipipMode ??= 'Never';
  spec.vxlanMode ??= 'Never';
  spec.natOutgoing ??= false;
  spec.disabled ??= false;
  spec.disableBGPExport ??= false;
  spec.assignmentMode ??= 'Automatic';
  return { ...pool, spec };
}

/** Calico's and egw's single-resource rules for an IPPool (as written, before defaults). */
export function validateIPPool(pool: IPPool, sink: IssueSink): void {
  const spec = pool.spec;
  const at = (field: string) => ['spec', field];
  const parsed = parseCidr(spec.cidr);
  if (parsed === undefined) {
    sink.error(at('cidr'), 'IPPool.invalid-cidr', `IPPool CIDR must be a valid subnet ("${spec.cidr}" is not a CIDR)`, 'a CIDR such as 100.64.0.4/30');
  } else {
    const cidr = parsed.cidr;
    if (parsed.hostBitsSet) {
      sink.error(at('cidr'), 'IPPool.cidr-not-masked', `IPPool CIDR is not strictly masked ("${spec.cidr}" has host bits set)`, formatCidr(cidr));
    }
    if (cidr.version === 4 && cidrsOverlap(cidr, LINK_LOCAL_V4)) {
      sink.error(at('cidr'), 'IPPool.link-local', 'IPPool CIDR overlaps with IPv4 Link Local range 169.254.0.0/16', 'a CIDR outside 169.254.0.0/16');
    }
    if (cidr.version === 6 && cidrsOverlap(cidr, LINK_LOCAL_V6)) {
      sink.error(at('cidr'), 'IPPool.link-local', 'IPPool CIDR overlaps with IPv6 Link Local range fe80::/10', 'a CIDR outside fe80::/10');
    }
    const blockSize = spec.blockSize ?? (cidr.version === 4 ? 26 : 122);
    const defaulted = spec.blockSize === undefined ? ' (the default)' : '';
    if (cidr.version === 4 && (blockSize < 20 || blockSize > 32)) {
      sink.error(at('blockSize'), 'IPPool.block-size-range', `IPv4 block size must be between 20 and 32 (got ${blockSize})`, 'blockSize from 20 to 32');
    } else if (cidr.version === 6 && (blockSize < 116 || blockSize > 128)) {
      sink.error(at('blockSize'), 'IPPool.block-size-range', `IPv6 block size must be between 116 and 128 (got ${blockSize})`, 'blockSize from 116 to 128');
    } else if (spec.disabled !== true && cidr.prefix > blockSize) {
      sink.error(
        at('cidr'),
        'IPPool.too-small',
        `IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size. (/${cidr.prefix} is smaller than blockSize ${blockSize}${defaulted})`,
        `a CIDR of /${blockSize} or larger, or blockSize: ${cidr.prefix}`,
      );
    }
    if (isAwsBacked(pool)) {
      if (cidr.version !== 4) {
        sink.error(at('cidr'), 'IPPool.aws-ipv6', 'AWS-backed IP pools (awsSubnetID set) must be IPv4', 'an IPv4 CIDR inside the VPC subnet');
      }
      if (blockSize !== 32) {
        sink.error(
          at('blockSize'),
          'IPPool.aws-block-size',
          `AWS-backed IP pools must use blockSize 32 (got ${blockSize}${defaulted})`,
          'blockSize: 32, which aligns IPAM with the per-IP AWS fabric',
        );
      }
    }
    if (cidr.version === 6 && (spec.ipipMode ?? 'Never') !== 'Never') {
      sink.error(at('ipipMode'), 'IPPool.ipip-ipv6', 'IPIP is not supported on IPv6 pools', 'ipipMode: Never');
    }
  }

  if (spec.awsSubnetID !== undefined && spec.awsSubnetID !== '' && !isAwsSubnetId(spec.awsSubnetID)) {
    sink.error(
      at('awsSubnetID'),
      'IPPool.aws-subnet-id',
      `"${spec.awsSubnetID}" is not a well-formed AWS subnet ID`,
      `"subnet-" followed by 8 or 17 lowercase hex digits, e.g. subnet-0123456789abcdef0 (egw accepts /${AWS_SUBNET_ID_PATTERN}/)`,
    );
  }

  const uses = spec.allowedUses;
  if (uses !== undefined) {
    if (uses.length === 0) {
      sink.error(at('allowedUses'), 'IPPool.allowed-uses-empty', 'allowedUses must not be empty', 'e.g. [Workload] (or omit it for the default [Workload, Tunnel])');
    } else {
      const set = new Set(uses);
      const sorted = [...set].sort();
      const ok = set.size === uses.length && ALLOWED_COMBINATIONS.some((c) => c.length === sorted.length && [...c].sort().every((u, i) => u === sorted[i]));
      if (!ok) {
        sink.error(
          at('allowedUses'),
          'IPPool.allowed-uses-combination',
          `allowedUses [${uses.join(', ')}] is not an allowed combination`,
          'one of [Workload, Tunnel], [Workload], [Tunnel], [LoadBalancer], [HostSecondaryInterface], [L2Workload]',
        );
      }
    }
  }
  const effectiveUses = uses ?? ['Workload', 'Tunnel'];
  const ipip = spec.ipipMode ?? 'Never';
  const vxlan = spec.vxlanMode ?? 'Never';
  if (ipip !== 'Never' && vxlan !== 'Never') {
    sink.error(at('vxlanMode'), 'IPPool.ipip-and-vxlan', 'ipipMode and vxlanMode cannot both be enabled', 'at most one of ipipMode / vxlanMode other than Never');
  }
  if (effectiveUses.includes('LoadBalancer') && (ipip !== 'Never' || vxlan !== 'Never')) {
    sink.error(at(ipip !== 'Never' ? 'ipipMode' : 'vxlanMode'), 'IPPool.loadbalancer-encap', 'LoadBalancer IP pool cannot have IPIP or VXLAN enabled', 'ipipMode: Never and vxlanMode: Never');
  }

  if (spec.nodeSelector !== undefined) {
    if (checkSelector(sink, at('nodeSelector'), 'IPPool.invalid-node-selector', spec.nodeSelector) && selectorUsesGlobal(spec.nodeSelector)) {
      sink.error(at('nodeSelector'), 'IPPool.global-selector', 'global() cannot be used in an IPPool selector', `a node selector such as "!all()" or "kubernetes.io/os == 'linux'"`);
    }
  }
  if (spec.namespaceSelector !== undefined) {
    if (checkSelector(sink, at('namespaceSelector'), 'IPPool.invalid-namespace-selector', spec.namespaceSelector) && selectorUsesGlobal(spec.namespaceSelector)) {
      sink.error(at('namespaceSelector'), 'IPPool.global-selector', 'global() cannot be used in an IPPool selector', `a namespace selector such as "projectcalico.org/name == 'red'"`);
    }
    if (effectiveUses.includes('Tunnel')) {
      sink.error(
        at('namespaceSelector'),
        'IPPool.tunnel-namespace-selector',
        `namespaceSelector cannot be set on a pool used for Tunnel addresses${uses === undefined ? ' (allowedUses defaults to [Workload, Tunnel])' : ''}`,
        'allowedUses: [Workload] together with namespaceSelector',
      );
    }
  }

  if (isAwsBacked(pool)) {
    // The AWS page's "must have" list; Calico's own validator for these is not public, so these warn.
    if (ipip !== 'Never' || vxlan !== 'Never') {
      sink.warn(at(ipip !== 'Never' ? 'ipipMode' : 'vxlanMode'), 'IPPool.aws-encapsulation', 'AWS-backed pools should not encapsulate: the AWS fabric routes their addresses natively', 'ipipMode: Never and vxlanMode: Never');
    }
    if (spec.disableBGPExport !== true) {
      sink.warn(at('disableBGPExport'), 'IPPool.aws-bgp-export', 'AWS-backed pools should not be exported over BGP (routing conflicts with IPIP/BGP networking)', 'disableBGPExport: true');
    }
    if (effectiveUses.some((u) => u !== 'Workload' && u !== 'HostSecondaryInterface')) {
      sink.warn(at('allowedUses'), 'IPPool.aws-allowed-uses', `AWS-backed pools are used for workloads or secondary-ENI host addresses, not [${effectiveUses.join(', ')}]`, '[Workload] (gateway pods) or [HostSecondaryInterface] (Secondary-IP-per-workload mode)');
    }
  } else if (effectiveUses.includes('HostSecondaryInterface')) {
    sink.warn(at('awsSubnetID'), 'IPPool.host-secondary-without-subnet', 'a HostSecondaryInterface pool supplies primary IPs of secondary ENIs and is useless without awsSubnetID', 'awsSubnetID: subnet-…');
  }
}
