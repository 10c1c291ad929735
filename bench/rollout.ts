/**
 * `npm run bench -- rollout`: established flows broken during a rolling update of three gateways, with a
 * grace period (the old gateway drains: docs/linux-dataplane.md, "Draining a terminating gateway") beside
 * the same update without one (the old gateway leaves the routes and is gone at once), in one run.
 *
 * Real kernel and packets, at the driver level (the client-node and gateway-pod drivers as the agent and
 * `egw gateway` call them): a client node, six gateway pods on their own nodes (three old, three new), an
 * echo server. Each step of the update: 30 connections are established through the current gateways; the
 * new gateway joins and the old one starts terminating; the connections keep exchanging (a probe on each,
 * five times, ~1 s, well inside the grace) and then close; only then is the old gateway gone. A connection
 * that fails a probe is broken. Without grace the old gateway is gone at the moment the new one joins.
 */
import { applyClientNode } from '../src/linux/client-node/driver.js';
import { openFlows, startEchoServer } from '../src/linux/topology/echo.js';
import { applyWorld, buildEgressWorld, clientNodeState, viaGateways } from '../test/linux/fixtures/egress-world.js';
import type { Benchmark, Figures } from './harness.js';
import { printTable } from './harness.js';

const FLOWS = 30;
const PROBES = 5;

export const rolloutBenchmark: Benchmark = {
  name: 'rollout',
  description: 'established flows broken during a rolling update of 3 gateways: with a grace period (drain) vs without',
  async run(): Promise<Figures> {
    const w = await buildEgressWorld('brol', { gateways: 6, clients: 1 });
    const c1 = w.clients[0]!;
    const gw = w.gateways.map((g) => g.ip);
    const rows: (string | number)[][] = [];
    const brokenBy: Record<'grace' | 'none', number> = { grace: 0, none: 0 };
    const throughOld: Record<'grace' | 'none', number> = { grace: 0, none: 0 };
    try {
      await startEchoServer(w.topo, 'ext');
      for (const mode of ['none', 'grace'] as const) {
        let current = gw.slice(0, 3);
        await applyWorld(w, { [c1]: viaGateways(...current) });
        for (let step = 0; step < 3; step++) {
          const old = gw[step]!;
          const fresh = gw[step + 3]!;
          const flows = await openFlows(w.topo, 'c1', w.server, w.port, FLOWS);
          let broken = 0;
          let onOld = 0;
          try {
            const via = new Map(flows.flows.map((f) => [f.id, f.seen]));
            onOld = [...via.values()].filter((g) => g === old).length;
            const next = [...current.filter((g) => g !== old), fresh];
            const state = clientNodeState(w, { [c1]: viaGateways(...next) });
            // The new gateway joins; the old one drains (grace) or is gone at once (none).
            const r = await applyClientNode(w.topo.shell('cn'), mode === 'grace' ? { ...state, draining: [old] } : state);
            if (r.failures.length > 0) throw new Error(`apply: ${JSON.stringify(r.failures)}`);
            const failed = new Set<number>();
            for (let p = 0; p < PROBES; p++) {
              for (const x of await flows.check()) if (!x.ok) failed.add(x.id);
              await new Promise((res) => setTimeout(res, 200));
            }
            broken = failed.size;
            current = next;
          } finally {
            await flows.close();
          }
          // The end of the grace period: the old gateway is gone.
          await applyClientNode(w.topo.shell('cn'), clientNodeState(w, { [c1]: viaGateways(...current) }));
          brokenBy[mode] += broken;
          throughOld[mode] += onOld;
          rows.push([mode === 'grace' ? 'graceful (drain)' : 'no grace', step + 1, `${old} → ${fresh}`, FLOWS, onOld, broken]);
        }
      }
      printTable(`rolling update of 3 gateways, ${FLOWS} established connections per step`, ['update', 'step', 'gateway', 'flows', 'through the old one', 'broken'], rows);
      return {
        brokenGraceful: brokenBy.grace,
        brokenWithoutGrace: brokenBy.none,
        flowsThroughOldGraceful: throughOld.grace,
        flowsThroughOldWithoutGrace: throughOld.none,
        flowsPerStep: FLOWS,
        steps: 3,
      };
    } finally {
      await w.topo.teardown();
    }
  },
};
