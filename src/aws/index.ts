/**
 * The aws room (docs/aws-fabric.md): the narrow EC2 port and its SDK adapter, the call policy, IMDS,
 * ownership tags and ClientTokens, the fabric reconciler, node capacity and the IAM policy.
 */
export * from './ec2-port.js';
export * from './aws-errors.js';
export { SdkEc2, type SdkEc2Options } from './sdk-ec2.js';
export * from './resilient-ec2.js';
export * from './imds.js';
export * from './ownership.js';
export * from './capacity.js';
export * from './iam-policy.js';
export * from './fabric-reconciler.js';
