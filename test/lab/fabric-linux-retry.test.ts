import { afterEach, describe, expect, it } from 'vitest';
import { AwsFabric } from '../../src/agent/fabric/aws-fabric.js';
import type { EniRoutingPort } from '../../src/agent/fabric/ports.js';
import { POD_AWS_CONDITION } from '../../src/agent/fabric/status.js';
import type { Condition } from '../../src/agent/fabric/status.js';
import { SdkImds } from '../../src/aws/imds.js';
import type { SdkEc2 } from '../../src/aws/sdk-ec2.js';
import { getResource } from '../../src/datastore/resources.js';
import { SystemClock } from '../../src/platform/clock.js';
import { startAwsSim } from '../../src/sim/aws/server.js';
import type { AwsSimHandle } from '../../src/sim/aws/server.js';
import { EGRESS_A, fabricWorld, NODE_A1, sdkFor } from '../aws/helpers.js';
import type { TestStore } from '../agent/fabric/store.js';
import { awsSubnet, eventually, felix, gatewayPod, ipPool, node, openTestStore, put } from '../agent/fabric/store.js';

// Seen in the lab: the agent's pass runs when IMDS already lists a new ENI but its interface is not in the
// node yet (the hot-plug lags the attachment); the Linux side reports InterfaceNotFound and the pod's
// EgwAwsReady goes False. When the Linux side converges on its own retry, the pod must turn Ready at once,
// not at the next resync.
class LateInterface implements EniRoutingPort {
  /** Applies that had an interface to program and were told it is not there yet. */
  missed = 0;
  async apply(state: { interfaces: readonly { mac: string }[] }): Promise<{ problems: { object: string; code: string; message: string }[]; failures: { message: string }[] }> {
    if (state.interfaces.length === 0 || this.missed >= 1) return { problems: [], failures: [] };
    this.missed++;
    return { problems: state.interfaces.map((i) => ({ object: `eni ${i.mac}`, code: 'InterfaceNotFound', message: `no interface with MAC ${i.mac}` })), failures: [] };
  }
}

describe('agent fabric: an interface that appears after the pass', () => {
  let sim: AwsSimHandle | undefined;
  let ec2: SdkEc2 | undefined;
  let t: TestStore | undefined;
  let fabric: AwsFabric | undefined;
  afterEach(async () => {
    await fabric?.stop();
    ec2?.destroy();
    await sim?.close();
    await t?.cleanup();
  });

  it('turns the pod Ready once the Linux side converges, long before the resync', async () => {
    sim = await startAwsSim({ world: fabricWorld({}), listen: '127.0.0.1:0', imdsBindings: [{ listen: '127.0.0.1:0', instanceId: NODE_A1 }] });
    ec2 = sdkFor(sim);
    t = await openTestStore();
    await put(t.store, node('node-a1', 'us-west-2a'), awsSubnet(EGRESS_A, '100.64.0.0/22', 'us-west-2a'), ipPool('egress-red-west-1', '100.64.0.4/30', EGRESS_A), felix('default', { awsSecondaryIPSupport: 'EnabledENIPerWorkload' }), gatewayPod('red-1', 'node-a1', '100.64.0.5'));
    const linux = new LateInterface();
    fabric = new AwsFabric({ store: t.store, ec2, imds: new SdkImds({ endpoint: sim.imdsBindingUrls[NODE_A1]! }), linux, clock: new SystemClock() }, { nodeName: 'node-a1', cluster: 'test', resyncIntervalMs: 600_000 });
    fabric.start();
    const store = t.store;
    const condition = async (): Promise<Condition | undefined> => ((((await getResource(store, 'Pod', 'red-1', 'default'))?.status as { conditions?: Condition[] } | undefined)?.conditions) ?? []).find((c) => c.type === POD_AWS_CONDITION);
    // The resync is 10 minutes away: only the fix turns the pod Ready within the wait.
    await eventually(async () => ((await condition())?.status === 'True' ? true : undefined), 15_000, 'pod ready');
    expect(linux.missed).toBe(1);
  }, 60_000);
});
