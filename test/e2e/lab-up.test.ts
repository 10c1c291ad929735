import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/dist.js';
import { egwRunner, prefixedNamespaces, processesNaming, rootLinks, verifyTable } from './support/lab-cli.js';
import { ExecShell } from '../../src/platform/shell.js';
import { sweepWorld } from '../../src/lab/world.js';
import { runPrefix, sweepDeadRuns } from './support/run-prefix.js';
import { nodeStatusKey, parseNodeStatus } from '../../src/agent/records.js';
import { openDatastore } from '../../src/datastore/open.js';
import { waitFor } from './support/mini-cluster.js';

// The lab end to end, with the real CLI: up → verify → status → a policy change → verify → an agent
// killed and restarted under long-lived flows → red scaled to 0 and back → down, then no leftovers.
// Namespaces prefixed "lup<pid>" (unique per run, so a second suite beside this one never meets them);
// state in a temp dir (EGW_LAB_DIR), never the user's lab.
const PREFIX = runPrefix('lup');
const stateRoot = mkdtempSync(join(tmpdir(), 'egw-lab-e2e-'));
const STATE = join(stateRoot, 'lab');
const env = { ...process.env, EGW_LAB_DIR: STATE };

const egw = egwRunner(env);
const lab = (command: string, ...args: string[]): string[] => ['lab', command, '--prefix', PREFIX, ...args];
const namespaces = (): Promise<string[]> => prefixedNamespaces(PREFIX);
const labProcesses = (): Promise<string[]> => processesNaming(STATE);

/**
 * Long-lived flows from inside a pod: each connection says hello at once (the echo server keeps talkers)
 * and answers `check` on stdin with how many are still alive and echoing.
 */
const FLOWS_SOURCE = `import net from 'node:net';
import readline from 'node:readline';
const [host, port, count] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const flows = [];
for (let i = 0; i < count; i++) {
  await new Promise((resolve) => {
    const s = net.connect({ host, port });
    const f = { s, buf: '', broken: false, seen: '' };
    s.on('connect', () => s.write('hello\\n'));
    s.on('data', (d) => { f.buf += d; if (!f.seen) { const m = /Connection from (\\S+)/.exec(f.buf); if (m) { f.seen = m[1]; resolve(); } } });
    s.on('error', () => { f.broken = true; resolve(); });
    s.on('close', () => { f.broken = true; resolve(); });
    flows.push(f);
  });
}
console.log(JSON.stringify({ ready: flows.filter((f) => !f.broken).length, seen: [...new Set(flows.map((f) => f.seen))] }));
let n = 0;
readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line === 'quit') { for (const f of flows) f.s.destroy(); process.exit(0); }
  const probe = 'p' + (++n) + '\\n';
  for (const f of flows) if (!f.broken) { f.buf = ''; f.s.write(probe); }
  const deadline = Date.now() + 15000; // generous: ends as soon as every live flow has echoed
  while (Date.now() < deadline && flows.some((f) => !f.broken && !f.buf.includes(probe))) await new Promise((r) => setTimeout(r, 20));
  console.log(JSON.stringify({ alive: flows.filter((f) => !f.broken && f.buf.includes(probe)).length }));
});
`;

let linksBefore = '';

beforeAll(async () => {
  linksBefore = await rootLinks();
  await egw(lab('down'));
  await sweepDeadRuns(PREFIX, (dead) => sweepWorld(new ExecShell(), dead));
}, 60_000);

afterAll(async () => {
  await egw(lab('down'));
  rmSync(stateRoot, { recursive: true, force: true });
}, 60_000);

