import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Node } from '../../src/api/index.js';
import type { Datastore } from '../../src/datastore/contract.js';
import { openDatastore } from '../../src/datastore/open.js';
import { gatewayConfig } from '../../src/gateway/config.js';
import { GatewayProcess } from '../../src/gateway/gateway.js';
import { initGatewayPod } from '../../src/gateway/init.js';
import { HttpProber, PingProber, type Prober } from '../../src/gateway/probes.js';
import { FakeClock } from '../../src/platform/clock.js';
import type { CommandResult, RunOptions, Shell } from '../../src/platform/shell.js';
import { FlakyDatastore } from '../datastore/flaky-datastore.js';
import { FakeKernel } from '../linux/fixtures/fake-kernel.js';

// The gateway process with a fake kernel (the stateful iproute2/nft fake), a fake clock driving its probe
// and datastore loops, fake probers, and a real SQLite datastore holding the Node records.

function node(name: string, ip: string): Node {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name }, status: { addresses: [{ type: 'InternalIP', address: ip }] } };
}

class FakeProber implements Prober {
  answers = new Map<string, boolean>();
  calls: string[] = [];
  /** Fake-clock time of the last successful answer. */
  lastSuccessAt: number | undefined;
  constructor(private readonly now: () => number) {}
  probe(target: string): Promise<{ ok: boolean; detail?: string }> {
    this.calls.push(target);
    const ok = this.answers.get(target) === true;
    if (ok) this.lastSuccessAt = this.now();
    return Promise.resolve(ok ? { ok: true } : { ok: false, detail: 'injected' });
  }
}

/** Lets pending promise callbacks and I/O run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

let dir: string;
let store: Datastore;
let kernel: FakeKernel;
let clock: FakeClock;
let gw: GatewayProcess | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'egw-gateway-test-'));
  store = await openDatastore(join(dir, 'egw.db'));
  await store.commit([
    { op: 'put', key: { kind: 'Node', name: 'n1' }, value: node('n1', '10.10.1.10') as never },
    { op: 'put', key: { kind: 'Node', name: 'n2' }, value: node('n2', '10.10.2.10') as never },
  ]);
  kernel = new FakeKernel();
  clock = new FakeClock();
});

afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Advances the fake clock in steps until `check` holds (real time runs too: the informer is real). */
async function advanceUntil(what: string, check: () => boolean, stepMs = 100, maxSteps = 2000): Promise<void> {
  for (let i = 0; i < maxSteps; i++) {
    if (check()) return;
    clock.advance(stepMs);
    await flush();
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never: ${what}`);
}

describe('egw gateway process', () => {
  it('programs the pod from the Node records, follows node changes, and serves /readiness', async () => {
    const icmp = new FakeProber(() => clock.now());
    const config = gatewayConfig({}, { EGRESS_POD_IP: '100.64.0.5', HEALTH_PORT: '8080', ICMP_PROBE_IPS: '192.0.2.1,192.0.2.2', ICMP_PROBE_INTERVAL: '1s', ICMP_PROBE_TIMEOUT: '3s' });
    gw = new GatewayProcess({ store, shell: kernel, clock, icmpProber: icmp }, config, { listenHost: '127.0.0.1', listenPort: 0, datastorePingMs: 1000 });
    await gw.start();
    const url = `http://127.0.0.1:${gw.healthPort}/readiness`;
    const get = async (): Promise<{ status: number; body: { ready: boolean; reasons: string[] } }> => {
      const r = await fetch(url);
      return { status: r.status, body: (await r.json()) as { ready: boolean; reasons: string[] } };
    };

    await advanceUntil('the pod is programmed', () => gw!.report().checks.dataplane.ok);
    expect(kernel.links.get('egw.vxlan')?.vxlan).toMatchObject({ vni: 4097, port: 4790, local: '100.64.0.5' });
    expect([...(kernel.nft?.sets.get('nodes')?.elements ?? [])].sort()).toEqual(['10.10.1.10', '10.10.2.10']);
    // No ping has answered yet: 503 with the reason.
    const first = await get();
    expect(first.status).toBe(503);
    expect(first.body.ready).toBe(false);
    expect(first.body.reasons).toEqual([expect.stringMatching(/^icmp probes: no target has answered yet/)]);

    icmp.answers.set('192.0.2.2', true);
    await advanceUntil('ready', () => gw!.report().ready);
    expect((await get()).status).toBe(200);
    expect(icmp.calls).toContain('192.0.2.1');

    // A new node is admitted to the tunnel (only the set changes).
    await store.commit([{ op: 'put', key: { kind: 'Node', name: 'n3' }, value: node('n3', '10.10.3.10') as never }]);
    await advanceUntil('n3 admitted', () => kernel.nft?.sets.get('nodes')?.elements.has('10.10.3.10') === true);

    // Pings stop answering: not ready 3 s after the last echo, with the reason; back on the next echo.
    icmp.answers.set('192.0.2.2', false);
    await advanceUntil('not ready', () => !gw!.report().ready);
    const silence = clock.now() - icmp.lastSuccessAt!;
    expect(silence).toBeGreaterThan(3000);
    expect(silence).toBeLessThanOrEqual(3100);
    expect((await get()).body.reasons).toEqual([expect.stringMatching(/^icmp probes: no target answered for .* \(timeout 3s\) \(last failure: 192\.0\.2\.\d: injected\)$/)]);
    icmp.answers.set('192.0.2.1', true);
    await advanceUntil('ready again', () => gw!.report().ready);

    // SIGTERM: not ready at once, and what it made is removed.
    await gw.stop({ removeDataplane: true });
    expect(gw.report().reasons).toContain('shutting down');
    expect(kernel.links.has('egw.vxlan')).toBe(false);
    expect(kernel.nft).toBeUndefined();
    gw = undefined;
  });

  it('never programs a partial node set: nothing is applied before the node list is complete', async () => {
    const flaky = new FlakyDatastore(store);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    flaky.beforeList = (kind) => (kind === 'Node' ? held : Promise.resolve());
    gw = new GatewayProcess({ store: flaky, shell: kernel, clock }, gatewayConfig({}, { EGRESS_POD_IP: '100.64.0.5', HEALTH_PORT: '0' }), { datastorePingMs: 1000 });
    await gw.start();
    for (let i = 0; i < 100; i++) {
      clock.advance(100);
      await flush();
    }
    expect(kernel.log).toEqual([]);
    expect(gw.report().reasons).toContain('data plane not programmed yet');
    release();
    await advanceUntil('programmed', () => gw!.report().checks.dataplane.ok);
    expect([...(kernel.nft?.sets.get('nodes')?.elements ?? [])].sort()).toEqual(['10.10.1.10', '10.10.2.10']);
  });

  it('takes VNI and port from FelixConfiguration default when the environment does not set them', async () => {
    await store.commit([{ op: 'put', key: { kind: 'FelixConfiguration', name: 'default' }, value: { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { egressIPVXLANVNI: 5000, egressIPVXLANPort: 4799 } } }]);
    gw = new GatewayProcess({ store, shell: kernel, clock }, gatewayConfig({}, { EGRESS_POD_IP: '100.64.0.5', HEALTH_PORT: '0' }), { datastorePingMs: 1000 });
    await gw.start();
    await advanceUntil('programmed', () => gw!.report().ready);
    expect(kernel.links.get('egw.vxlan')?.vxlan).toMatchObject({ vni: 5000, port: 4799 });
    // No health port: no readiness server and no health port in the filter.
    expect(gw.healthPort).toBe(0);
    expect(kernel.nft?.chains.get('input')?.comments.length).toBe(3);
  });

  it('goes not ready when the datastore cannot be reached for HEALTH_TIMEOUT_DATASTORE', async () => {
    const failing: Datastore = Object.assign(Object.create(store) as Datastore, { currentRevision: () => Promise.reject(new Error('unreachable')) });
    gw = new GatewayProcess({ store: failing, shell: kernel, clock }, gatewayConfig({}, { EGRESS_POD_IP: '100.64.0.5', HEALTH_PORT: '0', HEALTH_TIMEOUT_DATASTORE: '5s' }), { datastorePingMs: 1000 });
    await gw.start();
    // The informer's list counted as contact; the pings then fail.
    await advanceUntil('ready after the first list', () => gw!.report().ready);
    await advanceUntil('not ready', () => !gw!.report().ready);
    expect(gw.report().reasons).toEqual([expect.stringMatching(/^datastore not reached for [\d.]+s \(timeout 5s\): unreachable$/)]);
  });

  it('init programs the pod once from the datastore, or with no node when it is unreachable', async () => {
    const config = gatewayConfig({}, { EGRESS_POD_IP: '100.64.0.5' });
    const r = await initGatewayPod(kernel, config, store);
    expect(r).toMatchObject({ changed: true, nodes: 2, datastore: true, failures: [] });
    expect((await initGatewayPod(kernel, config, store)).changed).toBe(false);
    const other = new FakeKernel();
    expect(await initGatewayPod(other, config, undefined)).toMatchObject({ changed: true, nodes: 0, datastore: false });
    expect(other.nft?.sets.get('nodes')?.elements.size).toBe(0);
  });
});

