/** Time, injected so that the core can be tested without waiting. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms` milliseconds, or rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * A retry delay with "equal jitter": uniformly in [ms/2, ms]. Every retry loop of egw waits this way, so
 * that after an outage a fleet of agents and gateways does not come back in lockstep (issue 11). Pure
 * given `random` (a number in [0, 1)).
 */
export function jittered(ms: number, random: () => number = Math.random): number {
  return Math.round(ms / 2 + random() * (ms / 2));
}

/** The real clock. */
export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason as Error);
        return;
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** A clock that only moves when told to: `advance()` runs every sleeper whose time has come. */
export class FakeClock implements Clock {
  private current: number;
  private sleepers: { until: number; resolve: () => void }[] = [];

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.sleepers.push({ until: this.current + ms, resolve });
    });
  }

  /** Moves time forward by `ms` and wakes the sleepers that are due. */
  advance(ms: number): void {
    this.current += ms;
    const due = this.sleepers.filter((s) => s.until <= this.current);
    this.sleepers = this.sleepers.filter((s) => s.until > this.current);
    for (const s of due) s.resolve();
  }
}

/**
 * Runs `pass` now and then every `intervalMs` until `signal` aborts; resolves then. A pass that throws is
 * handed to `onError` and the loop goes on at the next interval (a periodic loop never dies of one bad pass).
 */
export async function runEvery(clock: Clock, intervalMs: number, signal: AbortSignal, pass: () => Promise<unknown>, onError: (err: unknown) => void): Promise<void> {
  while (!signal.aborted) {
    try {
      await pass();
    } catch (err) {
      onError(err);
    }
    try {
      await clock.sleep(intervalMs, signal);
    } catch {
      return;
    }
  }
}

/**
 * Sleeps on the clock, returning early (without throwing) when `signal` aborts — also with a clock whose
 * sleep ignores signals. The pause of every retry loop that must stop at once on shutdown.
 */
export async function pauseUnlessAborted(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<void>((resolve) => {
    onAbort = (): void => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([clock.sleep(ms, signal).catch(() => undefined), aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}
