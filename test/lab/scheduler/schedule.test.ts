import { describe, expect, it } from 'vitest';
import type { SchedNode, SchedPod } from '../../../src/lab/scheduler/model.js';
import { fitErrorMessage, planSchedule, scheduleOne, type SchedulePlan } from '../../../src/lab/scheduler/schedule.js';
import { AWS, NOW, ZONE, node, pod, redGateway, referenceNodes, snapshot } from './helpers.js';

const POLICY = { nodeReadyGraceMs: 40_000 };

function plan(nodes: SchedNode[], pods: SchedPod[], namespaces: [string, Record<string, string>][] = []): SchedulePlan {
  return planSchedule(snapshot(nodes, pods, namespaces), NOW, POLICY);
}

/** `pod → node` of the binds, and `pod: message` of the rest. */
function outcome(p: SchedulePlan): Record<string, string> {
  const out: Record<string, string> = {};
  for (const b of p.binds) out[b.pod.name] = b.node;
  for (const u of p.unschedulable) out[u.pod.name] = u.message;
  return out;
}

function one(nodes: SchedNode[], pods: SchedPod[], target: SchedPod): string {
  const r = scheduleOne(target, snapshot(nodes, pods), NOW, POLICY);
  return 'node' in r ? r.node : r.unschedulable.message;
}

const zoneOf = (name: string): string => (name.startsWith('node-a') ? 'us-west-2a' : 'us-west-2b');

describe('the reference document: egress-gateway-red (2 replicas, maxSkew 1 on the zone, DoNotSchedule, t3.large ENI mode)', () => {
  it('puts one gateway in each zone', () => {
    const p = plan(referenceNodes(), [redGateway('aaaaa'), redGateway('bbbbb')]);
    expect(p.unschedulable).toEqual([]);
    expect(p.binds.map((b) => zoneOf(b.node)).sort()).toEqual(['us-west-2a', 'us-west-2b']);
  });

  it('reads the operator-rendered pod: nodeSelector, the aws request, the spread constraint and the default zone anti-affinity', () => {
    const gw = redGateway('ccccc');
    expect(gw.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(gw.requests[AWS]).toBe(1);
    expect(gw.spread).toMatchObject([{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { 'egress-code': 'red' } } }]);
    expect(gw.preferredAntiAffinity).toMatchObject([{ weight: 1, term: { topologyKey: ZONE } }]);
  });

  it('a third replica may go to either zone (skew 1), and lands deterministically', () => {
    const pods = [redGateway('aaaaa', 'node-a1'), redGateway('bbbbb', 'node-b1'), redGateway('ccccc')];
    expect(outcome(plan(referenceNodes(), pods))).toEqual({ [pods[2]!.name]: 'node-a1' });
  });

  it("a second replica cannot go to the first one's zone: Kubernetes' message when the other zone is full", () => {
    // Zone a is full of other AWS-backed pods (2 per node); the first red gateway went to zone b.
    const blue = ['a1', 'a1', 'a2', 'a2'].map((n, i) => pod(`blue-${i}`, { namespace: 'calico-egress', nodeName: `node-${n}`, requests: { [AWS]: 1 }, limits: { [AWS]: 1 } }));
    const pods = [...blue, redGateway('aaaaa', 'node-b1'), redGateway('bbbbb')];
    const p = plan(referenceNodes(), pods);
    expect(p.binds).toEqual([]);
    expect(p.unschedulable.map((u) => u.message)).toEqual([
      '0/4 nodes are available: 2 Insufficient projectcalico.org/aws-secondary-ipv4, 2 node(s) didn\'t match pod topology spread constraints.',
    ]);
  });

  it('capacity: nine red replicas over two zones of 2 × 2 gateways; the ninth fits nowhere', () => {
    const pods = 'abcdefghj'.split('').map((s) => redGateway(s.repeat(5)));
    const p = plan(referenceNodes(), pods);
    expect(p.binds).toHaveLength(8);
    const perNode = p.binds.reduce<Record<string, number>>((acc, b) => ({ ...acc, [b.node]: (acc[b.node] ?? 0) + 1 }), {});
    expect(perNode).toEqual({ 'node-a1': 2, 'node-a2': 2, 'node-b1': 2, 'node-b2': 2 });
    // The zones alternate (maxSkew 1 and the default zone anti-affinity); the name breaks ties in a zone.
    expect(p.binds.slice(0, 4).map((b) => zoneOf(b.node))).toEqual(['us-west-2a', 'us-west-2b', 'us-west-2a', 'us-west-2b']);
    expect(p.unschedulable.map((u) => u.message)).toEqual(['0/4 nodes are available: 4 Insufficient projectcalico.org/aws-secondary-ipv4.']);
  });

  it('terminating gateways still hold their aws-secondary-ipv4 but no longer count for the spread', () => {
    const old = [redGateway('aaaaa', 'node-a1'), redGateway('bbbbb', 'node-a1')].map((p) => ({ ...p, terminating: true }));
    // node-a1 is full (2 terminating gateways). The spread ignores them, so zone a would be allowed, but the
    // default zone anti-affinity still sees them (Kubernetes does not skip terminating pods there): zone b.
    const p = plan(referenceNodes(), [...old, redGateway('ccccc')]);
    expect(p.binds.map((b) => b.node)).toEqual(['node-b1']);
    const onlyA = plan(referenceNodes().slice(0, 2), [...old, redGateway('ddddd')]);
    expect(onlyA.binds.map((b) => b.node)).toEqual(['node-a2']);
  });
});

