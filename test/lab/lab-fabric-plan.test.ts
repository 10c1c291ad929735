import { describe, expect, it } from 'vitest';
import { natPairs, renderIgwNft, renderIgwUpdate, renderRouterNft, renderRouterSetUpdate, routedAddresses, routerLinkName, uncheckedLinks } from '../../src/sim/aws/lab-fabric-plan.js';
import type { FabricEni } from '../../src/sim/aws/index.js';

const eni = (id: string, ips: string[], mac = '02:aa:bb:cc:dd:ee'): FabricEni => ({ id, macAddress: mac, subnetId: 's', subnetCidr: '100.64.0.0/22', vpcId: 'v', availabilityZone: 'a', privateIps: ips, instanceId: 'i-1', deviceIndex: 1, sourceDestCheck: true });

describe('lab fabric plan (pure)', () => {
  it('names router links after the ENI (≤ 15 characters)', () => {
    expect(routerLinkName('eni-0123456789abcdef0')).toBe('e-56789abcdef0');
    expect(routerLinkName('eni-0123456789abcdef0').length).toBeLessThanOrEqual(15);
  });

  it('routes every address of every attached ENI, sorted, to its link and MAC', () => {
    expect(routedAddresses([eni('eni-00000000000000002', ['100.64.0.9', '100.64.0.10'], '02:00:00:00:00:02'), eni('eni-00000000000000001', ['100.64.0.5'], '02:00:00:00:00:01')])).toEqual([
      { ip: '100.64.0.5', dev: 'e-000000000001', mac: '02:00:00:00:00:01', eniId: 'eni-00000000000000001' },
      { ip: '100.64.0.9', dev: 'e-000000000002', mac: '02:00:00:00:00:02', eniId: 'eni-00000000000000002' },
      { ip: '100.64.0.10', dev: 'e-000000000002', mac: '02:00:00:00:00:02', eniId: 'eni-00000000000000002' },
    ]);
  });

  it('renders the source/destination check and its set updates', () => {
    const a = routedAddresses([eni('eni-00000000000000001', ['100.64.0.5'])]);
    expect(renderRouterNft(a)).toContain('elements = { "e-000000000001" . 100.64.0.5 }');
    expect(renderRouterNft(a)).toContain('iifname "e-*" iifname != @eni_unchecked iifname . ip saddr != @eni_src counter drop');
    expect(renderRouterNft([])).not.toContain('elements');
    expect(renderRouterSetUpdate([])).toBe('flush set ip egw-fabric eni_src\nflush set ip egw-fabric eni_unchecked');
    // An ENI whose check is disabled sends from any source.
    const off = { ...eni('eni-00000000000000001', ['100.64.0.5']), sourceDestCheck: false };
    expect(uncheckedLinks([off, eni('eni-00000000000000002', ['100.64.0.6'])])).toEqual(['e-000000000001']);
    expect(renderRouterNft(a, ['e-000000000001'])).toContain('elements = { "e-000000000001" }');
    expect(renderRouterSetUpdate([], ['e-000000000001'])).toContain('add element ip egw-fabric eni_unchecked { "e-000000000001" }');
  });

  it('maps Elastic IPs 1:1; a moved association replaces the old pair', () => {
    const pairs = natPairs([
      { allocationId: 'a', publicIp: '203.0.113.7', associationId: 'x', networkInterfaceId: 'e', privateIp: '100.64.0.5' },
      { allocationId: 'b', publicIp: '203.0.113.8', associationId: 'y', networkInterfaceId: 'e', privateIp: '100.64.0.5' },
    ]);
    expect(pairs).toEqual([{ publicIp: '203.0.113.8', privateIp: '100.64.0.5' }]);
    const nft = renderIgwNft(pairs, { vpc: 'vpc', internet: 'inet' });
    expect(nft).toContain('elements = { 203.0.113.8 : 100.64.0.5 }');
    expect(nft).toContain('iifname "vpc" oifname "inet" ip saddr @eip_private accept');
    expect(nft).toContain('policy drop;');
    expect(renderIgwUpdate([])).toBe('flush map ip egw-igw eip_in\nflush map ip egw-igw eip_out\nflush set ip egw-igw eip_private');
  });
});
