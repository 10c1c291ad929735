import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nextHopsKey, nextHopsValue, NODE_STATUS_KIND } from '../../src/agent/records.js';
import { AgentRecordsGc } from '../../src/controller/agent-records-gc.js';
import type { Datastore, JsonObject } from '../../src/datastore/contract.js';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { FakeClock } from '../../src/platform/clock.js';

let dir: string;
let store: Datastore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'egw-records-gc-'));
  store = await SqliteDatastore.open(join(dir, 'egw.db'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const node = (name: string): JsonObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
const pod = (ns: string, name: string, uid: string, nodeName: string): JsonObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, uid },
  spec: { nodeName, containers: [{ name: 'c' }] },
});
const hops = (client: string, podUID: string, nodeName: string): JsonObject =>
  nextHopsValue({ client, podUID, node: nodeName, rules: { sel: { maxNextHops: 1, gateways: ['calico-egress/gw-1'] } } });

async function seed(): Promise<void> {
  await store.commit([
    { op: 'put', key: { kind: 'Node', name: 'n1' }, value: node('n1') },
    { op: 'put', key: { kind: 'Pod', namespace: 'app', name: 'alive' }, value: pod('app', 'alive', 'u1', 'n1') },
    { op: 'put', key: { kind: 'Pod', namespace: 'app', name: 'recreated' }, value: pod('app', 'recreated', 'u-new', 'n1') },
    { op: 'put', key: nextHopsKey('app/alive'), value: hops('app/alive', 'u1', 'n1') },
    { op: 'put', key: nextHopsKey('app/gone'), value: hops('app/gone', 'u2', 'n1') },
    { op: 'put', key: nextHopsKey('app/recreated'), value: hops('app/recreated', 'u-old', 'n1') },
    { op: 'put', key: { kind: NODE_STATUS_KIND, name: 'n1' }, value: { metadata: { name: 'n1' } } },
    { op: 'put', key: { kind: NODE_STATUS_KIND, name: 'n-dead' }, value: { metadata: { name: 'n-dead' } } },
  ]);
}

describe('agent records GC', () => {
  it('removes records of pods and nodes that are gone, only after seeing them orphaned twice', async () => {
    await seed();
    const gc = new AgentRecordsGc({ store, clock: new FakeClock() });
    const first = await gc.runOnce();
    expect(first.removed).toEqual([]);
    expect(first.suspected.sort()).toEqual(['EgressNextHops/app/gone', 'EgressNextHops/app/recreated', 'EgressNodeStatus/n-dead']);
    const second = await gc.runOnce();
    expect(second.removed.sort()).toEqual(['EgressNextHops/app/gone', 'EgressNextHops/app/recreated', 'EgressNodeStatus/n-dead']);
    expect((await store.list('EgressNextHops')).items.map((s) => s.key.name)).toEqual(['alive']);
    expect((await store.list(NODE_STATUS_KIND)).items.map((s) => s.key.name)).toEqual(['n1']);
    expect((await gc.runOnce()).removed).toEqual([]);
  });

  it('leaves a record whose pod reappears, or that its owner rewrites, between the two passes', async () => {
    await seed();
    const gc = new AgentRecordsGc({ store, clock: new FakeClock() });
    await gc.runOnce();
    await store.commit([
      { op: 'put', key: { kind: 'Pod', namespace: 'app', name: 'gone' }, value: pod('app', 'gone', 'u2', 'n1') },
      { op: 'put', key: nextHopsKey('app/recreated'), value: hops('app/recreated', 'u-new', 'n1') },
    ]);
    const second = await gc.runOnce();
    expect(second.removed).toEqual(['EgressNodeStatus/n-dead']);
    expect((await store.list('EgressNextHops')).items.map((s) => s.key.name).sort()).toEqual(['alive', 'gone', 'recreated']);
  });
});
