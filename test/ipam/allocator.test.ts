/**
 * The allocator's rules, on a real (SQLite) store: pool choice by annotation, node selector and zone; the
 * aws-secondary-ipv4 rule; reservations (the reference document's example); AWS's first four and last
 * addresses; release by handle; exhaustion errors that name every pool skipped and why.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Pod } from '../../src/api/kinds/kubernetes.js';
import { Ipam } from '../../src/ipam/allocator.js';
import { IPAM_BLOCK_KIND, IPAM_HANDLE_KIND } from '../../src/ipam/records.js';
import { EgwError } from '../../src/platform/errors.js';
import type { TestStore } from './helpers.js';
import { awsPool, ipNum, namespace, node, openTestStore, pod, pool, reservation, seed, seeded, subnet } from './helpers.js';

let t: TestStore;
beforeEach(async () => {
  t = await openTestStore();
});
afterEach(async () => {
  await t.cleanup();
});

const ZONE = 'topology.kubernetes.io/zone';

async function error(p: Promise<unknown>): Promise<EgwError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EgwError) return err;
    throw err;
  }
  throw new Error('expected an EgwError');
}

/** The reference document's world: two zones, two /22 subnets, the four egress pools, the reservation. */
async function referenceWorld(): Promise<void> {
  await seed(
    t.store,
    subnet('subnet-000000000000000001', '100.64.0.0/22', 'us-west-2a'),
    subnet('subnet-000000000000000002', '100.64.4.0/22', 'us-west-2b'),
    awsPool('egress-red-west-1', '100.64.0.4/30', 'subnet-000000000000000001'),
    awsPool('egress-blue-west-1', '100.64.0.8/30', 'subnet-000000000000000001'),
    awsPool('egress-red-west-2', '100.64.4.4/30', 'subnet-000000000000000002'),
    awsPool('egress-blue-west-2', '100.64.4.8/30', 'subnet-000000000000000002'),
    reservation('aws-ip-reservations', ['100.64.0.0/30', '100.64.3.255', '100.64.4.0/30', '100.64.7.255']),
    pool('default-ipv4-ippool', { cidr: '10.244.0.0/16' }),
    node('node-a', { [ZONE]: 'us-west-2a' }),
    node('node-b', { [ZONE]: 'us-west-2b' }),
    namespace('red'),
  );
}

const RED = JSON.stringify(['egress-red-west-1', 'egress-red-west-2']);

