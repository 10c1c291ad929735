import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_PODS_ALLOWED_LABEL, kindInfo } from '../../src/api/index.js';
import { crdFor } from '../../src/api/crd.js';
import { admissionPolicyObjects, EGRESS_ALLOWED_LABEL } from '../../src/install/admission-policy.js';
import { eventually, kubeAvailable, kubectl, kubectlOk } from '../support/kubectl.js';

const suffix = randomBytes(3).toString('hex');
const closed = `vap-closed-${suffix}`;
const open = `vap-open-${suffix}`;

function pod(namespace: string, name: string, annotations: Record<string, string>, ownerReferences?: unknown[]): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, annotations, ...(ownerReferences === undefined ? {} : { ownerReferences }) },
    spec: { containers: [{ name: 'c', image: 'registry.invalid/none:1' }] },
  });
}

describe.skipIf(!kubeAvailable)('the egress-annotation ValidatingAdmissionPolicy on a real kube-apiserver (needs scripts/with-kube)', () => {
  beforeAll(async () => {
    kubectlOk(['apply', '--server-side', '--force-conflicts', '--field-manager', 'egw-install', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [crdFor(kindInfo('EgressGateway')!), ...admissionPolicyObjects()] }));
    kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', 'crd/egressgateways.operator.tigera.io']);
    kubectlOk(['create', 'namespace', closed]);
    kubectlOk(['create', 'namespace', open]);
    kubectlOk(['label', 'namespace', open, `${EGRESS_ALLOWED_LABEL}=true`]);
    // Pods need their namespace's default ServiceAccount, which kube-controller-manager creates.
    for (const ns of [closed, open]) {
      expect(await eventually(() => kubectl(['-n', ns, 'get', 'serviceaccount', 'default']).code === 0)).toBe(true);
    }
  });
  afterAll(() => {
    kubectl(['delete', 'namespace', closed, open, '--wait=false']);
  });

  it('refuses a pod with an egress annotation in a namespace that is not opted in, naming the fix', async () => {
    const attempt = () => kubectl(['create', '-f', '-'], pod(closed, 'p1', { 'egress.projectcalico.org/selector': "egress-code == 'red'" }));
    // The API server loads a new policy within a second or so.
    expect(await eventually(() => attempt().code !== 0)).toBe(true);
    const r = attempt();
    expect(r.stderr).toContain('ValidatingAdmissionPolicy');
    expect(r.stderr).toContain(`not labelled ${EGRESS_ALLOWED_LABEL}=true`);
  });

  it('refuses pool and Elastic IP annotations there too, and a namespace annotating itself', () => {
    expect(kubectl(['create', '-f', '-'], pod(closed, 'p2', { 'cni.projectcalico.org/ipv4pools': '["egress-red-west-1"]' })).code).not.toBe(0);
    expect(kubectl(['create', '-f', '-'], pod(closed, 'p3', { 'cni.projectcalico.org/awsElasticIPs': '["192.0.2.1"]' })).code).not.toBe(0);
    const r = kubectl(['annotate', 'namespace', closed, "egress.projectcalico.org/selector=egress-code == 'red'"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`namespace ${closed}`);
  });

  it('lets a pod without those annotations in, and any of them in an opted-in namespace', () => {
    kubectlOk(['create', '-f', '-'], pod(closed, 'plain', { 'example.com/other': 'x' }));
    kubectlOk(['create', '-f', '-'], pod(open, 'egress', { 'egress.projectcalico.org/selector': "egress-code == 'red'", 'cni.projectcalico.org/ipv4pools': '["a"]' }));
    kubectlOk(['annotate', 'namespace', open, "egress.projectcalico.org/selector=egress-code == 'red'"]);
  });

  it('keeps who may act as a gateway in opted-in namespaces: pods owned by an EgressGateway, the gateway-pods label', async () => {
    // EgressGateways themselves are guarded by RBAC (who may create them), not by the namespace label, so
    // that an operator's existing manifests (the reference's unlabelled calico-egress) apply unchanged.
    const egw = (ns: string) => JSON.stringify({ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', metadata: { name: 'gw', namespace: ns }, spec: { ipPools: [{ name: 'egress' }] } });
    kubectlOk(['create', '-f', '-'], egw(closed));
    const owner = [{ apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: 'gw', uid: '00000000-0000-0000-0000-000000000001', controller: true }];
    const r = kubectl(['create', '-f', '-'], pod(closed, 'owned', {}, owner));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('names an EgressGateway as its owner');
    const l = kubectl(['label', 'namespace', closed, `${GATEWAY_PODS_ALLOWED_LABEL}=true`]);
    expect(l.code).not.toBe(0);
    expect(l.stderr).toContain(GATEWAY_PODS_ALLOWED_LABEL);
    kubectlOk(['label', 'namespace', open, `${GATEWAY_PODS_ALLOWED_LABEL}=true`]);
  });
});
