/** validateDocument: envelope, scope, structure, Kubernetes tolerance, and the rules not covered by examples/invalid. */
import { describe, expect, test } from 'vitest';
import { validateDocument, type EgressGateway, type FelixConfiguration, type Pod } from '../../src/api/index.js';
import { brief, valid, validateYaml } from './helpers.js';

const issuesOf = (text: string) => brief(validateYaml(text).issues);
const at = { file: 'x.yaml', documentIndex: 1 };

describe('envelope and scope', () => {
  test('a document that is not a mapping is rejected', () => {
    expect(brief(validateDocument(['a'], at).issues)).toEqual(['error document.not-a-mapping : a manifest document must be a mapping']);
    expect(brief(validateDocument('text', at).issues)).toHaveLength(1);
  });

  test('missing kind and missing apiVersion are named', () => {
    expect(brief(validateDocument({ apiVersion: 'v1', metadata: { name: 'a' } }, at).issues)).toEqual(['error document.missing-kind kind: the document has no kind']);
    expect(brief(validateDocument({ kind: 'Namespace', metadata: { name: 'a' } }, at).issues)).toEqual(['error document.wrong-api-version apiVersion: the document has no apiVersion']);
    expect(brief(validateDocument({ apiVersion: 'projectcalico.org/v3', kind: 'EgressGateway', metadata: { name: 'a' }, spec: {} }, at).issues)).toEqual([
      'error document.wrong-api-version apiVersion: apiVersion "projectcalico.org/v3" does not serve kind EgressGateway',
    ]);
  });

  test('a namespaced kind without namespace gets "default" (as kubectl), or the namespace the caller chooses', () => {
    const text = 'apiVersion: operator.tigera.io/v1\nkind: EgressGateway\nmetadata: {name: gw}\nspec: {ipPools: [{name: a}]}\n';
    expect(valid<EgressGateway>(text).metadata.namespace).toBe('default');
    expect(valid<EgressGateway>(text, { defaultNamespace: 'calico-egress' }).metadata.namespace).toBe('calico-egress');
    const pod = valid<Pod>('apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n');
    expect(pod.metadata.namespace).toBe('default');
  });

  test('cluster-scoped kinds refuse a namespace', () => {
    for (const kind of ['IPPool', 'IPReservation', 'FelixConfiguration']) {
      const text = `apiVersion: projectcalico.org/v3\nkind: ${kind}\nmetadata: {name: default, namespace: kube-system}\nspec: {cidr: 10.0.0.0/16}\n`;
      expect(issuesOf(text.replace('spec: {cidr: 10.0.0.0/16}', kind === 'IPPool' ? 'spec: {cidr: 10.0.0.0/16}' : 'spec: {}'))).toEqual([
        `error metadata.namespace-on-cluster-scoped metadata.namespace: ${kind} is cluster-scoped and cannot have a namespace ("kube-system")`,
      ]);
    }
    expect(issuesOf('apiVersion: v1\nkind: Namespace\nmetadata: {name: red, namespace: x}\n')).toEqual([
      'error metadata.namespace-on-cluster-scoped metadata.namespace: Namespace is cluster-scoped and cannot have a namespace ("x")',
    ]);
  });

  test('names must be DNS names; namespaces DNS labels', () => {
    expect(issuesOf('apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: Egress_Red}\nspec: {cidr: 10.0.0.0/16}\n')).toEqual([
      'error metadata.invalid-name metadata.name: "Egress_Red" is not a valid name',
    ]);
    expect(issuesOf('apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n')).toEqual(['error metadata.invalid-name metadata.name: "a.b" is not a valid name']);
    expect(issuesOf('apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: Bad}\nspec: {containers: [{name: c}]}\n')).toEqual([
      'error metadata.invalid-namespace metadata.namespace: "Bad" is not a valid namespace name',
    ]);
  });

  test('metadata is checked too: unknown fields, a missing name, bad labels', () => {
    expect(issuesOf('apiVersion: v1\nkind: Namespace\nmetadata: {name: a, lables: {x: y}}\n')).toEqual(['error schema.unknown-field metadata.lables: unknown field "lables"']);
    expect(issuesOf('apiVersion: v1\nkind: Namespace\nmetadata: {labels: {x: y}}\n')).toEqual(['error schema.required metadata.name: required field "name" is missing']);
    expect(issuesOf('apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {"-x": y, z: "a b"}}\n')).toEqual([
      `error labels.invalid-key metadata.labels["-x"]: label key "-x" is invalid: name part "-x" must be 1-63 characters of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`,
      'error labels.invalid-value metadata.labels.z: label value "a b" is invalid',
    ]);
  });

  test('datastore-maintained metadata is accepted and kept', () => {
    const ns = valid('apiVersion: v1\nkind: Namespace\nmetadata: {name: a, uid: u-1, resourceVersion: "7", creationTimestamp: "2024-01-01T00:00:00Z", generation: 2}\n');
    expect(ns.metadata).toEqual({ name: 'a', uid: 'u-1', resourceVersion: '7', creationTimestamp: '2024-01-01T00:00:00Z', generation: 2 });
  });
});

