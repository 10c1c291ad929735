/**
 * Driving `egw lab` as a user does, from e2e tests: the real CLI in a child process with its own state dir,
 * the verify table parsed, and the checks that nothing of a lab is left.
 */
import { spawn } from 'node:child_process';
import { ExecShell } from '../../../src/platform/shell.js';
import { EGW_CLI } from '../../support/dist.js';

/** One CLI run. */
export interface Run {
  code: number;
  out: string;
  err: string;
}

/** A runner of the egw CLI with `env` (EGW_DATASTORE and KUBECONFIG removed, so the lab's are used). */
export function egwRunner(env: Record<string, string | undefined>): (args: string[], options?: { timeoutMs?: number; input?: string }) => Promise<Run> {
  const clean = { ...env };
  delete clean['EGW_DATASTORE'];
  delete clean['KUBECONFIG'];
  return (args, options = {}) =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [EGW_CLI, ...args], { env: clean, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, out, err });
      });
      child.stdin.end(options.input ?? '');
    });
}

/** The verify table as rows keyed `client → server`. */
export function verifyTable(out: string): Map<string, { seen: string; expected: string; result: string }> {
  const rows = new Map<string, { seen: string; expected: string; result: string }>();
  for (const line of out.split('\n').slice(1)) {
    const m = /^(\S+)\s+(\S+)\s+(\S+) (\S+)\s+(.+?)\s{3,}(.+?)\s{3,}(OK|FAIL)$/.exec(line);
    if (m !== null) rows.set(`${m[1]} → ${m[3]}`, { seen: m[5]!, expected: m[6]!, result: m[7]! });
  }
  return rows;
}

const shell = new ExecShell();

/** The network namespaces named `<prefix>-*`. */
export async function prefixedNamespaces(prefix: string): Promise<string[]> {
  return (await shell.run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${prefix}-`));
}

/** The root namespace's links, sorted (a lab must never add one). */
export async function rootLinks(): Promise<string> {
  return (await shell.run(['ip', '-br', 'link', 'show'])).stdout.split('\n').map((l) => l.split(/\s+/)[0]).sort().join(',');
}

/** Processes anywhere on the host whose command line names `marker` (a lab's state dir). */
export async function processesNaming(marker: string): Promise<string[]> {
  const r = await shell.run(['ps', '-eo', 'pid=,args='], { allowFailure: true });
  return r.stdout.split('\n').filter((l) => l.includes(marker) && !l.includes('ps -eo'));
}
