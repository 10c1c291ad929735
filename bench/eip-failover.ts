/**
 * `npm run bench -- eip-failover`: how long a partner loses the gateway's public IP when the gateway that
 * holds it dies, with egw's Elastic IP standby and without it, in one run on the real lab (`egw lab`: the
 * EC2 emulator with its attach latencies, real packets through the lab's internet gateway NAT).
 *
 * One EgressGateway (red) lists one Elastic IP. With the standby (`egw.io/elastic-ip-standby: "true"`,
 * 2 replicas) one replica holds it and the other waits; without it (1 replica) the Deployment's replacement
 * pod must start, get its ENI and associate the address. A client pod probes the internet server every
 * 50 ms (each probe a new TCP connection, 500 ms timeout). Each round deletes the holding pod (grace 0) and
 * measures the time from the delete until the last failed probe's end, i.e. until the internet server
 * sees the Elastic IP again without a gap. The lab settles between rounds (a standby again, every gateway
 * ready).
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Benchmark, Figures } from './harness.js';
import { printTable, round, summarize } from './harness.js';

const ROUNDS = Number(process.env['EGW_BENCH_EIP_ROUNDS'] ?? 20);
const EIP = '203.0.113.7';
const INTERNET = '198.51.100.10';
const PORT = 8089;
const PROBE_EVERY_MS = 50;
const PROBE_TIMEOUT_MS = 500;
const REPO = resolve(import.meta.dirname, '../..');
const CLI = resolve(import.meta.dirname, '../src/cli/main.js');

const PROBER = `import net from 'node:net';
const [host, port, every, timeout] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
setInterval(() => {
  const t = Date.now();
  const s = net.connect({ host, port });
  let buf = '';
  let done = false;
  const end = (r) => { if (done) return; done = true; s.destroy(); console.log(JSON.stringify({ t, end: Date.now(), ...r })); };
  s.setTimeout(timeout, () => end({ error: 'timeout' }));
  s.on('data', (d) => { buf += d; const m = /Connection from (\\S+) /.exec(buf); if (m) end({ seen: m[1] }); });
  s.on('error', (e) => end({ error: e.code ?? String(e) }));
}, every);
`;

function scenario(manifests: string[]): string {
  return `name: eip-failover
description: one Elastic IP, one holder, with or without a standby
region: us-west-2
zones: [us-west-2a, us-west-2b]
vpc: {id: vpc-0e1a2b3c4d5e6f708, cidr: 100.64.0.0/16}
subnets:
  - {id: subnet-000000000000000001, name: egress-west-1, cidr: 100.64.0.0/22, zone: us-west-2a}
  - {id: subnet-000000000000000002, name: egress-west-2, cidr: 100.64.4.0/22, zone: us-west-2b}
  - {id: subnet-0c3d4e5f607182930, name: nodes-west-1, cidr: 100.64.16.0/22, zone: us-west-2a}
  - {id: subnet-0d4e5f60718293a41, name: nodes-west-2, cidr: 100.64.20.0/22, zone: us-west-2b}
  - {id: subnet-0e5f60718293a4b52, name: services, cidr: 100.64.32.0/24, zone: us-west-2a}
nodes:
  - {name: node-a1, subnet: nodes-west-1, instanceType: t3.large, ip: 100.64.16.10}
  - {name: node-a2, subnet: nodes-west-1, instanceType: t3.large, ip: 100.64.16.11}
  - {name: node-b1, subnet: nodes-west-2, instanceType: t3.large, ip: 100.64.20.10}
controlPlane: {subnet: services, ip: 100.64.32.10, instanceType: t3.medium}
servers:
  - {name: internet, network: internet, ip: ${INTERNET}}
  - {name: onprem, network: onprem, ip: 198.18.0.10}
  - {name: local, network: vpc, subnet: services, ip: 100.64.32.20}
onprem: {cidr: 198.18.0.0/16}
internet: {cidr: 198.51.100.0/24}
elasticIps:
  - {allocationId: eipalloc-0123456789abcdef0, publicIp: ${EIP}}
felix:
  egressIPSupport: EnabledPerNamespaceOrPerPod
  awsSecondaryIPSupport: EnabledENIPerWorkload
  egressGatewayPollInterval: 1s
  egressGatewayPollFailureCount: 3
sim:
  latencyMs: {fixed: 10, jitter: 10}
  attachLatencyMs: {fixed: 300, jitter: 200}
  detachLatencyMs: {fixed: 200, jitter: 100}
  throttle: true
manifests: [${manifests.map((m) => JSON.stringify(m)).join(', ')}]
`;
}

function redGateway(standby: boolean): string {
  return `apiVersion: operator.tigera.io/v1
kind: EgressGateway
metadata:
  name: egress-gateway-red
  namespace: calico-egress
${standby ? '  annotations:\n    egw.io/elastic-ip-standby: "true"\n' : ''}spec:
  replicas: ${standby ? 2 : 1}
  ipPools:
  - name: egress-red-west-1
  - name: egress-red-west-2
  aws:
    nativeIP: Enabled
    elasticIPs: ["${EIP}"]
  template:
    metadata:
      labels:
        egress-code: red
    spec:
      terminationGracePeriodSeconds: 0
---
apiVersion: v1
kind: Pod
metadata:
  name: red-app
  namespace: app-red
spec:
  containers:
  - name: alpine
    image: alpine
    command: ["/bin/sleep"]
    args: ["infinity"]
`;
}

interface Run {
  code: number;
  out: string;
  err: string;
}

function egw(env: NodeJS.ProcessEnv, args: string[], timeoutMs = 240_000): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code: code ?? -1, out, err });
    });
  });
}

interface Probe {
  t: number;
  end: number;
  seen?: string;
  error?: string;
}

interface GatewayRow {
  pod: string;
  eip: string;
  ready: string;
}

async function redGateways(env: NodeJS.ProcessEnv, lab: (c: string, ...a: string[]) => string[]): Promise<GatewayRow[]> {
  const r = await egw(env, lab('status', '-o', 'json'), 60_000);
  if (r.code !== 0) return [];
  const tables = (JSON.parse(r.out) as { tables: { title: string; rows: string[][] }[] }).tables;
  const rows = tables.find((t) => t.title === 'GATEWAYS')?.rows ?? [];
  return rows.filter((g) => g[1] === 'egress-gateway-red').map((g) => ({ pod: g[0] ?? '', eip: g[5] ?? '', ready: g[7] ?? '' }));
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`eip-failover: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One variant: lab up, ROUNDS kills of the holder, lab down. Times in ms. */
async function variant(root: string, standby: boolean, rows: (string | number)[][]): Promise<number[]> {
  const name = standby ? 'standby' : 'replacement';
  const dir = join(root, name);
  const state = join(dir, 'lab');
  const env: NodeJS.ProcessEnv = { ...process.env, EGW_LAB_DIR: state };
  delete env['EGW_DATASTORE'];
  delete env['KUBECONFIG'];
  const prefix = `bef${process.pid.toString(36)}`;
  const lab = (c: string, ...a: string[]): string[] => ['lab', c, '--prefix', prefix, ...a];
  const manifestsDir = join(dir, 'manifests');
  mkdirSync(manifestsDir, { recursive: true });
  writeFileSync(join(manifestsDir, 'red.yaml'), redGateway(standby));
  const file = join(dir, 'scenario.yaml');
  writeFileSync(
    file,
    scenario([
      join(REPO, 'examples/reference/ip-reservation.yaml'),
      join(REPO, 'examples/reference/ip-pools.yaml'),
      join(REPO, 'examples/lab/manifests/00-namespaces.yaml'),
      join(REPO, 'examples/lab/manifests/10-pod-pool.yaml'),
      join(manifestsDir, 'red.yaml'),
    ]),
  );
  writeFileSync(join(root, 'prober.mjs'), PROBER);
  let prober: ChildProcessWithoutNullStreams | undefined;
  const times: number[] = [];
  try {
    const up = await egw(env, lab('up', '--scenario', file, '--timeout', '180'));
    if (up.code !== 0) throw new Error(`eip-failover: lab up failed:\n${up.out}\n${up.err}`);
    const probes: Probe[] = [];
    prober = spawn(process.execPath, [CLI, ...lab('exec', 'red-app', '-n', 'app-red', '--', process.execPath, join(root, 'prober.mjs'), INTERNET, String(PORT), String(PROBE_EVERY_MS), String(PROBE_TIMEOUT_MS))], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '';
    prober.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('{')) probes.push(JSON.parse(l) as Probe);
    });
    const settled = async (): Promise<GatewayRow | undefined> => {
      const gws = await redGateways(env, lab);
      const holder = gws.find((g) => g.eip === EIP);
      // The standby must really stand by: placed with its ENI, waiting for the Elastic IP.
      const allReady = gws.length === (standby ? 2 : 1) && gws.every((g) => (g === holder ? g.ready === 'true' : g.ready === 'standby'));
      const recent = probes.filter((p) => p.t > Date.now() - 1_000);
      return holder !== undefined && allReady && recent.length > 5 && recent.every((p) => p.seen === EIP) ? holder : undefined;
    };
    for (let i = 1; i <= ROUNDS; i++) {
      const holder = await until(`round ${i}: a settled lab`, 180_000, settled);
      const killedAt = Date.now();
      const del = await egw(env, ['delete', 'pod', holder.pod.split('/').pop() ?? holder.pod, '-n', 'calico-egress'], 60_000);
      if (del.code !== 0) throw new Error(`eip-failover: delete failed: ${del.err}`);
      // Recovered: 3 s of probes that all reached the internet server from the Elastic IP.
      await until(`round ${i}: the Elastic IP back`, 180_000, async () => {
        const after = probes.filter((p) => p.t >= killedAt);
        const lastBad = after.filter((p) => p.seen !== EIP).reduce((m, p) => Math.max(m, p.end), killedAt);
        const good = after.filter((p) => p.t > lastBad && p.seen === EIP);
        return good.length >= 3_000 / PROBE_EVERY_MS && Date.now() - lastBad > 3_000 ? true : undefined;
      });
      const after = probes.filter((p) => p.t >= killedAt);
      const bad = after.filter((p) => p.seen !== EIP);
      const lastBad = bad.reduce((m, p) => Math.max(m, p.end), killedAt);
      const ms = bad.length === 0 ? 0 : lastBad - killedAt;
      times.push(ms);
      rows.push([name, i, holder.pod, bad.length, ms]);
    }
  } finally {
    prober?.kill('SIGKILL');
    await egw(env, lab('down'), 120_000);
  }
  return times;
}

