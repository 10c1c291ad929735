/** Starting and stopping alloc-worker processes (compiled, from dist/) for the multi-process tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { distPath } from '../support/dist.js';

export interface Worker {
  proc: ChildProcess;
  lines: string[];
  ready: Promise<void>;
  /** Resolves with the process's exit code (null when killed). */
  exited: Promise<number | null>;
  stderr(): string;
}

/** Starts one worker; it waits for {@link go} before working. */
export function startWorker(args: string[]): Worker {
  const proc = spawn(process.execPath, [distPath('test/ipam/alloc-worker.ts'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  createInterface({ input: proc.stdout }).on('line', (l) => {
    if (l === 'ready') onReady();
    else lines.push(l);
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, lines, ready, exited, stderr: () => err };
}

/** Releases every worker at once. */
export function go(workers: readonly Worker[]): void {
  for (const w of workers) w.proc.stdin!.write('go\n');
}

/** Kills whatever is still running. */
export function killAll(workers: readonly Worker[]): void {
  for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
}
