import { describe, expect, it } from 'vitest';
import { isEgwError } from '../../src/platform/errors.js';
import {
  canonicalIpv4Net,
  compareIpv4Nets,
  formatIpv4,
  formatIpv4Net,
  ipv4Net,
  ipv4NetContains,
  ipv4NetCovers,
  ipv4NetLast,
  ipv4NetsOverlap,
  isIpv4,
  outermostIpv4Nets,
  parseIpv4,
  parseIpv4Net,
  requireIpv4,
  requireIpv4Net,
  sortIpv4Texts,
  type Ipv4NetOptions,
} from '../../src/platform/ipv4.js';

const CLEAR: Ipv4NetOptions = { hostBits: 'clear' };
const REFUSE: Ipv4NetOptions = { hostBits: 'refuse' };

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('parseIpv4', () => {
  it('reads dotted quads as unsigned 32-bit numbers, the extremes included', () => {
    expect(parseIpv4('0.0.0.0')).toBe(0);
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIpv4('10.0.0.1')).toBe(0x0a000001);
    expect(parseIpv4('100.64.3.255')).toBe(0x644003ff);
    expect(parseIpv4('203.0.113.200')).toBe(0xcb0071c8);
    expect(parseIpv4('128.0.0.0')).toBe(2 ** 31); // unsigned: never negative
  });

  it('refuses anything that is not exactly four decimal octets 0–255', () => {
    const bad = [
      '', '1.2.3', '1.2.3.4.5', '1.2.3.', '.1.2.3', '1..2.3', '1.2.3.4.',
      '256.0.0.1', '1.2.3.256', '1.2.3.999', '1.2.3.1000',
      '010.0.0.1', '10.0.0.01', '00.0.0.0', '1.2.3.04', // leading zeros: octal or decimal?
      '-1.2.3.4', '1.2.3.-4', '+1.2.3.4',
      ' 1.2.3.4', '1.2.3.4 ', '1.2. 3.4', '1.2.3.4\n', '\t1.2.3.4',
      '0x1.2.3.4', '1e2.0.0.1', 'a.b.c.d', '1.2.3.4/32', '::1', '::ffff:1.2.3.4', '１.2.3.4',
    ];
    for (const text of bad) {
      expect(parseIpv4(text), JSON.stringify(text)).toBeUndefined();
      expect(isIpv4(text), JSON.stringify(text)).toBe(false);
    }
  });

  it('accepts a lone zero octet', () => {
    expect(parseIpv4('10.0.0.0')).toBe(0x0a000000);
    expect(isIpv4('0.0.0.0')).toBe(true);
  });

  it('round-trips through formatIpv4 for every octet value', () => {
    for (let o = 0; o < 256; o++) {
      const text = `${o}.${255 - o}.${o}.${(o * 7) % 256}`;
      expect(formatIpv4(parseIpv4(text)!)).toBe(text);
    }
    expect(formatIpv4(0)).toBe('0.0.0.0');
    expect(formatIpv4(0xffffffff)).toBe('255.255.255.255');
  });

  it('requireIpv4 throws InvalidInput with a hint', () => {
    expect(requireIpv4('192.0.2.1')).toBe(0xc0000201);
    const err = thrown(() => requireIpv4('010.0.0.1'));
    expect(isEgwError(err, 'InvalidInput')).toBe(true);
    expect((err as Error).message).toContain('"010.0.0.1" is not an IPv4 address');
  });
});

describe('parseIpv4Net', () => {
  it('reads the extremes: 0.0.0.0/0 and /32', () => {
    expect(parseIpv4Net('0.0.0.0/0', REFUSE)).toEqual({ first: 0, prefix: 0, size: 2 ** 32 });
    expect(parseIpv4Net('255.255.255.255/32', REFUSE)).toEqual({ first: 0xffffffff, prefix: 32, size: 1 });
    expect(parseIpv4Net('198.51.100.0/24', REFUSE)).toEqual({ first: 0xc6336400, prefix: 24, size: 256 });
  });

  it('host bits: refused or cleared, as the caller chooses', () => {
    expect(parseIpv4Net('10.0.0.1/24', REFUSE)).toBeUndefined();
    expect(parseIpv4Net('10.0.0.1/24', CLEAR)).toEqual({ first: 0x0a000000, prefix: 24, size: 256 });
    expect(parseIpv4Net('255.255.255.255/31', CLEAR)).toEqual(ipv4Net(0xfffffffe, 31));
    expect(parseIpv4Net('203.0.113.77/0', CLEAR)).toEqual(ipv4Net(0, 0));
    expect(parseIpv4Net('203.0.113.77/0', REFUSE)).toBeUndefined();
    expect(parseIpv4Net('203.0.113.77/32', REFUSE)).toEqual(ipv4Net(0xcb00714d, 32));
  });

  it('bare addresses only when asked for; `default` only when asked for', () => {
    expect(parseIpv4Net('10.1.2.3', CLEAR)).toBeUndefined();
    expect(parseIpv4Net('10.1.2.3', { hostBits: 'refuse', bareAddress: true })).toEqual(ipv4Net(0x0a010203, 32));
    expect(parseIpv4Net('default', { hostBits: 'clear', bareAddress: true })).toBeUndefined();
    expect(parseIpv4Net('default', { hostBits: 'clear', defaultWord: true })).toEqual(ipv4Net(0, 0));
  });

  it('refuses malformed prefixes and addresses', () => {
    const bad = [
      '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/ 8', '10.0.0.0/8 ', ' 10.0.0.0/8',
      '10.0.0.0/8/8', '10.0.0.0/1.5', '10.0.0.0/x', '10.0.0/8', '1.2.3.4.5/32', '010.0.0.0/8', '10.0.0.256/8',
      '/8', '::1/128', 'fd00::/64', 'default', '',
    ];
    for (const text of bad) {
      expect(parseIpv4Net(text, { hostBits: 'clear', bareAddress: true }), JSON.stringify(text)).toBeUndefined();
    }
  });

  it('requireIpv4Net throws InvalidInput and names host bits when those are the fault', () => {
    const hostBits = thrown(() => requireIpv4Net('10.0.0.1/24', REFUSE));
    expect(isEgwError(hostBits, 'InvalidInput')).toBe(true);
    expect((hostBits as Error).message).toBe('"10.0.0.1/24" has host bits set');
    expect((hostBits as { hint?: string }).hint).toContain('10.0.0.0/24');
    const garbage = thrown(() => requireIpv4Net('nope', CLEAR));
    expect(isEgwError(garbage, 'InvalidInput')).toBe(true);
    expect((garbage as Error).message).toBe('"nope" is not an IPv4 CIDR');
  });

  it('canonicalIpv4Net speaks the kernel’s forms', () => {
    expect(canonicalIpv4Net('default')).toBe('0.0.0.0/0');
    expect(canonicalIpv4Net('10.1.2.3')).toBe('10.1.2.3/32');
    expect(canonicalIpv4Net('10.1.2.3/8')).toBe('10.0.0.0/8');
    expect(canonicalIpv4Net('255.255.255.255/31')).toBe('255.255.255.254/31');
    expect(isEgwError(thrown(() => canonicalIpv4Net('010.0.0.1')), 'InvalidInput')).toBe(true);
  });
});

