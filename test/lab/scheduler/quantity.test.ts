import { describe, expect, it } from 'vitest';
import { parseQuantity, schedulerUnits } from '../../../src/lab/scheduler/quantity.js';

describe('quantities', () => {
  const cases: [unknown, number | undefined][] = [
    ['1', 1],
    [2, 2],
    ['100m', 0.1],
    ['1.5', 1.5],
    ['512Mi', 512 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['1G', 1e9],
    ['2k', 2000],
    ['1e3', 1000],
    ['5E-1', 0.5],
    ['.5', 0.5],
    ['1x', undefined],
    ['', undefined],
    [null, undefined],
  ];
  for (const [q, v] of cases) {
    it(`${JSON.stringify(q)} → ${String(v)}`, () => {
      if (v === undefined) expect(parseQuantity(q)).toBeUndefined();
      else expect(parseQuantity(q)).toBeCloseTo(v, 9);
    });
  }

  it('cpu in millicores rounded up, others in whole units', () => {
    expect(schedulerUnits('cpu', '100m')).toBe(100);
    expect(schedulerUnits('cpu', '0.1')).toBe(100);
    expect(schedulerUnits('cpu', '1')).toBe(1000);
    expect(schedulerUnits('cpu', '1.0005')).toBe(1001);
    expect(schedulerUnits('memory', '1Ki')).toBe(1024);
    expect(schedulerUnits('projectcalico.org/aws-secondary-ipv4', '2')).toBe(2);
    expect(schedulerUnits('memory', '-1')).toBeUndefined();
  });
});
