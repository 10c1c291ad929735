import { describe, expect, it } from 'vitest';
import { GATEWAY_MAINTENANCE_ANNOTATIONS, type Pod } from '../../src/api/index.js';
import { EgressCalculator } from '../../src/calc/calculator.js';
import { planGatewayMaintenance, terminatingGatewaysByClient, withMaintenance, type MaintenancePlan } from '../../src/calc/maintenance.js';
import { selectionKey } from '../../src/calc/selection.js';
import type { CalcResource, EgressNextHops } from '../../src/calc/types.js';
import { egressGateway, felix, gateway, MAXHOPS, namespace, NODES, pod, policy, POLICY, SEL } from './fixtures.js';

const [IP, STARTED, FINISHED] = GATEWAY_MAINTENANCE_ANNOTATIONS;
const RED = "egress-code == 'red'";
const T0 = Date.parse('2026-12-08T04:00:00Z');

/** A gateway being deleted at `T0 + deleteAtS` seconds with a grace of `grace` seconds. */
function terminating(p: Pod, deletionS: number, grace: number | undefined): Pod {
  return { ...p, metadata: { ...p.metadata, deletionTimestamp: new Date(T0 + deletionS * 1000).toISOString().replace('.000Z', 'Z'), ...(grace === undefined ? {} : { deletionGracePeriodSeconds: grace }) } };
}

const red1 = gateway('app', 'red-1', 'n2', '100.64.0.1', 'red');
const red2 = gateway('app', 'red-2', 'n3', '100.64.0.2', 'red');
const client = pod('app', 'c1', { node: 'n1', ip: '10.2.0.1', uid: 'u-c1' });
const other = pod('other', 'o1', { node: 'n1', ip: '10.2.0.2' });
// The gateways' owner (only EgressGateway-owned pods act as gateways; docs/security.md, 7).
const base: CalcResource[] = [felix('EnabledPerNamespaceOrPerPod'), ...NODES, namespace('app', { [SEL]: RED }), egressGateway('app'), namespace('other'), client, other];

/** Applies the plan's patches to the pods of `resources` (as the reconciler does). */
function apply(resources: CalcResource[], plan: MaintenancePlan): CalcResource[] {
  return resources.map((r) => {
    if (r.kind !== 'Pod') return r;
    const p = plan.patches.find((x) => x.namespace === r.metadata.namespace && x.name === r.metadata.name);
    if (p === undefined) return r;
    const annotations = withMaintenance(r.metadata.annotations, p.set);
    const { annotations: _old, ...meta } = r.metadata;
    return { ...r, metadata: { ...meta, ...(annotations === undefined ? {} : { annotations }) } };
  });
}

function annotationsOf(resources: CalcResource[], name: string): Record<string, string> | undefined {
  return resources.find((r): r is Pod => r.kind === 'Pod' && r.metadata.name === name)?.metadata.annotations;
}

