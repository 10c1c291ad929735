import { describe, expect, it } from 'vitest';
import { expectations, judge } from '../../src/lab/expect.js';
import type { PairExpectation } from '../../src/lab/expect.js';
import { gw, pod, referenceSnapshot, SERVERS, sim } from './fixtures.js';

function table(pairs: PairExpectation[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) out[`${p.client} → ${p.server.name}`] = p.expected.kind === 'fail' ? `FAIL: ${p.expected.label}` : `${p.expected.ips.join('|')} (${p.expected.label})`;
  return out;
}

describe('verify expectations (from the state, never hard-coded)', () => {
  it('reference scenario: the policy client sees the node IP locally, blue for on-prem, a red Elastic IP on the internet; the annotation client red everywhere', () => {
    expect(table(expectations(referenceSnapshot(), SERVERS))).toEqual({
      'app-red/red-app → internet': '203.0.113.7|203.0.113.8 (Elastic IP of egress-gateway-red pool 100.64.0.4/30,100.64.4.4/30)',
      'app-red/red-app → onprem': '100.64.0.5|100.64.4.5 (egress-gateway-red pool 100.64.0.4/30,100.64.4.4/30)',
      'app-red/red-app → local': '100.64.0.5|100.64.4.5 (egress-gateway-red pool 100.64.0.4/30,100.64.4.4/30)',
      'my-namespace/my-netcat-pod → internet': '203.0.113.7|203.0.113.8 (Elastic IP of egress-gateway-red pool 100.64.0.4/30,100.64.4.4/30)',
      'my-namespace/my-netcat-pod → onprem': '100.64.0.9|100.64.4.9 (egress-gateway-blue pool 100.64.0.8/30,100.64.4.8/30)',
      'my-namespace/my-netcat-pod → local': '100.64.20.11 (node IP (node-b2))',
    });
  });

  it('red scaled to 0: red clients fail closed, the blue rule still works', () => {
    const s = referenceSnapshot();
    s.pods = s.pods.filter((p) => p.metadata.labels?.['egress-code'] !== 'red');
    const t = table(expectations(s, SERVERS));
    expect(t['app-red/red-app → internet']).toBe('FAIL: fail closed (no-gateway-matches)');
    expect(t['app-red/red-app → local']).toMatch(/^FAIL: fail closed/);
    expect(t['my-namespace/my-netcat-pod → internet']).toMatch(/^FAIL: fail closed/);
    expect(t['my-namespace/my-netcat-pod → onprem']).toBe('100.64.0.9|100.64.4.9 (egress-gateway-blue pool 100.64.0.8/30,100.64.4.8/30)');
  });

  it('an unready gateway is not expected; a private source without an Elastic IP is dropped at the internet gateway', () => {
    const s = referenceSnapshot({ sim: sim({ '100.64.0.5': '203.0.113.7' }) });
    s.pods = s.pods.map((p) => (p.metadata.name === 'red-2' ? gw('red-2', 'red', 'node-b1', '100.64.4.5', { ready: false }) : p));
    const t = table(expectations(s, SERVERS));
    expect(t['app-red/red-app → internet']).toBe('203.0.113.7 (Elastic IP of egress-gateway-red pool 100.64.0.4/30)');
    const noEips = table(expectations(referenceSnapshot({ sim: sim({}) }), SERVERS));
    expect(noEips['app-red/red-app → internet']).toBe('FAIL: dropped: egress-gateway-red pool 100.64.0.4/30,100.64.4.4/30 has no Elastic IP');
  });

  it('a pod without egress configuration leaves with its node IP (natOutgoing) and is dropped on the internet', () => {
    const s = referenceSnapshot();
    s.namespaces.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'plain' } });
    s.pods.push(pod('plain', 'plain-pod', { node: 'node-a1', ip: '10.48.0.9' }));
    const t = table(expectations(s, SERVERS));
    expect(t['plain/plain-pod → local']).toBe('100.64.16.10 (node IP (node-a1))');
    expect(t['plain/plain-pod → onprem']).toBe('100.64.16.10 (node IP (node-a1))');
    expect(t['plain/plain-pod → internet']).toBe('FAIL: dropped: node IP (node-a1) has no Elastic IP');
  });

  it('gateways and pods that are not running are no clients', () => {
    const s = referenceSnapshot();
    s.pods.push(pod('app-red', 'pending', {}));
    expect(new Set(expectations(s, SERVERS).map((p) => p.client))).toEqual(new Set(['app-red/red-app', 'my-namespace/my-netcat-pod']));
  });

  it('judges: every seen source allowed; a fail pair must not connect', () => {
    const source = { kind: 'source' as const, ips: ['1.1.1.1', '2.2.2.2'], label: '' };
    expect(judge(source, { seen: ['1.1.1.1', '2.2.2.2'], errors: [] })).toBe(true);
    expect(judge(source, { seen: ['1.1.1.1', '3.3.3.3'], errors: [] })).toBe(false);
    expect(judge(source, { seen: ['1.1.1.1'], errors: ['ETIMEDOUT'] })).toBe(false);
    expect(judge(source, { seen: [], errors: [] })).toBe(false);
    const fail = { kind: 'fail' as const, label: '' };
    expect(judge(fail, { seen: [], errors: ['EHOSTUNREACH'] })).toBe(true);
    expect(judge(fail, { seen: ['100.64.16.10'], errors: [] })).toBe(false);
  });
});