describe('pool choice', () => {
  it('a pod with the ipv4pools annotation and the aws request gets an address from the named pool in its zone', async () => {
    await referenceWorld();
    const ipam = new Ipam({ store: t.store, random: seeded() });
    const gw = pod('red', 'gw-a', { annotations: { 'cni.projectcalico.org/ipv4pools': RED }, aws: true }) as unknown as Pod;
    const a = await ipam.allocate({ handle: 'h-a', node: 'node-a', pod: gw });
    expect(a.pool).toBe('egress-red-west-1');
    expect(ipNum(a.ip)).toBeGreaterThanOrEqual(ipNum('100.64.0.4'));
    expect(ipNum(a.ip)).toBeLessThanOrEqual(ipNum('100.64.0.7'));
    expect(a.prefixLength).toBe(30);
    expect(a.awsSubnetID).toBe('subnet-000000000000000001');
    const b = await ipam.allocate({ handle: 'h-b', node: 'node-b', pod: pod('red', 'gw-b', { annotations: { 'cni.projectcalico.org/ipv4pools': RED }, aws: true }) as unknown as Pod });
    expect(b.pool).toBe('egress-red-west-2');
  });

  it('the pools are tried in the annotation order, and a CIDR names a pool as well as its name', async () => {
    await referenceWorld();
    const ipam = new Ipam({ store: t.store, random: seeded() });
    const annotations = { 'cni.projectcalico.org/ipv4pools': JSON.stringify(['100.64.0.8/30', 'egress-red-west-1']) };
    const got: string[] = [];
    for (let i = 0; i < 8; i++) got.push((await ipam.allocate({ handle: `h${i}`, node: 'node-a', pod: pod('red', `p${i}`, { annotations, aws: true }) as unknown as Pod })).pool);
    expect(got).toEqual([...Array<string>(4).fill('egress-blue-west-1'), ...Array<string>(4).fill('egress-red-west-1')]);
  });

  it("the namespace's annotation applies when the pod has none, and the pod's replaces it", async () => {
    await referenceWorld();
    await seed(t.store, namespace('blue', { 'cni.projectcalico.org/ipv4pools': JSON.stringify(['egress-blue-west-1']) }));
    const ipam = new Ipam({ store: t.store, random: seeded() });
    const fromNs = await ipam.allocate({ handle: 'h1', node: 'node-a', pod: pod('blue', 'p1', { aws: true }) as unknown as Pod });
    expect(fromNs.pool).toBe('egress-blue-west-1');
    const fromPod = await ipam.allocate({ handle: 'h2', node: 'node-a', pod: pod('blue', 'p2', { aws: true, annotations: { 'cni.projectcalico.org/ipv4pools': RED } }) as unknown as Pod });
    expect(fromPod.pool).toBe('egress-red-west-1');
  });

  it("a pod names only the pools its namespace's egw.io/allowed-ipv4pools allows (by name or CIDR); without the annotation, any", async () => {
    await referenceWorld();
    // Red may use the red pools (one named by CIDR); blue's annotation is malformed: nothing.
    await seed(t.store, namespace('red', { 'egw.io/allowed-ipv4pools': JSON.stringify(['100.64.0.4/30', 'egress-red-west-2']) }));
    await seed(t.store, namespace('blue', { 'egw.io/allowed-ipv4pools': 'egress-blue-west-1' }));
    const ipam = new Ipam({ store: t.store, random: seeded() });
    const ok = await ipam.allocate({ handle: 'h1', node: 'node-a', pod: pod('red', 'gw-a', { annotations: { 'cni.projectcalico.org/ipv4pools': RED }, aws: true }) as unknown as Pod });
    expect(ok.pool).toBe('egress-red-west-1');
    const refused = await error(ipam.allocate({ handle: 'h2', node: 'node-a', pod: pod('red', 'thief', { annotations: { 'cni.projectcalico.org/ipv4pools': JSON.stringify(['egress-blue-west-1']) }, aws: true }) as unknown as Pod }));
    expect(refused.code).toBe('InvalidInput');
    expect(refused.message).toContain('names IPPool egress-blue-west-1 in cni.projectcalico.org/ipv4pools, which namespace red does not allow');
    expect(refused.message).toContain('egw.io/allowed-ipv4pools: ["100.64.0.4/30","egress-red-west-2"]');
    const malformed = await error(ipam.allocate({ handle: 'h3', node: 'node-a', pod: pod('blue', 'p', { annotations: { 'cni.projectcalico.org/ipv4pools': JSON.stringify(['egress-blue-west-1']) }, aws: true }) as unknown as Pod }));
    expect(malformed.message).toContain('nothing (the annotation is not a JSON array of strings)');
    // Nothing was allocated for the refused pods.
    expect((await t.store.list(IPAM_HANDLE_KIND)).items.map((h) => h.key.name)).toEqual(['h1']);
    // No allow-list (Calico's manifests have none): any pool, as before.
    await seed(t.store, namespace('open'));
    const any = await ipam.allocate({ handle: 'h4', node: 'node-a', pod: pod('open', 'p', { annotations: { 'cni.projectcalico.org/ipv4pools': JSON.stringify(['egress-blue-west-1']) }, aws: true }) as unknown as Pod });
    expect(any.pool).toBe('egress-blue-west-1');
  });

  it('a requested pool that does not exist or is disabled is an error with Calico\'s words', async () => {
    await referenceWorld();
    await seed(t.store, pool('off', { cidr: '10.9.0.0/24', disabled: true }));
    const ipam = new Ipam({ store: t.store });
    const missing = await error(ipam.allocate({ handle: 'h', node: 'node-a', pods: undefined, pools: ['nope'] } as never));
    expect(missing.code).toBe('NoQualifiedPool');
    expect(missing.message).toBe('the given pool (nope) does not exist, or is not enabled');
    const off = await error(ipam.allocate({ handle: 'h', node: 'node-a', pools: ['10.9.0.0/24'] }));
    expect(off.message).toBe('the given pool (10.9.0.0/24) does not exist, or is not enabled');
  });

  it('without a request: enabled pools whose nodeSelector selects the node; !all() and disabled pools never', async () => {
    await seed(
      t.store,
      node('n1', { rack: 'r1' }),
      pool('a-egress', { cidr: '10.1.0.0/24', nodeSelector: '!all()' }),
      pool('b-off', { cidr: '10.2.0.0/24', disabled: true }),
      pool('c-rack2', { cidr: '10.3.0.0/24', nodeSelector: "rack == 'r2'" }),
      pool('d-rack1', { cidr: '10.4.0.0/24', nodeSelector: "rack == 'r1'" }),
      pool('e-manual', { cidr: '10.5.0.0/24', assignmentMode: 'Manual' }),
    );
    const ipam = new Ipam({ store: t.store });
    const a = await ipam.allocate({ handle: 'h', node: 'n1' });
    expect(a.pool).toBe('d-rack1');
    // The same pools, none selecting this node: every skip reason is named.
    await seed(t.store, node('n2', { rack: 'r9' }));
    const e = await error(ipam.allocate({ handle: 'h2', node: 'n2' }));
    expect(e.code).toBe('NoQualifiedPool');
    expect(e.message).toContain('a-egress (10.1.0.0/24): not selected — nodeSelector "!all()" does not select node n2');
    expect(e.message).toContain('b-off (10.2.0.0/24): disabled');
    expect(e.message).toContain("c-rack2 (10.3.0.0/24): not selected — nodeSelector \"rack == 'r2'\"");
    expect(e.message).toContain('d-rack1 (10.4.0.0/24): not selected');
    expect(e.message).toContain('e-manual (10.5.0.0/24): manual');
  });

  it('allowedUses must include the intended use', async () => {
    await seed(
      t.store,
      subnet('subnet-0a1b2c3d4e5f60718', '100.64.16.0/22', 'us-west-2a'),
      node('n1', { [ZONE]: 'us-west-2a' }),
      awsPool('host-secondary', '100.64.16.128/25', 'subnet-0a1b2c3d4e5f60718', { allowedUses: ['HostSecondaryInterface'], nodeSelector: 'all()' }),
      awsPool('workloads', '100.64.16.0/26', 'subnet-0a1b2c3d4e5f60718', { nodeSelector: 'all()' }),
    );
    const ipam = new Ipam({ store: t.store });
    const eni = await ipam.allocate({ handle: 'eni-1', node: 'n1', use: 'HostSecondaryInterface', owner: { kind: 'ENI', node: 'n1' }, awsSubnetID: 'subnet-0a1b2c3d4e5f60718' });
    expect(eni.pool).toBe('host-secondary');
    expect(eni.use).toBe('HostSecondaryInterface');
    const wl = await ipam.allocate({ handle: 'wl-1', node: 'n1', aws: true });
    expect(wl.pool).toBe('workloads');
    const e = await error(ipam.allocate({ handle: 'wl-2', node: 'n1', aws: true, pools: ['host-secondary'] }));
    expect(e.message).toContain('host-secondary (100.64.16.128/25): wrong use — allowedUses [HostSecondaryInterface] does not include Workload');
  });
});

