import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');
const root = mkdtempSync(join(tmpdir(), 'egw-install-cni-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function run(): string {
  const tokenDir = join(root, 'token');
  mkdirSync(tokenDir, { recursive: true });
  writeFileSync(join(tokenDir, 'token'), 'eyJ.test.token\n');
  writeFileSync(join(tokenDir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  return execFileSync('node', [resolve(repo, 'dist/src/cli/main.js'), 'install-cni', '--bin-dir', join(root, 'host/opt/cni/bin'),
    '--net-dir', join(root, 'host/etc/cni/net.d'), '--egw-dir', join(root, 'host/opt/egw'), '--host-egw-dir', join(root, 'host/opt/egw'),
    '--host-net-dir', '/etc/cni/net.d', '--token-dir', tokenDir, '--api-server', 'https://10.96.0.1:443', '--node', 'node-a',
    '--pod-gateway', '100.127.255.254'], { encoding: 'utf8' });
}

describe('egw install-cni', () => {
  it('installs a launcher that a runtime can run, a kubeconfig with the token, and the conflist; a second run changes nothing', () => {
    expect(run()).toContain('runtime copied');
    const shim = join(root, 'host/opt/cni/bin/egw-ipam');
    expect(statSync(shim).mode & 0o111).not.toBe(0);
    // The launcher answers VERSION as the runtime asks it, with no egw source tree around (the copy is used).
    const v = spawnSync(shim, [], { env: { CNI_COMMAND: 'VERSION', PATH: '/usr/bin:/bin' }, input: '{"cniVersion":"1.0.0"}', encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    const versions = (JSON.parse(v.stdout) as { supportedVersions: string[] }).supportedVersions;
    expect(versions).toContain('1.0.0');
    expect(versions).toContain('0.4.0');
    const kubeconfig = JSON.parse(readFileSync(join(root, 'host/etc/cni/net.d/egw-kubeconfig'), 'utf8')) as { users: { user: { token: string } }[] };
    expect(kubeconfig.users[0]!.user.token).toBe('eyJ.test.token');
    expect(statSync(join(root, 'host/etc/cni/net.d/egw-kubeconfig')).mode & 0o077).toBe(0);
    const conflist = JSON.parse(readFileSync(join(root, 'host/etc/cni/net.d/10-egw.conflist'), 'utf8')) as { plugins: { ipam: Record<string, string> }[] };
    expect(conflist.plugins[0]!.ipam).toMatchObject({ type: 'egw-ipam', datastore: 'kubernetes:/etc/cni/net.d/egw-kubeconfig', nodeName: 'node-a' });
    const before = statSync(join(root, 'host/etc/cni/net.d/10-egw.conflist')).mtimeMs;
    const again = run();
    expect(again).toContain('runtime already present');
    expect(again).toContain('wrote nothing');
    expect(statSync(join(root, 'host/etc/cni/net.d/10-egw.conflist')).mtimeMs).toBe(before);
  }, 120_000);
});
