import { describe, expect, it } from 'vitest';
import { checkNetnsPrefix, containerIdOf, MAX_NETNS_NAME, podDirName, podNetnsName, podSandboxId } from '../../../src/lab/kubelet/naming.js';

describe('pod names', () => {
  it('netns: <prefix>-<pod name>-<8 hex>, stable for the same pod', () => {
    const n = podNetnsName('egwlab', 'calico-egress', 'egress-gateway-red-5455c45b74-bcdfg', 'uid-1');
    expect(n).toMatch(/^egwlab-egress-gateway-red-5455c45b74-bcdfg-[0-9a-f]{8}$/);
    expect(podNetnsName('egwlab', 'calico-egress', 'egress-gateway-red-5455c45b74-bcdfg', 'uid-1')).toBe(n);
  });

  it('netns: another uid (a re-created pod of the same name) or namespace gives another name', () => {
    const a = podNetnsName('egwlab', 'default', 'client', 'uid-1');
    expect(podNetnsName('egwlab', 'default', 'client', 'uid-2')).not.toBe(a);
    expect(podNetnsName('egwlab', 'other', 'client', 'uid-1')).not.toBe(a);
  });

  it(`netns: at most ${MAX_NETNS_NAME} characters of [a-z0-9.-], long names cut without a trailing separator`, () => {
    const long = `${'a'.repeat(40)}-${'b'.repeat(200)}`;
    for (const prefix of ['p', 'egwlab', 'x'.repeat(30)]) {
      const n = podNetnsName(prefix, 'ns', long, 'u');
      expect(n.length).toBeLessThanOrEqual(MAX_NETNS_NAME);
      expect(n).toMatch(/^[a-z0-9.-]+$/);
      expect(n).not.toMatch(/--/);
      expect(n.startsWith(`${prefix}-`)).toBe(true);
    }
    expect(podNetnsName('p', 'ns', 'Weird_Name', 'u')).toMatch(/^p-weird-name-[0-9a-f]{8}$/);
  });

  it('prefix: 1–30 characters of a-z, 0-9 and "-"', () => {
    expect(() => checkNetnsPrefix('egwlab')).not.toThrow();
    expect(() => checkNetnsPrefix('egw-lab-1')).not.toThrow();
    for (const bad of ['', 'EGW', '-x', 'a_b', 'x'.repeat(31), 'a/b']) expect(() => checkNetnsPrefix(bad), bad).toThrow(/netns prefix/);
  });

  it('sandbox ID: 64 hex digits, stable, a valid CNI_CONTAINERID', () => {
    const id = podSandboxId('default', 'client', 'uid-1');
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(podSandboxId('default', 'client', 'uid-1')).toBe(id);
    expect(podNetnsName('p', 'default', 'client', 'uid-1').endsWith(id.slice(0, 8))).toBe(true);
  });

  it("state dir: Kubernetes' <namespace>_<name>_<uid>; container IDs name the namespace", () => {
    expect(podDirName('calico-egress', 'gw-1', '1b2c-3d')).toBe('calico-egress_gw-1_1b2c-3d');
    expect(podDirName('ns', 'p', 'a/b c')).toBe('ns_p_a-b-c');
    expect(containerIdOf('egwlab-gw-1-0a1b2c3d', 'egress-gateway')).toBe('egw-lab://egwlab-gw-1-0a1b2c3d/egress-gateway');
  });
});
