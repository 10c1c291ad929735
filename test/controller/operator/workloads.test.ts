/**
 * The pure parts of the GatewayWorkloads port and its Kubernetes implementation: the subset comparison
 * that decides whether to apply, the Deployment observation behind the status, ownership, the object the
 * operator applies, the gateway identity objects, the render's datastore settings, API error mapping.
 */
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { controllingEgressGateway, isSubset, observeDeployment, renderDeployment } from '../../../src/controller/operator/index.js';
import { deploymentToApply, gatewayIdentityObjects, KubeDeployments, kubeError, loadOperatorKubeConfig, MANAGED_BY_LABEL } from '../../../src/controller/operator/kube-deployments.js';
import { referenceRed } from './helpers.js';

const IMAGE = 'registry.invalid/egw:test';

describe('isSubset', () => {
  it('ignores what the API server or others added, and sees every change of ours', () => {
    const desired = { spec: { replicas: 2, template: { spec: { containers: [{ name: 'a', env: [{ name: 'X', value: '1' }] }] } } } };
    const live = {
      metadata: { resourceVersion: '7', generation: 3 },
      spec: { replicas: 2, strategy: { type: 'RollingUpdate' }, template: { spec: { dnsPolicy: 'ClusterFirst', containers: [{ name: 'a', imagePullPolicy: 'IfNotPresent', env: [{ name: 'X', value: '1' }] }] } } },
    };
    expect(isSubset(desired, live)).toBe(true);
    expect(isSubset(desired, { ...live, spec: { ...live.spec, replicas: 3 } })).toBe(false);
    // A list of ours that grew or shrank differs (lists are compared whole, element by element).
    expect(isSubset({ a: [1, 2] }, { a: [1, 2, 3] })).toBe(false);
    expect(isSubset({ a: [1, 2] }, { a: [1] })).toBe(false);
    expect(isSubset({ a: { b: 1 } }, { a: null })).toBe(false);
    // Quantities are compared as written: a normalised one only costs a no-op apply.
    expect(isSubset({ q: '1' }, { q: 1 })).toBe(false);
    expect(isSubset({ gone: undefined }, {})).toBe(true);
  });

  it('holds for the rendered Deployment against itself with defaults added', () => {
    const d = deploymentToApply(renderDeployment(referenceRed(), { image: IMAGE }));
    const live = structuredClone(d) as unknown as Record<string, unknown>;
    (live['spec'] as Record<string, unknown>)['revisionHistoryLimit'] = 10;
    expect(isSubset(d, live)).toBe(true);
  });
});

describe('observeDeployment', () => {
  it('counts replicas and is complete only when the controller saw the spec and every replica is current', () => {
    const dep = (generation: number, observed: number, status: Record<string, number>): unknown => ({ metadata: { generation }, spec: { replicas: 2 }, status: { observedGeneration: observed, ...status } });
    expect(observeDeployment(dep(2, 2, { replicas: 2, updatedReplicas: 2, readyReplicas: 0 }))).toEqual({
      counts: { replicas: 2, updatedReplicas: 2, readyReplicas: 0, availableReplicas: 0 },
      complete: true,
    });
    expect(observeDeployment(dep(3, 2, { replicas: 2, updatedReplicas: 2 })).complete).toBe(false);
    expect(observeDeployment(dep(2, 2, { replicas: 3, updatedReplicas: 1, readyReplicas: 2, availableReplicas: 2 })).complete).toBe(false);
    expect(observeDeployment(undefined)).toEqual({ counts: { replicas: 0, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0 }, complete: false });
    // A new Deployment (no status yet) is not complete.
    expect(observeDeployment({ metadata: { generation: 1 }, spec: { replicas: 1 } }).complete).toBe(false);
  });
});

describe('ownership', () => {
  it('is the controlling EgressGateway reference of operator.tigera.io/v1 only', () => {
    const ref = { apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: 'red', uid: 'u1', controller: true };
    expect(controllingEgressGateway({ metadata: { ownerReferences: [ref] } })).toEqual({ name: 'red', uid: 'u1' });
    expect(controllingEgressGateway({ metadata: { ownerReferences: [{ ...ref, controller: false }] } })).toBeUndefined();
    expect(controllingEgressGateway({ metadata: { ownerReferences: [{ ...ref, apiVersion: 'other/v1' }] } })).toBeUndefined();
    expect(controllingEgressGateway({ metadata: { ownerReferences: [{ ...ref, kind: 'ReplicaSet' }] } })).toBeUndefined();
    expect(controllingEgressGateway({ metadata: { labels: { 'egress-code': 'red' } } })).toBeUndefined();
    expect(controllingEgressGateway(null)).toBeUndefined();
  });
});

