import { describe, expect, it } from 'vitest';
import type { IPPool } from '../../../src/api/kinds/ip-pool.js';
import type { Pod } from '../../../src/api/kinds/kubernetes.js';
import { deriveFabricWorkloads, hostSecondarySubnets } from '../../../src/agent/fabric/workloads.js';
import { gatewayPod, ipPool } from './store.js';

const A = 'subnet-0a1b2c3d4e5f60718';
const pools = [
  ipPool('egress-red-west-1', '100.64.0.4/30', A),
  ipPool('egress-wide', '100.64.0.0/24', A),
  ipPool('hosts', '100.64.3.240/28', A, { allowedUses: ['HostSecondaryInterface'] }),
  ipPool('default', '10.244.0.0/16', undefined, { blockSize: 26, nodeSelector: 'all()' }),
] as unknown as IPPool[];
const pod = (...args: Parameters<typeof gatewayPod>): Pod => gatewayPod(...args) as unknown as Pod;

describe('fabric workloads from pods and pools (pure)', () => {
  it('takes the AWS-backed IPv4 addresses of live pods on this node, with subnet, Elastic IPs, uid and creation time', () => {
    const { workloads, problems } = deriveFabricWorkloads(
      'node-a1',
      [
        pod('red-1', 'node-a1', '100.64.0.5', { 'cni.projectcalico.org/awsElasticIPs': '["203.0.113.7", "203.0.113.8"]' }),
        pod('client', 'node-a1', '10.244.1.5'),
        pod('elsewhere', 'node-a2', '100.64.0.6'),
        pod('done', 'node-a1', '100.64.0.7', {}, 'Succeeded'),
        pod('creating', 'node-a1', '100.64.0.9', {}, 'Pending'),
        pod('no-ip-yet', 'node-a1', undefined, {}, 'Pending'),
      ],
      pools,
    );
    expect(problems).toEqual([]);
    expect(workloads).toEqual([
      { id: 'default/creating@100.64.0.9', pod: 'default/creating', uid: 'uid-creating', ip: '100.64.0.9', subnetId: A, owner: 'pod/default/creating/uid-creating', since: '2025-01-01T00:00:00.000Z', elasticIps: [] },
      { id: 'default/red-1@100.64.0.5', pod: 'default/red-1', uid: 'uid-red-1', ip: '100.64.0.5', subnetId: A, owner: 'pod/default/red-1/uid-red-1', since: '2025-01-01T00:00:00.000Z', elasticIps: ['203.0.113.7', '203.0.113.8'] },
    ]);
  });

  it("claims only the Elastic IPs its namespace's egw.io/allowed-elastic-ips allows; the rest is a problem on the pod; without the annotation, any", () => {
    const eips = { 'cni.projectcalico.org/awsElasticIPs': '["203.0.113.7", "203.0.113.8"]' };
    const nsAnnotations = new Map([['default', { 'egw.io/allowed-elastic-ips': '["203.0.113.8"]' }]]);
    const { workloads, problems } = deriveFabricWorkloads('node-a1', [pod('red-1', 'node-a1', '100.64.0.5', eips)], pools, nsAnnotations);
    expect(workloads.map((w) => [w.ip, w.elasticIps])).toEqual([['100.64.0.5', ['203.0.113.8']]]);
    expect(problems).toEqual([expect.objectContaining({ pod: 'default/red-1', reason: 'ElasticIPNotAllowed', message: expect.stringContaining('names 203.0.113.7, which namespace default does not allow') as unknown })]);
    const malformed = deriveFabricWorkloads('node-a1', [pod('red-1', 'node-a1', '100.64.0.5', eips)], pools, new Map([['default', { 'egw.io/allowed-elastic-ips': 'all' }]]));
    expect(malformed.workloads[0]?.elasticIps).toEqual([]);
    const open = deriveFabricWorkloads('node-a1', [pod('red-1', 'node-a1', '100.64.0.5', eips)], pools, new Map([['default', {}]]));
    expect(open.workloads[0]?.elasticIps).toEqual(['203.0.113.7', '203.0.113.8']);
    expect(open.problems).toEqual([]);
  });

  it('reports a malformed Elastic-IP annotation on the pod and still places its address', () => {
    const { workloads, problems } = deriveFabricWorkloads('node-a1', [pod('red-1', 'node-a1', '100.64.0.5', { 'cni.projectcalico.org/awsElasticIPs': '203.0.113.7' })], pools);
    expect(workloads.map((w) => [w.ip, w.elasticIps])).toEqual([['100.64.0.5', []]]);
    expect(problems).toEqual([expect.objectContaining({ pod: 'default/red-1', reason: 'InvalidElasticIPs' })]);
  });

  it('depends only on the current resources, not their order', () => {
    const pods = [pod('a', 'node-a1', '100.64.0.5'), pod('b', 'node-a1', '100.64.0.6'), pod('c', 'node-a1', '100.64.0.10')];
    const one = deriveFabricWorkloads('node-a1', pods, pools);
    const two = deriveFabricWorkloads('node-a1', [...pods].reverse(), [...pools].reverse());
    expect(two).toEqual(one);
  });

  it('lists the subnets of host-secondary pools', () => {
    expect(hostSecondarySubnets(pools)).toEqual([A]);
  });
});
