/**
 * The whole calculation in one call, from a snapshot (docs/egress-calc.md). Pure.
 */
import { EgressCalculator } from './calculator.js';
import type { EgressCalcSnapshot, NodeEgressState } from './types.js';

/**
 * The desired egress state of `snapshot.nodeName` for the inputs of `snapshot`: a fresh
 * {@link EgressCalculator} fed the whole snapshot. Equal snapshots (in any order) give deep-equal results.
 * The agent uses the incremental calculator instead; this is for tools (`egw lab status`), tests and the
 * benchmark's full-recomputation baseline.
 */
export function computeNodeEgress(snapshot: EgressCalcSnapshot): NodeEgressState {
  return new EgressCalculator(snapshot.nodeName).load(snapshot).result();
}
