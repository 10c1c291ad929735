/** crossCheck: rules over the documents of one apply plus the store, independent of document order. */
import { describe, expect, test } from 'vitest';
import { crossCheck, type AnyResource, type IncomingResource } from '../../src/api/index.js';
import { brief, crossLines, referenceIncoming, shuffled, validateYaml } from './helpers.js';

const docs = (text: string, file = 'apply.yaml') => {
  const { incoming, issues } = validateYaml(text, file);
  if (issues.some((i) => i.severity === 'error')) throw new Error(brief(issues).join('\n'));
  return incoming;
};
const stored = (text: string): AnyResource[] => docs(text, 'store').map((i) => i.resource);
const cross = (incoming: IncomingResource[], existing: AnyResource[] = []) => brief(crossCheck(incoming, existing));

const POOL = (name: string, cidr: string, extra = '') =>
  `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: ${name}}\nspec: {cidr: ${cidr}, blockSize: 32, allowedUses: [Workload], nodeSelector: '!all()', disableBGPExport: true${extra}}\n`;
const AWS_POOL = (name: string, cidr: string, subnet = 'subnet-000000000000000001') => POOL(name, cidr, `, awsSubnetID: ${subnet}`);
const EGW = (pools: string, aws = 'Enabled', ns = 'calico-egress') =>
  `apiVersion: operator.tigera.io/v1\nkind: EgressGateway\nmetadata: {name: red, namespace: ${ns}}\nspec: {ipPools: ${pools}, aws: {nativeIP: ${aws}}}\n`;
