/**
 * Issue 11, item 3: the first SYN of a freshly started selected pod never leaves with the node IP. The
 * real CNI chain (Debian's `ptp` calling the built `egw-ipam`) starts the pod in a "node" namespace that
 * masquerades pod traffic towards an uplink (Calico's natOutgoing) to a "server" namespace; no agent
 * runs. egw-ipam's fail-closed placeholder must drop the selected pod's first SYN; an unselected pod's
 * SYN arrives with the node IP (the control); the client-node driver (the agent's) then replaces the
 * placeholder. Everything lives in namespaces made here, never connected to the host.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EGRESS_RULE_PROTOCOL } from '../../src/cni/plugin.js';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { applyClientNode } from '../../src/linux/index.js';
import { NetnsShell } from '../../src/linux/netns.js';
import { EGRESS_ROUTE_PROTOCOL } from '../../src/linux/ownership.js';
import { ExecShell } from '../../src/platform/shell.js';
import { distPath } from '../support/dist.js';
import { namespace, node, pod, pool, seed } from '../ipam/helpers.js';
import { deadRunPrefixes, runPrefix, sweepNetns } from './support/run-prefix.js';

const PTP = '/usr/lib/cni/ptp';
const canRun = process.getuid?.() === 0 && existsSync(PTP);
// Unique per run (tag + pid): a second suite beside this one never meets these namespaces.
const tag = runPrefix('cfc');
const NODE_NS = `${tag}-node`;
const SRV_NS = `${tag}-srv`;
const NODE_IP = '203.0.113.1';
const SERVER_IP = '203.0.113.10';
const dir = mkdtempSync(join(tmpdir(), 'egw-cni-fail-closed-'));
const storePath = join(dir, 'egw.db');
const binDir = join(dir, 'bin');
const made: string[] = [];
const SEL = 'egress.projectcalico.org/selector';

function netns(name: string): string {
  execFileSync('ip', ['netns', 'add', name]);
  made.push(name);
  return name;
}

function inNs(ns: string, ...argv: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8' });
}

function ptpAdd(podNs: string, containerId: string, podRef: [string, string]): { code: number; ip: string | undefined; raw: string } {
  const r = spawnSync('ip', ['netns', 'exec', NODE_NS, PTP], {
    input: JSON.stringify({ cniVersion: '1.0.0', name: 'egw-test', type: 'ptp', ipam: { type: 'egw-ipam', datastore: storePath, nodeName: 'cfc-node', gateway: '198.18.255.1' } }),
    env: {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: containerId,
      CNI_NETNS: `/var/run/netns/${podNs}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: `/usr/lib/cni:${binDir}`,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${podRef[0]};K8S_POD_NAME=${podRef[1]}`,
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const raw = r.stdout.trim();
  const out = raw === '' ? undefined : (JSON.parse(raw) as { ips?: { address: string }[] });
  // ptp gives the pod routes to the pools only; the default route a cluster's CNI configuration adds.
  if (r.status === 0) execFileSync('ip', ['-n', podNs, 'route', 'replace', 'default', 'via', '198.18.255.1', 'dev', 'eth0', 'onlink']);
  return { code: r.status ?? -1, ip: out?.ips?.[0]?.address.split('/')[0], raw: `${raw} ${r.stderr}` };
}

/** One TCP connection attempt from a pod namespace (the pod's first SYN); resolves with the outcome. */
function connectFrom(podNs: string): string {
  const script = `const s=require('net').connect(8089,'${SERVER_IP}');s.setTimeout(1500);s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('error',(e)=>{console.log(e.code);process.exit(0)});s.on('timeout',()=>{console.log('timeout');process.exit(0)});`;
  return inNs(podNs, process.execPath, '-e', script).trim();
}

/** TCP SYNs arriving at the server from `saddr` (`any` for every source). */
function synsAtServer(saddr: string): number {
  const doc = JSON.parse(inNs(SRV_NS, 'nft', '-j', 'list', 'table', 'ip', 'cfctest')) as { nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[] };
  for (const item of doc.nftables) {
    if (item.rule?.comment !== saddr) continue;
    for (const e of item.rule.expr) if (e.counter !== undefined) return e.counter.packets;
  }
  return -1;
}

function ourRules(): string[] {
  return inNs(NODE_NS, 'ip', '-4', 'rule', 'show').split('\n').filter((l) => l.includes(`proto ${EGRESS_RULE_PROTOCOL}`)).map((l) => l.trim());
}

