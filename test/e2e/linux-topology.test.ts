import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ExecShell } from '../../src/platform/shell.js';
import { isEgwError } from '../../src/platform/errors.js';
import { echoFrom, startEchoServer } from '../../src/linux/topology/echo.js';
import { TopologyBuilder } from '../../src/linux/topology/spec.js';
import { createTopology, sweepTopology, topologyTmpDir } from '../../src/linux/topology/topology.js';
import { runPrefix } from './support/run-prefix.js';

// Namespaces prefixed "tpa<pid>" / "tpb<pid>" / "tpc<pid>": unique per run, so a second suite beside this one never meets them.
const shell = new ExecShell();
const [A, B, C] = [runPrefix('tpa'), runPrefix('tpb'), runPrefix('tpc')];
const prefixes = [A, B, C];

async function namespaces(prefix: string): Promise<string[]> {
  return (await shell.run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${prefix}-`)).sort();
}
async function rootLinks(): Promise<string> {
  return (await shell.run(['ip', '-br', 'link', 'show'])).stdout.split('\n').map((l) => l.split(/\s+/)[0]).sort().join(',');
}
async function alive(pid: number): Promise<boolean> {
  return (await shell.run(['kill', '-0', String(pid)], { allowFailure: true })).exitCode === 0;
}

function smallWorld(prefix: string): TopologyBuilder {
  return new TopologyBuilder(prefix)
    .namespace('rt', { forwarding: true })
    .namespace('srv')
    .namespace('node', { forwarding: true })
    .bridge('rt', 'br0', ['10.50.1.1/24'])
    .veth({ ns: 'rt', ifname: 'p-node', master: 'br0' }, { ns: 'node', ifname: 'eth0', addresses: ['10.50.1.10/24'] })
    .veth({ ns: 'rt', ifname: 'p-srv', master: 'br0' }, { ns: 'srv', ifname: 'eth0', addresses: ['10.50.1.20/24'] })
    .route({ ns: 'node', dst: 'default', via: '10.50.1.1' })
    .pod({ node: 'node', name: 'pod', ip: '10.60.0.5', gatewayIp: '10.50.1.10' })
    .route({ ns: 'srv', dst: '10.60.0.0/16', via: '10.50.1.10' });
}

afterAll(async () => {
  for (const p of prefixes) await sweepTopology(p, { shell });
});

describe('topology helper', () => {
  it('builds namespaces, bridges, veths and pods that pass real traffic, then tears down leaving nothing', async () => {
    await sweepTopology(A, { shell });
    const linksBefore = await rootLinks();
    const topo = await createTopology(smallWorld(A).build(), { shell });
    // Nothing was created in the root namespace.
    expect(await rootLinks()).toBe(linksBefore);
    expect(await namespaces(A)).toEqual([`${A}-node`, `${A}-pod`, `${A}-rt`, `${A}-srv`]);
    const server = await startEchoServer(topo, 'srv');
    expect(await echoFrom(topo, 'pod', '10.50.1.20', server.port, { count: 3 })).toEqual([{ seen: '10.60.0.5' }, { seen: '10.60.0.5' }, { seen: '10.60.0.5' }]);
    expect(existsSync(topo.tmpDir)).toBe(true);
    await topo.teardown();
    expect(await namespaces(A)).toEqual([]);
    expect(await alive(server.process.pid)).toBe(false);
    expect(existsSync(topologyTmpDir(A))).toBe(false);
    expect(await rootLinks()).toBe(linksBefore);
    await topo.teardown(); // idempotent
  });

  it('sweep removes the leftovers of a crashed run from the prefix alone, and nothing of another prefix', async () => {
    await sweepTopology(B, { shell });
    await sweepTopology(C, { shell });
    const crashed = await createTopology(smallWorld(B).build(), { shell });
    const other = await createTopology(smallWorld(C).build(), { shell });
    try {
      const orphan = crashed.spawn('node', ['sleep', '600']);
      const server = await startEchoServer(crashed, 'srv');
      // "Crash": forget the handle, keep everything running, sweep from the prefix only.
      const report = await sweepTopology(B, { shell });
      expect(report.namespaces.sort()).toEqual([`${B}-node`, `${B}-pod`, `${B}-rt`, `${B}-srv`]);
      expect(report.killedPids).toEqual(expect.arrayContaining([orphan.pid, server.process.pid]));
      await orphan.exited;
      expect(await namespaces(B)).toEqual([]);
      expect(existsSync(topologyTmpDir(B))).toBe(false);
      expect(await namespaces(C)).toHaveLength(4);
      const s2 = await startEchoServer(other, 'srv');
      expect(await echoFrom(other, 'pod', '10.50.1.20', s2.port)).toEqual([{ seen: '10.60.0.5' }]);
    } finally {
      await other.teardown();
      await crashed.teardown();
    }
  });

  it('a build the kernel refuses removes what it had made', async () => {
    await sweepTopology(A, { shell });
    const bad = smallWorld(A).route({ ns: 'srv', dst: '10.70.0.0/16', via: '10.99.9.9' }).build();
    const err: unknown = await createTopology(bad, { shell }).catch((e: unknown) => e);
    expect(isEgwError(err, 'CommandFailed')).toBe(true);
    expect(await namespaces(A)).toEqual([]);
  });
});
