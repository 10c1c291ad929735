/**
 * `egw.io/v1` AWSSubnet (cluster-scoped): egw's record of one VPC subnet's facts (CIDR, zone, VPC), named
 * by its subnet ID. The controller keeps these in line with EC2; `egw apply` can load them for the lab and
 * for tests. Calico has no such kind.
 */
import { Type, type Static } from '@sinclair/typebox';
import { isAwsSubnetId } from '../checks.js';
import { formatCidr, parseCidr } from '../ip.js';
import type { IssueSink } from '../issues.js';
import { LooseStatus, Resource } from '../schema-kit.js';

export const AWSSubnetSpecSchema = Type.Object({
  subnetID: Type.String({ description: 'The subnet ID; must equal metadata.name.' }),
  cidr: Type.String({ 'x-egw-format-hint': 'an IPv4 CIDR such as 100.64.0.0/22', description: "The subnet's IPv4 CIDR." }),
  availabilityZone: Type.String({ pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', 'x-egw-format-hint': 'an availability zone name such as us-west-2a', description: 'The zone the subnet lives in.' }),
  vpcID: Type.Optional(Type.String({ pattern: '^vpc-[0-9a-f]{8,32}$', 'x-egw-format-hint': 'a VPC ID such as vpc-0123456789abcdef0', description: 'The VPC the subnet belongs to.' })),
});

export const AWSSubnetSchema = Resource('egw.io/v1', 'AWSSubnet', AWSSubnetSpecSchema, LooseStatus(), {
  description: "egw's record of an AWS VPC subnet: CIDR, availability zone, VPC.",
});

/** An AWSSubnet as stored. */
export type AWSSubnet = Static<typeof AWSSubnetSchema>;

/** Stores the CIDR in canonical form when it is strictly masked. Pure and idempotent. */
export function defaultAWSSubnet(s: AWSSubnet): AWSSubnet {
  const parsed = parseCidr(s.spec.cidr);
  const cidr = parsed !== undefined && !parsed.hostBitsSet ? formatCidr(parsed.cidr) : s.spec.cidr;
  return { ...s, spec: { ...s.spec, cidr } };
}

/** The subnet ID is well formed and is the name; the CIDR is an IPv4 network of AWS's allowed sizes (/16-/28). */
export function validateAWSSubnet(s: AWSSubnet, sink: IssueSink): void {
  const { subnetID, cidr } = s.spec;
  if (!isAwsSubnetId(subnetID)) {
    sink.error(['spec', 'subnetID'], 'AWSSubnet.invalid-subnet-id', `"${subnetID}" is not a well-formed AWS subnet ID`, '"subnet-" followed by 8 or 17 lowercase hex digits');
  } else if (subnetID !== s.metadata.name) {
    sink.error(['metadata', 'name'], 'AWSSubnet.name-mismatch', `AWSSubnet records are named by their subnet ID, but the name is "${s.metadata.name}"`, `name: ${subnetID}`);
  }
  const parsed = parseCidr(cidr);
  if (parsed === undefined || parsed.cidr.version !== 4) {
    sink.error(['spec', 'cidr'], 'AWSSubnet.invalid-cidr', `"${cidr}" is not an IPv4 CIDR`, 'an IPv4 CIDR such as 100.64.0.0/22');
  } else if (parsed.hostBitsSet) {
    sink.error(['spec', 'cidr'], 'AWSSubnet.cidr-not-masked', `"${cidr}" has host bits set`, formatCidr(parsed.cidr));
  } else if (parsed.cidr.prefix < 16 || parsed.cidr.prefix > 28) {
    sink.error(['spec', 'cidr'], 'AWSSubnet.cidr-size', `AWS subnets are /16 to /28, not /${parsed.cidr.prefix}`, 'a prefix length from 16 to 28');
  }
}
