/**
 * Checks that need more than one resource, run at apply time over the documents of one apply together
 * with what is already stored. Pure; the result does not depend on the order of the documents.
 */
import { ALLOWED_ELASTIC_IPS, ALLOWED_IPV4_POOLS, describeAllowList, elasticIpsNotAllowed, poolsNotAllowed, readAllowList, type PoolName } from './allow-list.js';
import {
  CNI_AWS_ELASTIC_IPS,
  CNI_IPV4_POOLS,
  EGRESS_GATEWAY_POLICY,
  EGRESS_MAX_NEXT_HOPS,
  EGRESS_NAMESPACE_SELECTOR,
  EGRESS_SELECTOR,
  parsePoolList,
  parseStringArray,
} from './annotations.js';
import type { Namespace } from './kinds/kubernetes.js';
import { cidrContains, cidrLast, cidrsOverlap, formatCidr, parseCidr, parseCidrOrIp, type Cidr } from './ip.js';
import { IssueSink, type DocumentLocation, type Issue } from './issues.js';
import type { AnyResource } from './kinds.js';
import type { AWSSubnet } from './kinds/aws-subnet.js';
import { nativeIP, type EgressGateway, type EgressGatewayIPPoolRef } from './kinds/egress-gateway.js';
import { effectiveFelixSettings, type FelixConfiguration } from './kinds/felix-configuration.js';
import { defaultBlockSize, isAwsBacked, type IPPool } from './kinds/ip-pool.js';
import { describeDocument } from './manifests.js';

/** A validated resource of the current apply, with where it came from. */
export interface IncomingResource {
  readonly resource: AnyResource;
  readonly location: DocumentLocation;
}

/** The store key of a resource: `kind/namespace/name` (namespace empty for cluster-scoped kinds). */
export function resourceKey(r: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;
}

function normal(cidr: string): string {
  const parsed = parseCidr(cidr);
  return parsed === undefined ? cidr : formatCidr(parsed.cidr);
}

function is<K extends AnyResource['kind']>(kind: K) {
  return (r: AnyResource): r is Extract<AnyResource, { kind: K }> => r.kind === kind;
}

/** The pools of the post-apply state, indexed for the lookups and the overlap check. */
interface PoolIndex {
  readonly byName: ReadonlyMap<string, IPPool>;
  /** Normalised CIDR → pool (the first by name when several share one). */
  readonly byCidr: ReadonlyMap<string, IPPool>;
  /** Pool name → names of the pools whose CIDR overlaps its own. */
  readonly overlaps: ReadonlyMap<string, readonly string[]>;
}

function indexPools(pools: readonly IPPool[]): PoolIndex {
  const byName = new Map(pools.map((p) => [p.metadata.name, p]));
  const byCidr = new Map<string, IPPool>();
  const intervals: { version: 4 | 6; start: bigint; end: bigint; prefix: number; name: string }[] = [];
  for (const p of [...pools].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const parsed = parseCidr(p.spec.cidr);
    if (parsed === undefined) continue;
    const key = formatCidr(parsed.cidr);
    if (!byCidr.has(key)) byCidr.set(key, p);
    intervals.push({ version: parsed.cidr.version, start: parsed.cidr.network, end: cidrLast(parsed.cidr), prefix: parsed.cidr.prefix, name: p.metadata.name });
  }
  // CIDRs are either nested or disjoint, so one sweep in (start, prefix) order finds every overlapping
  // pair: the stack holds the chain of networks containing the current one. O(n log n + pairs).
  intervals.sort((a, b) => a.version - b.version || (a.start < b.start ? -1 : a.start > b.start ? 1 : a.prefix - b.prefix));
  const overlaps = new Map<string, string[]>();
  const pair = (a: string, b: string) => {
    overlaps.set(a, [...(overlaps.get(a) ?? []), b]);
    overlaps.set(b, [...(overlaps.get(b) ?? []), a]);
  };
  const stack: typeof intervals = [];
  for (const cur of intervals) {
    while (stack.length > 0 && (stack[stack.length - 1]!.version !== cur.version || stack[stack.length - 1]!.end < cur.start)) stack.pop();
    for (const outer of stack) pair(outer.name, cur.name);
    stack.push(cur);
  }
  return { byName, byCidr, overlaps };
}

/** True when an EgressGateway ipPools entry designates `pool` (by name if it has one, else by CIDR). */
function designates(ref: EgressGatewayIPPoolRef, pool: IPPool): boolean {
  if (ref.name !== undefined && ref.name !== '') return ref.name === pool.metadata.name;
  return ref.cidr !== undefined && ref.cidr !== '' && normal(ref.cidr) === normal(pool.spec.cidr);
}

