/**
 * The Kubernetes `v1` kinds egw reads, as the subset it needs: Namespace, Pod, Node. Real manifests carry
 * many fields egw does not read (images, commands, volumes…): those are accepted and kept as written.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AWS_SECONDARY_IPV4_RESOURCE, checkEgressAnnotations } from '../annotations.js';
import { checkLabels, isDnsLabel, isDnsSubdomain } from '../checks.js';
import { parseIp } from '../ip.js';
import type { IssueSink, PathSegment } from '../issues.js';
import { preserveUnknown, ResourceList, Resource, ResourceOptionalSpec, StringEnum, StringMap } from '../schema-kit.js';

/** Well-known Node labels egw reads. */
export const NODE_ZONE_LABEL = 'topology.kubernetes.io/zone';
export const NODE_INSTANCE_TYPE_LABEL = 'node.kubernetes.io/instance-type';

export const NamespaceSchema = ResourceOptionalSpec(
  'v1',
  'Namespace',
  Type.Object({ finalizers: Type.Optional(Type.Array(Type.String())) }, preserveUnknown),
  Type.Object({ phase: Type.Optional(Type.String()) }, preserveUnknown),
  { description: 'A Kubernetes namespace; its labels and egress annotations apply to its pods.' },
);
/** A Namespace as stored. */
export type Namespace = Static<typeof NamespaceSchema>;

const ContainerPortSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ description: 'Port name; gateways expose their health port as "health".' })),
    containerPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    protocol: Type.Optional(StringEnum(['TCP', 'UDP', 'SCTP'] as const)),
    hostPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  },
  preserveUnknown,
);

const ContainerSchema = Type.Object(
  {
    name: Type.String(),
    image: Type.Optional(Type.String()),
    resources: Type.Optional(Type.Object({ requests: Type.Optional(ResourceList()), limits: Type.Optional(ResourceList()) }, preserveUnknown)),
    ports: Type.Optional(Type.Array(ContainerPortSchema)),
  },
  preserveUnknown,
);

