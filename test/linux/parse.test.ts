import { describe, expect, it } from 'vitest';
import { parseBatchErrors, runBatch } from '../../src/linux/iproute/batch.js';
import {
  parseAddresses, parseBuckets, parseFdb, parseLinks, parseNeighbours, parseNexthops, parseRoutes, parseRules,
} from '../../src/linux/iproute/parse.js';
import type { CommandResult, RunOptions, Shell } from '../../src/platform/shell.js';

// Samples as iproute2 6.1 prints them (captured on a 6.x kernel), named and numeric (-N) forms.
describe('iproute2 JSON parsers', () => {
  it('routes: table, type, protocol in both forms; bare /32 and default canonicalised; main by default', () => {
    const named = '[{"type":"unicast","dst":"default","nhid":2000,"protocol":"69","scope":"global","flags":[],"table":"5"},'
      + '{"type":"throw","dst":"10.0.0.0/8","protocol":"233","table":"5","flags":[]},'
      + '{"type":"unreachable","dst":"198.18.0.0/16","protocol":"233","table":"5","flags":[]},'
      + '{"dst":"10.20.1.5","dev":"v-c1","scope":"link","flags":[]},'
      + '{"type":"local","dst":"10.1.0.1","dev":"v0","table":"local","protocol":"kernel","scope":"host","prefsrc":"10.1.0.1","flags":[]}]';
    expect(parseRoutes(named)).toEqual([
      { table: 5, dst: '0.0.0.0/0', type: 'unicast', protocol: 69, metric: 0, nhid: 2000, gateway: undefined, dev: undefined, onlink: false, scope: 'global' },
      expect.objectContaining({ table: 5, dst: '10.0.0.0/8', type: 'throw', protocol: 233 }),
      expect.objectContaining({ table: 5, dst: '198.18.0.0/16', type: 'unreachable' }),
      expect.objectContaining({ table: 254, dst: '10.20.1.5/32', type: 'unicast', protocol: 3, dev: 'v-c1', scope: 'link' }),
      expect.objectContaining({ table: 255, type: 'local', protocol: 2, scope: 'host' }),
    ]);
    const numeric = '[{"type":"2","dst":"10.1.0.1","dev":"v0","table":"255","protocol":"2","scope":"254","flags":[]},{"type":"9","dst":"10.0.0.0/8","table":"7","protocol":"233","flags":[]}]';
    expect(parseRoutes(numeric)).toEqual([
      expect.objectContaining({ table: 255, type: 'local', protocol: 2, scope: 'host' }),
      expect.objectContaining({ table: 7, type: 'throw', protocol: 233 }),
    ]);
    expect(parseRoutes('')).toEqual([]);
  });

  it('rules: from/iif, prefixes, tables by name or number, protocol (unknown names never equal ours)', () => {
    const text = '[{"priority":0,"src":"all","table":"local"},{"priority":100,"src":"10.1.1.1","table":"5","protocol":"233"},'
      + '{"priority":100,"src":"all","iif":"v0","table":"6","protocol":"233"},{"priority":200,"src":"10.0.0.0","srclen":8,"table":"main","protocol":"egw"},'
      + '{"priority":300,"src":"all","fwmark":"0x80000","fwmask":"0x80000","table":"9"}]';
    expect(parseRules(text)).toEqual([
      expect.objectContaining({ priority: 0, from: undefined, table: 255, protocol: 0 }),
      expect.objectContaining({ priority: 100, from: '10.1.1.1/32', iif: undefined, table: 5, protocol: 233 }),
      expect.objectContaining({ priority: 100, from: undefined, iif: 'v0', table: 6, protocol: 233 }),
      expect.objectContaining({ priority: 200, from: '10.0.0.0/8', table: 254, protocol: -1 }),
      expect.objectContaining({ priority: 300, fwmark: '0x80000/0x80000', table: 9 }),
    ]);
  });

  it('nexthops, groups with resilient arguments, and buckets', () => {
    const text = '[{"id":1005,"gateway":"100.64.0.5","dev":"egw.vxlan","scope":"link","protocol":"233","flags":["onlink"]},'
      + '{"id":2000,"group":[{"id":1005},{"id":1006}],"type":"resilient","resilient_args":{"buckets":8,"idle_timer":120,"unbalanced_timer":0,"unbalanced_time":0},"protocol":"233","flags":[]},'
      + '{"id":7,"group":[{"id":1},{"id":2,"weight":2}],"protocol":"unspec","flags":[]}]';
    expect(parseNexthops(text)).toEqual([
      { id: 1005, protocol: 233, gateway: '100.64.0.5', dev: 'egw.vxlan', onlink: true, blackhole: false, group: undefined, groupType: undefined, resilient: undefined },
      expect.objectContaining({ id: 2000, group: [1005, 1006], groupType: 'resilient', resilient: { buckets: 8, idleTimer: 120, unbalancedTimer: 0 } }),
      expect.objectContaining({ id: 7, group: [1, 2], groupType: 'mpath', protocol: 0 }),
    ]);
    expect(parseBuckets('[{"id":2000,"bucket":{"index":3,"idle_time":0.04,"nhid":1006},"flags":[]}]')).toEqual([{ group: 2000, index: 3, nhid: 1006, idleTime: 0.04 }]);
  });

  it('links with VXLAN details, addresses, neighbours and FDB entries', () => {
    const link = '[{"ifindex":4,"ifname":"egw.vxlan","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1400,"address":"0E:67:0a:00:01:0a",'
      + '"linkinfo":{"info_kind":"vxlan","info_data":{"id":4097,"local":"10.0.1.10","link":"eth0","port":4790,"learning":false}}}]';
    expect(parseLinks(link)).toEqual([{ ifindex: 4, name: 'egw.vxlan', mac: '0e:67:0a:00:01:0a', mtu: 1400, up: true, kind: 'vxlan', master: undefined, vxlan: { vni: 4097, port: 4790, local: '10.0.1.10', parent: 'eth0', learning: false } }]);
    const addr = '[{"ifname":"egw.vxlan","addr_info":[{"family":"inet","local":"10.10.1.10","prefixlen":32,"scope":"253","noprefixroute":true},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]';
    expect(parseAddresses(addr)).toEqual([{ ifname: 'egw.vxlan', address: '10.10.1.10/32', scope: 'link', noprefixroute: true }]);
    expect(parseNeighbours('[{"dst":"10.0.0.1","dev":"egw.vxlan","lladdr":"0e:67:0a:00:00:01","state":["PERMANENT"]},{"dst":"fe80::1","lladdr":"x","state":["STALE"]}]'))
      .toEqual([{ ip: '10.0.0.1', mac: '0e:67:0a:00:00:01', dev: 'egw.vxlan', permanent: true }]);
    expect(parseFdb('[{"mac":"0e:67:0a:00:00:01","ifname":"egw.vxlan","dst":"10.0.0.1","flags":["self"],"state":"permanent"}]'))
      .toEqual([{ mac: '0e:67:0a:00:00:01', dst: '10.0.0.1', dev: 'egw.vxlan', permanent: true }]);
  });
});

