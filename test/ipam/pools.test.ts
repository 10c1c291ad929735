/**
 * The pure parts of IPAM: exclusion intervals, pool choice and its reasons, the annotation precedence, and
 * the owner-validity rule GC applies.
 */
import { describe, expect, it } from 'vitest';
import type { IPPool } from '../../src/api/kinds/ip-pool.js';
import { awsSubnetExclusions, Exclusions, reservationExclusions } from '../../src/ipam/exclusions.js';
import { ownerValidity } from '../../src/ipam/inspect.js';
import { parseIpv4Net } from '../../src/platform/ipv4.js';
import { choosePools, requestedPools } from '../../src/ipam/pools.js';
import type { HandleValue } from '../../src/ipam/records.js';
import { ipNum } from './helpers.js';

const p = (name: string, spec: Record<string, unknown>): IPPool => ({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: spec as IPPool['spec'] });

describe('exclusions', () => {
  it('merges overlapping and adjacent entries and answers membership and counts', () => {
    const e = reservationExclusions(['100.64.0.0/30', '100.64.3.255', '100.64.0.4', 'fd00::/64', 'junk', '100.64.0.2/31']);
    expect(e.intervals()).toEqual([
      [ipNum('100.64.0.0'), ipNum('100.64.0.4')],
      [ipNum('100.64.3.255'), ipNum('100.64.3.255')],
    ]);
    expect(e.has(ipNum('100.64.0.3'))).toBe(true);
    expect(e.has(ipNum('100.64.0.5'))).toBe(false);
    expect(e.countIn(ipNum('100.64.0.0'), 1024)).toBe(6);
    expect(e.coversAll(parseIpv4Net('100.64.0.0/30', { hostBits: 'clear', bareAddress: true })!)).toBe(true);
    expect(e.coversAll(parseIpv4Net('100.64.0.4/30', { hostBits: 'clear', bareAddress: true })!)).toBe(false);
  });

  it("AWS keeps a subnet's first four and last addresses", () => {
    const e = awsSubnetExclusions(parseIpv4Net('100.64.4.0/22', { hostBits: 'clear', bareAddress: true })!);
    expect(e.intervals()).toEqual([
      [ipNum('100.64.4.0'), ipNum('100.64.4.3')],
      [ipNum('100.64.7.255'), ipNum('100.64.7.255')],
    ]);
    expect(e.union(Exclusions.NONE)).toBe(e);
  });
});

