import { EgwError } from '../../platform/errors.js';
import type { Shell } from '../../platform/shell.js';

/** One line of an `ip -batch` / `bridge -batch` script, with what it is about (for status and errors). */
export interface BatchCommand {
  /** The command without the program name, e.g. `route replace 10.0.0.0/8 table 3 proto 233 nhid 7`. */
  line: string;
  /** The desired object this line serves (e.g. `client 10.20.1.5`, `table 3`), reported on failure. */
  object: string;
  /** A delete that may find its target already gone: "not found" then counts as success. */
  okIfMissing?: boolean;
}

/** A batch line the kernel refused. */
export interface BatchFailure {
  command: BatchCommand;
  message: string;
}

const MISSING = /No such file or directory|No such process|Cannot find device|does not exist|not found|Invalid nexthop id/i;

/**
 * Splits the stderr of `ip -force -batch -` into per-line failures. iproute2 prints the kernel's
 * message(s) and then `Command failed -:N` for each failing line N (1-based).
 */
export function parseBatchErrors(stderr: string, commands: readonly BatchCommand[]): BatchFailure[] {
  const failures: BatchFailure[] = [];
  let pending: string[] = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = /^Command failed -:(\d+)$/.exec(line);
    if (m === null) {
      pending.push(line);
      continue;
    }
    const command = commands[Number(m[1]) - 1];
    const message = pending.join('; ');
    pending = [];
    if (command === undefined) continue;
    if (command.okIfMissing === true && MISSING.test(message)) continue;
    failures.push({ command, message });
  }
  return failures;
}

/**
 * Runs commands as one `ip -force -batch -` (or `bridge`) invocation: one process for any number of
 * changes, executed in order. `-force` keeps going after a failing line so that one object's failure
 * never blocks the others; failures are returned per line, deletes of things already gone are not
 * failures. Throws only when the program itself cannot run.
 */
export async function runBatch(shell: Shell, program: 'ip' | 'bridge', commands: readonly BatchCommand[]): Promise<BatchFailure[]> {
  if (commands.length === 0) return [];
  for (const c of commands) {
    if (c.line.includes('\n')) throw new EgwError('Internal', `batch line contains a newline: ${c.line}`);
  }
  const result = await shell.run([program, '-force', '-batch', '-'], {
    input: `${commands.map((c) => c.line).join('\n')}\n`,
    allowFailure: true,
  });
  if (result.exitCode === 0) return [];
  const failures = parseBatchErrors(result.stderr, commands);
  if (failures.length === 0 && !/Command failed/.test(result.stderr)) {
    // The program failed before running any line (e.g. a syntax error iproute2 reports differently).
    throw new EgwError('CommandFailed', `${program} -batch failed: ${result.stderr.trim()}`, {
      details: { exitCode: result.exitCode, stderr: result.stderr },
    });
  }
  return failures;
}