describe('the aws-secondary-ipv4 rule', () => {
  it('a pod that requests it never gets a non-AWS pool; one that does not never gets an AWS pool', async () => {
    await referenceWorld();
    const ipam = new Ipam({ store: t.store });
    // No annotation, no request: the default pool (AWS pools have !all() anyway).
    expect((await ipam.allocate({ handle: 'plain', node: 'node-a', pod: pod('red', 'plain') as unknown as Pod })).pool).toBe('default-ipv4-ippool');
    // Naming an AWS pool without the request: refused, and the message says why.
    const noRequest = await error(ipam.allocate({ handle: 'h1', node: 'node-a', pod: pod('red', 'p1', { annotations: { 'cni.projectcalico.org/ipv4pools': RED } }) as unknown as Pod }));
    expect(noRequest.code).toBe('NoQualifiedPool');
    expect(noRequest.message).toContain('egress-red-west-1 (100.64.0.4/30): AWS-backed — AWS-backed pools serve only pods that request projectcalico.org/aws-secondary-ipv4');
    // Requesting it and naming a plain pool: refused.
    const plainPool = await error(
      ipam.allocate({ handle: 'h2', node: 'node-a', pod: pod('red', 'p2', { aws: true, annotations: { 'cni.projectcalico.org/ipv4pools': '["default-ipv4-ippool"]' } }) as unknown as Pod }),
    );
    expect(plainPool.message).toContain('default-ipv4-ippool (10.244.0.0/16): not AWS-backed');
    // Requesting it without naming pools: only AWS pools qualify, and the egress pools' !all() keeps them out.
    const auto = await error(ipam.allocate({ handle: 'h3', node: 'node-a', pod: pod('red', 'p3', { aws: true }) as unknown as Pod }));
    expect(auto.message).toContain('default-ipv4-ippool (10.244.0.0/16): not AWS-backed');
    expect(auto.message).toContain('egress-red-west-1 (100.64.0.4/30): not selected');
  });
});