const NS = (name: string, annotations = '') => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n${annotations === '' ? '' : `  annotations:\n${annotations}`}`;
const FELIX = (spec: string) => `apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\nspec: {${spec}}\n`;
const join = (...parts: string[]) => parts.join('---\n');
/** FelixConfiguration default with egress and AWS support on, as the reference sets it. */
const FELIX_ON = FELIX('egressIPSupport: EnabledPerNamespaceOrPerPod, awsSecondaryIPSupport: EnabledENIPerWorkload');

describe('IPPool', () => {
  test('a new pool overlapping a stored one is rejected with Calico\'s message', () => {
    const existing = stored(AWS_POOL('egress-red-west-1', '100.64.0.4/30'));
    expect(cross(docs(AWS_POOL('egress-all', '100.64.0.0/22')), existing)).toEqual([
      'error IPPool.overlap spec.cidr: IPPool(egress-all) CIDR overlaps with IPPool(egress-red-west-1) CIDR 100.64.0.4/30',
    ]);
    expect(cross(docs(AWS_POOL('egress-next', '100.64.0.8/30')), existing)).toEqual([]);
  });

  test('re-applying a stored pool is not an overlap; changing its CIDR or blockSize is refused', () => {
    const existing = stored(POOL('p', '10.0.0.0/24'));
    expect(cross(docs(POOL('p', '10.0.0.0/24', ', natOutgoing: true')), existing)).toEqual([]);
    expect(cross(docs(POOL('p', '10.0.0.0/23')), existing)).toEqual(['error IPPool.cidr-immutable spec.cidr: IPPool CIDR cannot be modified (stored: 10.0.0.0/24)']);
    const defaulted = stored('apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: q}\nspec: {cidr: 10.1.0.0/16}\n');
    expect(cross(docs('apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: q}\nspec: {cidr: 10.1.0.0/16}\n'), defaulted)).toEqual([]);
    expect(cross(docs('apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: q}\nspec: {cidr: 10.1.0.0/16, blockSize: 28}\n'), defaulted)).toEqual([
      'error IPPool.block-size-immutable spec.blockSize: IPPool BlockSize cannot be modified (stored: 26)',
    ]);
  });

  test('every overlapping pair is found: nested chains, equal CIDRs, neighbours that do not touch', () => {
    const text = join(
      POOL('a', '10.0.0.0/8').replace('blockSize: 32', 'blockSize: 26'),
      POOL('b', '10.1.0.0/16').replace('blockSize: 32', 'blockSize: 26'),
      POOL('c', '10.1.2.0/24').replace('blockSize: 32', 'blockSize: 26'),
      POOL('d', '11.0.0.0/24').replace('blockSize: 32', 'blockSize: 26'),
      POOL('e', '10.1.2.0/24').replace('blockSize: 32', 'blockSize: 26'),
      POOL('f', '10.2.0.0/16').replace('blockSize: 32', 'blockSize: 26'),
    );
    const pairs = crossCheck(docs(text), [])
      .map((i) => /IPPool\((\w)\) CIDR overlaps with IPPool\((\w)\)/.exec(i.message)!.slice(1).join(''))
      .sort();
    expect(pairs).toEqual(['ab', 'ac', 'ae', 'af', 'ba', 'bc', 'be', 'ca', 'cb', 'ce', 'ea', 'eb', 'ec', 'fa']);
  });

  test('pools of different families never overlap', () => {
    expect(cross(docs(join(POOL('v4', '10.0.0.0/8').replace('blockSize: 32', 'blockSize: 26'), "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: v6}\nspec: {cidr: 'fd00::/8'}\n")))).toEqual([]);
  });

  test('an AWS-backed pool must lie inside its AWSSubnet (when egw knows the subnet); unknown subnets are fine', () => {
    const subnet = 'apiVersion: egw.io/v1\nkind: AWSSubnet\nmetadata: {name: subnet-000000000000000001}\nspec: {subnetID: subnet-000000000000000001, cidr: 100.64.0.0/22, availabilityZone: us-west-2a}\n';
    expect(cross(docs(join(subnet, AWS_POOL('in', '100.64.3.252/30'))))).toEqual([]);
    expect(cross(docs(AWS_POOL('elsewhere', '100.64.8.0/30', 'subnet-0a1b2c3d')))).toEqual([]);
    // Shrinking a subnet record under a stored pool is reported on the subnet.
    const existing = stored(join(subnet, AWS_POOL('in', '100.64.3.252/30')));
    expect(cross(docs(subnet.replace('100.64.0.0/22', '100.64.0.0/23')), existing)).toEqual([
      'error AWSSubnet.pool-outside spec.cidr: IPPool in (100.64.3.252/30) is backed by this subnet but lies outside 100.64.0.0/23',
    ]);
  });
});

describe('EgressGateway', () => {
  test('a pool that does not exist (yet) is a warning, by name and by CIDR', () => {
    expect(cross(docs(join(NS('calico-egress'), EGW('[{name: egress-red-west-1}, {cidr: 100.64.4.4/30}]'), FELIX_ON)))).toEqual([
      'warning EgressGateway.ippool-missing spec.ipPools[0]: IPPool "egress-red-west-1" does not exist (yet)',
      'warning EgressGateway.ippool-missing spec.ipPools[1]: IPPool matching CIDR = 100.64.4.4/30 not present',
    ]);
  });

  test('nativeIP Enabled needs AWS-backed pools: reported on the gateway, or on the pool when only the pool changes', () => {
    const plain = POOL('plain', '10.10.10.0/31');
    expect(cross(docs(join(NS('calico-egress'), EGW('[{cidr: 10.10.10.0/31}]'), plain, FELIX_ON)))).toEqual([
      'error EgressGateway.ippool-not-aws-backed spec.ipPools[0]: AWS subnet ID must be set when NativeIP is enabled (IPPool plain has no awsSubnetID)',
    ]);
    expect(cross(docs(join(NS('calico-egress'), EGW('[{cidr: 10.10.10.0/31}]', 'Disabled'), plain)))).toEqual([]);
    const existing = stored(join(NS('calico-egress'), EGW('[{name: pool-a}]'), AWS_POOL('pool-a', '100.64.0.4/30'), FELIX_ON));
    expect(cross(docs(POOL('pool-a', '100.64.0.4/30')), existing)).toEqual([
      'error IPPool.needed-by-native-ip spec.awsSubnetID: AWS subnet ID must be set when NativeIP is enabled: EgressGateway calico-egress/red uses this pool with aws.nativeIP Enabled',
    ]);
  });

  test('more replicas than the addresses its pools hold (after IPReservations) is a warning', () => {
    const reservation = 'apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: aws}\nspec: {reservedCIDRs: [100.64.0.4/31, 100.64.0.5, 100.64.0.8]}\n';
    const egw = (replicas: number) => EGW('[{name: pool-a}, {name: pool-b}]').replace('spec: {', `spec: {replicas: ${replicas}, `);
    const existing = stored(join(AWS_POOL('pool-a', '100.64.0.4/30'), AWS_POOL('pool-b', '100.64.0.8/30'), reservation, FELIX_ON, NS('calico-egress')));
    // 4 + 4 addresses; .4/31 (with .5 inside it, counted once) and .8 reserved: 5 usable.
    expect(cross(docs(egw(5)), existing)).toEqual([]);
    expect(cross(docs(egw(7)), existing)).toEqual([
      'warning EgressGateway.replicas-exceed-pools spec.replicas: 7 replicas, but its IPPools hold 5 usable addresses (after IPReservations, before other users of the pools): 2 gateway pods would get no address',
    ]);
    // A pool that does not exist yet: no count (its own warning says so).
    expect(cross(docs(egw(99).replace('pool-b', 'pool-c')), existing)).toEqual(['warning EgressGateway.ippool-missing spec.ipPools[1]: IPPool "pool-c" does not exist (yet)']);
  });

  test('name and cidr must designate the same pool', () => {
    const existing = stored(join(AWS_POOL('pool-a', '100.64.0.4/30'), FELIX_ON));
    expect(cross(docs(join(NS('calico-egress'), EGW('[{name: pool-a, cidr: 100.64.0.8/30}]'))), existing)).toEqual([
      'error EgressGateway.ippool-cidr-mismatch spec.ipPools[0].cidr: IPPool CIDR does not match with name (IPPool pool-a has CIDR 100.64.0.4/30)',
    ]);
    expect(cross(docs(join(NS('calico-egress'), EGW('[{name: pool-a, cidr: 100.64.0.4/30}]'))), existing)).toEqual([]);
  });

  test('a missing namespace and a FelixConfiguration without AWS support are warnings', () => {
    const existing = stored(join(AWS_POOL('pool-a', '100.64.0.4/30'), FELIX('awsSecondaryIPSupport: Disabled')));
    expect(cross(docs(EGW('[{name: pool-a}]', 'Enabled', 'gateways')), existing)).toEqual([
      'warning apply.namespace-missing metadata.namespace: Namespace "gateways" does not exist (yet)',
      'warning EgressGateway.aws-support-disabled spec.aws.nativeIP: aws.nativeIP is Enabled but FelixConfiguration default has awsSecondaryIPSupport Disabled, so no secondary ENIs are provisioned for the gateways',
    ]);
    expect(cross(docs(EGW('[{name: pool-a}]', 'Enabled', 'default')), stored(AWS_POOL('pool-a', '100.64.0.4/30')))).toHaveLength(1);
  });
});

describe('client annotations', () => {
  const felixOn = FELIX('egressIPSupport: EnabledPerNamespaceOrPerPod');

  test('a policy that does not exist yet is a warning (traffic is blocked until it does)', () => {
    const ns = NS('red', '    egress.projectcalico.org/egressGatewayPolicy: egw-policy1\n');
    expect(cross(docs(join(felixOn, ns)))).toEqual([
      'warning annotations.policy-missing metadata.annotations["egress.projectcalico.org/egressGatewayPolicy"]: EgressGatewayPolicy "egw-policy1" does not exist (yet); until it does, egress traffic from this Namespace is blocked',
    ]);
    const policy = 'apiVersion: projectcalico.org/v3\nkind: EgressGatewayPolicy\nmetadata: {name: egw-policy1}\nspec: {rules: [{destination: {cidr: 10.0.0.0/8}}]}\n';
    expect(cross(docs(join(felixOn, ns, policy)))).toEqual([]);
    expect(cross(docs(join(policy, ns, felixOn)))).toEqual([]);
    expect(cross(docs(ns), stored(join(felixOn, policy)))).toEqual([]);
  });

  test("a pod's pools and Elastic IPs outside its namespace's allow-lists are errors; without allow-lists, anything goes", () => {
    const POD = (ns: string, annotations: string) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: ${ns}\n  annotations:\n${annotations}spec:\n  containers: [{name: c}]\n`;
    const asks = `    cni.projectcalico.org/ipv4pools: '["pool-a", "100.64.0.8/30"]'\n    cni.projectcalico.org/awsElasticIPs: '["203.0.113.7", "203.0.113.8"]'\n`;
    const pools = stored(join(AWS_POOL('pool-a', '100.64.0.4/30'), AWS_POOL('pool-b', '100.64.0.8/30')));
    const limited = NS('red', `    egw.io/allowed-ipv4pools: '["pool-b"]'\n    egw.io/allowed-elastic-ips: '["203.0.113.8"]'\n`);
    expect(cross(docs(join(limited, POD('red', asks))), pools)).toEqual([
      'error annotations.pool-not-allowed metadata.annotations["cni.projectcalico.org/ipv4pools"]: IPPool pool-a is not allowed in namespace red (egw.io/allowed-ipv4pools: ["pool-b"])',
      'error annotations.elastic-ip-not-allowed metadata.annotations["cni.projectcalico.org/awsElasticIPs"]: Elastic IP 203.0.113.7 is not allowed in namespace red (egw.io/allowed-elastic-ips: ["203.0.113.8"])',
    ]);
    // The namespace stored earlier counts as well; pool-b named by its CIDR is the same pool.
    expect(cross(docs(POD('red', `    cni.projectcalico.org/ipv4pools: '["100.64.0.8/30"]'\n`)), [...pools, ...stored(limited)])).toEqual([]);
    expect(cross(docs(join(NS('red'), POD('red', asks))), pools)).toEqual([]);
  });

  test('ipv4pools naming unknown pools warns, by name or CIDR', () => {
    const ns = NS('red', `    cni.projectcalico.org/ipv4pools: '["pool-a", "100.64.0.8/30", "pool-b"]'\n`);
    expect(cross(docs(ns), stored(AWS_POOL('pool-a', '100.64.0.4/30')))).toEqual([
      'warning annotations.pool-missing metadata.annotations["cni.projectcalico.org/ipv4pools"]: IPPool "100.64.0.8/30" does not exist (yet); pods cannot get an address from it',
      'warning annotations.pool-missing metadata.annotations["cni.projectcalico.org/ipv4pools"]: IPPool "pool-b" does not exist (yet); pods cannot get an address from it',
    ]);
  });

  test('egress annotations while FelixConfiguration disables them warn; pod annotations under EnabledPerNamespace warn', () => {
    const ns = NS('red', "    egress.projectcalico.org/selector: egress-code == 'red'\n");
    expect(cross(docs(ns))).toEqual([
      'warning egress.support-disabled metadata.annotations["egress.projectcalico.org/selector"]: egress annotations have no effect: FelixConfiguration default has egressIPSupport Disabled',
    ]);
    const pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: c\n  namespace: red\n  annotations: {egress.projectcalico.org/selector: \"egress-code == 'red'\"}\nspec: {containers: [{name: c}]}\n";
    expect(cross(docs(join(pod, ns)), stored(FELIX('egressIPSupport: EnabledPerNamespace')))).toEqual([
      'warning egress.pod-annotations-ignored metadata.annotations["egress.projectcalico.org/selector"]: egress annotations on Pods are ignored: FelixConfiguration default has egressIPSupport EnabledPerNamespace',
    ]);
    expect(cross(docs(join(pod, ns)), stored(felixOn))).toEqual([]);
  });
});

