/**
 * Which pools an allocation may use, and in what order (Calico's `determinePools` plus the Enterprise AWS
 * rules), with the reason every other pool was skipped. Pure: resources in, decision out.
 */
import { CNI_IPV4_POOLS, parsePoolList } from '../api/annotations.js';
import type { IPPool } from '../api/kinds/ip-pool.js';
import type { Labels } from '../api/selector/index.js';
import { getNamespaceSelector, getSelector } from '../api/selector/index.js';
import { EgwError } from '../platform/errors.js';
import { formatIpv4Net, parseIpv4Net, type Ipv4Net } from '../platform/ipv4.js';
import type { Exclusions } from './exclusions.js';
import { awsSubnetExclusions } from './exclusions.js';
import type { IntendedUse } from './records.js';

/** The node label that holds a node's availability zone. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** A pool as IPAM sees it: Calico's defaults applied, CIDR parsed. */
export interface PoolInfo {
  name: string;
  /** Canonical CIDR text. */
  cidr: string;
  net: Ipv4Net;
  blockSize: number;
  disabled: boolean;
  allowedUses: readonly string[];
  nodeSelector: string;
  namespaceSelector: string | undefined;
  manual: boolean;
  awsSubnetID: string | undefined;
}

/** The facts of an AWS subnet IPAM needs (from the `AWSSubnet` records). */
export interface SubnetFacts {
  cidr: string;
  availabilityZone: string;
}

/** A pool allocation may use, with the addresses it must skip. */
export interface CandidatePool {
  pool: PoolInfo;
  /** Reservations, plus the AWS subnet's reserved addresses for AWS-backed pools. */
  exclusions: Exclusions;
}

/** Why a pool was not used. */
export type SkipReason =
  | 'disabled'
  | 'not selected'
  | 'namespace not selected'
  | 'manual'
  | 'wrong use'
  | 'not AWS-backed'
  | 'AWS-backed'
  | 'other subnet'
  | 'unknown subnet'
  | 'wrong zone'
  | 'no zone'
  | 'unusable'
  | 'full'
  | 'reserved';

export interface SkippedPool {
  name: string;
  cidr: string;
  reason: SkipReason;
  /** The facts behind the reason, in words. */
  detail: string;
}

/** Where the list of requested pools came from (for messages). */
export type PoolRequestSource = 'pod annotation' | 'namespace annotation' | 'request';

/** The inputs of {@link choosePools}. */
export interface PoolChoiceInput {
  pools: readonly IPPool[];
  node: { name: string; labels: Labels };
  /** The pod's namespace (name and labels), for pools with a namespaceSelector. */
  namespace?: { name: string; labels: Labels } | undefined;
  /** Pools named explicitly, in order (names or CIDRs); selectors are then ignored. */
  requested?: { pools: readonly string[]; source: PoolRequestSource } | undefined;
  use: IntendedUse;
  /** True when AWS-backed pools are wanted (the pod requests projectcalico.org/aws-secondary-ipv4). */
  aws: boolean;
  /** Only pools backed by this subnet (the agent's ENI primary IPs). */
  awsSubnetID?: string | undefined;
  /** AWS subnet facts by subnet ID. */
  subnets: ReadonlyMap<string, SubnetFacts>;
  /** IPReservation addresses. */
  reserved: Exclusions;
}

export interface PoolChoice {
  candidates: CandidatePool[];
  skipped: SkippedPool[];
}

/** Calico's defaults for the fields IPAM reads (kept here so the CNI plugin need not load the schemas). */
export function poolInfo(pool: IPPool): PoolInfo | undefined {
  const net = parseIpv4Net(pool.spec.cidr.includes('/') ? pool.spec.cidr : '-', { hostBits: 'clear', bareAddress: true });
  if (net === undefined) return undefined;
  const selector = pool.spec.nodeSelector;
  return {
    name: pool.metadata.name,
    cidr: formatIpv4Net(net),
    net,
    blockSize: pool.spec.blockSize ?? 26,
    disabled: pool.spec.disabled === true,
    allowedUses: pool.spec.allowedUses ?? ['Workload', 'Tunnel'],
    nodeSelector: selector === undefined || selector.trim() === '' ? 'all()' : selector.trim(),
    namespaceSelector: pool.spec.namespaceSelector === undefined || pool.spec.namespaceSelector.trim() === '' ? undefined : pool.spec.namespaceSelector.trim(),
    manual: pool.spec.assignmentMode === 'Manual',
    awsSubnetID: pool.spec.awsSubnetID === undefined || pool.spec.awsSubnetID === '' ? undefined : pool.spec.awsSubnetID,
  };
}