beforeAll(async () => {
  if (!canRun) return;
  // Leftovers of this run's pid and of dead runs of this file only: never another live run's.
  sweepNetns(tag);
  for (const dead of deadRunPrefixes('cfc')) sweepNetns(dead);
  mkdirSync(binDir);
  const plugin = distPath('src/cni/main.ts');
  chmodSync(plugin, 0o755);
  symlinkSync(plugin, join(binDir, 'egw-ipam'));
  const store = await SqliteDatastore.open(storePath);
  try {
    await seed(
      store,
      { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { egressIPSupport: 'EnabledPerNamespace' } },
      node('cfc-node'),
      pool('default-pool', { cidr: '10.124.0.0/24', blockSize: 28, natOutgoing: true }),
      namespace('app', { [SEL]: "egress-code == 'red'" }),
      namespace('plain'),
      pod('app', 'c1'),
      pod('plain', 'p1'),
    );
  } finally {
    await store.close();
  }
  netns(NODE_NS);
  netns(SRV_NS);
  inNs(NODE_NS, 'ip', 'link', 'set', 'lo', 'up');
  inNs(SRV_NS, 'ip', 'link', 'set', 'lo', 'up');
  inNs(NODE_NS, 'ip', 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0s', 'netns', SRV_NS);
  inNs(NODE_NS, 'ip', 'addr', 'add', `${NODE_IP}/24`, 'dev', 'up0');
  inNs(NODE_NS, 'ip', 'link', 'set', 'up0', 'up');
  inNs(SRV_NS, 'ip', 'addr', 'add', `${SERVER_IP}/24`, 'dev', 'up0s');
  inNs(SRV_NS, 'ip', 'link', 'set', 'up0s', 'up');
  inNs(NODE_NS, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
  // Calico's natOutgoing on the node: pod sources leave the uplink with the node's address.
  execFileSync('ip', ['netns', 'exec', NODE_NS, 'nft', '-f', '-'], { input: 'table ip cfcnat {\n chain post { type nat hook postrouting priority 100; policy accept;\n  ip saddr 10.124.0.0/24 oifname "up0" masquerade\n }\n}\n' });
  execFileSync('ip', ['netns', 'exec', SRV_NS, 'nft', '-f', '-'], {
    input: `table ip cfctest {\n chain pre { type filter hook prerouting priority -300; policy accept;\n  ip saddr ${NODE_IP} tcp flags syn counter comment "${NODE_IP}"\n  tcp flags syn counter comment "any"\n }\n}\n`,
  });
});

afterAll(() => {
  for (const ns of made.reverse()) spawnSync('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!canRun)('the fail-closed placeholder of egw-ipam, real packets', () => {
  it('uses the protocol the agent owns', () => {
    expect(EGRESS_RULE_PROTOCOL).toBe(EGRESS_ROUTE_PROTOCOL);
  });

  it('the first SYN of a freshly started selected pod never leaves (with the node IP or at all); an unselected pod leaves with the node IP', () => {
    const c1Ns = netns(`${tag}-c1`);
    const c1 = ptpAdd(c1Ns, 'cidc1', ['app', 'c1']);
    expect(c1.code, c1.raw).toBe(0);
    expect(ourRules().map((l) => l.replace(/\s+/g, ' '))).toEqual([`100: from ${c1.ip} unreachable proto 233`]);
    const outcome = connectFrom(c1Ns);
    // The node answers the SYN with "network unreachable" (the placeholder's action), never forwards it.
    expect(outcome).toBe('ENETUNREACH');
    expect(synsAtServer(NODE_IP), 'SYNs of the selected pod that left with the node IP').toBe(0);
    expect(synsAtServer('any')).toBe(0);

    // The control: an unselected pod's SYN does leave, with the node's IP (so the path is real).
    const p1Ns = netns(`${tag}-p1`);
    const p1 = ptpAdd(p1Ns, 'cidp1', ['plain', 'p1']);
    expect(p1.code, p1.raw).toBe(0);
    expect(ourRules().some((l) => l.includes(`from ${p1.ip} `))).toBe(false);
    // Nothing listens on the server: its RST proves the SYN got there (the same pod plumbing as c1's).
    expect(connectFrom(p1Ns)).toBe('ECONNREFUSED');
    expect(synsAtServer(NODE_IP)).toBeGreaterThanOrEqual(1);
  });

  it('the agent (client-node driver) keeps the placeholder of a pod it does not know yet, replaces it by its rule, and removes it for a known pod that is not a client', async () => {
    const shell = new NetnsShell(new ExecShell(), NODE_NS);
    const ip = ourRules().map((l) => /from (\S+) unreachable/.exec(l)?.[1]).find((x) => x !== undefined)!;
    expect(ip).toBeDefined();
    // The agent does not know the pod yet (its record has no IP before the ADD returns): the placeholder stays.
    const early = await applyClientNode(shell, { vxlan: undefined, clients: [], knownPodIps: [] });
    expect(early.failures).toEqual([]);
    expect(ourRules().map((l) => l.replace(/\s+/g, ' '))).toEqual([`100: from ${ip} unreachable proto 233`]);
    const r = await applyClientNode(shell, { vxlan: undefined, clients: [{ ip, routes: [{ cidr: '0.0.0.0/0', kind: 'unreachable' }] }], knownPodIps: [ip] });
    expect(r.failures).toEqual([]);
    const rules = ourRules();
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatch(new RegExp(`^100:\\s+from ${ip.replace(/\./g, '\\.')} lookup \\d+ proto 233$`));
    const gone = await applyClientNode(shell, { vxlan: undefined, clients: [], knownPodIps: [ip] });
    expect(gone.failures).toEqual([]);
    expect(ourRules()).toEqual([]);
  });
});
