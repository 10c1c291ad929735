/**
 * The single-object IPAM path (the Kubernetes datastore's: one object per commit, block first) on SQLite
 * behind a wrapper that refuses multi-op commits. Every crash window of an allocation and a release — the
 * process stops after the k-th commit, for every k — leaves no duplicate, only findings GC repairs, and a
 * retry with the same handle is idempotent.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ipam } from '../../src/ipam/allocator.js';
import { runIpamGcPass } from '../../src/ipam/gc.js';
import { analyzeIpam, readIpamSnapshot } from '../../src/ipam/inspect.js';
import { BLOCK_AFFINITY_KIND, FULL_BLOCK_AFFINITY_KIND, IPAM_BLOCK_KIND, IPAM_HANDLE_KIND } from '../../src/ipam/records.js';
import { isEgwError } from '../../src/platform/errors.js';
import type { TestStore } from './helpers.js';
import { node, openTestStore, pool, seed } from './helpers.js';
import { SingleObjectStore } from './single-object-store.js';

let t: TestStore;
beforeEach(async () => {
  t = await openTestStore('egw-ipam-single-');
  // /29 blocks: 8 addresses, so a few allocations claim, fill and spill.
  await seed(t.store, node('n1'), node('n2'), pool('p', { cidr: '10.70.0.0/27', blockSize: 29 }));
});
afterEach(async () => {
  await t.cleanup();
});

/** Addresses recorded in blocks, as `ip → handle`; fails on an address recorded twice. */
async function recorded(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const b of (await t.store.list(IPAM_BLOCK_KIND)).items) {
    const v = b.value as { cidr: string; allocations: Record<string, string> };
    const base = v.cidr.split('/')[0]!.split('.').map(Number);
    for (const [ord, h] of Object.entries(v.allocations)) {
      const ip = `${base[0]}.${base[1]}.${base[2]}.${base[3]! + Number(ord)}`;
      expect(out.has(ip), `${ip} recorded twice`).toBe(false);
      out.set(ip, h);
    }
  }
  return out;
}