/**
 * The pools to try, in order, and why each other pool was skipped:
 * - with `requested` pools: exactly those, in the given order; each must exist (by name or CIDR) and be
 *   enabled, else `NoQualifiedPool` with Calico's message; selectors are ignored;
 * - otherwise every enabled, `Automatic` pool whose nodeSelector matches the node (`!all()` never does)
 *   and whose namespaceSelector (if any) matches the pod's namespace, in name order;
 * then, for both: `allowedUses` must include `use`; AWS-backed pools only when `aws` is set and never
 * otherwise; an AWS-backed pool only when its subnet's zone equals the node's zone label.
 * Throws `NoQualifiedPool` only for a requested pool that does not exist or is disabled; an empty
 * candidate list is the caller's to report (see {@link exhaustionError}).
 */
export function choosePools(input: PoolChoiceInput): PoolChoice {
  const skipped: SkippedPool[] = [];
  const infos: { info: PoolInfo | undefined; pool: IPPool }[] = input.pools.map((pool) => ({ pool, info: poolInfo(pool) }));
  const skip = (info: PoolInfo | { name: string; cidr: string }, reason: SkipReason, detail: string): void => {
    skipped.push({ name: info.name, cidr: info.cidr, reason, detail });
  };
  const ordered: PoolInfo[] = [];
  if (input.requested !== undefined) {
    for (const entry of input.requested.pools) {
      const asNet = parseIpv4Net(entry.includes('/') ? entry : '-', { hostBits: 'clear', bareAddress: true });
      const found = infos.find(({ info, pool }) =>
        asNet !== undefined ? info !== undefined && info.net.first === asNet.first && info.net.prefix === asNet.prefix : pool.metadata.name === entry,
      );
      if (found === undefined || found.info === undefined || found.info.disabled) {
        throw new EgwError('NoQualifiedPool', `the given pool (${entry}) does not exist, or is not enabled`, {
          hint: `${input.requested.source === 'request' ? 'the requested pools' : `the ${CNI_IPV4_POOLS} ${input.requested.source}`} must name existing, enabled IPPools (by name or CIDR)`,
          details: { pool: entry, source: input.requested.source },
        });
      }
      if (!ordered.includes(found.info)) ordered.push(found.info);
    }
  } else {
    const nodeLabels = input.node.labels;
    for (const { info, pool } of [...infos].sort((a, b) => (a.pool.metadata.name < b.pool.metadata.name ? -1 : 1))) {
      if (info === undefined) {
        skip({ name: pool.metadata.name, cidr: pool.spec.cidr }, 'unusable', 'not an IPv4 pool (egw allocates IPv4 only)');
        continue;
      }
      if (info.disabled) {
        skip(info, 'disabled', 'the pool is disabled');
        continue;
      }
      if (info.manual) {
        skip(info, 'manual', 'assignmentMode Manual: used only when named in the ipv4pools annotation');
        continue;
      }
      if (!selects(info.nodeSelector, nodeLabels, false)) {
        skip(info, 'not selected', `nodeSelector "${info.nodeSelector}" does not select node ${input.node.name}`);
        continue;
      }
      if (info.namespaceSelector !== undefined) {
        const ns = input.namespace;
        if (ns === undefined || !selects(info.namespaceSelector, ns.labels, true)) {
          skip(info, 'namespace not selected', `namespaceSelector "${info.namespaceSelector}" does not select ${ns === undefined ? 'a request without a namespace' : `namespace ${ns.name}`}`);
          continue;
        }
      }
      ordered.push(info);
    }
  }

  const candidates: CandidatePool[] = [];
  const zone = input.node.labels[ZONE_LABEL];
  for (const info of ordered) {
    if (!info.allowedUses.includes(input.use)) {
      skip(info, 'wrong use', `allowedUses [${info.allowedUses.join(', ')}] does not include ${input.use}`);
      continue;
    }
    if (info.blockSize < info.net.prefix || info.blockSize > 32) {
      skip(info, 'unusable', `blockSize ${info.blockSize} does not fit the pool /${info.net.prefix}`);
      continue;
    }
    if (info.awsSubnetID === undefined) {
      if (input.aws) {
        skip(info, 'not AWS-backed', `the ${input.use === 'Workload' ? 'pod requests projectcalico.org/aws-secondary-ipv4' : 'request is for an AWS address'}, and this pool has no awsSubnetID`);
        continue;
      }
      candidates.push({ pool: info, exclusions: input.reserved });
      continue;
    }
    if (!input.aws) {
      skip(info, 'AWS-backed', 'AWS-backed pools serve only pods that request projectcalico.org/aws-secondary-ipv4');
      continue;
    }
    if (input.awsSubnetID !== undefined && info.awsSubnetID !== input.awsSubnetID) {
      skip(info, 'other subnet', `backed by ${info.awsSubnetID}, not ${input.awsSubnetID}`);
      continue;
    }
    const facts = input.subnets.get(info.awsSubnetID);
    const subnetNet = facts === undefined ? undefined : parseIpv4Net(facts.cidr, { hostBits: 'clear', bareAddress: true });
    if (facts === undefined || subnetNet === undefined) {
      skip(info, 'unknown subnet', `no AWSSubnet record for ${info.awsSubnetID} (its zone is unknown)`);
      continue;
    }
    if (zone === undefined || zone === '') {
      skip(info, 'no zone', `node ${input.node.name} has no ${ZONE_LABEL} label`);
      continue;
    }
    if (facts.availabilityZone !== zone) {
      skip(info, 'wrong zone', `subnet ${info.awsSubnetID} is in ${facts.availabilityZone}, node ${input.node.name} is in ${zone}`);
      continue;
    }
    candidates.push({ pool: info, exclusions: input.reserved.union(awsSubnetExclusions(subnetNet)) });
  }
  return { candidates, skipped };
}

