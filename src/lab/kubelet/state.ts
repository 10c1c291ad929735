/**
 * The kubelet's memory across restarts: one small JSON file per pod in its node's state directory,
 * written before the kernel objects it describes exist (so a crash never leaves a network namespace or
 * a process the next kubelet does not know about), and removed last.
 *
 *   <stateDir>/pods/<namespace>_<name>_<uid>/pod.json          this file
 *   <stateDir>/pods/<namespace>_<name>_<uid>/<container>.log   the container's stdout and stderr
 *   <stateDir>/cni/bin/egw-ipam                                 the IPAM plugin wrapper (see cni.ts)
 *   <stateDir>/cni/<network>.conf                               the network configuration in use
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { podDirName } from './naming.js';

/** How a container's last run ended. */
export interface ContainerExit {
  /** Undefined when unknown (a process adopted from an earlier kubelet). */
  exitCode: number | undefined;
  reason: string;
  startedAt: string | undefined;
  finishedAt: string;
}

/** What the kubelet remembers about one container. */
export interface ContainerRecord {
  /** The running process (pid and its start time in clock ticks, which tells a reused pid apart). */
  pid?: number | undefined;
  startTicks?: string | undefined;
  /** When the current (or last) process started, ISO 8601. */
  startedAt?: string | undefined;
  /** Restarts so far (`restartCount`). */
  restartCount: number;
  /** Restarts in the current back-off sequence (reset after a long run). */
  backoffRestarts: number;
  lastExit?: ContainerExit | undefined;
  /** No start before this (ms since the epoch): the restart back-off. */
  notBefore?: number | undefined;
  /** An init container that succeeded, or a container that will not run again. */
  finished?: boolean | undefined;
}

/** What the kubelet remembers about one pod. */
export interface PodRecord {
  namespace: string;
  name: string;
  uid: string;
  netns: string;
  sandboxId: string;
  createdAt: string;
  /** The pod's network is set up (CNI ADD done, default route in place), and since when (ISO 8601). */
  sandboxReady: boolean;
  sandboxReadyAt?: string | undefined;
  podIP?: string | undefined;
  gateway?: string | undefined;
  /** The ADD result, handed to DEL as `prevResult`. */
  cniResult?: Record<string, unknown> | undefined;
  /** The grace period the pod asked for (used when its record vanished without a deletionTimestamp). */
  graceSeconds: number;
  /** When termination began (ISO 8601): a restarted kubelet keeps counting the grace period from here. */
  terminationStartedAt?: string | undefined;
  containers: Record<string, ContainerRecord>;
}

/** The pod records of one node's kubelet on disk. */
export class StateDir {
  readonly podsDir: string;

  constructor(readonly root: string) {
    this.podsDir = join(root, 'pods');
    mkdirSync(this.podsDir, { recursive: true });
  }

  /** The pod's directory. */
  dir(rec: Pick<PodRecord, 'namespace' | 'name' | 'uid'>): string {
    return join(this.podsDir, podDirName(rec.namespace, rec.name, rec.uid));
  }

  /** Where a container's output goes. */
  logFile(rec: PodRecord, container: string): string {
    return join(this.dir(rec), `${container}.log`);
  }

  /** Every readable pod record (unreadable ones are skipped: their pods are treated as unknown). */
  list(): PodRecord[] {
    const out: PodRecord[] = [];
    for (const entry of readdirSync(this.podsDir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      try {
        const rec = JSON.parse(readFileSync(join(this.podsDir, entry.name, 'pod.json'), 'utf8')) as PodRecord;
        if (typeof rec.uid === 'string' && typeof rec.netns === 'string') out.push({ ...rec, containers: rec.containers ?? {} });
      } catch {
        // A directory without a complete record: written by a kubelet that died before its first write.
      }
    }
    return out;
  }

  /** Writes the record atomically (temp file + rename). */
  write(rec: PodRecord): void {
    const dir = this.dir(rec);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, 'pod.json.tmp');
    writeFileSync(tmp, `${JSON.stringify(rec, null, 1)}\n`);
    renameSync(tmp, join(dir, 'pod.json'));
  }

  /** Removes the pod's directory (record and logs). Idempotent. */
  remove(rec: Pick<PodRecord, 'namespace' | 'name' | 'uid'>): void {
    rmSync(this.dir(rec), { recursive: true, force: true });
  }
}
