import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiniCluster, namespace } from './support/mini-cluster.js';
import { runPrefix } from './support/run-prefix.js';

// Issue 11, item 1: a client node accepts VXLAN only from the cluster's nodes and gateway pods. Real
// processes and packets: `egw agent` on two nodes, `egw gateway` on n2, a client pod on n1. A crafted
// VXLAN packet (a UDP datagram to port 4790 carrying an Ethernet frame with an ICMP echo from a spoofed
// inner source to the client pod) is sent from a VPC host that is not a node, from the gateway's node
// and from the gateway pod; a counter in the client pod's namespace shows what arrived. Prefix "dvx<pid>" (unique per run).
const SEL = 'egress.projectcalico.org/selector';
const NSSEL = 'egress.projectcalico.org/namespaceSelector';

/** Builds and sends the crafted packet: node script.mjs DST PORT VNI INNER_DST_MAC INNER_SRC INNER_DST COUNT. */
const VXLAN_SENDER = `import dgram from 'node:dgram';
const [dst, port, vni, mac, src, target, count] = process.argv.slice(2);
const csum = (b) => { let s = 0; for (let i = 0; i < b.length; i += 2) s += (b[i] << 8) + (b[i + 1] ?? 0); while (s >>> 16) s = (s & 0xffff) + (s >>> 16); return ~s & 0xffff; };
const addr = (t) => Buffer.from(t.split('.').map(Number));
const icmp = Buffer.alloc(16); icmp[0] = 8; icmp.writeUInt16BE(0x6567, 4); icmp.writeUInt16BE(1, 6); icmp.write('egwtest!', 8); icmp.writeUInt16BE(csum(icmp), 2);
const ip = Buffer.alloc(20); ip[0] = 0x45; ip.writeUInt16BE(20 + icmp.length, 2); ip.writeUInt16BE(0x4000, 6); ip[8] = 64; ip[9] = 1;
addr(src).copy(ip, 12); addr(target).copy(ip, 16); ip.writeUInt16BE(csum(ip), 10);
const eth = Buffer.alloc(14); Buffer.from(mac.split(':').map((h) => parseInt(h, 16))).copy(eth, 0); Buffer.from([2, 0, 0, 0, 0, 0x99]).copy(eth, 6); eth.writeUInt16BE(0x0800, 12);
const vx = Buffer.alloc(8); vx[0] = 0x08; vx.writeUIntBE(Number(vni), 4, 3);
const packet = Buffer.concat([vx, eth, ip, icmp]);
const sock = dgram.createSocket('udp4');
let sent = 0;
const send = () => sock.send(packet, Number(port), dst, (e) => { if (e) { console.error(e.message); process.exit(1); } if (++sent >= Number(count)) sock.close(); else setTimeout(send, 10); });
send();
`;

let c: MiniCluster;
let c1Ip: string;
let n1Ip: string;
let vxlanMac: string;

/** Counts packets from `saddr` arriving in a namespace (prerouting, before anything can drop them). */
async function counterIn(ns: string, saddr: string): Promise<() => Promise<number>> {
  const table = `egwvx${saddr.split('.').at(-1)}`;
  await c.topo.exec(ns, ['nft', 'delete', 'table', 'ip', table], { allowFailure: true });
  await c.topo.exec(ns, ['nft', '-f', '-'], { input: `table ip ${table} {\n chain pre { type filter hook prerouting priority -300; policy accept;\n  ip saddr ${saddr} counter\n }\n}\n` });
  return async () => {
    const r = await c.topo.exec(ns, ['nft', '-j', 'list', 'table', 'ip', table]);
    return packetsOf(r.stdout);
  };
}

function packetsOf(nftJson: string): number {
  const doc = JSON.parse(nftJson) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
  for (const item of doc.nftables) for (const e of item.rule?.expr ?? []) if (e.counter !== undefined) return e.counter.packets;
  return -1;
}