describe('structure', () => {
  test('an unknown top-level field is named, with a suggestion', () => {
    const issues = validateYaml('apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nspecs: {}\n').issues;
    expect(brief(issues)).toEqual(['error schema.unknown-field specs: unknown field "specs"']);
    expect(issues[0]!.expected).toBe('"spec" (did you mean it?)');
  });

  test('wrong types say what was expected and what was found', () => {
    const issues = validateYaml('apiVersion: operator.tigera.io/v1\nkind: EgressGateway\nmetadata: {name: gw}\nspec: {replicas: "2", ipPools: [{name: a}]}\n').issues;
    expect(brief(issues)).toEqual(['error schema.type spec.replicas: must be an integer from 0 to 2147483647, not the string "2"']);
    expect(brief(validateYaml('apiVersion: projectcalico.org/v3\nkind: EgressGatewayPolicy\nmetadata: {name: p}\nspec: {rules: {a: 1}}\n').issues)).toEqual([
      'error schema.type spec.rules: must be a list of mappings, not a mapping',
    ]);
  });

  test('null means "not set" for optional fields, as in Kubernetes', () => {
    const p = valid('apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec:\n  cidr: 10.0.0.0/16\n  blockSize:\n  natOutgoing: null\n');
    expect(p.kind === 'IPPool' && p.spec.blockSize).toBe(26);
  });

  test('all problems of a document are reported at once', () => {
    const text = 'apiVersion: operator.tigera.io/v1\nkind: EgressGateway\nmetadata: {name: gw}\nspec:\n  replicas: -1\n  logSeverity: Loud\n  ipPools: []\n';
    expect(issuesOf(text)).toEqual([
      'error schema.range spec.replicas: -1 is below the minimum 0',
      'error schema.enum spec.logSeverity: "Loud" is not an allowed value (values are case-sensitive)',
    ]);
  });

  test('after an unknown field is dropped, the rest is still checked', () => {
    expect(issuesOf('apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/8, blockSize: 26, colour: red, disabled: false, ipipMode: Always, vxlanMode: Always}\n')).toEqual([
      'error schema.unknown-field spec.colour: unknown field "colour"',
      'error IPPool.ipip-and-vxlan spec.vxlanMode: ipipMode and vxlanMode cannot both be enabled',
    ]);
  });
});

