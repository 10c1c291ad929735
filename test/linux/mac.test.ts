import { describe, expect, it } from 'vitest';
import { canonicalMac, ipOfTunnelMac, tunnelMac } from '../../src/linux/net/mac.js';

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
