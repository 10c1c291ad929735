import { describe, expect, it } from 'vitest';
import type { NftTableSpec } from '../../src/linux/nft/nft-table.js';
import { parseNftTable, planNftTable, renderNftReplace, renderNftTable, ruleMark } from '../../src/linux/nft/nft-table.js';

const spec: NftTableSpec = {
  name: 'egw',
  sets: [
    { name: 'nodes', interval: false, elements: ['10.10.2.10', '10.10.1.10'] },
    { name: 'nets', interval: true, elements: ['10.20.0.0/16', '10.0.0.0/8'] },
  ],
  chains: [{ name: 'input', type: 'filter', hook: 'input', priority: 0, policy: 'drop', rules: ['iif "lo" accept', 'udp dport 4790 ip saddr @nodes accept'] }],
};

/** What `nft -j list table ip egw` prints for `spec` as rendered (nftables 1.0.6). */
function observedJson(nodes: unknown[], rules = spec.chains[0]!.rules.map(ruleMark), prio = 0): string {
  return JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'ip', name: 'egw', handle: 2 } },
      { set: { family: 'ip', name: 'nodes', table: 'egw', type: 'ipv4_addr', handle: 3, elem: nodes } },
      { set: { family: 'ip', name: 'nets', table: 'egw', type: 'ipv4_addr', handle: 4, flags: ['interval'], elem: [{ prefix: { addr: '10.0.0.0', len: 8 } }] } },
      { chain: { family: 'ip', table: 'egw', name: 'input', handle: 1, type: 'filter', hook: 'input', prio, policy: 'drop' } },
      ...rules.map((comment, i) => ({ rule: { family: 'ip', table: 'egw', chain: 'input', handle: 5 + i, comment, expr: [] } })),
    ],
  });
}

describe('nft table', () => {
  it('renders canonical sets and marks every rule with the hash of its text', () => {
    const text = renderNftTable(spec);
    expect(text).toContain('elements = { 10.10.1.10, 10.10.2.10 }');
    expect(text).toContain('flags interval');
    expect(text).toContain('elements = { 10.0.0.0/8 }');
    expect(text).toContain(`iif "lo" accept comment "${ruleMark('iif "lo" accept')}"`);
    expect(ruleMark('a')).toMatch(/^egw:[0-9a-f]{12}$/);
    expect(renderNftReplace(spec).split('\n').slice(0, 2)).toEqual(['table ip egw {}', 'delete table ip egw']);
  });

  it('plans nothing when the kernel shows exactly what we want', () => {
    const seen = parseNftTable(observedJson(['10.10.1.10', '10.10.2.10']));
    expect(planNftTable(spec, seen, 'egw')).toEqual({ kind: 'none' });
  });

  it('patches set elements only when only they differ', () => {
    const seen = parseNftTable(observedJson(['10.10.1.10', '10.10.9.9']));
    expect(planNftTable(spec, seen, 'egw')).toEqual({
      kind: 'elements',
      script: 'add element ip egw nodes { 10.10.2.10 }\ndelete element ip egw nodes { 10.10.9.9 }\n',
    });
  });

  it('replaces the whole table atomically when a rule, a chain header or a set kind differs', () => {
    expect(planNftTable(spec, parseNftTable(observedJson(['10.10.1.10', '10.10.2.10'], [ruleMark('iif "lo" accept')])), 'egw').kind).toBe('replace');
    expect(planNftTable(spec, parseNftTable(observedJson(['10.10.1.10', '10.10.2.10'], undefined, 10)), 'egw').kind).toBe('replace');
    expect(planNftTable(spec, parseNftTable(observedJson([{ range: ['10.0.0.1', '10.0.0.9'] }])), 'egw').kind).toBe('replace');
    expect(planNftTable(spec, undefined, 'egw').kind).toBe('replace');
  });

  it('deletes the table when none is wanted, and does nothing when there is none', () => {
    expect(planNftTable(undefined, parseNftTable(observedJson([])), 'egw')).toEqual({ kind: 'delete', script: 'delete table ip egw\n' });
    expect(planNftTable(undefined, undefined, 'egw')).toEqual({ kind: 'none' });
  });

  it('refuses names and rules that could break out of the script', () => {
    expect(() => renderNftTable({ ...spec, name: 'egw; flush ruleset' })).toThrow();
    expect(() => renderNftTable({ ...spec, chains: [{ ...spec.chains[0]!, rules: ['accept\nflush ruleset'] }] })).toThrow();
  });
});
