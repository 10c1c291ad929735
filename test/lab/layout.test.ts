import { describe, expect, it } from 'vitest';
import { fabricConfig, labNames, staticWorld, worldDefinition } from '../../src/lab/layout.js';
import { loadScenario } from '../../src/lab/scenario.js';
import { parseWorld, builtInInstanceTypes } from '../../src/sim/aws/index.js';
import { ALLOWED_RANGES } from '../../src/linux/topology/spec.js';
import { ipv4NetCovers, requireIpv4Net } from '../../src/platform/ipv4.js';

const scenario = loadScenario();
const names = labNames('egwlab', scenario);

describe('the lab world (layout)', () => {
  it('names every namespace under the prefix', () => {
    expect(names.all).toEqual(['egwlab-rt', 'egwlab-igw', 'egwlab-inet', 'egwlab-onprem', 'egwlab-cp', 'egwlab-node-a1', 'egwlab-node-a2', 'egwlab-node-b1', 'egwlab-node-b2', 'egwlab-local']);
    expect(() => labNames('EGW', scenario)).toThrow(/prefix/);
  });

  it('gives the emulator a valid world: every node, the control plane and the VPC server are instances; IMDS trusts source addresses only', () => {
    const world = parseWorld(worldDefinition(scenario), 'lab', builtInInstanceTypes());
    expect(world.instances.map((i) => [i.tags['Name'], i.type, i.privateIp])).toEqual([
      ['node-a1', 't3.large', '100.64.16.10'],
      ['node-a2', 't3.large', '100.64.16.11'],
      ['node-b1', 't3.large', '100.64.20.10'],
      ['node-b2', 't3.large', '100.64.20.11'],
      ['control-plane', 't3.medium', '100.64.32.10'],
      ['local', 't3.micro', '100.64.32.20'],
    ]);
    expect(world.sim.imds.trustInstanceHeader).toBe(false);
    expect(world.elasticIps.map((e) => e.publicIp)).toEqual(['203.0.113.7', '203.0.113.8']);
    const fabric = fabricConfig(names, scenario);
    expect(Object.values(fabric.instances).map((i) => i.netns).sort()).toEqual(['egwlab-cp', 'egwlab-local', 'egwlab-node-a1', 'egwlab-node-a2', 'egwlab-node-b1', 'egwlab-node-b2']);
  });

  it('never touches the root namespace: every link is made inside a lab namespace with its peer in another', () => {
    const builds = staticWorld(names, scenario);
    for (const b of builds) {
      expect(names.all).toContain(b.netns);
      for (const l of b.links) expect(names.all).toContain(/netns (\S+)$/.exec(l)?.[1]);
      for (const c of [...b.links, ...b.config]) expect(c).not.toMatch(/netns 1\b|\/proc\/1\//);
    }
  });

  it('uses only the allowed address ranges (IMDS too: it answers on the emulator\'s VPC address)', () => {
    const addrs = staticWorld(names, scenario).flatMap((b) => [...b.config].flatMap((l) => [.../(?:addr add|route add(?: unreachable)?|via) (\d+\.\d+\.\d+\.\d+(?:\/\d+)?)/g.exec(l)?.slice(1) ?? []]));
    expect(addrs.length).toBeGreaterThan(10);
    for (const a of addrs) {
      expect(ALLOWED_RANGES.some((r) => ipv4NetCovers(r, requireIpv4Net(a, { hostBits: 'clear', bareAddress: true })))).toBe(true);
    }
    const router = staticWorld(names, scenario)[0]!;
    expect(router.config).toContain('route add unreachable 100.64.0.0/16');
    expect(router.config.some((l) => l.includes('169.254.'))).toBe(false);
    expect(router.sysctls).toContain('net.ipv4.conf.default.proxy_arp=1');
  });
});
