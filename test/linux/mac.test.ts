import { describe, expect, it } from 'vitest';
import { canonicalCidr, firstHost, normalizeCidrSet, sortIps, tryParseCidr } from '../../src/linux/net/ipv4.js';
import { canonicalMac, ipOfTunnelMac, tunnelMac } from '../../src/linux/net/mac.js';
import { isEgwError } from '../../src/platform/errors.js';

describe('ipv4', () => {
  it('canonicalises prefixes the way the kernel prints them', () => {
    expect(canonicalCidr('default')).toBe('0.0.0.0/0');
    expect(canonicalCidr('10.1.2.3')).toBe('10.1.2.3/32');
    expect(canonicalCidr('10.1.2.3/8')).toBe('10.0.0.0/8');
    expect(canonicalCidr('255.255.255.255/31')).toBe('255.255.255.254/31');
  });

  it('rejects what is not an IPv4 prefix', () => {
    for (const bad of ['10.0.0.256/8', '10.0.0/8', '10.0.0.0/33', '10.0.0.0/', '::1/128', '010.0.0.1']) {
      expect(tryParseCidr(bad)).toBeUndefined();
    }
    let err: unknown;
    try {
      canonicalCidr('nope');
    } catch (e) {
      err = e;
    }
    expect(isEgwError(err, 'InvalidInput')).toBe(true);
  });

  it('normalises a set for an nft interval set: sorted, deduplicated, nested prefixes dropped', () => {
    expect(normalizeCidrSet(['10.20.0.0/16', '10.0.0.0/8', '100.64.0.0/10', '10.20.1.5', '100.64.0.0/10'])).toEqual(['10.0.0.0/8', '100.64.0.0/10']);
    expect(normalizeCidrSet([])).toEqual([]);
  });

  it('knows the subnet router and sorts addresses numerically', () => {
    expect(firstHost('100.64.4.0/22')).toBe('100.64.4.1');
    expect(sortIps(['10.0.0.10', '10.0.0.9', '10.0.0.10'])).toEqual(['10.0.0.9', '10.0.0.10']);
  });
});

describe('tunnel MACs', () => {
  it('derive a locally administered unicast MAC from the address and back', () => {
    expect(tunnelMac('100.64.0.5')).toBe('0e:67:64:40:00:05');
    expect(tunnelMac('10.10.1.10')).toBe('0e:67:0a:0a:01:0a');
    const first = parseInt(tunnelMac('203.0.113.255').slice(0, 2), 16);
    expect(first & 1).toBe(0); // unicast
    expect(first & 2).toBe(2); // locally administered
    expect(ipOfTunnelMac('0e:67:c6:12:00:ff')).toBe('198.18.0.255');
    expect(ipOfTunnelMac('02:00:00:00:00:01')).toBeUndefined();
  });

  it('canonicalises MACs', () => {
    expect(canonicalMac('02:AB:00:00:00:01')).toBe('02:ab:00:00:00:01');
    expect(() => canonicalMac('02:ab:00:00:00')).toThrow();
  });
});