describe('single-object mode', () => {
  it('follows the store: no multi-op commit, same results as the atomic path', async () => {
    const store = new SingleObjectStore(t.store);
    const ipam = new Ipam({ store });
    expect(ipam.writeMode).toBe('single-object');
    expect(new Ipam({ store: t.store }).writeMode).toBe('atomic');
    expect(() => new Ipam({ store }, { writeMode: 'atomic' })).toThrow(/atomic multi-key/);
    const ips = new Set<string>();
    for (let i = 0; i < 20; i++) ips.add((await ipam.allocate({ handle: `h${i}`, node: i % 2 === 0 ? 'n1' : 'n2' })).ip);
    expect(ips.size).toBe(20);
    expect((await ipam.allocate({ handle: 'h3', node: 'n2' })).existing).toBe(true);
    expect(analyzeIpam(await readIpamSnapshot(store))).toEqual([]);
    // Full blocks are filed as full; releasing from one moves it back.
    const full = (await store.list(FULL_BLOCK_AFFINITY_KIND)).items;
    expect(full.length).toBeGreaterThan(0);
    for (let i = 0; i < 20; i += 3) expect((await ipam.releaseByHandle(`h${i}`)).released).toBe(true);
    expect((await ipam.releaseByIp((await ipam.getAllocation('h1'))!.ip)).released).toBe(true);
    expect(analyzeIpam(await readIpamSnapshot(store))).toEqual([]);
    expect((await store.list(BLOCK_AFFINITY_KIND)).items.length).toBeGreaterThan(0);
    // Every allocation's attributes are in its block: the block alone could rebuild the handle.
    const block = (await store.list(IPAM_BLOCK_KIND)).items[0]!.value as { allocations: Record<string, string>; attributes: Record<string, { node: string }> };
    expect(Object.keys(block.attributes).sort()).toEqual(Object.keys(block.allocations).sort());
    const gc = await runIpamGcPass(store, { now: 0, graceMs: 0 });
    expect(gc.repaired).toEqual([]);
    expect(gc.released).toEqual([]);
  });

  it('a crash after any commit of an allocation or a release leaves no duplicate and only what GC or a retry repairs', async () => {
    const base = new SingleObjectStore(t.store);
    const warm = new Ipam({ store: base });
    // 7 of the first block's 8 addresses: the next allocation fills it (block, handle, full index, room index).
    for (let i = 0; i < 7; i++) await warm.allocate({ handle: `pre${i}`, node: 'n1' });
    const scenarios: { name: string; run: (ipam: Ipam) => Promise<unknown> }[] = [
      { name: 'allocate (fills the block)', run: (ipam) => ipam.allocate({ handle: 'victim', node: 'n1' }) },
      { name: 'release (from the full block)', run: (ipam) => ipam.releaseByHandle('pre3') },
      { name: 'allocate (claims a new block)', run: (ipam) => ipam.allocate({ handle: 'claim', node: 'n2' }) },
    ];
    for (const s of scenarios) {
      let survived = false;
      let crashes = 0;
      for (let k = 0; !survived; k++) {
        // Each attempt starts from the same state: snapshot the records the scenario touches.
        const before = await Promise.all([IPAM_BLOCK_KIND, IPAM_HANDLE_KIND, BLOCK_AFFINITY_KIND, FULL_BLOCK_AFFINITY_KIND].map((kind) => t.store.list(kind)));
        const store = new SingleObjectStore(t.store);
        store.crashAfter = k;
        try {
          await s.run(new Ipam({ store }));
          survived = true;
        } catch (err) {
          if (!isEgwError(err, 'DatastoreUnavailable')) throw err;
          crashes++;
        }
        const findings = analyzeIpam(await readIpamSnapshot(t.store));
        expect(findings.every((f) => f.repairable), `${s.name}, crash after ${k}: ${JSON.stringify(findings)}`).toBe(true);
        await recorded();
        // The requester's retry with the same handle is idempotent, and GC leaves everything consistent.
        await s.run(new Ipam({ store: base }));
        const again = await s.run(new Ipam({ store: base }));
        if (s.name.startsWith('allocate')) expect((again as { existing: boolean }).existing).toBe(true);
        await runIpamGcPass(base, { now: 0, graceMs: 0 });
        expect(analyzeIpam(await readIpamSnapshot(t.store)), `${s.name}, crash after ${k}`).toEqual([]);
        const map = await recorded();
        const handles = (await t.store.list(IPAM_HANDLE_KIND)).items.map((h) => h.value as { handle: string; ip: string });
        expect(handles.length).toBe(map.size);
        for (const h of handles) expect(map.get(h.ip)).toBe(h.handle);
        // Back to the state before, for the next crash point.
        if (!survived) {
          const now = await Promise.all([IPAM_BLOCK_KIND, IPAM_HANDLE_KIND, BLOCK_AFFINITY_KIND, FULL_BLOCK_AFFINITY_KIND].map((kind) => t.store.list(kind)));
          for (const list of now) for (const r of list.items) await t.store.commit([{ op: 'delete', key: r.key }]);
          for (const list of before) for (const r of list.items) await t.store.commit([{ op: 'put', key: r.key, value: r.value }]);
        }
        expect(k).toBeLessThan(10);
      }
      // Every write of the operation was a crash point: block, handle, and the index moves.
      expect(crashes, s.name).toBeGreaterThanOrEqual(3);
    }
  });

  it('GC rebuilds a missing handle from its block (an allocation whose handle write was lost)', async () => {
    const store = new SingleObjectStore(t.store);
    const ipam = new Ipam({ store });
    const a = await ipam.allocate({ handle: 'lost', node: 'n1', owner: { kind: 'ENI', node: 'n1', eni: 'eni-1' } });
    await t.store.commit([{ op: 'delete', key: { kind: IPAM_HANDLE_KIND, name: 'lost' } }]);
    expect(analyzeIpam(await readIpamSnapshot(store)).map((f) => f.kind)).toEqual(['orphan-allocation']);
    const pass = await runIpamGcPass(store, { now: 0, graceMs: 0 });
    expect(pass.repaired.map((r) => r.message)).toEqual([expect.stringContaining('handle rebuilt from the block')]);
    const back = await ipam.getAllocation('lost');
    expect(back).toMatchObject({ ip: a.ip, node: 'n1', owner: { kind: 'ENI', node: 'n1', eni: 'eni-1' }, allocatedAt: a.allocatedAt, pool: 'p' });
    expect(analyzeIpam(await readIpamSnapshot(store))).toEqual([]);
    // A rebuilt handle whose owner is gone is released in the same pass.
    await ipam.allocate({ handle: 'gone', node: 'n1', owner: { kind: 'Pod', namespace: 'x', name: 'nope' } });
    await t.store.commit([{ op: 'delete', key: { kind: IPAM_HANDLE_KIND, name: 'gone' } }]);
    const second = await runIpamGcPass(store, { now: 0, graceMs: 0 });
    expect(second.released.map((r) => r.handle)).toEqual(['gone']);
    expect(analyzeIpam(await readIpamSnapshot(store))).toEqual([]);
  });
});
