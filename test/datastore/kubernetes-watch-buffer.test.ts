import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KubernetesDatastore } from '../../src/datastore/kubernetes/kubernetes-datastore.js';

// The watch of the Kubernetes backend is bounded: a consumer that stops reading makes it stop reading the
// response, and TCP flow control then holds the rest at the server. A stand-in API server on loopback (plain
// HTTP, which @kubernetes/client-node allows only with insecure-skip-tls-verify; discovery and one endless
// watch) counts what it managed to send; with no bound (watchHighWater: Infinity) the client takes all
// 2,000 events into memory.
describe('kubernetes backend: bounded watch buffer', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('stops reading at the high-water mark while the consumer is slow, and loses nothing', async () => {
    const total = 2_000;
    const pad = 'x'.repeat(16 * 1024); // 32 MB in all: far more than the socket buffers hold
    let sent = 0;
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === '/api/v1' && !url.searchParams.has('watch')) {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ kind: 'APIResourceList', groupVersion: 'v1', resources: [{ name: 'namespaces', namespaced: false, kind: 'Namespace' }] }));
        return;
      }
      if (url.pathname === '/api/v1/namespaces' && url.searchParams.get('watch') === '1') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        void (async () => {
          for (let i = 0; i < total && !res.destroyed; i++) {
            const obj = { kind: 'Namespace', apiVersion: 'v1', metadata: { name: `ns${i}`, resourceVersion: String(100 + i), annotations: { pad } } };
            const ok = res.write(`${JSON.stringify({ type: 'ADDED', object: obj })}\n`);
            sent = i + 1;
            if (!ok) {
              await new Promise<void>((resolve) => {
                const done = (): void => {
                  res.off('drain', done);
                  res.off('close', done);
                  resolve();
                };
                res.on('drain', done);
                res.on('close', done);
              });
            }
          }
        })();
        return;
      }
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 404 }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    cleanups.push(() => void server.closeAllConnections());
    const dir = mkdtempSync(join(tmpdir(), 'egw-kwb-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const kubeconfig = join(dir, 'kubeconfig');
    const { port } = server.address() as AddressInfo;
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'nobody', user: {} }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'nobody' } }],
        'current-context': 'fake',
      }),
    );

    const store = await KubernetesDatastore.open({ kubeconfig, kinds: ['Namespace'] });
    cleanups.push(() => store.close());
    const ac = new AbortController();
    cleanups.push(() => ac.abort());
    const it = store.watch({ afterRevision: 99, signal: ac.signal })[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toMatchObject({ type: 'put', key: { kind: 'Namespace', name: 'ns0' } });

    // The consumer now pauses: the server gets stuck once the client's buffer (64 + 64 events) and the
    // socket buffers are full.
    let last = -1;
    for (let stable = 0; stable < 5; ) {
      await new Promise((r) => setTimeout(r, 100));
      stable = sent === last ? stable + 1 : 0;
      last = sent;
    }
    expect(sent).toBeLessThan(total / 2);
    console.log(`watch buffer: the server could send ${sent} of ${total} events (16 KiB each) to a consumer that stopped after 1`);

    // Reading again resumes the stream: every event arrives, in order, once.
    const names: string[] = ['ns0'];
    while (names.length < total) {
      const n = await it.next();
      if (n.done === true) break;
      if (n.value.type === 'put') names.push(n.value.key.name);
    }
    expect(names).toEqual(Array.from({ length: total }, (_, i) => `ns${i}`));
    expect(sent).toBe(total);
    await it.return?.();
  });
});
