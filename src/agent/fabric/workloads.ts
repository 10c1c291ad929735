/**
 * From datastore resources to the fabric's desired state, for one node. Pure: the same resources give the
 * same answer, whatever order or history they came in.
 *
 * A workload is an IPv4 address of a pod on this node (not finished: phase neither Succeeded nor Failed;
 * not host-networked) that lies in an AWS-backed IPPool (one with `awsSubnetID`). A terminating pod keeps
 * its address in the fabric until the pod is gone or finished (its connections drain meanwhile).
 */
import { ALLOWED_ELASTIC_IPS, describeAllowList, elasticIpsNotAllowed, readAllowList } from '../../api/allow-list.js';
import { CNI_AWS_ELASTIC_IPS, elasticIpStandby, parseStringArray } from '../../api/annotations.js';
import { podFacts } from '../../calc/pod-facts.js';
import { ipv4NetContains, isIpv4, parseIpv4Net, requireIpv4 } from '../../platform/ipv4.js';
import type { AWSSubnet } from '../../api/kinds/aws-subnet.js';
import type { IPPool } from '../../api/kinds/ip-pool.js';
import { isAwsBacked } from '../../api/kinds/ip-pool.js';
import type { Pod } from '../../api/kinds/kubernetes.js';
import type { FabricWorkload, SubnetInfo } from '../../aws/fabric-reconciler.js';
import { podOwner } from '../../aws/ownership.js';

/** A pod-level problem found while deriving (reported on the pod). */
export interface WorkloadProblem {
  pod: string;
  reason: string;
  message: string;
}

/** The fabric's view of this node's pods. */
export interface DerivedWorkloads {
  workloads: FabricWorkload[];
  problems: WorkloadProblem[];
}

