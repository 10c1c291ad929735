import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyClientNode } from '../../src/linux/client-node/driver.js';
import { echoFrom, openFlows, startEchoServer, tally } from '../../src/linux/topology/echo.js';
import type { EgressWorld } from '../linux/fixtures/egress-world.js';
import { runPrefix } from './support/run-prefix.js';
import { applyWorld, buildEgressWorld, clientNodeState, viaGateways } from '../linux/fixtures/egress-world.js';

// Real kernel, real packets: a client node with one client pod, three gateway nodes each with a gateway
// pod, a router and an external echo server, all in namespaces prefixed "drn<pid>" (docs/linux-dataplane.md,
// "Draining a terminating gateway").
const PREFIX = runPrefix('drn');
let w: EgressWorld;
let c1: string;
let g1: string, g2: string, g3: string;

beforeAll(async () => {
  w = await buildEgressWorld(PREFIX, { gateways: 3, clients: 1 });
  c1 = w.clients[0]!;
  [g1, g2, g3] = w.gateways.map((g) => g.ip) as [string, string, string];
  await startEchoServer(w.topo, 'ext');
}, 60_000);

afterAll(async () => {
  await w?.topo.teardown();
});

async function cn(text: string): Promise<string> {
  return (await w.topo.exec('cn', text.split(' '))).stdout;
}

describe('draining a terminating gateway, real packets', () => {
  it('without the drain, a gateway leaving breaks its own flows (the control)', async () => {
    await applyWorld(w, { [c1]: viaGateways(g1, g2, g3) });
    const flows = await openFlows(w.topo, 'c1', w.server, w.port, 45);
    try {
      const via = new Map(flows.flows.map((f) => [f.id, f.seen!]));
      expect(new Set(via.values())).toEqual(new Set([g1, g2, g3]));
      await applyWorld(w, { [c1]: viaGateways(g2, g3) });
      const after = await flows.check();
      expect(after.filter((r) => via.get(r.id) !== g1 && !r.ok)).toEqual([]);
      expect(after.filter((r) => via.get(r.id) === g1 && !r.ok).length).toBeGreaterThan(0);
    } finally {
      await flows.close();
    }
  });

  it('a draining gateway keeps every established flow, takes no new one, and goes when it is gone', async () => {
    await applyWorld(w, { [c1]: viaGateways(g1, g2, g3) });
    const flows = await openFlows(w.topo, 'c1', w.server, w.port, 45);
    try {
      const via = new Map(flows.flows.map((f) => [f.id, f.seen!]));
      expect(new Set(via.values())).toEqual(new Set([g1, g2, g3]));
      const throughG1 = [...via.values()].filter((g) => g === g1).length;
      expect(throughG1).toBeGreaterThan(0);

      // g1 starts terminating: out of the routes, draining.
      const draining = { ...clientNodeState(w, { [c1]: viaGateways(g2, g3) }), draining: [g1] };
      const r = await applyClientNode(w.topo.shell('cn'), draining);
      expect(r.failures).toEqual([]);
      expect(r.problems).toEqual([]);
      expect(await cn('ip -4 rule show priority 99')).toMatch(/fwmark 0x[0-9a-f]+\/0x3f00 lookup \d+ proto 233/);
      // Every flow is alive, the ones through g1 included, and stays so while new connections are made.
      expect((await flows.check()).filter((x) => !x.ok)).toEqual([]);
      const fresh = tally(await echoFrom(w.topo, 'c1', w.server, w.port, { count: 40, concurrency: 20 }));
      expect(fresh[g1]).toBeUndefined();
      expect((fresh[g2] ?? 0) + (fresh[g3] ?? 0)).toBe(40);
      expect((await flows.check()).filter((x) => !x.ok)).toEqual([]);
      // Level-triggered: applying the same state again changes nothing.
      expect((await applyClientNode(w.topo.shell('cn'), draining)).changed).toBe(false);

      // g1 is gone (the end of its grace period): its drain goes, the flows through the others stay.
      expect((await applyClientNode(w.topo.shell('cn'), clientNodeState(w, { [c1]: viaGateways(g2, g3) }))).failures).toEqual([]);
      expect(await cn('ip -4 rule show priority 99')).toBe('');
      const after = await flows.check();
      expect(after.filter((x) => via.get(x.id) !== g1 && !x.ok)).toEqual([]);
    } finally {
      await flows.close();
    }
  });
});
