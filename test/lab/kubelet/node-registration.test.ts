import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../../src/datastore/contract.js';
import { heartbeatStatus, microTime, registeredNode, renewedLease } from '../../../src/lab/kubelet/node-registration.js';

const registration = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'node-a1', labels: { 'topology.kubernetes.io/zone': 'us-west-2a' } },
  status: { capacity: { pods: '110', cpu: '2' }, allocatable: { pods: '110', cpu: '2' }, addresses: [{ type: 'InternalIP', address: '100.64.16.10' }] },
} as unknown as JsonObject;

describe('lab kubelet node registration (pure)', () => {
  it('registers the Node with its capacity and Ready', () => {
    const node = registeredNode(registration, '2026-12-08T00:00:00.000Z');
    const status = node['status'] as { capacity: Record<string, string>; conditions: { type: string; status: string; lastHeartbeatTime: string }[] };
    expect(status.capacity).toEqual({ pods: '110', cpu: '2' });
    expect(status.conditions).toEqual([expect.objectContaining({ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-12-08T00:00:00.000Z' })]);
  });

  it("keeps what others posted (the agent's aws-secondary-ipv4, other conditions) and refreshes only its own keys", () => {
    const current = {
      capacity: { pods: '10', 'projectcalico.org/aws-secondary-ipv4': '2' },
      allocatable: { 'projectcalico.org/aws-secondary-ipv4': '2' },
      conditions: [
        { type: 'EgwAws', status: 'True', lastTransitionTime: 't0' },
        { type: 'Ready', status: 'True', lastTransitionTime: 't0', lastHeartbeatTime: 't0' },
      ],
    };
    const next = heartbeatStatus(current, registration, 't1') as { capacity: Record<string, string>; allocatable: Record<string, string>; conditions: { type: string; lastTransitionTime: string; lastHeartbeatTime?: string }[] };
    expect(next.capacity).toEqual({ pods: '110', cpu: '2', 'projectcalico.org/aws-secondary-ipv4': '2' });
    expect(next.allocatable).toEqual({ pods: '110', cpu: '2', 'projectcalico.org/aws-secondary-ipv4': '2' });
    expect(next.conditions.map((c) => c.type)).toEqual(['EgwAws', 'Ready']);
    // Ready stayed True: its transition time is kept, its heartbeat moves.
    expect(next.conditions[1]).toMatchObject({ lastTransitionTime: 't0', lastHeartbeatTime: 't1' });
    // Without a registration (the lab's own datastore) only Ready is posted.
    expect((heartbeatStatus(current, undefined, 't1') as { capacity: unknown }).capacity).toEqual(current.capacity);
  });

  it('renews its Lease in kube-node-lease with a MicroTime', () => {
    expect(microTime(Date.UTC(2026, 11, 8, 1, 2, 3, 456))).toBe('2026-12-08T01:02:03.456000Z');
    const first = renewedLease('node-a1', undefined, 'm1');
    expect(first).toMatchObject({ kind: 'Lease', metadata: { name: 'node-a1', namespace: 'kube-node-lease' }, spec: { holderIdentity: 'node-a1', leaseDurationSeconds: 40, renewTime: 'm1' } });
    const again = renewedLease('node-a1', { ...first, metadata: { ...(first['metadata'] as object), resourceVersion: '7', uid: 'u' } }, 'm2');
    expect(again['metadata']).toEqual({ name: 'node-a1', namespace: 'kube-node-lease', uid: 'u' });
    expect((again['spec'] as { renewTime: string }).renewTime).toBe('m2');
  });
});
