import { describe, expect, it } from 'vitest';
import { clientNodeStateOf, clusterCidrsOf, natOutgoingOf, type DataplaneContext } from '../../src/agent/dataplane-state.js';
import { buildNodeStatus, describeClient } from '../../src/agent/status.js';
import { statusContent } from '../../src/agent/records.js';
import type { IPPool } from '../../src/api/index.js';
import { compute, egressGateway, felix, gateway, namespace, node, pod, policy, NSSEL, POLICY, SEL } from '../calc/fixtures.js';

function pool(name: string, cidr: string, natOutgoing = false): IPPool {
  return { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr, natOutgoing } };
}

const POOLS = [pool('pods', '10.20.0.0/16', true), pool('egress', '100.64.0.0/24'), pool('v6', 'fd00::/64', true)];
const CTX: DataplaneContext = { pools: POOLS, extraClusterCidrs: ['10.96.0.0/12'], natOutgoing: true };

// n1 with clients; gateways red (n2, n3) and blue (n1: a local gateway, so n1 has a return path).
const RESOURCES = [
  felix('EnabledPerNamespaceOrPerPod', { egressIPRoutingRulePriority: 110, routeTableRanges: [{ min: 10, max: 20 }] }),
  node('n1', '10.10.1.10'),
  node('n2', '10.10.2.10'),
  node('n3', '10.10.3.10'),
  namespace('egw'),
  egressGateway('egw'),
  namespace('app', { [SEL]: "egress-code == 'red'", [NSSEL]: 'all()' }),
  namespace('pol', { [POLICY]: 'p' }),
  policy('p', [
    { destination: { cidr: '192.0.2.0/24' } },
    { destination: { cidr: '198.51.100.0/24' }, gateway: { selector: "egress-code == 'blue'", namespaceSelector: 'all()' } },
  ]),
  gateway('egw', 'red1', 'n2', '100.64.0.11', 'red'),
  gateway('egw', 'red2', 'n3', '100.64.0.12', 'red'),
  gateway('egw', 'blue1', 'n1', '100.64.0.21', 'blue'),
  pod('app', 'a1', { node: 'n1', ip: '10.20.1.5' }),
  pod('app', 'a2', { node: 'n1', ip: '10.20.1.6' }),
  pod('pol', 'p1', { node: 'n1', ip: '10.20.1.7' }),
  pod('app', 'r1', { node: 'n2', ip: '10.20.2.5' }),
];

