import { describe, expect, it } from 'vitest';
import { TopologyBuilder, validateTopologySpec } from '../../src/linux/topology/spec.js';

const base = (): TopologyBuilder => new TopologyBuilder('ab').namespace('n1', { forwarding: true }).namespace('n2');

describe('topology spec', () => {
  it('builds a Calico-style pod: /32, default via the node onlink, proxy ARP and a host route on the node', () => {
    const spec = base().pod({ node: 'n1', name: 'p1', ip: '10.60.0.5', gatewayIp: '10.50.1.10' }).build();
    expect(spec.links).toEqual([{ a: { ns: 'p1', ifname: 'eth0', addresses: ['10.60.0.5/32'] }, b: { ns: 'n1', ifname: 'v-p1', proxyArp: true } }]);
    expect(spec.routes).toEqual([
      { ns: 'p1', dst: 'default', via: '10.50.1.10', dev: 'eth0', onlink: true },
      { ns: 'n1', dst: '10.60.0.5/32', dev: 'v-p1' },
    ]);
  });

  it('refuses what could touch the host or collide: bad prefixes, long names, foreign addresses, dangling references', () => {
    const cases: [TopologyBuilder, RegExp][] = [
      [new TopologyBuilder('A-b'), /prefix/],
      [new TopologyBuilder('toolongprefix'), /prefix/],
      [base().veth({ ns: 'n1', ifname: 'a-very-long-name0', addresses: [] }, { ns: 'n2', ifname: 'x' }), /1-15 characters/],
      [base().veth({ ns: 'n1', ifname: 'a', addresses: ['192.168.1.1/24'] }, { ns: 'n2', ifname: 'b' }), /allowed test ranges/],
      [base().veth({ ns: 'n1', ifname: 'a', addresses: ['10.0.0.1'] }, { ns: 'n2', ifname: 'b' }), /a\.b\.c\.d\/len/],
      [base().veth({ ns: 'n1', ifname: 'a' }, { ns: 'n3', ifname: 'b' }), /not declared/],
      [base().veth({ ns: 'n1', ifname: 'a' }, { ns: 'n1', ifname: 'a' }), /twice/],
      [base().veth({ ns: 'n1', ifname: 'a', master: 'br0' }, { ns: 'n2', ifname: 'b' }), /bridge br0/],
      [base().route({ ns: 'n1', dst: '8.8.8.0/24', via: '10.0.0.1' }), /destination outside/],
      [base().route({ ns: 'n1', dst: 'default', via: '172.16.0.1' }), /next hop/],
      [base().route({ ns: 'n1', dst: 'default', dev: 'eth9' }), /device eth9/],
      [base().namespace('n1'), /declared twice/],
    ];
    for (const [b, message] of cases) expect(() => b.build()).toThrow(message);
  });

  it('accepts every allowed range and default routes', () => {
    const b = base();
    ['10.1.0.1/24', '100.64.0.1/10', '198.18.0.1/15', '192.0.2.1/24', '198.51.100.1/24', '203.0.113.1/24'].forEach((a, i) => {
      b.veth({ ns: 'n1', ifname: `a${i}`, addresses: [a] }, { ns: 'n2', ifname: `b${i}` });
    });
    b.route({ ns: 'n2', dst: 'default', dev: 'b0' });
    expect(() => validateTopologySpec(b.build())).not.toThrow();
  });
});
