import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecShell } from '../../src/platform/shell.js';
import { applyClientNode } from '../../src/linux/client-node/driver.js';
import type { ClientNodeState } from '../../src/linux/client-node/types.js';
import type { EniState } from '../../src/linux/eni/eni-routing.js';
import { applyEni, DEFAULT_ENI_CONFIG, planEni, readEni } from '../../src/linux/eni/eni-routing.js';
import { applyGatewayPod } from '../../src/linux/gateway-pod/gateway-pod.js';
import { parseRoutes, parseRules } from '../../src/linux/iproute/parse.js';
import { echoFrom, startEchoServer, tally } from '../../src/linux/topology/echo.js';
import { TopologyBuilder } from '../../src/linux/topology/spec.js';
import type { Topology } from '../../src/linux/topology/topology.js';
import { createTopology, sweepTopology } from '../../src/linux/topology/topology.js';
import { runPrefix, sweepDeadRuns } from './support/run-prefix.js';

// The full packet path of docs/architecture.md with the gateway on a secondary ENI: client pod →
// client node → tunnel → gateway pod (SNAT) → gateway node → rule 101 → ENI table → the ENI → router
// (which, like AWS's source/destination check, drops what a link sends from an address not its own)
// → external server. Namespaces prefixed "eni<pid>" (unique per run).
const PREFIX = runPrefix('eni');
const ENI_MAC = '02:00:00:00:aa:01';
const GW = '100.64.4.20';
const CLIENT = '10.40.1.5';
const SERVER = '203.0.113.10';
let topo: Topology;
const shell = new ExecShell();

const eniState: EniState = { interfaces: [{ mac: ENI_MAC, subnetCidr: '100.64.4.0/22', workloadIps: [GW] }] };
const clientNode: ClientNodeState = {
  vxlan: { vni: 4097, port: 4790, localIp: '10.30.1.10' },
  clients: [{ ip: CLIENT, routes: [{ cidr: '0.0.0.0/0', kind: 'via-gateways', gateways: [GW] }] }],
};
const gatewayNode: ClientNodeState = {
  vxlan: { vni: 4097, port: 4790, localIp: '10.30.2.10' },
  clients: [],
  returnPath: { gatewayPodIps: [GW], clients: [{ ip: CLIENT, nodeIp: '10.30.1.10' }] },
};

async function foreign(): Promise<string> {
  const rules = (await topo.exec('gn', ['ip', '-4', 'rule', 'show'])).stdout.split('\n').filter((l) => !/proto 23[34]/.test(l));
  const routes = (await topo.exec('gn', ['ip', '-4', 'route', 'show', 'table', 'all'])).stdout.split('\n').filter((l) => !/proto 23[34]/.test(l) && !l.includes('egw.vxlan'));
  return [...rules, '--', ...routes].join('\n');
}

beforeAll(async () => {
  await sweepTopology(PREFIX, { shell });
  await sweepDeadRuns(PREFIX, (dead) => sweepTopology(dead, { shell }));
  const spec = new TopologyBuilder(PREFIX)
    .namespace('rt', { forwarding: true })
    .namespace('ext')
    .namespace('cn', { forwarding: true })
    .namespace('gn', { forwarding: true })
    .veth({ ns: 'rt', ifname: 'to-ext', addresses: ['203.0.113.1/24'] }, { ns: 'ext', ifname: 'eth0', addresses: [`${SERVER}/24`] })
    .veth({ ns: 'rt', ifname: 'to-cn', addresses: ['10.30.1.1/24'] }, { ns: 'cn', ifname: 'eth0', addresses: ['10.30.1.10/24'] })
    .veth({ ns: 'rt', ifname: 'to-gn', addresses: ['10.30.2.1/24'] }, { ns: 'gn', ifname: 'eth0', addresses: ['10.30.2.10/24'] })
    // The secondary ENI: no address on the node side, found by its MAC; the fabric answers for the subnet.
    .veth({ ns: 'rt', ifname: 'r-eni', addresses: ['100.64.4.1/22'] }, { ns: 'gn', ifname: 'eth1', mac: ENI_MAC, proxyArp: true })
    .route({ ns: 'ext', dst: 'default', via: '203.0.113.1' })
    .route({ ns: 'cn', dst: 'default', via: '10.30.1.1' })
    .route({ ns: 'gn', dst: 'default', via: '10.30.2.1' })
    .pod({ node: 'cn', name: 'c1', ip: CLIENT, gatewayIp: '10.30.1.10' })
    .pod({ node: 'gn', name: 'g1', ip: GW, gatewayIp: '10.30.2.10', forwarding: true })
    .build();
  topo = await createTopology(spec, { shell });
  await topo.exec('rt', ['nft', '-f', '-'], {
    input: 'table ip fabric {\n chain forward { type filter hook forward priority 0; policy accept;\n'
      + '  iifname "to-gn" ip saddr != 10.30.2.10 drop\n  iifname "to-cn" ip saddr != 10.30.1.10 drop\n  iifname "r-eni" ip saddr != 100.64.4.20 drop\n }\n}\n',
  });
  // Foreign state: a rule at the ENI priority and a route in the top table of the range.
  await topo.exec('gn', ['ip', 'rule', 'add', 'priority', '101', 'from', '10.99.0.1', 'lookup', '250']);
  await topo.exec('gn', ['ip', 'route', 'add', '192.0.2.0/24', 'via', '10.30.2.1', 'table', '250', 'proto', 'static']);
  await topo.exec('gn', ['ip', 'link', 'set', 'dev', 'eth1', 'down']);
  await startEchoServer(topo, 'ext');
  await applyGatewayPod(topo.shell('g1'), { podIp: GW, vxlan: { vni: 4097, port: 4790 }, nodeIps: ['10.30.1.10', '10.30.2.10'], healthPort: 8080 });
  await applyClientNode(topo.shell('cn'), clientNode);
  await applyClientNode(topo.shell('gn'), gatewayNode);
}, 60_000);