describe('networks', () => {
  const all = ipv4Net(0, 0);
  const ten = parseIpv4Net('10.0.0.0/8', REFUSE)!;
  const sub = parseIpv4Net('10.20.0.0/16', REFUSE)!;
  const host = ipv4Net(0xffffffff, 32);

  it('ipv4Net clears host bits; first/last/size', () => {
    expect(ipv4Net(0x0a141e28, 8)).toEqual(ten);
    expect(ipv4NetLast(ten)).toBe(parseIpv4('10.255.255.255'));
    expect(ipv4NetLast(all)).toBe(0xffffffff);
    expect(all.size).toBe(2 ** 32);
    expect(ipv4NetLast(host)).toBe(0xffffffff);
    expect(formatIpv4Net(ten)).toBe('10.0.0.0/8');
    expect(formatIpv4Net(all)).toBe('0.0.0.0/0');
    expect(formatIpv4Net(host)).toBe('255.255.255.255/32');
  });

  it('contains: the edges are inside, one past is not', () => {
    expect(ipv4NetContains(ten, parseIpv4('10.0.0.0')!)).toBe(true);
    expect(ipv4NetContains(ten, parseIpv4('10.255.255.255')!)).toBe(true);
    expect(ipv4NetContains(ten, parseIpv4('9.255.255.255')!)).toBe(false);
    expect(ipv4NetContains(ten, parseIpv4('11.0.0.0')!)).toBe(false);
    expect(ipv4NetContains(all, 0)).toBe(true);
    expect(ipv4NetContains(all, 0xffffffff)).toBe(true);
    expect(ipv4NetContains(host, 0xffffffff)).toBe(true);
    expect(ipv4NetContains(host, 0xfffffffe)).toBe(false);
  });

  it('covers and overlaps', () => {
    expect(ipv4NetCovers(ten, sub)).toBe(true);
    expect(ipv4NetCovers(sub, ten)).toBe(false);
    expect(ipv4NetCovers(ten, ten)).toBe(true);
    expect(ipv4NetCovers(all, host)).toBe(true);
    expect(ipv4NetsOverlap(ten, sub)).toBe(true);
    expect(ipv4NetsOverlap(sub, ten)).toBe(true);
    expect(ipv4NetsOverlap(ten, parseIpv4Net('11.0.0.0/8', REFUSE)!)).toBe(false);
    expect(ipv4NetsOverlap(all, host)).toBe(true);
  });

  it('orders by address, larger network first', () => {
    const nets = [sub, host, ten, all, ipv4Net(0, 32)];
    expect(nets.sort(compareIpv4Nets).map(formatIpv4Net)).toEqual(['0.0.0.0/0', '0.0.0.0/32', '10.0.0.0/8', '10.20.0.0/16', '255.255.255.255/32']);
  });

  it('outermost networks: sorted, repeats and nested ones dropped', () => {
    const texts = ['10.20.0.0/16', '10.0.0.0/8', '100.64.0.0/10', '10.20.1.5', '100.64.0.0/10', '198.18.0.0/15'];
    const nets = texts.map((t) => parseIpv4Net(t, { hostBits: 'clear', bareAddress: true })!);
    expect(outermostIpv4Nets(nets).map(formatIpv4Net)).toEqual(['10.0.0.0/8', '100.64.0.0/10', '198.18.0.0/15']);
    expect(outermostIpv4Nets([...nets].reverse()).map(formatIpv4Net)).toEqual(['10.0.0.0/8', '100.64.0.0/10', '198.18.0.0/15']);
    expect(outermostIpv4Nets([...nets, all]).map(formatIpv4Net)).toEqual(['0.0.0.0/0']);
    expect(outermostIpv4Nets([])).toEqual([]);
  });

  it('sorts address texts numerically without repeats, and refuses invalid ones', () => {
    expect(sortIpv4Texts(['10.0.0.10', '10.0.0.9', '10.0.0.10', '9.255.255.255'])).toEqual(['9.255.255.255', '10.0.0.9', '10.0.0.10']);
    expect(sortIpv4Texts([])).toEqual([]);
    expect(isEgwError(thrown(() => sortIpv4Texts(['10.0.0.1', '10.0.0.01'])), 'InvalidInput')).toBe(true);
  });
});
