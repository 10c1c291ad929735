/**
 * The lab's state directory and its record. Everything the lab writes outside the kernel lives here,
 * so that `down` removes it with one `rm -r` (docs/lab.md, "State directory"):
 *
 * ```
 * <state dir>/                 default /run/egw-lab (tmpfs: gone at reboot, like the namespaces), or EGW_LAB_DIR
 *   lab.json                   the record: prefix, scenario, datastore URLs, phase, timings
 *   datastore                  the datastore URL for `egw apply/get/delete` on the host (openDatastore reads it)
 *   egw.db, egw.db-wal, …      the embedded SQLite datastore (unless --datastore etcd://…)
 *   etcd.sock                  the relay's socket to the host's etcd (etcd only)
 *   aws-sim/config.json        the emulator's world and fabric configuration
 *   aws-sim/state.json         the emulator's persisted state (status and verify read it)
 *   bin/*.mjs                  the echo server, the probe, the relay
 *   run/<process>.json         one record per running process (pid, namespace, argv)
 *   logs/<process>.log         its output
 *   kubelet/<node>/            the kubelets' state
 * ```
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_DIR_DEFAULT, LAB_DIR_ENV, LAB_DATASTORE_FILE } from '../datastore/open.js';
import { EgwError } from '../platform/errors.js';

/** The state directory: `--state-dir`, else EGW_LAB_DIR, else /run/egw-lab. */
export function labStateDir(flag: string | undefined, env: Record<string, string | undefined> = process.env): string {
  if (flag !== undefined && flag !== '') return flag;
  const fromEnv = env[LAB_DIR_ENV];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : LAB_DIR_DEFAULT;
}

/** How the lab's processes and the host reach the datastore. */
export interface LabDatastore {
  /** What the user gave (`etcd://…`), or the SQLite file in the state dir. */
  outside: string;
  /** What processes inside the lab use: the same file, or the control plane's relay address. */
  inside: string;
  backend: 'sqlite' | 'etcd' | 'kubernetes';
  /** Kubernetes: the host relay's port on 127.0.0.1 (the API server as the host reaches it). */
  apiHostPort?: number;
}

/** The lab record (`lab.json`). */
export interface LabRecord {
  format: 'egw-lab/v1';
  prefix: string;
  /** The scenario file. */
  scenario: string;
  scenarioName: string;
  datastore: LabDatastore;
  /** `building` while `up` runs the first time, `up` once it finished (even if the wait timed out), `down` never written. */
  phase: 'building' | 'up';
  createdAt: string;
  /** Seconds `up` took, per phase, for the summary and docs. */
  timings: Record<string, number>;
}

/** Paths inside a state dir. */
export class LabPaths {
  constructor(readonly root: string) {}
  get record(): string {
    return join(this.root, 'lab.json');
  }
  get datastorePointer(): string {
    return join(this.root, LAB_DATASTORE_FILE);
  }
  get sqlite(): string {
    return join(this.root, 'egw.db');
  }
  /** The control plane's folder (`egw lab up --kubernetes`): PKI, kubeconfigs, component logs. */
  get kubeDir(): string {
    return join(this.root, 'kube');
  }
  /** The socket between the two relays that carry the host's requests to the API server. */
  get kubeSocket(): string {
    return join(this.root, 'kube.sock');
  }
  /** The host's admin kubeconfig (`egw lab kubectl`, `egw get` on the host). */
  get kubeconfig(): string {
    return join(this.root, 'kubeconfig');
  }
  /** The kubeconfig of an egw program (its ServiceAccount's token). */
  programKubeconfig(program: string): string {
    return join(this.root, 'kube', `egw-${program}.kubeconfig`);
  }
  /** The Node a lab kubelet registers. */
  nodeRegistration(node: string): string {
    return join(this.root, 'kubelet', `${node}.node.json`);
  }
  get etcdSocket(): string {
    return join(this.root, 'etcd.sock');
  }
  get awsSimConfig(): string {
    return join(this.root, 'aws-sim', 'config.json');
  }
  get awsSimState(): string {
    return join(this.root, 'aws-sim', 'state.json');
  }
  bin(file: string): string {
    return join(this.root, 'bin', file);
  }
  kubeletDir(node: string): string {
    return join(this.root, 'kubelet', node);
  }
}

/** Writes a file atomically (temp + rename), creating its directory. */
export function writeAtomic(path: string, content: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

/** Reads the lab record; undefined when there is none. Throws `InvalidInput` when it is unreadable. */
export function readLabRecord(paths: LabPaths): LabRecord | undefined {
  if (!existsSync(paths.record)) return undefined;
  try {
    const r = JSON.parse(readFileSync(paths.record, 'utf8')) as LabRecord;
    if (r.format !== 'egw-lab/v1') throw new Error(`unknown format ${String(r.format)}`);
    return r;
  } catch (e) {
    throw new EgwError('InvalidInput', `the lab record ${paths.record} is unreadable: ${(e as Error).message}`, { hint: 'run egw lab down to clear it' });
  }
}

/** The lab record, or a clear error when no lab is up in this state dir. */
export function requireLab(paths: LabPaths): LabRecord {
  const r = readLabRecord(paths);
  if (r === undefined) throw new EgwError('NotFound', `no lab in ${paths.root}`, { hint: 'start one with: egw lab up' });
  return r;
}

/** Writes the lab record. */
export function writeLabRecord(paths: LabPaths, record: LabRecord): void {
  writeAtomic(paths.record, `${JSON.stringify(record, null, 2)}\n`);
}

/** What a lab's state directory may hold (see the layout above). */
const LAB_ENTRIES = new Set(['lab.json', 'datastore', 'egw.db', 'egw.db-wal', 'egw.db-shm', 'egw.db-journal', 'etcd.sock', 'aws-sim', 'bin', 'run', 'logs', 'kubelet', 'kube', 'kube.sock', 'kubeconfig']);

/**
 * Removes a lab's state directory. Refuses (`InvalidInput`) a directory that holds anything a lab does
 * not write, so that a mistaken `--state-dir ~` never deletes someone's files. Missing: nothing to do.
 */
export function removeStateDir(root: string): void {
  if (!existsSync(root)) return;
  const foreign = readdirSync(root).filter((e) => !LAB_ENTRIES.has(e) && !/^lab\.json\.tmp-\d+$|^datastore\.tmp-\d+$/.test(e));
  if (foreign.length > 0) {
    throw new EgwError('InvalidInput', `${root} is not (only) a lab's state directory: it holds ${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''}`, {
      hint: 'point --state-dir (or EGW_LAB_DIR) at a directory of its own; nothing was deleted there',
    });
  }
  rmSync(root, { recursive: true, force: true });
}
