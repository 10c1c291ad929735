import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoFrom, startEchoServer, tally } from '../../src/linux/topology/echo.js';
import { MiniCluster, namespace, policy } from './support/mini-cluster.js';
import { runPrefix } from './support/run-prefix.js';

// Real processes, real packets: `egw agent` on three nodes, `egw gateway` in three gateway pods, client
// pods on n1, echo servers behind the "VPC" router. Prefix "deg<pid>" (unique per run).
const SEL = 'egress.projectcalico.org/selector';
const NSSEL = 'egress.projectcalico.org/namespaceSelector';
const POLICY = 'egress.projectcalico.org/egressGatewayPolicy';
const RED = "egress-code == 'red'";
const BLUE = "egress-code == 'blue'";
const IN_EGW = "projectcalico.org/name == 'egw'";
const PROBE_ENV = { ICMP_PROBE_IPS: '192.0.2.10', ICMP_PROBE_INTERVAL: '200ms', ICMP_PROBE_TIMEOUT: '1s' };

let c: MiniCluster;
let red1: string, red2: string, blue1: string, n1: string;

beforeAll(async () => {
  c = await MiniCluster.create({
    prefix: runPrefix('deg'),
    nodes: ['n1', 'n2', 'n3'],
    agentArgs: ['--metrics-listen', '127.0.0.1:9091'],
    pods: [
      { name: 'red1', namespace: 'egw', node: 'n2', ip: '100.64.0.11', labels: { 'egress-code': 'red' }, gateway: true, env: PROBE_ENV },
      { name: 'red2', namespace: 'egw', node: 'n3', ip: '100.64.0.12', labels: { 'egress-code': 'red' }, gateway: true, env: PROBE_ENV },
      { name: 'blue1', namespace: 'egw', node: 'n3', ip: '100.64.0.21', labels: { 'egress-code': 'blue' }, gateway: true },
      { name: 'c1', namespace: 'app', node: 'n1', ip: '10.20.1.5' },
      { name: 'c2', namespace: 'plain', node: 'n1', ip: '10.20.1.6' },
      { name: 'c3', namespace: 'pol', node: 'n1', ip: '10.20.1.7' },
      { name: 'c4', namespace: 'missing', node: 'n1', ip: '10.20.1.8' },
    ],
    resources: [
      namespace('egw'),
      namespace('app', { [SEL]: RED, [NSSEL]: IN_EGW }),
      namespace('plain'),
      namespace('pol', { [POLICY]: 'egw-policy' }),
      namespace('missing', { [POLICY]: 'does-not-exist' }),
      // The reference document's shape: a local range the normal way, one range through blue, the rest through red.
      policy('egw-policy', [
        { description: 'local', destination: { cidr: '192.0.2.0/24' } },
        { description: 'on-premises through blue', destination: { cidr: '198.51.100.0/24' }, gateway: { selector: BLUE, namespaceSelector: IN_EGW } },
        { description: 'the rest through red', gateway: { selector: RED, namespaceSelector: IN_EGW } },
      ]),
    ],
  });
  red1 = c.pod('red1').ip;
  red2 = c.pod('red2').ip;
  blue1 = c.pod('blue1').ip;
  n1 = c.nodeIp('n1');
  await c.waitForClient('c1', 'routed through both red gateways', (s) => MiniCluster.gatewaysOf(s).join() === [red1, red2].join());
}, 120_000);

afterAll(async () => {
  await c?.teardown();
}, 60_000);

