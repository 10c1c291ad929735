/**
 * The lab's scheduler: a pure decision core (Kubernetes' default profile: resources, nodeSelector,
 * taints, node affinity, topology spread, preferred pod (anti-)affinity) and the process that runs it over
 * an informer, binding pods with compare-and-swap. docs/lab-kubelet.md describes the contract.
 */
export { registerLabSchedulerCommand } from './command.js';
export { LabScheduler, SCHEDULER_WATCHED_KINDS, buildSnapshot, type LabSchedulerDeps, type LabSchedulerOptions, type PassResult } from './scheduler.js';
export * from './schedule.js';
export * from './model.js';
export { CPU, MEMORY, PODS, parseQuantity, schedulerUnits } from './quantity.js';
export * from './selectors.js';
