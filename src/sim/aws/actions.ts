import { awsErrors } from './api-error.js';
import type { Ec2Engine, TagInput } from './engine.js';
import { compileFilters, type FilterTable } from './filters.js';
import type { InstanceTypeLimits } from './instance-types.js';
import type { AddressRecord, EniRecord } from './model.js';
import type { QueryParams } from './query.js';
import * as render from './render.js';
import type { WorldInstance, WorldSubnet } from './world.js';
import { concat, el, leaf, list, type Xml } from './xml.js';

/** One supported EC2 action: how to run it against the engine and render its response body. */
export interface ActionSpec {
  /** True when the action changes state (it is then persisted and its fabric events delivered). */
  mutating: boolean;
  /** Runs the action; throws Ec2ApiError. Every parameter it does not read is rejected as unknown. */
  handle(params: QueryParams, engine: Ec2Engine): Xml;
}

/** Parameters every action accepts. */
const COMMON = ['Action', 'Version', 'DryRun'];

/** The actions of issue 5, by name. */
export const ACTIONS: Readonly<Record<string, ActionSpec>> = {
  DescribeInstances: { mutating: false, handle: describeInstances },
  DescribeInstanceTypes: { mutating: false, handle: describeInstanceTypes },
  DescribeNetworkInterfaces: { mutating: false, handle: describeNetworkInterfaces },
  DescribeSubnets: { mutating: false, handle: describeSubnets },
  DescribeTags: { mutating: false, handle: describeTags },
  DescribeAddresses: { mutating: false, handle: describeAddresses },
  CreateTags: { mutating: true, handle: createTags },
  CreateNetworkInterface: { mutating: true, handle: createNetworkInterface },
  AttachNetworkInterface: { mutating: true, handle: attachNetworkInterface },
  DetachNetworkInterface: { mutating: true, handle: detachNetworkInterface },
  DeleteNetworkInterface: { mutating: true, handle: deleteNetworkInterface },
  ModifyNetworkInterfaceAttribute: { mutating: true, handle: modifyNetworkInterfaceAttribute },
  AssignPrivateIpAddresses: { mutating: true, handle: assignPrivateIpAddresses },
  UnassignPrivateIpAddresses: { mutating: true, handle: unassignPrivateIpAddresses },
  AllocateAddress: { mutating: true, handle: allocateAddress },
  AssociateAddress: { mutating: true, handle: associateAddress },
  DisassociateAddress: { mutating: true, handle: disassociateAddress },
  TerminateInstances: { mutating: true, handle: terminateInstances },
};

/** Rejects parameters that the handler did not read (unsupported features fail loudly, not silently). */
function finish(p: QueryParams): void {
  for (const name of COMMON) p.string(name);
  const unknown = p.untouched()[0];
  if (unknown !== undefined) throw awsErrors.unknownParameter(unknown);
}

/**
 * True when a Describe call has neither a filter nor pagination (nor IDs): AWS then charges the
 * smaller "unfiltered and unpaginated" bucket for DescribeInstances and DescribeNetworkInterfaces.
 */
export function isUnfilteredUnpaginated(p: QueryParams): boolean {
  return !p.keys().some((k) => k.startsWith('Filter.') || k === 'MaxResults' || k === 'NextToken' || /^(InstanceId|NetworkInterfaceId)\.\d+$/.test(k));
}

// ------------------------------------------------------------------ pagination

interface PageOptions {
  action: string;
  min: number;
  max: number;
  /** Page size when MaxResults is absent (undefined = everything). */
  defaultPage: number | undefined;
  /** Name of the ID list that cannot be combined with MaxResults, if any. */
  idsParam: string | undefined;
}

interface Paging {
  options: PageOptions;
  max: number | undefined;
  offset: number;
}