describe('the Kubernetes objects', () => {
  it('applies the render with the managed-by label on the Deployment only (the selector stays the template labels)', () => {
    const red = { ...referenceRed(), metadata: { ...referenceRed().metadata, uid: 'u1' } };
    const rendered = renderDeployment(red, { image: IMAGE, datastore: 'kubernetes', serviceAccountName: 'egw-gateway' });
    const d = deploymentToApply(rendered);
    expect(d.metadata.labels).toEqual({ 'egress-code': 'red', [MANAGED_BY_LABEL]: 'egw-operator' });
    expect(d.spec.selector.matchLabels).toEqual({ 'egress-code': 'red' });
    expect(d.spec.template.metadata.labels).toEqual({ 'egress-code': 'red' });
    expect(d.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'EgressGateway', name: 'egress-gateway-red', uid: 'u1', controller: true });
    expect(rendered.metadata.labels).toEqual({ 'egress-code': 'red' });
  });

  it('renders EGW_DATASTORE and the ServiceAccount only when asked (the lab gets neither)', () => {
    const lab = renderDeployment(referenceRed(), { image: IMAGE });
    expect(lab.spec.template.spec.serviceAccountName).toBeUndefined();
    for (const c of [...lab.spec.template.spec.initContainers, ...lab.spec.template.spec.containers]) expect(c.env.map((e) => e.name)).not.toContain('EGW_DATASTORE');
    const kube = renderDeployment(referenceRed(), { image: IMAGE, datastore: 'kubernetes', serviceAccountName: 'egw-gateway' });
    expect(kube.spec.template.spec.serviceAccountName).toBe('egw-gateway');
    for (const c of [...kube.spec.template.spec.initContainers, ...kube.spec.template.spec.containers]) expect(c.env).toContainEqual({ name: 'EGW_DATASTORE', value: 'kubernetes' });
  });

  it('binds the ServiceAccount egw-gateway of the namespace to the ClusterRole egw-gateway', () => {
    const [sa, crb] = gatewayIdentityObjects('calico-egress');
    expect(sa).toMatchObject({ kind: 'ServiceAccount', metadata: { name: 'egw-gateway', namespace: 'calico-egress' } });
    expect(crb).toMatchObject({
      kind: 'ClusterRoleBinding',
      metadata: { name: 'egw-gateway-calico-egress' },
      roleRef: { kind: 'ClusterRole', name: 'egw-gateway' },
      subjects: [{ kind: 'ServiceAccount', name: 'egw-gateway', namespace: 'calico-egress' }],
    });
  });

  it('KubeDeployments asks the render for the datastore env and the ServiceAccount', () => {
    const kc = loadOperatorKubeConfigFromString();
    const w = new KubeDeployments({ kubeConfig: kc, store: undefined as never });
    expect(w.podSettings).toEqual({ datastore: 'kubernetes', serviceAccountName: 'egw-gateway' });
    expect(w.mechanism).toBe('kubernetes-deployments');
  });
});

describe('kubeError', () => {
  it('maps API statuses to codes and retry classes', () => {
    const api = (code: number): ApiException<unknown> => new ApiException(code, 'x', { message: `m${code}` }, {});
    expect(kubeError(api(409), 'apply')).toMatchObject({ code: 'Conflict', retry: 'retry', message: 'cannot apply: m409' });
    expect(kubeError(api(404), 'read')).toMatchObject({ code: 'NotFound' });
    expect(kubeError(api(422), 'apply')).toMatchObject({ code: 'InvalidInput', retry: 'terminal' });
    expect(kubeError(api(429), 'apply')).toMatchObject({ code: 'DatastoreUnavailable', retry: 'throttle' });
    expect(kubeError(api(503), 'apply')).toMatchObject({ code: 'DatastoreUnavailable', retry: 'retry' });
    expect(kubeError(new Error('ECONNREFUSED'), 'apply')).toMatchObject({ code: 'DatastoreUnavailable', retry: 'retry' });
  });

  it('a missing kubeconfig file is a terminal DatastoreUnavailable with a hint', () => {
    expect(() => loadOperatorKubeConfig('/nonexistent/egw-kubeconfig')).toThrow(expect.objectContaining({ code: 'DatastoreUnavailable', retry: 'terminal' }) as Error);
  });
});

/** A KubeConfig for an address nothing listens on (no request is made). */
function loadOperatorKubeConfigFromString(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://192.0.2.1:6443', skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}
