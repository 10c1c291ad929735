/**
 * `egw ipam allocate|release|show` through the compiled CLI: the address on stdout, exit 1 with the reason
 * when none can be had, idempotent releases.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { EGW_CLI } from '../support/dist.js';
import type { TestStore } from './helpers.js';
import { awsPool, node, openTestStore, pool, reservation, seed, subnet } from './helpers.js';

let t: TestStore;
beforeEach(async () => {
  t = await openTestStore('egw-ipam-cli-');
  await seed(
    t.store,
    node('n1', { 'topology.kubernetes.io/zone': 'us-west-2a' }),
    pool('small', { cidr: '10.70.0.0/30', blockSize: 30 }),
    subnet('subnet-000000000000000001', '100.64.0.0/22', 'us-west-2a'),
    awsPool('egress-red-west-1', '100.64.0.4/30', 'subnet-000000000000000001'),
    reservation('aws', ['100.64.0.0/30', '100.64.3.255']),
  );
});
afterEach(async () => {
  await t.cleanup();
});

function egw(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [EGW_CLI, '--datastore', t.path, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

it('allocate prints the address, fails with the reason when none is left, and release frees it', () => {
  const got = [0, 1, 2, 3].map((i) => egw('ipam', 'allocate', '--handle', `h${i}`, '--node', 'n1'));
  expect(got.map((g) => g.code)).toEqual([0, 0, 0, 0]);
  expect(got.map((g) => g.stdout.trim()).sort()).toEqual(['10.70.0.0', '10.70.0.1', '10.70.0.2', '10.70.0.3']);
  const none = egw('ipam', 'allocate', '--handle', 'h4', '--node', 'n1');
  expect(none.code).toBe(1);
  expect(none.stdout).toBe('');
  expect(none.stderr).toContain('error: no IP address for handle h4 on node n1: every qualified pool is full; ');
  expect(none.stderr).toContain('egress-red-west-1 (100.64.0.4/30): not selected — nodeSelector "!all()" does not select node n1');
  expect(none.stderr).toContain('small (10.70.0.0/30): full — 4 of 4 usable addresses allocated');

  const aws = egw('ipam', 'allocate', '--handle', 'gw', '--node', 'n1', '--pool', 'egress-red-west-1', '--aws');
  expect(aws.code, aws.stderr).toBe(0);
  expect(aws.stdout).toMatch(/^100\.64\.0\.[4-7]\n$/);
  const notAws = egw('ipam', 'allocate', '--handle', 'gw2', '--node', 'n1', '--pool', 'egress-red-west-1');
  expect(notAws.code).toBe(1);
  expect(notAws.stderr).toContain('egress-red-west-1 (100.64.0.4/30): AWS-backed');

  expect(egw('ipam', 'release', '--handle', 'h0')).toMatchObject({ code: 0, stdout: expect.stringMatching(/^released 10\.70\.0\.\d \(handle h0\)\n$/) as unknown });
  expect(egw('ipam', 'release', '--handle', 'h0')).toMatchObject({ code: 0, stdout: 'nothing to release: handle h0 holds no address\n' });
  const ip = got[1]!.stdout.trim();
  expect(egw('ipam', 'release', '--ip', ip)).toMatchObject({ code: 0, stdout: `released ${ip} (handle h1)\n` });
  expect(egw('ipam', 'release', '--ip', ip)).toMatchObject({ code: 0, stdout: `nothing to release: ${ip} is not allocated\n` });
  expect(egw('ipam', 'release').code).toBe(2);

  const show = egw('ipam', 'show');
  expect(show.stdout).toMatch(/small\s+10\.70\.0\.0\/30\s+\/30\s+4\s+0\s+2\s+2/);
  expect(show.stdout).toMatch(/egress-red-west-1\s+100\.64\.0\.4\/30\s+\/32\s+4\s+0\s+1\s+3\s+subnet-000000000000000001/);
  expect(show.stdout).toMatch(/n1\s+3\s+10\.70\.0\.0\/30 \(2\/4\)/);
  expect(egw('ipam', 'check')).toMatchObject({ code: 0 });
});
