/**
 * Retry delays of the reconcile engine: per-key exponential backoff with jitter, capped. Pure: the
 * randomness comes in as a number in [0, 1), so the same inputs always give the same delay.
 */

/** `full`: uniform in [0, min(cap, base·2ⁿ⁻¹)]. `decorrelated`: uniform in [base, 3·previous], capped. */
export type JitterKind = 'full' | 'decorrelated';

/** How retries of one key are spaced. */
export interface BackoffPolicy {
  /** The ceiling of the first delay (ms). */
  baseMs: number;
  /** No delay is longer (ms). */
  capMs: number;
  jitter: JitterKind;
  /**
   * The shortest delay of a `throttle` error (ms): a throttled API wants us to slow down, so even the
   * first retry waits at least this long (capped by `capMs`).
   */
  throttleFloorMs: number;
}

/** The engine's defaults: 200 ms base, 30 s cap, full jitter, 1 s floor for throttling. docs/reconcile.md. */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 200, capMs: 30_000, jitter: 'full', throttleFloorMs: 1_000 };

/**
 * The delay before retry number `failures` (1 = after the first failure) of one key.
 *
 * - full jitter: `random · min(cap, base · 2^(failures−1))`;
 * - decorrelated jitter: `min(cap, base + random · (3 · previous − base))`, `previous` being the last delay
 *   of this key (`base` when there was none);
 * - a `throttle` error waits at least `throttleFloorMs`;
 * - never below 1 ms, so that a retry always goes through the clock (a zero delay would spin).
 *
 * @param random a number in [0, 1) (injected so that tests are deterministic)
 */
export function backoffDelay(policy: BackoffPolicy, failures: number, previousMs: number | undefined, random: number, throttle = false): number {
  const n = Math.max(1, Math.floor(failures));
  const r = Math.min(Math.max(random, 0), 1);
  let delay: number;
  if (policy.jitter === 'full') {
    // 2^(n−1) overflows to Infinity for huge n; Math.min with the cap keeps it finite.
    const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** (n - 1));
    delay = r * ceiling;
  } else {
    const previous = Math.max(previousMs ?? policy.baseMs, policy.baseMs);
    delay = Math.min(policy.capMs, policy.baseMs + r * (3 * previous - policy.baseMs));
  }
  if (throttle) delay = Math.max(delay, Math.min(policy.throttleFloorMs, policy.capMs));
  return Math.max(1, Math.floor(delay));
}

/**
 * The wait between two periodic resyncs: `period` plus up to `factor · period` (uniform), so that many
 * owners started together do not list at the same instant (Kubernetes' `wait.Jitter`).
 */
export function resyncDelay(periodMs: number, factor: number, random: number): number {
  const r = Math.min(Math.max(random, 0), 1);
  return Math.max(1, Math.floor(periodMs + r * Math.max(0, factor) * periodMs));
}
