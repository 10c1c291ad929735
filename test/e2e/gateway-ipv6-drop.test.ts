/**
 * A gateway pod refuses IPv6 (docs/security.md, 11): its `ip egw` table filters IPv4 only, so the
 * gateway-pod driver adds an `ip6 egw` table whose input and forward chains drop (and count) every IPv6
 * packet. Real kernel, real packets: a peer reaches the gateway pod's namespace, and a host behind it,
 * over IPv6 before the driver runs; afterwards neither ping6 nor UDP arrives, and the drops are counted.
 *
 * Namespaces prefixed runPrefix('g6d'), never connected to the host. IPv6 addresses come from the documentation
 * prefix 2001:db8::/32 (the IPv6 twin of the IPv4 documentation ranges).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyGatewayPod } from '../../src/linux/gateway-pod/gateway-pod.js';
import type { RunningProcess } from '../../src/linux/topology/process.js';
import { TopologyBuilder } from '../../src/linux/topology/spec.js';
import { createTopology, sweepTopology, type Topology } from '../../src/linux/topology/topology.js';
import { ExecShell } from '../../src/platform/shell.js';
import { runPrefix } from './support/run-prefix.js';

const PREFIX = runPrefix('g6d');
const shell = new ExecShell();
const PEER6 = '2001:db8:6d::1';
const GW6 = '2001:db8:6d::2';
const GW6_FAR = '2001:db8:6e::2';
const FAR6 = '2001:db8:6e::1';
const UDP_PORT = 9696;

// Prints one line per datagram received on [::]:port (the proof that a packet arrived).
const UDP_LISTENER = `import dgram from 'node:dgram';
const s = dgram.createSocket({ type: 'udp6', ipv6Only: true });
s.on('message', (m) => process.stdout.write('got ' + m.toString() + '\\n'));
s.bind(Number(process.argv[2]), '::', () => process.stdout.write('ready\\n'));`;
const UDP_SENDER = `import dgram from 'node:dgram';
const [host, port, count] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const s = dgram.createSocket('udp6');
let sent = 0;
const next = () => { if (sent === count) { s.close(); return; } s.send('p' + sent++, port, host, next); };
next();`;

let topo: Topology;
const listeners: RunningProcess[] = [];

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function ping6(from: string, to: string): Promise<boolean> {
  return (await topo.exec(from, ['ping', '-6', '-n', '-c', '3', '-i', '0.2', '-W', '1', to], { allowFailure: true })).exitCode === 0;
}

/** Packets counted by the `counter drop` rule of a chain of `ip6 egw` (0 when the table is absent). */
async function dropped(chain: 'input' | 'forward'): Promise<number> {
  const r = await topo.exec('gw', ['nft', 'list', 'chain', 'ip6', 'egw', chain], { allowFailure: true });
  if (r.exitCode !== 0) return 0;
  const m = /counter packets (\d+) bytes \d+ drop/.exec(r.stdout);
  return m === null ? 0 : Number(m[1]);
}

/** Starts a UDP listener in `ns`; returns what it has received so far on demand. */
async function listen(ns: string): Promise<() => string[]> {
  const file = topo.writeFile(`udp-listen-${ns}.mjs`, UDP_LISTENER);
  const proc = topo.spawn(ns, [process.execPath, file, String(UDP_PORT)]);
  listeners.push(proc);
  await waitFor(`the UDP listener in ${ns}`, () => proc.stdout().includes('ready'));
  return () => proc.stdout().split('\n').filter((l) => l.startsWith('got '));
}

async function sendUdp(to: string, count: number): Promise<void> {
  const file = topo.writeFile('udp-send.mjs', UDP_SENDER);
  await topo.exec('px', [process.execPath, file, to, String(UDP_PORT), String(count)]);
}

beforeAll(async () => {
  await sweepTopology(PREFIX, { shell });
  // px ── gw (the gateway pod, forwarding) ── far. IPv4 as a gateway pod has it; IPv6 added below.
  const b = new TopologyBuilder(PREFIX)
    .namespace('px')
    .namespace('gw', { forwarding: true })
    .namespace('far')
    .veth({ ns: 'px', ifname: 'eth0', addresses: ['10.96.0.1/30'] }, { ns: 'gw', ifname: 'eth0', addresses: ['10.96.0.2/30'] })
    .veth({ ns: 'gw', ifname: 'eth1', addresses: ['10.96.0.5/30'] }, { ns: 'far', ifname: 'eth0', addresses: ['10.96.0.6/30'] });
  topo = await createTopology(b.build(), { shell });
  const v6 = async (ns: string, dev: string, addr: string): Promise<void> => {
    await topo.exec(ns, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=0', `net.ipv6.conf.${dev}.disable_ipv6=0`]);
    await topo.exec(ns, ['ip', '-6', 'addr', 'add', `${addr}/64`, 'dev', dev, 'nodad']);
  };
  await v6('px', 'eth0', PEER6);
  await v6('gw', 'eth0', GW6);
  await v6('gw', 'eth1', GW6_FAR);
  await v6('far', 'eth0', FAR6);
  await topo.exec('px', ['ip', '-6', 'route', 'add', '2001:db8:6e::/64', 'via', GW6]);
  await topo.exec('far', ['ip', '-6', 'route', 'add', '2001:db8:6d::/64', 'via', GW6_FAR]);
  await topo.exec('gw', ['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
}, 60_000);

afterAll(async () => {
  for (const p of listeners) await p.stop().catch(() => undefined);
  await topo?.teardown();
});

describe('IPv6 into and through a gateway pod (real packets)', () => {
  it('before egw: IPv6 reaches the pod and crosses it (the link works)', async () => {
    // Neighbour discovery on fresh links may lose the first echoes: wait for the path, do not assume it.
    await waitFor('ping6 to the pod', () => ping6('px', GW6), 20_000);
    await waitFor('ping6 through the pod', () => ping6('px', FAR6), 20_000);
    const got = await listen('gw');
    await sendUdp(GW6, 3);
    await waitFor('3 datagrams', () => got().length === 3);
  });

  it('after the gateway-pod driver: ping6 and UDP to the pod never arrive, forwarding is refused, and the drops are counted', async () => {
    await applyGatewayPod(topo.shell('gw'), { podIp: '10.96.0.2', vxlan: { vni: 4097, port: 4790 }, nodeIps: ['10.96.0.1'] });
    const got = await listen('far');
    const inGw = listeners[0]!;
    const before = inGw.stdout().split('\n').filter((l) => l.startsWith('got ')).length;
    expect(await ping6('px', GW6)).toBe(false);
    await sendUdp(GW6, 5);
    await waitFor('the input drops counted', async () => (await dropped('input')) >= 3 + 5);
    expect(inGw.stdout().split('\n').filter((l) => l.startsWith('got ')).length).toBe(before);

    expect(await ping6('px', FAR6)).toBe(false);
    await sendUdp(FAR6, 4);
    await waitFor('the forward drops counted', async () => (await dropped('forward')) >= 3 + 4);
    expect(got()).toEqual([]);
  });

  it('removal takes the ip6 table with the rest', async () => {
    await applyGatewayPod(topo.shell('gw'), undefined);
    const tables = (await topo.exec('gw', ['nft', 'list', 'tables'])).stdout;
    expect(tables).not.toContain('ip6 egw');
    expect(tables).not.toContain('ip egw');
  });
});
