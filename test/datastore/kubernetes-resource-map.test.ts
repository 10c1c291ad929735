import { describe, expect, it } from 'vitest';
import { NEXT_HOPS_KIND, NODE_STATUS_KIND } from '../../src/agent/records.js';
import { recordCrds } from '../../src/datastore/kubernetes/record-crds.js';
import {
  decodeFoldedName,
  decodeRecordName,
  defaultResourceMap,
  encodeFoldedName,
  encodeRecordName,
  isSubdomain,
  keyOfObject,
  objectRef,
  RECORD_KINDS,
} from '../../src/datastore/kubernetes/resource-map.js';
import { IPAM_KINDS } from '../../src/ipam/records.js';
import { isEgwError } from '../../src/platform/errors.js';

describe('kubernetes resource map', () => {
  it('has every internal record kind of ipam/ and agent/, and one CRD for each', () => {
    expect(RECORD_KINDS.map((r) => r.kind).sort()).toEqual([...IPAM_KINDS, NEXT_HOPS_KIND, NODE_STATUS_KIND].sort());
    expect(recordCrds().map((c) => c.metadata.name)).toContain('ipamblocks.egw.io');
  });

  it('encodes record names reversibly, leaving valid names alone', () => {
    for (const n of ['10.0.0.64-26', 'a', 'h~k8s-pod-network.ABC', 'x--abc', 'ünï', 'b~10.0.0.0-16~10.0.0.64-26']) {
      const e = encodeRecordName(n);
      expect(isSubdomain(e), e).toBe(true);
      expect(decodeRecordName(e)).toBe(n);
    }
    expect(encodeRecordName('10.0.0.64-26')).toBe('10.0.0.64-26');
    expect(() => encodeRecordName('x'.repeat(200) + '~')).toThrow();
  });

  it('folds namespaces into names reversibly', () => {
    for (const [ns, n] of [['10.0.0.0-16', '10.0.0.64-26'], ['node-1', '10.0.1.0-26'], ['a--b', 'c'], ['N', 'x~y']] as const) {
      const e = encodeFoldedName(ns, n);
      expect(isSubdomain(e), e).toBe(true);
      expect(decodeFoldedName(e)).toEqual({ namespace: ns, name: n });
    }
    expect(encodeFoldedName('10.0.0.0-16', '10.0.0.64-26')).toBe('10.0.0.0-16--10.0.0.64-26');
  });

  it('maps keys to objects and back, and refuses a key of the wrong scope', () => {
    const map = defaultResourceMap();
    const block = map.get('IPAMBlock')!;
    const key = { kind: 'IPAMBlock', namespace: '10.0.0.0-16', name: '10.0.0.64-26' };
    const ref = objectRef(block, key);
    expect(ref).toEqual({ namespace: undefined, name: '10.0.0.0-16--10.0.0.64-26' });
    expect(keyOfObject(block, undefined, ref.name)).toEqual(key);
    const pool = map.get('IPPool')!;
    expect(pool).toMatchObject({ group: 'projectcalico.org', version: 'v3', plural: 'ippools', mode: 'object' });
    expect(map.get('Lease')).toMatchObject({ group: 'coordination.k8s.io', namespaced: true });
    let err: unknown;
    try {
      objectRef(pool, { kind: 'IPPool', namespace: 'x', name: 'p' });
    } catch (e) {
      err = e;
    }
    expect(isEgwError(err, 'InvalidInput')).toBe(true);
  });
});
