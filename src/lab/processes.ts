/**
 * The lab's long-running processes: started detached (they outlive `egw lab up`), inside a lab
 * namespace (`ip netns exec`, which execs the program, so the recorded pid is the program's), with
 * stdout and stderr appended to `logs/<name>.log` and a record in `run/<name>.json`. A process is the
 * lab's only while its pid's command line still matches the record, so a recycled pid is never killed.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EgwError } from '../platform/errors.js';

/** What to start. */
export interface ProcessSpec {
  /** Unique within the lab: `agent-node-a1`, `controller`… (file names). */
  name: string;
  /** Full namespace name; undefined = the root namespace (only the etcd relay). */
  netns: string | undefined;
  /**
   * How the namespace is entered: `ip netns exec` (default; it also gives the program a /sys of the
   * namespace) or `nsenter --net` (the network namespace only: for a program that makes namespaces
   * others must see, such as the kubelet).
   */
  enter?: 'ip-netns-exec' | 'nsenter';
  argv: string[];
  /** The whole environment of the process (nothing is inherited when given). */
  env?: Record<string, string>;
}

/** A started process, as recorded (never its environment). */
export interface ProcessRecord {
  name: string;
  netns: string | undefined;
  enter?: 'ip-netns-exec' | 'nsenter';
  argv: string[];
  pid: number;
  startedAt: string;
  log: string;
}

/** The lab's process table in a state directory. */
export class LabProcesses {
  constructor(private readonly stateDir: string) {}

  private get runDir(): string {
    return join(this.stateDir, 'run');
  }

  /** The log file of a process name. */
  logPath(name: string): string {
    return join(this.stateDir, 'logs', `${name}.log`);
  }

  /**
   * Starts a process detached with its output appended to its log, and records it. Throws
   * `CommandFailed` when it cannot be spawned.
   */
  start(spec: ProcessSpec): ProcessRecord {
    if (!/^[a-z0-9][a-z0-9.-]*$/.test(spec.name)) throw new EgwError('Internal', `bad process name ${spec.name}`);
    mkdirSync(this.runDir, { recursive: true });
    mkdirSync(join(this.stateDir, 'logs'), { recursive: true });
    const log = this.logPath(spec.name);
    const fd = openSync(log, 'a');
    const argv = [...launcher(spec), ...spec.argv];
    let pid: number | undefined;
    try {
      const child = spawn(argv[0]!, argv.slice(1), {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: spec.env ?? process.env,
      });
      pid = child.pid;
      child.unref();
    } finally {
      closeSync(fd);
    }
    if (pid === undefined) throw new EgwError('CommandFailed', `cannot start ${spec.name} (${argv.join(' ')})`, { hint: `see ${log}` });
    const record: ProcessRecord = { name: spec.name, netns: spec.netns, ...(spec.enter === undefined ? {} : { enter: spec.enter }), argv: spec.argv, pid, startedAt: new Date().toISOString(), log };
    writeFileSync(join(this.runDir, `${spec.name}.json`), `${JSON.stringify(record, null, 2)}\n`);
    return record;
  }

  /** Every recorded process. */
  list(): ProcessRecord[] {
    if (!existsSync(this.runDir)) return [];
    return readdirSync(this.runDir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .flatMap((f) => {
        try {
          return [JSON.parse(readFileSync(join(this.runDir, f), 'utf8')) as ProcessRecord];
        } catch {
          return [];
        }
      });
  }

  /** The record of a name. */
  get(name: string): ProcessRecord | undefined {
    return this.list().find((p) => p.name === name);
  }

  /**
   * True while the recorded pid runs the recorded program (or its launcher, before it execs the
   * program). A process in the middle of an exec shows an empty command line for an instant: that
   * counts as alive, as the pid exists.
   */
  alive(record: ProcessRecord): boolean {
    let cmdline: string[];
    try {
      cmdline = readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').split('\0').filter((x) => x !== '');
    } catch {
      return false;
    }
    if (cmdline.length === 0) return existsSync(`/proc/${record.pid}`) && !zombie(record.pid);
    return sameArgv(cmdline, record.argv) || startsWith(cmdline, launcher(record));
  }

  /**
   * Stops a process: SIGTERM, SIGKILL after `graceMs`; resolves when it is gone. Only the recorded
   * program is ever signalled. The record is removed.
   */
  async stop(name: string, graceMs = 3000): Promise<void> {
    const record = this.get(name);
    if (record === undefined) return;
    if (this.alive(record)) {
      signal(record.pid, 'SIGTERM');
      const deadline = Date.now() + graceMs;
      while (this.alive(record) && Date.now() < deadline) await sleep(50);
      if (this.alive(record)) signal(record.pid, 'SIGKILL');
      const hard = Date.now() + 2000;
      while (this.alive(record) && Date.now() < hard) await sleep(20);
    }
    rmSync(join(this.runDir, `${name}.json`), { force: true });
  }

  /** SIGKILL to a process (a crash), leaving its record. */
  kill(name: string): boolean {
    const record = this.get(name);
    if (record === undefined || !this.alive(record)) return false;
    signal(record.pid, 'SIGKILL');
    return true;
  }

  /** Forgets a record (after the process died, e.g. swept with its namespace). */
  forget(name: string): void {
    rmSync(join(this.runDir, `${name}.json`), { force: true });
  }
}

/** The argv prefix that enters a process's namespace. */
function launcher(p: { netns: string | undefined; enter?: 'ip-netns-exec' | 'nsenter' | undefined }): string[] {
  if (p.netns === undefined) return [];
  return p.enter === 'nsenter' ? ['nsenter', `--net=/var/run/netns/${p.netns}`, '--'] : ['ip', 'netns', 'exec', p.netns];
}

function zombie(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^\d+ \(.*\)/, ''));
  } catch {
    return true;
  }
}

function startsWith(a: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length > 0 && a.length >= prefix.length && prefix.every((x, i) => x === a[i]);
}

function sameArgv(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