/** The pod key used for status: `namespace/name`. */
export function podKey(pod: Pod): string {
  return `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
}

/** The pod's IPv4 addresses (status.podIPs, else status.podIP), without duplicates. */
export function podIpv4s(pod: Pod): string[] {
  const ips = [...(pod.status?.podIPs ?? []).map((p) => p.ip), ...(pod.status?.podIP === undefined || pod.status.podIP === '' ? [] : [pod.status.podIP])];
  return [...new Set(ips.filter((ip) => isIpv4(ip)))];
}

/** A pod's valid Elastic IPs, or undefined when the annotation is malformed. */
function podElasticIps(pod: Pod): { ips: string[]; malformed: boolean } {
  const annotation = pod.metadata.annotations?.[CNI_AWS_ELASTIC_IPS];
  if (annotation === undefined) return { ips: [], malformed: false };
  const list = parseStringArray(annotation);
  const valid = (list ?? []).filter((ip) => isIpv4(ip));
  return { ips: [...new Set(valid)], malformed: list === undefined || valid.length !== list.length };
}

/**
 * The workloads of `node`: one per AWS-backed IPv4 address of its live pods, with the pool's subnet,
 * the pod's Elastic IPs (`cni.projectcalico.org/awsElasticIPs`), its UID and creation time. A malformed
 * Elastic-IP annotation is a problem on the pod (its address still goes on an ENI, without Elastic IP).
 * `pods` may hold every node's pods: those of other nodes only tell an Elastic IP standby
 * (`egw.io/elastic-ip-standby`) which holders of its Elastic IPs are live gateways.
 */
export function deriveFabricWorkloads(
  node: string,
  pods: readonly Pod[],
  pools: readonly IPPool[],
  namespaceAnnotations: ReadonlyMap<string, Readonly<Record<string, string>> | undefined> = new Map(),
): DerivedWorkloads {
  const awsPools = pools
    .filter((p) => isAwsBacked(p))
    .flatMap((p) => {
      const cidr = parseIpv4Net(p.spec.cidr, { hostBits: 'clear' });
      return cidr === undefined ? [] : [{ pool: p, cidr }];
    })
    .sort((a, b) => b.cidr.prefix - a.cidr.prefix || (a.pool.metadata.name < b.pool.metadata.name ? -1 : 1));
  const workloads: FabricWorkload[] = [];
  const problems: WorkloadProblem[] = [];
  // Only an Elastic IP standby needs the other nodes' gateways: indexed once, on first use.
  let live: Map<string, Set<string>> | undefined;
  const poolCidrs = [...new Set(awsPools.map((p) => p.pool.spec.cidr))].sort();
  for (const pod of [...pods].sort((a, b) => (podKey(a) < podKey(b) ? -1 : 1))) {
    if (pod.spec.nodeName !== node || pod.spec.hostNetwork === true) continue;
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    const key = podKey(pod);
    const ns = pod.metadata.namespace ?? 'default';
    const uid = pod.metadata.uid ?? key;
    const eips = podElasticIps(pod);
    if (eips.malformed) {
      problems.push({ pod: key, reason: 'InvalidElasticIPs', message: `${CNI_AWS_ELASTIC_IPS} must be a JSON array of IPv4 addresses, got ${JSON.stringify(pod.metadata.annotations?.[CNI_AWS_ELASTIC_IPS])}` });
    }
    let elasticIps = eips.ips;
    // The namespace's allow-list (docs/security.md, 7): a refused address is never claimed.
    const allow = readAllowList(namespaceAnnotations.get(ns), ALLOWED_ELASTIC_IPS);
    const refused = elasticIpsNotAllowed(elasticIps, allow);
    if (refused.length > 0) {
      problems.push({
        pod: key,
        reason: 'ElasticIPNotAllowed',
        message: `${CNI_AWS_ELASTIC_IPS} names ${refused.join(', ')}, which namespace ${ns} does not allow (${ALLOWED_ELASTIC_IPS}: ${describeAllowList(allow)}); an administrator adds them there, or the pod stops naming them`,
      });
      elasticIps = elasticIps.filter((ip) => !refused.includes(ip));
    }
    let standby: FabricWorkload['standby'];
    if (elasticIps.length > 0 && elasticIpStandby(pod.metadata.annotations)) {
      live ??= liveGatewaysByElasticIp(pods);
      const own = podIpv4s(pod);
      const holders = new Set(elasticIps.flatMap((e) => [...(live?.get(e) ?? [])]).filter((ip) => !own.includes(ip)));
      standby = { liveHolders: [...holders].sort(), poolCidrs };
    }
    for (const ip of podIpv4s(pod)) {
      const address = requireIpv4(ip);
      const match = awsPools.find((p) => ipv4NetContains(p.cidr, address));
      if (match === undefined) continue;
      workloads.push({
        id: `${key}@${ip}`,
        pod: key,
        uid,
        ip,
        subnetId: match.pool.spec.awsSubnetID ?? '',
        owner: podOwner(ns, pod.metadata.name, uid),
        since: pod.metadata.creationTimestamp ?? new Date(0).toISOString(),
        elasticIps,
        ...(standby === undefined ? {} : { standby }),
      });
    }
  }
  return { workloads, problems };
}

/**
 * The addresses of live gateways (datastore-ready: Running, Ready, not terminating; for a standby pod also
 * holding its Elastic IP) by the Elastic IPs they list: the holders an Elastic IP standby must never take
 * an address from.
 */
function liveGatewaysByElasticIp(pods: readonly Pod[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const p of pods) {
    const eips = podElasticIps(p).ips;
    if (eips.length === 0 || !podFacts(p).ready) continue;
    for (const e of eips) {
      const set = out.get(e) ?? new Set<string>();
      for (const ip of podIpv4s(p)) set.add(ip);
      out.set(e, set);
    }
  }
  return out;
}

/** True when a pod of another node matters to this node's fabric (a possible holder of a standby's Elastic IP). */
export function listsElasticIps(pod: Pod): boolean {
  return pod.metadata.annotations?.[CNI_AWS_ELASTIC_IPS] !== undefined;
}

/** Subnets of the AWS-backed pools that supply ENI primary addresses (`HostSecondaryInterface`). */
export function hostSecondarySubnets(pools: readonly IPPool[]): string[] {
  return [...new Set(pools.filter((p) => isAwsBacked(p) && (p.spec.allowedUses ?? []).includes('HostSecondaryInterface')).map((p) => p.spec.awsSubnetID ?? ''))].sort();
}

/** Subnet facts from the controller's AWSSubnet records. */
export function subnetFacts(records: readonly AWSSubnet[]): Map<string, SubnetInfo> {
  const out = new Map<string, SubnetInfo>();
  for (const r of records) {
    if (r.spec === undefined) continue;
    out.set(r.spec.subnetID, { cidr: r.spec.cidr, availabilityZone: r.spec.availabilityZone });
  }
  return out;
}