describe('filters, with Kubernetes reasons', () => {
  const cases: { name: string; nodes: SchedNode[]; pods?: SchedPod[]; target: SchedPod; expect: string }[] = [
    {
      name: 'nodeSelector',
      nodes: [node('n1', { labels: { disk: 'ssd' } }), node('n2')],
      target: pod('p', { nodeSelector: { disk: 'ssd' } }),
      expect: 'n1',
    },
    {
      name: 'nodeSelector matching nothing',
      nodes: [node('n1'), node('n2')],
      target: pod('p', { nodeSelector: { disk: 'ssd' } }),
      expect: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
    },
    {
      name: 'untolerated NoSchedule taint',
      nodes: [node('n1', { taints: [{ key: 'dedicated', value: 'gw', effect: 'NoSchedule' }] }), node('n2', { taints: [{ key: 'x', effect: 'NoExecute' }] })],
      target: pod('p'),
      expect: '0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gw}, 1 node(s) had untolerated taint {x: }.',
    },
    {
      name: 'tolerated taint (Equal), PreferNoSchedule does not filter',
      nodes: [node('n1', { taints: [{ key: 'dedicated', value: 'gw', effect: 'NoSchedule' }] }), node('n2', { taints: [{ key: 'soft', effect: 'PreferNoSchedule' }] })],
      target: pod('p', { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gw', effect: 'NoSchedule' }] }),
      expect: 'n1',
    },
    {
      name: 'tolerate everything (operator Exists, no key)',
      nodes: [node('n1', { taints: [{ key: 'a', value: 'b', effect: 'NoSchedule' }] })],
      target: pod('p', { tolerations: [{ operator: 'Exists' }] }),
      expect: 'n1',
    },
    {
      name: 'cordoned node',
      nodes: [node('n1', { unschedulable: true }), node('n2', { taints: [{ key: 'k', value: 'v', effect: 'NoSchedule' }] })],
      target: pod('p'),
      expect: '0/2 nodes are available: 1 node(s) had untolerated taint {k: v}, 1 node(s) were unschedulable.',
    },
    {
      name: 'dead and not-ready nodes get the node lifecycle taints',
      nodes: [node('n1', { ready: 'stale' }), node('n2', { ready: 'False' }), node('n3', { ready: 'none' }), node('n4', { ready: 'Unknown' })],
      target: pod('p'),
      expect: '0/4 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 3 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.',
    },
    {
      name: 'a pod tolerating unreachable may go to a dead node',
      nodes: [node('n1', { ready: 'stale' })],
      target: pod('p', { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists' }] }),
      expect: 'n1',
    },
    {
      name: 'required node affinity: In / NotIn / Exists / DoesNotExist',
      nodes: [
        node('n1', { zone: 'z1', labels: { gpu: 'yes' } }),
        node('n2', { zone: 'z2', labels: { legacy: 'yes' } }),
        node('n3', { zone: 'z2' }),
      ],
      target: pod('p', {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE, operator: 'In', values: ['z2'] }, { key: 'legacy', operator: 'DoesNotExist' }, { key: 'gpu', operator: 'NotIn', values: ['yes'] }] }],
            },
          },
        },
      }),
      expect: 'n3',
    },
    {
      name: 'required node affinity: terms are ORed (Exists)',
      nodes: [node('n1'), node('n2', { labels: { gpu: 'yes' } })],
      target: pod('p', { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'nope', operator: 'Exists' }] }, { matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }] } } } }),
      expect: 'n2',
    },
    {
      name: 'required node affinity with no terms matches nothing',
      nodes: [node('n1')],
      target: pod('p', { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } } }),
      expect: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
    },
    {
      name: 'insufficient cpu and memory on one node (one reason each), enough on the other',
      nodes: [node('n1', { allocatable: { cpu: '2', memory: '4Gi' } }), node('n2', { allocatable: { cpu: '4', memory: '8Gi' } })],
      pods: [pod('big', { nodeName: 'n1', requests: { cpu: '1500m', memory: '3Gi' } })],
      target: pod('p', { requests: { cpu: '1', memory: '2Gi' } }),
      expect: 'n2',
    },
    {
      name: 'insufficient cpu and memory everywhere',
      nodes: [node('n1', { allocatable: { cpu: '2', memory: '4Gi' } })],
      pods: [pod('big', { nodeName: 'n1', requests: { cpu: '1500m', memory: '3Gi' } })],
      target: pod('p', { requests: { cpu: '1', memory: '2Gi' } }),
      expect: '0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.',
    },
    {
      name: 'a node that states no cpu is not limited by cpu; one without the extended resource has none of it',
      nodes: [node('n1', { allocatable: {} })],
      target: pod('p', { requests: { cpu: '64', [AWS]: 1 }, limits: { [AWS]: 1 } }),
      expect: '0/1 nodes are available: 1 Insufficient projectcalico.org/aws-secondary-ipv4.',
    },
    {
      name: 'limits stand in for missing requests',
      nodes: [node('n1', { allocatable: { [AWS]: 0 } })],
      target: pod('p', { limits: { [AWS]: 1 } }),
      expect: '0/1 nodes are available: 1 Insufficient projectcalico.org/aws-secondary-ipv4.',
    },
    {
      name: 'init containers: the max of init and the sum of containers',
      nodes: [node('n1', { allocatable: { cpu: '1' } })],
      target: pod('p', { requests: { cpu: '200m' }, initRequests: { cpu: '1500m' } }),
      expect: '0/1 nodes are available: 1 Insufficient cpu.',
    },
    {
      name: 'Too many pods',
      nodes: [node('n1', { allocatable: { pods: 1 } })],
      pods: [pod('there', { nodeName: 'n1' })],
      target: pod('p'),
      expect: '0/1 nodes are available: 1 Too many pods.',
    },
    {
      name: 'ended pods hold nothing',
      nodes: [node('n1', { allocatable: { [AWS]: 1 } })],
      pods: [pod('done', { nodeName: 'n1', requests: { [AWS]: 1 }, phase: 'Succeeded' })],
      target: pod('p', { requests: { [AWS]: 1 } }),
      expect: 'n1',
    },
    {
      name: 'no nodes at all',
      nodes: [],
      target: pod('p'),
      expect: 'no nodes available to schedule pods',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(one(c.nodes, c.pods ?? [], c.target)).toBe(c.expect);
    });
  }
});

