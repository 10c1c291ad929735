/**
 * The ReplicaSet-like pieces, pure: template hash, pod names and records, scale-down order, and the
 * rolling-update plan fed with sequences of pod states.
 */
import { describe, expect, it } from 'vitest';
import { validateDocument } from '../../../src/api/index.js';
import {
  compareForScaleDown,
  newGatewayPod,
  ownerReferenceTo,
  planRollout,
  podGenerateName,
  renderPodTemplate,
  rollingLimits,
  SequentialIds,
  templateHash,
  type PodFacts,
} from '../../../src/controller/operator/index.js';
import { referenceRed } from './helpers.js';

const IMAGE = 'registry.example/egw:test';

describe('templateHash and pod names', () => {
  const template = renderPodTemplate(referenceRed(), { image: IMAGE });

  it('is stable, independent of key order, in the name alphabet, and changes with the template', () => {
    const h = templateHash(template);
    expect(h).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
    expect(templateHash(structuredClone(template))).toBe(h);
    const reordered = { spec: template.spec, metadata: { annotations: template.metadata.annotations, labels: template.metadata.labels } };
    expect(templateHash(reordered)).toBe(h);
    expect(templateHash({ ...template, metadata: { ...template.metadata, labels: { 'egress-code': 'blue' } } })).not.toBe(h);
    expect(templateHash(renderPodTemplate(referenceRed(), { image: 'other:1' }))).not.toBe(h);
  });

  it('generate names are <name>-<hash>- cut to 58 characters', () => {
    expect(podGenerateName('egress-gateway-red', 'abc')).toBe('egress-gateway-red-abc-');
    const long = 'g'.repeat(60);
    expect(podGenerateName(long, 'hash')).toHaveLength(58);
  });

  it('a new pod is a valid Pod record: name, labels with the hash, owner, spec with defaults, Pending, no node', () => {
    const egw = { ...referenceRed(), metadata: { ...referenceRed().metadata, uid: 'egw-uid' } };
    const hash = templateHash(template);
    const ids = new SequentialIds();
    const pod = newGatewayPod({ template, hash, namespace: 'calico-egress', owner: ownerReferenceTo(egw), suffix: ids.podSuffix(), uid: ids.uid(), now: '2024-05-01T00:00:00.000Z' });
    expect(pod.metadata.name).toBe(`egress-gateway-red-${hash}-bbbbb`);
    expect(pod.metadata.generateName).toBe(`egress-gateway-red-${hash}-`);
    expect(pod.metadata.labels).toEqual({ 'egress-code': 'red', 'pod-template-hash': hash });
    expect(pod.metadata.annotations).toEqual(template.metadata.annotations);
    expect(pod.metadata.ownerReferences).toEqual([{ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: 'egress-gateway-red', uid: 'egw-uid', controller: true, blockOwnerDeletion: true }]);
    expect(pod.metadata.uid).toBe('uid-1');
    expect(pod.spec.nodeName).toBeUndefined();
    expect(pod.status).toEqual({ phase: 'Pending' });
    const spec = pod.spec as Record<string, unknown>;
    expect(spec['terminationGracePeriodSeconds']).toBe(0);
    expect(spec['restartPolicy']).toBe('Always');
    expect(spec['nodeSelector']).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(spec['topologySpreadConstraints']).toEqual(template.spec.topologySpreadConstraints);
    expect(spec['affinity']).toEqual(template.spec.affinity);
    const main = pod.spec.containers[0] as Record<string, unknown>;
    expect(main['readinessProbe']).toEqual({ httpGet: { path: '/readiness', port: 8080, scheme: 'HTTP' }, initialDelaySeconds: 10, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 });
    expect(main['resources']).toEqual({ requests: { 'projectcalico.org/aws-secondary-ipv4': '1' }, limits: { 'projectcalico.org/aws-secondary-ipv4': '1' } });
    expect(pod.spec.containers[0]!.ports).toEqual([{ name: 'health', containerPort: 8080, protocol: 'TCP' }]);
    const { issues } = validateDocument(pod, { file: 'test', documentIndex: 1 });
    expect(issues).toEqual([]);
  });

  it('SequentialIds counts in the name alphabet', () => {
    const ids = new SequentialIds();
    expect([ids.podSuffix(), ids.podSuffix(), ids.podSuffix()]).toEqual(['bbbbb', 'bbbbc', 'bbbbd']);
  });
});

function facts(name: string, hash: string, o: Partial<PodFacts> = {}): PodFacts {
  return { name, hash, scheduled: true, phase: 'Running', ready: true, readySince: 1000, created: 1000, createRevision: 1, ...o };
}

