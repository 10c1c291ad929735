/**
 * `egw lab status`: the lab in four tables (pure over a snapshot): nodes (zone, instance type, ENIs
 * used/max from the emulator against the instance-type table, aws-secondary-ipv4 used/capacity from the
 * Node), gateways (pod, node, zone, IP, Elastic IP, ready), clients (pod, rules → gateways, as their
 * node's agent reports them), pools (used/free, from IPAM), and the lab's processes.
 */
import { AWS_SECONDARY_IPV4_RESOURCE, elasticIpStandby } from '../api/index.js';
import type { Pod } from '../api/index.js';
import { describeClient } from '../agent/status.js';
import type { PoolSummary } from '../ipam/index.js';
import type { InstanceTypeTable } from '../sim/aws/index.js';
import type { ProcessRecord } from './processes.js';
import type { Scenario } from './scenario.js';
import type { LabSnapshot } from './snapshot.js';
import { findCondition } from '../platform/conditions.js';
import { elasticIpOf, gatewayOwner, nodeIp, podGone, podKey } from './snapshot.js';

/** A table: a title, a header and rows. */
export interface Table {
  title: string;
  header: string[];
  rows: string[][];
}

function requestsAws(p: Pod): number {
  let n = 0;
  for (const c of p.spec.containers) {
    const q = c.resources?.limits?.[AWS_SECONDARY_IPV4_RESOURCE] ?? c.resources?.requests?.[AWS_SECONDARY_IPV4_RESOURCE];
    if (q !== undefined) n += Number(q);
  }
  return n;
}

/** The status tables. `processes` come with their liveness. */
export function statusTables(s: LabSnapshot, scenario: Scenario, types: InstanceTypeTable, pools: readonly PoolSummary[], processes: readonly (ProcessRecord & { alive: boolean })[]): Table[] {
  const nodes: Table = {
    title: 'NODES',
    header: ['NODE', 'ZONE', 'INSTANCE TYPE', 'IP', 'ENIS USED/MAX', 'AWS-SECONDARY-IPV4 USED/CAPACITY', 'READY'],
    rows: scenario.nodes.map((n) => {
      const node = s.nodes.find((x) => x.metadata.name === n.name);
      const limits = types.get(n.instanceType);
      const enis = s.sim?.enis.filter((e) => e.attachment?.instanceId === n.instanceId).length;
      const capacity = node?.status?.capacity?.[AWS_SECONDARY_IPV4_RESOURCE];
      const used = s.pods.filter((p) => p.spec.nodeName === n.name && !podGone(p)).reduce((sum, p) => sum + requestsAws(p), 0);
      return [
        n.name,
        n.zone,
        n.instanceType,
        nodeIp(node) ?? n.ip,
        `${enis ?? '?'}/${limits?.maxEnis ?? '?'}`,
        `${used}/${capacity ?? '-'}`,
        findCondition(node?.status, 'Ready')?.status ?? 'Unknown',
      ];
    }),
  };
  const gws = s.pods.filter((p) => gatewayOwner(p) !== undefined).sort((a, b) => (podKey(a) < podKey(b) ? -1 : 1));
  const gateways: Table = {
    title: 'GATEWAYS',
    header: ['POD', 'EGRESSGATEWAY', 'NODE', 'ZONE', 'IP', 'ELASTIC IP', 'ENI', 'READY'],
    rows: gws.map((p) => {
      const ip = p.status?.podIP;
      const node = s.nodes.find((n) => n.metadata.name === p.spec.nodeName);
      const eni = ip === undefined ? undefined : s.sim?.enis.find((e) => e.privateIps.includes(ip) && e.attachment !== undefined);
      const ready = findCondition(p.status, 'Ready')?.status === 'True';
      const fabric = findCondition(p.status, 'EgwAwsReady');
      return [
        podKey(p),
        gatewayOwner(p)?.split('/')[1] ?? '',
        p.spec.nodeName ?? '(pending)',
        node?.metadata.labels?.['topology.kubernetes.io/zone'] ?? '',
        ip ?? '',
        ip === undefined ? '' : (elasticIpOf(s.sim, ip) ?? '-'),
        eni?.id ?? '-',
        podGone(p)
          ? 'terminating'
          : ready && fabric?.status === 'False' && fabric.reason === 'NoFreeElasticIP' && elasticIpStandby(p.metadata.annotations)
            ? 'standby'
            : ready
              ? 'true'
              : fabric?.status === 'False' ? `false (${fabric.reason ?? ''})` : 'false',
      ];
    }),
  };
  const clientPods = s.pods.filter((p) => gatewayOwner(p) === undefined).sort((a, b) => (podKey(a) < podKey(b) ? -1 : 1));
  const clients: Table = {
    title: 'CLIENTS',
    header: ['POD', 'NODE', 'IP', 'EGRESS (as the node\'s agent programmed it: rule → gateways)'],
    rows: clientPods.map((p) => {
      const status = s.nodeStatus.find((n) => n.node === p.spec.nodeName)?.clients.find((c) => c.pod === podKey(p));
      return [podKey(p), p.spec.nodeName ?? '(pending)', p.status?.podIP ?? '', status === undefined ? 'not an egress client (normal routing)' : `${status.method}${status.policy === undefined ? '' : ` ${status.policy}`}: ${describeClient(status)}`];
    }),
  };
  const poolTable: Table = {
    title: 'POOLS',
    header: ['POOL', 'CIDR', 'SUBNET', 'USED', 'FREE'],
    rows: pools.map((p) => [p.name, p.cidr, p.awsSubnetID ?? '-', String(p.allocated), String(p.free)]),
  };
  const procs: Table = {
    title: 'PROCESSES',
    header: ['NAME', 'NAMESPACE', 'PID', 'RUNNING'],
    rows: processes.map((p) => [p.name, p.netns ?? '(host)', String(p.pid), p.alive ? 'yes' : 'NO']),
  };
  return [nodes, gateways, clients, poolTable, procs];
}
