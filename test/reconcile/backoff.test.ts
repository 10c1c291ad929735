/** The pure delay functions: exponential growth, jitter bounds, the cap, the throttle floor, resync jitter. */
import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF, resyncDelay, type BackoffPolicy } from '../../src/reconcile/backoff.js';

const full: BackoffPolicy = { baseMs: 100, capMs: 1_000, jitter: 'full', throttleFloorMs: 400 };
const decorrelated: BackoffPolicy = { ...full, jitter: 'decorrelated' };

describe('backoffDelay', () => {
  it('full jitter: the ceiling doubles per failure up to the cap; the delay is random × ceiling', () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(full, n, undefined, 0.999_999));
    expect(ceilings).toEqual([99, 199, 399, 799, 999, 999, 999]);
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(full, n, undefined, 0.5))).toEqual([50, 100, 200, 400, 500]);
  });

  it('full jitter stays within [1, min(cap, base·2ⁿ⁻¹)] for any random, and never spins at 0', () => {
    for (let n = 1; n <= 40; n++) {
      for (const r of [0, 0.1, 0.37, 0.5, 0.9, 0.999_999]) {
        const d = backoffDelay(full, n, undefined, r);
        expect(d).toBeGreaterThanOrEqual(1);
        expect(d).toBeLessThanOrEqual(Math.min(full.capMs, full.baseMs * 2 ** (n - 1)));
      }
    }
    expect(backoffDelay(full, 1, undefined, 0)).toBe(1);
    expect(backoffDelay(full, 10_000, undefined, 0.5)).toBe(500);
  });

  it('decorrelated jitter: between base and 3 × the previous delay, capped', () => {
    expect(backoffDelay(decorrelated, 1, undefined, 0)).toBe(100);
    expect(backoffDelay(decorrelated, 1, undefined, 0.999_999)).toBe(299);
    let previous: number | undefined;
    const seq: number[] = [];
    for (let n = 1; n <= 5; n++) {
      previous = backoffDelay(decorrelated, n, previous, 0.999_999);
      seq.push(previous);
    }
    expect(seq).toEqual([299, 896, 1_000, 1_000, 1_000]);
    for (const prev of [100, 250, 900, 5_000]) {
      for (const r of [0, 0.3, 0.7, 0.999]) {
        const d = backoffDelay(decorrelated, 3, prev, r);
        expect(d).toBeGreaterThanOrEqual(100);
        expect(d).toBeLessThanOrEqual(Math.min(1_000, 3 * prev));
      }
    }
  });

  it('a throttle error waits at least the floor (itself capped)', () => {
    expect(backoffDelay(full, 1, undefined, 0, true)).toBe(400);
    expect(backoffDelay(full, 5, undefined, 0.999_999, true)).toBe(999);
    expect(backoffDelay({ ...full, throttleFloorMs: 5_000 }, 1, undefined, 0, true)).toBe(1_000);
  });

  it('the defaults are 200 ms base, 30 s cap, full jitter', () => {
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 200, capMs: 30_000, jitter: 'full', throttleFloorMs: 1_000 });
  });
});

describe('resyncDelay', () => {
  it('is the period plus up to factor × period', () => {
    expect(resyncDelay(60_000, 0.1, 0)).toBe(60_000);
    expect(resyncDelay(60_000, 0.1, 0.5)).toBe(63_000);
    expect(resyncDelay(60_000, 0.1, 0.999_999)).toBeLessThan(66_000);
    expect(resyncDelay(1_000, 0, 0.9)).toBe(1_000);
  });
});
