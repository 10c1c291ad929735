/**
 * Runs the built kubectl of scripts/with-kube against the test control plane (KUBECONFIG). Tests that need
 * it skip unless {@link kubeAvailable}; in CI they always run (scripts/test wraps the suite in with-kube).
 */
import { spawnSync } from 'node:child_process';

/** True when the suite runs inside scripts/with-kube. */
export const kubeAvailable = process.env.KUBECONFIG !== undefined && process.env.EGW_TEST_KUBE_DIR !== undefined;

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** kubectl ARGS with optional stdin; never throws on a non-zero exit (tests check `code`). */
export function kubectl(args: readonly string[], input?: string): KubectlResult {
  const r = spawnSync('kubectl', args, { input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** kubectl ARGS that must succeed; throws with its stderr otherwise. */
export function kubectlOk(args: readonly string[], input?: string): string {
  const r = kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Polls `check` every 100 ms until it returns true or `ms` passes; returns the last answer. */
export async function eventually(check: () => boolean, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
