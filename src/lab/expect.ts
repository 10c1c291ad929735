/**
 * What each client pod should look like from each external server, derived from the state alone (pure):
 * FelixConfiguration, the policies and annotations (through calc, the same computation every agent
 * runs), the gateway pods, their pools, and the Elastic IPs the emulator has associated with them. Never
 * from anything hard-coded about the scenario. docs/lab.md, "verify".
 */
import type { IPPool, Pod } from '../api/index.js';
import { clusterCidrsOf } from '../agent/dataplane-state.js';
import type { ClientRuleStatus, ClientStatus, NodeEgressState } from '../calc/index.js';
import { computeNodeEgress } from '../calc/index.js';
import { ipv4NetContains, parseIpv4, requireIpv4, requireIpv4Net } from '../platform/ipv4.js';
import type { ServerNetwork } from './scenario.js';
import type { LabSnapshot } from './snapshot.js';
import { elasticIpOf, gatewayOwner, nodeIp, podGone, podKey } from './snapshot.js';

/** An external server as verify sees it. */
export interface ExpectServer {
  name: string;
  ip: string;
  network: ServerNetwork;
}

/** What a connection from a client to a server must show. */
export type Expected =
  /** The connection succeeds and the server sees one of `ips`. */
  | { kind: 'source'; ips: string[]; label: string }
  /** The connection fails (fail closed, or the fabric drops it). */
  | { kind: 'fail'; label: string };

/** One client × server pair. */
export interface PairExpectation {
  client: string;
  clientIp: string;
  node: string;
  server: ExpectServer;
  expected: Expected;
}

/** Client pods: running, addressed, not gateways, not going away. */
export function clientPods(s: LabSnapshot): Pod[] {
  return s.pods
    .filter((p) => gatewayOwner(p) === undefined && !podGone(p) && p.spec.nodeName !== undefined && p.status?.podIP !== undefined && p.status.phase === 'Running')
    .sort((a, b) => (podKey(a) < podKey(b) ? -1 : 1));
}

/** calc's result for every node that hosts a client, computed as that node's agent computes it. */
export function calcByNode(s: LabSnapshot): Map<string, NodeEgressState> {
  // The EgressGateways too: calc uses a pod as a gateway only when one of them owns it (docs/security.md, 7).
  const resources = [...s.pods, ...s.namespaces, ...s.nodes, ...s.policies, ...s.gateways, ...s.felix];
  const clusterCidrs = clusterCidrsOf(s.pools, []);
  const out = new Map<string, NodeEgressState>();
  for (const node of new Set(clientPods(s).map((p) => p.spec.nodeName!))) {
    out.set(node, computeNodeEgress({ nodeName: node, resources, nextHops: s.nextHops, clusterCidrs }));
  }
  return out;
}

/** The client's calc status (undefined: not an egress client). */
export function clientCalc(byNode: ReadonlyMap<string, NodeEgressState>, pod: Pod): ClientStatus | undefined {
  return byNode.get(pod.spec.nodeName ?? '')?.clients.find((c) => c.pod === podKey(pod));
}

/** The rule that a destination matches (longest prefix; skipped rules are not programmed). */
export function ruleFor(status: ClientStatus | undefined, ip: string): ClientRuleStatus | undefined {
  const n = requireIpv4(ip);
  let best: ClientRuleStatus | undefined;
  let bestLen = -1;
  for (const r of status?.rules ?? []) {
    if (r.action === 'skipped') continue;
    const p = requireIpv4Net(r.destination, { hostBits: 'clear', bareAddress: true, defaultWord: true });
    if (ipv4NetContains(p, n) && p.prefix > bestLen) {
      best = r;
      bestLen = p.prefix;
    }
  }
  return best;
}

function poolOf(pools: readonly IPPool[], ip: string): IPPool | undefined {
  const n = parseIpv4(ip);
  if (n === undefined) return undefined;
  return pools.find((p) => !p.spec.cidr.includes(':') && ipv4NetContains(requireIpv4Net(p.spec.cidr, { hostBits: 'clear', bareAddress: true }), n));
}