describe('topology spread', () => {
  const web = { app: 'web' };
  const zoneSpread = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: web }, ...extra });
  const nodes = (): SchedNode[] => [node('a1', { zone: 'a' }), node('b1', { zone: 'b' }), node('c1', { zone: 'c' })];

  it('skew is counted over eligible nodes; the least loaded zones are the only ones allowed', () => {
    const pods = [pod('w1', { labels: web, nodeName: 'a1' }), pod('w2', { labels: web, nodeName: 'b1' })];
    expect(one(nodes(), pods, pod('w3', { labels: web, spread: [zoneSpread()] }))).toBe('c1');
  });

  it('pods of other namespaces, terminating pods and non-matching pods do not count', () => {
    const pods = [
      pod('x', { labels: web, nodeName: 'a1', namespace: 'other' }),
      pod('y', { labels: web, nodeName: 'a1', terminating: true }),
      pod('z', { labels: { app: 'db' }, nodeName: 'a1' }),
    ];
    expect(one(nodes(), pods, pod('w', { labels: web, spread: [zoneSpread()] }))).toBe('a1');
  });

  it('nodes the nodeSelector excludes are no domain (nodeAffinityPolicy Honor) unless Ignore', () => {
    const n = [node('a1', { zone: 'a' }), node('b1', { zone: 'b', labels: { pool: 'x' } })];
    const pods = [pod('w1', { labels: web, nodeName: 'b1' })];
    // Honor: only b exists for this pod, skew 1+1-1 = 1 → allowed.
    expect(one(n, pods, pod('w2', { labels: web, nodeSelector: { pool: 'x' }, spread: [zoneSpread()] }))).toBe('b1');
    // Ignore: zone a counts with 0 → skew on b = 2.
    expect(one(n, pods, pod('w3', { labels: web, nodeSelector: { pool: 'x' }, spread: [zoneSpread({ nodeAffinityPolicy: 'Ignore' })] }))).toBe(
      "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) didn't match pod topology spread constraints.",
    );
  });

  it('tainted nodes count as domains unless nodeTaintsPolicy is Honor', () => {
    const n = [node('a1', { zone: 'a', taints: [{ key: 'k', effect: 'NoSchedule' }] }), node('b1', { zone: 'b' })];
    const pods = [pod('w1', { labels: web, nodeName: 'b1' })];
    expect(one(n, pods, pod('w2', { labels: web, spread: [zoneSpread()] }))).toBe(
      "0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, 1 node(s) had untolerated taint {k: }.",
    );
    expect(one(n, pods, pod('w3', { labels: web, spread: [zoneSpread({ nodeTaintsPolicy: 'Honor' })] }))).toBe('b1');
  });

  it('a node without the topology key is rejected with (missing required label)', () => {
    const n = [node('a1', { zone: 'a', taints: [{ key: 'k', effect: 'NoSchedule' }] }), node('nozone')];
    expect(one(n, [], pod('w2', { labels: web, spread: [zoneSpread()] }))).toBe(
      "0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label), 1 node(s) had untolerated taint {k: }.",
    );
  });

  it('minDomains above the number of domains makes the global minimum 0', () => {
    const n = [node('a1', { zone: 'a' }), node('b1', { zone: 'b' })];
    const pods = [pod('w1', { labels: web, nodeName: 'a1' }), pod('w2', { labels: web, nodeName: 'b1' })];
    expect(one(n, pods, pod('w3', { labels: web, spread: [zoneSpread()] }))).toBe('a1');
    expect(one(n, pods, pod('w4', { labels: web, spread: [zoneSpread({ minDomains: 3 })] }))).toBe("0/2 nodes are available: 2 node(s) didn't match pod topology spread constraints.");
  });

  it('matchLabelKeys narrows the selector to pods with the same value', () => {
    const pods = [pod('old1', { labels: { ...web, rev: '1' }, nodeName: 'a1' }), pod('old2', { labels: { ...web, rev: '1' }, nodeName: 'a1' })];
    const spread = [{ ...zoneSpread(), labelSelector: { matchLabels: web }, matchLabelKeys: ['rev'] }];
    expect(one(nodes(), pods, pod('new', { labels: { ...web, rev: '2' }, spread }))).toBe('a1');
  });

  it('matchExpressions in the selector', () => {
    const pods = [pod('w1', { labels: { tier: 'gw' }, nodeName: 'a1' })];
    const spread = [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['gw', 'edge'] }] } }];
    expect(one([node('a1', { zone: 'a' }), node('b1', { zone: 'b' })], pods, pod('w2', { labels: { tier: 'edge' }, spread }))).toBe('b1');
  });

  it('hostname spreading, DoNotSchedule', () => {
    const pods = [pod('w1', { labels: web, nodeName: 'a1' })];
    const spread = [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: web } }];
    const n = [node('a1', { zone: 'a' }), node('a2', { zone: 'a' })];
    expect(one(n, pods, pod('w2', { labels: web, spread }))).toBe('a2');
  });

  it('ScheduleAnyway prefers the emptier zone, but uses a skewed one when nothing else fits', () => {
    const soft = [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: web } }];
    const pods = [pod('w1', { labels: web, nodeName: 'a1' }), pod('w2', { labels: web, nodeName: 'a1' })];
    const n = [node('a1', { zone: 'a' }), node('b1', { zone: 'b' })];
    expect(one(n, pods, pod('w3', { labels: web, spread: soft }))).toBe('b1');
    const full = [node('a1', { zone: 'a' }), node('b1', { zone: 'b', allocatable: { pods: 0 } })];
    expect(one(full, pods, pod('w4', { labels: web, spread: soft }))).toBe('a1');
  });

  it('ScheduleAnyway on the hostname', () => {
    const soft = [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: web } }];
    const pods = [pod('w1', { labels: web, nodeName: 'a1' })];
    expect(one([node('a1', { zone: 'a' }), node('a2', { zone: 'a' })], pods, pod('w2', { labels: web, spread: soft }))).toBe('a2');
  });
});

