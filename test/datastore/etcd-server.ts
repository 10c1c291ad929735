/**
 * A throwaway etcd for tests: its own loopback ports and temp data dir, stoppable and restartable on
 * the same port and data, removed by cleanup() whatever happened.
 */
import { spawn } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestEtcd {
  /** `127.0.0.1:PORT` */
  endpoint: string;
  /** Stops the server (SIGTERM, then SIGKILL), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data and waits until it serves. */
  start(): Promise<void>;
  /** Stops it and removes its data directory. */
  cleanup(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** TLS of a test etcd: its server certificate, and (clientCa) the CA it requires client certificates from. */
export interface TestEtcdTls {
  certFile: string;
  keyFile: string;
  /** With it: `--client-cert-auth --trusted-ca-file`; the health check then needs `healthClient`. */
  clientCaFile?: string;
  /** CA and client certificate the health check uses (https). */
  healthClient: { caFile: string; certFile?: string; keyFile?: string };
}

/** Starts an etcd of our own (`etcd` on PATH: scripts/with-etcd and scripts/with-kube put the one of scripts/build-kube first). */
export async function startTestEtcd(options: { tls?: TestEtcdTls } = {}): Promise<TestEtcd> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'egw-test-etcd-ds-'));
  const endpoint = `127.0.0.1:${clientPort}`;
  const tls = options.tls;
  const scheme = tls === undefined ? 'http' : 'https';
  let proc: ChildProcess | undefined;
  let log = '';

  const start = async (): Promise<void> => {
    const p = spawn(
      'etcd',
      [
        '--name', 'egw-ds-test',
        '--data-dir', join(dataDir, 'data'),
        '--listen-client-urls', `${scheme}://${endpoint}`,
        '--advertise-client-urls', `${scheme}://${endpoint}`,
        ...(tls === undefined ? [] : ['--cert-file', tls.certFile, '--key-file', tls.keyFile]),
        ...(tls?.clientCaFile === undefined ? [] : ['--client-cert-auth', '--trusted-ca-file', tls.clientCaFile]),
        '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-cluster', `egw-ds-test=http://127.0.0.1:${peerPort}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    proc = p;
    p.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`etcd exited with ${p.exitCode}: ${log}`);
      try {
        if (tls === undefined ? (await fetch(`http://${endpoint}/health`)).ok : await httpsHealthy(endpoint, tls.healthClient)) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`etcd did not come up on ${endpoint}: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (p === undefined || p.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await start();
  } catch (err) {
    await stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint,
    stop,
    start,
    cleanup: async () => {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** GET https://endpoint/health with the given CA and client certificate: true on 200. */
function httpsHealthy(endpoint: string, client: TestEtcdTls['healthClient']): Promise<boolean> {
  const [host, port] = endpoint.split(':') as [string, string];
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host,
        port: Number(port),
        path: '/health',
        ca: readFileSync(client.caFile),
        ...(client.certFile === undefined ? {} : { cert: readFileSync(client.certFile) }),
        ...(client.keyFile === undefined ? {} : { key: readFileSync(client.keyFile) }),
        timeout: 2_000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