describe('Kubernetes kinds are tolerant of fields egw does not read', () => {
  test('a realistic Pod keeps everything it carries', () => {
    const text = `apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: red
  annotations:
    egress.projectcalico.org/selector: egress-code == 'red'
    egress.projectcalico.org/namespaceSelector: projectcalico.org/name == 'calico-egress'
    egress.projectcalico.org/maxNextHops: "2"
    cni.projectcalico.org/ipv4pools: '["egress-red-west-1", "100.64.4.4/30"]'
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: rs, uid: u}]
spec:
  nodeName: ip-10-0-1-5.us-west-2.compute.internal
  serviceAccountName: default
  volumes: [{name: v, emptyDir: {}}]
  containers:
  - name: app
    image: alpine
    env: [{name: A, value: b}]
    securityContext: {capabilities: {add: [NET_ADMIN]}}
    ports: [{name: health, containerPort: 8080, protocol: TCP}]
    readinessProbe: {httpGet: {path: /readiness, port: 8080}}
    resources:
      requests: {cpu: 100m, memory: 64Mi, projectcalico.org/aws-secondary-ipv4: 1}
      limits: {projectcalico.org/aws-secondary-ipv4: "1"}
status:
  phase: Running
  podIP: 100.64.0.5
  podIPs: [{ip: 100.64.0.5}]
  conditions: [{type: Ready, status: "True"}]
`;
    const { resources, issues } = validateYaml(text);
    expect(brief(issues)).toEqual([]);
    const pod = resources[0] as Pod;
    expect(pod.spec).toMatchObject({ serviceAccountName: 'default', volumes: [{ name: 'v', emptyDir: {} }] });
    expect(pod.spec.containers[0]).toMatchObject({ env: [{ name: 'A', value: 'b' }], readinessProbe: { httpGet: { path: '/readiness', port: 8080 } } });
    expect(pod.status).toMatchObject({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] });
  });

  test('a Node with zone, instance type and aws-secondary-ipv4 capacity', () => {
    const node = valid(`apiVersion: v1
kind: Node
metadata:
  name: ip-10-0-1-5.us-west-2.compute.internal
  labels: {topology.kubernetes.io/zone: us-west-2a, node.kubernetes.io/instance-type: t3.large}
spec: {providerID: "aws:///us-west-2a/i-0123456789abcdef0"}
status:
  capacity: {cpu: "2", projectcalico.org/aws-secondary-ipv4: "2"}
  allocatable: {cpu: 1930m, projectcalico.org/aws-secondary-ipv4: 2}
  nodeInfo: {kubeletVersion: v1.29.0}
`);
    expect(node.kind === 'Node' && node.status?.allocatable).toEqual({ cpu: '1930m', 'projectcalico.org/aws-secondary-ipv4': 2 });
  });

  test('pod rules: aws-secondary-ipv4 whole and equal in requests and limits; port names; addresses', () => {
    const pod = (containers: string, status = '') => issuesOf(`apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n${containers}${status}`);
    expect(pod('  - name: c\n    resources: {requests: {projectcalico.org/aws-secondary-ipv4: 1}, limits: {projectcalico.org/aws-secondary-ipv4: 2}}\n')).toEqual([
      'error Pod.aws-resource-mismatch spec.containers[0].resources.requests["projectcalico.org/aws-secondary-ipv4"]: requests (1) and limits (2) of projectcalico.org/aws-secondary-ipv4 must be equal',
    ]);
    expect(pod('  - name: c\n    resources: {limits: {projectcalico.org/aws-secondary-ipv4: 500m}}\n')).toEqual([
      'error resources.aws-not-integer spec.containers[0].resources.limits["projectcalico.org/aws-secondary-ipv4"]: projectcalico.org/aws-secondary-ipv4 must be a whole number (got "500m")',
    ]);
    expect(pod('  - name: c\n    ports: [{name: health-port-number-1, containerPort: 8080}]\n')).toEqual([
      'error Pod.invalid-port-name spec.containers[0].ports[0].name: "health-port-number-1" is not a valid port name',
    ]);
    expect(pod('  - name: c\n', 'status: {podIP: 100.64.0.300}\n')).toEqual(['error Pod.invalid-pod-ip status.podIP: "100.64.0.300" is not an IP address']);
    expect(pod('  - name: c\n  - name: c\n')).toEqual(['error Pod.duplicate-container-name spec.containers[1].name: container name "c" is used twice']);
    expect(issuesOf('apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n')).toEqual(['error schema.items spec.containers: list is empty']);
  });
});

