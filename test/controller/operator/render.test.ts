/**
 * The render against the reference document's `egress-gateway-red` and its variations: what the
 * operator puts in the Deployment, field by field.
 */
import { describe, expect, it } from 'vitest';
import type { EgressGateway, FelixConfiguration } from '../../../src/api/index.js';
import { defaultGatewayImage, renderDeployment, renderPodTemplate, type Container, type Deployment } from '../../../src/controller/operator/index.js';
import { referenceRed } from './helpers.js';

const IMAGE = 'registry.example/egw:test';

function red(change: (spec: EgressGateway['spec']) => EgressGateway['spec'] = (s) => s): EgressGateway {
  const r = referenceRed();
  return { ...r, spec: change(structuredClone(r.spec)) };
}

function main(d: Deployment): Container {
  return d.spec.template.spec.containers[0]!;
}

function init(d: Deployment): Container {
  return d.spec.template.spec.initContainers[0]!;
}

function envOf(c: Container): Record<string, unknown> {
  return Object.fromEntries(c.env.map((e) => [e.name, 'value' in e ? e.value : e.valueFrom]));
}

describe('renderDeployment: the reference egress-gateway-red', () => {
  const d = renderDeployment(red(), { image: IMAGE });

  it('is a Deployment named and placed like the EgressGateway, selecting the template labels', () => {
    expect(d.apiVersion).toBe('apps/v1');
    expect(d.kind).toBe('Deployment');
    expect(d.metadata).toEqual({ name: 'egress-gateway-red', namespace: 'calico-egress', labels: { 'egress-code': 'red' } });
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.selector).toEqual({ matchLabels: { 'egress-code': 'red' } });
    expect(d.spec.template.metadata.labels).toEqual({ 'egress-code': 'red' });
  });

  it('annotates the pods with the pools (names, JSON array) and nothing else', () => {
    expect(d.spec.template.metadata.annotations).toEqual({ 'cni.projectcalico.org/ipv4pools': '["egress-red-west-1","egress-red-west-2"]' });
  });

  it('has the init container with the operator environment, privileged and root', () => {
    const c = init(d);
    expect(c.name).toBe('egress-gateway-init');
    expect(c.image).toBe(IMAGE);
    expect(c.command).toEqual(['egw', 'gateway', 'init']);
    expect(c.env).toEqual([
      { name: 'EGRESS_VXLAN_VNI', value: '4097' },
      { name: 'EGRESS_VXLAN_PORT', value: '4790' },
      { name: 'EGRESS_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'EGRESS_POD_IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
      { name: 'DATAPLANE', value: 'nftables' },
    ]);
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: true,
      capabilities: { drop: ['ALL'] },
      privileged: true,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.resources).toBeUndefined();
  });

  it('has the gateway container: env, health port, readiness probe, capabilities, the AWS resource in requests and limits', () => {
    const c = main(d);
    expect(c.name).toBe('egress-gateway');
    expect(c.command).toEqual(['egw', 'gateway']);
    expect(c.env).toEqual([
      { name: 'HEALTH_PORT', value: '8080' },
      { name: 'EGRESS_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'EGRESS_POD_IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
      { name: 'EGRESS_VXLAN_VNI', value: '4097' },
      { name: 'LOG_SEVERITY', value: 'Info' },
      // The reference's red sets terminationGracePeriodSeconds 0: no drain.
      { name: 'EGW_DRAIN_SECONDS', value: '0' },
    ]);
    expect(c.ports).toEqual([{ name: 'health', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.readinessProbe).toEqual({ httpGet: { path: '/readiness', port: 8080 }, initialDelaySeconds: 10 });
    expect(c.resources).toEqual({
      requests: { 'projectcalico.org/aws-secondary-ipv4': '1' },
      limits: { 'projectcalico.org/aws-secondary-ipv4': '1' },
    });
    expect(c.securityContext.capabilities).toEqual({ add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
    expect(c.securityContext.privileged).toBe(false);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext.runAsUser).toBe(0);
  });

  it('carries the template scheduling fields and the default zone anti-affinity', () => {
    const spec = d.spec.template.spec;
    expect(spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(spec.terminationGracePeriodSeconds).toBe(0);
    expect(spec.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { 'egress-code': 'red' } } },
    ]);
    expect(spec.affinity).toEqual({
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 1, podAffinityTerm: { labelSelector: { matchLabels: { 'egress-code': 'red' } }, topologyKey: 'topology.kubernetes.io/zone' } },
        ],
      },
    });
    expect(spec.tolerations).toBeUndefined();
    expect(spec.priorityClassName).toBeUndefined();
    expect(Object.keys(spec)).not.toContain('volumes');
    expect(Object.keys(spec)).not.toContain('serviceAccountName');
  });

  it('has no owner reference when the EgressGateway has no uid (a file), one when stored', () => {
    expect(d.metadata.ownerReferences).toBeUndefined();
    const stored = red();
    stored.metadata = { ...stored.metadata, uid: 'u-1' };
    expect(renderDeployment(stored, { image: IMAGE }).metadata.ownerReferences).toEqual([
      { apiVersion: 'operator.tigera.io/v1', kind: 'EgressGateway', name: 'egress-gateway-red', uid: 'u-1', controller: true, blockOwnerDeletion: true },
    ]);
  });

  it('is pure: same input, same output; the input is not modified; no shared objects between containers', () => {
    const input = red();
    const before = structuredClone(input);
    expect(renderDeployment(input, { image: IMAGE })).toEqual(renderDeployment(input, { image: IMAGE }));
    expect(input).toEqual(before);
    const again = renderDeployment(input, { image: IMAGE });
    expect(init(again).env[2]).not.toBe(main(again).env[1]);
  });

  it("uses egw's own image, tagged with egw's version, by default", () => {
    expect(defaultGatewayImage()).toBe('ghcr.io/egw-project/egw:0.1.0');
    expect(main(renderDeployment(red())).image).toBe('ghcr.io/egw-project/egw:0.1.0');
  });
});