/**
 * The expectation of every client × server pair. For a gateway rule the sources are the gateways' IPs
 * (their Elastic IPs for internet servers); for the normal way the node's IP when the client's pool has
 * natOutgoing (else the pod IP, which the VPC drops); an `unreachable` rule is "fail closed"; an internet
 * server behind a private source without an Elastic IP is "dropped at the internet gateway".
 */
export function expectations(s: LabSnapshot, servers: readonly ExpectServer[]): PairExpectation[] {
  const byNode = calcByNode(s);
  const gatewayPods = new Map(s.pods.filter((p) => gatewayOwner(p) !== undefined).map((p) => [podKey(p), p]));
  const out: PairExpectation[] = [];
  for (const pod of clientPods(s)) {
    const status = clientCalc(byNode, pod);
    const node = pod.spec.nodeName!;
    const podIp = pod.status!.podIP!;
    for (const server of servers) {
      const rule = ruleFor(status, server.ip);
      let sources: string[];
      let what: string;
      if (rule?.action === 'unreachable') {
        out.push({ client: podKey(pod), clientIp: podIp, node, server, expected: { kind: 'fail', label: `fail closed (${rule.reason ?? 'no gateway'})` } });
        continue;
      }
      if (rule?.action === 'gateways') {
        sources = rule.gateways.map((g) => g.ip).sort();
        const owners = [...new Set(rule.gateways.map((g) => gatewayOwner(gatewayPods.get(g.pod) ?? ({ metadata: {} } as Pod))?.split('/')[1] ?? g.pod))].sort();
        const ranges = [...new Set(sources.map((ip) => poolOf(s.pools, ip)?.spec.cidr ?? ip))].sort();
        what = `${owners.join('+')} pool ${ranges.join(',')}`;
      } else {
        const pool = poolOf(s.pools, podIp);
        const ip = pool?.spec.natOutgoing === true ? nodeIp(s.nodes.find((n) => n.metadata.name === node)) : podIp;
        sources = ip === undefined ? [] : [ip];
        what = pool?.spec.natOutgoing === true ? `node IP (${node})` : `pod IP (no natOutgoing)`;
      }
      if (server.network === 'internet') {
        const eips = sources.flatMap((ip) => elasticIpOf(s.sim, ip) ?? []);
        const missing = sources.filter((ip) => elasticIpOf(s.sim, ip) === undefined);
        if (eips.length === 0) {
          out.push({ client: podKey(pod), clientIp: podIp, node, server, expected: { kind: 'fail', label: `dropped: ${what} has no Elastic IP` } });
        } else {
          const label = `Elastic IP of ${what}${missing.length > 0 ? ` (${missing.join(',')} without one)` : ''}`;
          out.push({ client: podKey(pod), clientIp: podIp, node, server, expected: { kind: 'source', ips: [...new Set(eips)].sort(), label } });
        }
        continue;
      }
      if (sources.length === 0) {
        out.push({ client: podKey(pod), clientIp: podIp, node, server, expected: { kind: 'fail', label: `no source address (${what})` } });
        continue;
      }
      out.push({ client: podKey(pod), clientIp: podIp, node, server, expected: { kind: 'source', ips: sources, label: what } });
    }
  }
  return out;
}

/** An observed outcome of one pair: the sources the server reported, or the connection errors. */
export interface Observed {
  seen: string[];
  errors: string[];
}

/** OK when every connection behaved as expected (each seen source allowed; a "fail" pair never connected). */
export function judge(expected: Expected, observed: Observed): boolean {
  if (expected.kind === 'fail') return observed.seen.length === 0 && observed.errors.length > 0;
  return observed.errors.length === 0 && observed.seen.length > 0 && observed.seen.every((ip) => expected.ips.includes(ip));
}