describe('FelixConfiguration', () => {
  test('other Felix fields are accepted and kept as written; misspelt ones are not', () => {
    const f = valid<FelixConfiguration>('apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\nspec: {bpfEnabled: true, logSeverityScreen: Info, failsafeInboundHostPorts: [{protocol: tcp, port: 22}], policySyncPathPrefix: /var/run/nodeagent}\n');
    expect(f.spec).toMatchObject({ bpfEnabled: true, failsafeInboundHostPorts: [{ protocol: 'tcp', port: 22 }], policySyncPathPrefix: '/var/run/nodeagent' });
    expect(issuesOf('apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\nspec: {bpfEnabeld: true}\n')).toEqual([
      'error schema.unknown-field spec.bpfEnabeld: unknown field "bpfEnabeld"',
    ]);
  });

  test('warnings: per-node egressIPSupport, deprecated routeTableRange, reserved tables, overlapping ranges, VXLAN clash', () => {
    const f = (name: string, spec: string) => issuesOf(`apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: ${name}}\nspec:\n${spec}`);
    expect(f('node.a', '  egressIPSupport: EnabledPerNamespace\n')).toEqual([
      'warning FelixConfiguration.egress-support-not-default spec.egressIPSupport: egressIPSupport must be the same on every node; set it only in the default FelixConfiguration',
    ]);
    expect(f('default', '  routeTableRange: {min: 1, max: 250}\n')).toEqual(['warning FelixConfiguration.route-table-range-deprecated spec.routeTableRange: routeTableRange is deprecated']);
    expect(f('default', '  routeTableRange: {min: 1, max: 251}\n')).toEqual([
      'error FelixConfiguration.route-table-range spec.routeTableRange: must be a range of route table indices within 1..250 (got 1..251)',
    ]);
    expect(f('default', '  routeTableRanges: [{min: 1, max: 250}, {min: 200, max: 300}]\n')).toEqual([
      "warning FelixConfiguration.route-table-reserved spec.routeTableRanges[1]: range 200..300 includes the kernel's default/main/local tables 253-255, which are never used",
      'warning FelixConfiguration.route-table-overlap spec.routeTableRanges[1]: range 200..300 overlaps routeTableRanges[0] (1..250)',
    ]);
    expect(f('default', '  routeTableRanges: [{min: 1000, max: 70000}]\n')).toEqual(['error FelixConfiguration.route-table-total spec.routeTableRanges: routeTableRanges cover 69001 tables']);
    expect(f('default', '  egressIPHostIfacePattern: "eth1, /^ens[0-9]+$/"\n')).toEqual([]);
    expect(f('default', '  egressIPHostIfacePattern: "eth1,/[/,a name"\n')).toEqual([
      expect.stringMatching(/^error FelixConfiguration.iface-pattern spec.egressIPHostIfacePattern: entry "\/\[\/" is not a valid regular expression/),
      'error FelixConfiguration.iface-pattern spec.egressIPHostIfacePattern: entry "a name" is neither an interface name (up to 15 of a-z A-Z 0-9 _ . -) nor a /regex/',
    ]);
    expect(f('default', '  egressIPVXLANPort: 4789\n  egressIPVXLANVNI: 4096\n')).toEqual([
      "warning FelixConfiguration.vxlan-clash spec.egressIPVXLANVNI: the egress VXLAN device (port 4789, VNI 4096) would clash with Calico's own VXLAN device",
    ]);
    expect(f('rack-a', "  nodeSelector: rack == 'a'\n")).toEqual([]);
    expect(f('default', '  awsRequestTimeout: 1m30s\n  egressGatewayPollInterval: 500ms\n')).toEqual([]);
  });
});