describe('the apply as a whole', () => {
  test('a resource twice in one apply is an error on its second occurrence', () => {
    const p = POOL('p', '10.0.0.0/24');
    const issues = crossCheck(docs(join(p, p), 'twice.yaml'), []);
    expect(brief(issues)).toEqual(['error apply.duplicate metadata.name: IPPool "p" is defined twice in this apply (first at twice.yaml#1)']);
    expect(issues[0]!.documentIndex).toBe(2);
  });

  test('a mixed apply with errors and warnings reports the same issues in any order', () => {
    const text = join(
      NS('calico-egress'),
      EGW('[{name: plain}, {name: missing}, {name: pool-a, cidr: 100.64.0.8/30}]'),
      POOL('plain', '10.10.10.0/31'),
      AWS_POOL('pool-a', '100.64.0.4/30'),
      AWS_POOL('pool-a-big', '100.64.0.0/29'),
      NS('red', "    egress.projectcalico.org/egressGatewayPolicy: later\n    cni.projectcalico.org/ipv4pools: '[\"plain\"]'\n"),
      FELIX('egressIPSupport: EnabledPerNamespace, awsSecondaryIPSupport: EnabledENIPerWorkload'),
    );
    const incoming = docs(text);
    const strip = (lines: string[]) => lines.map((l) => l.replace(/apply\.yaml#\d+ /, '')).sort();
    const expected = strip(crossLines(incoming));
    expect(expected).toEqual(
      [
        'EgressGateway/calico-egress/red spec.ipPools[0]: AWS subnet ID must be set when NativeIP is enabled (IPPool plain has no awsSubnetID); expected AWS-backed IPPools (awsSubnetID set), or aws.nativeIP: Disabled',
        'EgressGateway/calico-egress/red spec.ipPools[2].cidr: IPPool CIDR does not match with name (IPPool pool-a has CIDR 100.64.0.4/30); expected cidr: 100.64.0.4/30, or no cidr',
        "warning: EgressGateway/calico-egress/red spec.ipPools[1]: IPPool \"missing\" does not exist (yet); expected an IPPool named missing; until it exists the controller reports it on the EgressGateway's status",
        'IPPool/pool-a spec.cidr: IPPool(pool-a) CIDR overlaps with IPPool(pool-a-big) CIDR 100.64.0.0/29; expected a CIDR that overlaps no other IPPool',
        'IPPool/pool-a-big spec.cidr: IPPool(pool-a-big) CIDR overlaps with IPPool(pool-a) CIDR 100.64.0.4/30; expected a CIDR that overlaps no other IPPool',
        'warning: Namespace/red metadata.annotations["egress.projectcalico.org/egressGatewayPolicy"]: EgressGatewayPolicy "later" does not exist (yet); until it does, egress traffic from this Namespace is blocked; expected an EgressGatewayPolicy named later, created before it is referenced',
      ].sort(),
    );
    for (let seed = 1; seed <= 25; seed++) expect(strip(crossLines(shuffled(incoming, seed)))).toEqual(expected);
  });

  test('the reference set on top of an unrelated store stays clean; against an overlapping stored pool it is not', () => {
    const all = referenceIncoming();
    expect(crossLines(all, stored(POOL('other', '10.0.0.0/24')))).toEqual([]);
    expect(crossLines(all, stored(POOL('squatter', '100.64.0.0/28', ', awsSubnetID: subnet-000000000000000001')))).toHaveLength(2);
  });
});
