/** Calico's defaults: exact values, purity (inputs untouched) and idempotency. */
import { describe, expect, test } from 'vitest';
import {
  applyDefaults,
  effectiveFelixSettings,
  FELIX_DEFAULTS,
  jsonSchemaFor,
  type AnyResource,
  type EgressGateway,
  type EgressGatewayPolicy,
  type FelixConfiguration,
  type IPPool,
} from '../../src/api/index.js';
import { deepFreeze, referenceIncoming, valid } from './helpers.js';

const pool = (spec: string) => valid<IPPool>(`apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec:\n${spec}`);
const felix = (name: string, spec: string) => valid<FelixConfiguration>(`apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: ${name}}\nspec:\n${spec}`);
const egw = (spec: string) => valid<EgressGateway>(`apiVersion: operator.tigera.io/v1\nkind: EgressGateway\nmetadata: {name: gw, namespace: egress}\nspec:\n${spec}`);
const policy = (rules: string) => valid<EgressGatewayPolicy>(`apiVersion: projectcalico.org/v3\nkind: EgressGatewayPolicy\nmetadata: {name: p}\nspec:\n  rules:\n${rules}`);

describe('IPPool defaults', () => {
  test('an IPv4 pool gets blockSize 26, [Workload, Tunnel], all(), Never/Never, false ×3, Automatic', () => {
    expect(pool('  cidr: 10.244.0.0/16\n').spec).toEqual({
      cidr: '10.244.0.0/16',
      blockSize: 26,
      allowedUses: ['Workload', 'Tunnel'],
      nodeSelector: 'all()',
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: false,
      disabled: false,
      disableBGPExport: false,
      assignmentMode: 'Automatic',
    });
  });

  test('an IPv6 pool gets blockSize 122 and its CIDR in canonical form', () => {
    const p = pool('  cidr: FD00:0:0:0:0:0:0:0/64\n');
    expect(p.spec.blockSize).toBe(122);
    expect(p.spec.cidr).toBe('fd00::/64');
  });

  test('an empty nodeSelector means all()', () => {
    expect(pool("  cidr: 10.244.0.0/16\n  nodeSelector: ''\n").spec.nodeSelector).toBe('all()');
  });

  test('given values are kept', () => {
    const p = pool("  cidr: 100.64.0.0/24\n  blockSize: 32\n  allowedUses: [Tunnel]\n  vxlanMode: Always\n  natOutgoing: true\n  assignmentMode: Manual\n");
    expect(p.spec).toMatchObject({ blockSize: 32, allowedUses: ['Tunnel'], vxlanMode: 'Always', ipipMode: 'Never', natOutgoing: true, assignmentMode: 'Manual' });
  });
});

describe('FelixConfiguration defaults', () => {
  test('the default resource gets every egress and AWS default', () => {
    expect(felix('default', '  bpfEnabled: false\n').spec).toEqual({
      bpfEnabled: false,
      egressIPSupport: 'Disabled',
      egressIPVXLANPort: 4790,
      egressIPVXLANVNI: 4097,
      egressIPRoutingRulePriority: 100,
      egressGatewayPollInterval: '10s',
      egressGatewayPollFailureCount: 3,
      awsSecondaryIPSupport: 'Disabled',
      awsSecondaryIPRoutingRulePriority: 101,
      awsRequestTimeout: '30s',
      awsSrcDstCheck: 'DoNothing',
      routeTableRanges: [{ min: 1, max: 250 }],
    });
  });

  test('a per-node resource gets no defaults (it overrides default field by field)', () => {
    expect(felix('node.worker-1', '  egressIPVXLANPort: 4791\n').spec).toEqual({ egressIPVXLANPort: 4791 });
  });

  test('case-insensitive enums are accepted in any case and stored canonically', () => {
    const f = felix('default', '  egressIPSupport: enabledpernamespaceorperpod\n  awsSecondaryIPSupport: ENABLEDENIPERWORKLOAD\n  iptablesBackend: nft\n  logSeverityScreen: info\n');
    expect(f.spec).toMatchObject({ egressIPSupport: 'EnabledPerNamespaceOrPerPod', awsSecondaryIPSupport: 'EnabledENIPerWorkload', iptablesBackend: 'NFT', logSeverityScreen: 'Info' });
    expect(felix('node.a', '  egressIPSupport: disabled\n').spec.egressIPSupport).toBe('Disabled');
  });

  test('routeTableRanges is not defaulted when the deprecated routeTableRange is set', () => {
    const f = felix('default', '  routeTableRange: {min: 1, max: 200}\n');
    expect(f.spec.routeTableRange).toEqual({ min: 1, max: 200 });
    expect(f.spec.routeTableRanges).toBeUndefined();
  });

  test('effective settings: node over default over Calico defaults, field by field', () => {
    const global = felix('default', '  egressIPSupport: EnabledPerNamespace\n  egressIPVXLANPort: 4800\n');
    const node = felix('node.a', '  egressIPVXLANPort: 4801\n  routeTableRange: {min: 10, max: 20}\n');
    expect(effectiveFelixSettings()).toEqual({ ...FELIX_DEFAULTS, routeTableRanges: [{ min: 1, max: 250 }] });
    expect(effectiveFelixSettings(global, node)).toMatchObject({ egressIPSupport: 'EnabledPerNamespace', egressIPVXLANPort: 4801, egressIPVXLANVNI: 4097, routeTableRanges: [{ min: 10, max: 20 }] });
  });
});

