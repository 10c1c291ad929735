/**
 * egw-ipam driven for real through Debian's `ptp` plugin, exactly as a container runtime drives it: the
 * CNI_* environment, the network configuration on stdin, CNI_PATH holding ptp's directory and one with
 * `egw-ipam`. ptp runs inside a "node" namespace made here (its host-side veth lands there, never in the
 * root namespace), and the pod namespace is another one made here. Everything is removed afterwards.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';
import { IPAM_HANDLE_KIND } from '../../src/ipam/records.js';
import { distPath } from '../support/dist.js';
import { awsPool, namespace, node, pod, pool, seed, subnet } from '../ipam/helpers.js';
import { deadRunPrefixes, runPrefix, sweepNetns } from './support/run-prefix.js';

const PTP = '/usr/lib/cni/ptp';
const canRun = process.getuid?.() === 0 && existsSync(PTP);
// Unique per run (tag + pid): a second suite beside this one never meets these namespaces.
const tag = runPrefix('cni');
const NODE_NS = `${tag}-node`;
const dir = mkdtempSync(join(tmpdir(), 'egw-cni-ptp-'));
const storePath = join(dir, 'egw.db');
const binDir = join(dir, 'bin');
const made: string[] = [];

function netns(name: string): string {
  execFileSync('ip', ['netns', 'add', name]);
  made.push(name);
  return name;
}

interface Run {
  code: number;
  out: Record<string, unknown> | undefined;
  raw: string;
  stderr: string;
}

/** Runs ptp in the node namespace as a runtime would. */
function ptp(command: string, podNs: string, containerId: string, podRef: [string, string], conf: Record<string, unknown>): Run {
  const r = spawnSync('ip', ['netns', 'exec', NODE_NS, PTP], {
    input: JSON.stringify(conf),
    env: {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: `/var/run/netns/${podNs}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: `/usr/lib/cni:${binDir}`,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${podRef[0]};K8S_POD_NAME=${podRef[1]};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const raw = r.stdout.trim();
  return { code: r.status ?? -1, out: raw === '' ? undefined : (JSON.parse(raw) as Record<string, unknown>), raw, stderr: r.stderr };
}

function conf(version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: version,
    name: 'egw-test',
    type: 'ptp',
    ipam: { type: 'egw-ipam', datastore: storePath, nodeName: 'cni-node', gateway: '198.18.255.1', ...extra },
  };
}

interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

function addresses(podNs: string): { ifname: string; local: string; prefixlen: number }[] {
  const out = JSON.parse(execFileSync('ip', ['-n', podNs, '-j', 'addr', 'show'], { encoding: 'utf8' })) as IpAddr[];
  return out.flatMap((l) => l.addr_info.filter((a) => a.family === 'inet').map((a) => ({ ifname: l.ifname, local: a.local, prefixlen: a.prefixlen })));
}

async function handles(): Promise<string[]> {
  const store = await SqliteDatastore.open(storePath);
  try {
    return (await store.list(IPAM_HANDLE_KIND)).items.map((i) => `${i.key.name}=${(i.value as { ip: string }).ip}`);
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  if (!canRun) return;
  // Leftovers of this run's pid and of dead runs of this file only: never another live run's.
  sweepNetns(tag);
  for (const dead of deadRunPrefixes('cni')) sweepNetns(dead);
  mkdirSync(binDir);
  const plugin = distPath('src/cni/main.ts');
  chmodSync(plugin, 0o755);
  symlinkSync(plugin, join(binDir, 'egw-ipam'));
  const store = await SqliteDatastore.open(storePath);
  try {
    await seed(
      store,
      node('cni-node', { 'topology.kubernetes.io/zone': 'us-west-2a' }),
      subnet('subnet-000000000000000001', '100.64.0.0/22', 'us-west-2a'),
      awsPool('egress-red-west-1', '100.64.0.4/30', 'subnet-000000000000000001'),
      pool('default-pool', { cidr: '10.123.0.0/24', blockSize: 28 }),
      namespace('red'),
      pod('red', 'gw', { aws: true, annotations: { 'cni.projectcalico.org/ipv4pools': '["egress-red-west-1"]' } }),
      pod('red', 'client'),
    );
  } finally {
    await store.close();
  }
  netns(NODE_NS);
});

afterAll(() => {
  for (const ns of made.reverse()) spawnSync('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!canRun)('egw-ipam through ptp', () => {
  for (const version of ['1.0.0', '0.4.0']) {
    it(`CNI ${version}: ADD gives the pod its pool's address, CHECK passes, DEL releases it, a second DEL succeeds`, async () => {
      const podNs = netns(`${tag}-gw${version.replace(/\./g, '')}`);
      const cid = `cid${version.replace(/\./g, '')}abc`;
      const add = ptp('ADD', podNs, cid, ['red', 'gw'], conf(version));
      expect(add.code, `${add.raw} ${add.stderr}`).toBe(0);
      expect(add.out?.['cniVersion']).toBe(version);
      const ips = add.out?.['ips'] as { address: string; gateway: string; version?: string }[];
      expect(ips).toHaveLength(1);
      const [ip, prefix] = ips[0]!.address.split('/');
      expect(prefix).toBe('30');
      expect(['100.64.0.4', '100.64.0.5', '100.64.0.6', '100.64.0.7']).toContain(ip);
      expect(ips[0]!.gateway).toBe('198.18.255.1');
      expect(ips[0]!.version).toBe(version === '1.0.0' ? undefined : '4');
      expect(addresses(podNs)).toEqual([{ ifname: 'eth0', local: ip, prefixlen: 30 }]);
      const routes = execFileSync('ip', ['-n', podNs, 'route', 'show'], { encoding: 'utf8' });
      // ptp's own routes: the gateway on-link, the pool through it.
      expect(routes).toContain('198.18.255.1 dev eth0 scope link');
      expect(routes).toContain('100.64.0.4/30 via 198.18.255.1 dev eth0');
      expect(await handles()).toEqual([`egw-test.${cid}=${ip}`]);

      const check = ptp('CHECK', podNs, cid, ['red', 'gw'], { ...conf(version), prevResult: add.out });
      expect(check.code, `${check.raw} ${check.stderr}`).toBe(0);

      const del = ptp('DEL', podNs, cid, ['red', 'gw'], { ...conf(version), prevResult: add.out });
      expect(del.code, `${del.raw} ${del.stderr}`).toBe(0);
      expect(await handles()).toEqual([]);
      expect(addresses(podNs)).toEqual([]);
      const again = ptp('DEL', podNs, cid, ['red', 'gw'], conf(version));
      expect(again.code, `${again.raw} ${again.stderr}`).toBe(0);
    });
  }

  it('a pod without the aws request gets an address from the node-selected pool', async () => {
    const podNs = netns(`${tag}-client`);
    const add = ptp('ADD', podNs, 'cidclient', ['red', 'client'], conf('1.0.0'));
    expect(add.code, `${add.raw} ${add.stderr}`).toBe(0);
    const address = (add.out?.['ips'] as { address: string }[])[0]!.address;
    expect(address).toMatch(/^10\.123\.0\.\d+\/24$/);
    expect(addresses(podNs).map((a) => `${a.local}/${a.prefixlen}`)).toEqual([address]);
    expect(ptp('DEL', podNs, 'cidclient', ['red', 'client'], conf('1.0.0')).code).toBe(0);
  });

  it('a pod missing from the datastore is a clear CNI error, and nothing is left behind', async () => {
    const podNs = netns(`${tag}-ghost`);
    const add = ptp('ADD', podNs, 'cidghost', ['red', 'ghost'], conf('1.0.0'));
    expect(add.code).not.toBe(0);
    expect(add.out).toMatchObject({ code: 102, msg: 'pod not found' });
    expect(String(add.out?.['details'])).toContain('pod red/ghost (from CNI_ARGS) is not in the datastore');
    expect(addresses(podNs)).toEqual([]);
    expect(await handles()).toEqual([]);
  });
});