/** Reads and validates MaxResults/NextToken (before any resource lookup, as request validation comes first). */
function paging(p: QueryParams, o: PageOptions): Paging {
  const max = p.integer('MaxResults');
  const token = p.string('NextToken');
  if (max !== undefined && o.idsParam !== undefined && p.list(o.idsParam).length > 0) {
    throw awsErrors.invalidParameterCombination(`The parameter ${o.idsParam} cannot be used with the parameter MaxResults`);
  }
  if (max !== undefined && (max < o.min || max > o.max)) {
    throw awsErrors.invalidParameterValue(`Value ( ${max} ) for parameter maxResults is invalid. Expecting a value between ${o.min} and ${o.max}.`);
  }
  let offset = 0;
  if (token !== undefined && token !== '') {
    try {
      const decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { a?: unknown; o?: unknown };
      if (decoded.a !== o.action || typeof decoded.o !== 'number' || !Number.isInteger(decoded.o) || decoded.o < 0) throw new Error('bad token');
      offset = decoded.o;
    } catch {
      throw awsErrors.invalidNextToken();
    }
  }
  return { options: o, max, offset };
}

/** One page of `items` and the token of the next page (opaque, as on AWS). */
function page<T>(items: readonly T[], paging: Paging): { page: T[]; nextToken: string | undefined } {
  const { max, offset, options } = paging;
  const size = max ?? options.defaultPage ?? items.length;
  const next = offset + size;
  return {
    page: items.slice(offset, next),
    nextToken: next < items.length ? Buffer.from(JSON.stringify({ a: options.action, o: next })).toString('base64url') : undefined,
  };
}

// ------------------------------------------------------------------ describe

const yes = (b: boolean): string => (b ? 'true' : 'false');

function eniFilters(engine: Ec2Engine): FilterTable<EniRecord> {
  const assoc = (e: EniRecord): AddressRecord[] =>
    Object.values(engine.state.addresses).filter((a) => a.association?.networkInterfaceId === e.id);
  return {
    'network-interface-id': (e) => [e.id],
    'attachment.instance-id': (e) => [e.attachment?.instanceId],
    'attachment.attachment-id': (e) => [e.attachment?.attachmentId],
    'attachment.device-index': (e) => [e.attachment === undefined ? undefined : String(e.attachment.deviceIndex)],
    'attachment.status': (e) => [e.attachment?.status ?? 'detached'],
    'attachment.delete-on-termination': (e) => [e.attachment === undefined ? undefined : yes(e.attachment.deleteOnTermination)],
    'attachment.instance-owner-id': (e) => [e.attachment === undefined ? undefined : engine.world.accountId],
    'availability-zone': (e) => [e.availabilityZone],
    description: (e) => [e.description],
    'group-id': (e) => e.groups,
    'mac-address': (e) => [e.macAddress],
    'owner-id': () => [engine.world.accountId],
    'private-ip-address': (e) => e.privateIps,
    'addresses.private-ip-address': (e) => e.privateIps,
    'addresses.primary': (e) => e.privateIps.map((_, i) => yes(i === 0)),
    'association.allocation-id': (e) => assoc(e).map((a) => a.allocationId),
    'association.association-id': (e) => assoc(e).map((a) => a.association?.associationId),
    'association.public-ip': (e) => assoc(e).map((a) => a.publicIp),
    'addresses.association.public-ip': (e) => assoc(e).map((a) => a.publicIp),
    'interface-type': () => ['interface'],
    'requester-managed': () => ['false'],
    'source-dest-check': (e) => [yes(e.sourceDestCheck)],
    status: (e) => [e.status],
    'subnet-id': (e) => [e.subnetId],
    'vpc-id': (e) => [e.vpcId],
  };
}

