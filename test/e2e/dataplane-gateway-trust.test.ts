import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyResource } from '../../src/api/index.js';
import { tally } from '../../src/linux/topology/echo.js';
import { MINI_GATEWAY_OWNER, MiniCluster, namespace } from './support/mini-cluster.js';
import { runPrefix } from './support/run-prefix.js';

// Who may act as a gateway (docs/security.md, 7), with real processes and packets: an owned gateway and an
// intruder pod with the same labels running a real `egw gateway`; the client's traffic leaves only through
// the owned one; with the EgressGateway deleted it drops, never with the node IP. Prefix runPrefix('dgt').
const SEL = 'egress.projectcalico.org/selector';
const NSSEL = 'egress.projectcalico.org/namespaceSelector';
const RED = "egress-code == 'red'";
const IN_EGW = "projectcalico.org/name == 'egw'";
const OWNER: AnyResource = {
  apiVersion: 'operator.tigera.io/v1',
  kind: 'EgressGateway',
  metadata: { name: MINI_GATEWAY_OWNER, namespace: 'egw' },
  spec: { ipPools: [{ name: 'egress' }] },
};

let c: MiniCluster;
let red1: string, intruder: string, n1: string;

beforeAll(async () => {
  c = await MiniCluster.create({
    prefix: runPrefix('dgt'),
    nodes: ['n1', 'n2', 'n3'],
    pods: [
      { name: 'red1', namespace: 'egw', node: 'n2', ip: '100.64.0.11', labels: { 'egress-code': 'red' }, gateway: true },
      { name: 'intruder', namespace: 'egw', node: 'n3', ip: '100.64.0.66', labels: { 'egress-code': 'red' }, gateway: true, owned: false },
      { name: 'c1', namespace: 'app', node: 'n1', ip: '10.20.1.5' },
    ],
    resources: [namespace('egw'), namespace('app', { [SEL]: RED, [NSSEL]: IN_EGW })],
  });
  red1 = c.pod('red1').ip;
  intruder = c.pod('intruder').ip;
  n1 = c.nodeIp('n1');
  await c.waitForClient('c1', 'routed through the owned gateway', (s) => MiniCluster.gatewaysOf(s).join() === red1);
}, 120_000);

afterAll(async () => {
  await c?.teardown();
}, 60_000);

describe('only EgressGateway-owned pods carry traffic (real packets)', () => {
  it('the intruder, matched by the selector and running egw gateway, never sees a connection', async () => {
    const seen = tally(await c.connect('c1', 'internet', { count: 20 }));
    expect(seen, JSON.stringify(seen)).toEqual({ [red1]: 20 });
    expect(seen[intruder]).toBeUndefined();
  });

  it('the owner deleted: the client fails closed (no-gateway-allowed), nothing leaves with the node IP; re-created: routed', async () => {
    const count = await c.installPacketCounter('internet', n1);
    await c.remove({ kind: 'EgressGateway', namespace: 'egw', name: MINI_GATEWAY_OWNER });
    try {
      const s = await c.waitForClient('c1', 'fail-closed', (x) => x?.state === 'fail-closed');
      expect(s?.rules[0]).toMatchObject({ action: 'unreachable', reason: 'no-gateway-allowed' });
      const before = await count();
      const results = await c.connect('c1', 'internet', { count: 5, timeoutMs: 500 });
      expect(results.every((r) => r.error !== undefined), JSON.stringify(results)).toBe(true);
      expect(await count()).toBe(before);
    } finally {
      await c.apply(OWNER);
    }
    await c.waitForClient('c1', 'routed again', (x) => MiniCluster.gatewaysOf(x).join() === red1);
    expect(tally(await c.connect('c1', 'internet', { count: 5 }))).toEqual({ [red1]: 5 });
  });
});
