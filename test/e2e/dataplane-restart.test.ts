import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRules } from '../../src/linux/iproute/parse.js';
import { ExecShell } from '../../src/platform/shell.js';
import { MiniCluster, namespace, waitFor } from './support/mini-cluster.js';
import { runPrefix } from './support/run-prefix.js';

// Restarts with real processes and packets: the agents are stopped (SIGTERM) and killed (SIGKILL) and
// started again while connections run; foreign kernel state planted before egw ever ran must come
// through untouched, and teardown must leave nothing. Prefix "drs<pid>" (unique per run).
const SEL = 'egress.projectcalico.org/selector';
const NSSEL = 'egress.projectcalico.org/namespaceSelector';

let c: MiniCluster;
let foreignBefore: string;

/** Everything in n1's namespace that is not egw's, as comparable text. */
async function foreignSnapshot(): Promise<string> {
  const run = async (argv: string[]): Promise<string> => (await c.topo.exec('n1', argv)).stdout;
  const rules = (await run(['ip', '-4', 'rule', 'show'])).split('\n').filter((l) => !l.includes('proto 233'));
  const routes = (await run(['ip', '-4', 'route', 'show', 'table', 'all'])).split('\n').filter((l) => !l.includes('proto 233') && !l.includes('egw.vxlan'));
  const nexthops = (await run(['ip', 'nexthop', 'show'])).split('\n').filter((l) => !l.includes('proto 233'));
  const tables = (await run(['nft', 'list', 'tables'])).split('\n').filter((l) => l !== 'table ip egw');
  const filter = (await run(['nft', 'list', 'table', 'inet', 'filter'])).replace(/packets \d+ bytes \d+/g, '');
  return [...rules, '--', ...routes, '--', ...nexthops, '--', ...tables, '--', filter].join('\n');
}

/** egw's rules on a node. */
async function ourRules(node: string): Promise<{ from?: string; iif?: string; table: number }[]> {
  return parseRules((await c.topo.exec(node, ['ip', '-j', '-N', 'rule', 'show'])).stdout).filter((r) => r.protocol === 233) as { from?: string; iif?: string; table: number }[];
}

beforeAll(async () => {
  c = await MiniCluster.create({
    prefix: runPrefix('drs'),
    nodes: ['n1', 'n2', 'n3'],
    pods: [
      { name: 'g1', namespace: 'egw', node: 'n2', ip: '100.64.0.41', labels: { 'egress-code': 'red' }, gateway: true },
      { name: 'g2', namespace: 'egw', node: 'n3', ip: '100.64.0.42', labels: { 'egress-code': 'red' }, gateway: true },
      { name: 'c1', namespace: 'app', node: 'n1', ip: '10.20.1.5' },
      { name: 'c2', namespace: 'app', node: 'n1', ip: '10.20.1.6' },
    ],
    resources: [namespace('egw'), namespace('app', { [SEL]: "egress-code == 'red'", [NSSEL]: "projectcalico.org/name == 'egw'" })],
    start: false,
  });
  // Foreign state planted before egw ever runs: rules at our priority, routes in tables of our range, a
  // nexthop in our id range, other nft tables.
  for (const argv of [
    ['ip', 'rule', 'add', 'priority', '100', 'from', '10.20.1.99', 'lookup', '7'],
    ['ip', 'rule', 'add', 'priority', '100', 'from', '10.20.1.98', 'lookup', '1', 'protocol', 'static'],
    ['ip', 'route', 'add', '192.0.2.0/24', 'via', '10.10.1.1', 'table', '2', 'proto', 'static'],
    ['ip', 'route', 'add', '198.18.0.0/24', 'via', '10.10.1.1', 'table', '7'],
    ['ip', 'nexthop', 'add', 'id', String(0x65670000), 'via', '10.10.1.1', 'dev', 'eth0'],
  ]) {
    await c.topo.exec('n1', argv);
  }
  await c.topo.exec('n1', ['nft', '-f', '-'], {
    input: 'table inet filter {\n chain input { type filter hook input priority 0; policy accept; counter; }\n}\ntable ip other {\n set s { type ipv4_addr; elements = { 10.1.2.3 } }\n}\n',
  });
  foreignBefore = await foreignSnapshot();
  await c.startGateways();
  await c.startAgents();
  for (const p of ['c1', 'c2']) await c.waitForClient(p, 'routed through both', (s) => MiniCluster.gatewaysOf(s).length === 2);
}, 120_000);

afterAll(async () => {
  await c?.teardown();
}, 60_000);

describe('agent restarts', () => {
  it('stopping, killing and restarting every agent interrupts no connection and changes nothing in the kernel', async () => {
    const rulesBefore = await ourRules('n1');
    expect(rulesBefore.map((r) => r.from).sort()).toEqual(['10.20.1.5/32', '10.20.1.6/32']);
    const flows = await c.flows('c1', 'internet', 40);
    const prober = await c.prober('c2', 'internet', 20, 1000);
    try {
      for (const [node, how] of [['n1', 'stop'], ['n2', 'stop'], ['n3', 'kill'], ['n1', 'kill']] as const) {
        if (how === 'stop') expect(await c.stopAgent(node), `exit code of the agent on ${node} after SIGTERM`).toBe(0);
        else await c.killAgent(node);
        await new Promise((r) => setTimeout(r, 300));
        const p = c.startAgent(node);
        const st = await waitFor(`restarted agent on ${node}`, async () => {
          const s = await c.nodeStatus(node);
          return s?.agent.pid === p.pid ? s : undefined;
        }, 30_000);
        // The restarted agent found everything as it wanted it: its first apply changed nothing.
        expect(st.dataplane, `${node} after ${how}`).toMatchObject({ ok: true, changes: 0 });
      }
      const results = await prober.stop();
      expect(results.length).toBeGreaterThan(50);
      expect(results.filter((r) => r.error !== undefined), 'connections that failed during the restarts').toEqual([]);
      expect((await flows.check()).filter((r) => !r.ok), 'long-lived connections broken by the restarts').toEqual([]);
    } finally {
      await flows.close();
    }
    // No duplicate rules: one per client, as before; the gateway nodes' return rules likewise.
    expect(await ourRules('n1')).toEqual(rulesBefore);
    for (const n of ['n2', 'n3']) expect((await ourRules(n)).length).toBe(1);
    expect(await foreignSnapshot()).toBe(foreignBefore);
  }, 180_000);

  it('a gateway stopped with SIGTERM exits 0 and removes what it made in its namespace', async () => {
    expect(await c.stopGateway('g2')).toBe(0);
    expect((await c.topo.exec('g2', ['ip', 'link', 'show', 'egw.vxlan'], { allowFailure: true })).exitCode).not.toBe(0);
    expect((await c.topo.exec('g2', ['nft', 'list', 'tables'])).stdout).not.toContain('egw');
  });

  it('teardown leaves no namespace, process or file behind', async () => {
    const tmp = c.topo.tmpDir;
    const pids = [...c.agents.values(), ...c.gateways.values()].map((p) => p.pid);
    expect(existsSync(`${tmp}/egw.db`)).toBe(true);
    await c.teardown();
    const shell = new ExecShell();
    expect((await shell.run(['ip', 'netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`${runPrefix('drs')}-`))).toEqual([]);
    expect(existsSync(tmp)).toBe(false);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `process ${pid}`).toBe(false);
  });
});
