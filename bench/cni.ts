/**
 * Benchmark `cni`: the latency of CNI ADD through Debian's `ptp` plugin with egw-ipam as its IPAM, driven
 * as a runtime drives it (ptp runs in a "node" namespace made here; each pod has its own namespace), next
 * to egw-ipam run alone (the plugin's own share: node start, datastore, allocation) and DEL through ptp.
 * Needs root and /usr/lib/cni/ptp (package containernetworking-plugins); every namespace and file made
 * here is removed afterwards.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { WriteOp } from '../src/datastore/contract.js';
import { openDatastore } from '../src/datastore/open.js';
import type { Benchmark, Figures } from './harness.js';
import { printTable, round, summarize } from './harness.js';

const PTP = '/usr/lib/cni/ptp';
const PODS = 40;

function timedMs(fn: () => { status: number | null; stdout: string }): { ms: number; out: string } {
  const start = process.hrtime.bigint();
  const r = fn();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`CNI call failed: ${r.stdout}`);
  return { ms, out: r.stdout };
}

export const cniBenchmark: Benchmark = {
  name: 'cni',
  description: 'CNI ADD latency through ptp with egw-ipam (p50/p99), egw-ipam alone, DEL',
  async run(): Promise<Figures> {
    if (process.getuid?.() !== 0 || !existsSync(PTP)) {
      console.log(`skipped: needs root and ${PTP} (containernetworking-plugins)`);
      return { skipped: 'needs root and ptp' };
    }
    const dir = mkdtempSync(join(tmpdir(), 'egw-bench-cni-'));
    const tag = `egwbcni${process.pid % 100000}`;
    const nodeNs = `${tag}-node`;
    const made: string[] = [];
    const storePath = join(dir, 'egw.db');
    try {
      const store = await openDatastore(storePath);
      try {
        const ops: WriteOp[] = [
          { op: 'put', key: { kind: 'Node', name: 'bench-node' }, value: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'bench-node' } } },
          { op: 'put', key: { kind: 'Namespace', name: 'bench' }, value: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } } },
          { op: 'put', key: { kind: 'IPPool', name: 'bench' }, value: { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'bench' }, spec: { cidr: '10.77.0.0/16', blockSize: 26 } } },
        ];
        for (let i = 0; i < 2 * PODS; i++) {
          ops.push({ op: 'put', key: { kind: 'Pod', namespace: 'bench', name: `p${i}` }, value: { apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${i}`, namespace: 'bench', uid: `u${i}` }, spec: { containers: [{ name: 'c' }] } } });
        }
        await store.commit(ops);
      } finally {
        await store.close();
      }
      const binDir = join(dir, 'bin');
      mkdirSync(binDir);
      const plugin = resolve(import.meta.dirname, '../src/cni/main.js');
      chmodSync(plugin, 0o755);
      symlinkSync(plugin, join(binDir, 'egw-ipam'));
      const netns = (name: string): string => {
        execFileSync('ip', ['netns', 'add', name]);
        made.push(name);
        return name;
      };
      netns(nodeNs);
      const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'bench', type: 'ptp', ipam: { type: 'egw-ipam', datastore: storePath, nodeName: 'bench-node', gateway: '198.18.255.1' } });
      const env = (command: string, i: number, podNs: string): NodeJS.ProcessEnv => ({
        PATH: process.env['PATH'],
        CNI_COMMAND: command,
        CNI_CONTAINERID: `bench${i}`,
        CNI_NETNS: `/var/run/netns/${podNs}`,
        CNI_IFNAME: 'eth0',
        CNI_PATH: `/usr/lib/cni:${binDir}`,
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=p${i}`,
      });
      const viaPtp = (command: string, i: number, podNs: string): { status: number | null; stdout: string } =>
        spawnSync('ip', ['netns', 'exec', nodeNs, PTP], { input: conf, env: env(command, i, podNs), encoding: 'utf8' });
      const alone = (command: string, i: number): { status: number | null; stdout: string } =>
        spawnSync(process.execPath, [plugin], { input: conf, env: env(command, i, 'none'), encoding: 'utf8' });

      const add: number[] = [];
      const del: number[] = [];
      const ipamAdd: number[] = [];
      const ipamDel: number[] = [];
      const pods = Array.from({ length: PODS }, (_, i) => netns(`${tag}-p${i}`));
      for (let i = 0; i < PODS; i++) add.push(timedMs(() => viaPtp('ADD', i, pods[i]!)).ms);
      for (let i = 0; i < PODS; i++) del.push(timedMs(() => viaPtp('DEL', i, pods[i]!)).ms);
      for (let i = PODS; i < 2 * PODS; i++) ipamAdd.push(timedMs(() => alone('ADD', i)).ms);
      for (let i = PODS; i < 2 * PODS; i++) ipamDel.push(timedMs(() => alone('DEL', i)).ms);
      const node = summarize(
        Array.from({ length: 10 }, () => {
          const start = process.hrtime.bigint();
          spawnSync(process.execPath, ['-e', '0']);
          return Number(process.hrtime.bigint() - start) / 1e6;
        }),
      );

      const rows = [
        ['ADD through ptp', summarize(add)],
        ['DEL through ptp', summarize(del)],
        ['egw-ipam ADD alone', summarize(ipamAdd)],
        ['egw-ipam DEL alone', summarize(ipamDel)],
        ['node -e 0 (floor)', node],
      ] as const;
      printTable(`CNI latency, ms (${PODS} pods, SQLite datastore, one node)`, ['call', 'p50', 'p90', 'p99', 'max'], rows.map(([name, s]) => [name, round(s.p50), round(s.p90), round(s.p99), round(s.max)]));
      const a = summarize(add);
      return {
        addMsP50: round(a.p50),
        addMsP99: round(a.p99),
        delMsP50: round(summarize(del).p50),
        ipamAddMsP50: round(summarize(ipamAdd).p50),
        nodeStartMsP50: round(node.p50),
      };
    } finally {
      for (const ns of made.reverse()) spawnSync('ip', ['netns', 'del', ns]);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
