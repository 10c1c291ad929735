import { describe, expect, it } from 'vitest';
import { allocateTables, tableCapacity } from '../../src/calc/route-tables.js';

const R = [{ min: 1, max: 250 }];

describe('allocateTables', () => {
  it('new keys get the lowest free ids in key order', () => {
    expect([...allocateTables(['b', 'a'], [], R).ids]).toEqual([['a', 1], ['b', 2]]);
  });

  it('keys keep their previous ids; freed ids are reused by new keys', () => {
    const a = allocateTables(['a', 'c', 'd'], [{ id: 1, key: 'a' }, { id: 2, key: 'b' }, { id: 3, key: 'c' }], R);
    expect([...a.ids]).toEqual([['a', 1], ['c', 3], ['d', 2]]);
  });

  it('ignores previous ids out of range, reserved, or claimed twice', () => {
    const a = allocateTables(['a', 'b', 'c'], [{ id: 300, key: 'a' }, { id: 254, key: 'b' }, { id: 5, key: 'c' }, { id: 5, key: 'a' }], [{ min: 1, max: 255 }]);
    // Two keys claim 5: the lower key keeps it.
    expect([...a.ids].sort()).toEqual([['a', 5], ['b', 1], ['c', 2]]);
  });

  it('several ranges, reserved tables skipped, exhaustion reported with the priority key first', () => {
    const ranges = [{ min: 253, max: 256 }, { min: 10, max: 10 }];
    expect(tableCapacity(ranges)).toBe(2);
    const a = allocateTables(['a', 'b', 'z'], [], ranges, 'z');
    expect([...a.ids]).toEqual([['z', 10], ['a', 256]]);
    expect(a.unallocated).toEqual(['b']);
  });
});