describe('IPPool', () => {
  test('AWS subnet IDs: 8 or 17 hex digits as AWS issues them, and the documentation\'s 18', () => {
    const pool = (id: string) => issuesOf(`apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 100.64.0.4/30, blockSize: 32, allowedUses: [Workload], disableBGPExport: true, awsSubnetID: ${id}}\n`);
    expect(pool('subnet-0a1b2c3d')).toEqual([]);
    expect(pool('subnet-0123456789abcdef0')).toEqual([]);
    expect(pool('subnet-000000000000000001')).toEqual([]);
    for (const bad of ['subnet-0A1B2C3D', 'sn-0a1b2c3d', 'subnet-0a1b2c3', 'subnet-0123456789abcdef0123456789abcdef0']) {
      expect(pool(bad)).toEqual([`error IPPool.aws-subnet-id spec.awsSubnetID: "${bad}" is not a well-formed AWS subnet ID`]);
    }
  });

  test('AWS-backed pools: IPv4 only; blockSize 32 also when omitted; warnings for the page\'s other "musts"', () => {
    expect(issuesOf('apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 100.64.0.0/26, awsSubnetID: subnet-0a1b2c3d, allowedUses: [Workload], disableBGPExport: true}\n')).toEqual([
      'error IPPool.aws-block-size spec.blockSize: AWS-backed IP pools must use blockSize 32 (got 26 (the default))',
    ]);
    expect(issuesOf('apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: "fd00::/120", blockSize: 122, awsSubnetID: subnet-0a1b2c3d, allowedUses: [Workload], disableBGPExport: true}\n')).toEqual([
      'error IPPool.aws-ipv6 spec.cidr: AWS-backed IP pools (awsSubnetID set) must be IPv4',
      'error IPPool.aws-block-size spec.blockSize: AWS-backed IP pools must use blockSize 32 (got 122)',
    ]);
    expect(issuesOf('apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 100.64.0.4/30, blockSize: 32, awsSubnetID: subnet-0a1b2c3d, vxlanMode: Always}\n')).toEqual([
      'warning IPPool.aws-encapsulation spec.vxlanMode: AWS-backed pools should not encapsulate: the AWS fabric routes their addresses natively',
      'warning IPPool.aws-bgp-export spec.disableBGPExport: AWS-backed pools should not be exported over BGP (routing conflicts with IPIP/BGP networking)',
      'warning IPPool.aws-allowed-uses spec.allowedUses: AWS-backed pools are used for workloads or secondary-ENI host addresses, not [Workload, Tunnel]',
    ]);
  });

  test('allowed combinations, in any order', () => {
    const uses = (u: string) => issuesOf(`apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, allowedUses: ${u}}\n`);
    for (const ok of ['[Workload, Tunnel]', '[Tunnel, Workload]', '[Tunnel]', '[Workload]', '[LoadBalancer]', '[L2Workload]']) expect(uses(ok)).toEqual([]);
    expect(uses('[HostSecondaryInterface]')).toEqual([
      'warning IPPool.host-secondary-without-subnet spec.awsSubnetID: a HostSecondaryInterface pool supplies primary IPs of secondary ENIs and is useless without awsSubnetID',
    ]);
    expect(uses('[Workload, Workload]')).toEqual(['error IPPool.allowed-uses-combination spec.allowedUses: allowedUses [Workload, Workload] is not an allowed combination']);
    expect(uses('[Tunnel, LoadBalancer]')).toEqual(['error IPPool.allowed-uses-combination spec.allowedUses: allowedUses [Tunnel, LoadBalancer] is not an allowed combination']);
  });

  test('other Calico rules: LoadBalancer encapsulation, namespaceSelector on Tunnel pools, disabled pools may be small', () => {
    const p = (spec: string) => issuesOf(`apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {${spec}}\n`);
    expect(p('cidr: 10.0.0.0/16, allowedUses: [LoadBalancer], ipipMode: Always')).toEqual(['error IPPool.loadbalancer-encap spec.ipipMode: LoadBalancer IP pool cannot have IPIP or VXLAN enabled']);
    expect(p("cidr: 10.0.0.0/16, namespaceSelector: \"projectcalico.org/name == 'red'\"")).toEqual([
      'error IPPool.tunnel-namespace-selector spec.namespaceSelector: namespaceSelector cannot be set on a pool used for Tunnel addresses (allowedUses defaults to [Workload, Tunnel])',
    ]);
    expect(p("cidr: 10.0.0.0/16, allowedUses: [Workload], namespaceSelector: \"projectcalico.org/name == 'red'\"")).toEqual([]);
    expect(p('cidr: 10.0.0.0/30, disabled: true')).toEqual([]);
    expect(p('cidr: "fe80::/64"')).toEqual(['error IPPool.link-local spec.cidr: IPPool CIDR overlaps with IPv6 Link Local range fe80::/10']);
    expect(p('cidr: "fd00::/64", blockSize: 100')).toEqual(['error IPPool.block-size-range spec.blockSize: IPv6 block size must be between 116 and 128 (got 100)']);
  });
});

describe('IPReservation', () => {
  test('CIDRs and bare IPs of both families; warnings for host bits and repeats', () => {
    const r = (entries: string) => issuesOf(`apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: r}\nspec: {reservedCIDRs: ${entries}}\n`);
    expect(r('[100.64.0.0/30, 100.64.3.255, "fd00::1", "fd00::/120"]')).toEqual([]);
    expect(r('[100.64.0.1/30, 100.64.0.0/30]')).toEqual([
      'warning IPReservation.host-bits spec.reservedCIDRs[0]: "100.64.0.1/30" has host bits set; it reserves 100.64.0.0/30',
      'warning IPReservation.duplicate spec.reservedCIDRs[1]: "100.64.0.0/30" repeats reservedCIDRs[0]',
    ]);
    expect(r('[]')).toEqual([]);
  });
});