/** The pool an EgressGateway ipPools entry designates, if any. */
function findPool(ref: EgressGatewayIPPoolRef, pools: PoolIndex): IPPool | undefined {
  if (ref.name !== undefined && ref.name !== '') return pools.byName.get(ref.name);
  if (ref.cidr !== undefined && ref.cidr !== '') return pools.byCidr.get(normal(ref.cidr));
  return undefined;
}

/**
 * Cross-resource rules over the state the apply would produce (`existing` overlaid with `incoming`,
 * incoming winning by kind/namespace/name). Issues are reported against incoming documents only:
 * - errors: a resource defined twice in one apply; a new IPPool overlapping another (Calico's message);
 *   an IPPool whose cidr or blockSize changes (immutable in Calico); an AWS-backed pool outside its
 *   AWSSubnet's CIDR; an EgressGateway ipPools entry whose name and cidr disagree
 *   (`IPPool CIDR does not match with name`); an EgressGateway with aws.nativeIP Enabled using a pool
 *   without awsSubnetID (`AWS subnet ID must be set when NativeIP is enabled`), reported on whichever of
 *   the two is incoming;
 * - warnings: references to things that do not exist (yet): an IPPool named by an EgressGateway or a
 *   `cni.projectcalico.org/ipv4pools` annotation, an EgressGatewayPolicy named by an annotation, the
 *   namespace of an EgressGateway or Pod; egress configuration that FelixConfiguration `default` disables.
 */
export function crossCheck(incoming: readonly IncomingResource[], existing: readonly AnyResource[]): Issue[] {
  const sinks: IssueSink[] = [];
  const existingByKey = new Map(existing.map((r) => [resourceKey(r), r]));
  const state = new Map(existingByKey);
  const incomingKeys = new Set<string>();
  const firstAt = new Map<string, IncomingResource>();
  const entries = incoming.map((inc) => {
    const r = inc.resource;
    const sink = new IssueSink(inc.location, { kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name });
    sinks.push(sink);
    const key = resourceKey(r);
    const first = firstAt.get(key);
    if (first !== undefined) {
      sink.error(['metadata', 'name'], 'apply.duplicate', `${r.kind} "${r.metadata.name}" is defined twice in this apply (first at ${describeDocument(first.location)})`, 'each resource once per apply');
    } else firstAt.set(key, inc);
    state.set(key, r);
    incomingKeys.add(key);
    return { r, sink, key };
  });

  const all = [...state.values()];
  const pools = indexPools(all.filter(is('IPPool')));
  const subnets = new Map(all.filter(is('AWSSubnet')).map((s) => [s.metadata.name, s]));
  const policies = new Set(all.filter(is('EgressGatewayPolicy')).map((p) => p.metadata.name));
  // Namespaces every Kubernetes cluster has, whether or not they were ever applied to egw.
  const namespaces = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease', ...all.filter(is('Namespace')).map((n) => n.metadata.name)]);
  const felixDefault = all.find((r): r is FelixConfiguration => r.kind === 'FelixConfiguration' && r.metadata.name === 'default');
  const felix = effectiveFelixSettings(felixDefault);
  const storedGateways = all.filter(is('EgressGateway')).filter((g) => !incomingKeys.has(resourceKey(g)));
  const reserved = all
    .filter((r) => r.kind === 'IPReservation')
    .flatMap((r) => ((r.spec).reservedCIDRs ?? []).flatMap((t) => parseCidrOrIp(t)?.cidr ?? []));

  for (const { r, sink, key } of entries) {
    switch (r.kind) {
      case 'IPPool':
        checkPool(r, sink, existingByKey.get(key), pools, subnets, storedGateways);
        break;
      case 'AWSSubnet':
        checkSubnet(r, sink, [...pools.byName.values()].filter((p) => !incomingKeys.has(resourceKey(p))));
        break;
      case 'EgressGateway':
        checkGateway(r, sink, pools, namespaces, felix.awsSecondaryIPSupport, reserved);
        break;
      case 'Namespace':
      case 'Pod': {
        if (r.kind === 'Pod' && !namespaces.has(r.metadata.namespace ?? 'default')) {
          sink.warn(['metadata', 'namespace'], 'apply.namespace-missing', `Namespace "${r.metadata.namespace ?? 'default'}" does not exist (yet)`, 'the Namespace to be created first, or in the same apply');
        }
        checkClientAnnotations(r.kind, r.metadata.annotations, sink, pools, policies, felix.egressIPSupport);
        if (r.kind === 'Pod') {
          const ns = all.find((n): n is Namespace => n.kind === 'Namespace' && n.metadata.name === (r.metadata.namespace ?? 'default'));
          checkAllowLists(r.metadata.annotations, ns, sink, [...pools.byName.values()].map((p) => ({ name: p.metadata.name, cidr: p.spec.cidr })));
        }
        break;
      }
      default:
        break;
    }
  }
  return sinks.flatMap((s) => s.issues);
}