describe('zones', () => {
  it('an AWS pool is used only in its subnet\'s zone; the error names the wrong zone', async () => {
    await referenceWorld();
    const ipam = new Ipam({ store: t.store });
    const e = await error(
      ipam.allocate({ handle: 'h', node: 'node-a', pod: pod('red', 'p', { aws: true, annotations: { 'cni.projectcalico.org/ipv4pools': '["egress-red-west-2"]' } }) as unknown as Pod }),
    );
    expect(e.code).toBe('NoQualifiedPool');
    expect(e.message).toContain('egress-red-west-2 (100.64.4.4/30): wrong zone — subnet subnet-000000000000000002 is in us-west-2b, node node-a is in us-west-2a');
    await seed(t.store, node('node-c'), awsPool('orphan', '100.64.12.0/30', 'subnet-0000000000000000ff'));
    const noZone = await error(ipam.allocate({ handle: 'h2', node: 'node-c', aws: true, pools: ['egress-red-west-1'] }));
    expect(noZone.message).toContain('no zone — node node-c has no topology.kubernetes.io/zone label');
    const unknown = await error(ipam.allocate({ handle: 'h3', node: 'node-a', aws: true, pools: ['orphan'] }));
    expect(unknown.message).toContain('orphan (100.64.12.0/30): unknown subnet — no AWSSubnet record for subnet-0000000000000000ff');
  });
});

