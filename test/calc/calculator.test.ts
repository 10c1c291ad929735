import { describe, expect, it } from 'vitest';
import { GATEWAY_PODS_ALLOWED_LABEL, type EgressGatewayRule } from '../../src/api/index.js';
import { EgressCalculator } from '../../src/calc/calculator.js';
import { selectionKey } from '../../src/calc/selection.js';
import type { CalcResource, EgressNextHops } from '../../src/calc/types.js';
import { clientRoutes, compute, egressGateway, OWNER, felix, gateway, MAXHOPS, namespace, node, NODES, NSSEL, pod, policy, POLICY, SEL } from './fixtures.js';

const EGW_NS = "projectcalico.org/name == 'egw'";
const RED = "egress-code == 'red'";
const BLUE = "egress-code == 'blue'";

/** Gateways: red-1 (n2), red-2 (n3), blue-1 (n1, local), blue-2 (n2), all in namespace egw. */
function gateways(): CalcResource[] {
  return [
    namespace('egw'),
    egressGateway('egw'),
    egressGateway('app'),
    gateway('egw', 'red-1', 'n2', '100.64.0.10', 'red'),
    gateway('egw', 'red-2', 'n3', '100.64.0.11', 'red'),
    gateway('egw', 'blue-1', 'n1', '100.64.0.20', 'blue'),
    gateway('egw', 'blue-2', 'n2', '100.64.0.21', 'blue'),
  ];
}

function world(mode: 'Disabled' | 'EnabledPerNamespace' | 'EnabledPerNamespaceOrPerPod', nsAnnotations: Record<string, string> | undefined, more: CalcResource[] = []): CalcResource[] {
  return [
    felix(mode),
    ...NODES,
    ...gateways(),
    namespace('app', nsAnnotations),
    pod('app', 'c1', { node: 'n1', ip: '10.2.0.11' }),
    ...more,
  ];
}

const via = (cidr: string, ...gws: string[]) => ({ cidr, kind: 'via-gateways', gateways: gws });
const unreachable = (cidr: string) => ({ cidr, kind: 'unreachable' });
const thrw = (cidr: string) => ({ cidr, kind: 'throw' });