describe('planGatewayMaintenance', () => {
  it('annotates the clients of a terminating gateway with its address, start (deletion − grace) and finish (deletion)', () => {
    const res = [...base, terminating(red1, 60, 60), red2];
    const plan = planGatewayMaintenance({ resources: res, nowMs: T0 });
    expect(plan.patches).toEqual([{ namespace: 'app', name: 'c1', uid: 'u-c1', set: { gatewayIP: '100.64.0.1', started: '2026-12-08T04:00:00Z', finished: '2026-12-08T04:01:00Z' } }]);
    const after = apply(res, plan);
    expect(annotationsOf(after, 'c1')).toEqual({ [IP]: '100.64.0.1', [STARTED]: '2026-12-08T04:00:00Z', [FINISHED]: '2026-12-08T04:01:00Z' });
    // Idempotent: planning again changes nothing; the pod outside egress is never touched.
    expect(planGatewayMaintenance({ resources: after, nowMs: T0 + 5_000 }).patches).toEqual([]);
  });

  it('uses spec.terminationGracePeriodSeconds when deletionGracePeriodSeconds is absent, and warns nobody with grace 0', () => {
    const withSpecGrace: Pod = { ...red1, spec: { ...red1.spec, terminationGracePeriodSeconds: 10 } };
    const a = planGatewayMaintenance({ resources: [...base, terminating(withSpecGrace, 10, undefined)], nowMs: T0 });
    expect(a.patches[0]?.set).toEqual({ gatewayIP: '100.64.0.1', started: '2026-12-08T04:00:00Z', finished: '2026-12-08T04:00:10Z' });
    expect(planGatewayMaintenance({ resources: [...base, terminating(red1, 0, 0)], nowMs: T0 }).patches).toEqual([]);
  });

  it('never clobbers other annotations, and removes its own once the gateway is gone and its finish time passed', () => {
    const annotated = pod('app', 'c1', { node: 'n1', ip: '10.2.0.1', uid: 'u-c1', annotations: { 'example.com/keep': 'me' } });
    let res: CalcResource[] = [...base.filter((r) => r !== client), annotated, terminating(red1, 30, 30), red2];
    res = apply(res, planGatewayMaintenance({ resources: res, nowMs: T0 }));
    expect(annotationsOf(res, 'c1')?.['example.com/keep']).toBe('me');
    expect(annotationsOf(res, 'c1')?.[IP]).toBe('100.64.0.1');
    // The gateway exits early (10 s into a 30 s grace): the warning stays until the finish time.
    res = res.filter((r) => r.metadata.name !== 'red-1');
    const early = planGatewayMaintenance({ resources: res, nowMs: T0 + 10_000 });
    expect(early.patches).toEqual([]);
    expect(early.nextCheckMs).toBe(T0 + 30_000);
    const late = planGatewayMaintenance({ resources: res, nowMs: T0 + 30_000 });
    expect(late.patches).toEqual([{ namespace: 'app', name: 'c1', uid: 'u-c1', set: undefined }]);
    res = apply(res, late);
    expect(annotationsOf(res, 'c1')).toEqual({ 'example.com/keep': 'me' });
  });

  it('keeps them while the gateway pod is still there past its finish time; removes them when the client stops using it', () => {
    let res: CalcResource[] = [...base, terminating(red1, 30, 30), red2];
    res = apply(res, planGatewayMaintenance({ resources: res, nowMs: T0 }));
    expect(planGatewayMaintenance({ resources: res, nowMs: T0 + 60_000 }).patches).toEqual([]);
    // The namespace now selects blue gateways: c1 no longer routes through red-1.
    const moved = res.map((r) => (r.kind === 'Namespace' && r.metadata.name === 'app' ? namespace('app', { [SEL]: "egress-code == 'blue'" }) : r));
    expect(planGatewayMaintenance({ resources: moved, nowMs: T0 }).patches).toEqual([{ namespace: 'app', name: 'c1', uid: 'u-c1', set: undefined }]);
  });

  it('a gateway that exits early keeps its warning until its finish time, even while another one terminates', () => {
    let res: CalcResource[] = [...base, terminating(red1, 30, 30), red2];
    res = apply(res, planGatewayMaintenance({ resources: res, nowMs: T0 }));
    // red-1 exits at once; red-2 starts terminating (finishing later): the warning about red-1 stands.
    res = res.filter((r) => r.metadata.name !== 'red-1').map((r) => (r.metadata.name === 'red-2' ? terminating(red2, 50, 30) : r));
    const during = planGatewayMaintenance({ resources: res, nowMs: T0 + 25_000 });
    expect(during.patches).toEqual([]);
    expect(during.nextCheckMs).toBe(T0 + 30_000);
    // At red-1's finish time, red-2's warning replaces it.
    expect(planGatewayMaintenance({ resources: res, nowMs: T0 + 30_000 }).patches[0]?.set).toEqual({ gatewayIP: '100.64.0.2', started: '2026-12-08T04:00:20Z', finished: '2026-12-08T04:00:50Z' });
  });

  it('several terminating gateways: the one finishing first, then the next', () => {
    let res: CalcResource[] = [...base, terminating(red1, 90, 60), terminating(red2, 40, 30)];
    res = apply(res, planGatewayMaintenance({ resources: res, nowMs: T0 }));
    expect(annotationsOf(res, 'c1')?.[IP]).toBe('100.64.0.2');
    res = res.filter((r) => r.metadata.name !== 'red-2');
    const plan = planGatewayMaintenance({ resources: res, nowMs: T0 + 41_000 });
    expect(plan.patches[0]?.set).toEqual({ gatewayIP: '100.64.0.1', started: '2026-12-08T04:00:30Z', finished: '2026-12-08T04:01:30Z' });
  });

  it('follows policies, namespaceSelectors, per-pod annotations and egressIPSupport', () => {
    const pol = policy('p', [{ destination: { cidr: '198.18.0.0/15' }, gateway: { selector: RED, namespaceSelector: "projectcalico.org/name == 'app'" } }]);
    const byPolicy = pod('other', 'o2', { node: 'n1', ip: '10.2.0.3', annotations: { [POLICY]: 'p' } });
    const res = [...base, pol, byPolicy, terminating(red1, 30, 30)];
    expect(planGatewayMaintenance({ resources: res, nowMs: T0 }).patches.map((p) => p.name)).toEqual(['c1', 'o2']);
    // Per-pod annotations are ignored in EnabledPerNamespace; nothing at all when Disabled.
    const perNs = res.map((r) => (r.kind === 'FelixConfiguration' ? felix('EnabledPerNamespace') : r));
    expect(planGatewayMaintenance({ resources: perNs, nowMs: T0 }).patches.map((p) => p.name)).toEqual(['c1']);
    const off = res.map((r) => (r.kind === 'FelixConfiguration' ? felix('Disabled') : r));
    expect(planGatewayMaintenance({ resources: off, nowMs: T0 }).patches).toEqual([]);
  });

  it('maxNextHops: only clients whose stored choice names the gateway; a gateway is never a client', () => {
    const key = selectionKey(RED, { kind: 'namespace', namespace: 'app' });
    const hop = pod('app', 'c2', { node: 'n1', ip: '10.2.0.4', uid: 'u-c2', annotations: { [SEL]: RED, [MAXHOPS]: '1' } });
    const records: EgressNextHops[] = [{ client: 'app/c2', podUID: 'u-c2', node: 'n1', rules: { [key]: { maxNextHops: 1, gateways: ['app/red-2'] } } }];
    const res = [...base, hop, terminating(red1, 30, 30), red2];
    expect(planGatewayMaintenance({ resources: res, nextHops: records, nowMs: T0 }).patches.map((p) => p.name)).toEqual(['c1']);
    const relation = terminatingGatewaysByClient(res, records);
    expect([...relation.keys()]).toEqual(['app/c1']);
    // red-2 is a gateway (matched by the selection in use): never annotated even if terminating with red-1.
    expect(terminatingGatewaysByClient([...base, terminating(red1, 30, 30), terminating(red2, 30, 30)]).has('app/red-2')).toBe(false);
  });

  it('PreferNodeLocal: a terminating remote gateway does not concern a client with a ready local one', () => {
    const pol = policy('local', [{ gateway: { selector: RED, namespaceSelector: "projectcalico.org/name == 'app'" }, gatewayPreference: 'PreferNodeLocal' }]);
    const c = pod('other', 'o3', { node: 'n2', ip: '10.2.0.5', annotations: { [POLICY]: 'local' } });
    const far = pod('other', 'o4', { node: 'n1', ip: '10.2.0.6', annotations: { [POLICY]: 'local' } });
    const res = [...base.filter((r) => r !== client), pol, c, far, red1, terminating(red2, 30, 30)];
    expect(planGatewayMaintenance({ resources: res, nowMs: T0 }).patches.map((p) => p.name)).toEqual(['o4']);
  });
});