describe('egw lab, end to end', () => {
  it('up builds the reference scenario and waits until every gateway is ready and every client routed', async () => {
    const r = await egw(lab('up'));
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(r.out).toMatch(/lab reference-eni is up in [\d.]+ s/);
    expect(r.out).toMatch(/gateways 4\/4 ready/);
    expect(r.out).toMatch(/clients 3\/3 routed/);
    expect(readFileSync(join(STATE, 'datastore'), 'utf8').trim()).toBe(join(STATE, 'egw.db'));
  }, 240_000);

  it('verify: every pair OK — red clients from a red Elastic IP, on-prem through blue, local with the node IP', async () => {
    const r = await egw(lab('verify', '--count', '3'));
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    const t = verifyTable(r.out);
    expect(t.size).toBe(9);
    expect([...t.values()].every((x) => x.result === 'OK')).toBe(true);
    expect(t.get('app-red/red-app → internet')!.seen).toMatch(/^203\.0\.113\.[78](,203\.0\.113\.[78])?$/);
    expect(t.get('my-namespace/my-netcat-pod → onprem')!.seen).toMatch(/^100\.64\.[04]\.(8|9|10|11)/);
    expect(t.get('my-namespace/my-netcat-pod → local')!.seen).toMatch(/^100\.64\.(16|20)\.1[01]$/);
    expect(t.get('my-namespace/my-netcat-pod → local')!.expected).toMatch(/node IP/);
  }, 60_000);

  it('egw get/apply talk to the lab\'s datastore; status shows ENIs and capacity from the instance-type table', async () => {
    const pods = await egw(['get', 'pods', '-A']);
    expect(pods.code).toBe(0);
    expect(pods.out).toContain('my-netcat-pod');
    const r = await egw(lab('status', '-o', 'json'));
    expect(r.code, r.err).toBe(0);
    const tables = (JSON.parse(r.out) as { tables: { title: string; rows: string[][] }[] }).tables;
    const nodes = tables.find((t) => t.title === 'NODES')!.rows;
    const gateways = tables.find((t) => t.title === 'GATEWAYS')!.rows;
    for (const n of nodes) {
      const onNode = gateways.filter((g) => g[2] === n[0]).length;
      // t3.large: 3 ENIs, 12 addresses each → ENI-per-workload capacity 3 − 1 = 2; one ENI per gateway.
      expect(n[4]).toBe(`${1 + onNode}/3`);
      expect(n[5]).toBe(`${onNode}/2`);
    }
    expect(gateways.filter((g) => g[1] === 'egress-gateway-red').map((g) => g[5]).sort()).toEqual(['203.0.113.7', '203.0.113.8']);
  }, 60_000);

  it('a policy change shows in verify', async () => {
    const policy = readFileSync(join(REPO, 'examples/lab/manifests/30-egress-gateway-policy.yaml'), 'utf8').replace("selector: \"egress-code == 'blue'\"", "selector: \"egress-code == 'red'\"");
    const file = join(stateRoot, 'policy.yaml');
    writeFileSync(file, policy);
    expect((await egw(['apply', '-f', file])).code).toBe(0);
    expect((await egw(lab('up'))).code).toBe(0);
    const r = await egw(lab('verify'));
    expect(r.code, r.out).toBe(0);
    const onprem = verifyTable(r.out).get('my-namespace/my-netcat-pod → onprem')!;
    expect(onprem.expected).toMatch(/egress-gateway-red pool/);
    expect(onprem.seen).toMatch(/^100\.64\.[04]\.[4-7]/);
    expect((await egw(['apply', '-f', join(REPO, 'examples/lab/manifests/30-egress-gateway-policy.yaml')])).code).toBe(0);
  }, 120_000);

  it('killing a node\'s agent and starting it again interrupts nothing (long-lived flows survive)', async () => {
    const record = JSON.parse(readFileSync(join(STATE, 'lab.json'), 'utf8')) as { prefix: string };
    expect(record.prefix).toBe(PREFIX);
    const status = JSON.parse((await egw(lab('status', '-o', 'json'))).out) as { tables: { title: string; rows: string[][] }[] };
    const client = status.tables.find((t) => t.title === 'CLIENTS')!.rows.find((r) => r[0] === 'app-red/red-app')!;
    const node = client[1]!;
    const netns = (await namespaces()).find((n) => n.startsWith(`${PREFIX}-red-app-`))!;
    writeFileSync(join(stateRoot, 'flows.mjs'), FLOWS_SOURCE);
    const flows: ChildProcessWithoutNullStreams = spawn('ip', ['netns', 'exec', netns, process.execPath, join(stateRoot, 'flows.mjs'), '198.18.0.10', '8089', '20']);
    const lines: string[] = [];
    flows.stdout.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter((l) => l !== '')));
    const next = async (): Promise<Record<string, unknown>> => {
      const start = lines.length;
      await waitFor('the next line of the flows program', () => lines.length > start, 60_000).catch(() => undefined);
      return JSON.parse(lines[start] ?? '{}') as Record<string, unknown>;
    };
    try {
      expect(await next()).toMatchObject({ ready: 20 });
      const agent = JSON.parse(readFileSync(join(STATE, 'run', `agent-${node}.json`), 'utf8')) as { pid: number };
      process.kill(agent.pid, 'SIGKILL');
      flows.stdin.write('check\n');
      expect(await next()).toEqual({ alive: 20 });
      const up = await egw(lab('up'));
      expect(up.code, up.out).toBe(0);
      expect(up.out).toContain('started 1 processes: agent');
      const restarted = JSON.parse(readFileSync(join(STATE, 'run', `agent-${node}.json`), 'utf8')) as { pid: number };
      expect(restarted.pid).not.toBe(agent.pid);
      // Wait until the new agent has read the kernel back and converged (it must change nothing): its own
      // status record, with its first apply done.
      const store = await openDatastore(join(STATE, 'egw.db'));
      try {
        await waitFor(`the restarted agent on ${node} reporting its first apply`, async () => {
          const st = parseNodeStatus(await store.get(nodeStatusKey(node)));
          return st?.agent.pid === restarted.pid && st.dataplane.ok;
        }, 60_000);
      } finally {
        await store.close();
      }
      flows.stdin.write('check\n');
      expect(await next()).toEqual({ alive: 20 });
    } finally {
      flows.stdin.write('quit\n');
      flows.kill();
    }
  }, 120_000);

  it('red scaled to 0 fails its clients closed (verify says so); scaled back restores them', async () => {
    const red = readFileSync(join(REPO, 'examples/lab/manifests/20-egress-gateway-red.yaml'), 'utf8');
    const zero = join(stateRoot, 'red0.yaml');
    writeFileSync(zero, red.replace('replicas: 2', 'replicas: 0'));
    expect((await egw(['apply', '-f', zero])).code).toBe(0);
    expect((await egw(lab('up'))).code).toBe(0);
    let r = await egw(lab('verify'));
    expect(r.code, r.out).toBe(0);
    let t = verifyTable(r.out);
    expect(t.get('app-red/red-app → internet')!.expected).toMatch(/fail closed/);
    expect(t.get('app-red/red-app → internet')!.result).toBe('OK');
    expect(t.get('app-red/red-app → internet')!.seen).toMatch(/^\(E[A-Z]+\)$/);
    expect(t.get('my-namespace/my-netcat-pod → internet')!.expected).toMatch(/fail closed/);
    expect(t.get('my-namespace/my-netcat-pod → onprem')!.expected).toMatch(/egress-gateway-blue pool/);
    expect((await egw(['apply', '-f', join(REPO, 'examples/lab/manifests/20-egress-gateway-red.yaml')])).code).toBe(0);
    expect((await egw(lab('up'))).code).toBe(0);
    r = await egw(lab('verify'));
    expect(r.code, r.out).toBe(0);
    t = verifyTable(r.out);
    expect(t.get('app-red/red-app → internet')!.seen).toMatch(/^203\.0\.113\.[78]$/);
  }, 180_000);

  it('down leaves no namespace, link, process or file; a second down is fine', async () => {
    const r = await egw(lab('down'));
    expect(r.code, r.err).toBe(0);
    expect(await namespaces()).toEqual([]);
    expect(await labProcesses()).toEqual([]);
    expect(existsSync(STATE)).toBe(false);
    expect(await rootLinks()).toBe(linksBefore);
    expect((await egw(lab('down'))).code).toBe(0);
    // Without a lab, egw falls back to its default datastore again.
    expect((await egw(lab('status'))).err).toMatch(/no lab in/);
  }, 60_000);
});
