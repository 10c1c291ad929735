import { describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/lab/scenario.js';
import { statusTables } from '../../src/lab/status.js';
import { builtInInstanceTypes } from '../../src/sim/aws/index.js';
import type { EniRecord } from '../../src/sim/aws/index.js';
import { referenceSnapshot, sim } from './fixtures.js';

const scenario = loadScenario();

function eni(id: string, instanceId: string, ips: string[], device: number): EniRecord {
  return {
    id,
    subnetId: 's',
    vpcId: 'v',
    availabilityZone: 'us-west-2a',
    description: '',
    macAddress: '02:00:00:00:00:01',
    privateIps: ips,
    groups: [],
    sourceDestCheck: true,
    status: 'in-use',
    attachment: { attachmentId: `a-${id}`, instanceId, deviceIndex: device, networkCardIndex: 0, status: 'attached', attachTime: '', deleteOnTermination: true, completesAt: undefined },
    primaryOf: device === 0 ? instanceId : undefined,
  };
}

describe('lab status', () => {
  it('shows ENIs used/max against the instance-type table and aws-secondary-ipv4 used/capacity', () => {
    const a1 = scenario.nodes[0]!.instanceId;
    const s = referenceSnapshot();
    s.sim = { ...sim({ '100.64.0.5': '203.0.113.7' }), enis: [eni('eni-1', a1, ['100.64.16.10'], 0), eni('eni-2', a1, ['100.64.0.5'], 1)] };
    const [nodes, gateways, clients, pools, procs] = statusTables(s, scenario, builtInInstanceTypes(), [{ name: 'egress-red-west-1', cidr: '100.64.0.4/30', blockSize: 32, size: 4, reserved: 0, allocated: 1, free: 3, awsSubnetID: 'subnet-000000000000000001', disabled: false }], [{ name: 'agent-node-a1', netns: 'egwlab-node-a1', argv: [], pid: 42, startedAt: '', log: '', alive: true }]);
    expect(nodes!.header).toEqual(['NODE', 'ZONE', 'INSTANCE TYPE', 'IP', 'ENIS USED/MAX', 'AWS-SECONDARY-IPV4 USED/CAPACITY', 'READY']);
    // t3.large: 3 ENIs (the table's default card), capacity ENIs − 1 = 2 in ENI-per-workload mode.
    expect(nodes!.rows[0]).toEqual(['node-a1', 'us-west-2a', 't3.large', '100.64.16.10', '2/3', '1/2', 'True']);
    expect(nodes!.rows[1]).toEqual(['node-a2', 'us-west-2a', 't3.large', '100.64.16.11', '0/3', '1/2', 'True']);
    expect(gateways!.rows.find((r) => r[0] === 'calico-egress/red-1')).toEqual(['calico-egress/red-1', 'egress-gateway-red', 'node-a1', 'us-west-2a', '100.64.0.5', '203.0.113.7', 'eni-2', 'true']);
    expect(clients!.rows.map((r) => r[0])).toEqual(['app-red/red-app', 'my-namespace/my-netcat-pod']);
    expect(pools!.rows).toEqual([['egress-red-west-1', '100.64.0.4/30', 'subnet-000000000000000001', '1', '3']]);
    expect(procs!.rows).toEqual([['agent-node-a1', 'egwlab-node-a1', '42', 'yes']]);
  });
});