/** The node's own count of dropped VXLAN packets (egw's input chain). */
async function nodeDrops(node: string): Promise<number> {
  const r = await c.topo.exec(node, ['nft', '-j', 'list', 'chain', 'ip', 'egw', 'vxlan_input'], { allowFailure: true });
  return r.exitCode === 0 ? packetsOf(r.stdout) : -1;
}

async function sendCrafted(fromNs: string, innerSrc: string, count: number): Promise<void> {
  const script = c.script('vxlan-send.mjs', VXLAN_SENDER);
  await c.topo.exec(fromNs, [process.execPath, script, n1Ip, '4790', '4097', vxlanMac, innerSrc, c1Ip, String(count)], { timeoutMs: 10_000 });
}

beforeAll(async () => {
  c = await MiniCluster.create({
    prefix: runPrefix('dvx'),
    nodes: ['n1', 'n2'],
    pods: [
      { name: 'red1', namespace: 'egw', node: 'n2', ip: '100.64.0.11', labels: { 'egress-code': 'red' }, gateway: true },
      { name: 'c1', namespace: 'app', node: 'n1', ip: '10.20.1.5' },
    ],
    resources: [namespace('egw'), namespace('app', { [SEL]: "egress-code == 'red'", [NSSEL]: "projectcalico.org/name == 'egw'" })],
  });
  c1Ip = c.pod('c1').ip;
  n1Ip = c.nodeIp('n1');
  await c.waitForClient('c1', 'routed through red1', (s) => MiniCluster.gatewaysOf(s).join() === c.pod('red1').ip);
  const link = await c.topo.exec('n1', ['ip', '-json', 'link', 'show', 'dev', 'egw.vxlan']);
  vxlanMac = (JSON.parse(link.stdout) as { address: string }[])[0]!.address;
}, 120_000);

afterAll(async () => {
  await c?.teardown();
}, 60_000);

describe('the VXLAN source filter of a client node, real packets', () => {
  it('a crafted VXLAN packet from a VPC host that is not a node never reaches the client pod, and is counted', async () => {
    const arrived = await counterIn('c1', '198.18.7.7');
    const before = await nodeDrops('n1');
    await sendCrafted('local', '198.18.7.7', 20);
    // Either the node drops and counts them, or (without the filter) they reach the pod: wait for one.
    await c.waitFor('the packets dropped or delivered', async () => (await arrived()) > 0 || (await nodeDrops('n1')) >= before + 20, 10_000).catch(() => undefined);
    expect(await arrived(), 'crafted packets that reached the client pod').toBe(0);
    expect(before, 'the node has the filter chain').toBeGreaterThanOrEqual(0);
    expect(await nodeDrops('n1')).toBeGreaterThanOrEqual(before + 20);
  });

  it('the same packet from the gateway node and from the gateway pod arrives', async () => {
    const fromNode = await counterIn('c1', '198.18.7.8');
    await sendCrafted('n2', '198.18.7.8', 5);
    await c.waitFor('from the gateway node', async () => (await fromNode()) >= 5, 10_000);
    const fromPod = await counterIn('c1', '198.18.7.9');
    await sendCrafted('red1', '198.18.7.9', 5);
    await c.waitFor('from the gateway pod', async () => (await fromPod()) >= 5, 10_000);
  });

  it('a node that leaves the cluster loses the right to send', async () => {
    await c.remove({ kind: 'Node', name: 'n2' });
    const counted = await counterIn('c1', '198.18.7.10');
    await c.waitFor('n2 dropped from the set', async () => {
      const r = await c.topo.exec('n1', ['nft', '-j', 'list', 'set', 'ip', 'egw', 'vxlan_peers']);
      return !r.stdout.includes(c.nodeIp('n2'));
    }, 20_000);
    const before = await nodeDrops('n1');
    await sendCrafted('n2', '198.18.7.10', 5);
    await c.waitFor('counted as dropped', async () => (await nodeDrops('n1')) >= before + 5, 10_000);
    expect(await counted()).toBe(0);
  });
});
