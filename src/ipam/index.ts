/**
 * IPAM's public face (docs/ipam.md): the allocator, pool choice, the GC pass and the inspection used by
 * `egw ipam show|check`. Everything here works through the datastore contract only.
 */
export { Ipam, describeOwner, requestsAwsSecondaryIp } from './allocator.js';
export type { Allocation, AllocateRequest, IpamDeps, IpamOptions, IpamStats, ReleaseOptions, ReleaseResult } from './allocator.js';
export { choosePools, exhaustionError, poolInfo, requestedPools, ZONE_LABEL } from './pools.js';
export type { CandidatePool, PoolChoice, PoolChoiceInput, PoolInfo, PoolRequestSource, SkippedPool, SkipReason, SubnetFacts } from './pools.js';
export { Exclusions, awsSubnetExclusions, reservationExclusions } from './exclusions.js';
export { analyzeIpam, ownerValidity, readIpamSnapshot, summarizeIpam } from './inspect.js';
export type { Finding, FindingKind, IpamSnapshot, NodeSummary, PodFacts, PoolSummary } from './inspect.js';
export { checkGrace, runIpamGcPass } from './gc.js';
export type { GcPassOptions, GcReport } from './gc.js';
export { IPAM_KINDS, IPAM_BLOCK_KIND, IPAM_HANDLE_KIND, BLOCK_AFFINITY_KIND, FULL_BLOCK_AFFINITY_KIND, IPAM_GC_MARK_KIND, checkHandleId } from './records.js';
export type { AllocationOwner, BlockValue, HandleValue, AffinityValue, GcMarkValue, IntendedUse } from './records.js';