describe('maxNextHops while a chosen gateway drains (calc)', () => {
  it('the record keeps the terminating gateway beside its replacement; the routes use only the replacement', () => {
    const key = selectionKey(RED, { kind: 'namespace', namespace: 'app' });
    const hop = pod('app', 'c2', { node: 'n1', ip: '10.2.0.4', uid: 'u-c2', annotations: { [SEL]: RED, [MAXHOPS]: '1' } });
    const res: CalcResource[] = [...base.filter((r) => r !== client), hop, terminating(red1, 30, 30), red2];
    const stored: EgressNextHops = { client: 'app/c2', podUID: 'u-c2', node: 'n1', rules: { [key]: { maxNextHops: 1, gateways: ['app/red-1'] } } };
    const state = new EgressCalculator('n1').load({ resources: res, nextHops: [stored] }).result();
    expect(state.nextHops[0]?.rules[key]?.gateways).toEqual(['app/red-1', 'app/red-2']);
    expect(state.clients[0]?.rules[0]?.gateways).toEqual([{ pod: 'app/red-2', ip: '100.64.0.2' }]);
    // Fed back, the record is stable; once red-1 is gone it is dropped.
    const again = new EgressCalculator('n1').load({ resources: res, nextHops: state.nextHops }).result();
    expect(again.nextHops).toEqual(state.nextHops);
    const gone = new EgressCalculator('n1').load({ resources: res.filter((r) => r.metadata.name !== 'red-1'), nextHops: state.nextHops }).result();
    expect(gone.nextHops[0]?.rules[key]?.gateways).toEqual(['app/red-2']);
  });
});

describe('draining gateways in a node\'s state (calc)', () => {
  it('a terminating gateway leaves the routes at once and is listed as draining (a tunnel peer) until it is gone', () => {
    const res: CalcResource[] = [...base, terminating(red1, 30, 30), red2];
    const state = new EgressCalculator('n1').load({ resources: res }).result();
    expect(state.clients.find((c) => c.pod === 'app/c1')?.rules[0]?.gateways).toEqual([{ pod: 'app/red-2', ip: '100.64.0.2' }]);
    expect(state.draining).toEqual([{ pod: 'app/red-1', ip: '100.64.0.1', nodeName: 'n2', nodeIp: '10.1.0.2', local: false }]);
    expect(state.tunnelPeers).toContain('100.64.0.1');
    const gone = new EgressCalculator('n1').load({ resources: res.filter((r) => r.metadata.name !== 'red-1') }).result();
    expect(gone.draining).toEqual([]);
    expect(gone.tunnelPeers).not.toContain('100.64.0.1');
    // The last gateway draining: new flows fail closed, established ones keep their gateway.
    const last = new EgressCalculator('n1').load({ resources: [...base, terminating(red1, 30, 30)] }).result();
    expect(last.clients.find((c) => c.pod === 'app/c1')?.state).toBe('fail-closed');
    expect(last.draining.map((g) => g.pod)).toEqual(['app/red-1']);
  });
});
