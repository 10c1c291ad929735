import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsFabric } from '../../../src/agent/fabric/aws-fabric.js';
import { ShellEniRouting } from '../../../src/agent/fabric/ports.js';
import { NODE_AWS_CONDITION, POD_AWS_CONDITION } from '../../../src/agent/fabric/status.js';
import type { Condition } from '../../../src/agent/fabric/status.js';
import { SdkImds } from '../../../src/aws/imds.js';
import type { SdkEc2 } from '../../../src/aws/sdk-ec2.js';
import { getResource } from '../../../src/datastore/resources.js';
import { NetnsShell } from '../../../src/linux/netns.js';
import { ExecShell } from '../../../src/platform/shell.js';
import { startAwsSim } from '../../../src/sim/aws/server.js';
import type { AwsSimHandle } from '../../../src/sim/aws/server.js';
import { EGRESS_A, fabricWorld, NODE_A1, sdkFor } from '../../aws/helpers.js';
import { eniLinkName as ifname, NamespaceFabric } from './namespace-fabric.js';
import type { TestStore } from './store.js';
import { awsSubnet, eventually, felix, gatewayPod, ipPool, node, openTestStore, put, remove } from './store.js';

// Issue 11, item 4: an EC2/IMDS outage never takes the gateways' data path down. A throwaway namespace
// (never connected to the host) plays the node; the emulator's fabric driver plugs a link with the ENI's
// MAC into it. Packets from the gateway IP are sent for real and counted on the ENI's link. Then the
// emulator (EC2 and IMDS) is stopped: the ENI routing must stay and keep carrying packets, the status
// must say "stale"; a scale-down and a scale-up during the outage converge once it is back, with no
// leaked ENI.
const NS = `egwout${process.pid}`;
const host = new ExecShell();
const inNs = new NetnsShell(host, NS);

