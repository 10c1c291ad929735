import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { defaultScenarioPath, labInstanceId, loadScenario, parseScenario } from '../../src/lab/scenario.js';
import { isEgwError } from '../../src/platform/errors.js';
import { REPO } from '../support/dist.js';

const files = { expand: (p: string) => [p] };
function base(): Record<string, unknown> {
  return parse(readFileSync(defaultScenarioPath(), 'utf8')) as Record<string, unknown>;
}
function problem(mutate: (doc: Record<string, unknown>) => void): string {
  const doc = base();
  mutate(doc);
  try {
    parseScenario(doc, 'x.yaml', '/tmp', files);
  } catch (e) {
    if (isEgwError(e, 'InvalidInput')) return e.message;
    throw e;
  }
  return 'valid';
}

describe('scenarios', () => {
  it('the built-in default is the reference example: two zones, the reference subnet IDs, four t3.large nodes, ENI-per-workload', () => {
    const s = loadScenario();
    expect(s.name).toBe('reference-eni');
    expect(s.zones).toEqual(['us-west-2a', 'us-west-2b']);
    expect(s.subnets.filter((x) => x.name.startsWith('egress-')).map((x) => [x.id, x.cidr, x.zone])).toEqual([
      ['subnet-000000000000000001', '100.64.0.0/22', 'us-west-2a'],
      ['subnet-000000000000000002', '100.64.4.0/22', 'us-west-2b'],
    ]);
    expect(s.nodes.map((n) => [n.name, n.zone, n.instanceType])).toEqual([
      ['node-a1', 'us-west-2a', 't3.large'],
      ['node-a2', 'us-west-2a', 't3.large'],
      ['node-b1', 'us-west-2b', 't3.large'],
      ['node-b2', 'us-west-2b', 't3.large'],
    ]);
    expect(s.felix['awsSecondaryIPSupport']).toBe('EnabledENIPerWorkload');
    expect(s.sim['imds']).toEqual({ tokens: 'required', trustInstanceHeader: false });
    expect(s.ec2Endpoint).toBe('100.64.0.2');
    expect(s.manifests.map((m) => m.replace(`${REPO}/`, ''))).toEqual([
      'examples/reference/ip-reservation.yaml',
      'examples/reference/ip-pools.yaml',
      'examples/lab/manifests/00-namespaces.yaml',
      'examples/lab/manifests/10-pod-pool.yaml',
      'examples/lab/manifests/20-egress-gateway-red.yaml',
      'examples/lab/manifests/21-egress-gateway-blue.yaml',
      'examples/lab/manifests/30-egress-gateway-policy.yaml',
      'examples/lab/manifests/40-clients.yaml',
    ]);
  });

  it('the Secondary-IP scenario differs in the mode and the pools only', () => {
    const eni = loadScenario(`${REPO}/examples/lab/reference.yaml`);
    const sec = loadScenario(`${REPO}/examples/lab/secondary-ip.yaml`);
    expect(sec.felix['awsSecondaryIPSupport']).toBe('Enabled');
    expect(sec.nodes).toEqual(eni.nodes);
    expect(sec.subnets).toEqual(eni.subnets);
    expect(sec.manifests.filter((m) => !eni.manifests.includes(m)).map((m) => m.replace(`${REPO}/`, ''))).toEqual(['examples/lab/secondary-ip-pools.yaml']);
  });

  it('hands out addresses and instance IDs that were not given', () => {
    const doc = base();
    for (const n of doc['nodes'] as Record<string, unknown>[]) delete n['ip'];
    delete (doc['controlPlane'] as Record<string, unknown>)['ip'];
    const s = parseScenario(doc, 'x.yaml', '/tmp', files);
    expect(s.nodes.map((n) => n.ip)).toEqual(['100.64.16.10', '100.64.16.11', '100.64.20.10', '100.64.20.11']);
    expect(s.controlPlane.ip).toBe('100.64.32.10');
    expect(s.nodes[0]!.instanceId).toBe(labInstanceId('node-a1'));
    expect(labInstanceId('node-a1')).toMatch(/^i-0[0-9a-f]{16}$/);
    expect(new Set(s.nodes.map((n) => n.instanceId)).size).toBe(4);
  });

  it('names the file and the field of each mistake', () => {
    expect(problem((d) => (d['zones'] = ['eu-west-1a']))).toBe('x.yaml: zones[0]: eu-west-1a is not a zone of us-west-2');
    expect(problem((d) => (d['color'] = 'red'))).toMatch(/^x\.yaml: color: unknown field/);
    expect(problem((d) => ((d['subnets'] as Record<string, unknown>[])[1]!['cidr'] = '100.64.2.0/23'))).toBe('x.yaml: subnets[1].cidr: 100.64.2.0/23 overlaps subnets[0]');
    expect(problem((d) => ((d['subnets'] as Record<string, unknown>[])[0]!['cidr'] = '100.64.0.1/22'))).toBe('x.yaml: subnets[0].cidr: 100.64.0.1/22 has host bits set (did you mean 100.64.0.0/22?)');
    expect(problem((d) => ((d['nodes'] as Record<string, unknown>[])[0]!['ip'] = '100.64.16.3'))).toBe('x.yaml: nodes[0].ip: 100.64.16.3 is one of the five addresses AWS reserves in 100.64.16.0/22');
    expect(problem((d) => ((d['nodes'] as Record<string, unknown>[])[0]!['ip'] = '100.64.20.40'))).toBe('x.yaml: nodes[0].ip: 100.64.20.40 is not inside subnet nodes-west-1 (100.64.16.0/22)');
    expect(problem((d) => ((d['nodes'] as Record<string, unknown>[])[1]!['name'] = 'node-a1'))).toMatch(/nodes\[1\]\.name: the name node-a1 is used twice/);
    expect(problem((d) => ((d['nodes'] as Record<string, unknown>[])[1]!['name'] = 'rt'))).toMatch(/the name rt is the lab's own/);
    expect(problem((d) => ((d['nodes'] as Record<string, unknown>[])[0]!['zone'] = 'us-west-2b'))).toBe('x.yaml: nodes[0].zone: us-west-2b differs from the zone of subnet nodes-west-1 (us-west-2a)');
    expect(problem((d) => (d['vpc'] = { id: 'vpc-0e1a2b3c4d5e6f708', cidr: '172.16.0.0/16' }))).toMatch(/vpc.cidr: 172.16.0.0\/16 is outside the lab's address ranges/);
    expect(problem((d) => (d['ec2Endpoint'] = '100.64.16.50'))).toMatch(/ec2Endpoint: 100.64.16.50 lies in subnet nodes-west-1/);
    expect(problem((d) => ((d['elasticIps'] as Record<string, unknown>[])[0]!['publicIp'] = '198.51.100.7'))).toMatch(/lies in internet.cidr/);
    expect(problem((d) => ((d['servers'] as Record<string, unknown>[])[0]!['ip'] = '198.51.100.1'))).toMatch(/is the network or router address/);
    expect(problem((d) => (d['manifests'] = ['nope.yaml']))).toBe('valid');
    expect(() => parseScenario({ ...base(), manifests: ['nope.yaml'] }, 'x.yaml', '/tmp')).toThrow(/manifests\[0\]: nope.yaml does not exist/);
  });
});
