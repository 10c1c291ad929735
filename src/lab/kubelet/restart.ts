/**
 * Container restarts as the kubelet decides them: whether a container that stopped is started again
 * (restartPolicy), and after how long (CrashLoopBackOff). Pure.
 */

/** Kubernetes' restart back-off: 10 s, doubling, at most 5 min; reset after 10 min of running. */
export const BACKOFF = { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 } as const;

/**
 * The wait before restart number `restarts` (1 = the first restart), divided by `speedup`:
 * 10 s, 20 s, 40 s … capped at 5 min.
 */
export function restartDelayMs(restarts: number, speedup = 1): number {
  const n = Math.max(1, restarts);
  return Math.min(BACKOFF.initialMs * 2 ** Math.min(n - 1, 20), BACKOFF.maxMs) / Math.max(1, speedup);
}

/** True when a container that ran for `ranMs` before it stopped has earned a fresh back-off. */
export function backoffResets(ranMs: number, speedup = 1): boolean {
  return ranMs >= BACKOFF.resetAfterMs / Math.max(1, speedup);
}

/**
 * True when a stopped container is started again: always under `Always`, on a non-zero (or unknown)
 * exit under `OnFailure`, never under `Never`. Init containers follow the same rule but only until they
 * succeed once.
 */
export function shouldRestart(restartPolicy: string, exitCode: number | undefined): boolean {
  if (restartPolicy === 'Never') return false;
  if (restartPolicy === 'OnFailure') return exitCode !== 0;
  return true;
}
