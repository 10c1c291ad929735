/**
 * The egw-ipam plugin in-process: VERSION, version negotiation, result formats per version, environment
 * and configuration errors with the spec's codes, idempotent ADD and DEL, CHECK against prevResult.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCni } from '../../src/cni/plugin.js';
import type { TestStore } from '../ipam/helpers.js';
import { node, openTestStore, pod, pool, seed } from '../ipam/helpers.js';

let t: TestStore;
beforeEach(async () => {
  t = await openTestStore('egw-cni-test-');
  await seed(t.store, node('n1'), pool('p', { cidr: '10.40.0.0/24', blockSize: 28 }), pod('default', 'web'));
});
afterEach(async () => {
  await t.cleanup();
});

const env = (command: string, extra: Record<string, string> = {}): Record<string, string> => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'c0ffee',
  CNI_NETNS: '/var/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web',
  ...extra,
});
const conf = (version = '1.0.0', ipam: Record<string, unknown> = {}): string =>
  JSON.stringify({ cniVersion: version, name: 'net', type: 'ptp', ipam: { type: 'egw-ipam', datastore: t.path, nodeName: 'n1', ...ipam } });
const parse = (s: string): Record<string, unknown> => JSON.parse(s) as Record<string, unknown>;

describe('egw-ipam', () => {
  it('VERSION echoes the asked version and lists the supported ones', async () => {
    const out = await runCni({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
    expect(out.exitCode).toBe(0);
    expect(parse(out.stdout)).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
    expect(parse((await runCni({ CNI_COMMAND: 'VERSION' }, '')).stdout)['cniVersion']).toBe('1.0.0');
  });

  it('ADD returns the 1.0.0 result (no version field) and is idempotent; 0.4.0 results carry version "4"', async () => {
    const a = await runCni(env('ADD'), conf('1.0.0', { gateway: '10.40.1.1', routes: [{ dst: '10.40.0.0/16' }] }));
    expect(a.exitCode, a.stdout).toBe(0);
    const r = parse(a.stdout) as { cniVersion: string; ips: { address: string; gateway: string }[]; routes: unknown };
    expect(r.cniVersion).toBe('1.0.0');
    expect(r.ips).toHaveLength(1);
    expect(r.ips[0]!.address).toMatch(/^10\.40\.0\.\d+\/24$/);
    expect(r.ips[0]).toEqual({ address: r.ips[0]!.address, gateway: '10.40.1.1' });
    expect(r.routes).toEqual([{ dst: '10.40.0.0/16' }]);
    const again = parse((await runCni(env('ADD'), conf('1.0.0', { gateway: '10.40.1.1' }))).stdout) as typeof r;
    expect(again.ips[0]!.address).toBe(r.ips[0]!.address);
    const old = parse((await runCni(env('ADD', { CNI_CONTAINERID: 'other' }), conf('0.4.0', { addressPrefix: 32 }))).stdout) as { ips: Record<string, string>[] };
    expect(old.ips[0]).toMatchObject({ version: '4', gateway: '169.254.1.1' });
    expect(old.ips[0]!['address']).toMatch(/\/32$/);
  });

  it('CHECK passes for the allocation in prevResult and fails (code 104) otherwise; DEL is idempotent', async () => {
    const add = parse((await runCni(env('ADD'), conf())).stdout);
    const ok = await runCni(env('CHECK'), JSON.stringify({ ...parse(conf()), prevResult: add }));
    expect(ok).toEqual({ stdout: '', exitCode: 0 });
    const wrong = await runCni(env('CHECK'), JSON.stringify({ ...parse(conf()), prevResult: { ips: [{ address: '10.99.0.1/24' }] } }));
    expect(wrong.exitCode).toBe(1);
    expect(parse(wrong.stdout)).toMatchObject({ cniVersion: '1.0.0', code: 104, msg: 'allocation differs' });
    expect(await runCni(env('DEL'), conf())).toEqual({ stdout: '', exitCode: 0 });
    expect(await runCni(env('DEL', { CNI_NETNS: '' }), conf())).toEqual({ stdout: '', exitCode: 0 });
    const gone = await runCni(env('CHECK'), JSON.stringify({ ...parse(conf()), prevResult: add }));
    expect(parse(gone.stdout)).toMatchObject({ code: 104, msg: 'no allocation' });
  });

  it('errors carry the spec codes and the configured cniVersion', async () => {
    const cases: [Record<string, string>, string, number, string][] = [
      [env('ADD'), conf('0.2.0'), 1, 'incompatible CNI version'],
      [env('CHECK'), conf('0.3.1'), 1, 'incompatible CNI version'],
      [env('ADD'), conf('1.0.0', { nodename: 'x' }), 2, 'unsupported field'],
      [env('ADD', { CNI_NETNS: '' }), conf(), 4, 'missing environment variables'],
      [env('ADD', { CNI_ARGS: '' }), conf(), 4, 'CNI_ARGS lacks the pod'],
      [env('BOGUS'), conf(), 4, 'invalid CNI_COMMAND'],
      [env('ADD'), '{not json', 6, 'failed to decode the network configuration'],
      [env('ADD'), JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'ptp' }), 7, 'missing ipam'],
      [env('ADD'), conf('1.0.0', { nodeName: 'ghost' }), 103, 'node not found'],
      [env('ADD', { CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=ghost' }), conf(), 102, 'pod not found'],
      [env('ADD'), conf('1.0.0', { ipv4_pools: ['missing-pool'] }), 100, 'no qualified IP pool'],
      [env('ADD'), conf('1.0.0', { datastore: 'etcd://127.0.0.1:1' }), 11, 'datastore unavailable, try again later'],
    ];
    for (const [e, stdin, code, msg] of cases) {
      const out = await runCni(e, stdin);
      expect(out.exitCode, stdin).toBe(1);
      expect(parse(out.stdout), stdin).toMatchObject({ code, msg });
    }
    const v = parse((await runCni(env('ADD'), conf('0.4.0', { nodeName: 'ghost' }))).stdout);
    expect(v['cniVersion']).toBe('0.4.0');
    expect(String(v['details'])).toContain('node ghost does not exist in the datastore');
  });

  it('an exhausted pool is code 101 with every pool named', async () => {
    await seed(t.store, pool('p', { cidr: '10.40.0.0/30', blockSize: 30 }));
    for (let i = 0; i < 4; i++) expect((await runCni(env('ADD', { CNI_CONTAINERID: `c${i}` }), conf())).exitCode).toBe(0);
    const out = parse((await runCni(env('ADD', { CNI_CONTAINERID: 'c4' }), conf())).stdout);
    expect(out).toMatchObject({ code: 101, msg: 'IP pools exhausted' });
    expect(String(out['details'])).toContain('p (10.40.0.0/30): full — 4 of 4 usable addresses allocated');
  });
});