describe('choosePools', () => {
  const base = {
    node: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'z1', rack: 'a' } },
    use: 'Workload' as const,
    aws: false,
    subnets: new Map([['subnet-00000001', { cidr: '100.64.0.0/22', availabilityZone: 'z1' }]]),
    reserved: Exclusions.NONE,
  };
  const pools = [
    p('z-default', { cidr: '10.0.0.0/16' }),
    p('a-rack-b', { cidr: '10.1.0.0/16', nodeSelector: "rack == 'b'" }),
    p('m-tunnel', { cidr: '10.2.0.0/16', allowedUses: ['Tunnel'] }),
    p('aws', { cidr: '100.64.0.4/30', awsSubnetID: 'subnet-00000001', blockSize: 32, nodeSelector: '!all()' }),
    p('ns-only', { cidr: '10.3.0.0/16', namespaceSelector: "projectcalico.org/name == 'red'", allowedUses: ['Workload'] }),
  ];

  it('picks selected pools in name order and explains every skip; the output depends only on the input', () => {
    const a = choosePools({ ...base, pools });
    const b = choosePools({ ...base, pools: [...pools].reverse() });
    expect(a).toEqual(b);
    expect(a.candidates.map((c) => c.pool.name)).toEqual(['z-default']);
    expect(a.skipped.map((s) => `${s.name}:${s.reason}`)).toEqual(['a-rack-b:not selected', 'aws:not selected', 'ns-only:namespace not selected', 'm-tunnel:wrong use']);
    const red = choosePools({ ...base, pools, namespace: { name: 'red', labels: { 'projectcalico.org/name': 'red' } } });
    expect(red.candidates.map((c) => c.pool.name)).toEqual(['ns-only', 'z-default']);
  });

  it('requested pools keep their order, ignore selectors, and must exist and be enabled', () => {
    const r = choosePools({ ...base, pools, aws: true, requested: { pools: ['aws', '10.0.0.0/16'], source: 'pod annotation' } });
    expect(r.candidates.map((c) => c.pool.name)).toEqual(['aws']);
    expect(r.candidates[0]!.exclusions.has(ipNum('100.64.0.0'))).toBe(true);
    expect(r.skipped).toEqual([{ name: 'z-default', cidr: '10.0.0.0/16', reason: 'not AWS-backed', detail: expect.stringContaining('aws-secondary-ipv4') as unknown }]);
    expect(() => choosePools({ ...base, pools, requested: { pools: ['nope'], source: 'namespace annotation' } })).toThrow('the given pool (nope) does not exist, or is not enabled');
    expect(() => choosePools({ ...base, pools: [p('off', { cidr: '10.9.0.0/16', disabled: true })], requested: { pools: ['off'], source: 'request' } })).toThrow('does not exist, or is not enabled');
  });

  it('the pod annotation wins over the namespace one, which wins over the configuration', () => {
    const ann = (v: string[]): Record<string, string> => ({ 'cni.projectcalico.org/ipv4pools': JSON.stringify(v) });
    expect(requestedPools(ann(['a']), ann(['b']), ['c'])).toEqual({ pools: ['a'], source: 'pod annotation' });
    expect(requestedPools({}, ann(['b']), ['c'])).toEqual({ pools: ['b'], source: 'namespace annotation' });
    expect(requestedPools(undefined, undefined, ['c'])).toEqual({ pools: ['c'], source: 'request' });
    expect(requestedPools(undefined, undefined)).toBeUndefined();
    expect(() => requestedPools({ 'cni.projectcalico.org/ipv4pools': 'red' }, undefined)).toThrow('is not a JSON array of strings');
  });
});

describe('ownerValidity', () => {
  const h = (owner: HandleValue['owner']): HandleValue => ({ handle: 'h', ip: '10.0.0.1', block: '10.0.0.0/26', pool: '10.0.0.0/16', poolName: 'p', node: 'n1', use: 'Workload', owner, allocatedAt: '' });
  const pod = { kind: 'Pod' as const, namespace: 'ns', name: 'a', uid: 'u1' };
  it('a pod owner needs its pod (same uid, node and podIP); every owner needs its node', () => {
    const nodes = new Set(['n1']);
    expect(ownerValidity(h(pod), nodes, new Map([['ns/a', { uid: 'u1', nodeName: 'n1', podIP: '10.0.0.1' }]]))).toEqual({ valid: true });
    expect(ownerValidity(h(pod), nodes, new Map([['ns/a', { uid: 'u1', nodeName: undefined, podIP: undefined }]]))).toEqual({ valid: true });
    expect(ownerValidity(h(pod), nodes, new Map())).toMatchObject({ valid: false, immediate: false });
    expect(ownerValidity(h(pod), nodes, new Map([['ns/a', { uid: 'u2', nodeName: 'n1', podIP: undefined }]]))).toMatchObject({ valid: false });
    expect(ownerValidity(h(pod), nodes, new Map([['ns/a', { uid: 'u1', nodeName: 'n2', podIP: undefined }]]))).toMatchObject({ valid: false });
    expect(ownerValidity(h(pod), nodes, new Map([['ns/a', { uid: 'u1', nodeName: 'n1', podIP: '10.0.0.9' }]]))).toMatchObject({ valid: false });
    expect(ownerValidity(h({ kind: 'ENI', node: 'n1' }), nodes, new Map())).toEqual({ valid: true });
    expect(ownerValidity(h({ kind: 'None' }), new Set(), new Map())).toEqual({ valid: false, reason: 'node n1 no longer exists', immediate: true });
  });
});
