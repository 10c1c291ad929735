/**
 * The AWS part of `egw agent` (docs/aws-fabric.md): the `AwsFabric` component and its ports.
 */
export { AwsFabric, FABRIC_KINDS, type AwsFabricDeps, type AwsFabricOptions, type AwsFabricStatus } from './aws-fabric.js';
export { ShellEniRouting, IpamHostIps, ImdsAttachWatcher, type EniRoutingPort, type AttachWatcher } from './ports.js';
export { POD_AWS_CONDITION, NODE_AWS_CONDITION, type Condition } from './status.js';
export { deriveFabricWorkloads, hostSecondarySubnets, subnetFacts, type DerivedWorkloads, type WorkloadProblem } from './workloads.js';