function checkPool(
  pool: IPPool,
  sink: IssueSink,
  old: AnyResource | undefined,
  pools: PoolIndex,
  subnets: ReadonlyMap<string, AWSSubnet>,
  otherGateways: readonly EgressGateway[],
): void {
  const parsed = parseCidr(pool.spec.cidr);
  if (old !== undefined && old.kind === 'IPPool') {
    if (normal(old.spec.cidr) !== normal(pool.spec.cidr)) {
      sink.error(['spec', 'cidr'], 'IPPool.cidr-immutable', `IPPool CIDR cannot be modified (stored: ${old.spec.cidr})`, `cidr: ${old.spec.cidr}, or a new IPPool (follow Calico's IP pool migration steps)`);
    }
    const oldBlock = old.spec.blockSize ?? defaultBlockSize(old.spec.cidr);
    const newBlock = pool.spec.blockSize ?? defaultBlockSize(pool.spec.cidr);
    if (oldBlock !== newBlock) {
      sink.error(['spec', 'blockSize'], 'IPPool.block-size-immutable', `IPPool BlockSize cannot be modified (stored: ${String(oldBlock)})`, `blockSize: ${String(oldBlock)}, or a new IPPool`);
    }
  } else {
    // Calico checks overlap only when a pool is created: a stored pool's CIDR cannot change.
    for (const otherName of pools.overlaps.get(pool.metadata.name) ?? []) {
      const other = pools.byName.get(otherName);
      if (other === undefined) continue;
      sink.error(['spec', 'cidr'], 'IPPool.overlap', `IPPool(${pool.metadata.name}) CIDR overlaps with IPPool(${other.metadata.name}) CIDR ${other.spec.cidr}`, 'a CIDR that overlaps no other IPPool');
    }
  }
  const subnetId = pool.spec.awsSubnetID;
  if (subnetId !== undefined && subnetId !== '' && parsed !== undefined) {
    const subnet = subnets.get(subnetId);
    const s = subnet === undefined ? undefined : parseCidr(subnet.spec.cidr);
    if (subnet !== undefined && s !== undefined && !cidrContains(s.cidr, parsed.cidr)) {
      sink.error(['spec', 'cidr'], 'IPPool.outside-subnet', `the CIDR of an AWS-backed pool must lie inside its VPC subnet: ${pool.spec.cidr} is not inside ${subnetId} (${subnet.spec.cidr})`, `a CIDR inside ${subnet.spec.cidr}`);
    }
  }
  if (!isAwsBacked(pool)) {
    for (const gw of otherGateways) {
      if (nativeIP(gw) !== 'Enabled') continue;
      if ((gw.spec.ipPools ?? []).some((ref) => designates(ref, pool))) {
        sink.error(
          ['spec', 'awsSubnetID'],
          'IPPool.needed-by-native-ip',
          `AWS subnet ID must be set when NativeIP is enabled: EgressGateway ${gw.metadata.namespace ?? ''}/${gw.metadata.name} uses this pool with aws.nativeIP Enabled`,
          'awsSubnetID: subnet-…',
        );
      }
    }
  }
}

function checkSubnet(subnet: AWSSubnet, sink: IssueSink, otherPools: readonly IPPool[]): void {
  const s = parseCidr(subnet.spec.cidr);
  if (s === undefined) return;
  for (const pool of otherPools) {
    if (pool.spec.awsSubnetID !== subnet.metadata.name) continue;
    const p = parseCidr(pool.spec.cidr);
    if (p !== undefined && !cidrContains(s.cidr, p.cidr)) {
      sink.error(['spec', 'cidr'], 'AWSSubnet.pool-outside', `IPPool ${pool.metadata.name} (${pool.spec.cidr}) is backed by this subnet but lies outside ${subnet.spec.cidr}`, `a subnet CIDR that contains ${pool.spec.cidr}`);
    }
  }
}

