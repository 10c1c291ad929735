/**
 * calc: the pure computation of which gateways each client pod uses and each node's desired egress
 * state (docs/egress-calc.md). Imports only `api/`.
 *
 * Typical use (the agent):
 * ```ts
 * const calc = new EgressCalculator(nodeName);
 * calc.upsert(resource) / calc.delete(kind, name, namespace)      // from the informers
 * calc.upsertNextHops(record) / calc.deleteNextHops(client)        // stored EgressNextHops
 * calc.setClusterCidrs([...poolCidrs, serviceCidr, ...nodeSubnets])
 * calc.setGatewayHealth(tracker.record(target, ok))                // poll verdicts that changed
 * const state = calc.result();                                     // then program it, persist nextHops
 * calc.setPreviousTables(state.tables)
 * ```
 */
export { EgressCalculator } from './calculator.js';
export { computeNodeEgress } from './compute.js';
export { PollTracker } from './poll-tracker.js';
export { chooseNextHops, fnv1a, sameNextHops, type NextHopsRequest } from './next-hops.js';
export { allocateTables, tableCapacity, type TableAllocation } from './route-tables.js';
export { egressAnnotationsOf, resolveEgressSource, type EgressAnnotations, type EgressSource } from './egress-source.js';
export { invalidPodFacts, podFacts, nodeAddress, type PodFacts } from './pod-facts.js';
export { selectionKey, type SelectionScope } from './selection.js';
export type * from './types.js';
export {
  currentMaintenance,
  planGatewayMaintenance,
  rfc3339,
  sameAnnotations,
  terminatingGatewaysByClient,
  terminationWindow,
  withMaintenance,
  type GatewayMaintenance,
  type MaintenanceInput,
  type MaintenancePatch,
  type MaintenancePlan,
  type TerminationWindow,
} from './maintenance.js';
