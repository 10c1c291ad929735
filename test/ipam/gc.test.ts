/**
 * IPAM GC with a fake clock: leaks are released only after two observations across the grace period and
 * a fresh re-validation; a pod that appears in between is not robbed; nodes that are gone lose their
 * addresses and blocks at once; damaged records are repaired; empty blocks go after the grace, except a
 * node's last one.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Pod } from '../../src/api/kinds/kubernetes.js';
import { IpamGcLoop } from '../../src/controller/ipam-gc.js';
import { Ipam } from '../../src/ipam/allocator.js';
import { runIpamGcPass } from '../../src/ipam/gc.js';
import { analyzeIpam, readIpamSnapshot } from '../../src/ipam/inspect.js';
import { BLOCK_AFFINITY_KIND, FULL_BLOCK_AFFINITY_KIND, IPAM_BLOCK_KIND, IPAM_GC_MARK_KIND, IPAM_HANDLE_KIND } from '../../src/ipam/records.js';
import { FakeClock } from '../../src/platform/clock.js';
import type { TestStore } from './helpers.js';
import { node, openTestStore, pod, pool, seed, seeded } from './helpers.js';

let t: TestStore;
beforeEach(async () => {
  t = await openTestStore();
  await seed(t.store, node('n1'), node('n2'), pool('p', { cidr: '10.20.0.0/24', blockSize: 28 }));
});
afterEach(async () => {
  await t.cleanup();
});

const GRACE = 15 * 60_000;

async function findings(): Promise<string[]> {
  return analyzeIpam(await readIpamSnapshot(t.store)).map((f) => f.kind);
}

async function forPod(ipam: Ipam, ns: string, name: string, nodeName = 'n1'): Promise<string> {
  const p = pod(ns, name, { nodeName });
  return (await ipam.allocate({ handle: `net.${name}`, node: nodeName, pod: p as unknown as Pod })).ip;
}

describe('leaks', () => {
  it('are released only after two observations across the grace, re-validated just before', async () => {
    const clock = new FakeClock();
    const ipam = new Ipam({ store: t.store, random: seeded() });
    await seed(t.store, pod('default', 'alive', { nodeName: 'n1' }));
    await forPod(ipam, 'default', 'alive');
    const ip = await forPod(ipam, 'default', 'gone');
    expect(await findings()).toEqual(['leak']);

    const first = await runIpamGcPass(t.store, { now: clock.now(), graceMs: GRACE });
    expect(first.marked).toEqual(['net.gone']);
    expect(first.released).toEqual([]);
    clock.advance(GRACE - 1);
    const early = await runIpamGcPass(t.store, { now: clock.now(), graceMs: GRACE });
    expect(early.waiting).toEqual(['net.gone']);
    expect(await ipam.getAllocation('net.gone')).toBeDefined();
    clock.advance(1);
    const due = await runIpamGcPass(t.store, { now: clock.now(), graceMs: GRACE });
    expect(due.released).toEqual([{ handle: 'net.gone', ip, reason: 'pod default/gone no longer exists' }]);
    expect(await ipam.getAllocation('net.gone')).toBeUndefined();
    expect(await ipam.getAllocation('net.alive')).toBeDefined();
    expect((await t.store.list(IPAM_GC_MARK_KIND)).items).toEqual([]);
    expect(await findings()).toEqual([]);
  });

  it('a pod that appears between the two observations keeps its address', async () => {
    const clock = new FakeClock();
    const ipam = new Ipam({ store: t.store });
    await forPod(ipam, 'default', 'creating'); // CNI ran before the pod was visible to GC's list
    await runIpamGcPass(t.store, { now: clock.now(), graceMs: GRACE });
    await seed(t.store, pod('default', 'creating', { nodeName: 'n1' }));
    clock.advance(GRACE * 2);
    const pass = await runIpamGcPass(t.store, { now: clock.now(), graceMs: GRACE });
    expect(pass.released).toEqual([]);
    expect(await ipam.getAllocation('net.creating')).toBeDefined();
    expect((await t.store.list(IPAM_GC_MARK_KIND)).items).toEqual([]);
  });

  it('a replaced pod (new uid) or one whose podIP is another address leaks its old allocation', async () => {
    const ipam = new Ipam({ store: t.store });
    await forPod(ipam, 'default', 'web');
    await seed(t.store, pod('default', 'web', { nodeName: 'n1', uid: 'another-uid' }));
    const ip2 = await forPod(ipam, 'default', 'db');
    await seed(t.store, pod('default', 'db', { nodeName: 'n1', podIP: '10.99.0.1' }));
    const pass = await runIpamGcPass(t.store, { now: 0, graceMs: 0 });
    expect(pass.released.map((r) => r.reason).sort()).toEqual([`pod default/db has podIP 10.99.0.1, not ${ip2}`, 'pod default/web was replaced (uid another-uid, allocation for uid-default-web)']);
  });

  it("a node that is gone loses its addresses and its blocks at once, whatever the grace", async () => {
    const ipam = new Ipam({ store: t.store });
    for (let i = 0; i < 3; i++) await ipam.allocate({ handle: `n2-${i}`, node: 'n2' });
    await ipam.allocate({ handle: 'n1-0', node: 'n1' });
    await t.store.commit([{ op: 'delete', key: { kind: 'Node', name: 'n2' } }]);
    expect((await findings()).sort()).toEqual(['gone-node-affinity', 'leak', 'leak', 'leak']);
    const pass = await runIpamGcPass(t.store, { now: 0, graceMs: GRACE });
    expect(pass.released).toHaveLength(3);
    // The block went without affinity in the same pass; empty, it goes in the next.
    await runIpamGcPass(t.store, { now: 0, graceMs: GRACE });
    const blocks = (await t.store.list(IPAM_BLOCK_KIND)).items.map((b) => (b.value as { affinity: string | null }).affinity);
    expect(blocks).toEqual(['n1']);
    expect((await t.store.list(BLOCK_AFFINITY_KIND, { namespace: 'n2' })).items).toEqual([]);
    expect(await findings()).toEqual([]);
  });
});

describe('repairs', () => {
  it('repairs orphan handles and allocations and a damaged affinity index', async () => {
    const ipam = new Ipam({ store: t.store });
    const a = await ipam.allocate({ handle: 'keep', node: 'n1' });
    const b = await ipam.allocate({ handle: 'lose-handle', node: 'n1' });
    await ipam.allocate({ handle: 'lose-block-entry', node: 'n1' });
    // Damage: a block entry whose handle is gone; a handle whose block entry is gone; the index emptied.
    await t.store.commit([{ op: 'delete', key: { kind: IPAM_HANDLE_KIND, name: 'lose-handle' } }]);
    const blocks = (await t.store.list(IPAM_BLOCK_KIND)).items;
    const block = blocks[0]!;
    const value = block.value as { allocations: Record<string, string> };
    const allocations = Object.fromEntries(Object.entries(value.allocations).filter(([, h]) => h !== 'lose-block-entry'));
    await t.store.commit([
      { op: 'update', key: block.key, value: { ...block.value, allocations }, expectedRevision: block.modRevision },
      { op: 'delete', key: { kind: BLOCK_AFFINITY_KIND, namespace: 'n1', name: block.key.name } },
      { op: 'put', key: { kind: BLOCK_AFFINITY_KIND, namespace: 'n2', name: block.key.name }, value: { node: 'n2', block: (block.value as { cidr: string }).cidr, pool: '10.20.0.0/24' } },
    ]);
    expect((await findings()).sort()).toEqual(['misfiled-affinity', 'orphan-allocation', 'orphan-handle', 'stale-affinity']);
    const pass = await runIpamGcPass(t.store, { now: 0, graceMs: GRACE });
    expect(pass.repaired).toHaveLength(4);
    expect(await findings()).toEqual([]);
    expect((await ipam.getAllocation('keep'))?.ip).toBe(a.ip);
    expect(await ipam.getAllocation('lose-block-entry')).toBeUndefined();
    // The freed address is allocatable again.
    const again = new Set<string>();
    for (let i = 0; i < 15; i++) again.add((await ipam.allocate({ handle: `x${i}`, node: 'n1' })).ip);
    expect(again.has(b.ip)).toBe(true);
    expect(again.has(a.ip)).toBe(false);
  });

  it('empty blocks go after the grace, except the node\'s last one; full blocks are filed as full', async () => {
    const clock = new FakeClock();
    const ipam = new Ipam({ store: t.store });
    for (let i = 0; i < 20; i++) await ipam.allocate({ handle: `h${i}`, node: 'n1' }); // one full /28 + 4 in a second
    expect((await t.store.list(FULL_BLOCK_AFFINITY_KIND, { namespace: 'n1' })).items).toHaveLength(1);
    for (let i = 0; i < 20; i++) await ipam.releaseByHandle(`h${i}`);
    expect((await t.store.list(FULL_BLOCK_AFFINITY_KIND, { namespace: 'n1' })).items).toHaveLength(0);
    expect((await t.store.list(BLOCK_AFFINITY_KIND, { namespace: 'n1' })).items).toHaveLength(2);
    await runIpamGcPass(t.store, { now: clock.now(), graceMs: GRACE });
    expect((await t.store.list(IPAM_BLOCK_KIND)).items).toHaveLength(2);
    clock.advance(GRACE);
    const pass = await runIpamGcPass(t.store, { now: clock.now(), graceMs: GRACE });
    expect(pass.blocks).toHaveLength(1);
    expect((await t.store.list(IPAM_BLOCK_KIND)).items).toHaveLength(1);
    expect((await t.store.list(BLOCK_AFFINITY_KIND, { namespace: 'n1' })).items).toHaveLength(1);
    expect((await t.store.list(IPAM_GC_MARK_KIND)).items).toEqual([]);
    expect(await findings()).toEqual([]);
  });
});

describe('the controller loop', () => {
  it('passes every interval on the injected clock and releases a leak once the grace has passed', async () => {
    const clock = new FakeClock();
    const ipam = new Ipam({ store: t.store });
    await forPod(ipam, 'default', 'gone');
    const passes: number[] = [];
    const loop = new IpamGcLoop({ store: t.store, clock }, { graceMs: 60_000, onPass: (r) => passes.push(r.released.length) });
    const stop = new AbortController();
    const running = loop.run(stop.signal);
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    };
    const waitPasses = async (n: number): Promise<void> => {
      for (let i = 0; i < 200 && passes.length < n; i++) await settle();
    };
    await waitPasses(1);
    expect(passes).toEqual([0]);
    clock.advance(30_000);
    await waitPasses(2);
    expect(passes).toEqual([0, 0]);
    clock.advance(30_000);
    await waitPasses(3);
    expect(passes).toEqual([0, 0, 1]);
    stop.abort();
    clock.advance(30_000);
    await running;
    expect(await ipam.getAllocation('net.gone')).toBeUndefined();
  });
});