/**
 * The addresses of an IPv4 pool IPAM can hand out: its size less what IPReservations reserve inside it
 * (nested or repeated reservations counted once). Undefined for IPv6 or an unparsable CIDR.
 */
function usableAddresses(pool: IPPool, reserved: readonly Cidr[]): number | undefined {
  const p = parseCidr(pool.spec.cidr)?.cidr;
  if (p === undefined || p.version !== 4) return undefined;
  const inside = reserved.filter((r) => r.version === 4 && cidrsOverlap(r, p)).map((r) => (cidrContains(r, p) ? p : r));
  const outermost = inside.filter((r, i) => !inside.some((o, j) => j !== i && cidrContains(o, r) && (!cidrContains(r, o) || j < i)));
  return Math.max(0, 2 ** (32 - p.prefix) - outermost.reduce((sum, r) => sum + 2 ** (32 - r.prefix), 0));
}

function checkGateway(
  gw: EgressGateway,
  sink: IssueSink,
  pools: PoolIndex,
  namespaces: ReadonlySet<string>,
  awsSecondaryIPSupport: string,
  reserved: readonly Cidr[],
): void {
  const native = nativeIP(gw) === 'Enabled';
  (gw.spec.ipPools ?? []).forEach((ref, i) => {
    const path = ['spec', 'ipPools', i];
    const pool = findPool(ref, pools);
    if (pool === undefined) {
      const byName = ref.name !== undefined && ref.name !== '';
      sink.warn(
        path,
        'EgressGateway.ippool-missing',
        byName ? `IPPool "${ref.name}" does not exist (yet)` : `IPPool matching CIDR = ${ref.cidr ?? ''} not present`,
        `${byName ? `an IPPool named ${ref.name}` : `an IPPool with cidr ${ref.cidr ?? ''}`}; until it exists the controller reports it on the EgressGateway's status`,
      );
      return;
    }
    if (ref.name !== undefined && ref.name !== '' && ref.cidr !== undefined && ref.cidr !== '' && normal(ref.cidr) !== normal(pool.spec.cidr)) {
      sink.error([...path, 'cidr'], 'EgressGateway.ippool-cidr-mismatch', `IPPool CIDR does not match with name (IPPool ${pool.metadata.name} has CIDR ${pool.spec.cidr})`, `cidr: ${pool.spec.cidr}, or no cidr`);
    }
    if (native && !isAwsBacked(pool)) {
      sink.error(path, 'EgressGateway.ippool-not-aws-backed', `AWS subnet ID must be set when NativeIP is enabled (IPPool ${pool.metadata.name} has no awsSubnetID)`, 'AWS-backed IPPools (awsSubnetID set), or aws.nativeIP: Disabled');
    }
  });
  const found = (gw.spec.ipPools ?? []).map((ref) => findPool(ref, pools));
  const sizes = found.map((pool) => (pool === undefined ? undefined : usableAddresses(pool, reserved)));
  if (sizes.length > 0 && sizes.every((n) => n !== undefined)) {
    const total = (sizes).reduce((a, b) => a + b, 0);
    const replicas = gw.spec.replicas ?? 1;
    if (replicas > total) {
      sink.warn(
        ['spec', 'replicas'],
        'EgressGateway.replicas-exceed-pools',
        `${replicas} replicas, but its IPPools hold ${total} usable address${total === 1 ? '' : 'es'} (after IPReservations, before other users of the pools): ${replicas - total} gateway pod${replicas - total === 1 ? '' : 's'} would get no address`,
        `at most ${total} replicas, or larger IPPools`,
      );
    }
  }
  const ns = gw.metadata.namespace ?? 'default';
  if (!namespaces.has(ns)) {
    sink.warn(['metadata', 'namespace'], 'apply.namespace-missing', `Namespace "${ns}" does not exist (yet)`, 'the Namespace to be created first, or in the same apply');
  }
  if (native && awsSecondaryIPSupport === 'Disabled') {
    sink.warn(['spec', 'aws', 'nativeIP'], 'EgressGateway.aws-support-disabled', 'aws.nativeIP is Enabled but FelixConfiguration default has awsSecondaryIPSupport Disabled, so no secondary ENIs are provisioned for the gateways', 'awsSecondaryIPSupport: EnabledENIPerWorkload (or Enabled) in FelixConfiguration default');
  }
}

