/**
 * The EgressGateway operator: render (pure), validation with the operator's messages (pure), the
 * ReplicaSet-like pod logic and rollout plan (pure), the status, and the reconciler that writes gateway
 * pods to the datastore. docs/operator.md describes the whole.
 */
export * from './k8s-types.js';
export { defaultGatewayImage, egwVersion, EGW_IMAGE_REPOSITORY } from './image.js';
export { RandomIds, SequentialIds, type IdSource } from './ids.js';
export * from './render.js';
export * from './validate.js';
export * from './pods.js';
export * from './plan.js';
export * from './status.js';
export * from './workloads.js';
export { DatastorePods, type DatastorePodsDeps } from './datastore-pods.js';
export { EgressGatewayOperator, OPERATOR_WATCHED_KINDS, type GatewayResult, type OperatorDeps, type OperatorOptions } from './reconciler.js';
