import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsFabric } from '../../../src/agent/fabric/aws-fabric.js';
import { ShellEniRouting } from '../../../src/agent/fabric/ports.js';
import { POD_AWS_CONDITION } from '../../../src/agent/fabric/status.js';
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

// The Linux side of the fabric on a real kernel: a throwaway namespace (never connected to the host)
// plays the node; a fabric driver of the emulator plugs a link with the ENI's MAC into it when EC2
// completes an attachment (as the lab will), and the agent's ENI routing must find it by MAC.
const NS = `egwfab${process.pid}`;
const host = new ExecShell();
const inNs = new NetnsShell(host, NS);

describe('AwsFabric, Linux side in a namespace', () => {
  let sim: AwsSimHandle;
  let ec2: SdkEc2;
  let t: TestStore;
  let fabric: AwsFabric | undefined;

  beforeAll(async () => {
    await host.run(['ip', 'netns', 'del', NS], { allowFailure: true });
    await host.run(['ip', 'netns', 'add', NS]);
    await inNs.run(['ip', 'link', 'set', 'lo', 'up']);
    sim = await startAwsSim({ world: fabricWorld(), listen: '127.0.0.1:0', fabric: new NamespaceFabric(inNs), imdsBindings: [{ listen: '127.0.0.1:0', instanceId: NODE_A1 }] });
    ec2 = sdkFor(sim);
    t = await openTestStore();
  });
  afterAll(async () => {
    await fabric?.stop();
    ec2?.destroy();
    await sim?.close();
    await t?.cleanup();
    await host.run(['ip', 'netns', 'del', NS], { allowFailure: true });
  });

  const condition = async (): Promise<Condition | undefined> => {
    const p = await getResource(t.store, 'Pod', 'red-1', 'default');
    return ((p?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === POD_AWS_CONDITION);
  };
  const rules = async (): Promise<string> => (await inNs.run(['ip', '-4', 'rule', 'show'])).stdout;
  const routes = async (): Promise<string> => (await inNs.run(['ip', '-4', 'route', 'show', 'table', 'all'])).stdout;

  it('brings the ENI up by MAC, gives it a table with the subnet and a default via the subnet router, and a rule from the gateway IP; removes them when it goes', async () => {
    await put(
      t.store,
      node('node-a1', 'us-west-2a'),
      awsSubnet(EGRESS_A, '100.64.0.0/22', 'us-west-2a'),
      ipPool('egress-red-west-1', '100.64.0.4/30', EGRESS_A),
      felix('default', { awsSecondaryIPSupport: 'EnabledENIPerWorkload' }),
      gatewayPod('red-1', 'node-a1', '100.64.0.5'),
    );
    fabric = new AwsFabric(
      { store: t.store, ec2, imds: new SdkImds({ endpoint: sim.imdsBindingUrls[NODE_A1]! }), linux: new ShellEniRouting(inNs) },
      { nodeName: 'node-a1', cluster: 'linux-test', gcCooldownMs: 500 },
    );
    fabric.start();
    await eventually(async () => ((await condition())?.status === 'True' ? true : undefined), 20_000, 'pod ready');
    const eni = Object.values(sim.state().state.enis).find((e) => e.primaryOf === undefined)!;
    const dev = ifname(eni.macAddress);
    const rule = (await rules()).split('\n').find((l) => l.includes('from 100.64.0.5'));
    expect(rule).toMatch(/^101:\s+from 100\.64\.0\.5 lookup (\d+) proto 234/);
    const table = /lookup (\d+)/.exec(rule!)![1]!;
    const all = await routes();
    expect(all).toContain(`100.64.0.0/22 dev ${dev} table ${table} proto 234 scope link`);
    expect(all).toContain(`default via 100.64.0.1 dev ${dev} table ${table} proto 234`);
    expect((await inNs.run(['ip', '-4', 'route', 'show', 'table', 'main'])).stdout).not.toContain('default');
    expect((await inNs.run(['ip', '-json', 'link', 'show', dev])).stdout).toContain('"UP"');

    await remove(t.store, 'Pod', 'red-1', 'default');
    await eventually(async () => (!(await rules()).includes('100.64.0.5') && !(await routes()).includes('proto 234') ? true : undefined), 20_000, 'routing removed');
    await eventually(async () => (Object.values(sim.state().state.enis).every((e) => e.primaryOf !== undefined) ? true : undefined), 20_000, 'ENI deleted');
    expect((await inNs.run(['ip', 'link', 'show', dev], { allowFailure: true })).exitCode).not.toBe(0);
  });
});