describe('egressIPSupport and the annotation method', () => {
  it('Disabled: nothing is programmed, annotated pods are listed as ignored', () => {
    const s = compute(world('Disabled', { [SEL]: RED, [NSSEL]: EGW_NS }));
    expect(s.vxlan).toBeUndefined();
    expect(s.tables).toEqual([]);
    expect(s.clients).toEqual([]);
    expect(s.returnPath).toBeUndefined();
    expect(s.ignored).toEqual([{ pod: 'app/c1', reason: 'egressIPSupport is Disabled' }]);
  });

  it('a selector with a namespaceSelector uses the matching gateways there (ECMP over all of them)', () => {
    const s = compute(world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS }));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11')]);
    expect(s.clients).toMatchObject([{ pod: 'app/c1', source: 'namespace', method: 'selector', state: 'routed' }]);
    expect(s.vxlan).toEqual({ vni: 4097, port: 4790, localIp: '10.1.0.1' });
    expect(s.rulePriority).toBe(100);
  });

  it('without namespaceSelector only gateways of the client’s own namespace count', () => {
    const own = gateway('app', 'red-app', 'n2', '100.64.0.30', 'red');
    const s = compute(world('EnabledPerNamespace', { [SEL]: RED }, [own]));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.30')]);
    const none = compute(world('EnabledPerNamespace', { [SEL]: RED }));
    expect(clientRoutes(none, '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    expect(none.clients[0]).toMatchObject({ state: 'fail-closed', rules: [{ action: 'unreachable', reason: 'no-gateway-matches' }] });
  });

  it('namespaceSelector sees namespace labels and projectcalico.org/name', () => {
    const labelled = [namespace('egw', undefined, { team: 'net' })];
    const s = compute(world('EnabledPerNamespace', { [SEL]: BLUE, [NSSEL]: "team == 'net'" }, labelled));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.20', '100.64.0.21')]);
    const all = compute(world('EnabledPerNamespace', { [SEL]: BLUE, [NSSEL]: 'all()' }));
    expect(clientRoutes(all, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.20', '100.64.0.21')]);
    const global = compute(world('EnabledPerNamespace', { [SEL]: BLUE, [NSSEL]: 'global()' }));
    expect(clientRoutes(global, '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
  });

  it('EnabledPerNamespace ignores pod annotations; a pod annotated in a plain namespace gets no rule', () => {
    const s = compute(world('EnabledPerNamespace', undefined, [pod('app', 'c2', { node: 'n1', ip: '10.2.0.12', annotations: { [SEL]: RED, [NSSEL]: EGW_NS } })]));
    expect(s.tables).toEqual([]);
    expect(s.ignored).toEqual([{ pod: 'app/c2', reason: expect.stringMatching(/EnabledPerNamespaceOrPerPod/) as unknown }]);
  });

  it('EnabledPerNamespaceOrPerPod: the pod’s annotations replace the namespace’s as a set', () => {
    const c2 = pod('app', 'c2', { node: 'n1', ip: '10.2.0.12', annotations: { [SEL]: BLUE, [NSSEL]: EGW_NS } });
    const c3 = pod('app', 'c3', { node: 'n1', ip: '10.2.0.13', annotations: { [SEL]: BLUE } });
    const c4 = pod('app', 'c4', { node: 'n1', ip: '10.2.0.14', annotations: { [NSSEL]: 'all()', [MAXHOPS]: '1' } });
    const s = compute(world('EnabledPerNamespaceOrPerPod', { [SEL]: RED, [NSSEL]: EGW_NS }, [c2, c3, c4]));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11')]);
    expect(clientRoutes(s, '10.2.0.12')).toEqual([via('0.0.0.0/0', '100.64.0.20', '100.64.0.21')]);
    // No inheritance of the namespace's namespaceSelector: the pod's selector looks in its own namespace.
    expect(clientRoutes(s, '10.2.0.13')).toEqual([unreachable('0.0.0.0/0')]);
    // namespaceSelector/maxNextHops alone do not override: c4 follows the namespace.
    expect(clientRoutes(s, '10.2.0.14')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11')]);
    expect(s.clients.find((c) => c.pod === 'app/c4')?.notes.join()).toMatch(/apply only together/);
    expect(s.clients.find((c) => c.pod === 'app/c2')?.source).toBe('pod');
  });

  it('egressGatewayPolicy and selector on one object: the policy wins, the rest is reported ignored', () => {
    const p = policy('p1', [{ gateway: { selector: BLUE, namespaceSelector: EGW_NS } }]);
    const s = compute(world('EnabledPerNamespaceOrPerPod', { [SEL]: RED, [NSSEL]: EGW_NS, [POLICY]: 'p1' }, [p]));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.20', '100.64.0.21')]);
    expect(s.clients[0]).toMatchObject({ method: 'policy', policy: 'p1' });
    expect(s.clients[0]?.notes.join()).toMatch(/ignored: egressGatewayPolicy is set on the same Namespace/);
  });

  it('an unparseable selector fails closed', () => {
    const s = compute(world('EnabledPerNamespace', { [SEL]: 'egress-code ==', [NSSEL]: EGW_NS }));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    expect(s.clients[0]?.rules[0]?.reason).toBe('invalid-selector');
    const bad = compute(world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: '%' }));
    expect(bad.clients[0]?.rules[0]?.reason).toBe('invalid-namespace-selector');
  });
});

describe('the policy method', () => {
  // The reference document's policy shape with lab destinations.
  const rules: EgressGatewayRule[] = [
    { description: 'Local: no gateway', destination: { cidr: '203.0.113.0/24' } },
    { description: 'Gateway to on prem', destination: { cidr: '198.18.0.0/15' }, gateway: { namespaceSelector: EGW_NS, selector: BLUE, maxNextHops: 0 } },
    { description: 'Gateway to internet', gateway: { namespaceSelector: EGW_NS, selector: RED }, gatewayPreference: 'PreferNodeLocal' },
  ];

  it('routes each destination by longest prefix: throw, blue, red', () => {
    const s = compute(world('EnabledPerNamespaceOrPerPod', { [POLICY]: 'egw-policy1' }, [policy('egw-policy1', rules)]));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([
      via('0.0.0.0/0', '100.64.0.10', '100.64.0.11'),
      via('198.18.0.0/15', '100.64.0.20', '100.64.0.21'),
      thrw('203.0.113.0/24'),
    ]);
    expect(s.clients[0]?.rules.map((r) => [r.destination, r.action, r.description])).toEqual([
      ['203.0.113.0/24', 'throw', 'Local: no gateway'],
      ['198.18.0.0/15', 'gateways', 'Gateway to on prem'],
      ['0.0.0.0/0', 'gateways', 'Gateway to internet'],
    ]);
  });

  it('PreferNodeLocal uses the gateways on the client’s node when there are any', () => {
    const local = gateway('egw', 'red-3', 'n1', '100.64.0.12', 'red');
    const s = compute(world('EnabledPerNamespaceOrPerPod', { [POLICY]: 'egw-policy1' }, [policy('egw-policy1', rules), local]));
    expect(clientRoutes(s, '10.2.0.11')[0]).toEqual(via('0.0.0.0/0', '100.64.0.12'));
    // Unready local gateway: back to all.
    const down = compute(world('EnabledPerNamespaceOrPerPod', { [POLICY]: 'egw-policy1' }, [policy('egw-policy1', rules), { ...local, status: { ...local.status, phase: 'Pending' } }]));
    expect(clientRoutes(down, '10.2.0.11')[0]).toEqual(via('0.0.0.0/0', '100.64.0.10', '100.64.0.11'));
  });

  it('a policy that does not exist blocks all traffic (fail closed, never the node IP)', () => {
    const s = compute(world('EnabledPerNamespaceOrPerPod', { [POLICY]: 'missing' }));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    expect(s.clients[0]).toMatchObject({ state: 'fail-closed', rules: [{ destination: '0.0.0.0/0', action: 'unreachable', reason: 'policy-not-found' }] });
  });

  it('a rule without gateway and no default rule: other destinations route normally', () => {
    const p = policy('p', [{ destination: { cidr: '198.18.0.0/15' }, gateway: { selector: RED, namespaceSelector: EGW_NS } }]);
    const s = compute(world('EnabledPerNamespaceOrPerPod', { [POLICY]: 'p' }, [p]));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('198.18.0.0/15', '100.64.0.10', '100.64.0.11')]);
  });

  it('bad stored rules are skipped; a policy with nothing usable fails closed', () => {
    const p = policy('p', [
      { destination: { cidr: 'fd00::/8' }, gateway: { selector: RED, namespaceSelector: EGW_NS } },
      { destination: { cidr: 'nonsense' } },
      { destination: { cidr: '198.18.0.0/15' }, gateway: { selector: RED, namespaceSelector: EGW_NS } },
      { destination: { cidr: '198.18.1.0/15' } },
    ]);
    const s = compute(world('EnabledPerNamespaceOrPerPod', { [POLICY]: 'p' }, [p]));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('198.18.0.0/15', '100.64.0.10', '100.64.0.11')]);
    expect(s.clients[0]?.rules.map((r) => r.reason)).toEqual(['ipv6-destination', 'invalid-destination', undefined, 'duplicate-destination']);
    const empty = compute(world('EnabledPerNamespaceOrPerPod', { [POLICY]: 'p' }, [policy('p', [{ destination: { cidr: 'fd00::/8' } }])]));
    expect(clientRoutes(empty, '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    expect(empty.clients[0]?.rules.at(-1)?.reason).toBe('policy-has-no-usable-rule');
  });

  it('a gateway rule whose gateways are all unready fails closed for its CIDR only', () => {
    const p = policy('p', rules);
    const unready = [gateway('egw', 'blue-1', 'n1', '100.64.0.20', 'blue', { ready: 'False' }), gateway('egw', 'blue-2', 'n2', '100.64.0.21', 'blue', { deleting: true })];
    const s = compute(world('EnabledPerNamespaceOrPerPod', { [POLICY]: 'p' }, [p, ...unready]));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11'), unreachable('198.18.0.0/15'), thrw('203.0.113.0/24')]);
    expect(s.clients[0]).toMatchObject({ state: 'partly-fail-closed' });
    expect(s.clients[0]?.rules[1]?.reason).toBe('no-gateway-ready');
  });
});

describe('who may act as a gateway (docs/security.md, 7)', () => {
  const base = (more: CalcResource[], egwNsLabels?: Record<string, string>) =>
    world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS }, [namespace('egw', undefined, egwNsLabels), ...more]);
  const onlyRed = (o: Parameters<typeof gateway>[5]) => [
    gateway('egw', 'red-1', 'n2', '100.64.0.10', 'red', o),
    gateway('egw', 'red-2', 'n3', '100.64.0.11', 'red', o),
  ];
  const rsOwned = (rs: string, hash: string) => ({ owner: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs }, labels: { 'egress-code': 'red', 'pod-template-hash': hash } });
  const refusedIssues = (s: ReturnType<typeof compute>) => s.issues.filter((i) => i.code === 'GatewayRefused').map((i) => i.message.split(' ')[1]);

  it('a matching pod without an EgressGateway owner is not a gateway: its users drop, and the node says why', () => {
    const s = compute(base(onlyRed({ owner: null })));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    expect(s.clients[0]).toMatchObject({ state: 'fail-closed', rules: [{ action: 'unreachable', reason: 'no-gateway-allowed' }] });
    expect(refusedIssues(s)).toEqual(['egw/red-1', 'egw/red-2']);
    expect(s.issues.find((i) => i.code === 'GatewayRefused')?.message).toContain('not owned by an EgressGateway');
    // Still never a client (it is matched), and nothing polls it.
    expect(s.pollTargets).toEqual([]);
  });

  it('one refused pod among allowed ones is left out; the others carry the traffic', () => {
    const intruder = gateway('egw', 'red-x', 'n2', '100.64.0.99', 'red', { owner: null });
    const s = compute(base([intruder]));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11')]);
    expect(refusedIssues(s)).toEqual(['egw/red-x']);
  });

  it('Kubernetes shape: a ReplicaSet <egw>-<pod-template-hash> of an existing EgressGateway is allowed, another is not', () => {
    const ok = compute(base(onlyRed(rsOwned('gateways-5d8f7', '5d8f7'))));
    expect(clientRoutes(ok, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11')]);
    expect(refusedIssues(ok)).toEqual([]);
    const other = compute(base(onlyRed(rsOwned('web-5d8f7', '5d8f7'))));
    expect(other.clients[0]?.rules[0]?.reason).toBe('no-gateway-allowed');
    expect(other.issues[0]?.message).toContain('belongs to no EgressGateway (egw/web does not exist)');
    const badHash = compute(base(onlyRed(rsOwned('gateways-5d8f7', 'zzz'))));
    expect(badHash.clients[0]?.rules[0]?.reason).toBe('no-gateway-allowed');
  });

  it('the owner must exist in the pod’s namespace, with the uid the reference names', () => {
    const noOwner = compute(base(onlyRed({})).filter((r) => !(r.kind === 'EgressGateway' && r.metadata.namespace === 'egw')));
    expect(clientRoutes(noOwner, '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    expect(noOwner.issues[0]?.message).toContain('its owner EgressGateway egw/gateways does not exist');
    const withUid = (uid: string) => onlyRed({ owner: { apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: 'gateways', uid } });
    const stored = [egressGateway('egw', 'gateways', 'uid-1')];
    expect(clientRoutes(compute(base([...stored, ...withUid('uid-1')])), '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11')]);
    const stale = compute(base([...stored, ...withUid('uid-0')]));
    expect(clientRoutes(stale, '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    expect(stale.issues[0]?.message).toContain('with uid uid-0, the stored one has uid-1');
    // Another kind of controller is not a gateway owner.
    const job = compute(base(onlyRed({ owner: { apiVersion: 'batch/v1', kind: 'Job', name: 'gateways' } })));
    expect(job.clients[0]?.rules[0]?.reason).toBe('no-gateway-allowed');
  });

  it(`a namespace labelled ${GATEWAY_PODS_ALLOWED_LABEL}=true may run hand-made gateways`, () => {
    const s = compute(base(onlyRed({ owner: null }), { [GATEWAY_PODS_ALLOWED_LABEL]: 'true' }));
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11')]);
    const other = compute(base(onlyRed({ owner: null }), { [GATEWAY_PODS_ALLOWED_LABEL]: 'yes' }));
    expect(clientRoutes(other, '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
  });

  it('events: the owner deleted, re-created, the namespace label added and removed — each matches a fresh computation', () => {
    const res = base(onlyRed({ owner: null }).map((p, i) => (i === 0 ? gateway('egw', 'red-1', 'n2', '100.64.0.10', 'red') : p)));
    const calc = new EgressCalculator('n1').load({ resources: res });
    expect(clientRoutes(calc.result(), '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10')]);
    calc.delete('EgressGateway', 'gateways', 'egw');
    expect(clientRoutes(calc.result(), '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    calc.upsert(namespace('egw', undefined, { [GATEWAY_PODS_ALLOWED_LABEL]: 'true' }));
    expect(clientRoutes(calc.result(), '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11')]);
    calc.upsert(namespace('egw'));
    expect(clientRoutes(calc.result(), '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    calc.upsert(egressGateway('egw'));
    const last = calc.result();
    expect(clientRoutes(last, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10')]);
    expect(JSON.stringify(last)).toBe(JSON.stringify(compute([...res.filter((r) => r.kind !== 'Namespace' || r.metadata.name !== 'egw'), namespace('egw')])));
  });

  it('a refused local gateway pod says why in localGateways', () => {
    const s = compute(base([gateway('egw', 'red-9', 'n1', '100.64.0.19', 'red', { owner: null })]));
    const local = s.localGateways.find((g) => g.pod === 'egw/red-9');
    expect(local?.ready).toBe(false);
    expect(local?.reason).toContain('not allowed as a gateway: not owned by an EgressGateway');
  });
});

describe('long-running: per-key state is pruned when its keys go (docs/security.md, 11)', () => {
  it('the per-namespace configuration cache returns to zero once namespaces and their pods are gone', () => {
    const calc = new EgressCalculator('n1').load({ resources: world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS }) });
    const size = () => (calc as unknown as { nsConfigKeys: Map<string, unknown>; egressGateways: Map<string, unknown> });
    const base = size().nsConfigKeys.size;
    for (let i = 0; i < 100; i++) {
      calc.upsert(namespace(`tmp-${i}`, i % 2 === 0 ? { [SEL]: RED, [NSSEL]: EGW_NS } : undefined));
      calc.upsert(pod(`tmp-${i}`, 'p', { node: 'n1', ip: `10.2.1.${i + 1}` }));
      calc.upsert(egressGateway(`tmp-${i}`));
    }
    calc.result();
    expect(size().nsConfigKeys.size).toBe(base + 100);
    for (let i = 0; i < 100; i++) {
      // Either order: the namespace first, or its pod first.
      if (i % 3 === 0) calc.delete('Namespace', `tmp-${i}`);
      calc.delete('Pod', 'p', `tmp-${i}`);
      if (i % 3 !== 0) calc.delete('Namespace', `tmp-${i}`);
      calc.delete('EgressGateway', OWNER, `tmp-${i}`);
    }
    calc.result();
    expect(size().nsConfigKeys.size).toBe(base);
    expect([...size().egressGateways.keys()].sort()).toEqual(['app', 'egw']);
  });
});

describe('gateways: readiness, polls, and never clients', () => {
  const base = (more: CalcResource[]) => world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS }, more);
  const cases: { name: string; red1: Parameters<typeof gateway>[5]; usable: boolean }[] = [
    { name: 'Running with IP', red1: {}, usable: true },
    { name: 'Ready condition True', red1: { ready: 'True' }, usable: true },
    { name: 'Ready condition False', red1: { ready: 'False' }, usable: false },
    { name: 'Pending', red1: { phase: 'Pending' }, usable: false },
    { name: 'terminating (goes at once)', red1: { deleting: true }, usable: false },
    { name: 'hostNetwork', red1: { hostNetwork: true }, usable: false },
  ];
  for (const c of cases) {
    it(`datastore readiness: ${c.name}`, () => {
      const s = compute(base([gateway('egw', 'red-1', 'n2', '100.64.0.10', 'red', c.red1)]));
      expect(clientRoutes(s, '10.2.0.11')).toEqual([via('0.0.0.0/0', ...(c.usable ? ['100.64.0.10', '100.64.0.11'] : ['100.64.0.11']))]);
    });
  }

  it('without an IP a gateway is unusable', () => {
    const noIp = pod('egw', 'red-1', { node: 'n2', labels: { 'egress-code': 'red' }, health: true });
    expect(clientRoutes(compute(base([noIp])), '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.11')]);
  });

  it('poll verdicts: down removes a gateway, a verdict about another address is ignored, down ones stay polled', () => {
    const down = compute(base([]), { gatewayHealth: [{ gateway: 'egw/red-1', ip: '100.64.0.10', up: false }] });
    expect(clientRoutes(down, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.11')]);
    expect(down.pollTargets).toEqual([
      { gateway: 'egw/red-1', ip: '100.64.0.10', port: 8080 },
      { gateway: 'egw/red-2', ip: '100.64.0.11', port: 8080 },
    ]);
    const stale = compute(base([]), { gatewayHealth: [{ gateway: 'egw/red-1', ip: '100.64.0.99', up: false }] });
    expect(clientRoutes(stale, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11')]);
    const allDown = compute(base([]), {
      gatewayHealth: [
        { gateway: 'egw/red-1', ip: '100.64.0.10', up: false },
        { gateway: 'egw/red-2', ip: '100.64.0.11', up: false },
      ],
    });
    expect(clientRoutes(allDown, '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    expect(allDown.pollTargets.map((t) => t.gateway)).toEqual(['egw/red-1', 'egw/red-2']);
  });

  it('only remote gateways with a health port are polled; others rely on the datastore', () => {
    const noPort = gateway('egw', 'red-2', 'n3', '100.64.0.11', 'red', { health: false });
    const local = gateway('egw', 'red-9', 'n1', '100.64.0.19', 'red');
    const s = compute(base([noPort, local]));
    expect(s.pollTargets).toEqual([{ gateway: 'egw/red-1', ip: '100.64.0.10', port: 8080 }]);
    expect(s.gateways).toEqual([
      { pod: 'egw/red-1', ip: '100.64.0.10', nodeName: 'n2', nodeIp: '10.1.0.2', local: false },
      { pod: 'egw/red-2', ip: '100.64.0.11', nodeName: 'n3', nodeIp: '10.1.0.3', local: false },
      { pod: 'egw/red-9', ip: '100.64.0.19', nodeName: 'n1', nodeIp: '10.1.0.1', local: true },
    ]);
  });

  it('a pod matched by a selector in use is a gateway, never a client (even in an annotated namespace)', () => {
    const s = compute(world('EnabledPerNamespace', { [SEL]: RED }, [gateway('app', 'red-app', 'n1', '100.64.0.30', 'red')]));
    expect(s.clients.map((c) => c.pod)).toEqual(['app/c1']);
    expect(s.ignored).toEqual([{ pod: 'app/red-app', reason: expect.stringMatching(/egress gateway/) as unknown }]);
    expect(s.localGateways).toEqual([{ pod: 'app/red-app', ip: '100.64.0.30', ready: true }]);
  });

  it('hostNetwork and finished pods are never clients', () => {
    const s = compute(world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS }, [
      pod('app', 'h', { node: 'n1', ip: '10.1.0.1', hostNetwork: true }),
      pod('app', 'done', { node: 'n1', ip: '10.2.0.99', phase: 'Succeeded' }),
    ]));
    expect(s.clients.map((c) => c.pod)).toEqual(['app/c1']);
    expect(s.ignored.map((i) => i.pod)).toEqual(['app/done', 'app/h']);
  });

  it('a client without an address is reported but gets no rule', () => {
    const s = compute(world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS }, [pod('app', 'c0', { node: 'n1', phase: 'Pending' })]));
    expect(s.clients.find((c) => c.pod === 'app/c0')).toMatchObject({ state: 'no-ip', table: undefined });
    expect(s.tables.flatMap((t) => t.clientIps)).toEqual(['10.2.0.11']);
  });
});

describe('cluster destinations', () => {
  it('every table throws the cluster CIDRs and the node addresses they do not cover', () => {
    const s = compute(world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS }), { clusterCidrs: ['10.2.0.0/16', '10.96.0.0/12', '10.2.5.0/24', 'fd00::/64'] });
    expect(s.clusterThrows).toEqual(['10.1.0.1/32', '10.1.0.2/32', '10.1.0.3/32', '10.2.0.0/16', '10.96.0.0/12']);
    expect(s.tables[0]?.routes).toEqual([
      thrw('10.1.0.1/32'), thrw('10.1.0.2/32'), thrw('10.1.0.3/32'), thrw('10.2.0.0/16'), thrw('10.96.0.0/12'),
      via('0.0.0.0/0', '100.64.0.10', '100.64.0.11'),
    ]);
    const covered = compute(world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS }), { clusterCidrs: ['10.1.0.0/24', 'bogus'] });
    expect(covered.clusterThrows).toEqual(['10.1.0.0/24']);
    expect(covered.issues).toEqual([{ code: 'InvalidClusterCidr', message: expect.stringContaining('bogus') as unknown }]);
  });

  it('a policy rule inside the cluster is skipped: cluster traffic never goes through a gateway', () => {
    const p = policy('p', [
      { destination: { cidr: '10.2.3.0/24' }, gateway: { selector: RED, namespaceSelector: EGW_NS } },
      { destination: { cidr: '10.1.0.2/32' }, gateway: { selector: RED, namespaceSelector: EGW_NS } },
      { gateway: { selector: RED, namespaceSelector: EGW_NS } },
    ]);
    const s = compute(world('EnabledPerNamespaceOrPerPod', { [POLICY]: 'p' }, [p]), { clusterCidrs: ['10.2.0.0/16'] });
    expect(clientRoutes(s, '10.2.0.11')).toEqual([via('0.0.0.0/0', '100.64.0.10', '100.64.0.11')]);
    expect(s.clients[0]?.rules.map((r) => r.reason)).toEqual(['cluster-destination', 'cluster-destination', undefined]);
  });
});

describe('tables', () => {
  const clients = (n: number, annotations: (i: number) => Record<string, string> | undefined) =>
    Array.from({ length: n }, (_, i) => pod('app', `p${i}`, { node: 'n1', ip: `10.2.0.${100 + i}`, ...(annotations(i) === undefined ? {} : { annotations: annotations(i)! }) }));

  it('clients with identical routes share one table; tables grow with configurations, not pods', () => {
    const s = compute(world('EnabledPerNamespaceOrPerPod', { [SEL]: RED, [NSSEL]: EGW_NS }, clients(20, (i) => (i % 2 === 0 ? { [SEL]: BLUE, [NSSEL]: EGW_NS } : undefined))));
    expect(s.tables.map((t) => t.id)).toEqual([1, 2]);
    expect(s.tables.map((t) => t.clientIps.length).sort()).toEqual([10, 11]);
    expect(new Set(s.clients.map((c) => c.table))).toEqual(new Set([1, 2]));
  });

  it('table ids stay put when unrelated clients come and go (previous bindings fed back)', () => {
    const calc = new EgressCalculator('n1');
    calc.load({ resources: world('EnabledPerNamespaceOrPerPod', { [SEL]: RED, [NSSEL]: EGW_NS }) });
    let s = calc.result();
    calc.setPreviousTables(s.tables);
    const blueClient = pod('app', 'b', { node: 'n1', ip: '10.2.0.50', annotations: { [SEL]: BLUE, [NSSEL]: EGW_NS } });
    const ownClient = pod('app', 'o', { node: 'n1', ip: '10.2.0.51', annotations: { [SEL]: "egress-code == 'none'", [NSSEL]: EGW_NS } });
    calc.upsert(ownClient);
    s = calc.result();
    calc.setPreviousTables(s.tables);
    calc.upsert(blueClient);
    s = calc.result();
    calc.setPreviousTables(s.tables);
    const before = new Map(s.tables.map((t) => [t.key, t.id]));
    calc.delete('Pod', 'o', 'app');
    s = calc.result();
    calc.setPreviousTables(s.tables);
    calc.delete('Pod', 'c1', 'app');
    s = calc.result();
    expect(s.tables.map((t) => [t.key, t.id])).toEqual([[expect.any(String), before.get(s.tables[0]!.key)]]);
    expect(s.tables[0]?.clientIps).toEqual(['10.2.0.50']);
  });

  it('running out of tables fails the extra route sets closed and says so', () => {
    const fc = felix('EnabledPerNamespaceOrPerPod', { routeTableRanges: [{ min: 252, max: 256 }] });
    const many = clients(4, (i) => ({ [SEL]: `egress-code == 'x${i}'`, [NSSEL]: EGW_NS }));
    const extraGws = [0, 1, 2, 3].map((i) => gateway('egw', `x${i}`, 'n2', `100.64.1.${i + 1}`, `x${i}`));
    const s = compute([...world('EnabledPerNamespaceOrPerPod', undefined, [...many, ...extraGws]), fc]);
    // 252 and 256 are usable (253–255 are the kernel's): the fail-closed set takes the first, x0 the other.
    expect(s.tables.map((t) => [t.id, t.routes.at(-1)])).toEqual([
      [252, unreachable('0.0.0.0/0')],
      [256, via('0.0.0.0/0', '100.64.1.1')],
    ]);
    expect(s.tables[0]?.clientIps).toEqual(['10.2.0.101', '10.2.0.102', '10.2.0.103']);
    expect(s.clients.find((c) => c.pod === 'app/p3')).toMatchObject({ state: 'fail-closed', table: 252, rules: [{ reason: 'route-tables-exhausted' }] });
    expect(s.issues.map((i) => i.code)).toEqual(['RouteTablesExhausted']);
  });
});

describe('return path on a gateway’s node', () => {
  const remote = [
    pod('app', 'r1', { node: 'n2', ip: '10.2.1.1' }),
    pod('app', 'r2', { node: 'n3', ip: '10.2.2.1' }),
    pod('app', 'r3', { node: 'n9', ip: '10.2.9.1', hostIP: '10.1.0.9' }),
  ];

  it('lists the remote clients that may use a local gateway, with their node addresses', () => {
    const s = compute(world('EnabledPerNamespace', { [SEL]: BLUE, [NSSEL]: EGW_NS }, remote));
    expect(s.returnPath).toEqual({
      gatewayPodIps: ['100.64.0.20'],
      clients: [
        { ip: '10.2.1.1', nodeIp: '10.1.0.2' },
        { ip: '10.2.2.1', nodeIp: '10.1.0.3' },
        { ip: '10.2.9.1', nodeIp: '10.1.0.9' },
      ],
    });
    // Only red in use: blue-1 is no gateway, nobody returns through this node.
    const red = compute(world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS }, remote));
    expect(red.returnPath).toBeUndefined();
    expect(red.localGateways).toEqual([]);
    // Blue in use by someone else: blue-1 is a gateway, but red's clients do not return through it.
    const both = compute(world('EnabledPerNamespaceOrPerPod', { [SEL]: RED, [NSSEL]: EGW_NS }, [...remote, pod('other', 'b', { node: 'n1', ip: '10.2.0.77', annotations: { [SEL]: BLUE, [NSSEL]: EGW_NS } })]));
    expect(both.returnPath).toEqual({ gatewayPodIps: ['100.64.0.20'], clients: [] });
    expect(compute([felix('EnabledPerNamespace'), ...NODES]).returnPath).toBeUndefined();
  });

  it('with maxNextHops only clients whose stored choice names a local gateway', () => {
    const ann = { [SEL]: BLUE, [NSSEL]: EGW_NS, [MAXHOPS]: '1' };
    const key = selectionKey(BLUE, { kind: 'namespaceSelector', selector: EGW_NS });
    const rec = (client: string, node: string, gw: string): EgressNextHops => ({ client, podUID: client, node, rules: { [key]: { maxNextHops: 1, gateways: [gw] } } });
    const s = compute(world('EnabledPerNamespace', ann, remote), { nextHops: [rec('app/r1', 'n2', 'egw/blue-1'), rec('app/r2', 'n3', 'egw/blue-2')] });
    // r1 chose the local blue-1, r2 the remote blue-2, r3 has no record yet (it may choose either).
    expect(s.returnPath?.clients.map((c) => c.ip)).toEqual(['10.2.1.1', '10.2.9.1']);
  });
});

