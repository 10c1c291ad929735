/**
 * Every HTTP server egw runs answers malformed requests with 400 and keeps serving (issue 11, item 8):
 * aws-sim (EC2 API and admin paths), its IMDS (main listener and a listener bound to one instance), the
 * gateway's health port, the agent's metrics, and the webhook (HTTPS). Requests are written as raw bytes
 * on a TCP (or TLS) socket, so nothing normalises them on the way; `egw aws-sim` also runs as its own
 * process from the build, to show that the process survives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentMetrics, serveMetrics } from '../../src/agent/metrics.js';
import { startWebhookServer, type RunningWebhookServer } from '../../src/controller/webhook/server.js';
import { issueWebhookTls, type WebhookTls } from '../../src/controller/webhook/x509.js';
import type { Datastore } from '../../src/datastore/contract.js';
import { openDatastore } from '../../src/datastore/open.js';
import { gatewayConfig } from '../../src/gateway/config.js';
import { GatewayProcess } from '../../src/gateway/gateway.js';
import { FakeClock } from '../../src/platform/clock.js';
import { parseRequestTarget } from '../../src/platform/http-edge.js';
import { silentLogger } from '../../src/platform/logger.js';
import { startAwsSim, type AwsSimHandle } from '../../src/sim/aws/server.js';
import { FakeKernel } from '../linux/fixtures/fake-kernel.js';
import { NODE_A, testWorld } from '../sim/aws/helpers.js';

/** Request lines and whole requests that are malformed: each must get a 400. */
const MALFORMED: readonly string[] = [
  'GET // HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET //latest/meta-data/ HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET http://evil.example/metrics HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET * HTTP/1.1\r\nHost: x\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n',
  'GARBAGE\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
  '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n',
];

/** Requests that are well-formed but odd: any answer but a 5xx, and the server lives on. */
const ODD: readonly string[] = [
  'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /?%%%=%% HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /latest/meta-data/../../_sim/state HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /latest/%2e%2e/%2e%2e HTTP/1.1\r\nHost: x\r\n\r\n',
  'DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n',
  // A bad chunk: a server that answers without reading the body (404) is as right as one that reads it (400).
  'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  `GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  'POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{"a":',
  'POST /?Action=DescribeRegions&Version=2016-11-15 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\n%%%&&==',
];

interface Target {
  name: string;
  host: string;
  port: number;
  tls?: WebhookTls;
  /** A good request and what it answers, to show the server still serves. */
  good: { request: string; status: number };
}

/** Writes raw bytes, reads until the peer closes (or 3 s), returns the status code (0: no answer). */
function raw(t: Target, bytes: string, opts: { resetAfterWrite?: boolean } = {}): Promise<number> {
  return new Promise((resolve) => {
    const onConnect = (): void => {
      sock.write(Buffer.from(bytes, 'latin1'));
      if (opts.resetAfterWrite === true) {
        // Let the bytes leave, then reset (a TLS socket cannot reset: it is destroyed mid-request).
        setTimeout(() => {
          if (t.tls === undefined) sock.resetAndDestroy();
          else sock.destroy();
          resolve(0);
        }, 20);
      }
    };
    const sock: Socket = t.tls === undefined ? netConnect(t.port, t.host, onConnect) : tlsConnect({ host: t.host, port: t.port, ca: t.tls.caPem, servername: undefined, rejectUnauthorized: false }, onConnect);
    let data = '';
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      resolve(m === null ? 0 : Number(m[1]));
    };
    const timer = setTimeout(done, 3000);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      data += d;
      // One answer is enough: a keep-alive server would otherwise wait for the next request.
      if (/\r\n\r\n/.test(data)) done();
    });
    sock.on('end', done);
    sock.on('error', done);
  });
}

async function expectServing(t: Target): Promise<void> {
  expect(await raw(t, t.good.request), `${t.name} still serves`).toBe(t.good.status);
}

async function driveMalformed(t: Target): Promise<void> {
  for (const bytes of MALFORMED) {
    expect(await raw(t, bytes), `${t.name}: ${JSON.stringify(bytes.slice(0, 40))}`).toBe(400);
  }
  for (const bytes of ODD) {
    const status = await raw(t, bytes);
    expect(status, `${t.name}: ${JSON.stringify(bytes.slice(0, 40))}`).toBeGreaterThanOrEqual(200);
    expect(status, `${t.name}: ${JSON.stringify(bytes.slice(0, 40))}`).toBeLessThan(500);
  }
  // A client that resets in the middle of an upload.
  await raw(t, 'POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"partial', { resetAfterWrite: true });
  await raw(t, 'POST /?Action=DescribeRegions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nAction=', { resetAfterWrite: true });
  await expectServing(t);
}

