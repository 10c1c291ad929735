import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nextHopsKey, nextHopsValue } from '../../src/agent/records.js';
import { GATEWAY_MAINTENANCE_ANNOTATIONS } from '../../src/api/index.js';
import { selectionKey } from '../../src/calc/selection.js';
import { GatewayMaintenanceWriter } from '../../src/controller/gateway-maintenance.js';
import type { Datastore, JsonObject, StoredResource } from '../../src/datastore/contract.js';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { FakeClock, SystemClock } from '../../src/platform/clock.js';

const [IP, STARTED, FINISHED] = GATEWAY_MAINTENANCE_ANNOTATIONS;
const RED = "egress-code == 'red'";
const SEL = 'egress.projectcalico.org/selector';

let dir: string;
let store: Datastore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'egw-gw-maint-'));
  store = await SqliteDatastore.open(join(dir, 'egw.db'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const T0 = 1_800_000_000_000;
const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

function pod(name: string, o: { ip: string; node: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletion?: { at: number; grace: number } }): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'app',
      uid: o.uid,
      ...(o.labels === undefined ? {} : { labels: o.labels }),
      ...(o.annotations === undefined ? {} : { annotations: o.annotations }),
      ...(o.deletion === undefined ? {} : { deletionTimestamp: iso(o.deletion.at), deletionGracePeriodSeconds: o.deletion.grace }),
    },
    spec: { nodeName: o.node, containers: [{ name: 'c' }] },
    status: { phase: 'Running', podIP: o.ip },
  };
}
const put = (kind: string, name: string, value: JsonObject, namespace?: string) => ({ op: 'put' as const, key: { kind, name, ...(namespace === undefined ? {} : { namespace }) }, value });

