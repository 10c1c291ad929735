import type { Ec2Engine } from './engine.js';
import type { InstanceTypeLimits } from './instance-types.js';
import type { AddressRecord, EniRecord } from './model.js';
import type { WorldInstance, WorldSubnet } from './world.js';
import { el, leaf, list, type Xml } from './xml.js';

/**
 * XML renderings of the emulator's objects in the EC2 response shapes (element names as in the
 * EC2 2016-11-15 service model that @aws-sdk/client-ec2 parses).
 */

/** `<tagSet>`. */
export function tagSet(tags: Record<string, string>): Xml {
  return list('tagSet', Object.entries(tags), ([k, v]) => [leaf('key', k), leaf('value', v)]);
}

/** `ip-a-b-c-d.<region>.compute.internal`, the private DNS name EC2 gives an address. */
export function privateDnsName(ip: string, region: string): string {
  return `ip-${ip.replaceAll('.', '-')}.${region === 'us-east-1' ? 'ec2' : `${region}.compute`}.internal`;
}

function groupSet(engine: Ec2Engine, groups: readonly string[]): Xml {
  return list('groupSet', groups, (id) => [
    leaf('groupId', id),
    leaf('groupName', engine.world.securityGroups.find((g) => g.id === id)?.name ?? id),
  ]);
}

function association(engine: Ec2Engine, privateIp: string): Xml | undefined {
  const a = engine.addressOnPrivateIp(privateIp);
  if (a?.association === undefined) return undefined;
  return el(
    'association',
    leaf('publicIp', a.publicIp),
    leaf('publicDnsName', ''),
    leaf('ipOwnerId', engine.world.accountId),
    leaf('allocationId', a.allocationId),
    leaf('associationId', a.association.associationId),
  );
}

/** A `NetworkInterface` (DescribeNetworkInterfaces item, CreateNetworkInterface result). */
export function networkInterface(engine: Ec2Engine, eni: EniRecord): Xml[] {
  const region = engine.world.region;
  const primary = eni.privateIps[0] ?? '';
  const a = eni.attachment;
  return [
    leaf('networkInterfaceId', eni.id),
    leaf('subnetId', eni.subnetId),
    leaf('vpcId', eni.vpcId),
    leaf('availabilityZone', eni.availabilityZone),
    leaf('availabilityZoneId', engine.world.subnets.find((s) => s.id === eni.subnetId)?.availabilityZoneId),
    leaf('description', eni.description),
    leaf('ownerId', engine.world.accountId),
    leaf('requesterManaged', false),
    leaf('status', eni.status),
    leaf('macAddress', eni.macAddress),
    leaf('privateIpAddress', primary),
    leaf('privateDnsName', privateDnsName(primary, region)),
    leaf('sourceDestCheck', eni.sourceDestCheck),
    groupSet(engine, eni.groups),
    a === undefined
      ? undefined
      : el(
          'attachment',
          leaf('attachmentId', a.attachmentId),
          leaf('instanceId', a.instanceId),
          leaf('instanceOwnerId', engine.world.accountId),
          leaf('deviceIndex', a.deviceIndex),
          leaf('networkCardIndex', a.networkCardIndex),
          leaf('status', a.status),
          leaf('attachTime', a.attachTime),
          leaf('deleteOnTermination', a.deleteOnTermination),
        ),
    association(engine, primary),
    tagSet(engine.tagsOf(eni.id)),
    list('privateIpAddressesSet', eni.privateIps, (ip) => [
      leaf('privateIpAddress', ip),
      leaf('privateDnsName', privateDnsName(ip, region)),
      leaf('primary', ip === primary),
      association(engine, ip),
    ]),
    list('ipv6AddressesSet', [], () => []),
    leaf('interfaceType', 'interface'),
  ].filter((x): x is Xml => x !== undefined);
}

function instanceNetworkInterface(engine: Ec2Engine, eni: EniRecord): Xml[] {
  const region = engine.world.region;
  const primary = eni.privateIps[0] ?? '';
  const a = eni.attachment;
  return [
    leaf('networkInterfaceId', eni.id),
    leaf('subnetId', eni.subnetId),
    leaf('vpcId', eni.vpcId),
    leaf('description', eni.description),
    leaf('ownerId', engine.world.accountId),
    leaf('status', eni.status),
    leaf('macAddress', eni.macAddress),
    leaf('privateIpAddress', primary),
    leaf('privateDnsName', privateDnsName(primary, region)),
    leaf('sourceDestCheck', eni.sourceDestCheck),
    groupSet(engine, eni.groups),
    a === undefined
      ? undefined
      : el(
          'attachment',
          leaf('attachmentId', a.attachmentId),
          leaf('deviceIndex', a.deviceIndex),
          leaf('networkCardIndex', a.networkCardIndex),
          leaf('status', a.status),
          leaf('attachTime', a.attachTime),
          leaf('deleteOnTermination', a.deleteOnTermination),
        ),
    association(engine, primary),
    list('privateIpAddressesSet', eni.privateIps, (ip) => [
      leaf('privateIpAddress', ip),
      leaf('privateDnsName', privateDnsName(ip, region)),
      leaf('primary', ip === primary),
      association(engine, ip),
    ]),
    list('ipv6AddressesSet', [], () => []),
    leaf('interfaceType', 'interface'),
  ].filter((x): x is Xml => x !== undefined);
}