/**
 * A pod's pools and Elastic IPs against its namespace's allow-lists (docs/security.md, 7): errors, so
 * `egw apply` refuses what the IPAM plugin and the AWS fabric would refuse later. Unparseable pod
 * annotations are validation's to report.
 */
function checkAllowLists(annotations: Readonly<Record<string, string>> | undefined, ns: Namespace | undefined, sink: IssueSink, pools: readonly PoolName[]): void {
  if (annotations === undefined) return;
  const at = (key: string) => ['metadata', 'annotations', key];
  const poolText = annotations[CNI_IPV4_POOLS];
  const requested = poolText === undefined ? undefined : parsePoolList(poolText);
  if (requested !== undefined) {
    const allow = readAllowList(ns?.metadata.annotations, ALLOWED_IPV4_POOLS);
    const refused = poolsNotAllowed(requested, allow, pools);
    if (refused.length > 0) {
      sink.error(at(CNI_IPV4_POOLS), 'annotations.pool-not-allowed', `IPPool ${refused.join(', ')} is not allowed in namespace ${ns?.metadata.name ?? ''} (${ALLOWED_IPV4_POOLS}: ${describeAllowList(allow)})`, `a pool the namespace's ${ALLOWED_IPV4_POOLS} lists (an administrator decides)`);
    }
  }
  const eipText = annotations[CNI_AWS_ELASTIC_IPS];
  const claimed = eipText === undefined ? undefined : parseStringArray(eipText);
  if (claimed !== undefined) {
    const allow = readAllowList(ns?.metadata.annotations, ALLOWED_ELASTIC_IPS);
    const refused = elasticIpsNotAllowed(claimed, allow);
    if (refused.length > 0) {
      sink.error(at(CNI_AWS_ELASTIC_IPS), 'annotations.elastic-ip-not-allowed', `Elastic IP ${refused.join(', ')} is not allowed in namespace ${ns?.metadata.name ?? ''} (${ALLOWED_ELASTIC_IPS}: ${describeAllowList(allow)})`, `an address the namespace's ${ALLOWED_ELASTIC_IPS} lists (an administrator decides)`);
    }
  }
}

function checkClientAnnotations(
  on: 'Namespace' | 'Pod',
  annotations: Readonly<Record<string, string>> | undefined,
  sink: IssueSink,
  pools: PoolIndex,
  policies: ReadonlySet<string>,
  egressIPSupport: string,
): void {
  if (annotations === undefined) return;
  const at = (key: string) => ['metadata', 'annotations', key];
  const policy = annotations[EGRESS_GATEWAY_POLICY];
  if (policy !== undefined && !policies.has(policy)) {
    sink.warn(at(EGRESS_GATEWAY_POLICY), 'annotations.policy-missing', `EgressGatewayPolicy "${policy}" does not exist (yet); until it does, egress traffic from this ${on} is blocked`, `an EgressGatewayPolicy named ${policy}, created before it is referenced`);
  }
  const poolList = annotations[CNI_IPV4_POOLS];
  for (const entry of poolList === undefined ? [] : (parsePoolList(poolList) ?? [])) {
    const found = parseCidr(entry) !== undefined ? findPool({ cidr: entry }, pools) : pools.byName.get(entry);
    if (found === undefined) {
      sink.warn(at(CNI_IPV4_POOLS), 'annotations.pool-missing', `IPPool "${entry}" does not exist (yet); pods cannot get an address from it`, `an IPPool named (or with CIDR) ${entry}`);
    }
  }
  const usesEgress = [EGRESS_SELECTOR, EGRESS_NAMESPACE_SELECTOR, EGRESS_GATEWAY_POLICY, EGRESS_MAX_NEXT_HOPS].find((k) => annotations[k] !== undefined);
  if (usesEgress === undefined) return;
  if (egressIPSupport === 'Disabled') {
    sink.warn(at(usesEgress), 'egress.support-disabled', `egress annotations have no effect: FelixConfiguration default has egressIPSupport Disabled`, `egressIPSupport: ${on === 'Pod' ? 'EnabledPerNamespaceOrPerPod' : 'EnabledPerNamespace or EnabledPerNamespaceOrPerPod'}`);
  } else if (on === 'Pod' && egressIPSupport === 'EnabledPerNamespace') {
    sink.warn(at(usesEgress), 'egress.pod-annotations-ignored', 'egress annotations on Pods are ignored: FelixConfiguration default has egressIPSupport EnabledPerNamespace', 'egressIPSupport: EnabledPerNamespaceOrPerPod, or the annotations on the Namespace');
  }
}