describe('ip -batch', () => {
  const cmds = [
    { line: 'link set x1 up', object: 'a' },
    { line: 'route add 10.0.0.0/8 dev nosuch', object: 'b' },
    { line: 'rule del priority 100 from 10.9.9.9 table 7', object: 'c', okIfMissing: true },
    { line: 'nexthop del id 5', object: 'd', okIfMissing: true },
  ];

  it('maps "Command failed -:N" back to the line; a delete of something gone is no failure', () => {
    const stderr = 'Cannot find device "nosuch"\nCommand failed -:2\nRTNETLINK answers: No such file or directory\nCommand failed -:3\nError: Nexthop id is in use.\nCommand failed -:4\n';
    expect(parseBatchErrors(stderr, cmds)).toEqual([
      { command: cmds[1], message: 'Cannot find device "nosuch"' },
      { command: cmds[3], message: 'Error: Nexthop id is in use.' },
    ]);
  });

  it('runs one process with every line on stdin and -force', async () => {
    const calls: { argv: readonly string[]; options?: RunOptions }[] = [];
    const shell: Shell = {
      run: async (argv, options) => {
        calls.push({ argv, ...(options === undefined ? {} : { options }) });
        return { stdout: '', stderr: 'Error: x\nCommand failed -:1\n', exitCode: 1 } satisfies CommandResult;
      },
    };
    const failures = await runBatch(shell, 'bridge', cmds.slice(0, 2));
    expect(calls).toEqual([{ argv: ['bridge', '-force', '-batch', '-'], options: { input: 'link set x1 up\nroute add 10.0.0.0/8 dev nosuch\n', allowFailure: true } }]);
    expect(failures).toEqual([{ command: cmds[0], message: 'Error: x' }]);
    expect(await runBatch(shell, 'ip', [])).toEqual([]);
    expect(calls).toHaveLength(1);
  });
});
