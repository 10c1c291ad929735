import { spawn } from 'node:child_process';
import { EgwError } from './errors.js';

/** The result of a finished command. */
export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RunOptions {
  /** Written to the command's stdin, then stdin is closed. */
  input?: string;
  env?: Record<string, string>;
  /** Kill the command after this many milliseconds (default 30 s). */
  timeoutMs?: number;
  /** Resolve with a non-zero exit code instead of throwing. */
  allowFailure?: boolean;
}

/**
 * Runs programs by argv, never through a shell string, so no argument is ever re-parsed.
 * Injected wherever egw changes the host (iproute2, nftables), so tests can use the real thing in a
 * throwaway network namespace or a stateful fake.
 */
export interface Shell {
  /**
   * Runs `argv[0]` with the remaining arguments. Throws an {@link EgwError} `CommandFailed` naming the
   * command and its stderr when it exits non-zero (unless `allowFailure`), `Timeout` when it runs too long.
   */
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

/** The real shell: child processes. */
export class ExecShell implements Shell {
  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (file === undefined) return Promise.reject(new EgwError('Internal', 'empty command'));
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: options.env === undefined ? process.env : { ...process.env, ...options.env },
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new EgwError('CommandFailed', `cannot run ${file}: ${e.message}`, {
          hint: `install the program that provides ${file}`,
          cause: e,
        }));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const result = {
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          exitCode: code ?? -1,
        };
        if (timedOut) {
          reject(new EgwError('Timeout', `${argv.join(' ')} did not finish within ${timeoutMs} ms`));
        } else if (result.exitCode !== 0 && options.allowFailure !== true) {
          reject(new EgwError('CommandFailed', `${argv.join(' ')} exited with ${result.exitCode}: ${result.stderr.trim()}`, {
            details: { argv, exitCode: result.exitCode, stderr: result.stderr },
          }));
        } else {
          resolve(result);
        }
      });
      child.stdin.on('error', () => {
        // The command may exit before reading its input; its exit code tells what happened.
      });
      child.stdin.end(options.input ?? '');
    });
  }
}
