/** The pure parts of the kubelet's ports: mountinfo, /proc/<pid>/stat, CNI configuration and results, the launch argv. */
import { describe, expect, it } from 'vitest';
import { absoluteDatastore, egwCommandFor, labKubeletArgv } from '../../../src/lab/kubelet/command.js';
import { checkCniConfig, kubeletCniConfig, parseAddResult, LAB_POD_GATEWAY } from '../../../src/lab/kubelet/cni.js';
import { netnsMountPropagation } from '../../../src/lab/kubelet/netns.js';
import { parseProcStat } from '../../../src/lab/kubelet/processes.js';

describe('mount propagation of /run/netns', () => {
  const host = [
    '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '30 27 0:25 / /run rw,nosuid shared:5 - tmpfs tmpfs rw',
    '42 30 0:25 /netns /run/netns rw shared:7 - tmpfs tmpfs rw',
  ].join('\n');
  it('shared in the host mount namespace', () => {
    expect(netnsMountPropagation(host)).toBe('shared');
  });
  it('slave inside `ip netns exec` (the kubelet refuses to start there)', () => {
    expect(netnsMountPropagation(host.replace('42 30 0:25 /netns /run/netns rw shared:7', '42 30 0:25 /netns /run/netns rw master:7'))).toBe('slave');
    expect(netnsMountPropagation(host.replace('shared:7', 'shared:9 master:7'))).toBe('slave');
  });
  it('the nearest mount above /run/netns when it is not a mount itself; the last of several on one point', () => {
    expect(netnsMountPropagation('27 1 254:0 / / rw master:1 - ext4 /dev/vda rw')).toBe('slave');
    expect(netnsMountPropagation('27 1 254:0 / / rw - ext4 /dev/vda rw')).toBe('private');
    expect(netnsMountPropagation(`${host}\n50 42 0:30 / /run/netns rw master:7 - tmpfs tmpfs rw`)).toBe('slave');
    expect(netnsMountPropagation('')).toBe('absent');
  });
});

describe('/proc/<pid>/stat', () => {
  it('reads state and start time even with spaces and parentheses in the command name', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = 'S';
    fields[19] = '987654';
    expect(parseProcStat(`1234 (node (my app)) ${fields.join(' ')}`)).toEqual({ state: 'S', startTicks: '987654' });
    expect(parseProcStat('garbage')).toBeUndefined();
  });
});

describe('CNI configuration', () => {
  it('default: ptp named k8s-pod-network with egw-ipam, datastore, node and the lab\'s pod gateway filled in', () => {
    expect(kubeletCniConfig(undefined, { datastore: '/lab/egw.db', nodeName: 'node-a1' })).toEqual({
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      type: 'ptp',
      ipam: { type: 'egw-ipam', datastore: '/lab/egw.db', nodeName: 'node-a1', gateway: LAB_POD_GATEWAY },
    });
  });
  it('a given configuration keeps its own values; the input is not changed', () => {
    const base = { cniVersion: '0.4.0', name: 'lab', type: 'ptp', mtu: 1450, ipam: { type: 'egw-ipam', nodeName: 'explicit', gateway: '169.254.1.1' } };
    const frozen = JSON.parse(JSON.stringify(base)) as typeof base;
    expect(kubeletCniConfig(base, { datastore: '/d', nodeName: 'n' })).toEqual({ ...base, ipam: { type: 'egw-ipam', nodeName: 'explicit', gateway: '169.254.1.1', datastore: '/d' } });
    expect(base).toEqual(frozen);
    expect(kubeletCniConfig({ cniVersion: '1.0.0', name: 'x', type: 'bridge', ipam: { type: 'host-local' } }, { datastore: '/d', nodeName: 'n' })['ipam']).toEqual({ type: 'host-local' });
  });
  it('refuses a configuration without name, type or version (and conflists)', () => {
    expect(() => checkCniConfig({ cniVersion: '1.0.0', name: 'x', plugins: [] })).toThrow(/one plugin/);
    expect(checkCniConfig({ cniVersion: '1.0.0', name: 'x', type: 'ptp' })).toEqual({ name: 'x', type: 'ptp' });
  });
  it('reads the first IPv4 address of an ADD result', () => {
    expect(parseAddResult('{"cniVersion":"1.0.0","ips":[{"address":"fd00::5/64"},{"address":"100.64.0.5/30","gateway":"169.254.1.1"}]}')).toMatchObject({ ip: '100.64.0.5', prefixLen: 30, gateway: '169.254.1.1' });
    expect(() => parseAddResult('{"ips":[]}')).toThrow(/no IPv4/);
    expect(() => parseAddResult('oops')).toThrow(/no result/);
  });
});

describe('launching', () => {
  it('the kubelet enters the node network namespace with nsenter (not ip netns exec)', () => {
    expect(labKubeletArgv({ nodeNetns: 'egwlab-node-a1', nodeName: 'node-a1', datastore: '/lab/egw.db', netnsPrefix: 'egwlab', stateDir: '/lab/kubelet/node-a1', egwMain: '/repo/dist/src/cli/main.js', nodeBinary: '/usr/bin/node', speedup: 10 })).toEqual([
      'nsenter', '--net=/var/run/netns/egwlab-node-a1', '--',
      '/usr/bin/node', '/repo/dist/src/cli/main.js', '--datastore', '/lab/egw.db',
      'lab', 'kubelet', '--node', 'node-a1', '--netns-prefix', 'egwlab', '--state-dir', '/lab/kubelet/node-a1', '--egw-bin', '/repo/dist/src/cli/main.js', '--speedup', '10',
    ]);
  });
  it('egw as a .js file runs with node; a binary runs as it is; relative SQLite paths become absolute', () => {
    expect(egwCommandFor('/x/main.js', '/n')).toEqual(['/n', '/x/main.js']);
    expect(egwCommandFor('/usr/local/bin/egw')).toEqual(['/usr/local/bin/egw']);
    expect(absoluteDatastore('./egw-data/egw.db', '/home/me')).toBe('/home/me/egw-data/egw.db');
    expect(absoluteDatastore('etcd://10.0.0.1:2379')).toBe('etcd://10.0.0.1:2379');
    expect(absoluteDatastore('/abs/egw.db')).toBe('/abs/egw.db');
  });
});