describe('parseRequestTarget', () => {
  it('accepts origin-form targets only', () => {
    expect(parseRequestTarget('/readiness?x=1')).toEqual({ path: '/readiness', query: 'x=1' });
    expect(parseRequestTarget('/')).toEqual({ path: '/', query: '' });
    for (const bad of [undefined, '', '//', '//[', '*', 'http://a/b', '/a b', '/\u0000', `/${'a'.repeat(9000)}`]) expect(parseRequestTarget(bad)).toBeUndefined();
  });
});

describe('egw servers answer malformed requests with 400 and keep serving', () => {
  let dir: string;
  let sim: AwsSimHandle;
  let metrics: Server;
  let webhook: RunningWebhookServer;
  let tls: WebhookTls;
  let store: Datastore;
  let gw: GatewayProcess;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'egw-http-edge-'));
    sim = await startAwsSim({ world: testWorld({ imds: { tokens: 'optional', trustInstanceHeader: true } }), listen: '127.0.0.1:0', imdsBindings: [{ instanceId: NODE_A, listen: '127.0.0.1:0' }] });
    metrics = await serveMetrics(new AgentMetrics().registry, '127.0.0.1:0');
    tls = issueWebhookTls({ dnsNames: [], ipAddresses: ['127.0.0.1'], now: new Date() });
    webhook = await startWebhookServer({ reviewer: { review: () => Promise.reject(new Error('not used')) }, logger: silentLogger() }, tls, { host: '127.0.0.1', port: 0 });
    store = await openDatastore(join(dir, 'egw.db'));
    const config = gatewayConfig({}, { EGRESS_POD_IP: '100.64.0.5', HEALTH_PORT: '8080', ICMP_PROBE_IPS: '', HTTP_PROBE_URLS: '' });
    gw = new GatewayProcess({ store, shell: new FakeKernel(), clock: new FakeClock() }, config, { listenHost: '127.0.0.1', listenPort: 0, datastorePingMs: 1000 });
    await gw.start();
  });

  afterAll(async () => {
    await gw?.stop();
    await store?.close();
    await webhook?.close();
    await new Promise((r) => metrics?.close(r));
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const portOf = (url: string): number => Number(new URL(url).port);

  it('aws-sim: the EC2 API and admin paths', async () => {
    await driveMalformed({ name: 'aws-sim', host: '127.0.0.1', port: portOf(sim.url), good: { request: 'GET /_sim/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', status: 200 } });
  });

  it('aws-sim: IMDS on the main listener and on a listener bound to one instance', async () => {
    const good = { request: `GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\nx-egw-sim-instance-id: ${NODE_A}\r\nConnection: close\r\n\r\n`, status: 200 };
    await driveMalformed({ name: 'imds', host: '127.0.0.1', port: portOf(sim.url), good });
    await driveMalformed({ name: 'imds-bound', host: '127.0.0.1', port: portOf(sim.imdsBindingUrls[NODE_A]!), good });
  });

  it('gateway: the health port', async () => {
    await driveMalformed({ name: 'gateway', host: '127.0.0.1', port: gw.healthPort, good: { request: 'GET /liveness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', status: 200 } });
  });

  it('agent: the metrics port', async () => {
    const port = (metrics.address() as { port: number }).port;
    await driveMalformed({ name: 'metrics', host: '127.0.0.1', port, good: { request: 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', status: 200 } });
  });

  it('controller: the webhook (HTTPS)', async () => {
    await driveMalformed({ name: 'webhook', host: '127.0.0.1', port: webhook.port, tls, good: { request: 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', status: 200 } });
  });
});

describe('the egw aws-sim process', () => {
  const main = join(process.cwd(), 'dist/src/cli/main.js');
  let child: ChildProcess | undefined;
  let dir: string | undefined;

  afterAll(() => {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!existsSync(main))('survives GET // and GET //[ and answers 400', async () => {
    dir = mkdtempSync(join(tmpdir(), 'egw-http-edge-proc-'));
    const world = join(dir, 'world.json');
    writeFileSync(world, JSON.stringify(testWorld()));
    child = spawn(process.execPath, [main, 'aws-sim', '--world', world, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    let port = 0;
    for (let i = 0; i < 300 && port === 0; i++) {
      const m = /127\.0\.0\.1:(\d+)/.exec(out);
      if (m !== null) port = Number(m[1]);
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(port, out).toBeGreaterThan(0);
    const t: Target = { name: 'egw aws-sim', host: '127.0.0.1', port, good: { request: 'GET /_sim/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', status: 200 } };
    expect(await raw(t, 'GET // HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(400);
    expect(await raw(t, 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(400);
    await expectServing(t);
    expect(child.exitCode).toBeNull();
  });
});
