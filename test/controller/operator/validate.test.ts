/**
 * Every validation message of the operator, exactly, and the order in which the rules are tried.
 */
import { describe, expect, it } from 'vitest';
import type { EgressGateway, IPPool } from '../../../src/api/index.js';
import { operatorValidationError } from '../../../src/controller/operator/index.js';
import { referencePools, referenceRed } from './helpers.js';

function red(change: (spec: EgressGateway['spec']) => EgressGateway['spec']): EgressGateway {
  const r = referenceRed();
  return { ...r, spec: change(structuredClone(r.spec)) };
}

const pools = referencePools();
const plainPool: IPPool = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'plain' }, spec: { cidr: '10.10.0.0/24' } };

describe('operatorValidationError', () => {
  it('accepts the reference egress-gateway-red against the reference pools', () => {
    expect(operatorValidationError(referenceRed(), pools)).toBeUndefined();
  });

  it.each<[string, (s: EgressGateway['spec']) => EgressGateway['spec'], readonly IPPool[], string]>([
    ['no pools', (s) => ({ ...s, ipPools: [] }), pools, 'at least one IPPool must be specified'],
    ['ipPools absent', ({ ipPools: _p, ...s }) => s, pools, 'at least one IPPool must be specified'],
    ['a named pool that does not exist', (s) => ({ ...s, ipPools: [{ name: 'egress-red-west-1' }, { name: 'egress-green' }] }), pools, 'ippools.projectcalico.org "egress-green" not found'],
    ['name and cidr disagree', (s) => ({ ...s, ipPools: [{ name: 'egress-red-west-1', cidr: '100.64.0.8/30' }] }), pools, 'IPPool CIDR does not match with name'],
    ['nativeIP with a pool that is not AWS-backed (by name)', (s) => ({ ...s, ipPools: [{ name: 'plain' }] }), [...pools, plainPool], 'AWS subnet ID must be set when NativeIP is enabled'],
    ['nativeIP with a pool that is not AWS-backed (by cidr)', (s) => ({ ...s, ipPools: [{ cidr: '10.10.0.0/24' }] }), [...pools, plainPool], 'AWS subnet ID must be set when NativeIP is enabled'],
    ['a cidr no pool has', (s) => ({ ...s, ipPools: [{ cidr: '100.64.9.0/30' }] }), pools, 'IPPool matching CIDR = 100.64.9.0/30 not present'],
    ['an entry with neither name nor cidr', (s) => ({ ...s, ipPools: [{}] }), pools, 'IPPool matching CIDR =  not present'],
    ['elastic IPs without nativeIP', (s) => ({ ...s, aws: { nativeIP: 'Disabled', elasticIPs: ['203.0.113.10'] } }), pools, 'NativeIP must be enabled when elastic IPs are used'],
    ['failure detection without a probe', (s) => ({ ...s, egressGatewayFailureDetection: { healthTimeoutDataStoreSeconds: 30 } }), pools, 'either ICMP or HTTP probe must be configured'],
    ['ICMP timeout below interval', (s) => ({ ...s, egressGatewayFailureDetection: { icmpProbe: { ips: ['10.0.0.1'], intervalSeconds: 10, timeoutSeconds: 5 } } }), pools, 'ICMP probe timeout must be greater than interval'],
    ['ICMP timeout below the default interval', (s) => ({ ...s, egressGatewayFailureDetection: { icmpProbe: { ips: ['10.0.0.1'], timeoutSeconds: 4 } } }), pools, 'ICMP probe timeout must be greater than interval'],
    ['HTTP timeout below interval', (s) => ({ ...s, egressGatewayFailureDetection: { httpProbe: { urls: ['http://x.example/'], intervalSeconds: 40 } } }), pools, 'HTTP probe timeout must be greater than interval'],
  ])('%s', (_what, change, known, message) => {
    expect(operatorValidationError(red(change), known)).toBe(message);
  });

  it('nativeIP Disabled accepts pools that are not AWS-backed', () => {
    expect(operatorValidationError(red((s) => ({ ...s, aws: { nativeIP: 'Disabled' }, ipPools: [{ name: 'plain' }] })), [plainPool])).toBeUndefined();
    const { aws: _a, ...noAws } = red((s) => s).spec;
    expect(operatorValidationError({ ...referenceRed(), spec: { ...noAws, ipPools: [{ cidr: '10.10.0.0/24' }] } }, [plainPool])).toBeUndefined();
  });

  it('a probe timeout equal to its interval is accepted', () => {
    expect(
      operatorValidationError(red((s) => ({ ...s, egressGatewayFailureDetection: { icmpProbe: { ips: ['10.0.0.1'], intervalSeconds: 5, timeoutSeconds: 5 }, httpProbe: { urls: ['http://x.example/'], intervalSeconds: 9, timeoutSeconds: 9 } } })), pools),
    ).toBeUndefined();
  });

  it('rules are tried in the operator order: pools first, then elastic IPs, then probes', () => {
    const all = red((s) => ({ ...s, ipPools: [{ name: 'missing' }], aws: { nativeIP: 'Disabled', elasticIPs: ['203.0.113.10'] }, egressGatewayFailureDetection: {} }));
    expect(operatorValidationError(all, pools)).toBe('ippools.projectcalico.org "missing" not found');
    const noPoolProblem = red((s) => ({ ...s, aws: { nativeIP: 'Disabled', elasticIPs: ['203.0.113.10'] }, egressGatewayFailureDetection: {} }));
    expect(operatorValidationError(noPoolProblem, pools)).toBe('NativeIP must be enabled when elastic IPs are used');
    // Entries are checked in order: the first bad one is reported.
    expect(operatorValidationError(red((s) => ({ ...s, ipPools: [{ cidr: '1.2.3.0/24' }, { name: 'missing' }] })), pools)).toBe('IPPool matching CIDR = 1.2.3.0/24 not present');
  });

  it('CIDRs are compared in canonical form', () => {
    expect(operatorValidationError(red((s) => ({ ...s, ipPools: [{ cidr: '100.64.0.4/30' }, { name: 'egress-red-west-2', cidr: '100.64.4.4/30' }] })), pools)).toBeUndefined();
  });

  it('without known pools (a file with none), only the pool rules are skipped', () => {
    expect(operatorValidationError(red((s) => ({ ...s, ipPools: [{ name: 'anything' }] })), [], { poolsKnown: false })).toBeUndefined();
    expect(operatorValidationError(red((s) => ({ ...s, ipPools: [] })), [], { poolsKnown: false })).toBe('at least one IPPool must be specified');
    expect(operatorValidationError(red((s) => ({ ...s, egressGatewayFailureDetection: {} })), [], { poolsKnown: false })).toBe('either ICMP or HTTP probe must be configured');
  });
});