function selects(selector: string, labels: Labels, namespace: boolean): boolean {
  try {
    return (namespace ? getNamespaceSelector(selector) : getSelector(selector)).evaluate(labels);
  } catch {
    // An invalid selector (rejected by validation, but stored values are not trusted) selects nothing.
    return false;
  }
}

/**
 * The pools a pod asks for: its own `cni.projectcalico.org/ipv4pools` annotation, else its namespace's,
 * else `fallback` (the CNI configuration's `ipv4_pools`), else none (automatic choice). A malformed
 * annotation is `InvalidInput`.
 */
export function requestedPools(
  podAnnotations: Readonly<Record<string, string>> | undefined,
  namespaceAnnotations: Readonly<Record<string, string>> | undefined,
  fallback?: readonly string[],
): { pools: readonly string[]; source: PoolRequestSource } | undefined {
  for (const [annotations, source] of [
    [podAnnotations, 'pod annotation'],
    [namespaceAnnotations, 'namespace annotation'],
  ] as const) {
    const text = annotations?.[CNI_IPV4_POOLS];
    if (text === undefined) continue;
    const list = parsePoolList(text);
    if (list === undefined) {
      throw new EgwError('InvalidInput', `the ${source} ${CNI_IPV4_POOLS} is not a JSON array of strings: ${text}`, {
        hint: 'a JSON array of IPPool names or CIDRs, such as ["egress-red-west-1"]',
      });
    }
    return { pools: list, source };
  }
  return fallback === undefined || fallback.length === 0 ? undefined : { pools: fallback, source: 'request' };
}

/**
 * The error when no address could be had: `PoolExhausted` when at least one pool qualified and every
 * qualified pool was full (or wholly reserved), else `NoQualifiedPool`. The message names every pool and
 * why it was skipped.
 */
export function exhaustionError(subject: string, skipped: readonly SkippedPool[], triedAny: boolean): EgwError {
  const list = skipped.map((s) => `${s.name} (${s.cidr}): ${s.reason} — ${s.detail}`);
  const what = triedAny ? 'every qualified pool is full' : 'no pool qualifies';
  const message = skipped.length === 0 ? `no IP address for ${subject}: there are no IPv4 pools` : `no IP address for ${subject}: ${what}; ${list.join('; ')}`;
  return new EgwError(triedAny ? 'PoolExhausted' : 'NoQualifiedPool', message, {
    hint: triedAny ? 'release addresses (egw ipam release / egw ipam gc) or add a pool' : 'check the pools (egw get ippools), the ipv4pools annotation, the node labels and the AWSSubnet records',
    details: { skipped: skipped.map((s) => ({ ...s })) },
  });
}