describe('egw agent + egw gateway, real packets', () => {
  it('a client in an annotated namespace leaves with a gateway IP; one without annotation with its node IP', async () => {
    const seen = tally(await c.connect('c1', 'internet', { count: 10 }));
    expect(Object.keys(seen).every((ip) => ip === red1 || ip === red2), JSON.stringify(seen)).toBe(true);
    expect(tally(await c.connect('c2', 'internet', { count: 5 }))).toEqual({ [n1]: 5 });
    const status = await c.clientStatus('c1');
    expect(status).toMatchObject({ state: 'routed', source: 'namespace', method: 'selector' });
    expect(status?.table).toBeGreaterThan(0);
    expect((await c.nodeStatus('n1'))?.dataplane.ok).toBe(true);
  });

  it('traffic to the cluster (here: another node) never goes through a gateway', async () => {
    const server = await startEchoServer(c.topo, 'n2', { port: 8090 });
    try {
      // Thrown from c1's table to the main one: n1 masquerades it (natOutgoing exempts only the pools).
      expect(tally(await echoFrom(c.topo, 'c1', c.nodeIp('n2'), 8090, { count: 3 }))).toEqual({ [n1]: 3 });
    } finally {
      await server.stop();
    }
  });

  it('the reference policy shape: each destination through the right gateways, by the source each server sees', async () => {
    await c.waitForClient('c3', 'policy routed', (s) => s?.state === 'routed');
    const internet = tally(await c.connect('c3', 'internet', { count: 10 }));
    expect(Object.keys(internet).every((ip) => ip === red1 || ip === red2), JSON.stringify(internet)).toBe(true);
    expect(tally(await c.connect('c3', 'onprem', { count: 5 }))).toEqual({ [blue1]: 5 });
    expect(tally(await c.connect('c3', 'local', { count: 5 }))).toEqual({ [n1]: 5 });
    const rules = (await c.clientStatus('c3'))?.rules.map((r) => [r.destination, r.action, r.gateways.map((g) => g.ip).join(',')]);
    expect(rules).toEqual(
      expect.arrayContaining([
        ['192.0.2.0/24', 'throw', ''],
        ['198.51.100.0/24', 'gateways', blue1],
        ['0.0.0.0/0', 'gateways', `${red1},${red2}`],
      ]),
    );
  });

  it('two gateways: 200 connections spread over both, each at least 30%', async () => {
    const t = tally(await c.connect('c1', 'internet', { count: 200, concurrency: 40 }));
    expect(Object.keys(t).sort()).toEqual([red1, red2].sort());
    expect(t[red1]!).toBeGreaterThanOrEqual(60);
    expect(t[red2]!).toBeGreaterThanOrEqual(60);
  });

  it('a policy that does not exist fails closed: connections fail and nothing reaches the server with the node IP', async () => {
    const s = await c.waitForClient('c4', 'fail-closed', (x) => x?.state === 'fail-closed');
    expect(s?.rules).toEqual([expect.objectContaining({ destination: '0.0.0.0/0', action: 'unreachable', reason: 'policy-not-found' })]);
    const count = await c.installPacketCounter('internet', n1);
    const before = await count();
    const results = await c.connect('c4', 'internet', { count: 5, timeoutMs: 500 });
    expect(results.every((r) => r.error !== undefined), JSON.stringify(results)).toBe(true);
    expect(await count()).toBe(before);
  });

  it('all gateways unready in the datastore: fail closed; ready again: routed', async () => {
    const count = await c.installPacketCounter('internet', n1);
    await c.setReady('red1', false);
    await c.setReady('red2', false);
    try {
      const s = await c.waitForClient('c1', 'fail-closed', (x) => x?.state === 'fail-closed');
      expect(s?.rules[0]).toMatchObject({ action: 'unreachable', reason: 'no-gateway-ready' });
      const before = await count();
      const results = await c.connect('c1', 'internet', { count: 5, timeoutMs: 500 });
      expect(results.every((r) => r.error !== undefined), JSON.stringify(results)).toBe(true);
      expect(await count()).toBe(before);
    } finally {
      await c.setReady('red1', true);
      await c.setReady('red2', true);
    }
    await c.waitForClient('c1', 'routed again', (x) => x?.state === 'routed');
    expect(Object.keys(tally(await c.connect('c1', 'internet', { count: 5 }))).every((ip) => ip === red1 || ip === red2)).toBe(true);
  }, 90_000);

  it("all gateways failing their own ICMP probes: n1's polls see /readiness 503 and fail closed; probes pass again: routed", async () => {
    // Drop the gateways' pings at the probe target: each red gateway goes not-ready after 1 s of silence.
    await c.topo.exec('local', ['nft', '-f', '-'], { input: 'table ip block {\n chain in { type filter hook input priority 0; policy accept; icmp type echo-request drop; }\n}\n' });
    try {
      await c.waitForClient('c1', 'fail-closed by polls', (x) => x?.state === 'fail-closed', 20_000);
      expect((await c.readiness('red1')).status).toBe(503);
      const st = await c.nodeStatus('n1');
      expect(st?.gateways.filter((g) => g.ip === red1 || g.ip === red2).map((g) => g.health)).toEqual(['down', 'down']);
      const count = await c.installPacketCounter('internet', n1);
      const results = await c.connect('c1', 'internet', { count: 3, timeoutMs: 500 });
      expect(results.every((r) => r.error !== undefined)).toBe(true);
      expect(await count()).toBe(0);
    } finally {
      await c.topo.exec('local', ['nft', 'delete', 'table', 'ip', 'block'], { allowFailure: true });
    }
    await c.waitForClient('c1', 'routed again', (x) => MiniCluster.gatewaysOf(x).join() === [red1, red2].join(), 20_000);
    expect(Object.keys(tally(await c.connect('c1', 'internet', { count: 5 }))).every((ip) => ip === red1 || ip === red2)).toBe(true);
  }, 90_000);

  it("the agent's metrics: remote gateways by status, polls, applies", async () => {
    // The gauges follow the polls: after the previous test's recovery, wait until they show all three up.
    const r = await c.waitFor('metrics with all three remote gateways up', async () => {
      const m = await c.httpGet('n1', 'http://127.0.0.1:9091/metrics');
      return m.status === 200 && /^egw_egress_gateway_remote_polls\{status="up"\} 3$/m.test(m.body ?? '') ? m : undefined;
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^egw_egress_gateway_remote_polls\{status="total"\} 3$/m);
    expect(r.body).toMatch(/^egw_egress_gateway_remote_polls\{status="up"\} 3$/m);
    expect(r.body).toMatch(/^egw_agent_gateway_polls_total\{outcome="up"\} \d+$/m);
    expect(r.body).toMatch(/^egw_agent_dataplane_applies_total\{result="changed"\} \d+$/m);
    expect(r.body).toMatch(/^egw_agent_clients\{state="routed"\} [23]$/m);
  });

  it('egressIPSupport Disabled: the annotated namespace leaves with the node IP; enabled again: with a gateway IP', async () => {
    await c.setFelix({ egressIPSupport: 'Disabled' });
    try {
      await c.waitForClient('c1', 'no longer a client', (x) => x === undefined);
      await expect.poll(async () => tally(await c.connect('c1', 'internet', { count: 3 })), { timeout: 10_000 }).toEqual({ [n1]: 3 });
    } finally {
      await c.setFelix({});
    }
    await c.waitForClient('c1', 'routed again', (x) => x?.state === 'routed');
    expect(Object.keys(tally(await c.connect('c1', 'internet', { count: 5 }))).every((ip) => ip === red1 || ip === red2)).toBe(true);
  }, 90_000);
});