async function seed(deletion?: { at: number; grace: number }): Promise<void> {
  await store.commit([
    put('FelixConfiguration', 'default', { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { egressIPSupport: 'EnabledPerNamespaceOrPerPod' } }),
    put('Namespace', 'app', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app', annotations: { [SEL]: RED } } }),
    put('Pod', 'c1', pod('c1', { ip: '10.2.0.1', node: 'n1', uid: 'u-c1', annotations: { 'example.com/owner': 'team-a' } }), 'app'),
    put('Pod', 'red-1', pod('red-1', { ip: '100.64.0.1', node: 'n2', uid: 'u-r1', labels: { 'egress-code': 'red' }, ...(deletion === undefined ? {} : { deletion }) }), 'app'),
    put('Pod', 'red-2', pod('red-2', { ip: '100.64.0.2', node: 'n3', uid: 'u-r2', labels: { 'egress-code': 'red' } }), 'app'),
  ]);
}

async function all(): Promise<StoredResource[]> {
  const out: StoredResource[] = [];
  for (const k of ['Pod', 'Namespace', 'EgressGatewayPolicy', 'FelixConfiguration', 'EgressNextHops']) out.push(...(await store.list(k)).items);
  return out;
}

async function annotations(name: string): Promise<Record<string, string> | undefined> {
  const s = await store.get({ kind: 'Pod', namespace: 'app', name });
  return (s?.value['metadata'] as { annotations?: Record<string, string> } | undefined)?.annotations;
}

describe('the gateway-maintenance writer on the SQLite datastore', () => {
  it('sets the three annotations on the client, beside its others, once; removes them after the gateway is gone and its grace ended', async () => {
    await seed({ at: T0 + 20_000, grace: 30 });
    const clock = new FakeClock(T0);
    const writer = new GatewayMaintenanceWriter({ store, clock });
    const first = await writer.runOnce(await all());
    expect(first.written).toEqual(['app/c1']);
    expect(await annotations('c1')).toEqual({ 'example.com/owner': 'team-a', [IP]: '100.64.0.1', [STARTED]: iso(T0 - 10_000), [FINISHED]: iso(T0 + 20_000) });
    const revision = await store.currentRevision();
    expect((await writer.runOnce(await all())).written).toEqual([]);
    expect(await store.currentRevision()).toBe(revision);
    // The gateway exits 5 s in: the warning stays until its finish time, then goes.
    await store.commit([{ op: 'delete', key: { kind: 'Pod', namespace: 'app', name: 'red-1' } }]);
    clock.advance(5_000);
    const kept = await writer.runOnce(await all());
    expect(kept.written).toEqual([]);
    expect(kept.nextCheckMs).toBe(T0 + 20_000);
    clock.advance(15_000);
    expect((await writer.runOnce(await all())).written).toEqual(['app/c1']);
    expect(await annotations('c1')).toEqual({ 'example.com/owner': 'team-a' });
  });

  it('a pod written between the read and the write is retried on the next pass, with the other writer\'s change kept', async () => {
    await seed({ at: T0 + 20_000, grace: 30 });
    const writer = new GatewayMaintenanceWriter({ store, clock: new FakeClock(T0) });
    const stale = await all();
    // Someone else changes the client after the writer's read of the world, and before its own read.
    const racing: Datastore = {
      ...store,
      location: store.location,
      capabilities: store.capabilities,
      get: async (key) => {
        const got = await store.get(key);
        if (got !== undefined && key.name === 'c1') {
          const meta = got.value['metadata'] as JsonObject;
          await store.commit([{ op: 'put', key, value: { ...got.value, metadata: { ...meta, labels: { late: 'yes' } } } }]);
        }
        return got;
      },
      commit: (ops) => store.commit(ops),
      list: (kind, o) => store.list(kind, o),
      currentRevision: () => store.currentRevision(),
      watch: (o) => store.watch(o),
      close: () => store.close(),
    };
    const raced = new GatewayMaintenanceWriter({ store: racing, clock: new FakeClock(T0) });
    expect((await raced.runOnce(stale)).deferred).toEqual(['app/c1']);
    expect((await writer.runOnce(await all())).written).toEqual(['app/c1']);
    const meta = (await store.get({ kind: 'Pod', namespace: 'app', name: 'c1' }))!.value['metadata'] as { labels?: unknown; annotations?: Record<string, string> };
    expect(meta.labels).toEqual({ late: 'yes' });
    expect(meta.annotations?.[IP]).toBe('100.64.0.1');
  });

  it('maxNextHops clients follow their stored choice; a re-created pod of the same name is not written for the old one', async () => {
    await seed({ at: T0 + 20_000, grace: 30 });
    const key = selectionKey(RED, { kind: 'namespace', namespace: 'app' });
    await store.commit([
      put('Pod', 'c2', pod('c2', { ip: '10.2.0.2', node: 'n1', uid: 'u-c2', annotations: { [SEL]: RED, 'egress.projectcalico.org/maxNextHops': '1' } }), 'app'),
      { op: 'put', key: nextHopsKey('app/c2'), value: nextHopsValue({ client: 'app/c2', podUID: 'u-c2', node: 'n1', rules: { [key]: { maxNextHops: 1, gateways: ['app/red-2'] } } }) },
    ]);
    const writer = new GatewayMaintenanceWriter({ store, clock: new FakeClock(T0) });
    expect((await writer.runOnce(await all())).written).toEqual(['app/c1']);
    expect(await annotations('c2')).toEqual({ [SEL]: RED, 'egress.projectcalico.org/maxNextHops': '1' });
  });

  it('restart: a fresh writer removes annotations a previous one left for a gateway long gone, and never writes an invalid pod', async () => {
    await seed();
    const stale = pod('c1', { ip: '10.2.0.1', node: 'n1', uid: 'u-c1', annotations: { 'example.com/owner': 'team-a', [IP]: '100.64.0.9', [STARTED]: iso(T0 - 90_000), [FINISHED]: iso(T0 - 60_000) } });
    // Invalid (a container without a name): absent for the planner, so never written, whatever it carries.
    const invalid: JsonObject = { ...pod('bad', { ip: '10.2.0.3', node: 'n1', uid: 'u-bad', annotations: { [IP]: '100.64.0.9', [STARTED]: iso(T0 - 90_000), [FINISHED]: iso(T0 - 60_000) } }), spec: { containers: [{}] } };
    await store.commit([put('Pod', 'c1', stale, 'app'), put('Pod', 'bad', invalid, 'app')]);
    const writer = new GatewayMaintenanceWriter({ store, clock: new FakeClock(T0) });
    expect((await writer.runOnce(await all())).written).toEqual(['app/c1']);
    expect(await annotations('c1')).toEqual({ 'example.com/owner': 'team-a' });
    expect((await annotations('bad'))?.[IP]).toBe('100.64.0.9');
  });

  it('run(): follows the store in real time — annotations appear when the gateway starts terminating and go after its grace', async () => {
    await seed();
    const writer = new GatewayMaintenanceWriter({ store, clock: new SystemClock() }, { resyncMs: 60_000 });
    const stop = new AbortController();
    const running = writer.run(stop.signal);
    try {
      const now = Date.now();
      const deletion = { at: Math.ceil((now + 2_000) / 1000) * 1000, grace: 2 };
      await store.commit([put('Pod', 'red-1', pod('red-1', { ip: '100.64.0.1', node: 'n2', uid: 'u-r1', labels: { 'egress-code': 'red' }, deletion }), 'app')]);
      await until(async () => (await annotations('c1'))?.[IP] === '100.64.0.1');
      expect((await annotations('c1'))?.[FINISHED]).toBe(iso(deletion.at));
      // The pod runtime removes the gateway once it has stopped; the writer removes the annotations at the finish time.
      await store.commit([{ op: 'delete', key: { kind: 'Pod', namespace: 'app', name: 'red-1' } }]);
      await until(async () => (await annotations('c1'))?.[IP] === undefined);
      expect(Date.now()).toBeGreaterThanOrEqual(deletion.at);
      expect(await annotations('c1')).toEqual({ 'example.com/owner': 'team-a' });
    } finally {
      stop.abort();
      await running;
    }
  });
});

async function until(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met in time');
}