describe('FelixConfiguration', () => {
  it('VXLAN, rule priority, poll settings from default, overridden per node', () => {
    const fc = felix('EnabledPerNamespace', { egressIPVXLANVNI: 5000, egressIPVXLANPort: 4800, egressIPRoutingRulePriority: 90, egressGatewayPollInterval: '200ms', egressGatewayPollFailureCount: 2 });
    const nodeFc = felix('Disabled', { egressIPRoutingRulePriority: 95 }, 'node.n1');
    const s = compute([...world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS }), fc, nodeFc]);
    expect(s.vxlan).toEqual({ vni: 5000, port: 4800, localIp: '10.1.0.1' });
    expect(s.rulePriority).toBe(95);
    expect(s.poll).toEqual({ interval: '200ms', failureCount: 2 });
    // egressIPSupport is read from default only.
    expect(s.egressIPSupport).toBe('EnabledPerNamespace');
  });

  it('no FelixConfiguration at all means Disabled', () => {
    expect(compute([...NODES, ...gateways(), namespace('app', { [SEL]: RED })]).egressIPSupport).toBe('Disabled');
  });

  it('an unknown node address is an issue, not a crash', () => {
    const s = compute([felix('EnabledPerNamespace'), ...gateways(), namespace('app', { [SEL]: RED, [NSSEL]: EGW_NS }), pod('app', 'c1', { node: 'n1', ip: '10.2.0.11' })]);
    expect(s.vxlan?.localIp).toBeUndefined();
    expect(s.issues.map((i) => i.code)).toEqual(['NodeAddressUnknown']);
    expect(s.gateways.map((g) => g.nodeIp)).toEqual([undefined, undefined]);
  });
});