describe('EgressGatewayPolicy', () => {
  const p = (rules: string) => issuesOf(`apiVersion: projectcalico.org/v3\nkind: EgressGatewayPolicy\nmetadata: {name: p}\nspec:\n  rules:\n${rules}`);
  const gw = "{selector: \"egress-code == 'red'\", namespaceSelector: \"projectcalico.org/name == 'default'\"}";

  test('no rules at all is rejected like rules without gateway or destination', () => {
    expect(issuesOf('apiVersion: projectcalico.org/v3\nkind: EgressGatewayPolicy\nmetadata: {name: p}\nspec: {}\n')).toEqual([
      'error EgressGatewayPolicy.no-gateway-or-destination spec.rules: the policy has no rules',
    ]);
  });

  test('a destination-only policy (all local) and a gateway-only policy are both fine', () => {
    expect(p('  - destination: {cidr: 10.0.0.0/8}\n')).toEqual([]);
    expect(p(`  - gateway: ${gw}\n`)).toEqual([]);
  });

  test('warnings: host bits, IPv6, empty destination, preference without gateway', () => {
    expect(p(`  - destination: {cidr: 10.1.0.0/8}\n    gateway: ${gw}\n`)).toEqual([
      'warning EgressGatewayPolicy.destination-host-bits spec.rules[0].destination.cidr: "10.1.0.0/8" has host bits set; it means 10.0.0.0/8',
    ]);
    expect(p(`  - destination: {cidr: "2001:db8::/32"}\n    gateway: ${gw}\n`)).toEqual([
      'warning EgressGatewayPolicy.ipv6-destination spec.rules[0].destination.cidr: IPv6 destination 2001:db8::/32 is ignored: egress gateways carry IPv4 traffic only',
    ]);
    expect(p(`  - destination: {}\n    gateway: ${gw}\n`)).toEqual(['warning EgressGatewayPolicy.empty-destination spec.rules[0].destination: destination has no cidr, so it means 0.0.0.0/0']);
    expect(p('  - destination: {cidr: 10.0.0.0/8}\n    gatewayPreference: PreferNodeLocal\n')).toEqual([
      'warning EgressGatewayPolicy.preference-without-gateway spec.rules[0].gatewayPreference: gatewayPreference has no effect on a rule without a gateway',
    ]);
  });

  test('a bare IP destination is rejected with the /32 form as the fix', () => {
    const { issues } = validateYaml(`apiVersion: projectcalico.org/v3\nkind: EgressGatewayPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - destination: {cidr: 203.0.113.7}\n    gateway: ${gw}\n`);
    expect(issues.map((i) => [i.message, i.expected])).toEqual([['"203.0.113.7" is not a CIDR', 'a CIDR such as 203.0.113.7/32']]);
  });

  test('maxNextHops is an integer (as in the CRD), not a string', () => {
    expect(p(`  - gateway: {selector: "a == 'b'", namespaceSelector: all(), maxNextHops: "2"}\n`)).toEqual([
      'error schema.type spec.rules[0].gateway.maxNextHops: must be an integer from 0 to 2147483647, not the string "2"',
    ]);
  });

  test('three destinations colliding report each repeat once, against the first', () => {
    expect(p(`  - gateway: ${gw}\n  - destination: {cidr: 0.0.0.0/0}\n  - destination: {cidr: 0.0.0.1/0}\n`).filter((l) => l.startsWith('error'))).toEqual([
      'error EgressGatewayPolicy.duplicate-destination spec.rules[1].destination.cidr: destination 0.0.0.0/0 is the same as the destination of rules[0]',
      'error EgressGatewayPolicy.duplicate-destination spec.rules[2].destination.cidr: destination 0.0.0.0/0 is the same as the destination of rules[0]',
    ]);
  });
});