function describeNetworkInterfaces(p: QueryParams, engine: Ec2Engine): Xml {
  const ids = p.list('NetworkInterfaceId');
  p.boolean('IncludeManagedResources'); // accepted; the emulator has no AWS-managed resources
  const pg = paging(p, { action: 'DescribeNetworkInterfaces', min: 5, max: 1000, defaultPage: undefined, idsParam: 'NetworkInterfaceId' });
  const match = compileFilters(p.filters(), eniFilters(engine), (e) => engine.tagsOf(e.id));
  finish(p);
  for (const id of ids) engine.eni(id);
  const wanted = new Set(ids);
  const { page: items, nextToken } = page(engine.allEnis().filter((e) => (wanted.size === 0 || wanted.has(e.id)) && match(e)), pg);
  return concat(list('networkInterfaceSet', items, (e) => render.networkInterface(engine, e)), leaf('nextToken', nextToken));
}

function instanceFilters(engine: Ec2Engine): FilterTable<WorldInstance> {
  const subnet = (i: WorldInstance): WorldSubnet => engine.subnet(i.subnetId);
  return {
    'instance-id': (i) => [i.id],
    'instance-type': (i) => [i.type],
    'availability-zone': (i) => [subnet(i).availabilityZone],
    'subnet-id': (i) => [i.subnetId],
    'vpc-id': (i) => [subnet(i).vpcId],
    'private-ip-address': (i) => [i.privateIp],
    'instance-state-name': (i) => [engine.isTerminated(i.id) ? 'terminated' : 'running'],
    'instance-state-code': (i) => [engine.isTerminated(i.id) ? '48' : '16'],
    'network-interface.network-interface-id': (i) => engine.enisOf(i.id).map((e) => e.id),
    'network-interface.subnet-id': (i) => engine.enisOf(i.id).map((e) => e.subnetId),
    'network-interface.addresses.private-ip-address': (i) => engine.enisOf(i.id).flatMap((e) => e.privateIps),
    'instance.group-id': (i) => i.securityGroups,
    'owner-id': () => [engine.world.accountId],
  };
}

function describeInstances(p: QueryParams, engine: Ec2Engine): Xml {
  const ids = p.list('InstanceId');
  p.boolean('IncludeManagedResources'); // accepted; the emulator has no AWS-managed resources
  const pg = paging(p, { action: 'DescribeInstances', min: 5, max: 1000, defaultPage: undefined, idsParam: 'InstanceId' });
  const match = compileFilters(p.filters(), instanceFilters(engine), (i) => engine.tagsOf(i.id));
  finish(p);
  for (const id of ids) engine.instance(id);
  const wanted = new Set(ids);
  const { page: items, nextToken } = page(engine.world.instances.filter((i) => (wanted.size === 0 || wanted.has(i.id)) && match(i)), pg);
  return concat(
    list('reservationSet', items, (i) => render.reservation(engine, i, engine.state.createdAt)),
    leaf('nextToken', nextToken),
  );
}

function describeInstanceTypes(p: QueryParams, engine: Ec2Engine): Xml {
  const names = p.list('InstanceType');
  // AWS answers at most 100 types per page here, even without MaxResults.
  const pg = paging(p, { action: 'DescribeInstanceTypes', min: 5, max: 100, defaultPage: 100, idsParam: undefined });
  const unknown = names.filter((n) => engine.types.get(n) === undefined);
  if (unknown.length > 0) throw awsErrors.invalidInstanceType(unknown);
  const table: FilterTable<InstanceTypeLimits> = {
    'instance-type': (t) => [t.instanceType],
    hypervisor: (t) => [t.hypervisor],
    'bare-metal': (t) => [yes(t.bareMetal)],
    'network-info.maximum-network-interfaces': (t) => [String(t.maxEnisAllCards)],
    'network-info.maximum-network-cards': (t) => [String(t.networkCards)],
    'network-info.ipv4-addresses-per-interface': (t) => [String(t.ipv4PerEni)],
  };
  const match = compileFilters(p.filters(), table);
  finish(p);
  const wanted = new Set(names);
  const { page: items, nextToken } = page(engine.types.all().filter((t) => (wanted.size === 0 || wanted.has(t.instanceType)) && match(t)), pg);
  return concat(list('instanceTypeSet', items, (t) => render.instanceType(t)), leaf('nextToken', nextToken));
}