afterAll(async () => {
  await topo?.teardown();
});

describe('ENI routing, real packets', () => {
  const foreignState: { before?: string } = {};

  it('without ENI routing the fabric drops the gateway traffic (it leaves through the primary interface)', async () => {
    foreignState.before = await foreign();
    const r = await echoFrom(topo, 'c1', SERVER, 8089, { timeoutMs: 500 });
    expect(r[0]?.error).toBeDefined();
  });

  it('brings the ENI up by MAC, routes the workload through its own table, and the server sees the gateway IP', async () => {
    const r = await applyEni(topo.shell('gn'), eniState);
    expect(r).toMatchObject({ changed: true, failures: [], problems: [], tables: [{ mac: ENI_MAC, ifname: 'eth1', table: 249 }] });
    expect(tally(await echoFrom(topo, 'c1', SERVER, 8089, { count: 5 }))).toEqual({ [GW]: 5 });
    const routes = parseRoutes((await topo.exec('gn', ['ip', '-j', '-N', 'route', 'show', 'table', 'all'])).stdout);
    expect(routes.filter((x) => x.table === 249)).toEqual([
      expect.objectContaining({ dst: '0.0.0.0/0', gateway: '100.64.4.1', dev: 'eth1', protocol: 234 }),
      expect.objectContaining({ dst: '100.64.4.0/22', dev: 'eth1', protocol: 234 }),
    ]);
    // Never a default route in main through the ENI (as an OS helper might add one); the node's own stays.
    await topo.exec('gn', ['ip', 'route', 'add', 'default', 'via', '100.64.4.1', 'dev', 'eth1', 'metric', '500', 'onlink']);
    expect((await applyEni(topo.shell('gn'), eniState)).changed).toBe(true);
    const main = parseRoutes((await topo.exec('gn', ['ip', '-j', '-N', 'route', 'show', 'table', 'main'])).stdout);
    expect(main.filter((x) => x.dst === '0.0.0.0/0').map((x) => x.dev)).toEqual(['eth0']);
    const rules = parseRules((await topo.exec('gn', ['ip', '-j', '-N', 'rule', 'show'])).stdout);
    expect(rules.filter((x) => x.protocol === 234)).toEqual([expect.objectContaining({ priority: 101, from: `${GW}/32`, table: 249 })]);
    expect(rules.filter((x) => x.protocol === 233)).toEqual([expect.objectContaining({ priority: 100, iif: 'v-g1', table: 1 })]);
  });

  it('re-applying both drivers on the gateway node changes nothing', async () => {
    expect((await applyEni(topo.shell('gn'), eniState)).changed).toBe(false);
    expect(planEni(eniState, await readEni(topo.shell('gn'))).ip).toEqual([]);
    expect((await applyClientNode(topo.shell('gn'), gatewayNode)).changed).toBe(false);
    expect((await applyEni(topo.shell('gn'), eniState)).changed).toBe(false);
  });

  it('an ENI that is not attached yet is reported; the others are still applied', async () => {
    const r = await applyEni(topo.shell('gn'), { interfaces: [...eniState.interfaces, { mac: '02:00:00:00:aa:02', subnetCidr: '100.64.8.0/22', workloadIps: ['100.64.8.9'] }] });
    expect(r.problems).toEqual([expect.objectContaining({ code: 'InterfaceNotFound', object: 'eni 02:00:00:00:aa:02' })]);
    expect(r.changed).toBe(false);
    expect(tally(await echoFrom(topo, 'c1', SERVER, 8089))).toEqual({ [GW]: 1 });
  });

  it('egressIPHostIfacePattern: src_valid_mark=1 on the host interfaces it names (names and /regex/), nothing else; a second apply changes nothing', async () => {
    const mark = async (dev: string): Promise<string> => (await topo.exec('gn', ['sysctl', '-n', `net.ipv4.conf.${dev}.src_valid_mark`])).stdout.trim();
    expect([await mark('eth0'), await mark('eth1')]).toEqual(['0', '0']);
    const config = { ...DEFAULT_ENI_CONFIG, hostIfaces: { names: ['nosuch0'], regexes: ['^eth[1-9]$'] } };
    expect((await applyEni(topo.shell('gn'), eniState, config)).changed).toBe(true);
    expect([await mark('eth0'), await mark('eth1')]).toEqual(['0', '1']);
    expect((await applyEni(topo.shell('gn'), eniState, config)).changed).toBe(false);
    await applyEni(topo.shell('gn'), eniState, { ...DEFAULT_ENI_CONFIG, hostIfaces: { names: ['eth0'], regexes: [] } });
    expect([await mark('eth0'), await mark('eth1')]).toEqual(['1', '1']);
    expect(tally(await echoFrom(topo, 'c1', SERVER, 8089))).toEqual({ [GW]: 1 });
  });

  it('removing the ENI from the desired state removes our rules and routes only', async () => {
    await applyEni(topo.shell('gn'), { interfaces: [] });
    const seen = await readEni(topo.shell('gn'));
    expect(seen.rules.filter((x) => x.protocol === 234)).toEqual([]);
    expect(seen.routes.filter((x) => x.protocol === 234)).toEqual([]);
    expect(await foreign()).toBe(foreignState.before);
    expect((await echoFrom(topo, 'c1', SERVER, 8089, { timeoutMs: 500 }))[0]?.error).toBeDefined();
  });
});