describe('EgressGateway', () => {
  const g = (spec: string) => issuesOf(`apiVersion: operator.tigera.io/v1\nkind: EgressGateway\nmetadata: {name: gw, namespace: egress}\nspec:\n${spec}`);

  test('a probe timeout equal to its interval is accepted (the operator only rejects timeout < interval)', () => {
    expect(g('  ipPools: [{name: a}]\n  egressGatewayFailureDetection:\n    icmpProbe: {ips: [198.51.100.1], intervalSeconds: 10, timeoutSeconds: 10}\n')).toEqual([]);
  });

  test('elastic IPs with nativeIP Enabled are fine; fewer EIPs than replicas warns', () => {
    expect(g('  replicas: 2\n  ipPools: [{name: a}]\n  aws: {nativeIP: Enabled, elasticIPs: ["37.1.2.3", "43.2.5.6"]}\n')).toEqual([]);
    expect(g('  replicas: 3\n  ipPools: [{name: a}]\n  aws: {nativeIP: Enabled, elasticIPs: ["37.1.2.3", "43.2.5.6"]}\n')).toEqual([
      'warning EgressGateway.fewer-elastic-ips spec.aws.elasticIPs: 3 replicas but 2 Elastic IP(s): some gateways will have none',
    ]);
    expect(g('  ipPools: [{name: a}]\n  aws: {elasticIPs: ["37.1.2.3"]}\n')).toEqual([
      'error EgressGateway.elastic-ips-need-native-ip spec.aws.nativeIP: NativeIP must be enabled when elastic IPs are used',
    ]);
  });

  test('probe targets: IPs and http(s) URLs; a probe with no target warns', () => {
    expect(g('  ipPools: [{name: a}]\n  egressGatewayFailureDetection:\n    icmpProbe: {ips: [example.com]}\n    httpProbe: {urls: ["ftp://x/"]}\n')).toEqual([
      'error EgressGateway.probe-ip-invalid spec.egressGatewayFailureDetection.icmpProbe.ips[0]: "example.com" is not an IP address',
      'error EgressGateway.probe-url-invalid spec.egressGatewayFailureDetection.httpProbe.urls[0]: "ftp://x/" is not an http(s) URL',
    ]);
    expect(g('  ipPools: [{name: a}]\n  egressGatewayFailureDetection:\n    icmpProbe: {}\n')).toEqual([
      'warning EgressGateway.probe-no-targets spec.egressGatewayFailureDetection.icmpProbe.ips: icmpProbe has no ips, so no ICMP probes are sent',
    ]);
    expect(g('  ipPools: [{name: a}]\n  egressGatewayFailureDetection:\n    healthTimeoutDataStoreSeconds: 0\n    httpProbe: {urls: ["https://x.example/"]}\n')).toEqual([
      'error schema.range spec.egressGatewayFailureDetection.healthTimeoutDataStoreSeconds: 0 is below the minimum 1',
    ]);
  });

  test('ipPools entries: by name or by cidr, both well formed', () => {
    expect(g('  ipPools: [{cidr: 10.10.10.0/31}, {name: egress-ippool-1}, {name: b, cidr: 10.10.10.2/31}]\n')).toEqual([]);
    expect(g('  ipPools: [{cidr: 10.10.10.0}, {name: Pool_A}, {name: b, color: red}]\n')).toEqual([
      'error schema.unknown-field spec.ipPools[2].color: unknown field "color"',
      'error EgressGateway.ippool-ref-cidr spec.ipPools[0].cidr: "10.10.10.0" is not a CIDR',
      'error EgressGateway.ippool-ref-name spec.ipPools[1].name: "Pool_A" is not a valid IPPool name',
    ]);
  });

  test('template: labels, container names, topology spread and tolerations are checked like Kubernetes would', () => {
    expect(g('  ipPools: [{name: a}]\n  template:\n    metadata: {labels: {"egress code": red}}\n')).toHaveLength(1);
    expect(g('  ipPools: [{name: a}]\n  template:\n    spec:\n      containers: [{name: sidecar}]\n')).toEqual([
      'error schema.enum spec.template.spec.containers[0].name: "sidecar" is not an allowed value (values are case-sensitive)',
    ]);
    expect(g('  ipPools: [{name: a}]\n  template:\n    spec:\n      containers: [{name: egress-gateway, resources: {limits: {cpu: 500m}}}]\n      tolerations: [{operator: Exists}]\n      priorityClassName: high\n')).toEqual([]);
    expect(g('  ipPools: [{name: a}]\n  template:\n    spec:\n      topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone}]\n')).toEqual([
      'error schema.required spec.template.spec.topologySpreadConstraints[0].whenUnsatisfiable: required field "whenUnsatisfiable" is missing',
    ]);
  });

  test('externalNetworks is kept but warned about', () => {
    expect(g('  ipPools: [{name: a}]\n  externalNetworks: [vrf-a]\n')).toEqual([
      'warning EgressGateway.external-networks spec.externalNetworks: egw does not support Calico external networks; externalNetworks is kept but ignored',
    ]);
  });
});

