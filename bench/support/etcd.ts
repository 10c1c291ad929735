/**
 * A throwaway etcd server for benchmarks that compare backends side by side: on loopback, on free ports,
 * with its data under a directory the caller removes. Benchmarks use the suite's etcd (`EGW_TEST_ETCD`)
 * when one is given instead.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

/** Starts `etcd` with its data in `dir/etcd`; undefined when it cannot be started or never gets healthy. */
export async function startBenchEtcd(dir: string, name = 'egw-bench'): Promise<{ endpoint: string; proc: ChildProcess } | undefined> {
  const client = await freePort();
  const peer = await freePort();
  const endpoint = `127.0.0.1:${client}`;
  const proc = spawn(
    'etcd',
    [
      '--name', name, '--data-dir', join(dir, 'etcd'),
      '--listen-client-urls', `http://${endpoint}`, '--advertise-client-urls', `http://${endpoint}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `${name}=http://127.0.0.1:${peer}`,
    ],
    { stdio: 'ignore' },
  );
  const failed = new Promise<boolean>((resolve) => {
    proc.once('error', () => resolve(true));
    proc.once('exit', () => resolve(true));
  });
  for (let i = 0; i < 200; i++) {
    const ok = await Promise.race([fetch(`http://${endpoint}/health`).then((r) => r.ok, () => false), failed]);
    if (ok === true && proc.exitCode === null) return { endpoint, proc };
    if (proc.exitCode !== null || proc.pid === undefined) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  return undefined;
}
