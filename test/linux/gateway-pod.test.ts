import { describe, expect, it } from 'vitest';
import type { GatewayPodState } from '../../src/linux/gateway-pod/gateway-pod.js';
import { applyGatewayPod, gatewayNft6Spec, gatewayNftSpec, isEmptyGatewayPlan, planGatewayPod, readGatewayPod } from '../../src/linux/gateway-pod/gateway-pod.js';
import { renderNftTable } from '../../src/linux/nft/nft-table.js';
import { FakeKernel } from './fixtures/fake-kernel.js';

const s: GatewayPodState = { podIp: '100.64.0.5', vxlan: { vni: 4097, port: 4790 }, nodeIps: ['10.10.2.10', '10.10.1.10'], healthPort: 8080 };

describe('gateway-pod driver (fake kernel)', () => {
  it('puts the filter in place before the tunnel and forwarding open a path', async () => {
    const k = new FakeKernel();
    expect(await applyGatewayPod(k, s)).toEqual({ changed: true, failures: [] });
    expect(k.log).toEqual([
      'nft: table ip egw {}',
      'nft: table ip6 egw {}',
      'ip: link add egw.vxlan address 0e:67:64:40:00:05 mtu 1450 type vxlan id 4097 dstport 4790 local 100.64.0.5 nolearning',
      'ip: link set dev egw.vxlan up',
      'ip: addr replace 100.64.0.5/32 dev egw.vxlan scope link noprefixroute',
      'sysctl: net.ipv4.ip_forward=1',
      'sysctl: net.ipv4.conf.egw/vxlan.rp_filter=2',
    ]);
    expect(isEmptyGatewayPlan(planGatewayPod(s, await readGatewayPod(k)))).toBe(true);
    expect((await applyGatewayPod(k, s)).changed).toBe(false);
  });

  it('SNATs what leaves the tunnel, accepts only the tunnel from nodes and the health port, clamps the MSS', () => {
    const spec = gatewayNftSpec(s);
    expect(spec.sets).toEqual([{ name: 'nodes', interval: false, elements: ['10.10.1.10', '10.10.2.10'] }]);
    const chain = (n: string): { policy: string; rules: readonly string[] } => spec.chains.find((c) => c.name === n)!;
    expect(chain('input')).toMatchObject({ policy: 'drop', rules: ['iif "lo" accept', 'ct state established,related accept', 'udp dport 4790 ip saddr @nodes accept', 'tcp dport 8080 accept'] });
    expect(chain('forward').policy).toBe('drop');
    expect(chain('forward').rules[0]).toBe('tcp flags syn tcp option maxseg size > 1410 tcp option maxseg size set 1410');
    expect(chain('postrouting').rules).toEqual(['iifname "egw.vxlan" oifname != "egw.vxlan" snat to 100.64.0.5']);
    expect(gatewayNftSpec({ ...s, healthPort: 0 }).chains[0]!.rules).not.toContain('tcp dport 8080 accept');
  });

  it('drops and counts every IPv6 packet to the pod or through it (the ip table filters IPv4 only)', () => {
    const spec = gatewayNft6Spec();
    expect(spec.family).toBe('ip6');
    expect(spec.chains.map((c) => [c.name, c.hook, c.policy, c.rules])).toEqual([
      ['input', 'input', 'drop', ['iif "lo" accept', 'counter drop']],
      ['forward', 'forward', 'drop', ['counter drop']],
    ]);
    expect(renderNftTable(spec).split('\n')[0]).toBe('table ip6 egw {');
  });

  it('a new node set changes set elements only; a new VNI recreates the device; removal takes everything of ours', async () => {
    const k = new FakeKernel();
    await applyGatewayPod(k, s);
    k.log = [];
    await applyGatewayPod(k, { ...s, nodeIps: ['10.10.1.10', '10.10.3.10'] });
    expect(k.log).toEqual(['nft: add element ip egw nodes { 10.10.3.10 }']);
    k.log = [];
    await applyGatewayPod(k, { ...s, vxlan: { vni: 5000, port: 4790 } });
    expect(k.log.slice(0, 2)).toEqual(['nft: add element ip egw nodes { 10.10.2.10 }', 'ip: link del egw.vxlan']);
    expect(k.links.get('egw.vxlan')?.vxlan?.vni).toBe(5000);
    expect(k.links.get('egw.vxlan')?.addrs).toEqual([{ address: '100.64.0.5/32', scope: 'link', noprefixroute: true }]);
    await applyGatewayPod(k, undefined);
    expect(k.links.has('egw.vxlan')).toBe(false);
    expect(k.nft).toBeUndefined();
    expect(k.nft6).toBeUndefined();
    expect((await applyGatewayPod(k, undefined)).changed).toBe(false);
  });
});
