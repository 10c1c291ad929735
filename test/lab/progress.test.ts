import { describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/agent/records.js';
import { calcByNode } from '../../src/lab/expect.js';
import { labProgress, progressLine } from '../../src/lab/progress.js';
import type { LabSnapshot } from '../../src/lab/snapshot.js';
import { gw, pod, referenceSnapshot, sim } from './fixtures.js';

/** The agents' status records as agents that converged would write them. */
function agentsConverged(s: LabSnapshot): NodeStatus[] {
  return [...calcByNode(s)].map(([node, r]) => ({ node, clients: r.clients }) as unknown as NodeStatus);
}

function converged(over: Partial<LabSnapshot> = {}): LabSnapshot {
  const s = referenceSnapshot(over);
  return { ...s, nodeStatus: agentsConverged(s) };
}

describe('up progress', () => {
  it('is done when every gateway is ready and placed and every client routed as calc says', () => {
    const p = labProgress(converged());
    expect(p).toMatchObject({ done: true, blockers: [], nodes: { total: 4, ready: 4, withCapacity: 4 }, gateways: { wanted: 4, created: 4, scheduled: 4, running: 4, placed: 4, ready: 4 }, clients: { total: 2, running: 2, routed: 2 } });
    expect(progressLine(p)).toBe('nodes 4/4 ready · gateways 4/4 ready (4 created, 4 scheduled, 4 running, 4 in the fabric) · clients 2/2 routed');
  });

  it('waits for the fabric and the Elastic IPs of the red gateways', () => {
    const s = converged({ sim: sim({ '100.64.0.5': '203.0.113.7' }) });
    s.pods = s.pods.map((p) => (p.metadata.name === 'blue-1' ? gw('blue-1', 'blue', 'node-a2', '100.64.0.9', { aws: 'False' }) : p));
    const p = labProgress(s);
    expect(p.done).toBe(false);
    expect(p.gateways).toMatchObject({ placed: 2, ready: 2 });
    expect(p.blockers).toEqual(['gateway calico-egress/red-2 (100.64.4.5): no Elastic IP associated yet', 'gateway calico-egress/blue-1 (100.64.0.9): fabric: False']);
  });

  it('waits for unscheduled gateways and says why, and for clients their agent has not routed yet', () => {
    const s = converged();
    s.pods = s.pods.map((p) => (p.metadata.name === 'red-2' ? { ...pod('calico-egress', 'red-2', { owner: 'egress-gateway-red', labels: { 'egress-code': 'red' } }), status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', message: "0/4 nodes are available: 4 node(s) didn't match pod topology spread constraints." }] } } as typeof p : p));
    s.nodeStatus = s.nodeStatus.filter((n) => n.node !== 'node-b2');
    const p = labProgress(s);
    expect(p.done).toBe(false);
    expect(p.blockers).toContain("gateway calico-egress/red-2: pending (0/4 nodes are available: 4 node(s) didn't match pod topology spread constraints.)");
    expect(p.blockers).toContain("client my-namespace/my-netcat-pod: not in node-b2's agent status yet");
    // The other client's red rule now names one red gateway: its agent (still at two) is behind.
    expect(p.blockers.some((b) => b.startsWith('client app-red/red-app'))).toBe(true);
  });

  it('scaled to zero: done again once the agents fail the clients closed', () => {
    const s = referenceSnapshot();
    s.gateways = s.gateways.map((g) => (g.metadata.name === 'egress-gateway-red' ? { ...g, spec: { ...g.spec, replicas: 0 } } : g));
    s.pods = s.pods.filter((p) => p.metadata.labels?.['egress-code'] !== 'red');
    expect(labProgress({ ...s, nodeStatus: agentsConverged(s) })).toMatchObject({ done: true, gateways: { wanted: 2, ready: 2 } });
    expect(labProgress(s).done).toBe(false);
  });
});