function describeSubnets(p: QueryParams, engine: Ec2Engine): Xml {
  const ids = p.list('SubnetId');
  const pg = paging(p, { action: 'DescribeSubnets', min: 5, max: 1000, defaultPage: undefined, idsParam: 'SubnetId' });
  const table: FilterTable<WorldSubnet> = {
    'subnet-id': (s) => [s.id],
    'vpc-id': (s) => [s.vpcId],
    'availability-zone': (s) => [s.availabilityZone],
    availabilityZone: (s) => [s.availabilityZone],
    'availability-zone-id': (s) => [s.availabilityZoneId],
    availabilityZoneId: (s) => [s.availabilityZoneId],
    'cidr-block': (s) => [s.cidr],
    cidr: (s) => [s.cidr],
    cidrBlock: (s) => [s.cidr],
    'default-for-az': () => ['false'],
    defaultForAz: () => ['false'],
    'owner-id': () => [engine.world.accountId],
    state: () => ['available'],
    'available-ip-address-count': (s) => [String(engine.availableAddressCount(s))],
  };
  const match = compileFilters(p.filters(), table, (s) => engine.tagsOf(s.id));
  finish(p);
  for (const id of ids) engine.subnet(id);
  const wanted = new Set(ids);
  const { page: items, nextToken } = page(engine.world.subnets.filter((s) => (wanted.size === 0 || wanted.has(s.id)) && match(s)), pg);
  return concat(list('subnetSet', items, (s) => render.subnet(engine, s)), leaf('nextToken', nextToken));
}

interface TagRow {
  resourceId: string;
  resourceType: string;
  key: string;
  value: string;
}