describe('renderDeployment: variations', () => {
  it('failure detection: probe settings become the environment, with the CRD defaults', () => {
    const d = renderDeployment(
      red((s) => ({
        ...s,
        egressGatewayFailureDetection: {
          healthTimeoutDataStoreSeconds: 30,
          icmpProbe: { ips: ['198.51.100.1', '198.51.100.2'] },
          httpProbe: { urls: ['http://198.51.100.1:8080/health'], intervalSeconds: 20, timeoutSeconds: 60 },
        },
      })),
      { image: IMAGE },
    );
    expect(envOf(main(d))).toMatchObject({
      ICMP_PROBE_IPS: '198.51.100.1,198.51.100.2',
      ICMP_PROBE_INTERVAL: '5s',
      ICMP_PROBE_TIMEOUT: '15s',
      HTTP_PROBE_URLS: 'http://198.51.100.1:8080/health',
      HTTP_PROBE_INTERVAL: '20s',
      HTTP_PROBE_TIMEOUT: '60s',
      HEALTH_TIMEOUT_DATASTORE: '30s',
    });
    expect(main(d).env.map((e) => e.name)).toEqual([
      'HEALTH_PORT', 'EGRESS_POD_IP', 'EGRESS_POD_IPS', 'EGRESS_VXLAN_VNI', 'LOG_SEVERITY', 'EGW_DRAIN_SECONDS',
      'ICMP_PROBE_IPS', 'ICMP_PROBE_INTERVAL', 'ICMP_PROBE_TIMEOUT',
      'HTTP_PROBE_URLS', 'HTTP_PROBE_INTERVAL', 'HTTP_PROBE_TIMEOUT',
      'HEALTH_TIMEOUT_DATASTORE',
    ]);
  });

  it('failure detection with only ICMP: no HTTP variables; the datastore timeout defaults to 90s', () => {
    const env = envOf(main(renderDeployment(red((s) => ({ ...s, egressGatewayFailureDetection: { icmpProbe: { ips: ['10.0.0.1'] } } })), { image: IMAGE })));
    expect(env).toMatchObject({ ICMP_PROBE_IPS: '10.0.0.1', HEALTH_TIMEOUT_DATASTORE: '90s' });
    expect(env).not.toHaveProperty('HTTP_PROBE_URLS');
  });

  it('a probe without targets sets none of its variables (as the operator)', () => {
    const env = envOf(main(renderDeployment(red((s) => ({ ...s, egressGatewayFailureDetection: { icmpProbe: { ips: [] }, httpProbe: { urls: ['http://x.example/'] } } })), { image: IMAGE })));
    expect(env).not.toHaveProperty('ICMP_PROBE_IPS');
    expect(env).not.toHaveProperty('ICMP_PROBE_INTERVAL');
    expect(env).toHaveProperty('HTTP_PROBE_URLS', 'http://x.example/');
  });

  it('elastic IPs: the awsElasticIPs annotation as a JSON array; external networks passed on', () => {
    const d = renderDeployment(
      red((s) => ({ ...s, aws: { nativeIP: 'Enabled', elasticIPs: ['203.0.113.10', '203.0.113.11'] }, externalNetworks: ['net-a'] })),
      { image: IMAGE },
    );
    expect(d.spec.template.metadata.annotations).toEqual({
      'cni.projectcalico.org/ipv4pools': '["egress-red-west-1","egress-red-west-2"]',
      'cni.projectcalico.org/awsElasticIPs': '["203.0.113.10","203.0.113.11"]',
      'egress.projectcalico.org/externalNetworkNames': '["net-a"]',
    });
  });

  it('the Elastic IP standby switched on the EgressGateway is passed to its pods', () => {
    const egw = red((s) => ({ ...s, aws: { nativeIP: 'Enabled', elasticIPs: ['203.0.113.10'] } }));
    const d = renderDeployment({ ...egw, metadata: { ...egw.metadata, annotations: { 'egw.io/elastic-ip-standby': 'true' } } }, { image: IMAGE });
    expect(d.spec.template.metadata.annotations['egw.io/elastic-ip-standby']).toBe('true');
    expect(renderDeployment(egw, { image: IMAGE }).spec.template.metadata.annotations).not.toHaveProperty('egw.io/elastic-ip-standby');
  });

  it('the gateway drains for the grace period less 2 s (Kubernetes\' default 30 s when unset)', () => {
    const withGrace = (g: number | undefined) =>
      envOf(main(renderDeployment(red((s) => ({ ...s, template: { ...s.template, spec: { ...s.template?.spec, ...(g === undefined ? {} : { terminationGracePeriodSeconds: g }) } } })), { image: IMAGE })));
    expect(withGrace(10)['EGW_DRAIN_SECONDS']).toBe('8');
    expect(withGrace(1)['EGW_DRAIN_SECONDS']).toBe('0');
  });

  it('pools given by CIDR are annotated by CIDR', () => {
    const d = renderDeployment(red((s) => ({ ...s, ipPools: [{ cidr: '100.64.0.4/30' }, { name: 'egress-red-west-2', cidr: '100.64.4.4/30' }] })), { image: IMAGE });
    expect(d.spec.template.metadata.annotations['cni.projectcalico.org/ipv4pools']).toBe('["100.64.0.4/30","egress-red-west-2"]');
  });

  it('container overrides replace the resources, and the AWS resource is added after them', () => {
    const d = renderDeployment(
      red((s) => ({
        ...s,
        template: {
          ...s.template,
          spec: {
            ...s.template?.spec,
            containers: [{ name: 'egress-gateway', resources: { requests: { cpu: '100m', 'projectcalico.org/aws-secondary-ipv4': 0 }, limits: { memory: '64Mi' } }, readinessProbe: { periodSeconds: 3, failureThreshold: 2, httpGet: { path: '/other' } } }],
            initContainers: [{ name: 'egress-gateway-init', resources: { requests: { cpu: '10m' } } }],
          },
        },
      })),
      { image: IMAGE },
    );
    expect(main(d).resources).toEqual({
      requests: { cpu: '100m', 'projectcalico.org/aws-secondary-ipv4': '1' },
      limits: { memory: '64Mi', 'projectcalico.org/aws-secondary-ipv4': '1' },
    });
    // Only the timings of a probe override count: the endpoint stays the gateway's.
    expect(main(d).readinessProbe).toEqual({ httpGet: { path: '/readiness', port: 8080 }, initialDelaySeconds: 10, periodSeconds: 3, failureThreshold: 2 });
    expect(init(d).resources).toEqual({ requests: { cpu: '10m' } });
  });

  it('the older container name calico-egw overrides the gateway container too', () => {
    const d = renderDeployment(
      red((s) => ({ ...s, aws: { nativeIP: 'Disabled' }, template: { ...s.template, spec: { ...s.template?.spec, containers: [{ name: 'calico-egw', resources: { limits: { cpu: '1' } } }] } } })),
      { image: IMAGE },
    );
    expect(main(d).resources).toEqual({ limits: { cpu: '1' } });
  });

  it('without aws.nativeIP Enabled there is no AWS resource', () => {
    expect(main(renderDeployment(red((s) => ({ ...s, aws: { nativeIP: 'Disabled' } })), { image: IMAGE })).resources).toBeUndefined();
    const { aws: _aws, ...noAws } = red().spec;
    expect(main(renderDeployment({ ...red(), spec: noAws }, { image: IMAGE })).resources).toBeUndefined();
  });

  it('an affinity the user gives replaces the default one', () => {
    const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'egress', operator: 'Exists' }] }] } } };
    const d = renderDeployment(red((s) => ({ ...s, template: { ...s.template, spec: { ...s.template?.spec, affinity } } })), { image: IMAGE });
    expect(d.spec.template.spec.affinity).toEqual(affinity);
  });

  it('no labels: projectcalico.org/egw: <name>, and the default affinity on it', () => {
    const bare: EgressGateway = {
      apiVersion: 'operator.tigera.io/v1',
      kind: 'EgressGateway',
      metadata: { name: 'blue', namespace: 'default' },
      spec: { ipPools: [{ name: 'egress-blue-west-1' }] },
    };
    const d = renderDeployment(bare, { image: IMAGE });
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.selector.matchLabels).toEqual({ 'projectcalico.org/egw': 'blue' });
    expect(d.spec.template.metadata.labels).toEqual({ 'projectcalico.org/egw': 'blue' });
    expect(d.spec.template.spec.affinity?.podAntiAffinity).toEqual({
      preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { labelSelector: { matchLabels: { 'projectcalico.org/egw': 'blue' } }, topologyKey: 'topology.kubernetes.io/zone' } }],
    });
    expect(d.spec.template.spec.nodeSelector).toBeUndefined();
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBeUndefined();
  });

  it('template annotations are added where they do not clash with the operator annotations', () => {
    const d = renderDeployment(
      red((s) => ({ ...s, template: { ...s.template, metadata: { ...s.template?.metadata, annotations: { team: 'net', 'cni.projectcalico.org/ipv4pools': '["other"]' } } } })),
      { image: IMAGE },
    );
    expect(d.spec.template.metadata.annotations).toEqual({ 'cni.projectcalico.org/ipv4pools': '["egress-red-west-1","egress-red-west-2"]', team: 'net' });
  });

  it('tolerations and priorityClassName are carried over; logSeverity becomes LOG_SEVERITY', () => {
    const tolerations = [{ key: 'egress', operator: 'Exists' as const, effect: 'NoSchedule' as const }];
    const d = renderDeployment(red((s) => ({ ...s, logSeverity: 'Debug', template: { ...s.template, spec: { ...s.template?.spec, tolerations, priorityClassName: 'high' } } })), { image: IMAGE });
    expect(d.spec.template.spec.tolerations).toEqual(tolerations);
    expect(d.spec.template.spec.priorityClassName).toBe('high');
    expect(envOf(main(d))['LOG_SEVERITY']).toBe('Debug');
  });

  it('FelixConfiguration default sets the VXLAN VNI and port, and a non-auto iptables backend', () => {
    const felix: FelixConfiguration = {
      apiVersion: 'projectcalico.org/v3',
      kind: 'FelixConfiguration',
      metadata: { name: 'default' },
      spec: { egressIPVXLANVNI: 5000, egressIPVXLANPort: 4800, iptablesBackend: 'NFT' },
    };
    const t = renderPodTemplate(red(), { image: IMAGE, felix });
    expect(envOf(t.spec.initContainers[0]!)).toMatchObject({ EGRESS_VXLAN_VNI: '5000', EGRESS_VXLAN_PORT: '4800', IPTABLES_BACKEND: 'nft' });
    expect(envOf(t.spec.containers[0]!)).toMatchObject({ EGRESS_VXLAN_VNI: '5000' });
    const auto = renderPodTemplate(red(), { image: IMAGE, felix: { ...felix, spec: { iptablesBackend: 'Auto' } } });
    expect(envOf(auto.spec.initContainers[0]!)).not.toHaveProperty('IPTABLES_BACKEND');
  });

  it('commands are configurable', () => {
    const d = renderDeployment(red(), { image: IMAGE, command: ['/usr/bin/egw', 'gateway'], initCommand: ['/usr/bin/egw', 'gateway', 'init'] });
    expect(main(d).command).toEqual(['/usr/bin/egw', 'gateway']);
    expect(init(d).command).toEqual(['/usr/bin/egw', 'gateway', 'init']);
  });
});