describe('addresses never handed out', () => {
  it('the reference reservation: 100.64.0.0/30 and 100.64.3.255 are never allocated from a pool over the whole /22', async () => {
    await referenceWorld();
    await seed(t.store, pool('whole', { cidr: '100.64.0.0/22', blockSize: 26 }));
    const ipam = new Ipam({ store: t.store, random: seeded(7) });
    const got = new Set<string>();
    for (let i = 0; ; i++) {
      try {
        got.add((await ipam.allocate({ handle: `w${i}`, node: 'node-a', pools: ['whole'] })).ip);
      } catch (err) {
        expect((err as EgwError).code).toBe('PoolExhausted');
        expect((err as EgwError).message).toContain('whole (100.64.0.0/22): full — 1019 of 1019 usable addresses allocated (5 reserved)');
        break;
      }
    }
    expect(got.size).toBe(1024 - 5);
    for (const r of ['100.64.0.0', '100.64.0.1', '100.64.0.2', '100.64.0.3', '100.64.3.255']) expect(got.has(r)).toBe(false);
    // Calico's pools are fully routed: a pool's own network and broadcast addresses are ordinary addresses.
    expect(got.has('100.64.1.0')).toBe(true);
    expect(got.has('100.64.2.255')).toBe(true);
  });

  it("an AWS pool never hands out its subnet's first four or last address, even without a reservation", async () => {
    await seed(t.store, subnet('subnet-0a1b2c3d4e5f60718', '100.64.8.0/28', 'z1'), awsPool('p', '100.64.8.0/28', 'subnet-0a1b2c3d4e5f60718'), node('n', { [ZONE]: 'z1' }));
    const ipam = new Ipam({ store: t.store, random: seeded(3) });
    const got: string[] = [];
    for (let i = 0; i < 11; i++) got.push((await ipam.allocate({ handle: `h${i}`, node: 'n', aws: true, pools: ['p'] })).ip);
    expect(got.map(ipNum).sort((a, b) => a - b)).toEqual(Array.from({ length: 11 }, (_, i) => ipNum('100.64.8.4') + i));
    const e = await error(ipam.allocate({ handle: 'h11', node: 'n', aws: true, pools: ['p'] }));
    expect(e.code).toBe('PoolExhausted');
    expect(e.message).toContain('p (100.64.8.0/28): full — 11 of 11 usable addresses allocated (5 reserved)');
  });

  it('a wholly reserved pool is skipped as reserved', async () => {
    await seed(t.store, node('n'), pool('tiny', { cidr: '10.7.0.0/30', blockSize: 30 }), reservation('r', ['10.7.0.0/30']));
    const e = await error(new Ipam({ store: t.store }).allocate({ handle: 'h', node: 'n' }));
    expect(e.code).toBe('PoolExhausted');
    expect(e.message).toContain('tiny (10.7.0.0/30): reserved — every one of its 4 addresses is reserved');
  });

  it('the reference pools: four addresses each, then an exhaustion error naming each pool and why', async () => {
    await referenceWorld();
    const ipam = new Ipam({ store: t.store, random: seeded(5) });
    const annotations = { 'cni.projectcalico.org/ipv4pools': RED };
    const ips = new Set<string>();
    for (let i = 0; i < 4; i++) ips.add((await ipam.allocate({ handle: `r${i}`, node: 'node-a', pod: pod('red', `g${i}`, { annotations, aws: true }) as unknown as Pod })).ip);
    expect([...ips].sort()).toEqual(['100.64.0.4', '100.64.0.5', '100.64.0.6', '100.64.0.7']);
    const e = await error(ipam.allocate({ handle: 'r4', node: 'node-a', pod: pod('red', 'g4', { annotations, aws: true }) as unknown as Pod }));
    expect(e.code).toBe('PoolExhausted');
    expect(e.message).toBe(
      'no IP address for pod red/g4 on node node-a: every qualified pool is full; ' +
        'egress-red-west-2 (100.64.4.4/30): wrong zone — subnet subnet-000000000000000002 is in us-west-2b, node node-a is in us-west-2a; ' +
        'egress-red-west-1 (100.64.0.4/30): full — 4 of 4 usable addresses allocated',
    );
    expect(e.details['skipped']).toHaveLength(2);
  });
});

