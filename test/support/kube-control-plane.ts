/**
 * A private Kubernetes control plane for tests that restart or compact it (the shared one of scripts/with-kube
 * serves other test files at the same time and must never be disturbed). It runs scripts/with-kube around
 * `sleep infinity` in a process group of its own; {@link KubeControlPlane.stop} sends with-kube SIGTERM,
 * which stops the command and tears etcd, the API server, the controller manager and the scheduler down
 * and removes its /tmp/egw-kube.* folder.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './dist.js';

/** A running private control plane. */
export interface KubeControlPlane {
  /** Its admin kubeconfig. */
  readonly kubeconfig: string;
  /** Its folder (NAME.sh, NAME.pid, NAME.log, pki/). */
  readonly dir: string;
  /** Its etcd, host:port (plain HTTP on loopback; the v3 HTTP gateway answers on it). */
  readonly etcd: string;
  /** SIGKILLs a component (`etcd`, `kube-apiserver`, …) and waits until it is gone. */
  kill(component: string): Promise<void>;
  /** Starts a component again with its original flags (NAME.sh) and records the new pid in NAME.pid. */
  start(component: string): void;
  /** Compacts etcd's history up to `revision` (physically), through etcd's v3 HTTP gateway. */
  compact(revision: number): Promise<void>;
  /** Tears everything down and checks nothing is left (no with-kube, no component, no folder). */
  stop(): Promise<void>;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a private control plane (10–30 s on this machine). */
export async function startKubeControlPlane(): Promise<KubeControlPlane> {
  const tmp = mkdtempSync(join(tmpdir(), 'egw-kcp-'));
  const file = join(tmp, 'env');
  const child = spawn(
    join(REPO, 'scripts/with-kube'),
    ['bash', '-c', 'echo "$KUBECONFIG $EGW_TEST_KUBE_DIR $EGW_TEST_KUBE_ETCD" > "$1.part" && mv "$1.part" "$1"; exec sleep infinity', '_', file],
    { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, EGW_KUBE_QUIET: '1' } },
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const pid = child.pid!;
  const kill = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  try {
    await until(() => existsSync(file) || exited, 120_000, 'scripts/with-kube start');
    if (!existsSync(file)) throw new Error(`scripts/with-kube failed: ${stderr}`);
  } catch (err) {
    kill('SIGTERM');
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const [kubeconfig, dir, etcd] = readFileSync(file, 'utf8').trim().split(' ') as [string, string, string];
  rmSync(tmp, { recursive: true, force: true });
  const pidOf = (c: string): number => Number(readFileSync(join(dir, `${c}.pid`), 'utf8').trim());
  const components = ['kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd'];
  // Read now: after teardown the pid files are gone.
  const pidsNow = (): number[] => components.filter((c) => existsSync(join(dir, `${c}.pid`))).map(pidOf);

  return {
    kubeconfig,
    dir,
    etcd,
    async kill(component) {
      const p = pidOf(component);
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
      await until(() => !alive(p), 10_000, `${component} (${p}) exit`);
    },
    start(component) {
      // detached: a session of its own (node calls setsid), as with-kube starts it; NAME.sh execs the
      // component, so the child's pid is the component's.
      const r = spawn(join(dir, `${component}.sh`), [], { detached: true, stdio: 'ignore' });
      r.unref();
      writeFileSync(join(dir, `${component}.pid`), `${r.pid}\n`);
    },
    async compact(revision) {
      const res = await fetch(`http://${etcd}/v3/kv/compaction`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ revision: String(revision), physical: true }),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`etcd compaction at ${revision} failed: HTTP ${res.status} ${text}`);
    },
    async stop() {
      const pids = pidsNow();
      kill('SIGTERM');
      await until(() => exited, 30_000, 'scripts/with-kube teardown');
      const left = pids.filter(alive);
      for (const p of left) process.kill(p, 'SIGKILL');
      if (left.length > 0 || existsSync(dir)) {
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`scripts/with-kube left ${left.length > 0 ? `processes ${left.join(', ')}` : ''} ${existsSync(dir) ? dir : ''}`);
      }
      // Nothing of the group (with-kube's bash, sleep) may remain either.
      const pg = spawnSync('pgrep', ['-g', String(pid)], { encoding: 'utf8' });
      if (pg.stdout.trim() !== '') throw new Error(`processes of with-kube's group remain: ${pg.stdout.trim()}`);
    },
  };
}