function describeTags(p: QueryParams, engine: Ec2Engine): Xml {
  const pg = paging(p, { action: 'DescribeTags', min: 5, max: 1000, defaultPage: undefined, idsParam: undefined });
  const rows: TagRow[] = [];
  for (const [resourceId, tags] of Object.entries(engine.state.tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    let resourceType: string;
    try {
      resourceType = engine.checkTaggable(resourceId);
    } catch {
      continue;
    }
    for (const [key, value] of Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      rows.push({ resourceId, resourceType, key, value });
    }
  }
  const table: FilterTable<TagRow> = {
    key: (r) => [r.key],
    value: (r) => [r.value],
    'resource-id': (r) => [r.resourceId],
    'resource-type': (r) => [r.resourceType],
  };
  const tagFilter = compileFilters(p.filters(), table, (r) => engine.tagsOf(r.resourceId));
  finish(p);
  const { page: items, nextToken } = page(rows.filter(tagFilter), pg);
  return concat(
    list('tagSet', items, (r) => [leaf('resourceId', r.resourceId), leaf('resourceType', r.resourceType), leaf('key', r.key), leaf('value', r.value)]),
    leaf('nextToken', nextToken),
  );
}

function describeAddresses(p: QueryParams, engine: Ec2Engine): Xml {
  const ids = p.list('AllocationId');
  const ips = p.list('PublicIp');
  const instanceOf = (a: AddressRecord): string | undefined =>
    a.association === undefined ? undefined : engine.state.enis[a.association.networkInterfaceId]?.attachment?.instanceId;
  const table: FilterTable<AddressRecord> = {
    'allocation-id': (a) => [a.allocationId],
    'association-id': (a) => [a.association?.associationId],
    'instance-id': (a) => [instanceOf(a)],
    'network-interface-id': (a) => [a.association?.networkInterfaceId],
    'network-interface-owner-id': (a) => [a.association === undefined ? undefined : engine.world.accountId],
    'private-ip-address': (a) => [a.association?.privateIp],
    'public-ip': (a) => [a.publicIp],
    domain: () => ['vpc'],
    'network-border-group': () => [engine.world.region],
  };
  const match = compileFilters(p.filters(), table, (a) => engine.tagsOf(a.allocationId));
  finish(p);
  for (const id of ids) engine.address(id);
  const all = Object.values(engine.state.addresses);
  for (const ip of ips) if (!all.some((a) => a.publicIp === ip)) throw awsErrors.addressNotFound(ip);
  const wantedIds = new Set(ids);
  const wantedIps = new Set(ips);
  const items = all.filter(
    (a) => (wantedIds.size === 0 || wantedIds.has(a.allocationId)) && (wantedIps.size === 0 || wantedIps.has(a.publicIp)) && match(a),
  );
  return list('addressesSet', items, (a) => render.address(engine, a));
}

// ------------------------------------------------------------------ mutate

function tagSpecifications(p: QueryParams, resourceType: string): TagInput[] {
  const out: TagInput[] = [];
  for (const i of p.indexes('TagSpecification')) {
    const type = p.required(`TagSpecification.${i}.ResourceType`);
    if (type !== resourceType) {
      throw awsErrors.invalidParameterValue(`'${type}' is not a valid taggable resource type for this operation.`);
    }
    out.push(...p.tags(`TagSpecification.${i}.Tag`));
  }
  return out;
}

function createTags(p: QueryParams, engine: Ec2Engine): Xml {
  const resources = p.list('ResourceId');
  const tags = p.tags('Tag');
  finish(p);
  engine.createTags(resources, tags);
  return leaf('return', true);
}

function createNetworkInterface(p: QueryParams, engine: Ec2Engine): Xml {
  const canonical = p.canonical(['Action', 'Version', 'ClientToken', 'DryRun']);
  const input = {
    subnetId: p.required('SubnetId'),
    privateIp: p.string('PrivateIpAddress'),
    privateIps: p.indexes('PrivateIpAddresses').map((i) => ({
      ip: p.required(`PrivateIpAddresses.${i}.PrivateIpAddress`),
      primary: p.boolean(`PrivateIpAddresses.${i}.Primary`) ?? false,
    })),
    secondaryCount: p.integer('SecondaryPrivateIpAddressCount'),
    groups: p.list('SecurityGroupId'),
    description: p.string('Description'),
    tags: tagSpecifications(p, 'network-interface'),
    clientToken: p.string('ClientToken'),
    canonical,
  };
  finish(p);
  const { eni, clientToken } = engine.createNetworkInterface(input);
  return concat(el('networkInterface', ...render.networkInterface(engine, eni)), leaf('clientToken', clientToken));
}

function attachNetworkInterface(p: QueryParams, engine: Ec2Engine): Xml {
  const networkInterfaceId = p.required('NetworkInterfaceId');
  const instanceId = p.required('InstanceId');
  const deviceIndex = p.integer('DeviceIndex');
  if (deviceIndex === undefined) throw awsErrors.missingParameter('DeviceIndex');
  const networkCardIndex = p.integer('NetworkCardIndex') ?? 0;
  finish(p);
  const r = engine.attachNetworkInterface({ networkInterfaceId, instanceId, deviceIndex, networkCardIndex });
  return concat(leaf('attachmentId', r.attachmentId), leaf('networkCardIndex', r.networkCardIndex));
}

function detachNetworkInterface(p: QueryParams, engine: Ec2Engine): Xml {
  const attachmentId = p.required('AttachmentId');
  const force = p.boolean('Force') ?? false;
  finish(p);
  engine.detachNetworkInterface({ attachmentId, force });
  return leaf('return', true);
}

function deleteNetworkInterface(p: QueryParams, engine: Ec2Engine): Xml {
  const id = p.required('NetworkInterfaceId');
  finish(p);
  engine.deleteNetworkInterface(id);
  return leaf('return', true);
}

function modifyNetworkInterfaceAttribute(p: QueryParams, engine: Ec2Engine): Xml {
  const networkInterfaceId = p.required('NetworkInterfaceId');
  const attachmentId = p.string('Attachment.AttachmentId');
  const deleteOnTermination = p.boolean('Attachment.DeleteOnTermination');
  if ((attachmentId === undefined) !== (deleteOnTermination === undefined)) {
    throw awsErrors.missingParameter(attachmentId === undefined ? 'Attachment.AttachmentId' : 'Attachment.DeleteOnTermination');
  }
  const groups = p.list('SecurityGroupId');
  const input = {
    networkInterfaceId,
    attachment: attachmentId === undefined || deleteOnTermination === undefined ? undefined : { attachmentId, deleteOnTermination },
    sourceDestCheck: p.boolean('SourceDestCheck.Value'),
    groups: groups.length > 0 ? groups : undefined,
    description: p.string('Description.Value'),
  };
  finish(p);
  engine.modifyNetworkInterfaceAttribute(input);
  return leaf('return', true);
}

function assignPrivateIpAddresses(p: QueryParams, engine: Ec2Engine): Xml {
  const networkInterfaceId = p.required('NetworkInterfaceId');
  const input = {
    networkInterfaceId,
    ips: p.list('PrivateIpAddress'),
    count: p.integer('SecondaryPrivateIpAddressCount'),
    allowReassignment: p.boolean('AllowReassignment') ?? false,
  };
  finish(p);
  const assigned = engine.assignPrivateIpAddresses(input);
  return concat(
    leaf('networkInterfaceId', networkInterfaceId),
    list('assignedPrivateIpAddressesSet', assigned, (ip) => [leaf('privateIpAddress', ip)]),
    leaf('return', true),
  );
}

function unassignPrivateIpAddresses(p: QueryParams, engine: Ec2Engine): Xml {
  const networkInterfaceId = p.required('NetworkInterfaceId');
  const ips = p.list('PrivateIpAddress');
  finish(p);
  engine.unassignPrivateIpAddresses({ networkInterfaceId, ips });
  return leaf('return', true);
}

function allocateAddress(p: QueryParams, engine: Ec2Engine): Xml {
  const domain = p.string('Domain');
  if (domain !== undefined && domain !== 'vpc') {
    throw awsErrors.invalidParameterValue(`Invalid value '${domain}' for Domain: only vpc is supported`);
  }
  const address = p.string('Address');
  const tags = tagSpecifications(p, 'elastic-ip');
  finish(p);
  const a = engine.allocateAddress({ address, tags });
  return concat(
    leaf('publicIp', a.publicIp),
    leaf('domain', 'vpc'),
    leaf('allocationId', a.allocationId),
    leaf('publicIpv4Pool', 'amazon'),
    leaf('networkBorderGroup', engine.world.region),
  );
}

function associateAddress(p: QueryParams, engine: Ec2Engine): Xml {
  const allocationId = p.required('AllocationId');
  const input = {
    allocationId,
    networkInterfaceId: p.string('NetworkInterfaceId'),
    instanceId: p.string('InstanceId'),
    privateIp: p.string('PrivateIpAddress'),
    allowReassociation: p.boolean('AllowReassociation'),
  };
  finish(p);
  const associationId = engine.associateAddress(input);
  return concat(leaf('return', true), leaf('associationId', associationId));
}

function disassociateAddress(p: QueryParams, engine: Ec2Engine): Xml {
  const input = { associationId: p.string('AssociationId'), publicIp: p.string('PublicIp') };
  finish(p);
  engine.disassociateAddress(input);
  return leaf('return', true);
}

function terminateInstances(p: QueryParams, engine: Ec2Engine): Xml {
  const ids = p.list('InstanceId');
  p.boolean('Force'); // accepted; termination is immediate here
  p.boolean('SkipOsShutdown');
  finish(p);
  const changes = engine.terminateInstances(ids);
  const state = (tag: string, name: 'running' | 'terminated'): Xml => el(tag, leaf('code', name === 'running' ? 16 : 48), leaf('name', name));
  return list('instancesSet', changes, (c) => [leaf('instanceId', c.id), state('currentState', 'terminated'), state('previousState', c.previous)]);
}