describe('probes', () => {
  let server: Server;
  let port: number;
  beforeEach(async () => {
    server = createServer((req, res) => {
      if (req.url === '/ok') res.writeHead(204).end();
      else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end(), 500);
      else res.writeHead(500).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('HTTP: any 2xx in time succeeds; other statuses, timeouts and refusals fail with a detail', async () => {
    const p = new HttpProber();
    expect(await p.probe(`http://127.0.0.1:${port}/ok`, 1000)).toEqual({ ok: true });
    expect(await p.probe(`http://127.0.0.1:${port}/err`, 1000)).toEqual({ ok: false, detail: 'HTTP 500' });
    expect(await p.probe(`http://127.0.0.1:${port}/slow`, 100)).toEqual({ ok: false, detail: 'no answer within 100 ms' });
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    expect(await p.probe(`http://127.0.0.1:${port}/ok`, 1000)).toEqual({ ok: false, detail: 'ECONNREFUSED' });
    server.listen(port, '127.0.0.1');
  });

  it('ICMP: one ping with a fractional deadline; exit 0 succeeds', async () => {
    const calls: string[][] = [];
    const shell: Shell = {
      run: (argv: readonly string[], _o?: RunOptions): Promise<CommandResult> => {
        calls.push([...argv]);
        return Promise.resolve({ stdout: '', stderr: '', exitCode: argv.at(-1) === '192.0.2.1' ? 0 : 1 });
      },
    };
    const p = new PingProber(shell);
    expect(await p.probe('192.0.2.1', 250)).toEqual({ ok: true });
    expect(await p.probe('192.0.2.2', 250)).toEqual({ ok: false, detail: 'no echo reply' });
    expect(calls[0]).toEqual(['ping', '-4', '-n', '-q', '-c', '1', '-W', '0.3', '192.0.2.1']);
  });
});

vi.setConfig({ testTimeout: 60_000 });