describe('scores', () => {
  it("preferred pod anti-affinity (the operator's default) moves a second gateway to the other zone without a spread constraint", () => {
    const anti = { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { labelSelector: { matchLabels: { gw: 'x' } }, topologyKey: ZONE } }] } };
    const n = [node('a1', { zone: 'a' }), node('a2', { zone: 'a' }), node('b1', { zone: 'b' })];
    const p = plan(n, [pod('g1', { labels: { gw: 'x' }, affinity: anti }), pod('g2', { labels: { gw: 'x' }, affinity: anti })]);
    expect(outcome(p)).toEqual({ g1: 'a1', g2: 'b1' });
  });

  it('anti-affinity terms only see pods of their namespaces (default: the pod\'s own; or namespaceSelector)', () => {
    const term = (extra: Record<string, unknown>): Record<string, unknown> => ({ podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10, podAffinityTerm: { labelSelector: { matchLabels: { gw: 'x' } }, topologyKey: ZONE, ...extra } }] } });
    const n = [node('a1', { zone: 'a' }), node('b1', { zone: 'b' })];
    const existing = pod('other-ns', { labels: { gw: 'x' }, nodeName: 'a1', namespace: 'team' });
    expect(one(n, [existing], pod('p1', { labels: {}, affinity: term({}) }))).toBe('a1');
    expect(one(n, [existing], pod('p2', { labels: {}, affinity: term({ namespaces: ['team'] }) }))).toBe('b1');
    const r = scheduleOne(pod('p3', { labels: {}, affinity: term({ namespaceSelector: { matchLabels: { env: 'prod' } } }) }), snapshot(n, [existing], [['team', { env: 'prod' }]]), NOW, POLICY);
    expect('node' in r && r.node).toBe('b1');
  });

  it('existing pods\' preferred anti-affinity repels the incoming pod too (symmetry)', () => {
    const anti = { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 5, podAffinityTerm: { labelSelector: { matchLabels: { app: 'noisy' } }, topologyKey: 'kubernetes.io/hostname' } }] } };
    const n = [node('a1'), node('a2')];
    expect(one(n, [pod('loner', { nodeName: 'a1', affinity: anti })], pod('p', { labels: { app: 'noisy' } }))).toBe('a2');
  });

  it('preferred pod affinity attracts', () => {
    const aff = { podAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, podAffinityTerm: { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: ZONE } }] } };
    const n = [node('a1', { zone: 'a' }), node('b1', { zone: 'b' })];
    expect(one(n, [pod('db', { labels: { app: 'db' }, nodeName: 'b1' })], pod('p', { affinity: aff }))).toBe('b1');
  });

  it('preferred node affinity and PreferNoSchedule taints', () => {
    const pref = { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10, preference: { matchExpressions: [{ key: 'fast', operator: 'In', values: ['yes'] }] } }] } };
    expect(one([node('a1'), node('b1', { labels: { fast: 'yes' } })], [], pod('p', { affinity: pref }))).toBe('b1');
    expect(one([node('a1', { taints: [{ key: 'meh', effect: 'PreferNoSchedule' }] }), node('b1')], [], pod('q'))).toBe('b1');
    expect(one([node('a1', { taints: [{ key: 'meh', effect: 'PreferNoSchedule' }] }), node('b1', { labels: { z: '1' } })], [], pod('r', { tolerations: [{ key: 'meh', operator: 'Exists' }], nodeSelector: {} }))).toBe('a1');
  });

  it('LeastAllocated spreads by cpu/memory when nodes state them (defaults for pods that request none)', () => {
    const n = [node('a1', { allocatable: { cpu: '2', memory: '4Gi' } }), node('a2', { allocatable: { cpu: '2', memory: '4Gi' } })];
    const p = plan(n, [pod('p1'), pod('p2'), pod('p3')]);
    expect(outcome(p)).toEqual({ p1: 'a1', p2: 'a2', p3: 'a1' });
  });

  it('equal scores go to the node whose name sorts first', () => {
    expect(one([node('zeta'), node('alpha'), node('mid')], [], pod('p'))).toBe('alpha');
  });
});

