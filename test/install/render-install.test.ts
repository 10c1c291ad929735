import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_CONFIGURATION_NAME } from '../../src/controller/webhook/configuration.js';
import { clusterRoleRules, PROGRAMS, WEBHOOK_CONFIGURATION } from '../../src/install/rbac.js';
import { renderInstall } from '../../src/install/render-install.js';
import { eventually, kubeAvailable, kubectl, kubectlOk } from '../support/kubectl.js';

const repo = resolve(import.meta.dirname, '../..');

describe('egw render install (pure)', () => {
  const objects = renderInstall({ image: 'example.invalid/egw:test', awsMode: 'eni-per-workload' });
  it('puts the namespace first, CRDs before anything that needs them, and names every kind once', () => {
    expect(objects[0]).toMatchObject({ kind: 'Namespace', metadata: { name: 'egw-system' } });
    const firstNonCrd = objects.findIndex((o, i) => i > 0 && o.kind !== 'CustomResourceDefinition');
    expect(objects.slice(firstNonCrd).some((o) => o.kind === 'CustomResourceDefinition')).toBe(false);
    const ids = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(new Set(ids).size).toBe(ids.length);
    expect(objects.at(-1)).toMatchObject({ kind: 'FelixConfiguration', spec: { awsSecondaryIPSupport: 'EnabledENIPerWorkload' } });
  });
  it('names the webhook configuration as the controller does', () => {
    expect(WEBHOOK_CONFIGURATION).toBe(WEBHOOK_CONFIGURATION_NAME);
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    expect(JSON.stringify(deployment)).toContain('egw-system/egw-webhook');
    expect(objects.some((o) => o.kind === 'Service' && o.metadata.name === 'egw-webhook')).toBe(true);
  });
  it('gives no program a wildcard, and only the controller Deployments', () => {
    for (const program of PROGRAMS) {
      for (const rule of clusterRoleRules(program)) {
        expect(rule.verbs).not.toContain('*');
        expect(rule.resources).not.toContain('*');
        if (program !== 'controller') expect(rule.resources).not.toContain('deployments');
      }
    }
  });
});

describe.skipIf(!kubeAvailable)('egw render install on a real kube-apiserver (needs scripts/with-kube)', () => {
  const sa = (p: string): string => `system:serviceaccount:egw-system:egw-${p}`;
  const can = (who: string, ...args: string[]): boolean => kubectl(['auth', 'can-i', '--as', sa(who), ...args]).stdout.trim() === 'yes';
  beforeAll(() => {
    const render = spawnSync('node', [resolve(repo, 'dist/src/cli/main.js'), 'render', 'install', '--image', 'example.invalid/egw:test'], { encoding: 'utf8' });
    expect(render.status, render.stderr).toBe(0);
    // Server-side apply, as an operator would; --force-conflicts because other test files of this control
    // plane apply some of the same objects (the CRDs, the admission policy).
    kubectlOk(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-install', '-f', '-'], render.stdout);
  });
  afterAll(() => {
    kubectl(['delete', 'namespace', 'egw-system', '--wait=false']);
  });

  it('is accepted whole: CRDs established, workloads created, the CNI token minted', async () => {
    expect(kubectl(['wait', '--for', 'condition=Established', '--timeout', '30s', 'crd', '-l', 'app.kubernetes.io/part-of=egw']).code).toBe(0);
    expect(kubectlOk(['-n', 'egw-system', 'get', 'daemonset/egw-agent', 'deployment/egw-controller', '-o', 'name']).trim().split('\n')).toHaveLength(2);
    expect(await eventually(() => kubectl(['-n', 'egw-system', 'get', 'secret', 'egw-cni-token', '-o', 'jsonpath={.data.token}']).stdout.length > 100)).toBe(true);
    expect(kubectlOk(['api-resources', '--api-group', 'egw.io', '-o', 'name'])).toContain('ipamblocks.egw.io');
  });

  it('grants each program what it needs and nothing more', () => {
    expect(can('agent', 'watch', 'egressgatewaypolicies.projectcalico.org')).toBe(true);
    expect(can('agent', 'update', 'pods', '--subresource', 'status')).toBe(true);
    expect(can('agent', 'update', 'nodes', '--subresource', 'status')).toBe(true);
    expect(can('agent', 'create', 'ipamhandles.egw.io')).toBe(true);
    expect(can('agent', 'update', 'pods')).toBe(false);
    expect(can('agent', 'create', 'deployments.apps', '-n', 'default')).toBe(false);
    expect(can('agent', 'get', 'secrets', '-n', 'egw-system')).toBe(false);
    expect(can('controller', 'create', 'deployments.apps', '-n', 'default')).toBe(true);
    expect(can('controller', 'update', 'egressgateways.operator.tigera.io', '--subresource', 'status', '-n', 'default')).toBe(true);
    expect(can('controller', 'update', 'leases.coordination.k8s.io', '-n', 'egw-system')).toBe(true);
    expect(can('controller', 'update', 'leases.coordination.k8s.io', '-n', 'kube-system')).toBe(false);
    expect(can('controller', 'update', 'ippools.projectcalico.org')).toBe(false);
    expect(can('controller', 'update', 'validatingwebhookconfigurations.admissionregistration.k8s.io/egw-validation')).toBe(true);
    expect(can('controller', 'update', 'validatingwebhookconfigurations.admissionregistration.k8s.io/other')).toBe(false);
    expect(can('controller', 'get', 'secrets/egw-webhook-tls', '-n', 'egw-system')).toBe(true);
    expect(can('controller', 'get', 'secrets/egw-cni-token', '-n', 'egw-system')).toBe(false);
    expect(can('gateway', 'list', 'nodes')).toBe(true);
    expect(can('gateway', 'create', 'ipamhandles.egw.io')).toBe(false);
    expect(can('cni', 'create', 'ipamhandles.egw.io')).toBe(true);
    expect(can('cni', 'list', 'egressgatewaypolicies.projectcalico.org')).toBe(false);
    // Events (src/datastore/kubernetes/kube-events.ts): create, get and patch of events.k8s.io Events, in any
    // namespace (they go beside the object they are about); nothing else, and the gateway none.
    for (const program of ['agent', 'controller', 'cni']) {
      for (const verb of ['create', 'get', 'patch']) expect(can(program, verb, 'events.events.k8s.io', '-n', 'default'), `${program} ${verb} events`).toBe(true);
      expect(can(program, 'delete', 'events.events.k8s.io', '-n', 'default')).toBe(false);
      expect(can(program, 'list', 'events.events.k8s.io', '-n', 'default')).toBe(false);
      expect(can(program, 'create', 'events', '-n', 'default')).toBe(false);
    }
    expect(can('gateway', 'create', 'events.events.k8s.io', '-n', 'default')).toBe(false);
  });
});