describe('annotations on Namespaces and Pods', () => {
  const ns = (ann: string) => issuesOf(`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: red\n  annotations:\n${ann}`);

  test('valid annotations pass', () => {
    expect(ns("    egress.projectcalico.org/selector: egress-code == 'red'\n    egress.projectcalico.org/namespaceSelector: projectcalico.org/name == 'default'\n    egress.projectcalico.org/maxNextHops: \"0\"\n")).toEqual([]);
    expect(ns('    egress.projectcalico.org/egressGatewayPolicy: "egw-policy1"\n')).toEqual([]);
  });

  test('policy names, pool lists and typos', () => {
    expect(ns('    egress.projectcalico.org/egressGatewayPolicy: "EGW Policy"\n')).toEqual([
      'error annotations.invalid-policy-name metadata.annotations["egress.projectcalico.org/egressGatewayPolicy"]: "EGW Policy" is not a valid EgressGatewayPolicy name',
    ]);
    expect(ns(`    cni.projectcalico.org/ipv4pools: '["egress-red-west-1", "fd00::/120", "Bad Name"]'\n`)).toEqual([
      'error annotations.invalid-ipv4pools-entry metadata.annotations["cni.projectcalico.org/ipv4pools"]: "fd00::/120" is an IPv6 CIDR in the IPv4 pool list',
      'error annotations.invalid-ipv4pools-entry metadata.annotations["cni.projectcalico.org/ipv4pools"]: "Bad Name" is neither an IPPool name nor an IPv4 CIDR',
    ]);
    expect(ns(`    cni.projectcalico.org/ipv4pools: '[1, 2]'\n`)).toEqual([
      'error annotations.invalid-ipv4pools metadata.annotations["cni.projectcalico.org/ipv4pools"]: "[1, 2]" is not a JSON array of strings',
    ]);
    const typo = validateYaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: red\n  annotations:\n    egress.projectcalico.org/selecter: egress-code == 'red'\n").issues;
    expect(brief(typo)).toEqual(['warning annotations.unknown-egress-annotation metadata.annotations["egress.projectcalico.org/selecter"]: unknown egress annotation "egress.projectcalico.org/selecter" is ignored']);
    expect(typo[0]!.expected).toBe('"egress.projectcalico.org/selector" (did you mean it?)');
  });

  test('maxNextHops or namespaceSelector without a selector on the same object warn; EIPs on a Namespace warn', () => {
    expect(ns('    egress.projectcalico.org/maxNextHops: "2"\n')).toEqual([
      'warning annotations.max-next-hops-without-selector metadata.annotations["egress.projectcalico.org/maxNextHops"]: egress.projectcalico.org/maxNextHops only applies together with egress.projectcalico.org/selector on the same Namespace',
    ]);
    expect(ns("    egress.projectcalico.org/namespaceSelector: projectcalico.org/name == 'default'\n")).toHaveLength(1);
    expect(ns(`    cni.projectcalico.org/awsElasticIPs: '["37.1.2.3"]'\n`)).toEqual([
      'warning annotations.elastic-ips-on-namespace metadata.annotations["cni.projectcalico.org/awsElasticIPs"]: cni.projectcalico.org/awsElasticIPs is read on Pods only',
    ]);
    expect(ns('    egress.projectcalico.org/maxNextHops: "two"\n')[0]).toBe(
      'error annotations.invalid-max-next-hops metadata.annotations["egress.projectcalico.org/maxNextHops"]: "two" is not a non-negative integer',
    );
  });
});

describe('IPPool selectors', () => {
  test('global() is found by parsing, not by text search', () => {
    const p = (sel: string) => issuesOf(`apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, nodeSelector: "${sel}"}\n`);
    expect(p("zone == 'global('")).toEqual([]);
    expect(p('!global() || all()')).toEqual(['error IPPool.global-selector spec.nodeSelector: global() cannot be used in an IPPool selector']);
  });
});
