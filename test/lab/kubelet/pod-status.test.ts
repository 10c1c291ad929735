import { describe, expect, it } from 'vitest';
import { kubeletConditions, mergePodStatus, type ContainerView, type PodView } from '../../../src/lab/kubelet/pod-status.js';

const T0 = '2024-05-01T12:00:00.000Z';
const T1 = '2024-05-01T12:00:10.000Z';

function container(name: string, ready: boolean, running = true): ContainerView {
  return {
    name,
    image: 'ghcr.io/egw-project/egw:0.1.0',
    containerID: `egw-lab://ns/${name}`,
    state: running ? { running: { startedAt: T0 } } : { waiting: { reason: 'ContainerCreating' } },
    lastState: undefined,
    ready,
    started: running,
    restartCount: 0,
  };
}

function view(o: Partial<PodView> = {}): PodView {
  return {
    phase: 'Running',
    podIP: '100.64.0.5',
    hostIP: '10.10.1.10',
    startTime: T0,
    sandboxReady: true,
    initialized: true,
    initContainers: [{ ...container('egress-gateway-init', false, false), state: { terminated: { exitCode: 0, reason: 'Completed', finishedAt: T0 } } }],
    containers: [container('egress-gateway', true)],
    ...o,
  };
}

const cond = (status: Record<string, unknown> | undefined, type: string): Record<string, unknown> | undefined =>
  (status?.['conditions'] as Record<string, unknown>[] | undefined)?.find((c) => c['type'] === type);

describe('pod status', () => {
  it('writes phase, podIP(s), hostIP(s), container statuses and the Ready condition', () => {
    const s = mergePodStatus({ phase: 'Pending' }, view(), T0)!;
    expect(s).toMatchObject({ phase: 'Running', podIP: '100.64.0.5', podIPs: [{ ip: '100.64.0.5' }], hostIP: '10.10.1.10', hostIPs: [{ ip: '10.10.1.10' }], startTime: T0 });
    expect(cond(s, 'Ready')).toEqual({ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: T0 });
    expect((s['containerStatuses'] as unknown[])[0]).toMatchObject({ name: 'egress-gateway', ready: true, started: true, restartCount: 0, state: { running: { startedAt: T0 } } });
    expect((s['initContainerStatuses'] as unknown[])[0]).toMatchObject({ name: 'egress-gateway-init', state: { terminated: { exitCode: 0, reason: 'Completed' } } });
  });

  it("keeps what others wrote (PodScheduled, the agent's EgwAwsReady, unknown fields)", () => {
    const existing = {
      phase: 'Pending',
      qosClass: 'BestEffort',
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: T0 },
        { type: 'EgwAwsReady', status: 'False', reason: 'Waiting', message: 'ENI attaching', lastTransitionTime: T0 },
      ],
    };
    const s = mergePodStatus(existing, view(), T1)!;
    expect(s['qosClass']).toBe('BestEffort');
    expect(cond(s, 'PodScheduled')).toEqual(existing.conditions[0]);
    expect(cond(s, 'EgwAwsReady')).toEqual(existing.conditions[1]);
  });

  it('writes nothing when nothing changed, and keeps lastTransitionTime while a status stays', () => {
    const first = mergePodStatus({}, view(), T0)!;
    expect(mergePodStatus(first, view(), T1)).toBeUndefined();
    const notReady = mergePodStatus(first, view({ containers: [container('egress-gateway', false)] }), T1)!;
    expect(cond(notReady, 'Ready')).toEqual({ type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [egress-gateway]', lastProbeTime: null, lastTransitionTime: T1 });
    expect(cond(notReady, 'Initialized')?.['lastTransitionTime']).toBe(T0);
    expect(notReady['startTime']).toBe(T0);
  });

  it("Kubernetes' condition messages while initialising", () => {
    const c = kubeletConditions(view({ phase: 'Pending', initialized: false, initContainers: [container('egress-gateway-init', false)], containers: [container('egress-gateway', false, false)] }));
    expect(c).toEqual([
      { type: 'PodReadyToStartContainers', status: 'True', lastProbeTime: null },
      { type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [egress-gateway-init]', lastProbeTime: null },
      { type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [egress-gateway]', lastProbeTime: null },
      { type: 'ContainersReady', status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [egress-gateway]', lastProbeTime: null },
    ]);
  });

  it('a pod that is not Running is never Ready; status.reason/message come and go', () => {
    const failed = mergePodStatus({}, view({ phase: 'Failed', reason: 'HostNetworkUnsupported', message: 'no', containers: [container('c', true)] }), T0)!;
    expect(cond(failed, 'Ready')?.['status']).toBe('False');
    expect(failed['reason']).toBe('HostNetworkUnsupported');
    expect(mergePodStatus(failed, view(), T1)!['reason']).toBeUndefined();
  });
});