describe('incremental updates (each compared with a fresh computation)', () => {
  const ann = { [SEL]: BLUE, [NSSEL]: EGW_NS, [MAXHOPS]: '1' };
  const key = selectionKey(BLUE, { kind: 'namespaceSelector', selector: EGW_NS });
  const remoteClient = pod('app', 'r1', { node: 'n2', ip: '10.2.1.1', uid: 'u-r1' });
  const rec = (gw: string): EgressNextHops => ({ client: 'app/r1', podUID: 'u-r1', node: 'n2', rules: { [key]: { maxNextHops: 1, gateways: [gw] } } });

  function check(calc: EgressCalculator, resources: CalcResource[], nextHops: EgressNextHops[] = []): void {
    expect(calc.result()).toEqual(compute(resources, { nextHops }));
  }

  it('a stored choice moving between gateways moves the client in and out of the return path', () => {
    const res = world('EnabledPerNamespace', ann, [remoteClient]);
    const calc = new EgressCalculator('n1').load({ resources: res, nextHops: [rec('egw/blue-2')] });
    expect(calc.result().returnPath?.clients).toEqual([]);
    calc.upsertNextHops(rec('egw/blue-1'));
    expect(calc.result().returnPath?.clients).toEqual([{ ip: '10.2.1.1', nodeIp: '10.1.0.2' }]);
    check(calc, res, [rec('egw/blue-1')]);
    calc.deleteNextHops('app/r1');
    check(calc, res);
  });

  it('a local gateway relabelled, a namespace relabelled, a node readdressed', () => {
    const res = world('EnabledPerNamespace', { [SEL]: BLUE, [NSSEL]: "team == 'net'" }, [remoteClient, namespace('egw', undefined, { team: 'net' })]);
    const calc = new EgressCalculator('n1').load({ resources: res });
    expect(calc.result().returnPath?.clients).toHaveLength(1);
    const relabelled = gateway('egw', 'blue-1', 'n1', '100.64.0.20', 'red');
    calc.upsert(relabelled);
    check(calc, [...res, relabelled]);
    expect(calc.result().returnPath).toBeUndefined();
    calc.upsert(gateway('egw', 'blue-1', 'n1', '100.64.0.20', 'blue'));
    calc.upsert(namespace('egw'));
    check(calc, [...res, namespace('egw')]);
    expect(clientRoutes(calc.result(), '10.2.0.11')).toEqual([unreachable('0.0.0.0/0')]);
    calc.upsert(namespace('egw', undefined, { team: 'net' }));
    calc.upsert(node('n2', '10.1.0.22'));
    expect(calc.result().returnPath?.clients).toEqual([{ ip: '10.2.1.1', nodeIp: '10.1.0.22' }]);
  });

  it('many return entries at once (a gateway arrives on or leaves this node) match a fresh computation', () => {
    const many = Array.from({ length: 400 }, (_, i) => pod('app', `m${i}`, { node: i % 2 === 0 ? 'n2' : 'n3', ip: `10.3.${i >> 8}.${i & 255}` }));
    const res = world('EnabledPerNamespace', { [SEL]: BLUE, [NSSEL]: EGW_NS }, many);
    const calc = new EgressCalculator('n1').load({ resources: res });
    expect(calc.result().returnPath?.clients).toHaveLength(400);
    const away = gateway('egw', 'blue-1', 'n2', '100.64.0.20', 'blue');
    calc.upsert(away);
    check(calc, [...res, away]);
    expect(calc.result().returnPath).toBeUndefined();
    const back = gateway('egw', 'blue-1', 'n1', '100.64.0.20', 'blue');
    calc.upsert(back);
    check(calc, [...res, back]);
    // Then single changes again (binary-search updates of the rebuilt list).
    calc.delete('Pod', 'm7', 'app');
    const moved = pod('app', 'm8', { node: 'n3', ip: '10.3.0.8' });
    calc.upsert(moved);
    check(calc, [...res.filter((r) => r.metadata.name !== 'm7' && r.metadata.name !== 'm8'), back, moved]);
  });

  it('returns the same object until something changes; unchanged upserts change nothing', () => {
    const res = world('EnabledPerNamespace', { [SEL]: RED, [NSSEL]: EGW_NS });
    const calc = new EgressCalculator('n1').load({ resources: res });
    const first = calc.result();
    for (const r of res) calc.upsert(structuredClone(r));
    calc.delete('Pod', 'absent', 'app');
    calc.setClusterCidrs([]);
    expect(calc.result()).toBe(first);
  });
});
