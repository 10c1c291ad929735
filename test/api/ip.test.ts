/** Addresses and CIDRs. */
import { describe, expect, test } from 'vitest';
import { cidrContains, cidrContainsIp, cidrsOverlap, cidrSize, formatCidr, formatIp, normalizeCidr, parseCidr, parseCidrOrIp, parseIp } from '../../src/api/index.js';

const cidr = (t: string) => parseCidr(t)!.cidr;

describe('parseIp / formatIp', () => {
  test.each([
    ['10.0.0.1', '10.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['::1', '::1'],
    ['FD00::0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ])('%s → %s', (input, out) => {
    expect(formatIp(parseIp(input)!)).toBe(out);
  });

  test.each(['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.-4', 'a.b.c.d', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', 'fe80::1%eth0', '12345::', ':1', 'g::1'])('rejects %j', (input) => {
    expect(parseIp(input)).toBeUndefined();
  });
});

describe('CIDRs', () => {
  test('parse, host bits, canonical text', () => {
    expect(parseCidr('10.1.2.3/8')).toMatchObject({ hostBitsSet: true, cidr: { version: 4, prefix: 8 } });
    expect(formatCidr(cidr('10.1.2.3/8'))).toBe('10.0.0.0/8');
    expect(normalizeCidr('FD00:0::1/64')).toBe('fd00::/64');
    expect(normalizeCidr('0.0.0.0/0')).toBe('0.0.0.0/0');
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/08', '::/129', 'x/8', '10.0.0.0/']) expect(parseCidr(bad)).toBeUndefined();
  });

  test('bare IPs are /32 or /128 for parseCidrOrIp', () => {
    expect(parseCidrOrIp('100.64.3.255')).toMatchObject({ bareIp: true, cidr: { prefix: 32 } });
    expect(parseCidrOrIp('fd00::1')).toMatchObject({ bareIp: true, cidr: { prefix: 128, version: 6 } });
    expect(parseCidrOrIp('100.64.0.0/30')).toMatchObject({ bareIp: false });
  });

  test('overlap, containment, size', () => {
    expect(cidrsOverlap(cidr('100.64.0.0/22'), cidr('100.64.3.252/30'))).toBe(true);
    expect(cidrsOverlap(cidr('100.64.0.4/30'), cidr('100.64.0.8/30'))).toBe(false);
    expect(cidrsOverlap(cidr('0.0.0.0/0'), cidr('::/0'))).toBe(false);
    expect(cidrContains(cidr('100.64.0.0/22'), cidr('100.64.0.4/30'))).toBe(true);
    expect(cidrContains(cidr('100.64.0.4/30'), cidr('100.64.0.0/22'))).toBe(false);
    expect(cidrContainsIp(cidr('100.64.0.4/30'), parseIp('100.64.0.7')!)).toBe(true);
    expect(cidrContainsIp(cidr('100.64.0.4/30'), parseIp('100.64.0.8')!)).toBe(false);
    expect(cidrSize(cidr('100.64.0.4/30'))).toBe(4n);
    expect(cidrSize(cidr('::/0'))).toBe(1n << 128n);
  });
});
