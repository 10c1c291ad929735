import { describe, expect, it } from 'vitest';
import { renderPodTemplate } from '../../../src/controller/operator/index.js';
import { containerArgv, containerEnv, expandVars, parseContainer, resolveFieldRef, type DownwardFacts } from '../../../src/lab/kubelet/env.js';
import { referenceRed } from '../../controller/operator/helpers.js';

const facts: DownwardFacts = {
  name: 'gw-1',
  namespace: 'calico-egress',
  uid: 'uid-1',
  nodeName: 'node-a1',
  serviceAccountName: 'sa',
  labels: { 'egress-code': 'red' },
  annotations: { 'cni.projectcalico.org/ipv4pools': '["egress-red-west-1"]' },
  podIP: '100.64.0.5',
  podIPs: ['100.64.0.5'],
  hostIP: '10.10.1.10',
};

const EGW = ['/usr/bin/node', '/repo/dist/src/cli/main.js'];

describe('downward API', () => {
  const cases: [string, string][] = [
    ['metadata.name', 'gw-1'],
    ['metadata.namespace', 'calico-egress'],
    ['metadata.uid', 'uid-1'],
    ["metadata.labels['egress-code']", 'red'],
    ["metadata.annotations['cni.projectcalico.org/ipv4pools']", '["egress-red-west-1"]'],
    ["metadata.labels['missing']", ''],
    ['spec.nodeName', 'node-a1'],
    ['spec.serviceAccountName', 'sa'],
    ['status.podIP', '100.64.0.5'],
    ['status.hostIP', '10.10.1.10'],
  ];
  for (const [path, value] of cases) {
    it(`${path} → ${JSON.stringify(value)}`, () => {
      expect(resolveFieldRef(path, facts)).toEqual({ ok: true, value });
    });
  }

  it('status.podIPs is comma-joined, as Kubernetes does', () => {
    expect(resolveFieldRef('status.podIPs', { ...facts, podIPs: ['100.64.0.5', 'fd00::5'] })).toEqual({ ok: true, value: '100.64.0.5,fd00::5' });
  });

  it('an unknown field path is an error', () => {
    expect(resolveFieldRef('spec.hostname', facts)).toEqual({ ok: false, error: 'unsupported fieldPath "spec.hostname"' });
  });
});

describe('$(VAR) expansion', () => {
  const vars = new Map([
    ['A', 'x'],
    ['B', 'y'],
  ]);
  const cases: [string, string][] = [
    ['$(A)', 'x'],
    ['pre-$(A)-$(B)-post', 'pre-x-y-post'],
    ['$(MISSING)', '$(MISSING)'],
    ['$$(A)', '$(A)'],
    ['$$', '$'],
    ['cost $5', 'cost $5'],
    ['$(A', '$(A'],
    ['end$', 'end$'],
  ];
  for (const [input, out] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(out)}`, () => {
      expect(expandVars(input, vars)).toBe(out);
    });
  }
});

describe('container environment', () => {
  it("resolves the operator-rendered gateway container (the reference's red gateway)", () => {
    const template = renderPodTemplate(referenceRed());
    const main = parseContainer(template.spec.containers[0])!;
    const r = containerEnv(main, facts, { PATH: '/bin', EGW_DATASTORE: '/lab/egw.db' });
    expect(r.ok).toBe(true);
    const env = r.ok ? r.value : {};
    expect(env).toMatchObject({ PATH: '/bin', EGW_DATASTORE: '/lab/egw.db', HEALTH_PORT: '8080', EGRESS_POD_IP: '100.64.0.5', EGRESS_POD_IPS: '100.64.0.5', EGRESS_VXLAN_VNI: '4097', LOG_SEVERITY: 'Info' });
    expect(containerArgv(main, env, EGW)).toEqual([...EGW, 'gateway']);
    const init = parseContainer(template.spec.initContainers[0])!;
    const ie = containerEnv(init, facts, {});
    expect(ie.ok && ie.value['EGRESS_POD_IP']).toBe('100.64.0.5');
    expect(containerArgv(init, ie.ok ? ie.value : {}, EGW)).toEqual([...EGW, 'gateway', 'init']);
  });

  it('later variables see earlier ones; the container overrides what the runtime injects', () => {
    const c = parseContainer({ name: 'c', env: [{ name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }, { name: 'URL', value: 'http://$(IP):8080/$(NOPE)' }, { name: 'EGW_DATASTORE', value: 'etcd://10.0.0.1:2379' }] })!;
    const r = containerEnv(c, facts, { EGW_DATASTORE: '/lab/egw.db' });
    expect(r).toEqual({ ok: true, value: { EGW_DATASTORE: 'etcd://10.0.0.1:2379', IP: '100.64.0.5', URL: 'http://100.64.0.5:8080/$(NOPE)' } });
  });

  it('sources the lab does not have: optional ones are skipped, the others are errors', () => {
    const optional = parseContainer({ name: 'c', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'k', optional: true } } }] })!;
    expect(containerEnv(optional, facts, {})).toEqual({ ok: true, value: {} });
    const required = parseContainer({ name: 'c', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'm', key: 'k' } } }] })!;
    expect(containerEnv(required, facts, {})).toEqual({ ok: false, error: 'container c: env X: configMapKeyRef is not supported by the lab kubelet' });
    const field = parseContainer({ name: 'c', env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'status.phase' } } }] })!;
    expect(containerEnv(field, facts, {})).toEqual({ ok: false, error: 'container c: env X: unsupported fieldPath "status.phase"' });
  });
});

describe('container argv', () => {
  it('egw commands run the compiled egw with the args appended and expanded', () => {
    const c = parseContainer({ name: 'c', command: ['egw', 'gateway'], args: ['--pod-ip', '$(POD_IP)'] })!;
    expect(containerArgv(c, { POD_IP: '100.64.0.9' }, EGW)).toEqual([...EGW, 'gateway', '--pod-ip', '100.64.0.9']);
    expect(containerArgv(c, {}, ['/usr/local/bin/egw'])).toEqual(['/usr/local/bin/egw', 'gateway', '--pod-ip', '$(POD_IP)']);
  });

  it('any other container gets no process', () => {
    expect(containerArgv(parseContainer({ name: 'c', command: ['/bin/sleep', 'infinity'] })!, {}, EGW)).toBeUndefined();
    expect(containerArgv(parseContainer({ name: 'c', image: 'busybox' })!, {}, EGW)).toBeUndefined();
    expect(containerArgv(parseContainer({ name: 'c', command: ['egwx'] })!, {}, EGW)).toBeUndefined();
  });
});
