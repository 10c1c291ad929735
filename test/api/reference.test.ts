/** The manifests of Calico's AWS egress-gateway page are accepted exactly as written, and stored with defaults. */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { applyDefaults, crossCheck, formatIssue, parseManifests, validateDocument, type EgressGateway, type EgressGatewayPolicy, type FelixConfiguration, type IPPool, type IPReservation, type Pod } from '../../src/api/index.js';
import { crossLines, referenceIncoming, shuffled, validateYaml } from './helpers.js';

const read = (f: string) => readFileSync(`examples/reference/${f}`, 'utf8');
const byName = <T>(kind: string, name: string) => referenceIncoming().find((i) => i.resource.kind === kind && i.resource.metadata.name === name)!.resource as T;

describe('reference manifests', () => {
  test('every reference manifest validates with no error and no warning', () => {
    const all = referenceIncoming();
    expect(all.map((i) => `${i.resource.kind}/${i.resource.metadata.name}`).sort()).toEqual(
      [
        'AWSSubnet/subnet-000000000000000001',
        'AWSSubnet/subnet-000000000000000002',
        'EgressGateway/egress-gateway-red',
        'EgressGatewayPolicy/egw-policy1',
        'FelixConfiguration/default',
        'IPPool/egress-blue-west-1',
        'IPPool/egress-blue-west-2',
        'IPPool/egress-red-west-1',
        'IPPool/egress-red-west-2',
        'IPReservation/aws-ip-reservations',
        'Namespace/calico-egress',
        'Namespace/my-namespace',
        'Pod/my-netcat-pod',
      ].sort(),
    );
  });

  test('applied together, in any order, into an empty store or on top of themselves: no cross-resource issue', () => {
    const all = referenceIncoming();
    expect(crossLines(all)).toEqual([]);
    expect(crossLines([...all].reverse())).toEqual([]);
    for (let seed = 1; seed <= 20; seed++) expect(crossLines(shuffled(all, seed))).toEqual([]);
    // Re-applying onto the stored state (update of every resource) is also clean.
    expect(crossLines(all, all.map((i) => i.resource))).toEqual([]);
  });

  test('the restored files keep the page indentation, quoting and comment block', () => {
    const pools = read('ip-pools.yaml');
    expect(pools.split('\n---\n')).toHaveLength(4);
    expect(pools).toContain("  allowedUses: ['Workload']\n");
    expect(pools).toContain("  nodeSelector: '!all()'\n");
    const egw = read('egress-gateway-red.yaml');
    expect(egw).toContain('  ipPools:\n  - name: "egress-red-west-1"\n  - name: "egress-red-west-2"\n# Uncomment this block to add ICMP, HTTP probes\n');
    expect(egw).toContain('#   icmpProbe:\n#     ips:\n#     - <IP to probe>\n');
    expect(egw).toContain('#     timeoutSeconds: 30\n#     intervalSeconds: 10\n  aws:\n    nativeIP: Enabled\n');
    expect(egw).toContain('      topologySpreadConstraints:\n        - maxSkew: 1\n          topologyKey: "topology.kubernetes.io/zone"\n');
    expect(read('ip-reservation.yaml')).toContain('  - 100.64.3.255\n');
  });

  test('the commented-out failure-detection block, uncommented under spec, is valid once its placeholders are filled', () => {
    const fill = (t: string) => t.replace(/<IP to probe>/g, '198.51.100.1').replace(/<URL to probe>/g, 'http://198.51.100.1/');
    const text = fill(read('egress-gateway-red.yaml').replace(/^# Uncomment.*\n/m, ''));
    // The page's block sits at column 0: deleting just "# " puts it at the top level, which is caught.
    const naive = validateYaml(text.replace(/^# /gm, ''));
    expect(naive.issues.map((i) => `${i.path}: ${i.message}`)).toEqual(['egressGatewayFailureDetection: unknown field "egressGatewayFailureDetection"']);
    const { resources, issues } = validateYaml(text.replace(/^# /gm, '  '));
    expect(issues.map(formatIssue)).toEqual([]);
    const fd = (resources[0] as EgressGateway).spec.egressGatewayFailureDetection;
    expect(fd).toEqual({
      healthTimeoutDataStoreSeconds: 30,
      icmpProbe: { ips: ['198.51.100.1', '198.51.100.1'], timeoutSeconds: 15, intervalSeconds: 5 },
      httpProbe: { urls: ['http://198.51.100.1/', 'http://198.51.100.1/'], timeoutSeconds: 30, intervalSeconds: 10 },
    });
  });

  test('IPReservation keeps its bare IPs as written', () => {
    expect(byName<IPReservation>('IPReservation', 'aws-ip-reservations').spec.reservedCIDRs).toEqual(['100.64.0.0/30', '100.64.3.255', '100.64.4.0/30', '100.64.7.255']);
  });

  test('IPPools are stored with Calico defaults filled in', () => {
    expect(byName<IPPool>('IPPool', 'egress-red-west-1').spec).toEqual({
      cidr: '100.64.0.4/30',
      allowedUses: ['Workload'],
      awsSubnetID: 'subnet-000000000000000001',
      blockSize: 32,
      nodeSelector: '!all()',
      disableBGPExport: true,
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: false,
      disabled: false,
      assignmentMode: 'Automatic',
    });
  });

  test('EgressGateway red is stored with the operator defaults', () => {
    const egw = byName<EgressGateway>('EgressGateway', 'egress-gateway-red');
    expect(egw.metadata.namespace).toBe('calico-egress');
    expect(egw.spec.replicas).toBe(2);
    expect(egw.spec.logSeverity).toBe('Info');
    expect(egw.spec.aws).toEqual({ nativeIP: 'Enabled' });
    expect(egw.spec.template?.metadata?.labels).toEqual({ 'egress-code': 'red' });
    expect(egw.spec.template?.spec?.affinity).toEqual({
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 1, podAffinityTerm: { labelSelector: { matchLabels: { 'egress-code': 'red' } }, topologyKey: 'topology.kubernetes.io/zone' } },
        ],
      },
    });
    expect(egw.spec.egressGatewayFailureDetection).toBeUndefined();
  });

  test('EgressGatewayPolicy egw-policy1 is stored with destinations and preferences filled in', () => {
    const p = byName<EgressGatewayPolicy>('EgressGatewayPolicy', 'egw-policy1');
    expect(p.spec.rules).toEqual([
      { destination: { cidr: '10.0.0.0/8' }, description: 'Local: no gateway', gatewayPreference: 'None' },
      {
        destination: { cidr: '11.0.0.0/8' },
        description: 'Gateway to on prem',
        gateway: { namespaceSelector: "projectcalico.org/name == 'default'", selector: "egress-code == 'blue'", maxNextHops: 2 },
        gatewayPreference: 'None',
      },
      {
        description: 'Gateway to internet',
        gateway: { namespaceSelector: "projectcalico.org/name == 'default'", selector: "egress-code == 'red'", maxNextHops: 0 },
        gatewayPreference: 'PreferNodeLocal',
        destination: { cidr: '0.0.0.0/0' },
      },
    ]);
  });

  test('FelixConfiguration default carries the patched values plus the egress/AWS defaults', () => {
    expect(byName<FelixConfiguration>('FelixConfiguration', 'default').spec).toEqual({
      egressIPSupport: 'EnabledPerNamespaceOrPerPod',
      awsSecondaryIPSupport: 'EnabledENIPerWorkload',
      egressIPVXLANPort: 4790,
      egressIPVXLANVNI: 4097,
      egressIPRoutingRulePriority: 100,
      egressGatewayPollInterval: '10s',
      egressGatewayPollFailureCount: 3,
      awsSecondaryIPRoutingRulePriority: 101,
      awsRequestTimeout: '30s',
      awsSrcDstCheck: 'DoNothing',
      routeTableRanges: [{ min: 1, max: 250 }],
    });
  });

  test('the netcat Pod keeps the container fields egw does not read (image, command, args)', () => {
    const pod = byName<Pod>('Pod', 'my-netcat-pod');
    expect(pod.spec.containers[0]).toEqual({ name: 'alpine', image: 'alpine', command: ['/bin/sleep'], args: ['infinity'] });
  });

  test('a stored resource re-validates to itself (validation and defaulting are idempotent)', () => {
    for (const { resource } of referenceIncoming()) {
      const again = validateDocument(JSON.parse(JSON.stringify(resource)), { file: 'store', documentIndex: 1 });
      expect(again.issues).toEqual([]);
      expect(again.resource).toEqual(resource);
      expect(applyDefaults(resource)).toEqual(resource);
    }
  });

  test('the whole directory concatenated into one multi-document file is one clean apply', () => {
    const text = ['aws-subnets.yaml', 'egress-gateway-policy.yaml', 'egress-gateway-red.yaml', 'felix-configuration.yaml', 'ip-pools.yaml', 'ip-reservation.yaml', 'namespaces.yaml', 'netcat-pod.yaml']
      .map(read)
      .join('\n---\n');
    const { documents, issues } = parseManifests(text, 'all.yaml');
    expect(issues).toEqual([]);
    expect(documents).toHaveLength(13);
    const incoming = documents.map((d) => ({ resource: validateDocument(d.value, d).resource!, location: d }));
    expect(crossCheck(incoming, [])).toEqual([]);
  });
});