export const eipFailoverBenchmark: Benchmark = {
  name: 'eip-failover',
  description: `the holder of an Elastic IP deleted ${ROUNDS}x: time until the internet sees the Elastic IP again, standby vs replacement pod (lab)`,
  async run(): Promise<Figures> {
    const root = mkdtempSync(join(tmpdir(), 'egw-bench-eip-'));
    const rows: (string | number)[][] = [];
    try {
      const withStandby = await variant(root, true, rows);
      const without = await variant(root, false, rows);
      printTable('Elastic IP holder deleted (grace 0)', ['variant', 'round', 'holder', 'failed probes', 'public IP lost ms'], rows);
      const a = summarize(withStandby);
      const b = summarize(without);
      printTable('time the internet server did not see the Elastic IP', ['variant', 'n', 'min ms', 'p50 ms', 'max ms'], [
        ['standby', a.n, round(a.min), round(a.p50), round(a.max)],
        ['replacement pod', b.n, round(b.min), round(b.p50), round(b.max)],
      ]);
      return {
        rounds: ROUNDS,
        standbyMsP50: round(a.p50),
        standbyMsMax: round(a.max),
        replacementMsP50: round(b.p50),
        replacementMsMax: round(b.max),
        ratioP50: round(a.p50 / Math.max(1, b.p50)),
      };
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
};
