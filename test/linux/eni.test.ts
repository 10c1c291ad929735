import { describe, expect, it } from 'vitest';
import type { EniState } from '../../src/linux/eni/eni-routing.js';
import { applyEni, planEni, readEni } from '../../src/linux/eni/eni-routing.js';
import { FakeKernel } from './fixtures/fake-kernel.js';

const MAC = '02:00:00:00:aa:01';
const desired: EniState = { interfaces: [{ mac: '02:00:00:00:AA:01', subnetCidr: '100.64.4.0/22', workloadIps: ['100.64.4.20', '100.64.4.21'] }] };

function kernel(): FakeKernel {
  const k = new FakeKernel();
  k.addLink('eth0', '02:00:00:00:00:01');
  k.addLink('eth1', MAC, false);
  k.routes.push({ table: 254, dst: '0.0.0.0/0', type: 'unicast', protocol: 3, metric: 0, gateway: '10.30.2.1', dev: 'eth0' });
  return k;
}

describe('ENI routing driver (fake kernel)', () => {
  it('finds the interface by MAC, brings it up, gives it the top free table and a rule per workload IP', async () => {
    const k = kernel();
    k.routes.push({ table: 254, dst: '0.0.0.0/0', type: 'unicast', protocol: 16, metric: 500, gateway: '100.64.4.1', dev: 'eth1' });
    const r = await applyEni(k, desired);
    expect(r).toMatchObject({ changed: true, failures: [], problems: [], tables: [{ mac: MAC, ifname: 'eth1', table: 250 }] });
    expect(k.log).toEqual([
      'ip: route del 0.0.0.0/0 via 100.64.4.1 dev eth1 table main proto 16 metric 500',
      'ip: link set dev eth1 up',
      'ip: route replace 100.64.4.0/22 dev eth1 scope link table 250 proto 234',
      'ip: route replace default via 100.64.4.1 dev eth1 table 250 proto 234',
      'ip: rule add priority 101 from 100.64.4.20/32 table 250 protocol 234',
      'ip: rule add priority 101 from 100.64.4.21/32 table 250 protocol 234',
    ]);
    expect(k.routes.filter((x) => x.table === 254)).toEqual([expect.objectContaining({ dev: 'eth0' })]);
    expect(planEni(desired, await readEni(k)).ip).toEqual([]);
  });

  it('skips tables others use, keeps its table across restarts, and moves a workload IP between ENIs', async () => {
    const k = kernel();
    k.addLink('eth2', '02:00:00:00:aa:02');
    k.routes.push({ table: 250, dst: '192.0.2.0/24', type: 'unicast', protocol: 4, metric: 0, dev: 'eth0' });
    k.rules.push({ priority: 101, from: '10.99.0.1/32', table: 249, protocol: 3 });
    await applyEni(k, desired);
    const two: EniState = { interfaces: [desired.interfaces[0]!, { mac: '02:00:00:00:aa:02', subnetCidr: '100.64.8.0/22', workloadIps: ['100.64.8.9'] }] };
    const r = await applyEni(k, two);
    expect(r.tables.map((t) => [t.ifname, t.table])).toEqual([['eth1', 248], ['eth2', 247]]);
    const moved: EniState = { interfaces: [{ ...desired.interfaces[0]!, workloadIps: ['100.64.4.20'] }, { ...two.interfaces[1]!, workloadIps: ['100.64.8.9', '100.64.4.21'] }] };
    await applyEni(k, moved);
    expect(k.rules.filter((x) => x.protocol === 234).map((x) => [x.from, x.table]).sort()).toEqual([['100.64.4.20/32', 248], ['100.64.4.21/32', 247], ['100.64.8.9/32', 247]]);
    await applyEni(k, { interfaces: [] });
    expect(k.rules.filter((x) => x.protocol === 234)).toEqual([]);
    expect(k.routes.filter((x) => x.protocol === 234)).toEqual([]);
    expect(k.routes.filter((x) => x.table === 250)).toHaveLength(1);
    expect(k.rules.filter((x) => x.table === 249)).toHaveLength(1);
  });

  it('reports an interface that is not there and applies the rest; rejects a workload IP on two ENIs', async () => {
    const k = kernel();
    const r = await applyEni(k, { interfaces: [...desired.interfaces, { mac: '02:00:00:00:aa:09', subnetCidr: '100.64.8.0/22', workloadIps: ['100.64.8.9'] }] });
    expect(r.problems).toEqual([expect.objectContaining({ code: 'InterfaceNotFound', object: 'eni 02:00:00:00:aa:09' })]);
    expect(r.tables).toHaveLength(1);
    expect(() => planEni({ interfaces: [desired.interfaces[0]!, { mac: '02:00:00:00:aa:02', subnetCidr: '100.64.8.0/22', workloadIps: ['100.64.4.20'] }] }, { links: [], routes: [], rules: [] }))
      .toThrow(/two ENIs/);
  });
});