describe('calc result → client-node driver state', () => {
  it('maps tables to clients, the tunnel, the return path, natOutgoing and the FelixConfiguration ownership marks', () => {
    const result = compute(RESOURCES, { clusterCidrs: clusterCidrsOf(POOLS, ['10.96.0.0/12']) });
    const { state, config } = clientNodeStateOf(result, CTX);
    expect(state.vxlan).toEqual({ vni: 4097, port: 4790, localIp: '10.10.1.10' });
    expect(config).toMatchObject({ rulePriority: 110, routeTableRanges: [{ min: 10, max: 20 }] });
    const byIp = new Map(state.clients.map((c) => [c.ip, c.routes]));
    expect([...byIp.keys()].sort()).toEqual(['10.20.1.5', '10.20.1.6', '10.20.1.7']);
    // Cluster destinations (pools, extra CIDRs, node addresses) are thrown in address order, then the client's routes.
    expect(byIp.get('10.20.1.5')).toEqual([
      { cidr: '10.10.1.10/32', kind: 'throw' },
      { cidr: '10.10.2.10/32', kind: 'throw' },
      { cidr: '10.10.3.10/32', kind: 'throw' },
      { cidr: '10.20.0.0/16', kind: 'throw' },
      { cidr: '10.96.0.0/12', kind: 'throw' },
      { cidr: '100.64.0.0/24', kind: 'throw' },
      { cidr: '0.0.0.0/0', kind: 'via-gateways', gateways: ['100.64.0.11', '100.64.0.12'] },
    ]);
    expect(byIp.get('10.20.1.7')?.slice(-2)).toEqual([
      { cidr: '192.0.2.0/24', kind: 'throw' },
      { cidr: '198.51.100.0/24', kind: 'via-gateways', gateways: ['100.64.0.21'] },
    ]);
    // blue1 runs on n1, so n1 has a return path; no remote client uses blue, so it lists none.
    expect(state.returnPath).toEqual({ gatewayPodIps: ['100.64.0.21'], clients: [] });
    expect(state.natOutgoing).toEqual({ sources: ['10.20.0.0/16'], exemptDestinations: ['10.20.0.0/16', '10.96.0.0/12', '100.64.0.0/24'] });
  });

  it('no node address: no tunnel (the driver then makes every gateway route unreachable), unless --node-ip gives one', () => {
    const resources = RESOURCES.map((r) => (r.kind === 'Node' && r.metadata.name === 'n1' ? node('n1', undefined) : r));
    const result = compute(resources);
    expect(clientNodeStateOf(result, CTX).state.vxlan).toBeUndefined();
    expect(clientNodeStateOf(result, CTX).state.clients.length).toBe(3);
    expect(clientNodeStateOf(result, { ...CTX, nodeIp: '10.10.1.99', vxlanMtu: 1400 }).state.vxlan).toEqual({ vni: 4097, port: 4790, localIp: '10.10.1.99', mtu: 1400 });
  });

  it('egress disabled: no tunnel, no clients, natOutgoing stays; --no-nat-outgoing drops it', () => {
    const result = compute(RESOURCES.map((r) => (r.kind === 'FelixConfiguration' ? felix('Disabled') : r)));
    const { state } = clientNodeStateOf(result, CTX);
    // knownPodIps: the node's pod addresses, whose CNI placeholders the driver may replace (docs/security.md).
    const { knownPodIps, ...rest } = state;
    expect(rest).toEqual({ vxlan: undefined, clients: [], natOutgoing: natOutgoingOf(CTX) });
    expect(knownPodIps).toEqual(expect.arrayContaining(['10.20.1.5']));
    expect(natOutgoingOf({ ...CTX, natOutgoing: false })).toBeUndefined();
    expect(natOutgoingOf({ ...CTX, pools: [pool('egress', '100.64.0.0/24')] })).toBeUndefined();
  });

  it('the status names the kernel table of each client, the verdict on each gateway, and ignores volatile fields for rewrites', () => {
    const result = compute(RESOURCES);
    const apply = { changed: true, commands: 12, failures: [], problems: [], assignments: [{ table: 10, clients: ['10.20.1.5', '10.20.1.6'], returnPath: false }, { table: 11, clients: ['10.20.1.7'], returnPath: false }, { table: 12, clients: [], returnPath: true }] };
    const inputs = {
      agent: { version: '0.1.0', pid: 1, startedAt: '2025-01-01T00:00:00.000Z' },
      now: '2025-01-01T00:00:01.000Z',
      observedRevision: 7,
      vxlan: { vni: 4097, port: 4790, localIp: '10.10.1.10' },
      apply,
      changes: 1,
      lastChangeCommands: 12,
      polled: [{ gateway: 'egw/red1', ip: '100.64.0.11', port: 8080 }, { gateway: 'egw/red2', ip: '100.64.0.12', port: 8080 }],
      verdicts: [{ gateway: 'egw/red1', ip: '100.64.0.11', up: true }],
    };
    const st = buildNodeStatus(result, inputs);
    expect(st.clients.map((c) => [c.pod, c.table])).toEqual([['app/a1', 10], ['app/a2', 10], ['pol/p1', 11]]);
    expect(st.gateways.map((g) => [g.pod, g.local, g.health])).toEqual([['egw/blue1', true, 'not-polled'], ['egw/red1', false, 'up'], ['egw/red2', false, 'pending']]);
    expect(st.dataplane).toMatchObject({ ok: true, changes: 1, lastChangeCommands: 12 });
    expect(describeClient(st.clients[2]!)).toBe('routed table 11; 192.0.2.0/24: throw; 198.51.100.0/24 -> 100.64.0.21');
    const later = buildNodeStatus(result, { ...inputs, now: '2025-01-01T00:09:00.000Z', observedRevision: 99 });
    expect(statusContent(later)).toBe(statusContent(st));
    // A gateway judged down stays visible even when no route names it any more.
    const down = buildNodeStatus(result, { ...inputs, verdicts: [{ gateway: 'egw/red9', ip: '100.64.0.19', up: false }], polled: [{ gateway: 'egw/red9', ip: '100.64.0.19', port: 8080 }] });
    expect(down.gateways.find((g) => g.pod === 'egw/red9')).toEqual({ pod: 'egw/red9', ip: '100.64.0.19', node: null, nodeIp: null, local: false, health: 'down' });
    const failed = buildNodeStatus(result, { ...inputs, apply: { error: 'ip: command not found' } });
    expect(failed.dataplane).toMatchObject({ ok: false, failures: [{ object: 'apply', message: 'ip: command not found' }] });
  });
});