describe('handles', () => {
  it('allocation is idempotent per handle; release by handle frees the address; an unknown handle releases fine', async () => {
    await seed(t.store, node('n'), pool('p', { cidr: '10.8.0.0/30', blockSize: 30 }));
    const ipam = new Ipam({ store: t.store });
    const owner = { kind: 'Pod' as const, namespace: 'ns', name: 'a', uid: 'u1', containerID: 'c1' };
    const a = await ipam.allocate({ handle: 'k8s.c1', node: 'n', owner });
    const again = await ipam.allocate({ handle: 'k8s.c1', node: 'n', owner });
    expect(again).toMatchObject({ ip: a.ip, existing: true });
    expect((await t.store.list(IPAM_HANDLE_KIND)).items).toHaveLength(1);
    const other = await error(ipam.allocate({ handle: 'k8s.c1', node: 'n', owner: { ...owner, uid: 'u2' } }));
    expect(other.code).toBe('AlreadyExists');
    expect(await ipam.getAllocation('k8s.c1')).toMatchObject({ ip: a.ip, owner });

    expect(await ipam.releaseByHandle('k8s.c1')).toEqual({ released: true, handle: 'k8s.c1', ip: a.ip });
    expect(await ipam.releaseByHandle('k8s.c1')).toEqual({ released: false, handle: 'k8s.c1' });
    expect(await ipam.releaseByHandle('never-seen')).toEqual({ released: false, handle: 'never-seen' });
    expect(await ipam.getAllocation('k8s.c1')).toBeUndefined();
    const blocks = (await t.store.list(IPAM_BLOCK_KIND)).items;
    expect(blocks.every((b) => Object.keys((b.value as { allocations: object }).allocations).length === 0)).toBe(true);
  });

  it('release by IP frees the address and its handle; a free address releases fine', async () => {
    await seed(t.store, node('n'), pool('p', { cidr: '10.8.0.0/29', blockSize: 30 }));
    const ipam = new Ipam({ store: t.store });
    const a = await ipam.allocate({ handle: 'h1', node: 'n' });
    expect(await ipam.releaseByIp(a.ip)).toEqual({ released: true, handle: 'h1', ip: a.ip });
    expect(await ipam.getAllocation('h1')).toBeUndefined();
    expect(await ipam.releaseByIp(a.ip)).toEqual({ released: false, ip: a.ip });
    expect(await ipam.releaseByIp('192.0.2.1')).toEqual({ released: false, ip: '192.0.2.1' });
  });

  it('a released AWS address is free again, and its /32 block is gone', async () => {
    await seed(t.store, subnet('subnet-0a1b2c3d4e5f60718', '100.64.8.0/28', 'z1'), awsPool('p', '100.64.8.4/30', 'subnet-0a1b2c3d4e5f60718'), node('n', { [ZONE]: 'z1' }));
    const ipam = new Ipam({ store: t.store });
    const all = [];
    for (let i = 0; i < 4; i++) all.push(await ipam.allocate({ handle: `h${i}`, node: 'n', aws: true, pools: ['p'] }));
    await ipam.releaseByHandle('h2');
    expect((await t.store.list(IPAM_BLOCK_KIND)).items).toHaveLength(3);
    const again = await ipam.allocate({ handle: 'h9', node: 'n', aws: true, pools: ['p'] });
    expect(again.ip).toBe(all[2]!.ip);
  });
});

describe('blocks and affinity', () => {
  it('a node fills its own block before claiming another, and borrows from other nodes only when no block is free', async () => {
    await seed(t.store, node('n1'), node('n2'), pool('p', { cidr: '10.6.0.0/28', blockSize: 29 }));
    const ipam = new Ipam({ store: t.store, random: seeded(2) });
    const n1 = [];
    for (let i = 0; i < 8; i++) n1.push(await ipam.allocate({ handle: `a${i}`, node: 'n1' }));
    expect(new Set(n1.map((a) => a.block)).size).toBe(1);
    const n2 = await ipam.allocate({ handle: 'b0', node: 'n2' });
    expect(n2.block).not.toBe(n1[0]!.block);
    for (let i = 1; i < 8; i++) await ipam.allocate({ handle: `b${i}`, node: 'n2' });
    // Both blocks full now; free one of n2's and let n1 borrow it.
    await ipam.releaseByHandle('b3');
    const borrowed = await ipam.allocate({ handle: 'a8', node: 'n1' });
    expect(borrowed.block).toBe(n2.block);
    await ipam.releaseByHandle('b4');
    const strict = new Ipam({ store: t.store }, { strictAffinity: true });
    const e = await error(strict.allocate({ handle: 'a9', node: 'n1' }));
    expect(e.code).toBe('PoolExhausted');
    expect(e.message).toContain("strictAffinity forbids borrowing from other nodes' blocks");
  });

  it('probing a large pool claims blocks without listing it, and every address is distinct', async () => {
    await seed(t.store, node('n1'), node('n2'), pool('big', { cidr: '10.16.0.0/16', blockSize: 29 }));
    const ipam = new Ipam({ store: t.store, random: seeded(11) }, { listLimit: 4 });
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add((await ipam.allocate({ handle: `h${i}`, node: i % 2 === 0 ? 'n1' : 'n2' })).ip);
    expect(seen.size).toBe(200);
    const blocks = (await t.store.list(IPAM_BLOCK_KIND)).items;
    expect(blocks.length).toBe(26); // 100 per node in blocks of 8: 13 each
  });

  it('an unknown node is a clear error', async () => {
    await seed(t.store, pool('p', { cidr: '10.8.0.0/30', blockSize: 30 }));
    const e = await error(new Ipam({ store: t.store }).allocate({ handle: 'h', node: 'ghost' }));
    expect(e.code).toBe('NotFound');
    expect(e.message).toBe('node ghost does not exist in the datastore');
  });
});