describe('scale-down order', () => {
  it('unscheduled, then Pending before Running, then not ready, then ready most recently, then newest', () => {
    const pods = [
      facts('old-ready', 'h', { created: 1, readySince: 5 }),
      facts('new-ready', 'h', { created: 9, readySince: 5 }),
      facts('recently-ready', 'h', { created: 1, readySince: 50 }),
      facts('not-ready', 'h', { ready: false }),
      facts('pending', 'h', { phase: 'Pending', ready: false }),
      facts('unscheduled', 'h', { scheduled: false, phase: 'Pending', ready: false }),
    ];
    expect([...pods].sort(compareForScaleDown).map((p) => p.name)).toEqual(['unscheduled', 'pending', 'not-ready', 'recently-ready', 'new-ready', 'old-ready']);
  });
});

describe('planRollout', () => {
  it('rolling limits are 25 % up / 25 % down, never both zero', () => {
    expect(rollingLimits(0)).toEqual({ maxSurge: 0, maxUnavailable: 1 });
    expect(rollingLimits(1)).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    expect(rollingLimits(2)).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    expect(rollingLimits(4)).toEqual({ maxSurge: 1, maxUnavailable: 1 });
    expect(rollingLimits(10)).toEqual({ maxSurge: 3, maxUnavailable: 2 });
  });

  it('scaling without a template change creates or removes at once', () => {
    expect(planRollout(3, 'h', [])).toEqual({ create: 3, remove: [], complete: true });
    expect(planRollout(3, 'h', [facts('a', 'h')])).toEqual({ create: 2, remove: [], complete: true });
    const plan = planRollout(1, 'h', [facts('a', 'h', { created: 1 }), facts('b', 'h', { scheduled: false, phase: 'Pending', ready: false }), facts('c', 'h', { created: 2 })]);
    expect(plan).toEqual({ create: 0, remove: ['b', 'c'], complete: true });
    expect(planRollout(0, 'h', [facts('a', 'h'), facts('b', 'h')]).remove.sort()).toEqual(['a', 'b']);
  });

  /** Applies a plan the way the store would end up after it, with new pods named n1, n2, … */
  function step(replicas: number, pods: PodFacts[], counter: { n: number }): { pods: PodFacts[]; complete: boolean } {
    const plan = planRollout(replicas, 'new', pods);
    const kept = pods.filter((p) => !plan.remove.includes(p.name));
    for (let i = 0; i < plan.create; i++) kept.push(facts(`n${++counter.n}`, 'new', { ready: false, scheduled: false, phase: 'Pending', created: 2000 + counter.n }));
    return { pods: kept, complete: plan.complete };
  }

  it('2 replicas: a template change rolls one pod at a time and never has fewer than 2 ready', () => {
    let pods = [facts('o1', 'old'), facts('o2', 'old')];
    const counter = { n: 0 };
    for (let round = 0; round < 10; round++) {
      const r = step(2, pods, counter);
      pods = r.pods;
      expect(pods.length).toBeLessThanOrEqual(3);
      expect(pods.filter((p) => p.ready).length).toBeGreaterThanOrEqual(2);
      if (r.complete) break;
      // Nothing moves until the new pods become ready (the runtime's job): make them ready now.
      pods = pods.map((p) => (p.hash === 'new' ? { ...p, ready: true, scheduled: true, phase: 'Running' } : p));
    }
    expect(pods.map((p) => p.hash)).toEqual(['new', 'new']);
    expect(counter.n).toBe(2);
  });

  it('a rollout waits while the new pod is not ready (a stuck pod does not take the old ones down)', () => {
    let pods = [facts('o1', 'old'), facts('o2', 'old')];
    const counter = { n: 0 };
    for (let round = 0; round < 5; round++) pods = step(2, pods, counter).pods;
    expect(pods.map((p) => p.name).sort()).toEqual(['n1', 'o1', 'o2']);
  });

  it('4 replicas: one old pod may go at once (maxUnavailable 1) while one new comes (maxSurge 1)', () => {
    const pods = ['o1', 'o2', 'o3', 'o4'].map((n) => facts(n, 'old'));
    const plan = planRollout(4, 'new', pods);
    expect(plan.create).toBe(1);
    expect(plan.remove).toHaveLength(1);
    expect(plan.complete).toBe(false);
  });

  it('old pods that are not ready go before ready ones, within the same budget (as Kubernetes)', () => {
    // With maxUnavailable 0 even a broken old pod waits until a new pod is ready.
    expect(planRollout(2, 'new', [facts('o1', 'old'), facts('o2', 'old', { ready: false })])).toEqual({ create: 1, remove: [], complete: false });
    const plan = planRollout(2, 'new', [facts('o1', 'old'), facts('o2', 'old', { ready: false }), facts('n1', 'new')]);
    expect(plan).toEqual({ create: 0, remove: ['o2'], complete: false });
  });

  it('the plan depends only on the current pods (same input, same plan; order of input irrelevant)', () => {
    const pods = [facts('o1', 'old', { created: 1 }), facts('n1', 'new', { created: 2 }), facts('o2', 'old', { created: 3, ready: false })];
    expect(planRollout(2, 'new', pods)).toEqual(planRollout(2, 'new', [...pods].reverse()));
  });
});
