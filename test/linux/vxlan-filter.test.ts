import { describe, expect, it } from 'vitest';
import { nodeNftSpec, vxlanFilterRule } from '../../src/linux/client-node/plan.js';
import { renderNftTable } from '../../src/linux/nft/nft-table.js';

// The client node's VXLAN source filter as rendered (issue 11, item 1; the real-packet test is
// test/e2e/dataplane-vxlan-filter.test.ts).
const VXLAN = { vni: 4097, port: 4790, localIp: '10.10.1.10' };

describe('nodeNftSpec: the VXLAN source filter', () => {
  it('with a tunnel and peers: a set of the peers and an input chain that counts and drops everyone else', () => {
    const spec = nodeNftSpec({ vxlan: VXLAN, clients: [], vxlanPeers: ['10.10.2.10', '10.10.1.10', '100.64.0.11', '10.10.2.10'] })!;
    expect(spec.sets).toEqual([{ name: 'vxlan_peers', interval: false, elements: ['10.10.2.10', '10.10.1.10', '100.64.0.11'] }]);
    expect(spec.chains).toEqual([{ name: 'vxlan_input', type: 'filter', hook: 'input', priority: 0, policy: 'accept', rules: ['udp dport 4790 ip saddr != @vxlan_peers counter drop'] }]);
    const text = renderNftTable(spec);
    expect(text).toContain('elements = { 10.10.1.10, 10.10.2.10, 100.64.0.11 }');
    expect(text).toContain('type filter hook input priority 0; policy accept;');
  });

  it('an empty peer list drops every VXLAN packet (fail closed), on the configured port', () => {
    const spec = nodeNftSpec({ vxlan: { ...VXLAN, port: 4791 }, clients: [], vxlanPeers: [] })!;
    expect(spec.sets[0]?.elements).toEqual([]);
    expect(spec.chains[0]?.rules).toEqual([vxlanFilterRule(4791)]);
  });

  it('beside natOutgoing; without a tunnel there is no filter', () => {
    const nat = { sources: ['10.20.0.0/16'], exemptDestinations: ['10.20.0.0/16'] };
    expect(nodeNftSpec({ vxlan: VXLAN, clients: [], vxlanPeers: ['10.10.2.10'], natOutgoing: nat })!.chains.map((c) => c.name)).toEqual(['vxlan_input', 'postrouting']);
    expect(nodeNftSpec({ vxlan: undefined, clients: [], vxlanPeers: ['10.10.2.10'], natOutgoing: nat })!.chains.map((c) => c.name)).toEqual(['postrouting']);
    expect(nodeNftSpec({ vxlan: undefined, clients: [], vxlanPeers: ['10.10.2.10'] })).toBeUndefined();
  });
});