/** A reservation holding one instance (the emulator launches no instances, so one per reservation). */
export function reservation(engine: Ec2Engine, instance: WorldInstance, launchTime: string): Xml[] {
  const subnet = engine.subnet(instance.subnetId);
  const enis = engine.enisOf(instance.id);
  const publicIp = engine.addressOnPrivateIp(instance.privateIp)?.publicIp;
  return [
    leaf('reservationId', `r-${instance.id.slice(2)}`),
    leaf('ownerId', engine.world.accountId),
    list('groupSet', [], () => []),
    list('instancesSet', [instance], (i) => [
      leaf('instanceId', i.id),
      leaf('imageId', 'ami-0e65c1b0e3f1d2a00'),
      engine.isTerminated(i.id) ? el('instanceState', leaf('code', 48), leaf('name', 'terminated')) : el('instanceState', leaf('code', 16), leaf('name', 'running')),
      leaf('privateDnsName', engine.isTerminated(i.id) ? '' : privateDnsName(i.privateIp, engine.world.region)),
      leaf('dnsName', ''),
      leaf('reason', ''),
      leaf('amiLaunchIndex', 0),
      list('productCodes', [], () => []),
      leaf('instanceType', i.type),
      leaf('launchTime', launchTime),
      el('placement', leaf('availabilityZone', subnet.availabilityZone), leaf('availabilityZoneId', subnet.availabilityZoneId), leaf('groupName', ''), leaf('tenancy', 'default')),
      el('monitoring', leaf('state', 'disabled')),
      leaf('subnetId', subnet.id),
      leaf('vpcId', subnet.vpcId),
      leaf('privateIpAddress', engine.isTerminated(i.id) ? undefined : i.privateIp),
      leaf('ipAddress', engine.isTerminated(i.id) ? undefined : publicIp),
      leaf('sourceDestCheck', enis.find((e) => e.primaryOf === i.id)?.sourceDestCheck ?? true),
      groupSet(engine, i.securityGroups),
      leaf('architecture', 'x86_64'),
      leaf('rootDeviceType', 'ebs'),
      leaf('rootDeviceName', '/dev/xvda'),
      list('blockDeviceMapping', [], () => []),
      leaf('virtualizationType', 'hvm'),
      tagSet(engine.tagsOf(i.id)),
      leaf('hypervisor', 'xen'),
      list('networkInterfaceSet', enis, (e) => instanceNetworkInterface(engine, e)),
      leaf('ebsOptimized', false),
      leaf('enaSupport', true),
      el('metadataOptions', leaf('state', 'applied'), leaf('httpTokens', engine.world.sim.imds.tokens), leaf('httpPutResponseHopLimit', engine.world.sim.imds.hopLimit), leaf('httpEndpoint', 'enabled')),
    ]),
  ];
}

/** A `Subnet`. */
export function subnet(engine: Ec2Engine, s: WorldSubnet): Xml[] {
  return [
    leaf('subnetId', s.id),
    leaf('subnetArn', `arn:aws:ec2:${engine.world.region}:${engine.world.accountId}:subnet/${s.id}`),
    leaf('state', 'available'),
    leaf('ownerId', engine.world.accountId),
    leaf('vpcId', s.vpcId),
    leaf('cidrBlock', s.cidr),
    leaf('availableIpAddressCount', engine.availableAddressCount(s)),
    leaf('availabilityZone', s.availabilityZone),
    leaf('availabilityZoneId', s.availabilityZoneId),
    leaf('defaultForAz', false),
    leaf('mapPublicIpOnLaunch', false),
    leaf('assignIpv6AddressOnCreation', false),
    list('ipv6CidrBlockAssociationSet', [], () => []),
    tagSet(engine.tagsOf(s.id)),
  ];
}

/** An `Address` (Elastic IP). */
export function address(engine: Ec2Engine, a: AddressRecord): Xml[] {
  const as = a.association;
  const eni = as === undefined ? undefined : engine.state.enis[as.networkInterfaceId];
  return [
    leaf('publicIp', a.publicIp),
    leaf('allocationId', a.allocationId),
    leaf('domain', 'vpc'),
    leaf('associationId', as?.associationId),
    leaf('instanceId', eni?.attachment?.instanceId),
    leaf('networkInterfaceId', as?.networkInterfaceId),
    leaf('networkInterfaceOwnerId', as === undefined ? undefined : engine.world.accountId),
    leaf('privateIpAddress', as?.privateIp),
    tagSet(engine.tagsOf(a.allocationId)),
    leaf('publicIpv4Pool', 'amazon'),
    leaf('networkBorderGroup', engine.world.region),
  ];
}

/** An `InstanceTypeInfo`, with the network limits of the table. */
export function instanceType(t: InstanceTypeLimits): Xml[] {
  // Cards other than the default one share the remaining ENIs evenly (the table only has totals).
  const others = t.networkCards > 1 ? Math.ceil((t.maxEnisAllCards - t.maxEnis) / (t.networkCards - 1)) : 0;
  const cards = Array.from({ length: t.networkCards }, (_, i) => ({ index: i, max: i === 0 ? t.maxEnis : others }));
  return [
    leaf('instanceType', t.instanceType),
    leaf('currentGeneration', true),
    leaf('bareMetal', t.bareMetal),
    leaf('hypervisor', t.hypervisor === 'nitro' || t.hypervisor === 'xen' ? t.hypervisor : undefined),
    el(
      'networkInfo',
      leaf('maximumNetworkInterfaces', t.maxEnisAllCards),
      leaf('maximumNetworkCards', t.networkCards),
      leaf('defaultNetworkCardIndex', 0),
      list('networkCards', cards, (c) => [leaf('networkCardIndex', c.index), leaf('maximumNetworkInterfaces', c.max)]),
      leaf('ipv4AddressesPerInterface', t.ipv4PerEni),
      leaf('ipv6AddressesPerInterface', t.ipv4PerEni),
      leaf('ipv6Supported', true),
      leaf('enaSupport', t.hypervisor === 'nitro' ? 'required' : 'supported'),
      leaf('efaSupported', false),
    ),
  ];
}
