import { describe, expect, it } from 'vitest';
import { ALLOWED_ELASTIC_IPS, ALLOWED_IPV4_POOLS, elasticIpsNotAllowed, poolsNotAllowed, readAllowList } from '../../src/api/index.js';

const pools = [
  { name: 'red', cidr: '100.64.0.4/30' },
  { name: 'blue', cidr: '100.64.0.8/30' },
];

describe('namespace allow-lists (pools, Elastic IPs)', () => {
  it('absent: everything; malformed: nothing; present: what it lists', () => {
    expect(readAllowList(undefined, ALLOWED_IPV4_POOLS)).toEqual({ all: true });
    expect(readAllowList({ other: 'x' }, ALLOWED_IPV4_POOLS)).toEqual({ all: true });
    expect(readAllowList({ [ALLOWED_IPV4_POOLS]: 'red' }, ALLOWED_IPV4_POOLS)).toEqual({ all: false, entries: [], malformed: true });
    expect(readAllowList({ [ALLOWED_ELASTIC_IPS]: '["192.0.2.1"]' }, ALLOWED_ELASTIC_IPS)).toEqual({ all: false, entries: ['192.0.2.1'], malformed: false });
  });

  it('a pool is allowed by name or by CIDR, whichever form either side uses; unknown entries by their text', () => {
    const allow = readAllowList({ [ALLOWED_IPV4_POOLS]: '["100.64.0.4/30", "gone"]' }, ALLOWED_IPV4_POOLS);
    expect(poolsNotAllowed(['red', '100.64.0.4/30', '100.64.0.5/30', 'blue', '100.64.0.8/30', 'gone', 'other'], allow, pools)).toEqual(['blue', '100.64.0.8/30', 'other']);
    expect(poolsNotAllowed(['blue'], { all: true }, pools)).toEqual([]);
    expect(poolsNotAllowed(['red'], readAllowList({ [ALLOWED_IPV4_POOLS]: '[]' }, ALLOWED_IPV4_POOLS), pools)).toEqual(['red']);
  });

  it('Elastic IPs by address', () => {
    const allow = readAllowList({ [ALLOWED_ELASTIC_IPS]: '["203.0.113.8"]' }, ALLOWED_ELASTIC_IPS);
    expect(elasticIpsNotAllowed(['203.0.113.7', '203.0.113.8'], allow)).toEqual(['203.0.113.7']);
  });
});
