import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { EgwError } from '../../platform/errors.js';

/** A long-running child process (a server, an agent) started by the topology. */
export interface RunningProcess {
  readonly pid: number;
  /** Everything written to stdout so far. */
  readonly stdout: () => string;
  /** Everything written to stderr so far. */
  readonly stderr: () => string;
  /** Writes to the process's stdin. */
  write(text: string): void;
  /**
   * Resolves with the first stdout line (past `fromOffset`) matching `pattern`; rejects with `Timeout`
   * after `timeoutMs` or when the process exits first.
   */
  waitForLine(pattern: RegExp, timeoutMs?: number, fromOffset?: number): Promise<string>;
  /** Resolves with the exit code (or -1 when killed by a signal). */
  readonly exited: Promise<number>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts long-running processes. Injected so that the topology's side effects stay swappable. */
export interface ProcessRunner {
  start(argv: readonly string[], options?: { env?: Record<string, string> }): RunningProcess;
}

/** The real runner: node:child_process. */
export class ChildProcessRunner implements ProcessRunner {
  start(argv: readonly string[], options: { env?: Record<string, string> } = {}): RunningProcess {
    const [file, ...args] = argv;
    if (file === undefined) throw new EgwError('Internal', 'empty command');
    const child: ChildProcess = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env === undefined ? process.env : { ...process.env, ...options.env },
    });
    let out = '';
    let err = '';
    const waiters = new Set<() => void>();
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      out += d;
      for (const w of [...waiters]) w();
    });
    child.stderr?.on('data', (d: string) => {
      err += d;
    });
    child.stdin?.on('error', () => {
      // The process may exit before reading; its exit tells what happened.
    });
    const exited = new Promise<number>((resolve) => {
      child.on('error', () => resolve(-1));
      child.on('exit', (code) => {
        resolve(code ?? -1);
        for (const w of [...waiters]) w();
      });
    });
    let done = false;
    void exited.then(() => {
      done = true;
    });
    return {
      pid: child.pid ?? -1,
      stdout: () => out,
      stderr: () => err,
      write: (text: string) => {
        child.stdin?.write(text);
      },
      waitForLine: (pattern: RegExp, timeoutMs = 10_000, fromOffset = 0) =>
        new Promise<string>((resolve, reject) => {
          const check = (): void => {
            const lines = out.slice(fromOffset).split('\n');
            // Only complete lines count.
            const found = lines.slice(0, -1).find((l) => pattern.test(l));
            if (found !== undefined) {
              finish();
              resolve(found);
            } else if (done) {
              finish();
              reject(new EgwError('CommandFailed', `${argv.join(' ')} exited before printing ${String(pattern)}: ${err.trim()}`));
            }
          };
          const timer = setTimeout(() => {
            finish();
            reject(new EgwError('Timeout', `${argv.join(' ')} did not print ${String(pattern)} within ${timeoutMs} ms: ${err.trim()}`));
          }, timeoutMs);
          const finish = (): void => {
            clearTimeout(timer);
            waiters.delete(check);
          };
          waiters.add(check);
          check();
        }),
      exited,
      stop: async (graceMs = 2000) => {
        if (done) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      },
    };
  }
}
