/**
 * egw aws-sim: an EC2-API emulator (Query API over HTTP, for @aws-sdk/client-ec2) with IMDSv2, AWS's
 * limits, errors, throttling and delays, and a hook for the lab's fabric. See docs/aws-sim.md.
 */
export { startAwsSim, dumpAwsSimState, parseListen } from './server.js';
export type { StartAwsSimOptions, AwsSimHandle, AwsSimStateDump, AwsSimStats } from './server.js';
export { renderAwsSimState } from './dump.js';
export { loadWorld, parseWorld, readWorldDefinition, defaultSimSettings } from './world.js';
export type {
  World,
  WorldDefinition,
  SimDefinition,
  SimSettings,
  LatencySpec,
  BucketSpec,
  InjectedFailure,
  WorldVpc,
  WorldSubnet,
  WorldSecurityGroup,
  WorldInstance,
  WorldElasticIp,
} from './world.js';
export { NoopFabricDriver } from './fabric.js';
export type { FabricDriver, FabricEni, FabricInstance, FabricAddress, FabricSnapshot, FabricStatus } from './fabric.js';
export { builtInInstanceTypes, loadInstanceTypeTable, parseInstanceTypeTable } from './instance-types.js';
export type { InstanceTypeLimits, InstanceTypeTable } from './instance-types.js';
export { INSTANCE_ID_HEADER } from './imds.js';
export type { SimState, EniRecord, AddressRecord } from './model.js';
