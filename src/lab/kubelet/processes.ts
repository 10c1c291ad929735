/**
 * Container processes: started detached (their own session, output to a log file) so that they outlive
 * the kubelet, as containers outlive a real kubelet; recognised after a kubelet restart by pid plus
 * start time (`/proc/<pid>/stat`), so a reused pid is never mistaken for a container.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { EgwError } from '../../platform/errors.js';

/** A process the kubelet started or adopted. */
export interface ProcHandle {
  pid: number;
  /** Field 22 of `/proc/<pid>/stat`: the start time in clock ticks since boot. */
  startTicks: string;
}

/** Starts, watches and signals container processes. */
export interface ProcessPort {
  /** Starts `argv` detached with exactly `env`, stdout and stderr appended to `logFile`. Throws `CommandFailed`. */
  spawn(argv: readonly string[], options: { env: Record<string, string>; logFile: string }): ProcHandle;
  /** True while the process runs (a zombie or a reused pid is not alive). */
  isAlive(h: ProcHandle): boolean;
  /** The exit code of a process this port started and saw exit (128 + signal when killed); undefined otherwise. */
  exitCode(h: ProcHandle): number | undefined;
  /** Sends a signal; nothing when the process is gone. */
  kill(h: ProcHandle, signal: 'SIGTERM' | 'SIGKILL'): void;
  /** Called when a process this port started exits. */
  onExit(listener: (h: ProcHandle) => void): void;
}

/** Parses `/proc/<pid>/stat`: the state letter and the start time (fields 3 and 22). Pure. */
export function parseProcStat(text: string): { state: string; startTicks: string } | undefined {
  // The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
  const close = text.lastIndexOf(')');
  if (close === -1) return undefined;
  const rest = text.slice(close + 2).trim().split(/\s+/);
  const state = rest[0];
  const startTicks = rest[19];
  return state === undefined || startTicks === undefined ? undefined : { state, startTicks };
}

/** The start time of a live (non-zombie) process, or undefined. */
export function procStartTicks(pid: number): string | undefined {
  try {
    const s = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return s === undefined || s.state === 'Z' || s.state === 'X' ? undefined : s.startTicks;
  } catch {
    return undefined;
  }
}

/** The real port: node:child_process, detached, unref'd. */
export class ChildProcesses implements ProcessPort {
  private readonly exits = new Map<string, number>();
  private readonly children = new Map<string, ChildProcess>();
  private readonly listeners: ((h: ProcHandle) => void)[] = [];

  spawn(argv: readonly string[], options: { env: Record<string, string>; logFile: string }): ProcHandle {
    const [file, ...args] = argv;
    if (file === undefined) throw new EgwError('Internal', 'empty command');
    const fd = openSync(options.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(file, args, { detached: true, stdio: ['ignore', fd, fd], env: options.env });
    } finally {
      closeSync(fd);
    }
    const pid = child.pid;
    if (pid === undefined) {
      throw new EgwError('CommandFailed', `cannot start ${file}`, { hint: `check that ${file} exists and is executable` });
    }
    child.on('error', () => undefined);
    child.unref();
    const startTicks = procStartTicks(pid) ?? '';
    const h: ProcHandle = { pid, startTicks };
    const id = `${pid}:${startTicks}`;
    this.children.set(id, child);
    child.on('exit', (code, signal) => {
      this.exits.set(id, code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0)));
      this.children.delete(id);
      for (const l of this.listeners) l(h);
    });
    return h;
  }

  isAlive(h: ProcHandle): boolean {
    if (this.exits.has(`${h.pid}:${h.startTicks}`)) return false;
    const now = procStartTicks(h.pid);
    return now !== undefined && (h.startTicks === '' || now === h.startTicks);
  }

  exitCode(h: ProcHandle): number | undefined {
    return this.exits.get(`${h.pid}:${h.startTicks}`);
  }

  kill(h: ProcHandle, signal: 'SIGTERM' | 'SIGKILL'): void {
    if (!this.isAlive(h)) return;
    try {
      process.kill(h.pid, signal);
    } catch {
      // Gone between the check and the signal.
    }
  }

  onExit(listener: (h: ProcHandle) => void): void {
    this.listeners.push(listener);
  }
}