export const PodSpecSchema = Type.Object(
  {
    nodeName: Type.Optional(Type.String()),
    serviceAccountName: Type.Optional(Type.String({ description: 'Calico labels endpoints with it (projectcalico.org/serviceaccount).' })),
    containers: Type.Array(ContainerSchema, { minItems: 1 }),
    initContainers: Type.Optional(Type.Array(ContainerSchema)),
    nodeSelector: Type.Optional(StringMap()),
    hostNetwork: Type.Optional(Type.Boolean()),
    terminationGracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  preserveUnknown,
);

export const PodStatusSchema = Type.Object(
  {
    phase: Type.Optional(StringEnum(['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] as const)),
    podIP: Type.Optional(Type.String()),
    podIPs: Type.Optional(Type.Array(Type.Object({ ip: Type.String() }, preserveUnknown))),
    hostIP: Type.Optional(Type.String()),
  },
  preserveUnknown,
);

export const PodSchema = Resource('v1', 'Pod', PodSpecSchema, PodStatusSchema, {
  description: 'A Kubernetes pod: an egress client (via annotations) or a gateway.',
});
/** A Pod as stored. */
export type Pod = Static<typeof PodSchema>;
export type PodContainer = Static<typeof ContainerSchema>;

export const NodeSchema = ResourceOptionalSpec(
  'v1',
  'Node',
  Type.Object(
    {
      providerID: Type.Optional(Type.String()),
      podCIDR: Type.Optional(Type.String()),
      podCIDRs: Type.Optional(Type.Array(Type.String())),
      unschedulable: Type.Optional(Type.Boolean()),
      taints: Type.Optional(Type.Array(Type.Object({}, preserveUnknown))),
    },
    preserveUnknown,
  ),
  Type.Object(
    {
      capacity: Type.Optional(ResourceList()),
      allocatable: Type.Optional(ResourceList()),
      addresses: Type.Optional(Type.Array(Type.Object({ type: Type.String(), address: Type.String() }, preserveUnknown))),
    },
    preserveUnknown,
  ),
  { description: 'A Kubernetes node: zone and instance-type labels, aws-secondary-ipv4 capacity.' },
);
/** A Node as stored. */
export type Node = Static<typeof NodeSchema>;

/** No defaults for the Kubernetes kinds (the namespace of a Pod is filled in by validation). */
export function defaultKubernetes<T extends Namespace | Pod | Node>(resource: T): T {
  return { ...resource };
}

/** The integer value of a quantity, or undefined when it is not a whole number. */
export function integerQuantity(q: number | string): number | undefined {
  const n = typeof q === 'number' ? q : /^[0-9]+$/.test(q) ? Number(q) : NaN;
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

function checkAwsResource(sink: IssueSink, path: readonly PathSegment[], list: Readonly<Record<string, number | string>> | undefined): void {
  const q = list?.[AWS_SECONDARY_IPV4_RESOURCE];
  if (q !== undefined && integerQuantity(q) === undefined) {
    sink.error([...path, AWS_SECONDARY_IPV4_RESOURCE], 'resources.aws-not-integer', `${AWS_SECONDARY_IPV4_RESOURCE} must be a whole number (got ${JSON.stringify(q)})`, 'an integer such as 1');
  }
}

/** Namespace rules: DNS-label name, valid labels, egress annotations. */
export function validateNamespace(ns: Namespace, sink: IssueSink): void {
  checkLabels(sink, ['metadata', 'labels'], ns.metadata.labels);
  checkEgressAnnotations(sink, 'Namespace', ns.metadata.annotations);
}

/** Pod rules: labels, egress annotations, the aws-secondary-ipv4 resource, addresses in status. */
export function validatePod(pod: Pod, sink: IssueSink): void {
  checkLabels(sink, ['metadata', 'labels'], pod.metadata.labels);
  checkEgressAnnotations(sink, 'Pod', pod.metadata.annotations);
  const nodeName = pod.spec.nodeName;
  if (nodeName !== undefined && nodeName !== '' && !isDnsSubdomain(nodeName)) {
    sink.error(['spec', 'nodeName'], 'Pod.invalid-node-name', `"${nodeName}" is not a valid node name`, 'a lowercase DNS subdomain');
  }
  for (const group of ['containers', 'initContainers'] as const) {
    const names = new Set<string>();
    (pod.spec[group] ?? []).forEach((c, i) => {
      const base = ['spec', group, i];
      if (!isDnsLabel(c.name)) sink.error([...base, 'name'], 'Pod.invalid-container-name', `"${c.name}" is not a valid container name`, 'a lowercase DNS label such as "egress-gateway"');
      if (names.has(c.name)) sink.error([...base, 'name'], 'Pod.duplicate-container-name', `container name "${c.name}" is used twice`, 'unique container names');
      names.add(c.name);
      (c.ports ?? []).forEach((p, j) => {
        if (p.name !== undefined && (p.name.length > 15 || !/^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.name))) {
          sink.error([...base, 'ports', j, 'name'], 'Pod.invalid-port-name', `"${p.name}" is not a valid port name`, 'at most 15 lowercase letters, digits and "-", with at least one letter, e.g. "health"');
        }
      });
      const res = c.resources;
      checkAwsResource(sink, [...base, 'resources', 'requests'], res?.requests);
      checkAwsResource(sink, [...base, 'resources', 'limits'], res?.limits);
      const req = res?.requests?.[AWS_SECONDARY_IPV4_RESOURCE];
      const lim = res?.limits?.[AWS_SECONDARY_IPV4_RESOURCE];
      if (req !== undefined && lim === undefined) {
        sink.error([...base, 'resources', 'limits'], 'Pod.aws-resource-no-limit', `a limit must be set for ${AWS_SECONDARY_IPV4_RESOURCE} (extended resources cannot be overcommitted)`, `limits: {${AWS_SECONDARY_IPV4_RESOURCE}: ${String(req)}}`);
      } else if (req !== undefined && lim !== undefined && integerQuantity(req) !== integerQuantity(lim)) {
        sink.error([...base, 'resources', 'requests', AWS_SECONDARY_IPV4_RESOURCE], 'Pod.aws-resource-mismatch', `requests (${String(req)}) and limits (${String(lim)}) of ${AWS_SECONDARY_IPV4_RESOURCE} must be equal`, 'the same value in requests and limits');
      }
    });
  }
  const status = pod.status;
  if (status?.podIP !== undefined && status.podIP !== '' && parseIp(status.podIP) === undefined) {
    sink.error(['status', 'podIP'], 'Pod.invalid-pod-ip', `"${status.podIP}" is not an IP address`, 'an IP address');
  }
  (status?.podIPs ?? []).forEach((p, i) => {
    if (parseIp(p.ip) === undefined) sink.error(['status', 'podIPs', i, 'ip'], 'Pod.invalid-pod-ip', `"${p.ip}" is not an IP address`, 'an IP address');
  });
}

/** Node rules: labels, aws-secondary-ipv4 capacity. */
export function validateNode(node: Node, sink: IssueSink): void {
  checkLabels(sink, ['metadata', 'labels'], node.metadata.labels);
  checkAwsResource(sink, ['status', 'capacity'], node.status?.capacity);
  checkAwsResource(sink, ['status', 'allocatable'], node.status?.allocatable);
}