describe('AwsFabric through an EC2 and IMDS outage, real packets', () => {
  let dir: string;
  let sim: AwsSimHandle | undefined;
  let ec2: SdkEc2 | undefined;
  let t: TestStore;
  let fabric: AwsFabric | undefined;
  let ports: { api: number; imds: number };

  const start = async (listen = '127.0.0.1:0', imdsListen = '127.0.0.1:0'): Promise<AwsSimHandle> =>
    startAwsSim({ world: fabricWorld(), listen, stateFile: join(dir, 'sim-state.json'), fabric: new NamespaceFabric(inNs), imdsBindings: [{ listen: imdsListen, instanceId: NODE_A1 }] });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'egw-outage-'));
    await host.run(['ip', 'netns', 'del', NS], { allowFailure: true });
    await host.run(['ip', 'netns', 'add', NS]);
    await inNs.run(['ip', 'link', 'set', 'lo', 'up']);
    sim = await start();
    ports = { api: Number(new URL(sim.url).port), imds: Number(new URL(sim.imdsBindingUrls[NODE_A1]!).port) };
    ec2 = sdkFor(sim);
    t = await openTestStore();
  });
  afterAll(async () => {
    await fabric?.stop();
    ec2?.destroy();
    await sim?.close();
    await t?.cleanup();
    await host.run(['ip', 'netns', 'del', NS], { allowFailure: true });
    rmSync(dir, { recursive: true, force: true });
  });

  const podCondition = async (name: string): Promise<Condition | undefined> => {
    const p = await getResource(t.store, 'Pod', name, 'default');
    return ((p?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === POD_AWS_CONDITION);
  };
  const nodeState = async (): Promise<{ condition: Condition | undefined; capacity: unknown }> => {
    const n = await getResource(t.store, 'Node', 'node-a1');
    const status = n?.status as { conditions?: Condition[]; capacity?: Record<string, unknown> } | undefined;
    return { condition: (status?.conditions ?? []).find((c) => c.type === NODE_AWS_CONDITION), capacity: status?.capacity?.['projectcalico.org/aws-secondary-ipv4'] };
  };
  const ruleFor = async (ip: string): Promise<string | undefined> => (await inNs.run(['ip', '-4', 'rule', 'show'])).stdout.split('\n').find((l) => l.includes(`from ${ip} `));
  const txPackets = async (dev: string): Promise<number> => {
    const r = await inNs.run(['ip', '-json', '-s', 'link', 'show', 'dev', dev]);
    return (JSON.parse(r.stdout) as { stats64: { tx: { packets: number } } }[])[0]!.stats64.tx.packets;
  };
  /** Pings an outside address from `src` (the gateway's IP, on lo) and returns how many left through `dev`. */
  const sendFrom = async (src: string, dev: string): Promise<number> => {
    const before = await txPackets(dev);
    await inNs.run(['ping', '-n', '-q', '-c', '3', '-i', '0.2', '-W', '1', '-I', src, '203.0.113.9'], { allowFailure: true, timeoutMs: 10_000 });
    return (await txPackets(dev)) - before;
  };
  /** The ENI holding `ip` in the emulator, as the fabric made it. */
  const eniOf = (s: AwsSimHandle, ip: string) => Object.values(s.state().state.enis).find((e) => e.primaryOf === undefined && e.privateIps.includes(ip));
  const prepareDev = async (s: AwsSimHandle, ip: string): Promise<string> => {
    const dev = ifname(eniOf(s, ip)!.macAddress);
    await inNs.run(['ip', 'addr', 'replace', `${ip}/32`, 'dev', 'lo']);
    // The subnet router answers ARP on EC2; here a permanent entry stands in for it.
    await inNs.run(['ip', 'neigh', 'replace', '100.64.0.1', 'lladdr', '02:00:00:00:00:01', 'dev', dev, 'nud', 'permanent']);
    return dev;
  };

  it('keeps the ENI routing and the traffic through a stopped EC2/IMDS, says it is stale, and converges afterwards with nothing leaked', async () => {
    await put(
      t.store,
      node('node-a1', 'us-west-2a'),
      awsSubnet(EGRESS_A, '100.64.0.0/22', 'us-west-2a'),
      ipPool('egress-red-west-1', '100.64.0.4/30', EGRESS_A),
      felix('default', { awsSecondaryIPSupport: 'EnabledENIPerWorkload' }),
      gatewayPod('red-1', 'node-a1', '100.64.0.5'),
    );
    fabric = new AwsFabric(
      { store: t.store, ec2: ec2!, imds: new SdkImds({ endpoint: sim!.imdsBindingUrls[NODE_A1]! }), linux: new ShellEniRouting(inNs) },
      { nodeName: 'node-a1', cluster: 'outage-test', gcCooldownMs: 500, retryBaseMs: 200, retryMaxMs: 1000, resyncIntervalMs: 1000 },
    );
    fabric.start();
    await eventually(async () => ((await podCondition('red-1'))?.status === 'True' ? true : undefined), 20_000, 'red-1 ready');
    await eventually(async () => ruleFor('100.64.0.5'), 20_000, 'rule from red-1');
    const dev = await prepareDev(sim!, '100.64.0.5');
    expect(await sendFrom('100.64.0.5', dev), 'packets through the ENI before the outage').toBeGreaterThanOrEqual(3);
    const capacity = (await nodeState()).capacity;
    expect(Number(capacity)).toBeGreaterThan(0);

    // The outage: the emulator (EC2 API and IMDS) stops.
    await sim!.close();
    sim = undefined;
    const passes = fabric.status().passes;
    fabric.poke();
    // Several failed passes later, the data path is still there and still carries packets.
    await eventually(async () => (fabric!.status().passes >= passes + 3 ? true : undefined), 60_000, 'three passes during the outage');
    expect(await ruleFor('100.64.0.5'), 'ENI rule kept through the outage').toBeDefined();
    expect(await sendFrom('100.64.0.5', dev), 'packets through the ENI during the outage').toBeGreaterThanOrEqual(3);
    expect(fabric.status().stale, 'the fabric says it runs on stale state').toBeDefined();
    const during = await nodeState();
    expect(during.condition).toMatchObject({ status: 'False', reason: 'AwsUnreachable' });
    expect(during.condition?.message).toMatch(/last known-good state/);
    expect(during.capacity, 'capacity not reset to 0 by a failed read').toBe(capacity);
    expect((await podCondition('red-1'))?.status, 'the pod condition as last known').toBe('True');

    // Scale-down and scale-up during the outage.
    await remove(t.store, 'Pod', 'red-1', 'default');
    await put(t.store, gatewayPod('red-2', 'node-a1', '100.64.0.6'));
    const now = fabric.status().passes;
    await eventually(async () => (fabric!.status().passes >= now + 2 ? true : undefined), 30_000, 'passes during the outage');

    // EC2 and IMDS come back (same state, same ports): everything converges, nothing leaks.
    sim = await start(`127.0.0.1:${ports.api}`, `127.0.0.1:${ports.imds}`);
    fabric.poke();
    await eventually(async () => ((await podCondition('red-2'))?.status === 'True' ? true : undefined), 60_000, 'red-2 ready after the outage');
    await eventually(async () => (fabric!.status().stale === undefined ? true : undefined), 20_000, 'no longer stale');
    await eventually(async () => ((await ruleFor('100.64.0.5')) === undefined ? true : undefined), 20_000, 'red-1 rule gone');
    expect(await ruleFor('100.64.0.6')).toBeDefined();
    await eventually(async () => {
      const ours = Object.values(sim!.state().state.enis).filter((e) => e.primaryOf === undefined);
      return ours.length === 1 && ours[0]!.privateIps.includes('100.64.0.6') ? true : undefined;
    }, 30_000, 'exactly one ENI of ours left (red-2), none leaked');
    const dev2 = await prepareDev(sim, '100.64.0.6');
    expect(await sendFrom('100.64.0.6', dev2), 'packets through the new ENI').toBeGreaterThanOrEqual(3);
    expect((await nodeState()).condition).toMatchObject({ status: 'True' });
  }, 240_000);
});