describe('the pass', () => {
  it('schedules in priority, then creation order; later pods see earlier binds', () => {
    const n = [node('only', { allocatable: { [AWS]: 1 } })];
    const req = { requests: { [AWS]: 1 }, limits: { [AWS]: 1 } };
    const p = plan(n, [pod('first', { ...req, created: NOW - 1000 }), pod('second', { ...req, created: NOW - 2000 }), pod('vip', { ...req, priority: 100, created: NOW })]);
    expect(outcome(p)).toEqual({ vip: 'only', second: '0/1 nodes are available: 1 Insufficient projectcalico.org/aws-secondary-ipv4.', first: '0/1 nodes are available: 1 Insufficient projectcalico.org/aws-secondary-ipv4.' });
  });

  it('leaves bound, terminating, ended pods and other schedulers\' pods alone', () => {
    const pods = [pod('bound', { nodeName: 'n1' }), pod('dying', { terminating: true }), pod('done', { phase: 'Failed' }), pod('foreign', { schedulerName: 'other' })];
    expect(plan([node('n1')], pods)).toEqual({ binds: [], unschedulable: [] });
  });

  it('is pure: the same state in any order gives the same plan', () => {
    const pods = [redGateway('aaaaa'), redGateway('bbbbb'), redGateway('ccccc'), pod('client', { namespace: 'app' }), pod('blue', { requests: { [AWS]: 1 }, limits: { [AWS]: 1 }, nodeName: 'node-b2' })];
    const nodes = referenceNodes();
    const a = outcome(plan(nodes, pods));
    const b = outcome(plan([...nodes].reverse(), [...pods].reverse()));
    const c = outcome(plan([nodes[2]!, nodes[0]!, nodes[3]!, nodes[1]!], [pods[3]!, pods[1]!, pods[4]!, pods[0]!, pods[2]!]));
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it('readiness checks can be switched off', () => {
    const r = scheduleOne(pod('p'), snapshot([node('n1', { ready: 'none' })], []), NOW, { nodeReadyGraceMs: 0 });
    expect('node' in r && r.node).toBe('n1');
  });
});

describe('fitErrorMessage', () => {
  it('counts each reason once per node and sorts the entries as strings (as Go sort.Strings)', () => {
    const reasons = new Map<string, string[]>();
    for (let i = 0; i < 10; i++) reasons.set(`x${i}`, ['Insufficient cpu', 'Insufficient memory']);
    reasons.set('y', ["node(s) didn't match Pod's node affinity/selector"]);
    reasons.set('z', ["node(s) didn't match Pod's node affinity/selector"]);
    expect(fitErrorMessage(12, reasons)).toBe("0/12 nodes are available: 10 Insufficient cpu, 10 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector.");
  });
});