describe('EgressGatewayPolicy defaults', () => {
  test('destination 0.0.0.0/0, gatewayPreference None, maxNextHops 0 (only inside a gateway)', () => {
    const p = policy("  - destination: {cidr: 10.0.0.0/8}\n  - gateway: {selector: \"a == 'b'\", namespaceSelector: all()}\n");
    expect(p.spec.rules).toEqual([
      { destination: { cidr: '10.0.0.0/8' }, gatewayPreference: 'None' },
      { gateway: { selector: "a == 'b'", namespaceSelector: 'all()', maxNextHops: 0 }, gatewayPreference: 'None', destination: { cidr: '0.0.0.0/0' } },
    ]);
  });

  test('a destination with host bits is stored as its network', () => {
    expect(policy('  - destination: {cidr: 10.1.2.3/8}\n').spec.rules?.[0]?.destination).toEqual({ cidr: '10.0.0.0/8' });
  });
});

describe('EgressGateway defaults', () => {
  test('replicas 1, logSeverity Info, label projectcalico.org/egw: <name>, zone anti-affinity on it; no aws block invented', () => {
    const g = egw('  ipPools: [{name: pool-a}]\n');
    expect(g.spec).toEqual({
      ipPools: [{ name: 'pool-a' }],
      replicas: 1,
      logSeverity: 'Info',
      template: {
        metadata: { labels: { 'projectcalico.org/egw': 'gw' } },
        spec: {
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 1, podAffinityTerm: { labelSelector: { matchLabels: { 'projectcalico.org/egw': 'gw' } }, topologyKey: 'topology.kubernetes.io/zone' } },
              ],
            },
          },
        },
      },
    });
  });

  test('an empty label map gets the default label; a given affinity is kept', () => {
    const g = egw('  ipPools: [{name: pool-a}]\n  template:\n    metadata: {labels: {}}\n    spec:\n      affinity: {nodeAffinity: {x: 1}}\n');
    expect(g.spec.template?.metadata?.labels).toEqual({ 'projectcalico.org/egw': 'gw' });
    expect(g.spec.template?.spec?.affinity).toEqual({ nodeAffinity: { x: 1 } });
  });

  test('aws.nativeIP defaults to Disabled when aws is given', () => {
    expect(egw('  ipPools: [{name: pool-a}]\n  aws: {}\n').spec.aws).toEqual({ nativeIP: 'Disabled' });
  });

  test('failure detection: datastore 90 s; ICMP 5/15 s and HTTP 10/30 s only for the probes given', () => {
    expect(egw('  ipPools: [{name: a}]\n  egressGatewayFailureDetection:\n    icmpProbe: {ips: [198.51.100.1]}\n').spec.egressGatewayFailureDetection).toEqual({
      healthTimeoutDataStoreSeconds: 90,
      icmpProbe: { ips: ['198.51.100.1'], intervalSeconds: 5, timeoutSeconds: 15 },
    });
    expect(egw('  ipPools: [{name: a}]\n  egressGatewayFailureDetection:\n    httpProbe: {urls: ["http://198.51.100.1/"]}\n').spec.egressGatewayFailureDetection).toEqual({
      healthTimeoutDataStoreSeconds: 90,
      httpProbe: { urls: ['http://198.51.100.1/'], intervalSeconds: 10, timeoutSeconds: 30 },
    });
  });

  test('the schema carries the CRD defaults that are unconditional', () => {
    const schema = JSON.stringify(jsonSchemaFor('EgressGateway'));
    expect(schema).toContain('"default":"Info"');
    expect(JSON.stringify(jsonSchemaFor('egressgatewaypolicy'))).toContain('"default":"None"');
  });
});

describe('applyDefaults', () => {
  const samples = (): AnyResource[] => [
    ...referenceIncoming().map((i) => i.resource),
    pool('  cidr: 10.244.0.0/16\n'),
    felix('default', '  egressIPSupport: enabledpernamespace\n'),
    egw('  ipPools: [{cidr: 10.10.10.0/31}]\n  aws: {}\n  egressGatewayFailureDetection: {httpProbe: {urls: ["http://x.example/"]}}\n'),
    policy('  - {}\n  - destination: {cidr: 10.0.0.0/8}\n'),
  ];

  test('is idempotent: applying it twice equals applying it once', () => {
    for (const r of samples()) expect(applyDefaults(applyDefaults(r))).toEqual(applyDefaults(r));
  });

  test('never modifies its input', () => {
    const raw = deepFreeze<EgressGateway>({
      apiVersion: 'operator.tigera.io/v1',
      kind: 'EgressGateway',
      metadata: { name: 'gw', namespace: 'x' },
      spec: { ipPools: [{ name: 'a' }], aws: {}, template: { metadata: {}, spec: {} }, egressGatewayFailureDetection: { icmpProbe: { ips: ['198.51.100.1'] } } },
    });
    expect(() => applyDefaults(raw)).not.toThrow();
    for (const r of samples()) {
      const frozen = deepFreeze(structuredClone(r));
      expect(() => applyDefaults(frozen)).not.toThrow();
    }
  });
});
