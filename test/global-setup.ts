/**
 * Compiles the whole tree (src, test, bench) to dist/ once per test run, so that tests can start real
 * processes (the CLI, the CNI plugin, agents, test children) with plain `node`. Incremental: a second run
 * only recompiles what changed.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

export default function setup(): void {
  const repo = resolve(import.meta.dirname, '..');
  try {
    execFileSync(resolve(repo, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json', '--incremental', '--tsBuildInfoFile', 'dist/.tsbuildinfo-tests'], {
      cwd: repo,
      stdio: 'pipe',
    });
  } catch (err) {
    // Type errors still emit JavaScript; the lint/type-check step reports them. Only a missing output is fatal.
    const e = err as { stdout?: Buffer };
    process.stderr.write(`tsc reported problems while compiling for tests:\n${e.stdout?.toString() ?? ''}\n`);
  }
}
